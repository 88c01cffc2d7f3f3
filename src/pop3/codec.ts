// The POP3 byte codec (RFC 1939 §3, RFC 2449 §4). Sans-I/O: it is fed chunks
// and hands back lines; it never touches a socket or the store.
//
// Input: CRLF-terminated command lines (a bare LF is accepted as a line end,
// as Dovecot and most servers do). A line longer than the current limit gives
// one 'too-long' event and the rest of it is skipped up to its line end, so
// the next pipelined command is still read correctly and nothing unbounded is
// buffered.
//
// Output: a multi-line response body is "byte-stuffed" (RFC 1939 §3: a line
// starting with "." gets another "." in front) and every line ends in CRLF
// (a stored bare LF is sent as CRLF), then terminated by "." CRLF.
// MultilineEncoder does that streaming, chunk by chunk, for RETR and TOP.

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;

export type LineEvent = { type: 'line'; line: Buffer } | { type: 'too-long' };

export class LineDecoder {
  private buf: Buffer = Buffer.alloc(0);
  private skipping = false;

  constructor(private maxLineLength: number) {}

  /** Bytes received and not yet returned as lines. */
  get pending(): number {
    return this.buf.length;
  }

  setLimit(maxLineLength: number): void {
    this.maxLineLength = maxLineLength;
  }

  push(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
  }

  /** Forgets everything buffered (RFC 2595 §4: input pipelined after STLS is discarded). */
  discard(): void {
    this.buf = Buffer.alloc(0);
    this.skipping = false;
  }

  /** True when a complete line (or a too-long one) is buffered: next() would not return null. */
  get hasLine(): boolean {
    return this.buf.indexOf(LF) >= 0 || (!this.skipping && this.buf.length > this.maxLineLength);
  }

  /** Up to `max` complete lines already buffered, without consuming them (read-ahead of pipelined commands). */
  peekLines(max: number): Buffer[] {
    const out: Buffer[] = [];
    if (this.skipping) return out;
    let i = 0;
    while (out.length < max) {
      const nl = this.buf.indexOf(LF, i);
      if (nl < 0 || nl + 1 - i > this.maxLineLength) break;
      out.push(this.buf.subarray(i, nl > i && this.buf[nl - 1] === CR ? nl - 1 : nl));
      i = nl + 1;
    }
    return out;
  }

  /** The next line without its line end, a too-long event, or null when more bytes are needed. */
  next(): LineEvent | null {
    for (;;) {
      const nl = this.buf.indexOf(LF);
      if (this.skipping) {
        if (nl < 0) {
          this.buf = Buffer.alloc(0);
          return null;
        }
        this.buf = this.buf.subarray(nl + 1);
        this.skipping = false;
        continue;
      }
      if (nl < 0) {
        if (this.buf.length > this.maxLineLength) {
          this.buf = Buffer.alloc(0);
          this.skipping = true;
          return { type: 'too-long' };
        }
        return null;
      }
      // The limit counts the line end (RFC 2449 §4: "255 octets, including the terminating CRLF").
      if (nl + 1 > this.maxLineLength) {
        this.buf = this.buf.subarray(nl + 1);
        return { type: 'too-long' };
      }
      const end = nl > 0 && this.buf[nl - 1] === CR ? nl - 1 : nl;
      const line = Buffer.from(this.buf.subarray(0, end));
      this.buf = this.buf.subarray(nl + 1);
      if (this.buf.length === 0) this.buf = Buffer.alloc(0);
      return { type: 'line', line };
    }
  }
}

/** A command line split as RFC 1939 §3 says: a keyword, then arguments separated by single spaces. */
export interface CommandLine {
  /** Upper-cased keyword (RFC 1939 §3: case-insensitive). */
  name: string;
  /** Everything after the first space, as sent (PASS keeps its spaces, RFC 1939 §7). */
  rest: string;
  /** `rest` split on spaces (empty pieces dropped). */
  args: string[];
}

/** Splits a command line; text is read as UTF-8 (RFC 6856) with invalid bytes replaced. */
export function splitCommand(line: Buffer): CommandLine {
  const text = line.toString('utf8');
  const sp = text.indexOf(' ');
  const name = (sp < 0 ? text : text.slice(0, sp)).toUpperCase();
  const rest = sp < 0 ? '' : text.slice(sp + 1);
  return { name, rest, args: rest.split(' ').filter((a) => a.length > 0) };
}

const CRLF = Buffer.from('\r\n');
const DOT_BYTE = Buffer.from('.');
const CR_BYTE = Buffer.from('\r');
const TERMINATOR = Buffer.from('.\r\n');
const LF_DOT = Buffer.from('\n.');

/**
 * Turns a message (fed in chunks) into the body of a multi-line response:
 * byte-stuffed, CRLF line ends, stopped after `bodyLines` lines of body when
 * given (TOP, RFC 1939 §7: the header, the blank line, then n body lines).
 */
export class MultilineEncoder {
  private atLineStart = true;
  private lineBytes = 0;
  private lastWasCR = false;
  private inHeader = true;
  private bodyCount = 0;
  private done = false;

  constructor(private readonly bodyLines: number = Infinity) {}

  /** True once TOP has sent all it needs: the caller may stop reading the message. */
  get finished(): boolean {
    return this.done;
  }

  /**
   * Encodes the next chunk of the message. A chunk that needs no change (the
   * common case: CRLF lines, none starting with ".") is returned as is,
   * without copying; otherwise only the insertions are spliced in.
   */
  push(chunk: Buffer): Buffer {
    const out: Buffer[] = [];
    this.pushParts(chunk, out);
    return out.length === 1 ? out[0]! : Buffer.concat(out);
  }

  /**
   * Encodes the next chunk into `out` as views of `chunk` with the inserted
   * bytes between them (no copy: the pieces go to one writev). `clean`: the
   * caller knows the message has no bare LF (its CRLF size, RFC 1939 §11,
   * equals its stored size), so only line-leading dots need looking for: one
   * search for "\n." per chunk instead of one per line. Only RETR uses it
   * (TOP counts lines).
   */
  pushParts(chunk: Buffer, out: Buffer[], clean = false): void {
    if (this.done || chunk.length === 0) return;
    if (clean && this.bodyLines === Infinity) return this.stuffOnly(chunk, out);
    let from = 0;
    let end = chunk.length;
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      if (this.atLineStart && chunk[i] === DOT) {
        if (i > from) out.push(chunk.subarray(from, i));
        out.push(DOT_BYTE);
        from = i;
      }
      const nl = chunk.indexOf(LF, i);
      if (nl < 0) {
        this.lineBytes += n - i;
        this.lastWasCR = chunk[n - 1] === CR;
        this.atLineStart = false;
        break;
      }
      const crBefore = nl > i ? chunk[nl - 1] === CR : this.lastWasCR;
      if (!crBefore) {
        if (nl > from) out.push(chunk.subarray(from, nl));
        out.push(CR_BYTE);
        from = nl;
      }
      this.lineBytes += nl - i;
      this.endLine(this.lineBytes === 0 || (this.lineBytes === 1 && crBefore));
      i = nl + 1;
      if (this.done) {
        end = i;
        break;
      }
    }
    if (end > from) out.push(from === 0 && end === n ? chunk : chunk.subarray(from, end));
  }

  /** RFC 1939 §3 byte-stuffing of a chunk with CRLF line ends throughout. */
  private stuffOnly(chunk: Buffer, out: Buffer[]): void {
    let from = 0;
    if (this.atLineStart && chunk[0] === DOT) out.push(DOT_BYTE);
    for (let i = chunk.indexOf(LF_DOT); i >= 0; i = chunk.indexOf(LF_DOT, i + 2)) {
      out.push(chunk.subarray(from, i + 1), DOT_BYTE);
      from = i + 1;
    }
    out.push(from === 0 ? chunk : chunk.subarray(from));
    const last = chunk[chunk.length - 1];
    this.atLineStart = last === LF;
    this.lastWasCR = last === CR;
    this.lineBytes = this.atLineStart ? 0 : 1;
  }

  private endLine(empty: boolean): void {
    this.atLineStart = true;
    this.lineBytes = 0;
    this.lastWasCR = false;
    if (this.inHeader) {
      if (empty) {
        this.inHeader = false;
        if (this.bodyLines <= 0) this.done = true;
      }
    } else if (++this.bodyCount >= this.bodyLines) this.done = true;
  }

  /** The end of the response: a line end if the message lacked one, then "." CRLF. */
  end(): Buffer {
    if (this.atLineStart) return TERMINATOR;
    return Buffer.concat([this.lastWasCR ? Buffer.from('\n') : CRLF, TERMINATOR]);
  }
}

/** Encodes a whole message at once (tests, small bodies). */
export function encodeMultiline(message: Buffer, bodyLines?: number): Buffer {
  const e = new MultilineEncoder(bodyLines);
  return Buffer.concat([e.push(message), e.end()]);
}

/** Size in octets of a message as RETR sends it before byte-stuffing (RFC 1939 §11: CRLF line ends, stuffing not counted). */
export function crlfSize(message: Buffer): number {
  let bare = 0;
  for (let i = message.indexOf(LF); i >= 0; i = message.indexOf(LF, i + 1)) if (i === 0 || message[i - 1] !== CR) bare++;
  return message.length + bare;
}
