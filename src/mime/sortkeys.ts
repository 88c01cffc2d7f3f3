// Sort and thread keys of a message, computed once when it is stored:
// - the i;unicode-casemap canonical form (RFC 5051 §2), so that comparing
//   two keys as UTF-8 octets (SQLite's BINARY collation, code point order)
//   is the collation RFC 5256 §3 and RFC 5957 §3 require;
// - the base subject (RFC 5256 §2.1) and whether the subject marked a reply
//   or forward (RFC 5256 §4 REFERENCES step 5);
// - the sent date (RFC 5256 §2.2), the first From/To/Cc addr-mailbox
//   (RFC 5256 §3) and the display names (RFC 5957 §3);
// - the Message-ID, References and In-Reply-To ids (RFC 5256 §4).
// Pure: no I/O; imports only the MIME module's own pieces.
import { decodeEncodedWords, fieldValue, type Header } from './header.js';
import { parseAddressList } from './envelope.js';
import type { Address } from './types.js';

/** Longest stored string key, in UTF-16 code units; longer keys are cut (docs/rfc.md: a tie-break beyond it is by sequence number). */
export const MAX_SORT_KEY = 512;
/** Most References ids kept per message (the nearest ancestors are the last ones, RFC 5322 §3.6.4). */
export const MAX_THREAD_REFS = 64;
/** Longest message-id kept (characters); a longer one is treated as absent. */
export const MAX_MESSAGE_ID = 250;

// ---------------------------------------------------------------- i;unicode-casemap

/** Code points whose simple titlecase mapping differs from their simple uppercase mapping (UnicodeData.txt field 14 vs 12). */
const TITLECASE_EXCEPTIONS = new Map<number, number>([
  [0x01c4, 0x01c5], [0x01c5, 0x01c5], [0x01c6, 0x01c5],
  [0x01c7, 0x01c8], [0x01c8, 0x01c8], [0x01c9, 0x01c8],
  [0x01ca, 0x01cb], [0x01cb, 0x01cb], [0x01cc, 0x01cb],
  [0x01f1, 0x01f2], [0x01f2, 0x01f2], [0x01f3, 0x01f2],
]);
/** Per-character results kept (non-ASCII characters only; bounded). */
const CASEMAP_CACHE_MAX = 20_000;
const casemapCache = new Map<number, string>();

/** The simple titlecase mapping of one code point (RFC 5051 §2 step 1), as a string. */
function titlecaseOf(cp: number): string {
  const ex = TITLECASE_EXCEPTIONS.get(cp);
  if (ex !== undefined) return String.fromCodePoint(ex);
  // Georgian Mkhedruli letters are their own titlecase (Unicode 11 added only an uppercase).
  if ((cp >= 0x10d0 && cp <= 0x10fa) || (cp >= 0x10fd && cp <= 0x10ff)) return String.fromCodePoint(cp);
  const s = String.fromCodePoint(cp);
  const up = s.toUpperCase();
  // toUpperCase applies SpecialCasing (ß -> SS); the simple mapping maps one code point to one.
  const single = up.length === 1 || (up.length === 2 && up.codePointAt(0)! > 0xffff);
  return single ? up : s;
}

function casemapChar(cp: number): string {
  let r = casemapCache.get(cp);
  if (r !== undefined) return r;
  // Titlecase, then decompose (compatibility decomposition), until nothing changes (RFC 5051 §2 steps 1-3).
  let s = String.fromCodePoint(cp);
  for (let round = 0; round < 4; round++) {
    let t = '';
    for (const ch of s) t += titlecaseOf(ch.codePointAt(0)!);
    t = t.normalize('NFKD');
    if (t === s) break;
    s = t;
  }
  r = s;
  if (casemapCache.size >= CASEMAP_CACHE_MAX) casemapCache.clear();
  casemapCache.set(cp, r);
  return r;
}

/**
 * The "titlecased canonicalized UTF-8" form of RFC 5051 §2: comparing two
 * results by code point (= UTF-8 octets) is the i;unicode-casemap ordering;
 * equal results are equal strings under it.
 */
export function casemap(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) {
      out += c >= 0x61 && c <= 0x7a ? String.fromCharCode(c - 0x20) : s[i];
      continue;
    }
    const cp = s.codePointAt(i)!;
    if (cp > 0xffff) i++;
    out += casemapChar(cp);
  }
  return out;
}

// ---------------------------------------------------------------- base subject (RFC 5256 §2.1)

const isWsp = (c: string | undefined) => c === ' ' || c === '\t';

/** Length of a subj-blob ("[" *BLOBCHAR "]" *WSP) at `i`, or 0. */
function blobAt(s: string, i: number): number {
  if (s[i] !== '[') return 0;
  let j = i + 1;
  while (j < s.length && s[j] !== '[' && s[j] !== ']') j++;
  if (s[j] !== ']') return 0;
  j++;
  while (isWsp(s[j])) j++;
  return j - i;
}

/** Length of a subj-refwd (("re" / "fw" ["d"]) *WSP [subj-blob] ":") at `i`, or 0. */
function refwdAt(s: string, i: number): number {
  const l = s.slice(i, i + 3).toLowerCase();
  let j: number;
  if (l.startsWith('re')) j = i + 2;
  else if (l === 'fwd') j = i + 3;
  else if (l.startsWith('fw')) j = i + 2;
  else return 0;
  while (isWsp(s[j])) j++;
  j += blobAt(s, j);
  return s[j] === ':' ? j + 1 - i : 0;
}

/** Length of a subj-leader ((*subj-blob subj-refwd) / WSP) at `i`, or 0. */
function leaderAt(s: string, i: number): number {
  if (isWsp(s[i])) return 1;
  let j = i;
  for (;;) {
    const r = refwdAt(s, j);
    if (r > 0) return j + r - i;
    const b = blobAt(s, j);
    if (b === 0) return 0;
    j += b;
  }
}

export interface BaseSubject {
  /** The base subject, decoded, whitespace-normalised (not yet casemapped). */
  base: string;
  /** Whether a reply/forward marker was removed (RFC 5256 §4 REFERENCES step 5: "Re:", "Fwd:", "(fwd)", "[fwd: ...]"). */
  isReply: boolean;
}

/** RFC 5256 §2.1 steps 1-7 on an unfolded Subject value (RFC 2047 words are decoded here). */
export function baseSubject(subject: string | null): BaseSubject {
  if (subject === null) return { base: '', isReply: false };
  // (1) decode, then tabs and runs of spaces become one space.
  let s = decodeEncodedWords(subject).replace(/[\t\r\n ]+/g, ' ');
  let isReply = false;
  for (;;) {
    // (2) trailing "(fwd)" and whitespace.
    for (;;) {
      if (isWsp(s[s.length - 1])) s = s.slice(0, -1);
      else if (s.length >= 5 && s.slice(-5).toLowerCase() === '(fwd)') {
        s = s.slice(0, -5);
        isReply = true;
      } else break;
    }
    // (3)-(5) leaders and leading blobs.
    for (let changed = true; changed;) {
      changed = false;
      const l = leaderAt(s, 0);
      if (l > 0) {
        if (!isWsp(s[0])) isReply = true;
        s = s.slice(l);
        changed = true;
        continue;
      }
      const b = blobAt(s, 0);
      if (b > 0 && b < s.length) {
        // Only when what is left is a non-empty subj-base (not just whitespace).
        const rest = s.slice(b);
        if (rest.trim() !== '') {
          s = rest;
          changed = true;
        }
      }
    }
    // (6) "[fwd:" ... "]".
    if (s.length >= 6 && s.slice(0, 5).toLowerCase() === '[fwd:' && s.endsWith(']')) {
      s = s.slice(5, -1);
      isReply = true;
      continue;
    }
    break;
  }
  return { base: s, isReply };
}

// ---------------------------------------------------------------- dates (RFC 5256 §2.2, RFC 5322 §3.3, §4.3)

const MONTHS: Record<string, number> = { jan: 0, feb: 1, mar: 2, apr: 3, may: 4, jun: 5, jul: 6, aug: 7, sep: 8, oct: 9, nov: 10, dec: 11 };
/** RFC 5322 §4.3 obsolete zone names, in minutes east of UTC (military letters other than Z count as +0000, as §4.3 advises). */
const ZONES: Record<string, number> = { ut: 0, gmt: 0, z: 0, est: -300, edt: -240, cst: -360, cdt: -300, mst: -420, mdt: -360, pst: -480, pdt: -420 };
const DATE_RE = /^\s*(?:[A-Za-z]{3,}\s*,\s*)?(\d{1,2})\s*[-\s]\s*([A-Za-z]{3})[A-Za-z]*\s*[-\s]\s*(\d{2,4})\s+(\d{1,2})\s*:\s*(\d{2})(?:\s*:\s*(\d{2}))?\s*(?:([+-])(\d{2})(\d{2})|([A-Za-z]+))?/;

/** The sent date of a Date header in ms since the epoch (UTC), or null when it cannot be parsed. */
export function sentDateOf(value: string | null): number | null {
  if (!value) return null;
  const m = DATE_RE.exec(value);
  if (!m) return null;
  const mon = MONTHS[m[2]!.toLowerCase()];
  if (mon === undefined) return null;
  let year = Number(m[3]);
  // RFC 5322 §4.3: two-digit years are 1950-2049, three-digit ones add 1900.
  if (m[3]!.length === 2) year += year < 50 ? 2000 : 1900;
  else if (m[3]!.length === 3) year += 1900;
  const day = Number(m[1]);
  const hour = Number(m[4]);
  const min = Number(m[5]);
  const sec = m[6] ? Number(m[6]) : 0;
  if (day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60) return null;
  let offset = 0;
  if (m[7]) offset = (m[7] === '-' ? -1 : 1) * (Number(m[8]) * 60 + Number(m[9]));
  else if (m[10]) offset = ZONES[m[10].toLowerCase()] ?? 0; // RFC 5256 §2.2: an invalid zone is UTC
  return Date.UTC(year, mon, day, hour, min, sec) - offset * 60_000;
}

// ---------------------------------------------------------------- addresses (RFC 5256 §3, RFC 5957 §3)

/**
 * The first address structure of a list as ENVELOPE has it (RFC 9051 §7.5.2):
 * a group's start marker counts, its addr-mailbox being the group name (as
 * Dovecot does: "undisclosed-recipients:;" sorts by that name).
 */
function firstAddress(list: Address[] | null): Address | null {
  if (!list) return null;
  for (const a of list) if (a.mailbox !== null) return a;
  return null;
}

function cut(s: string): string {
  return s.length > MAX_SORT_KEY ? s.slice(0, MAX_SORT_KEY) : s;
}

/** RFC 5256 §3 FROM/TO/CC: the addr-mailbox of the first address, casemapped ("" when absent). */
export function addressKey(value: string | null): string {
  const a = firstAddress(value === null ? null : parseAddressList(value));
  return a ? cut(casemap(a.mailbox ?? '')) : '';
}

/**
 * RFC 5957 §3 DISPLAYFROM/DISPLAYTO: the display name of the first address
 * (RFC 2047-decoded), or its addr-spec (mailbox@host) when it has none, casemapped.
 */
export function displayKey(value: string | null): string {
  const a = firstAddress(value === null ? null : parseAddressList(value));
  if (!a) return '';
  const name = a.name === null ? '' : decodeEncodedWords(a.name).trim();
  return cut(casemap(name !== '' ? name : a.host === null ? (a.mailbox ?? '') : `${a.mailbox}@${a.host}`));
}

// ---------------------------------------------------------------- message ids (RFC 5256 §4 step 1, RFC 5322 §3.6.4)

/** The "<...>" message ids in a header value, in order, without the angle brackets. */
export function messageIds(value: string | null): string[] {
  if (!value) return [];
  const out: string[] = [];
  let i = 0;
  while (i < value.length) {
    const lt = value.indexOf('<', i);
    if (lt < 0) break;
    const gt = value.indexOf('>', lt + 1);
    if (gt < 0) break;
    // RFC 5256 §4: ids differing only in quoting are the same ("a"@b = a@b); whitespace is folding.
    // Everything up to ">" is the id, as Dovecot reads it: "<junk <a@b>" is one (unknown) id, not <a@b>.
    const id = value.slice(lt + 1, gt).replace(/[\s"]+/g, '');
    if (id.length > 0 && id.length <= MAX_MESSAGE_ID) out.push(id);
    i = gt + 1;
  }
  return out;
}

// ---------------------------------------------------------------- all keys of a message

export interface SortKeys {
  /** Casemapped base subject. */
  subject: string;
  /** The subject was a reply or forward (RFC 5256 §4 step 5). */
  isReply: boolean;
  from: string;
  to: string;
  cc: string;
  displayFrom: string;
  displayTo: string;
  /** Sent date in ms, or null (the store uses INTERNALDATE then, RFC 5256 §2.2). */
  date: number | null;
  /** Message-ID, or null when absent or unusable. */
  messageId: string | null;
  /** References ids (the last MAX_THREAD_REFS), space-separated; "" when none. */
  references: string;
  /** The first In-Reply-To id, or null. */
  inReplyTo: string | null;
}

/** Every sort and thread key of a message's top-level header. */
export function sortKeysOf(header: Header): SortKeys {
  // Unlabelled 8-bit header bytes that are not UTF-8 cannot be converted (RFC 5051 §2: compared
  // as they are); as Dovecot, they become U+FFFD, which sorts after every other character.
  const get = (name: string): string | null => {
    const f = header.field(name);
    return f ? fieldValue(header.raw, f, 'utf-8') : null;
  };
  const b = baseSubject(get('subject'));
  const refs = messageIds(get('references'));
  const ownId = messageIds(get('message-id'))[0] ?? null;
  return {
    subject: cut(casemap(b.base)),
    isReply: b.isReply,
    from: addressKey(get('from')),
    to: addressKey(get('to')),
    cc: addressKey(get('cc')),
    displayFrom: displayKey(get('from')),
    displayTo: displayKey(get('to')),
    date: sentDateOf(get('date')),
    messageId: ownId,
    references: refs.slice(-MAX_THREAD_REFS).join(' '),
    inReplyTo: messageIds(get('in-reply-to'))[0] ?? null,
  };
}
