// Push-style IMAP command decoder (RFC 9051 §9 formal syntax, RFC 3501 §9,
// RFC 7888 LITERAL+/LITERAL-, RFC 3516 literal8).
//
// The caller push()es socket chunks and calls next() whenever it is ready for
// the next event. next() decodes at most one command and never looks past
// its end, so a caller that switches mode between commands (expectLine()
// after IDLE / AUTHENTICATE, discardBuffered() at STARTTLS) sees the
// following bytes untouched.
//
// Decoding is line-oriented: a command is one or more line fragments joined by
// literals. A fragment is tokenised only once it is complete (CRLF seen), and
// the search for the line end remembers where it stopped, so input trickling
// in one byte at a time costs O(n) overall.
//
// Choices the RFCs leave open (documented here so callers can rely on them):
// - Empty lines between commands are ignored. RFC 9051 §9 has no empty
//   command, but clients (and Dovecot) treat a stray CRLF, e.g. after an
//   APPEND literal, as harmless; answering BAD would only confuse them.
// - A bare LF ends a line like CRLF (robustness, as Dovecot does). A CR that
//   is not followed by LF is a PARSE error (CR is a CTL, RFC 9051 §9).
// - Exactly one SP between tokens; no leading or trailing SP.
// - Error codes: PARSE for syntax, TOOBIG for byte sizes (line, literal,
//   command), LIMIT for counts (nesting depth, token count). CLIENTBUG is
//   never produced by the decoder.
// - After an error the rest of the command is skipped: the current line, and
//   if that line ends in a non-synchronizing literal header, the literal and
//   the following lines as long as they also end in one. A synchronizing
//   literal that was never acknowledged with "+" will not be sent.
// - Section atoms (BODY[...] etc.) have their `value` upper-cased.

import type { AtomToken, DecoderEvent, DecoderLimits, ListToken, StringToken, Token } from './types.js';
import { ID_LINE_LENGTH, MAX_DISCARD_LITERAL, MAX_TAG_LENGTH } from './limits.js';

export type DecoderErrorEvent = Extract<DecoderEvent, { type: 'error' }>;
type ErrorCode = DecoderErrorEvent['code'];

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const DQUOTE = 0x22;
const LPAREN = 0x28;
const RPAREN = 0x29;
const PLUS = 0x2b;
const MINUS = 0x2d;
const DOT = 0x2e;
const LT = 0x3c;
const GT = 0x3e;
const LBRACKET = 0x5b;
const BACKSLASH = 0x5c;
const RBRACKET = 0x5d;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const TILDE = 0x7e;
const PERCENT = 0x25;
const STAR = 0x2a;

/** Fetch attributes whose "[" opens a section (RFC 9051 §6.4.5, RFC 3516). */
const SECTION_ATOMS = new Set(['BODY', 'BODY.PEEK', 'BINARY', 'BINARY.PEEK', 'BINARY.SIZE']);
const LONGEST_SECTION_ATOM = 11;

/** How many bytes of a skipped line are kept to spot a trailing `{n+}`. */
const TAIL_KEEP = 32;
/**
 * First size of the input buffer: commands are mostly well under it, and
 * below Buffer.poolSize / 2 it is a slice of Node's shared pool, so an idle
 * connection holds ~1 KiB instead of a 16 KiB allocation of its own (idle
 * connections over two workers were 38 KiB each, 16 of them this buffer; issue 11).
 * It grows (doubling) for longer input and shrinks back past SHRINK_ABOVE.
 */
const INITIAL_BUFFER = 1024;
const SHRINK_ABOVE = 256 * 1024;

/** Lenient atom byte: CHAR except SP, CTL, "(", ")", "{", DQUOTE (see types.ts). */
function isAtomByte(b: number): boolean {
  return b > 0x20 && b < 0x7f && b !== LPAREN && b !== RPAREN && b !== LBRACE && b !== DQUOTE;
}

/** RFC 9051 §9: tag = 1*<any ASTRING-CHAR except "+">. */
function isTagByte(b: number): boolean {
  return isAtomByte(b) && b !== PERCENT && b !== STAR && b !== BACKSLASH && b !== PLUS;
}

function isDigit(b: number): boolean {
  return b >= 0x30 && b <= 0x39;
}

interface Frame {
  kind: 'root' | 'list' | 'section';
  items: Token[];
  /** For a section frame: the atom that owns it. */
  atom?: AtomToken;
  /** For a list frame: the list token (already attached to its parent). */
  list?: ListToken;
}

interface CommandState {
  tag: string;
  frames: Frame[];
  /** A token just ended: the next byte must be SP, ")", "]" or end of line. */
  expectDelim: boolean;
  tokens: number;
  size: number;
  inSection: boolean;
}

class Fail {
  constructor(
    readonly code: ErrorCode,
    readonly message: string,
  ) {}
}

type Mode =
  | 'idle' // waiting for the first line of a command
  | 'cont' // waiting for the line fragment after a literal
  | 'expect' // waiting for a raw line (expectLine)
  | 'literal' // copying literal bytes into `lit`
  | 'discardLiteral' // throwing away a refused non-synchronizing literal
  | 'skip' // throwing away the rest of a bad command, line by line
  | 'dead'; // fatal error: nothing more is decoded

type FragmentResult = { kind: 'done' } | { kind: 'literal'; size: number; sync: boolean; literal8: boolean };

const NEED_MORE = -1;
const TOO_LONG = -2;

/**
 * A literal's buffer starts this big and doubles as its bytes arrive: an
 * announced `{60000000}` costs memory only as the client really sends data,
 * so announcing huge literals and stalling (on many connections) holds
 * little memory and does not make the garbage collector account 60 MB of
 * external memory per announcement up front.
 */
export const LITERAL_INITIAL_BYTES = 64 * 1024;

/** Makes room in `lit.data` for `n` more bytes (doubling, capped at the literal's size). */
function reserve(lit: { data: Buffer; filled: number; size: number }, n: number): void {
  const need = lit.filled + n;
  if (need <= lit.data.length) return;
  const next = Buffer.allocUnsafeSlow(Math.min(lit.size, Math.max(need, lit.data.length * 2)));
  lit.data.copy(next, 0, 0, lit.filled);
  lit.data = next;
}

export class CommandDecoder {
  private limits: DecoderLimits;
  private buf: Buffer = Buffer.allocUnsafe(INITIAL_BUFFER);
  private start = 0;
  private end = 0;
  /** Bytes after `start` already searched for LF without success. */
  private scanned = 0;
  private mode: Mode = 'idle';
  private cmd: CommandState | null = null;
  /** The literal being received: `data` grows towards `size` as bytes arrive (see LITERAL_INITIAL_BYTES). */
  private lit: { data: Buffer; filled: number; size: number; literal8: boolean } | null = null;
  private discardLeft = 0;
  private tail: Buffer = Buffer.alloc(0);
  /** In 'skip' mode: whether a trailing `{n+}` on a skipped line means literal bytes follow. */
  private skipFollowsLiterals = true;

  constructor(limits: DecoderLimits) {
    this.limits = { ...limits };
  }

  /** Replace the limits (e.g. after login); applies to checks made from now on. */
  setLimits(limits: DecoderLimits): void {
    this.limits = { ...limits };
  }

  /** Unconsumed bytes held by the decoder (literal bytes already copied out are not counted). */
  get bufferedBytes(): number {
    return this.end - this.start;
  }

  /** Bytes still expected of the literal being received (0 when none is): lets the server watch a literal's progress. */
  get literalPending(): number {
    if (this.mode === 'literal' && this.lit) return this.lit.size - this.lit.filled - Math.min(this.end - this.start, this.lit.size - this.lit.filled);
    return 0;
  }

  /** True when no command is partially decoded (safe point for expectLine / STARTTLS). */
  get idle(): boolean {
    return this.mode === 'idle';
  }

  /** Append bytes received from the client. */
  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (this.mode === 'dead') return;
    let off = 0;
    if (this.start === this.end) {
      // Fast paths: literal bytes go straight to their final place.
      if (this.mode === 'literal' && this.lit) {
        const lit = this.lit;
        const n = Math.min(chunk.length, lit.size - lit.filled);
        reserve(lit, n);
        chunk.copy(lit.data, lit.filled, 0, n);
        lit.filled += n;
        off = n;
      } else if (this.mode === 'discardLiteral') {
        const n = Math.min(chunk.length, this.discardLeft);
        this.discardLeft -= n;
        off = n;
      }
      if (off === chunk.length) return;
    }
    this.append(chunk, off);
  }

  /**
   * The next event, or null when more bytes are needed. Decodes at most one
   * command and never consumes bytes beyond it.
   */
  next(): DecoderEvent | null {
    for (;;) {
      switch (this.mode) {
        case 'dead':
          return null;
        case 'literal': {
          const lit = this.lit!;
          const n = Math.min(this.end - this.start, lit.size - lit.filled);
          if (n > 0) {
            reserve(lit, n);
            this.buf.copy(lit.data, lit.filled, this.start, this.start + n);
            lit.filled += n;
            this.consume(n);
          }
          if (lit.filled < lit.size) return null;
          const ev = this.finishLiteral();
          if (ev) return ev;
          continue;
        }
        case 'discardLiteral': {
          const n = Math.min(this.end - this.start, this.discardLeft);
          this.discardLeft -= n;
          this.consume(n);
          if (this.discardLeft > 0) return null;
          this.mode = 'skip';
          this.skipFollowsLiterals = true;
          this.tail = Buffer.alloc(0);
          continue;
        }
        case 'skip': {
          const ev = this.skipLine();
          if (ev === null) return null;
          if (ev !== true) return ev;
          continue;
        }
        case 'expect': {
          const lf = this.findLine();
          if (lf === NEED_MORE) return null;
          if (lf === TOO_LONG) {
            this.startSkip(false);
            return this.error('TOOBIG', 'line too long', undefined);
          }
          const contentEnd = this.contentEnd(lf);
          if (contentEnd - this.start > this.limits.maxLineLength) {
            this.consume(lf + 1 - this.start);
            this.mode = 'idle';
            return this.error('TOOBIG', 'line too long', undefined);
          }
          const line = Buffer.from(this.buf.subarray(this.start, contentEnd));
          this.consume(lf + 1 - this.start);
          this.mode = 'idle';
          return { type: 'line', line };
        }
        case 'idle':
        case 'cont': {
          const ev = this.readFragment();
          if (ev === null) return null;
          if (ev !== true) return ev;
          continue;
        }
      }
    }
  }

  /** The next event will be the next raw line ({type:'line'}), CRLF stripped. Call only between commands. */
  expectLine(): void {
    if (this.mode !== 'idle') throw new Error('expectLine() called while a command is being decoded');
    this.mode = 'expect';
  }

  /** Drop every buffered byte and any partial command (STARTTLS). Returns how many bytes were dropped. */
  discardBuffered(): number {
    const n = this.end - this.start;
    this.start = this.end = 0;
    this.scanned = 0;
    if (this.buf.length > SHRINK_ABOVE) this.buf = Buffer.allocUnsafe(INITIAL_BUFFER);
    if (this.mode !== 'dead') this.mode = 'idle';
    this.cmd = null;
    this.lit = null;
    this.discardLeft = 0;
    this.tail = Buffer.alloc(0);
    return n;
  }

  // ---- buffer management -------------------------------------------------

  private append(chunk: Buffer, off: number): void {
    const add = chunk.length - off;
    if (this.end + add > this.buf.length) {
      const live = this.end - this.start;
      const needed = live + add;
      if (needed <= this.buf.length && this.start >= this.buf.length >>> 1) {
        this.buf.copy(this.buf, 0, this.start, this.end);
      } else {
        const next = Buffer.allocUnsafe(Math.max(needed, this.buf.length * 2));
        this.buf.copy(next, 0, this.start, this.end);
        this.buf = next;
      }
      this.start = 0;
      this.end = live;
    }
    chunk.copy(this.buf, this.end, off);
    this.end += add;
  }

  private consume(n: number): void {
    this.start += n;
    this.scanned = 0;
    if (this.start === this.end) {
      this.start = this.end = 0;
      if (this.buf.length > SHRINK_ABOVE) this.buf = Buffer.allocUnsafe(INITIAL_BUFFER);
    }
  }

  /**
   * The line length allowed for the current line: maxLineLength, or
   * ID_LINE_LENGTH for a command line that starts with "<tag> ID " (RFC 2971
   * §3.3 allows ~32 KB, more than the pre-auth limit).
   */
  private lineLimit(): number {
    const base = this.limits.maxLineLength;
    if (base >= ID_LINE_LENGTH || this.mode !== 'idle') return base;
    const b = this.buf;
    let p = this.start;
    const end = Math.min(this.end, this.start + MAX_TAG_LENGTH + 4);
    while (p < end && isTagByte(b[p]!)) p++;
    if (p === this.start || p + 3 >= this.end) return base;
    const isId = b[p] === SP && (b[p + 1]! | 0x20) === 0x69 && (b[p + 2]! | 0x20) === 0x64 && b[p + 3] === SP;
    return isId ? ID_LINE_LENGTH : base;
  }

  /** Absolute index of the LF ending the current line, NEED_MORE, or TOO_LONG. */
  private findLine(): number {
    const limit = this.lineLimit() + 2; // content + CR + LF
    const searchEnd = Math.min(this.end, this.start + limit);
    const from = this.start + this.scanned;
    if (from < searchEnd) {
      const i = this.buf.subarray(0, searchEnd).indexOf(LF, from);
      if (i >= 0) return i;
    }
    this.scanned = Math.max(this.scanned, searchEnd - this.start);
    return searchEnd - this.start >= limit ? TOO_LONG : NEED_MORE;
  }

  private contentEnd(lf: number): number {
    return lf > this.start && this.buf[lf - 1] === CR ? lf - 1 : lf;
  }

  // ---- events --------------------------------------------------------------

  private error(code: ErrorCode, message: string, tag: string | undefined, fatal = false): DecoderErrorEvent {
    const ev: DecoderErrorEvent = { type: 'error', code, message, fatal };
    if (tag !== undefined) ev.tag = tag;
    if (fatal) this.kill();
    return ev;
  }

  private kill(): void {
    this.mode = 'dead';
    this.start = this.end = 0;
    this.cmd = null;
    this.lit = null;
  }

  private get discardLimit(): number {
    return this.limits.maxDiscardLiteral ?? MAX_DISCARD_LITERAL;
  }

  /** Enter 'skip' mode for the remainder of the current line. */
  private startSkip(followsLiterals: boolean): void {
    this.mode = 'skip';
    this.skipFollowsLiterals = followsLiterals;
    this.tail = Buffer.alloc(0);
  }

  /**
   * The command failed on a line [lineStart, contentEnd) that has been
   * consumed. Arrange to skip the rest of the command and return the event.
   */
  private abort(code: ErrorCode, message: string, tag: string | undefined, lineStart: number, contentEnd: number): DecoderErrorEvent {
    const n = trailingNonSyncLiteral(this.buf.subarray(Math.max(lineStart, contentEnd - TAIL_KEEP), contentEnd));
    this.cmd = null;
    this.lit = null;
    if (n < 0) {
      this.mode = 'idle';
      return this.error(code, message, tag);
    }
    if (n > this.discardLimit) {
      return this.error(code, `${message}; cannot skip a ${n}-byte non-synchronizing literal`, tag, true);
    }
    this.mode = 'discardLiteral';
    this.discardLeft = n;
    return this.error(code, message, tag);
  }

  /** Skip one line in 'skip' mode. Returns null (need more), true (done, continue), or an event. */
  private skipLine(): DecoderEvent | true | null {
    if (this.start === this.end) return null;
    const i = this.buf.subarray(0, this.end).indexOf(LF, this.start);
    const stop = i < 0 ? this.end : i;
    const seg = this.buf.subarray(Math.max(this.start, stop - TAIL_KEEP), stop);
    this.tail = Buffer.concat([this.tail, seg]);
    if (this.tail.length > TAIL_KEEP) this.tail = this.tail.subarray(this.tail.length - TAIL_KEEP);
    if (i < 0) {
      this.tail = Buffer.from(this.tail);
      this.consume(this.end - this.start);
      return null;
    }
    this.consume(i + 1 - this.start);
    const tail = this.tail.length > 0 && this.tail[this.tail.length - 1] === CR ? this.tail.subarray(0, this.tail.length - 1) : this.tail;
    const n = this.skipFollowsLiterals ? trailingNonSyncLiteral(tail) : -1;
    this.tail = Buffer.alloc(0);
    const tag = this.cmd?.tag;
    if (n < 0) {
      this.mode = 'idle';
      this.cmd = null;
      return true;
    }
    if (n > this.discardLimit) {
      return this.error('TOOBIG', `cannot skip a ${n}-byte non-synchronizing literal`, tag, true);
    }
    this.mode = 'discardLiteral';
    this.discardLeft = n;
    return true;
  }

  /** A literal is complete: attach it and go on with the command. */
  private finishLiteral(): DecoderEvent | null {
    const lit = this.lit!;
    this.lit = null;
    const cmd = this.cmd!;
    if (!lit.literal8 && lit.data.indexOf(0) >= 0) {
      // RFC 9051 §4.3: NUL is allowed only in literal8.
      this.startSkip(true);
      return this.error('PARSE', 'NUL in literal (use literal8)', cmd.tag);
    }
    const tok: StringToken = { kind: 'string', bytes: lit.data, literal: true, literal8: lit.literal8 };
    cmd.frames[cmd.frames.length - 1]!.items.push(tok);
    cmd.expectDelim = true;
    this.mode = 'cont';
    return null;
  }

  /** Read and tokenise one line fragment in 'idle' or 'cont' mode. */
  private readFragment(): DecoderEvent | true | null {
    const lf = this.findLine();
    if (lf === NEED_MORE) return null;
    if (lf === TOO_LONG) {
      // Look only at the first maxLineLength+2 bytes so the answer does not depend on chunking.
      const tag = this.cmd ? this.cmd.tag : peekTag(this.buf, this.start, this.start + this.limits.maxLineLength + 2);
      this.cmd = null;
      this.startSkip(true);
      return this.error('TOOBIG', 'line too long', tag);
    }
    const lineStart = this.start;
    // The line is consumed only after it has been looked at: `consume` may swap the buffer.
    const result = this.processLine(lineStart, this.contentEnd(lf), lf + 1);
    if (this.mode !== 'dead') this.consume(lf + 1 - lineStart);
    return result;
  }

  private processLine(lineStart: number, contentEnd: number, lineEnd: number): DecoderEvent | true {
    const lineLimit = this.lineLimit();
    if (contentEnd - lineStart > lineLimit) {
      const tag = this.cmd ? this.cmd.tag : peekTag(this.buf, lineStart, contentEnd);
      return this.abort('TOOBIG', 'line too long', tag, lineStart, contentEnd);
    }
    let p = lineStart;
    if (this.mode === 'idle') {
      if (contentEnd === lineStart) return true; // empty line: ignored (see header)
      // RFC 9051 §9: command = tag SP (command-any / ...) CRLF
      while (p < contentEnd && p - lineStart <= MAX_TAG_LENGTH && isTagByte(this.buf[p]!)) p++;
      if (p - lineStart > MAX_TAG_LENGTH) {
        // Not echoed: the answer is an untagged BAD (see MAX_TAG_LENGTH).
        return this.abort('PARSE', `tag longer than ${MAX_TAG_LENGTH} characters`, undefined, lineStart, contentEnd);
      }
      if (p === lineStart || (p < contentEnd && this.buf[p] !== SP)) {
        return this.abort('PARSE', 'missing or invalid tag', undefined, lineStart, contentEnd);
      }
      const tag = this.buf.toString('latin1', lineStart, p);
      if (p + 1 >= contentEnd) return this.abort('PARSE', 'missing command', tag, lineStart, contentEnd);
      p++;
      this.cmd = {
        tag,
        frames: [{ kind: 'root', items: [] }],
        expectDelim: false,
        tokens: 0,
        size: 0,
        inSection: false,
      };
    }
    const cmd = this.cmd!;
    cmd.size += lineEnd - lineStart;
    if (cmd.size > Math.max(this.limits.maxCommandSize, lineLimit + 2)) {
      return this.abort('TOOBIG', 'command too large', cmd.tag, lineStart, contentEnd);
    }
    let res: FragmentResult;
    try {
      res = this.tokenize(cmd, p, contentEnd);
    } catch (e) {
      if (!(e instanceof Fail)) throw e;
      return this.abort(e.code, e.message, cmd.tag, lineStart, contentEnd);
    }
    if (res.kind === 'done') return this.complete(cmd);
    return this.startLiteral(cmd, res);
  }

  private startLiteral(cmd: CommandState, res: { size: number; sync: boolean; literal8: boolean }): DecoderEvent | true {
    const { size, sync, literal8 } = res;
    const L = this.limits;
    let problem: string | null = null;
    if (size > L.maxLiteralSize) problem = `literal of ${size} bytes exceeds the limit of ${L.maxLiteralSize}`;
    else if (cmd.size + size > L.maxCommandSize) problem = `command exceeds the limit of ${L.maxCommandSize} bytes`;
    else if (!sync && size > L.maxNonSyncLiteral) {
      problem = `non-synchronizing literal of ${size} bytes exceeds ${L.maxNonSyncLiteral} (RFC 7888)`;
    }
    if (problem !== null) {
      this.cmd = null;
      if (sync) {
        // The client waits for "+" and will not send the bytes: the command ends here.
        this.mode = 'idle';
        return this.error('TOOBIG', problem, cmd.tag);
      }
      if (size > this.discardLimit) return this.error('TOOBIG', problem, cmd.tag, true);
      // RFC 7888 §4: reject with BAD [TOOBIG] and read and discard the data.
      this.mode = 'discardLiteral';
      this.discardLeft = size;
      return this.error('TOOBIG', problem, cmd.tag);
    }
    cmd.size += size;
    // Unpooled and grown as bytes arrive, never beyond `size`; every byte is written before the token is handed out.
    this.lit = { data: Buffer.allocUnsafeSlow(Math.min(size, LITERAL_INITIAL_BYTES)), filled: 0, size, literal8 };
    this.mode = 'literal';
    return sync ? { type: 'continue', size } : true;
  }

  private complete(cmd: CommandState): DecoderEvent {
    this.cmd = null;
    this.mode = 'idle';
    const root = cmd.frames[0]!.items;
    const first = root[0];
    if (first === undefined || first.kind !== 'atom') return this.error('PARSE', 'missing command', cmd.tag);
    let name = first.value.toUpperCase();
    let args = root.slice(1);
    if (name === 'UID') {
      const sub = root[1];
      if (sub === undefined || sub.kind !== 'atom') return this.error('PARSE', 'missing command after UID', cmd.tag);
      name = 'UID ' + sub.value.toUpperCase();
      args = root.slice(2);
    }
    return { type: 'command', tag: cmd.tag, name, args };
  }

  // ---- tokeniser -----------------------------------------------------------

  /** Tokenise the complete fragment [p, end). Throws Fail. */
  private tokenize(cmd: CommandState, p: number, end: number): FragmentResult {
    const b = this.buf;
    const frames = cmd.frames;
    while (p < end) {
      const c = b[p]!;
      const top = frames[frames.length - 1]!;
      if (c === SP) {
        if (!cmd.expectDelim) throw new Fail('PARSE', 'unexpected space');
        cmd.expectDelim = false;
        p++;
        if (p === end) throw new Fail('PARSE', 'trailing space');
        continue;
      }
      if (c === RPAREN) {
        if (top.kind !== 'list') throw new Fail('PARSE', 'unexpected ")"');
        if (!cmd.expectDelim && top.items.length > 0) throw new Fail('PARSE', 'space before ")"');
        frames.pop();
        cmd.expectDelim = true;
        p++;
        continue;
      }
      if (c === RBRACKET && top.kind === 'section') {
        if (!cmd.expectDelim && top.items.length > 0) throw new Fail('PARSE', 'space before "]"');
        p = this.closeSection(cmd, p + 1, end);
        continue;
      }
      if (cmd.expectDelim) throw new Fail('PARSE', 'expected space between tokens');
      // A token starts here.
      if (++cmd.tokens > this.limits.maxTokens) throw new Fail('LIMIT', `more than ${this.limits.maxTokens} tokens`);
      const commandPosition = top.kind === 'root' && this.isCommandPosition(top.items);
      if (c === LPAREN) {
        if (commandPosition) throw new Fail('PARSE', 'expected command name');
        if (frames.length > this.limits.maxDepth) throw new Fail('LIMIT', `lists nested deeper than ${this.limits.maxDepth}`);
        const list: ListToken = { kind: 'list', items: [] };
        top.items.push(list);
        frames.push({ kind: 'list', items: list.items, list });
        p++;
        continue;
      }
      if (c === DQUOTE) {
        if (commandPosition) throw new Fail('PARSE', 'expected command name');
        p = this.quoted(top, p, end);
        cmd.expectDelim = true;
        continue;
      }
      if (c === LBRACE || (c === TILDE && p + 1 < end && b[p + 1] === LBRACE)) {
        if (commandPosition) throw new Fail('PARSE', 'expected command name');
        return this.literalHeader(p, end);
      }
      if (!isAtomByte(c)) {
        if (c === CR) throw new Fail('PARSE', 'CR not followed by LF');
        if (c === 0) throw new Fail('PARSE', 'NUL in command line');
        if (c >= 0x80) throw new Fail('PARSE', '8-bit byte outside a quoted string or literal');
        throw new Fail('PARSE', `unexpected character 0x${c.toString(16).padStart(2, '0')}`);
      }
      // Atom.
      let q = p;
      let sectionOpen = false;
      while (q < end) {
        const d = b[q]!;
        if (!isAtomByte(d)) break;
        if (d === RBRACKET && cmd.inSection) break;
        if (d === LBRACKET && !cmd.inSection && q - p <= LONGEST_SECTION_ATOM && q > p) {
          if (SECTION_ATOMS.has(b.toString('latin1', p, q).toUpperCase())) {
            sectionOpen = true;
            break;
          }
        }
        q++;
      }
      if (sectionOpen) {
        if (commandPosition) throw new Fail('PARSE', 'expected command name');
        if (frames.length > this.limits.maxDepth) throw new Fail('LIMIT', `lists nested deeper than ${this.limits.maxDepth}`);
        const atom: AtomToken = { kind: 'atom', value: b.toString('latin1', p, q).toUpperCase(), section: [] };
        top.items.push(atom);
        frames.push({ kind: 'section', items: atom.section!, atom });
        cmd.inSection = true;
        p = q + 1;
        continue;
      }
      top.items.push({ kind: 'atom', value: b.toString('latin1', p, q) });
      cmd.expectDelim = true;
      p = q;
    }
    if (frames.length > 1) throw new Fail('PARSE', frames[frames.length - 1]!.kind === 'list' ? 'unclosed "("' : 'unclosed "["');
    return { kind: 'done' };
  }

  /** The next root token is the command name (or the command after UID): it must be a plain atom. */
  private isCommandPosition(root: Token[]): boolean {
    if (root.length === 0) return true;
    if (root.length === 1) {
      const t = root[0]!;
      return t.kind === 'atom' && t.value.toUpperCase() === 'UID';
    }
    return false;
  }

  /** "]" closed a section at p-1; read an optional partial. Returns the new position. */
  private closeSection(cmd: CommandState, p: number, end: number): number {
    const b = this.buf;
    const frame = cmd.frames.pop()!;
    cmd.inSection = false;
    cmd.expectDelim = true;
    if (p < end && b[p] === LT) {
      // RFC 9051 §9: partial = "<" number64 "." nz-number64 ">" (we also take "<n>"; the command checks).
      let q = p + 1;
      const d0 = q;
      while (q < end && isDigit(b[q]!)) q++;
      if (q === d0) throw new Fail('PARSE', 'invalid partial');
      if (q < end && b[q] === DOT) {
        q++;
        const d1 = q;
        while (q < end && isDigit(b[q]!)) q++;
        if (q === d1) throw new Fail('PARSE', 'invalid partial');
      }
      if (q >= end || b[q] !== GT) throw new Fail('PARSE', 'invalid partial');
      frame.atom!.partial = b.toString('latin1', p + 1, q);
      return q + 1;
    }
    return p;
  }

  /** Quoted string starting at DQUOTE p. Returns the position after the closing DQUOTE. */
  private quoted(top: Frame, p: number, end: number): number {
    const b = this.buf;
    let q = p + 1;
    let escapes = 0;
    for (;;) {
      if (q >= end) throw new Fail('PARSE', 'unterminated quoted string');
      const c = b[q]!;
      if (c === DQUOTE) break;
      if (c === BACKSLASH) {
        const n = q + 1 < end ? b[q + 1]! : -1;
        if (n !== DQUOTE && n !== BACKSLASH) throw new Fail('PARSE', 'invalid escape in quoted string');
        escapes++;
        q += 2;
        continue;
      }
      if (c === CR || c === LF || c === 0) throw new Fail('PARSE', 'CR, LF or NUL in quoted string');
      q++;
    }
    let bytes: Buffer;
    if (escapes === 0) {
      bytes = Buffer.from(b.subarray(p + 1, q));
    } else {
      bytes = Buffer.allocUnsafe(q - p - 1 - escapes);
      let o = 0;
      for (let i = p + 1; i < q; i++) {
        let c = b[i]!;
        if (c === BACKSLASH) c = b[++i]!;
        bytes[o++] = c;
      }
    }
    top.items.push({ kind: 'string', bytes, literal: false, literal8: false });
    return q + 1;
  }

  /** `{n}`, `{n+}`, `~{n}`, `~{n+}` at p; must end the line (RFC 9051 §9 literal). */
  private literalHeader(p: number, end: number): FragmentResult {
    const b = this.buf;
    const literal8 = b[p] === TILDE;
    let q = literal8 ? p + 2 : p + 1;
    const d0 = q;
    while (q < end && isDigit(b[q]!)) q++;
    if (q === d0) throw new Fail('PARSE', 'invalid literal header');
    const digits = b.toString('latin1', d0, q);
    let sync = true;
    if (q < end && b[q] === PLUS) {
      sync = false;
      q++;
    } else if (q < end && b[q] === MINUS) {
      // "{n-}" is not literal syntax: LITERAL- still uses "+" (RFC 7888 §5).
      throw new Fail('PARSE', 'invalid literal header');
    }
    if (q >= end || b[q] !== RBRACE) throw new Fail('PARSE', 'invalid literal header');
    if (q + 1 !== end) throw new Fail('PARSE', 'literal header must end the line');
    const size = digits.length > 15 ? Number.POSITIVE_INFINITY : Number(digits);
    return { kind: 'literal', size, sync, literal8 };
  }
}

/** If `line` ends with a non-synchronizing literal header, its size; else -1. */
function trailingNonSyncLiteral(line: Buffer): number {
  const m = /\{(\d+)\+\}$/.exec(line.toString('latin1'));
  if (!m) return -1;
  const digits = m[1]!;
  return digits.length > 15 ? Number.POSITIVE_INFINITY : Number(digits);
}

/** The tag at the start of a (possibly incomplete) line, if it is well-formed and followed by SP. */
function peekTag(buf: Buffer, start: number, end: number): string | undefined {
  let p = start;
  while (p < end && p - start <= MAX_TAG_LENGTH && isTagByte(buf[p]!)) p++;
  if (p === start || p >= end || buf[p] !== SP || p - start > MAX_TAG_LENGTH) return undefined;
  return buf.toString('latin1', start, p);
}
