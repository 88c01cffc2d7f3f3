// A realistic, reproducible mailbox: every message is built from (seed, index),
// in order, so the corpus of N messages is the first N of any larger one and
// one cached corpus (the largest size asked for) serves every size.
//
// Shape, chosen to resemble a long-lived personal mailbox:
// - sizes: 98% log-uniform 2-20 KB, 2% log-uniform 100 KB-2 MB (attachments);
// - MIME: ~45% text/plain (7bit or quoted-printable), ~35% multipart/
//   alternative (plain + HTML), ~20% multipart/mixed with base64 attachments;
// - threads: ~35% are replies (In-Reply-To, References, "Re:" subject, quoted text);
// - 400 correspondents with a skewed frequency; ~10% non-ASCII names and
//   ~8% non-ASCII subjects as RFC 2047 encoded words (UTF-8 B/Q, ISO-8859-1 Q);
// - flags: ~85% \Seen (the newest mostly unseen), ~10% \Answered, ~2% \Flagged.
//
// Files: messages.bin (CRLF messages back to back), index.bin (per message:
// offset f64, length u32, flags u8, internal date f64), meta.json.
import { promises as fs, openSync, writeSync, closeSync, readFileSync, readSync, existsSync } from 'node:fs';
import path from 'node:path';
import { Rng } from './rng.js';

export const FLAG_SEEN = 1;
export const FLAG_ANSWERED = 2;
export const FLAG_FLAGGED = 4;

/** Terms the SEARCH scenarios look for; planted by the generator at known rates. */
export const SEARCH_FROM = 'okonkwo'; // one mid-frequency correspondent
export const SEARCH_TEXT = 'zephyrine'; // in ~0.3% of bodies

export interface Corpus {
  seed: number;
  count: number;
  dir: string;
  offsets: Float64Array;
  lengths: Uint32Array;
  flags: Uint8Array;
  dates: Float64Array;
  totalBytes: number;
  /** Reads message i (0-based). */
  message(i: number): Buffer;
  /** Closes the data file. */
  close(): void;
}

const FIRST = ['Anna', 'Ben', 'Chloe', 'David', 'Emma', 'Farid', 'Grace', 'Hiro', 'Ines', 'Jack', 'Kavya', 'Liam', 'Maya', 'Noah',
  'Olivia', 'Pavel', 'Quinn', 'Rosa', 'Sam', 'Tara', 'Umar', 'Vera', 'Will', 'Xenia', 'Yusuf', 'Zara', 'Marguerite', 'Tom', 'Lena', 'Omar'];
const FIRST_INTL = ['José', 'Zoë', 'Jürgen', 'Łukasz', 'Søren', 'François', 'Ana María', 'Björn', 'Çağla', 'Dvořák', 'Małgorzata', 'Ærin'];
const LAST = ['Smith', 'Jones', 'Garcia', 'Müller', 'Rossi', 'Tanaka', 'Nowak', 'Dubois', 'Silva', 'Kim', 'Patel', 'Cohen', 'Novak',
  'Larsen', 'Brown', 'Wilson', 'Moreau', 'Schmidt', 'Yilmaz', 'Ivanova', 'Hughes', 'Fischer', 'Costa', 'Nguyen', 'Okafor'];
const DOMAINS = ['example.com', 'example.org', 'example.net', 'mail.example.com', 'corp.example', 'lists.example.org', 'uni.example.edu'];
const WORDS = ('the of and to in is that for it as with was on be by this are at from or have an they which one you were all ' +
  'we can her has there been if more when will would who so no about project meeting report budget review draft proposal ' +
  'schedule quarter team update release server client deadline invoice contract design feedback analysis data customer ' +
  'support issue ticket plan summary agenda notes minutes travel conference paper results version build test deploy ' +
  'please thanks regards attached below above next week monday friday morning afternoon call discuss question answer ' +
  'change request approval payment order delivery shipping account password security migration backup storage network ' +
  'performance latency memory index search message mailbox folder calendar invitation office holiday weekend family ' +
  'dinner photos trip garden kitchen weather coffee lunch book movie music concert ticket flight hotel station').split(' ');
const SUBJ_NOUNS = ['budget', 'Q3 report', 'release 2.4', 'design review', 'invoice #4471', 'contract renewal', 'team offsite',
  'server migration', 'holiday photos', 'conference travel', 'paper draft', 'customer feedback', 'backup failure',
  'weekly sync', 'hiring plan', 'security audit', 'roadmap', 'dinner on Friday', 'newsletter', 'build broken'];
const SUBJ_TEMPLATES = ['%s', 'Question about the %s', 'Update: %s', '[project-x] %s', 'Re: %s follow-up', 'FYI %s',
  'Draft %s for comments', 'Reminder: %s', '%s - action needed', 'Notes from the %s'];
const SUBJ_INTL = ['Réunion de l’équipe', 'Überprüfung des Angebots', 'Встреча в пятницу', '会議の議事録', 'Presupuesto año 2024',
  'Ταξίδι στην Αθήνα', 'Zażółć gęślą jaźń', 'Smörgåsbord på fredag', 'Café à 10h?', 'Kühlschrank kaputt'];
const ATTACH = [
  { type: 'application/pdf', ext: 'pdf', names: ['report', 'invoice', 'contract', 'slides', 'paper'] },
  { type: 'image/jpeg', ext: 'jpg', names: ['IMG_2041', 'photo', 'scan', 'DSC00412'] },
  { type: 'image/png', ext: 'png', names: ['screenshot', 'diagram', 'chart'] },
  { type: 'application/zip', ext: 'zip', names: ['logs', 'archive', 'sources'] },
  { type: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet', ext: 'xlsx', names: ['budget', 'numbers'] },
];
const TZ = [0, -300, 60, 120, 330, -480, 540, -180];
const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const BASE_DATE = Date.UTC(2019, 0, 1);
/** Mean spacing of messages (25 min): 100k messages span about five years. */
const GAP_MS = 25 * 60_000;

interface Person {
  name: string;
  addr: string;
}

function people(seed: number): Person[] {
  const r = new Rng(seed, 'people');
  const out: Person[] = [];
  for (let i = 0; i < 400; i++) {
    const intl = r.chance(0.1);
    const first = intl ? r.pick(FIRST_INTL) : r.pick(FIRST);
    const last = i === 37 ? 'Okonkwo' : r.pick(LAST);
    const ascii = (s: string) => s.normalize('NFD').replace(/[^A-Za-z ]/g, '').replace(/ /g, '').toLowerCase() || 'x';
    out.push({ name: `${first} ${last}`, addr: `${ascii(first)}.${ascii(last)}${i}@${r.pick(DOMAINS)}` });
  }
  return out;
}

function encodedWord(s: string, r: Rng): string {
  if (/^[\x20-\x7e]*$/.test(s)) return s;
  const latin1 = /^[\x00-\xff]*$/.test(s);
  if (latin1 && r.chance(0.5)) {
    const q = [...Buffer.from(s, 'latin1')]
      .map((b) => (b === 0x20 ? '_' : b > 0x7e || b < 0x21 || b === 0x3d || b === 0x3f || b === 0x5f ? '=' + b.toString(16).toUpperCase().padStart(2, '0') : String.fromCharCode(b)))
      .join('');
    return `=?ISO-8859-1?Q?${q}?=`;
  }
  if (r.chance(0.5)) return `=?UTF-8?B?${Buffer.from(s, 'utf8').toString('base64')}?=`;
  const q = [...Buffer.from(s, 'utf8')]
    .map((b) => (b === 0x20 ? '_' : b > 0x7e || b < 0x21 || b === 0x3d || b === 0x3f || b === 0x5f ? '=' + b.toString(16).toUpperCase().padStart(2, '0') : String.fromCharCode(b)))
    .join('');
  return `=?UTF-8?Q?${q}?=`;
}

function mailbox(p: Person, r: Rng): string {
  const name = /^[\x20-\x7e]*$/.test(p.name) ? `"${p.name}"` : encodedWord(p.name, r);
  return `${name} <${p.addr}>`;
}

function rfc5322Date(ms: number, tzMin: number): string {
  const d = new Date(ms + tzMin * 60_000);
  const p2 = (n: number) => String(n).padStart(2, '0');
  const sign = tzMin < 0 ? '-' : '+';
  const a = Math.abs(tzMin);
  return `${DAYS[d.getUTCDay()]}, ${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())} ${sign}${p2(Math.floor(a / 60))}${p2(a % 60)}`;
}

function sentence(r: Rng, planted: boolean): string {
  const n = r.int(6, 18);
  const w: string[] = [];
  for (let i = 0; i < n; i++) w.push(r.pick(WORDS));
  if (planted) w.splice(r.int(0, w.length), 0, SEARCH_TEXT);
  const s = w.join(' ');
  return s[0]!.toUpperCase() + s.slice(1) + r.pick(['.', '.', '.', '?', '!']);
}

/** Plain text of about `bytes` bytes, wrapped at 72 columns, CRLF. */
function text(r: Rng, bytes: number, plantWord: boolean, intl: boolean): string {
  const lines: string[] = [];
  let size = 0;
  let plantAt = plantWord ? r.int(0, 5) : -1;
  while (size < bytes) {
    let para = '';
    const ns = r.int(2, 6);
    for (let i = 0; i < ns; i++) para += (para ? ' ' : '') + sentence(r, plantAt-- === 0);
    if (intl && r.chance(0.3)) para += ' Café, naïve façade — “quoted” déjà vu.';
    let line = '';
    for (const word of para.split(' ')) {
      if (line.length + word.length + 1 > 72) {
        lines.push(line);
        size += line.length + 2;
        line = word;
      } else line = line ? line + ' ' + word : word;
    }
    lines.push(line, '');
    size += line.length + 4;
  }
  return lines.join('\r\n');
}

function quotedPrintable(s: string): string {
  const out: string[] = [];
  for (const line of s.split('\r\n')) {
    let enc = '';
    for (const b of Buffer.from(line, 'utf8')) {
      enc += b > 0x7e || b === 0x3d ? '=' + b.toString(16).toUpperCase().padStart(2, '0') : String.fromCharCode(b);
    }
    while (enc.length > 76) {
      let cut = 75;
      while (enc[cut - 1] === '=' || enc[cut - 2] === '=') cut--;
      out.push(enc.slice(0, cut) + '=');
      enc = enc.slice(cut);
    }
    out.push(enc);
  }
  return out.join('\r\n');
}

function html(plain: string): string {
  const esc = plain.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const paras = esc.split('\r\n\r\n').map((p) => `<p>${p.replace(/\r\n/g, ' ')}</p>`);
  return `<!DOCTYPE html>\r\n<html><head><meta charset="utf-8"></head><body style="font-family: sans-serif">\r\n${paras.join('\r\n')}\r\n</body></html>`;
}

function base64Lines(buf: Buffer): string {
  const b = buf.toString('base64');
  const out: string[] = [];
  for (let i = 0; i < b.length; i += 76) out.push(b.slice(i, i + 76));
  return out.join('\r\n');
}

function boundary(r: Rng): string {
  return `----=_Part_${r.u32().toString(16)}_${r.u32().toString(36)}`;
}

interface ThreadInfo {
  msgid: string;
  subject: string;
  refs: string[];
}

/** Builds message `i`. `thread` holds the earlier messages' ids and subjects (for replies). */
function buildMessage(seed: number, i: number, who: Person[], thread: ThreadInfo[]): { data: Buffer; flags: number; date: number } {
  const r = new Rng(seed, 'msg', i);
  const date = BASE_DATE + i * GAP_MS + r.int(0, GAP_MS - 1000);
  // Skewed correspondents: a few people send most of the mail.
  const person = () => who[Math.min(who.length - 1, Math.floor(who.length * Math.pow(r.float(), 2.2)))]!;
  const from = person();
  const to = [person()];
  while (to.length < 3 && r.chance(0.3)) to.push(person());
  const cc = r.chance(0.2) ? [person()] : [];
  const domain = from.addr.split('@')[1]!;
  const msgid = `<${date.toString(36)}.${i.toString(36)}.${seed}@${domain}>`;
  let subject: string;
  let refs: string[] = [];
  let replyTo: ThreadInfo | undefined;
  if (i > 0 && r.chance(0.35)) {
    replyTo = thread[Math.max(0, i - r.int(1, 40))]!;
    subject = replyTo.subject.startsWith('Re: ') ? replyTo.subject : 'Re: ' + replyTo.subject;
    refs = [...replyTo.refs, replyTo.msgid].slice(-10);
  } else if (r.chance(0.08)) subject = r.pick(SUBJ_INTL);
  else subject = r.pick(SUBJ_TEMPLATES).replace('%s', r.pick(SUBJ_NOUNS));
  thread[i] = { msgid, subject, refs };

  const large = r.chance(0.02);
  const target = large ? r.logUniform(100_000, 2_000_000) : r.logUniform(2_000, 20_000);
  const kind = large ? 'mixed' : r.float() < 0.45 / 0.98 ? 'plain' : r.float() < 0.6 ? 'alternative' : 'mixed';
  const plant = r.chance(0.003);
  const intl = r.chance(0.15);
  const tz = r.pick(TZ);

  const h: string[] = [
    `Return-Path: <${from.addr}>`,
    `Received: from mx${r.int(1, 9)}.${domain} (mx.${domain} [192.0.2.${r.int(1, 254)}])\r\n\tby mail.example.org (Postfix) with ESMTPS id ${r.u32().toString(16).toUpperCase()}\r\n\tfor <${to[0]!.addr}>; ${rfc5322Date(date + 2000, 0)}`,
    `Message-ID: ${msgid}`,
    `Date: ${rfc5322Date(date, tz)}`,
    `From: ${mailbox(from, r)}`,
    `To: ${to.map((p) => mailbox(p, r)).join(',\r\n ')}`,
  ];
  if (cc.length) h.push(`Cc: ${cc.map((p) => mailbox(p, r)).join(', ')}`);
  h.push(`Subject: ${encodedWord(subject, r)}`);
  if (replyTo) {
    h.push(`In-Reply-To: ${replyTo.msgid}`);
    h.push(`References: ${refs.join('\r\n ')}`);
  }
  if (r.chance(0.4)) h.push(`X-Mailer: ${r.pick(['Thunderbird 115.3.1', 'Apple Mail (2.3731)', 'Microsoft Outlook 16.0', 'mutt/2.2.9'])}`);
  h.push('MIME-Version: 1.0');

  const textSize = kind === 'mixed' ? Math.min(target, r.int(600, 3000)) : Math.max(400, target - 900) / (kind === 'alternative' ? 2.3 : 1);
  let body = text(r, textSize, plant, intl);
  if (replyTo) body += `\r\n\r\nOn ${rfc5322Date(date - 3600_000, 0)}, someone wrote:\r\n` + text(r, 300, false, false).split('\r\n').map((l) => '> ' + l).join('\r\n');
  body += `\r\n\r\n-- \r\n${from.name}\r\n`;
  const qp = intl || r.chance(0.2);
  const plainPart = (hdr: boolean) => {
    const cte = qp ? 'quoted-printable' : /^[\x00-\x7f]*$/.test(body) ? '7bit' : '8bit';
    const content = qp ? quotedPrintable(body) : body;
    return { headers: [`Content-Type: text/plain; charset=${hdr && !intl && r.chance(0.3) ? 'us-ascii' : 'utf-8'}; format=flowed`, `Content-Transfer-Encoding: ${cte}`], content };
  };
  const altPart = () => {
    const b = boundary(r);
    const p = plainPart(false);
    const hb = quotedPrintable(html(body));
    return {
      headers: [`Content-Type: multipart/alternative;\r\n\tboundary="${b}"`],
      content: `--${b}\r\n${p.headers.join('\r\n')}\r\n\r\n${p.content}\r\n--${b}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n${hb}\r\n--${b}--\r\n`,
    };
  };

  let top: { headers: string[]; content: string };
  if (kind === 'plain') top = plainPart(true);
  else if (kind === 'alternative') top = altPart();
  else {
    const b = boundary(r);
    const first = r.chance(0.5) ? altPart() : plainPart(false);
    let content = `This is a multi-part message in MIME format.\r\n\r\n--${b}\r\n${first.headers.join('\r\n')}\r\n\r\n${first.content}\r\n`;
    const nAtt = r.int(1, 3);
    const room = Math.max(1000, target - content.length - 1500);
    for (let a = 0; a < nAtt; a++) {
      const kindA = r.pick(ATTACH);
      const name = `${r.pick(kindA.names)}-${r.int(2015, 2024)}${a ? '-' + a : ''}.${kindA.ext}`;
      const raw = Math.max(200, Math.floor(((room / nAtt) * 57) / 78));
      const disp = kindA.type.startsWith('image/') && r.chance(0.3) ? 'inline' : 'attachment';
      content += `--${b}\r\nContent-Type: ${kindA.type};\r\n\tname="${name}"\r\nContent-Disposition: ${disp};\r\n\tfilename="${name}"\r\nContent-Transfer-Encoding: base64\r\n\r\n${base64Lines(r.bytes(raw))}\r\n`;
    }
    content += `--${b}--\r\n`;
    top = { headers: [`Content-Type: multipart/mixed;\r\n\tboundary="${b}"`], content };
  }
  const data = Buffer.from(`${h.join('\r\n')}\r\n${top.headers.join('\r\n')}\r\n\r\n${top.content}`, 'utf8');

  // Older mail is read; the newest is mostly unread.
  let flags = 0;
  if (r.chance(i < 50 ? 0.5 : 0.85)) flags |= FLAG_SEEN;
  if (replyTo === undefined && r.chance(0.1)) flags |= FLAG_ANSWERED;
  if (r.chance(0.02)) flags |= FLAG_FLAGGED;
  return { data, flags, date };
}

const INDEX_RECORD = 8 + 4 + 1 + 8;

/** Generates (or reuses from `cacheDir`) the first `count` messages of the corpus for `seed`. */
export async function ensureCorpus(cacheDir: string, seed: number, count: number, log: (s: string) => void): Promise<Corpus> {
  // One corpus per seed, grown on demand: the largest generated so far serves every smaller size.
  const dir = path.join(cacheDir, `corpus-s${seed}`);
  const metaFile = path.join(dir, 'meta.json');
  let have = 0;
  if (existsSync(metaFile)) have = (JSON.parse(readFileSync(metaFile, 'utf8')) as { count: number }).count;
  if (have < count) {
    await fs.mkdir(dir, { recursive: true });
    log(`generating corpus seed=${seed} count=${count} in ${dir}`);
    const t0 = Date.now();
    const who = people(seed);
    const thread: ThreadInfo[] = [];
    const fd = openSync(path.join(dir, 'messages.bin'), 'w');
    const idx = Buffer.alloc(count * INDEX_RECORD);
    let off = 0;
    for (let i = 0; i < count; i++) {
      const m = buildMessage(seed, i, who, thread);
      writeSync(fd, m.data);
      idx.writeDoubleLE(off, i * INDEX_RECORD);
      idx.writeUInt32LE(m.data.length, i * INDEX_RECORD + 8);
      idx.writeUInt8(m.flags, i * INDEX_RECORD + 12);
      idx.writeDoubleLE(m.date, i * INDEX_RECORD + 13);
      off += m.data.length;
    }
    closeSync(fd);
    await fs.writeFile(path.join(dir, 'index.bin'), idx);
    await fs.writeFile(metaFile, JSON.stringify({ seed, count, bytes: off }));
    log(`generated ${count} messages, ${(off / 1e6).toFixed(0)} MB, in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
  return openCorpus(dir, seed, count);
}

function openCorpus(dir: string, seed: number, count: number): Corpus {
  const idx = readFileSync(path.join(dir, 'index.bin'));
  const offsets = new Float64Array(count);
  const lengths = new Uint32Array(count);
  const flags = new Uint8Array(count);
  const dates = new Float64Array(count);
  let total = 0;
  for (let i = 0; i < count; i++) {
    offsets[i] = idx.readDoubleLE(i * INDEX_RECORD);
    lengths[i] = idx.readUInt32LE(i * INDEX_RECORD + 8);
    flags[i] = idx.readUInt8(i * INDEX_RECORD + 12);
    dates[i] = idx.readDoubleLE(i * INDEX_RECORD + 13);
    total += lengths[i]!;
  }
  const fd = openSync(path.join(dir, 'messages.bin'), 'r');
  return {
    seed,
    count,
    dir,
    offsets,
    lengths,
    flags,
    dates,
    totalBytes: total,
    message(i) {
      const b = Buffer.allocUnsafe(lengths[i]!);
      let got = 0;
      while (got < b.length) got += readSyncAt(fd, b, got, offsets[i]! + got);
      return b;
    },
    close() {
      closeSync(fd);
    },
  };
}

function readSyncAt(fd: number, b: Buffer, at: number, pos: number): number {
  const n = readSync(fd, b, at, b.length - at, pos);
  if (n <= 0) throw new Error('corpus file is truncated');
  return n;
}

export function flagList(f: number): string[] {
  const out: string[] = [];
  if (f & FLAG_SEEN) out.push('\\Seen');
  if (f & FLAG_ANSWERED) out.push('\\Answered');
  if (f & FLAG_FLAGGED) out.push('\\Flagged');
  return out;
}
