// IMAP URLs naming a message or a part of one (RFC 5092 §3 imessagepart,
// with RFC 5550 §5 ;PARTIAL= and the RFC 4467 §3 ;EXPIRE= / ;URLAUTH=
// additions), as CATENATE (RFC 4469 §3: relative URLs of the session's own
// mailboxes), GENURLAUTH and URLFETCH (RFC 4467 §6.3: absolute URLs with a
// user) take them; and reading what such a URL names from the store.
//
// Pure parsing: no RegExp is built from client input, every field is bounded.
import type { MailStore, MessageBody } from '../store/types.js';
import { parseSectionText, sectionRange } from '../mime/index.js';
import type { SectionSpec } from './fetch-items.js';
import { messageStructure, extractSection } from './mime-bridge.js';

/** Longest URL accepted (RFC 5092 sets none): a mailbox name, a section with a field list and a token fit easily. */
export const MAX_URL_LENGTH = 4096;

export interface ImapUrl {
  /** Absolute form: "imap://user@host[:port]/..." (GENURLAUTH, URLFETCH); false for CATENATE's relative forms. */
  absolute: boolean;
  /** Decoded enc-user (absolute form). */
  user?: string;
  host?: string;
  port?: number;
  /** Decoded mailbox name; undefined when a relative URL starts with ";UID=" (the selected mailbox). */
  mailbox?: string;
  uidValidity?: number;
  uid: number;
  section?: SectionSpec;
  /** RFC 5092 §3 / RFC 5550 §5 partial-range: offset and optional length. */
  partial?: { offset: number; length?: number };
  /** RFC 4467 §3 ;EXPIRE=, ms since the epoch. */
  expire?: number;
  /** RFC 4467 §3 access identifier as written ("submit+fred", "anonymous", ...). */
  access?: string;
  /** Mechanism and token after the access identifier (a full URLAUTH URL). */
  mech?: string;
  token?: string;
  /** The URL up to and including the access identifier (RFC 4467 §6 rump URL): what the token signs. */
  rump?: string;
}

export class UrlError extends Error {}

function fail(why: string): never {
  throw new UrlError(why);
}

/** Percent-decoding (RFC 3986 §2.1) into UTF-8 text; a malformed escape or invalid UTF-8 is an error. */
export function percentDecode(s: string): string {
  if (!s.includes('%')) return s;
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x25) {
      const h = s.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(h)) fail('Invalid percent escape');
      bytes.push(parseInt(h, 16));
      i += 2;
    } else bytes.push(c);
  }
  const buf = Buffer.from(bytes);
  const text = buf.toString('utf8');
  if (!Buffer.from(text, 'utf8').equals(buf)) fail('Percent escapes are not UTF-8');
  return text;
}

const NZ = /^[1-9][0-9]{0,9}$/;
const NUM = /^(0|[1-9][0-9]{0,9})$/;

function nzNumber(s: string, what: string): number {
  if (!NZ.test(s)) fail(`Invalid ${what}`);
  const n = Number(s);
  if (n > 0xffffffff) fail(`Invalid ${what}`);
  return n;
}

/** RFC 3339 date-time (RFC 4467 §9 expire): a full date, a time with seconds, a zone. */
function dateTime(s: string): number {
  const m = /^([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})$/.exec(s);
  if (!m) fail('Invalid EXPIRE date-time');
  const ms = Date.parse(s.toUpperCase());
  if (!Number.isFinite(ms)) fail('Invalid EXPIRE date-time');
  return ms;
}

/** An enc-section (RFC 5092 §3): a FETCH section-text, percent-decoded; HEADER.FIELDS carries its field list. */
function sectionOf(raw: string): SectionSpec {
  const text = percentDecode(raw);
  if (text.length === 0 || text.length > 1024) fail('Invalid SECTION');
  const sp = text.indexOf(' ');
  const head = sp < 0 ? text : text.slice(0, sp);
  const parsed = parseSectionText(head);
  if (!parsed) fail('Invalid SECTION');
  const kind = parsed.text;
  if (kind === 'HEADER.FIELDS' || kind === 'HEADER.FIELDS.NOT') {
    const rest = sp < 0 ? '' : text.slice(sp + 1);
    if (rest.length < 3 || rest[0] !== '(' || rest[rest.length - 1] !== ')') fail('Invalid SECTION field list');
    const fields = rest.slice(1, -1).split(' ');
    // RFC 5322 §3.6.8 field names: printable ASCII except ":".
    if (fields.some((f) => !/^[\x21-\x39\x3b-\x7e]{1,200}$/.test(f))) fail('Invalid SECTION field name');
    return { path: parsed.path, kind, fields };
  }
  if (sp >= 0) fail('Invalid SECTION');
  return { path: parsed.path, kind };
}

/**
 * Parses a URL naming a message or message part. `relative`: the forms
 * CATENATE takes (RFC 4469 §3: no scheme or server; "/mailbox/;UID=n..." or,
 * selected, ";UID=n..."); otherwise "imap://user[;AUTH=..]@host[:port]/...".
 * Throws UrlError saying what is wrong.
 */
export function parseImapUrl(url: string, relative: boolean): ImapUrl {
  if (url.length === 0 || url.length > MAX_URL_LENGTH) fail('Invalid URL length');
  // URLs are ASCII (RFC 3986 §2); anything else must be percent-encoded.
  if (!/^[\x21-\x7e]+$/.test(url)) fail('URL contains characters that must be percent-encoded');
  const out: ImapUrl = { absolute: false, uid: 0 };
  let rest: string;
  if (url.slice(0, 7).toLowerCase() === 'imap://') {
    if (relative) fail('Relative URL required');
    out.absolute = true;
    const slash = url.indexOf('/', 7);
    if (slash < 0) fail('URL names no message');
    const authority = url.slice(7, slash);
    const at = authority.lastIndexOf('@');
    // RFC 4467 §6.3 (2): the user is mandatory in a URLAUTH URL.
    if (at <= 0) fail('Missing user name');
    let userinfo = authority.slice(0, at);
    const auth = userinfo.toUpperCase().indexOf(';AUTH=');
    if (auth >= 0) {
      const mech = userinfo.slice(auth + 6);
      if (mech !== '*' && !/^[A-Za-z0-9\-_.+%]{1,64}$/.test(mech)) fail('Invalid AUTH type');
      userinfo = userinfo.slice(0, auth);
    }
    if (userinfo.length === 0 || userinfo.includes(';') || userinfo.includes(':')) fail('Invalid user name');
    out.user = percentDecode(userinfo);
    const hostport = authority.slice(at + 1);
    const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~%]+)(?::([0-9]{1,5}))?$/.exec(hostport);
    if (!m) fail('Invalid host');
    out.host = m[1]!;
    if (m[2] !== undefined) {
      out.port = Number(m[2]);
      if (out.port < 1 || out.port > 65535) fail('Invalid port');
    }
    rest = url.slice(slash + 1);
  } else if (url.startsWith('//')) {
    fail(relative ? 'Relative URL required' : 'Relative URL not allowed');
  } else if (!relative) {
    fail('Relative URL not allowed');
  } else if (url.startsWith('/')) {
    rest = url.slice(1);
  } else if (url.slice(0, 5).toUpperCase() === ';UID=') {
    rest = url; // the selected mailbox (RFC 4469 §3: the base is imap://user@server/<mailbox>)
  } else {
    fail('Invalid relative URL');
  }

  // imailbox-ref: enc-mailbox (no ";" unescaped: RFC 5092 bchar) then optional ;UIDVALIDITY=.
  let i = rest.indexOf(';');
  if (i < 0) fail('URL names no message'); // a mailbox, a server or a search (RFC 4467 §3: never a URLAUTH URL)
  if (i === 0) {
    if (!relative || url.startsWith('/')) fail('Missing mailbox name');
  } else {
    let mb = rest.slice(0, i);
    if (mb.includes('?')) fail('URL names a search, not a message');
    // The "/" before ;UID= belongs to iuid, not to the mailbox name.
    if (mb.endsWith('/')) {
      mb = mb.slice(0, -1);
      i--;
    }
    if (mb.length === 0) fail('Missing mailbox name');
    out.mailbox = percentDecode(mb);
  }
  let p = nextParam(rest, i);
  if (p.key === 'UIDVALIDITY') {
    if (p.slash || out.mailbox === undefined) fail('Misplaced ;UIDVALIDITY=');
    out.uidValidity = nzNumber(p.value, 'UIDVALIDITY');
    p = nextParam(rest, p.end);
  }
  if (p.key !== 'UID') fail('URL names no message');
  if (out.mailbox !== undefined && !p.slash) fail("Encountered stray ';' in mailbox reference");
  out.uid = nzNumber(p.value, 'UID');
  i = p.end;
  const order = ['SECTION', 'PARTIAL', 'EXPIRE', 'URLAUTH'];
  let at = 0;
  while (i < rest.length) {
    p = nextParam(rest, i);
    const k = order.indexOf(p.key, at);
    if (k < 0) fail(`Unrecognized IMAP URL extension: ${p.key.slice(0, 20)}`);
    at = k + 1;
    // isection and ipartial are "/"-introduced; expire and iurlauth follow directly (RFC 5092 §11, RFC 4467 §9).
    if (p.slash !== (k < 2)) fail(`Misplaced ;${p.key}=`);
    if (p.key === 'SECTION') out.section = sectionOf(p.value);
    else if (p.key === 'PARTIAL') {
      const dot = p.value.indexOf('.');
      const off = dot < 0 ? p.value : p.value.slice(0, dot);
      if (!NUM.test(off)) fail('Invalid PARTIAL');
      out.partial = { offset: Number(off) };
      if (dot >= 0) {
        const len = p.value.slice(dot + 1);
        if (len === '0') fail('PARTIAL size cannot be zero');
        out.partial.length = nzNumber(len, 'PARTIAL');
      }
    } else if (p.key === 'EXPIRE') out.expire = dateTime(p.value);
    else {
      // RFC 4467 §9: ";URLAUTH=" access [":" mechanism ":" enc-urlauth], last in the URL.
      const v = p.value;
      const c = v.indexOf(':');
      out.access = c < 0 ? v : v.slice(0, c);
      out.rump = url.slice(0, url.length - rest.length + p.valueStart + out.access.length);
      if (c >= 0) {
        const c2 = v.indexOf(':', c + 1);
        if (c2 < 0) fail('Invalid URLAUTH');
        out.mech = v.slice(c + 1, c2);
        out.token = v.slice(c2 + 1);
        if (!/^[A-Za-z0-9\-.]{1,64}$/.test(out.mech)) fail('Invalid URLAUTH mechanism');
        if (!/^[0-9A-Fa-f]{32,256}$/.test(out.token)) fail('Too short URLAUTH token');
      }
      if (p.end !== rest.length) fail(';URLAUTH= must end the URL');
    }
    i = p.end;
  }
  return out;
}

interface Param {
  key: string;
  value: string;
  /** Where the value starts in the string. */
  valueStart: number;
  /** A "/" came just before the ";". */
  slash: boolean;
  /** Index after the value (at the next "/;" or ";"). */
  end: number;
}

/** The ";KEY=value" at `i` (which points at ";", or at "/;"). Values end at the next ";" (bchar has none), a trailing "/" left for the next. */
function nextParam(s: string, i: number): Param {
  let slash = false;
  if (s[i] === '/') {
    slash = true;
    i++;
  }
  if (s[i] !== ';') fail('Invalid URL');
  const eq = s.indexOf('=', i);
  if (eq < 0) fail('Invalid URL parameter');
  const key = s.slice(i + 1, eq).toUpperCase();
  if (!/^[A-Z]{1,16}$/.test(key)) fail('Invalid URL parameter');
  let end = s.indexOf(';', eq + 1);
  if (end < 0) end = s.length;
  let value = s.slice(eq + 1, end);
  if (end < s.length && value.endsWith('/')) {
    value = value.slice(0, -1);
    end--;
  }
  if (value.length === 0) fail(`Empty ;${key}=`);
  return { key, value, valueStart: eq + 1, slash, end };
}

/** What a URL names in a message: a byte range of the stored body, or bytes built from it (HEADER.FIELDS). */
export type UrlData = { body: MessageBody; start: number; end: number } | { body: MessageBody; bytes: Buffer; missing?: boolean };

export function urlDataSize(d: UrlData): number {
  return 'bytes' in d ? d.bytes.length : d.end - d.start;
}

/**
 * The bytes a message URL names (RFC 5092 §3, as FETCH BODY.PEEK[section]<partial>
 * would answer them, RFC 4469 §3), without reading a contiguous section:
 * null when the message is gone; empty bytes marked `missing` when the part does not exist.
 */
export async function urlData(store: MailStore, mailboxId: number, url: ImapUrl): Promise<UrlData | null> {
  const body = await store.openMessage(mailboxId, url.uid);
  if (!body) return null;
  let d: UrlData;
  const s = url.section ?? { path: [], kind: '' as const };
  if (s.kind === 'HEADER.FIELDS' || s.kind === 'HEADER.FIELDS.NOT') {
    d = { body, bytes: await extractSection(body, s) };
  } else {
    const p = await messageStructure(body);
    const r = sectionRange(p.root, { path: s.path, text: s.kind });
    if (!r) return { body, bytes: Buffer.alloc(0), missing: true };
    d = { body, start: r.start, end: r.end };
  }
  if (url.partial) {
    const size = urlDataSize(d);
    const from = Math.min(url.partial.offset, size);
    const to = url.partial.length === undefined ? size : Math.min(size, from + url.partial.length);
    d = 'bytes' in d ? { ...d, bytes: d.bytes.subarray(from, to) } : { body: d.body, start: d.start + from, end: d.start + to };
  }
  return d;
}

/** Copies the data into `dest` at `at`, streaming a stored range in chunks; returns the bytes written. */
export async function copyUrlData(d: UrlData, dest: Buffer, at: number): Promise<number> {
  if ('bytes' in d) return d.bytes.copy(dest, at);
  let n = 0;
  for await (const chunk of d.body.stream(d.start, d.end)) n += chunk.copy(dest, at + n);
  if (n !== d.end - d.start) throw new Error('message body shorter than its structure says');
  return n;
}
