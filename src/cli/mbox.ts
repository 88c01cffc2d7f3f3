// mbox for `quire import mbox` / `quire export mbox`.
//
// Reading: a message starts at a "From " line at the start of the file or
// after an empty line. Unescaping follows the chosen variant: mboxrd removes
// one ">" from every ">*From " line, mboxo only turns ">From " into "From ".
// Flags come from the Status (R \Seen) and X-Status (A \Answered, F \Flagged,
// T \Draft, D \Deleted) headers and keywords from X-Keywords; those headers
// and Dovecot's X-UID / X-IMAP / X-IMAPbase are removed from the stored message.
// INTERNALDATE is the date on the "From " line.
//
// Writing is always mboxrd (lossless): ">" is added to every ">*From " line.

import { promises as fs } from 'node:fs';

export type MboxVariant = 'mboxrd' | 'mboxo';

export interface MboxMessage {
  flags: string[];
  internalDate: number | undefined;
  /** The message with LF line ends as in the file, metadata headers removed. */
  data: Buffer;
}

const META_HEADERS = /^(status|x-status|x-keywords|x-uid|x-imap|x-imapbase|content-length):/i;

/** Splits an mbox buffer into messages (LF or CRLF line ends). */
export function parseMbox(buf: Buffer, variant: MboxVariant = 'mboxrd'): MboxMessage[] {
  const text = buf.toString('latin1');
  const starts: number[] = [];
  if (text.startsWith('From ')) starts.push(0);
  const re = /\r?\n\r?\n(From )/g;
  for (let m = re.exec(text); m; m = re.exec(text)) starts.push(m.index + m[0].length - 5);
  const out: MboxMessage[] = [];
  for (let i = 0; i < starts.length; i++) {
    const s = starts[i]!;
    const end = i + 1 < starts.length ? starts[i + 1]! : text.length;
    const nl = text.indexOf('\n', s);
    if (nl < 0 || nl >= end) continue;
    const fromLine = text.slice(s, nl).replace(/\r$/, '');
    let body = text.slice(nl + 1, end);
    // The empty line before the next "From " is the separator, not part of the message.
    // The last message may be followed by the same separator line (as writers like ours add).
    if (i + 1 < starts.length || /\r?\n\r?\n$/.test(body)) body = body.replace(/\r?\n$/, '');
    out.push(messageOf(fromLine, body, variant));
  }
  return out;
}

function messageOf(fromLine: string, raw: string, variant: MboxVariant): MboxMessage {
  const lines = raw.split('\n');
  const unescaped = lines.map((l) => (variant === 'mboxrd' ? l.replace(/^>(>*From )/, '$1') : l.replace(/^>From /, 'From ')));
  const flags: string[] = [];
  const kept: string[] = [];
  let inHeader = true;
  let skippingMeta = false;
  for (const l of unescaped) {
    if (inHeader) {
      if (l === '' || l === '\r') {
        inHeader = false;
        kept.push(l);
        continue;
      }
      if (/^[ \t]/.test(l) && skippingMeta) continue;
      skippingMeta = false;
      const m = META_HEADERS.exec(l);
      if (m) {
        skippingMeta = true;
        const value = l.slice(l.indexOf(':') + 1).trim();
        const name = m[1]!.toLowerCase();
        if (name === 'status' && value.includes('R')) flags.push('\\Seen');
        if (name === 'x-status') {
          if (value.includes('A')) flags.push('\\Answered');
          if (value.includes('F')) flags.push('\\Flagged');
          if (value.includes('T')) flags.push('\\Draft');
          if (value.includes('D')) flags.push('\\Deleted');
        }
        if (name === 'x-keywords') for (const k of value.split(/[\s,]+/)) if (k && /^[^\\()*%"\]{]+$/.test(k)) flags.push(k);
        continue;
      }
    }
    kept.push(l);
  }
  const date = Date.parse(fromLine.replace(/^From \S+\s+/, '').replace(/\s+/g, ' '));
  return { flags, internalDate: Number.isFinite(date) ? date : undefined, data: Buffer.from(kept.join('\n'), 'latin1') };
}

export async function readMbox(file: string, variant: MboxVariant): Promise<MboxMessage[]> {
  return parseMbox(await fs.readFile(file), variant);
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** asctime() form used on "From " lines, in UTC. */
function asctime(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${DAYS[d.getUTCDay()]} ${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} ${d.getUTCFullYear()}`;
}

/** One message in mboxrd form with Status/X-Status/X-Keywords; `data` in LF form. */
export function formatMboxMessage(data: Buffer, flags: string[], internalDate: number, sender = 'MAILER-DAEMON'): Buffer {
  const text = data.toString('latin1');
  const headerEnd = text.search(/\n\r?\n|^\r?\n/);
  const head = headerEnd < 0 ? text.replace(/\n?$/, '') : text.slice(0, headerEnd);
  const rest = headerEnd < 0 ? '\n' : text.slice(headerEnd + 1);
  const lower = flags.map((f) => f.toLowerCase());
  const status = (lower.includes('\\seen') ? 'R' : '') + 'O';
  const xs = (lower.includes('\\answered') ? 'A' : '') + (lower.includes('\\flagged') ? 'F' : '') + (lower.includes('\\draft') ? 'T' : '') + (lower.includes('\\deleted') ? 'D' : '');
  const keywords = flags.filter((f) => !f.startsWith('\\'));
  const meta = [`Status: ${status}`];
  if (xs) meta.push(`X-Status: ${xs}`);
  if (keywords.length > 0) meta.push(`X-Keywords: ${keywords.join(' ')}`);
  const body = `${head}${head ? '\n' : ''}${meta.join('\n')}\n${rest}`.replace(/^(>*From )/gm, '>$1');
  return Buffer.from(`From ${sender} ${asctime(internalDate)}\n${body}${body.endsWith('\n') ? '' : '\n'}\n`, 'latin1');
}
