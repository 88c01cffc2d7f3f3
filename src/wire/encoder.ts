// Response-side value encoding (RFC 9051 §4.3 strings, §9 formal syntax).
//
// Every function here either returns text that cannot end or split a
// response line (no CR, LF or NUL outside a literal) or throws EncodeError,
// so a value taken from a client or a message can never inject a response.
// Values that cannot be quoted safely become literals.

import { isUtf8 } from 'node:buffer';
import { encodeMutf7 } from './mutf7.js';

/** A value could not be encoded safely (a programming error: answer NO [SERVERBUG]). */
export class EncodeError extends Error {
  override readonly name = 'EncodeError';
}

/** Longest value sent as a quoted string when a literal is also possible. */
const MAX_QUOTED = 1024;

/** RFC 9051 §9 ATOM-CHAR: CHAR except "(" ")" "{" SP CTL "%" "*" DQUOTE "\" "]". */
function isAtomChar(c: number): boolean {
  return (
    c > 0x20 &&
    c < 0x7f &&
    c !== 0x28 && // (
    c !== 0x29 && // )
    c !== 0x7b && // {
    c !== 0x25 && // %
    c !== 0x2a && // *
    c !== 0x22 && // "
    c !== 0x5c && // \
    c !== 0x5d // ]
  );
}

/** RFC 9051 §9 ASTRING-CHAR = ATOM-CHAR / "]". */
function isAstringChar(c: number): boolean {
  return isAtomChar(c) || c === 0x5d;
}

/** True when `s` is a non-empty run of ATOM-CHARs. */
export function isAtom(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) if (!isAtomChar(s.charCodeAt(i))) return false;
  return true;
}

function isAstringAtom(s: string): boolean {
  if (s.length === 0 || s.toUpperCase() === 'NIL') return false;
  for (let i = 0; i < s.length; i++) if (!isAstringChar(s.charCodeAt(i))) return false;
  return true;
}

/** Whether `s` can be a quoted string: no CR, LF, NUL; 8-bit only when `utf8` (RFC 9051 QUOTED-CHAR UTF8-2..4). */
function quotable(s: string, utf8: boolean): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x0d || c === 0x0a || c === 0) return false;
    if (c >= 0x80) {
      if (!utf8) return false;
      // A lone surrogate cannot be sent as UTF-8.
      if (c >= 0xd800 && c <= 0xdfff) {
        const hi = c <= 0xdbff;
        const n = s.charCodeAt(i + 1);
        if (!hi || !(n >= 0xdc00 && n <= 0xdfff)) return false;
        i++;
      }
    }
  }
  return true;
}

/**
 * A quoted string with "\" and DQUOTE escaped. Throws EncodeError if `s`
 * contains CR, LF or NUL. Non-ASCII is passed through (valid in IMAP4rev2 /
 * UTF8=ACCEPT); use string()/astring() when it may need a literal.
 */
export function quoted(s: string): string {
  if (!quotable(s, true)) throw new EncodeError('value cannot be a quoted string');
  return '"' + s.replace(/[\\"]/g, '\\$&') + '"';
}

/** Literal header and data, without copying the data: `[ "{n}\r\n", data ]` (`~{n}` for literal8, RFC 3516). */
export function literal(data: Buffer | string, literal8 = false): Buffer[] {
  const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  return [Buffer.from(`${literal8 ? '~' : ''}{${buf.length}}\r\n`, 'latin1'), buf];
}

function literalBuffer(data: Buffer | string): Buffer {
  return Buffer.concat(literal(data));
}

/**
 * astring (RFC 9051 §9): an atom when every character is ASTRING-CHAR and the
 * value is not empty or "NIL"; else a quoted string when safe (7-bit unless
 * `utf8`); else a literal (returned as one Buffer).
 */
export function astring(s: string, utf8 = false): string | Buffer {
  if (isAstringAtom(s)) return s;
  if (s.length <= MAX_QUOTED && quotable(s, utf8)) return quoted(s);
  if (s.includes('\0')) throw new EncodeError('NUL cannot be sent in a string');
  return literalBuffer(s);
}

/** string (RFC 9051 §9): quoted when safe and short, else a literal (one Buffer). */
export function string(v: string | Buffer, utf8 = false): string | Buffer {
  if (typeof v === 'string') {
    if (v.length <= MAX_QUOTED && quotable(v, utf8)) return quoted(v);
    if (v.includes('\0')) throw new EncodeError('NUL cannot be sent in a string');
    return literalBuffer(v);
  }
  if (v.length <= MAX_QUOTED) {
    let ascii = true;
    let safe = true;
    for (const c of v) {
      if (c === 0x0d || c === 0x0a || c === 0) safe = false;
      if (c >= 0x80) ascii = false;
    }
    if (safe && (ascii || (utf8 && isUtf8(v)))) return quoted(v.toString(ascii ? 'latin1' : 'utf8'));
  }
  return literalBuffer(v);
}

/** nstring: NIL for null/undefined, else string(). */
export function nstring(v: string | Buffer | null | undefined, utf8 = false): string | Buffer {
  return v === null || v === undefined ? 'NIL' : string(v, utf8);
}

/** Flag list "(\Seen $Forwarded)". Each flag must be an atom, optionally with one leading "\" ("\*" allowed). */
export function flagList(flags: readonly string[]): string {
  for (const f of flags) {
    const name = f.startsWith('\\') ? f.slice(1) : f;
    if (name === '*' && f === '\\*') continue;
    if (!isAtom(name)) throw new EncodeError(`invalid flag ${JSON.stringify(f)}`);
  }
  return '(' + flags.join(' ') + ')';
}

/**
 * A mailbox name (RFC 9051 §9 mailbox = "INBOX" / astring): modified UTF-7
 * (RFC 3501 §5.1.3) unless the client enabled UTF-8 names, then quoted UTF-8
 * or a literal.
 */
export function mailboxName(name: string, utf8: boolean): string | Buffer {
  return utf8 ? astring(name, true) : astring(encodeMutf7(name), false);
}

/**
 * Free text for resp-text (RFC 9051 §9 text = 1*TEXT-CHAR): CR, LF and other
 * controls become spaces, and a leading "[" (which a client would read as
 * the start of a resp-text-code) becomes "(".
 */
export function responseText(s: string): string {
  // eslint-disable-next-line no-control-regex
  let t = s.replace(/[\x00-\x1f\x7f]/g, ' ');
  if (t.startsWith('[')) t = '(' + t.slice(1);
  return t;
}

export type Piece = string | Buffer | readonly Piece[];

/**
 * Assembles responses into Buffers ready for socket.write. Strings are
 * protocol text and may not contain CR, LF or NUL (EncodeError); Buffers are
 * passed through untouched and must come from this module (literal(),
 * astring(), string(), nstring(), mailboxName()). Adjacent strings are
 * joined; a literal's data Buffer is never copied.
 */
export class ResponseBuilder {
  private readonly out: Buffer[] = [];
  private text = '';
  private size = 0;
  private open = false;

  /** Append pieces to the current response line. */
  add(...pieces: Piece[]): this {
    for (const p of pieces) this.addOne(p);
    return this;
  }

  sp(): this {
    this.text += ' ';
    this.open = true;
    return this;
  }

  /** End the current response with CRLF. */
  end(): this {
    this.text += '\r\n';
    this.open = false;
    this.flushText();
    return this;
  }

  /** The Buffers (an unterminated last response gets its CRLF). */
  build(): Buffer[] {
    if (this.open) this.end();
    this.flushText();
    return this.out;
  }

  /** Bytes built so far. */
  get byteLength(): number {
    return this.size + Buffer.byteLength(this.text);
  }

  private addOne(p: Piece): void {
    if (typeof p === 'string') {
      if (/[\r\n\0]/.test(p)) throw new EncodeError('CR, LF or NUL in response text');
      this.text += p;
      this.open = true;
    } else if (Buffer.isBuffer(p)) {
      this.flushText();
      this.out.push(p);
      this.size += p.length;
      this.open = true;
    } else {
      for (const q of p as readonly Piece[]) this.addOne(q);
    }
  }

  private flushText(): void {
    if (this.text.length === 0) return;
    const b = Buffer.from(this.text, 'utf8');
    this.out.push(b);
    this.size += b.length;
    this.text = '';
  }
}

/** One complete response line from pieces: `response('* ', 'OK')`. */
export function response(...pieces: Piece[]): Buffer[] {
  return new ResponseBuilder().add(...pieces).end().build();
}
