// The LMTP line codec (RFC 2033 over RFC 5321 framing). Sans-I/O: it is fed
// chunks and hands back events; it never touches a socket or the store.
//
// Two modes:
// - command mode: CRLF-terminated lines (a bare LF is tolerated as a line end,
//   RFC 5321 §2.3.8 lets a server be lenient here), each at most `maxLineLength`
//   bytes. A longer line yields one 'line-too-long' event and the rest of it is
//   skipped up to its line end, so the next command is read correctly.
// - data mode (after "354"): the message text. Only CRLF "." CRLF ends it
//   (RFC 5321 §4.1.1.4: a bare LF "." LF must not), and a leading "." of a
//   line is removed (dot-unstuffing, RFC 5321 §4.5.2). "Line start" means
//   after CRLF or at the start of the data. Bytes beyond `maxDataSize` are
//   counted but dropped, so a too-big message is read to its end and then
//   refused with one reply, without buffering it.
//
// The caller switches to data mode with `startData()` after sending 354; any
// bytes already fed stay queued and are interpreted in the new mode.

/** Events produced by LmtpDecoder.push / next. */
export type DecoderEvent =
  | { type: 'line'; line: string }
  | { type: 'line-too-long' }
  | { type: 'data'; chunks: Buffer[]; size: number; tooBig: boolean };

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;

export class LmtpDecoder {
  private buf: Buffer = Buffer.alloc(0);
  private mode: 'command' | 'data' = 'command';
  /** Skipping the rest of an over-long command line. */
  private skipping = false;
  // data mode state
  private atLineStart = true;
  private chunks: Buffer[] = [];
  private size = 0;
  private total = 0;

  constructor(
    private readonly maxLineLength: number,
    private readonly maxDataSize: number,
  ) {}

  /** Bytes queued but not yet turned into events (bounded by maxLineLength in command mode). */
  get pending(): number {
    return this.buf.length;
  }

  get inData(): boolean {
    return this.mode === 'data';
  }

  push(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
  }

  /** Switches to data mode (call after sending the 354 reply). */
  startData(): void {
    this.mode = 'data';
    this.atLineStart = true;
    this.chunks = [];
    this.size = 0;
    this.total = 0;
  }

  /** The next complete event, or null when more bytes are needed. */
  next(): DecoderEvent | null {
    return this.mode === 'command' ? this.nextLine() : this.nextData();
  }

  private nextLine(): DecoderEvent | null {
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
        // A CR at the end may be the first half of the CRLF (found by fuzzing: a line of exactly
        // maxLineLength bytes was refused when its CR and LF arrived in different chunks).
        const content = this.buf.length > 0 && this.buf[this.buf.length - 1] === CR ? this.buf.length - 1 : this.buf.length;
        if (content > this.maxLineLength) {
          this.skipping = true;
          this.buf = Buffer.alloc(0);
          return { type: 'line-too-long' };
        }
        return null;
      }
      const end = nl > 0 && this.buf[nl - 1] === CR ? nl - 1 : nl;
      if (end > this.maxLineLength) {
        this.buf = this.buf.subarray(nl + 1);
        return { type: 'line-too-long' };
      }
      // Commands are ASCII; latin1 keeps any stray byte as one character for the error path.
      const line = this.buf.subarray(0, end).toString('latin1');
      this.buf = this.buf.subarray(nl + 1);
      return { type: 'line', line };
    }
  }

  private emit(part: Buffer): void {
    this.total += part.length;
    if (this.total > this.maxDataSize) {
      // Refused anyway: free what was kept and keep nothing more.
      if (this.chunks.length > 0) this.chunks = [];
      this.size = 0;
      return;
    }
    this.chunks.push(part);
    this.size += part.length;
  }

  private nextData(): DecoderEvent | null {
    const b = this.buf;
    let i = 0;
    for (;;) {
      if (this.atLineStart) {
        if (b.length - i < 1) break;
        if (b[i] === DOT) {
          if (b.length - i < 2) break;
          if (b[i + 1] === CR) {
            if (b.length - i < 3) break;
            if (b[i + 2] === LF) {
              // End of data: the terminating CRLF before "." belongs to the message.
              this.buf = b.subarray(i + 3);
              this.mode = 'command';
              const ev: DecoderEvent = { type: 'data', chunks: this.chunks, size: this.size, tooBig: this.total > this.maxDataSize };
              this.chunks = [];
              return ev;
            }
          }
          i += 1; // RFC 5321 §4.5.2: drop the stuffed dot
        }
        this.atLineStart = false;
      }
      const crlf = b.indexOf('\r\n', i, 'latin1');
      if (crlf < 0) {
        // Keep a trailing CR: it may start the CRLF of the next chunk.
        let end = b.length;
        if (end > i && b[end - 1] === CR) end--;
        if (end > i) this.emit(b.subarray(i, end));
        i = end;
        break;
      }
      this.emit(b.subarray(i, crlf + 2));
      i = crlf + 2;
      this.atLineStart = true;
    }
    this.buf = b.subarray(i);
    return null;
  }
}

/** Splits "VERB rest" into the upper-cased verb and its argument text. */
export function splitCommand(line: string): { verb: string; arg: string } {
  const sp = line.indexOf(' ');
  if (sp < 0) return { verb: line.toUpperCase(), arg: '' };
  return { verb: line.slice(0, sp).toUpperCase(), arg: line.slice(sp + 1) };
}

export interface PathArg {
  /** The address inside <...>, "" for the null reverse-path <>. */
  address: string;
  /** ESMTP parameters, keys upper-cased; value null for a bare keyword. */
  params: Map<string, string | null>;
}

/**
 * Parses the argument of MAIL / RCPT: `FROM:<addr> [params]` or `TO:<addr> [params]`
 * (RFC 5321 §4.1.1.2-3). Tolerates a space after the colon (common in the wild).
 * Returns null on a syntax error. Source routes ("@a,@b:user@c") are stripped
 * (RFC 5321 §4.1.1.3: MUST accept, SHOULD ignore).
 */
export function parsePathArg(arg: string, keyword: 'FROM' | 'TO'): PathArg | null {
  // Split by hand: the obvious /^(\w+):\s*<([^<>]*)>(?:\s+(.*))?$/ backtracks
  // quadratically on a long run of blanks followed by a line terminator.
  const a = arg.trim();
  const colon = a.indexOf(':');
  if (colon <= 0 || !/^[A-Za-z]+$/.test(a.slice(0, colon)) || a.slice(0, colon).toUpperCase() !== keyword) return null;
  let lt = colon + 1;
  while (lt < a.length && /\s/.test(a[lt]!)) lt++;
  if (a[lt] !== '<') return null;
  const gt = a.indexOf('>', lt + 1);
  if (gt < 0) return null;
  let address = a.slice(lt + 1, gt);
  if (address.includes('<')) return null;
  const rest = a.slice(gt + 1);
  if (rest !== '' && !/^\s/.test(rest)) return null;
  if (/[\n\r\u2028\u2029]/.test(rest)) return null;
  const route = /^@[^:]+:(.*)$/.exec(address);
  if (route) address = route[1]!;
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x20\x7f]/.test(address.replace(/^".*"(?=@)/, ''))) return null;
  const params = new Map<string, string | null>();
  for (const p of rest.split(/\s+/).filter(Boolean)) {
    const eq = p.indexOf('=');
    const key = (eq < 0 ? p : p.slice(0, eq)).toUpperCase();
    if (!/^[A-Z0-9][A-Z0-9-]*$/.test(key)) return null;
    params.set(key, eq < 0 ? null : p.slice(eq + 1));
  }
  return { address, params };
}
