// A deterministic mailbox for SORT/THREAD tests: conversations with replies
// and forwards ("Re:", "RE:", "Fwd:", "Fw:", "[list]" tags, "(fwd)" trailers,
// "[Fwd: ...]" wrappers, RFC 2047 subjects), References chains (complete,
// truncated, with missing ancestors, with junk between ids, quoted ids),
// In-Reply-To only, duplicate and missing Message-IDs, a reference loop,
// messages without Date or with broken dates and zones, equal dates (ties),
// display names (quoted, encoded, absent), groups and empty address lists.
import { prng } from './rng.js';

export interface ThreadCorpusMessage {
  raw: string;
  /** APPEND's date-time argument. */
  internalDate: string;
}

const NAMES = ['Anna Smith', 'ben jones', '"Chloé Dubois"', '=?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?=', 'Émile Zola', '_under score', 'zed', '', '"O\'Neil, Pat"', 'Ærin'];
const USERS = ['anna', 'Ben', 'chloe', 'jurgen', 'emile', 'under', 'Zed', 'noname', 'pat', 'aerin'];
const DOMAINS = ['example.com', 'EXAMPLE.org', 'lists.example.net'];
const TOPICS = ['budget', 'Budget', 'release 2.4', 'holiday photos', 'server migration', '=?UTF-8?B?w6l0w6kgcGxhbnM=?=', 'ÜBER alles', '[list] weekly sync', 'x', ''];
const ZONES = ['+0000', '-0700', '+0530', 'GMT', 'EST', '+1400', '-1200', 'XYZ', ''];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function pick<T>(r: () => number, a: readonly T[]): T {
  return a[Math.floor(r() * a.length)]!;
}

function addr(r: () => number): string {
  const k = Math.floor(r() * NAMES.length);
  const mail = `${USERS[k]}@${pick(r, DOMAINS)}`;
  const name = NAMES[k]!;
  return name === '' ? (r() < 0.5 ? mail : `<${mail}>`) : `${name} <${mail}>`;
}

function dateHeader(r: () => number, t: number): string | null {
  const roll = r();
  if (roll < 0.05) return null;
  if (roll < 0.08) return 'not a date';
  const d = new Date(t);
  const zone = pick(r, ZONES);
  const day = r() < 0.7 ? `${['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'][d.getUTCDay()]}, ` : '';
  const year = r() < 0.05 ? String(d.getUTCFullYear() % 100).padStart(2, '0') : String(d.getUTCFullYear());
  const p2 = (n: number) => String(n).padStart(2, '0');
  return `${day}${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${year} ${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}${r() < 0.9 ? ':' + p2(d.getUTCSeconds()) : ''}${zone ? ' ' + zone : ''}`;
}

function internal(t: number): string {
  const d = new Date(t);
  const p2 = (n: number) => String(n).padStart(2, '0');
  return `${p2(d.getUTCDate())}-${MONTHS[d.getUTCMonth()]}-${d.getUTCFullYear()} ${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())} +0000`;
}

/** `count` messages for `seed` (the same every time). */
export function threadCorpus(seed: number, count: number): ThreadCorpusMessage[] {
  const r = prng(seed);
  const out: ThreadCorpusMessage[] = [];
  const sent: { id: string; subject: string; refs: string[] }[] = [];
  const base = Date.UTC(2023, 0, 1);
  for (let i = 0; i < count; i++) {
    // Many equal timestamps (minute resolution, some exact repeats) to exercise the tie-breaks.
    const t = base + Math.floor(r() * 3000) * 60_000 * (r() < 0.1 ? 0 : 1);
    let id: string | null = `<m${i}.${seed}@${pick(r, DOMAINS)}>`;
    const idRoll = r();
    if (idRoll < 0.04) id = null;
    else if (idRoll < 0.08 && sent.length) id = sent[Math.floor(r() * sent.length)]!.id; // a duplicate
    else if (idRoll < 0.1) id = `<"m${i}"@${DOMAINS[0]}>`;
    let subject = pick(r, TOPICS);
    let refs: string[] = [];
    const h: string[] = [];
    if (sent.length && r() < 0.55) {
      const parent = sent[Math.floor(sent.length - 1 - Math.floor(Math.pow(r(), 2) * Math.min(sent.length, 60)))]!;
      const chain = [...parent.refs, parent.id];
      const how = r();
      if (how < 0.5) refs = chain;
      else if (how < 0.65) refs = chain.slice(-2); // truncated
      else if (how < 0.75) refs = [...chain.slice(0, -1), `<gone${i}@nowhere>`, parent.id]; // an ancestor never seen
      else if (how < 0.85) h.push(`In-Reply-To: ${parent.id} (sent by someone)`);
      else if (how < 0.9) h.push(`In-Reply-To: "quoted text" ${parent.id}`);
      else refs = [`<junk`, ...chain]; // a broken first id
      if (refs.length) h.push(`References: ${refs.join(r() < 0.5 ? ' ' : '\r\n\t')}`);
      const pre = pick(r, ['Re: ', 'RE: ', 're:', 'Fwd: ', 'Fw: ', 'Re[2]: ', '[list] Re: ', 'Re: Re: ', '', '']);
      subject = pre + parent.subject;
      if (r() < 0.05) subject = `[Fwd: ${parent.subject}]`;
      if (r() < 0.05) subject = `${parent.subject} (fwd)`;
    }
    if (i === 7 && sent.length > 3) {
      // A loop: this message claims to precede an earlier one that references it.
      h.push(`References: ${sent[3]!.id} <m7.${seed}@loop>`);
      id = `<m7.${seed}@loop>`;
    }
    sent.push({ id: id ?? `<none${i}>`, subject, refs });
    const date = dateHeader(r, t);
    const head = [
      ...(r() < 0.97 ? [`From: ${addr(r)}`] : []),
      ...(r() < 0.9 ? [`To: ${r() < 0.05 ? 'undisclosed-recipients:;' : addr(r)}${r() < 0.3 ? `, ${addr(r)}` : ''}`] : []),
      ...(r() < 0.3 ? [`Cc: ${addr(r)}`] : []),
      ...(subject !== '' || r() < 0.5 ? [`Subject: ${subject}`] : []),
      ...(date ? [`Date: ${date}`] : []),
      ...(id ? [`Message-ID: ${id}`] : []),
      ...h,
    ];
    const body = `message ${i}\r\n${'x'.repeat(Math.floor(r() * 400))}\r\n`;
    out.push({ raw: `${head.join('\r\n')}\r\n\r\n${body}`, internalDate: internal(t + Math.floor(r() * 5) * 1000) });
  }
  return out;
}
