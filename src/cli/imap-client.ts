// A small IMAP client for `quire import imap`: just what a one-way copy
// needs (greeting, CAPABILITY, STARTTLS, LOGIN, LIST, EXAMINE, UID SEARCH,
// UID FETCH, APPEND, LOGOUT), no pipelining beyond one command at a time.
//
// Responses are framed by ResponseReader (sans-I/O: fed chunks, it yields
// whole responses with their literals, RFC 9051 §7 / §4.3) and tokenised by
// tokenize(). Commands are built only from values the client checks itself:
// atoms, quoted strings (refused if they hold CR/LF/NUL, RFC 9051 §4.3), or
// literals, so a mailbox name or password can never inject a command.

import net from 'node:net';
import tls from 'node:tls';
import { decodeMutf7, encodeMutf7, quoted } from '../wire/index.js';

/** Longest response line we accept (without literals); a source server sending more is broken. */
export const CLIENT_MAX_LINE = 1024 * 1024;
/** Largest literal we accept in a response (a message body); bigger messages cannot be imported. */
export const CLIENT_MAX_LITERAL = 1024 * 1024 * 1024;
/** How long we wait for any response before giving up on the source server. */
export const CLIENT_TIMEOUT_MS = 120_000;

/** One response: its lines, with literals between them (lines.length === literals.length + 1). */
export interface RawResponse {
  lines: string[];
  literals: Buffer[];
}

export class ImapClientError extends Error {}

/** Push-style framer: feed() bytes, take() complete responses. */
export class ResponseReader {
  private buf: Buffer = Buffer.alloc(0);
  private cur: RawResponse = { lines: [], literals: [] };
  private need = -1; // > = 0 while reading a literal of that many bytes
  private readonly out: RawResponse[] = [];

  feed(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    for (;;) {
      if (this.need >= 0) {
        if (this.buf.length < this.need) return;
        this.cur.literals.push(this.buf.subarray(0, this.need));
        this.buf = this.buf.subarray(this.need);
        this.need = -1;
        continue;
      }
      const nl = this.buf.indexOf(0x0a);
      if (nl < 0) {
        if (this.buf.length > CLIENT_MAX_LINE) throw new ImapClientError('response line too long');
        return;
      }
      const line = this.buf.subarray(0, nl > 0 && this.buf[nl - 1] === 0x0d ? nl - 1 : nl).toString('latin1');
      this.buf = this.buf.subarray(nl + 1);
      this.cur.lines.push(line);
      const at = literalMarkerAt(line);
      if (at >= 0) {
        const n = Number(line.slice(line.indexOf('{', at) + 1, line.endsWith('+}') ? -2 : -1));
        if (n > CLIENT_MAX_LITERAL) throw new ImapClientError(`literal of ${n} bytes is too large`);
        this.need = n;
        continue;
      }
      this.out.push(this.cur);
      this.cur = { lines: [], literals: [] };
    }
  }

  take(): RawResponse | undefined {
    return this.out.shift();
  }

  /** Bytes received but not yet part of a response (must be none right after a STARTTLS OK). */
  get pending(): number {
    return this.buf.length + this.cur.lines.length;
  }
}

export type Token = { t: 'atom'; v: string } | { t: 'str'; v: Buffer } | { t: 'nil' } | { t: 'list'; v: Token[] };

/** Tokens of a response (after the tag): atoms (with any [...] section kept inside), strings, literals, lists. */
export function tokenize(r: RawResponse): Token[] {
  const root: Token[] = [];
  const stack: Token[][] = [root];
  for (let li = 0; li < r.lines.length; li++) {
    const s = r.lines[li]!;
    const marker = literalMarkerAt(s);
    let i = 0;
    const top = () => stack[stack.length - 1]!;
    while (i < s.length) {
      const c = s[i]!;
      if (c === ' ') {
        i++;
      } else if (c === '(') {
        const l: Token[] = [];
        top().push({ t: 'list', v: l });
        stack.push(l);
        i++;
      } else if (c === ')') {
        if (stack.length > 1) stack.pop();
        i++;
      } else if (c === '"') {
        let j = i + 1;
        let v = '';
        while (j < s.length && s[j] !== '"') {
          if (s[j] === '\\' && j + 1 < s.length) j++;
          v += s[j];
          j++;
        }
        top().push({ t: 'str', v: Buffer.from(v, 'latin1') });
        i = j + 1;
      } else if ((c === '{' || (c === '~' && s[i + 1] === '{')) && (i === marker || (i === marker + 1 && s[marker] === '~'))) {
        top().push({ t: 'str', v: r.literals[li] ?? Buffer.alloc(0) });
        i = s.length;
      } else {
        let j = i;
        let depth = 0;
        while (j < s.length) {
          const d = s[j]!;
          if (d === '[') depth++;
          else if (d === ']') depth--;
          else if (depth === 0 && (d === ' ' || d === '(' || d === ')')) break;
          j++;
        }
        const v = s.slice(i, j);
        top().push(v.toUpperCase() === 'NIL' ? { t: 'nil' } : { t: 'atom', v });
        i = j;
      }
    }
  }
  return root;
}

/** Text of an atom or string token. */
export function tokenText(t: Token | undefined): string {
  if (!t) return '';
  if (t.t === 'atom') return t.v;
  if (t.t === 'str') return t.v.toString('utf8');
  return '';
}

export interface TaggedResult {
  status: 'OK' | 'NO' | 'BAD';
  text: string;
  untagged: RawResponse[];
}

export interface ConnectOptions {
  host: string;
  port: number;
  security: 'tls' | 'starttls' | 'plain';
  /** Skip certificate verification (self-signed test servers). */
  insecure?: boolean;
  timeoutMs?: number;
}

export interface ListEntry {
  /** Name as the server sent it (modified UTF-7 unless UTF-8 was enabled), for commands. */
  raw: string;
  /** Decoded name with the server's delimiter. */
  name: string;
  delimiter: string | null;
  attributes: string[];
}

export interface FetchedMessage {
  uid: number;
  flags: string[];
  internalDate: string | null;
  size: number | null;
  body: Buffer | null;
}

/** An astring argument: atom when safe, else quoted, else a literal (returned as a Buffer marker). */
function arg(s: string): string | { literal: Buffer } {
  if (/^[!#$&'+,\-./0-9:;<=>?@A-Z^_`a-z|}~]+$/.test(s) && s.toUpperCase() !== 'NIL') return s;
  try {
    if (/^[\x20-\x7e]*$/.test(s)) return quoted(s);
  } catch {
    /* fall through to a literal */
  }
  return { literal: Buffer.from(s, 'utf8') };
}

export class ImapClient {
  private socket!: net.Socket | tls.TLSSocket;
  private reader = new ResponseReader();
  private waiters: ((r: RawResponse | Error) => void)[] = [];
  private queue: RawResponse[] = [];
  private failure: Error | null = null;
  private tagNo = 0;
  capabilities = new Set<string>();

  private constructor(private readonly opts: ConnectOptions) {}

  static async connect(opts: ConnectOptions): Promise<ImapClient> {
    const c = new ImapClient(opts);
    await c.open();
    return c;
  }

  private attach(sock: net.Socket | tls.TLSSocket): void {
    this.socket = sock;
    sock.setTimeout(this.opts.timeoutMs ?? CLIENT_TIMEOUT_MS, () => sock.destroy(new ImapClientError('timed out waiting for the server')));
    sock.on('data', (d: Buffer) => {
      try {
        this.reader.feed(d);
      } catch (err) {
        this.fail(err as Error);
        sock.destroy();
        return;
      }
      for (let r = this.reader.take(); r; r = this.reader.take()) this.deliver(r);
    });
    sock.on('error', (err) => this.fail(err));
    sock.on('close', () => this.fail(new ImapClientError('connection closed by the server')));
  }

  private deliver(r: RawResponse): void {
    const w = this.waiters.shift();
    if (w) w(r);
    else this.queue.push(r);
  }

  private fail(err: Error): void {
    if (!this.failure) this.failure = err;
    for (const w of this.waiters.splice(0)) w(this.failure);
  }

  private next(): Promise<RawResponse> {
    const r = this.queue.shift();
    if (r) return Promise.resolve(r);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => this.waiters.push((x) => (x instanceof Error ? reject(x) : resolve(x))));
  }

  private async open(): Promise<void> {
    const { host, port, security, insecure } = this.opts;
    const sock = await new Promise<net.Socket | tls.TLSSocket>((resolve, reject) => {
      const s =
        security === 'tls'
          ? tls.connect({ host, port, servername: net.isIP(host) ? undefined : host, rejectUnauthorized: !insecure }, () => resolve(s))
          : net.connect({ host, port }, () => resolve(s));
      s.once('error', reject);
    });
    this.attach(sock);
    const greeting = await this.next();
    const g = greeting.lines[0] ?? '';
    if (/^\* BYE/i.test(g)) throw new ImapClientError(`server refused the connection: ${g}`);
    if (!/^\* (OK|PREAUTH)/i.test(g)) throw new ImapClientError(`unexpected greeting: ${g}`);
    this.readCapabilityCode(g);
    if (security === 'starttls') {
      if (this.capabilities.size === 0) await this.capability();
      if (!this.capabilities.has('STARTTLS')) throw new ImapClientError('the server does not offer STARTTLS (use --tls, or --plain on a trusted network)');
      await this.ok('STARTTLS');
      // No plaintext byte may survive the upgrade (RFC 9051 §11.1: injection defence).
      if (this.reader.pending > 0 || this.queue.length > 0) throw new ImapClientError('server sent data after STARTTLS');
      this.socket.removeAllListeners('data');
      this.socket.removeAllListeners('close');
      this.socket.removeAllListeners('error');
      this.socket.setTimeout(0);
      const plain = this.socket;
      const secure = await new Promise<tls.TLSSocket>((resolve, reject) => {
        const s = tls.connect({ socket: plain, servername: net.isIP(host) ? undefined : host, rejectUnauthorized: !insecure }, () => resolve(s));
        s.once('error', reject);
      });
      this.reader = new ResponseReader();
      this.attach(secure);
      this.capabilities.clear();
    }
    if (this.capabilities.size === 0) await this.capability();
  }

  private readCapabilityCode(line: string): void {
    const caps = capabilityCode(line);
    if (caps) this.capabilities = caps;
  }

  async capability(): Promise<Set<string>> {
    const r = await this.ok('CAPABILITY');
    for (const u of r.untagged) {
      const m = /^\* CAPABILITY (.*)$/i.exec(u.lines[0] ?? '');
      if (m) this.capabilities = new Set(m[1]!.toUpperCase().split(' ').filter(Boolean));
    }
    return this.capabilities;
  }

  /** Sends one command; arguments are raw command text or literals. Resolves at its tagged response. */
  async command(...parts: (string | { literal: Buffer })[]): Promise<TaggedResult> {
    if (this.failure) throw this.failure;
    const tag = `Q${++this.tagNo}`;
    const nonSync = this.capabilities.has('LITERAL+');
    let pending = `${tag} `;
    const untagged: RawResponse[] = [];
    const flushTo = (text: string) => this.socket.write(text);
    for (const p of parts) {
      if (typeof p === 'string') {
        pending += p;
        continue;
      }
      pending += `{${p.literal.length}${nonSync ? '+' : ''}}\r\n`;
      flushTo(pending);
      pending = '';
      if (!nonSync) {
        for (;;) {
          const r = await this.next();
          const l = r.lines[0] ?? '';
          if (l.startsWith('+')) break;
          if (l.startsWith(`${tag} `)) throw new ImapClientError(`server refused a literal: ${l}`);
          untagged.push(r);
        }
      }
      this.socket.write(p.literal);
    }
    flushTo(pending + '\r\n');
    for (;;) {
      const r = await this.next();
      const l = r.lines[0] ?? '';
      if (l.startsWith(`${tag} `)) {
        const m = /^\S+ (OK|NO|BAD)\b ?(.*)$/i.exec(l);
        if (!m) throw new ImapClientError(`malformed tagged response: ${l}`);
        return { status: m[1]!.toUpperCase() as TaggedResult['status'], text: m[2]!, untagged };
      }
      untagged.push(r);
    }
  }

  /** Like command, but a NO/BAD becomes an error carrying the server's text. */
  async ok(...parts: (string | { literal: Buffer })[]): Promise<TaggedResult> {
    const r = await this.command(...parts);
    if (r.status !== 'OK') {
      const first = typeof parts[0] === 'string' ? parts[0].split(' ')[0] : 'command';
      throw new ImapClientError(`${first} failed: ${r.status} ${r.text}`);
    }
    return r;
  }

  async login(user: string, password: string): Promise<void> {
    if (this.capabilities.has('LOGINDISABLED')) throw new ImapClientError('the server does not allow LOGIN on this connection (try --tls or --starttls)');
    const u = arg(user);
    const p = arg(password);
    const r = await this.command('LOGIN ', u, ' ', p);
    if (r.status !== 'OK') throw new ImapClientError(`login failed: ${r.text}`);
    const cap = capabilityCode(r.text);
    if (cap) this.capabilities = cap;
    else await this.capability();
  }

  /** Every mailbox (LIST "" "*"), names decoded from modified UTF-7. */
  async list(): Promise<ListEntry[]> {
    const r = await this.ok('LIST "" "*"');
    const out: ListEntry[] = [];
    for (const u of r.untagged) {
      if (!/^\* LIST /i.test(u.lines[0] ?? '')) continue;
      const t = tokenize(u).slice(2);
      const attrs = t[0]?.t === 'list' ? t[0].v.map(tokenText) : [];
      const delimiter = t[1]?.t === 'nil' ? null : tokenText(t[1]);
      const rawTok = t[2];
      const raw = rawTok?.t === 'str' ? rawTok.v.toString('latin1') : tokenText(rawTok);
      out.push({ raw, name: decodeName(raw), delimiter, attributes: attrs });
    }
    return out;
  }

  /** EXAMINE (read-only: no flag changes, no \Recent claimed). */
  async examine(raw: string): Promise<{ uidValidity: number; uidNext: number | null; exists: number }> {
    const r = await this.ok('EXAMINE ', arg(raw));
    let uidValidity = 0;
    let uidNext: number | null = null;
    let exists = 0;
    for (const u of r.untagged) {
      const l = u.lines[0] ?? '';
      const v = /\[UIDVALIDITY (\d+)\]/i.exec(l);
      if (v) uidValidity = Number(v[1]);
      const n = /\[UIDNEXT (\d+)\]/i.exec(l);
      if (n) uidNext = Number(n[1]);
      const e = /^\* (\d+) EXISTS/i.exec(l);
      if (e) exists = Number(e[1]);
    }
    return { uidValidity, uidNext, exists };
  }

  /** UIDs and sizes of messages with UID >= `from` (UID FETCH from:* answers the last message even below `from`). */
  async listFrom(from: number): Promise<{ uid: number; size: number }[]> {
    const r = await this.ok(`UID FETCH ${from}:* (UID RFC822.SIZE)`);
    const out: { uid: number; size: number }[] = [];
    for (const m of parseFetches(r.untagged)) if (m.uid >= from) out.push({ uid: m.uid, size: m.size ?? 0 });
    return out.sort((a, b) => a.uid - b.uid);
  }

  async fetchMessages(uids: number[]): Promise<FetchedMessage[]> {
    if (uids.length === 0) return [];
    const r = await this.ok(`UID FETCH ${compressUids(uids)} (UID FLAGS INTERNALDATE BODY.PEEK[])`);
    const want = new Set(uids);
    return parseFetches(r.untagged).filter((m) => want.has(m.uid));
  }

  /** APPEND (MULTIAPPEND when several are given and the server has it). */
  async append(raw: string, messages: { flags: string[]; date?: string; data: Buffer }[]): Promise<void> {
    const multi = this.capabilities.has('MULTIAPPEND');
    const groups = multi ? [messages] : messages.map((m) => [m]);
    for (const g of groups) {
      const parts: (string | { literal: Buffer })[] = ['APPEND ', arg(raw)];
      for (const m of g) {
        parts.push(` (${m.flags.join(' ')})${m.date ? ` ${quoted(m.date)}` : ''} `, { literal: m.data });
      }
      await this.ok(...parts);
    }
  }

  async logout(): Promise<void> {
    try {
      if (!this.failure) await this.command('LOGOUT');
    } catch {
      /* the server may close first */
    }
    this.socket.destroy();
  }

  destroy(): void {
    this.socket?.destroy();
  }
}

/** The modified UTF-7 form of a mailbox name (for APPEND/CREATE built from UTF-8 names). */
export function encodeName(name: string): string {
  return encodeMutf7(name);
}

/** A LIST name decoded from modified UTF-7 (RFC 3501 §5.1.3); taken as is when it is not valid. */
function decodeName(raw: string): string {
  try {
    return decodeMutf7(raw);
  } catch {
    return raw;
  }
}

/** "1:3,7,9:10" for an ascending list. */
export function compressUids(uids: number[]): string {
  const out: string[] = [];
  let i = 0;
  while (i < uids.length) {
    let j = i;
    while (j + 1 < uids.length && uids[j + 1] === uids[j]! + 1) j++;
    out.push(j > i ? `${uids[i]}:${uids[j]}` : String(uids[i]));
    i = j + 1;
  }
  return out.join(',');
}

/** The FETCH responses among `untagged`, with the items an importer needs. */
export function parseFetches(untagged: RawResponse[]): FetchedMessage[] {
  const out: FetchedMessage[] = [];
  for (const u of untagged) {
    if (!/^\* \d+ FETCH /i.test(u.lines[0] ?? '')) continue;
    const t = tokenize(u);
    const items = t[3];
    if (items?.t !== 'list') continue;
    const m: FetchedMessage = { uid: 0, flags: [], internalDate: null, size: null, body: null };
    for (let i = 0; i + 1 < items.v.length; i += 2) {
      const key = tokenText(items.v[i]).toUpperCase();
      const val = items.v[i + 1]!;
      if (key === 'UID') m.uid = Number(tokenText(val));
      else if (key === 'FLAGS' && val.t === 'list') m.flags = val.v.map(tokenText);
      else if (key === 'INTERNALDATE') m.internalDate = tokenText(val);
      else if (key === 'RFC822.SIZE') m.size = Number(tokenText(val));
      else if (key === 'BODY[]' || key === 'RFC822') m.body = val.t === 'str' ? val.v : null;
    }
    if (m.uid > 0) out.push(m);
  }
  return out;
}

/**
 * Where a line's trailing literal marker ("{n}", "{n+}", "~{n}") starts, or -1.
 * Scans back from the end once: a RegExp tested at every "{" of a hostile
 * server's line would be quadratic.
 */
export function literalMarkerAt(s: string): number {
  if (!s.endsWith('}')) return -1;
  let j = s.length - 2;
  if (s[j] === '+') j--;
  const digitsEnd = j;
  while (j >= 0 && s.charCodeAt(j) >= 0x30 && s.charCodeAt(j) <= 0x39) j--;
  if (j === digitsEnd || s[j] !== '{') return -1;
  return j > 0 && s[j - 1] === '~' ? j - 1 : j;
}

/** The capabilities of a "[CAPABILITY ...]" response code in `text`, or null (indexOf, no backtracking RegExp). */
function capabilityCode(text: string): Set<string> | null {
  const at = text.toUpperCase().indexOf('[CAPABILITY ');
  if (at < 0) return null;
  const end = text.indexOf(']', at);
  if (end < 0) return null;
  return new Set(text.slice(at + 12, end).toUpperCase().split(' ').filter(Boolean));
}
