// Fuzz target: the IMAP command decoder (src/wire/decoder.ts).
// Invariants checked on every input:
// - it never throws; every event is one of its own (command, continue, line, error with an RFC 5530 code);
// - split invariance: fed whole, or cut at random points and drained after each chunk, it yields the same events;
// - bounded memory: after draining, the bytes it holds stay within its line limit plus the last chunk;
// - after a fatal error it yields nothing more.
import { CommandDecoder } from '../../src/wire/decoder.ts';
import type { DecoderEvent, DecoderLimits, Token } from '../../src/wire/types.ts';
import { prngOf, type FuzzTarget } from './lib/fuzz.ts';

/** Small limits, so that inputs of a few KiB reach every limit. */
const LIMITS: DecoderLimits = {
  maxLineLength: 512,
  maxLiteralSize: 2048,
  maxNonSyncLiteral: 1024,
  maxCommandSize: 4096,
  maxDepth: 6,
  maxTokens: 200,
  maxDiscardLiteral: 2048,
};
/** Events drained per input at most: every command needs bytes, so far more than any input can yield. */
const MAX_EVENTS = 10_000;
const CODES = new Set(['PARSE', 'TOOBIG', 'LIMIT', 'BADCHARSET', 'CLIENTBUG']);

function tok(t: Token): string {
  if (t.kind === 'atom') return `a:${t.value}${t.section ? `[${t.section.map(tok).join(' ')}]` : ''}${t.partial !== undefined ? `<${t.partial}>` : ''}`;
  if (t.kind === 'string') return `${t.literal ? (t.literal8 ? 'l8' : 'l') : 'q'}:${t.bytes.toString('hex')}`;
  return `(${t.items.map(tok).join(' ')})`;
}

function show(ev: DecoderEvent): string {
  switch (ev.type) {
    case 'command': return `cmd ${ev.tag} ${ev.name} ${ev.args.map(tok).join(' ')}`;
    case 'error': return `err ${ev.code} ${ev.fatal ? 'fatal' : ''} ${ev.tag ?? ''}`;
    default: return JSON.stringify(ev);
  }
}

function check(ev: DecoderEvent): void {
  if (ev.type === 'error') {
    if (!CODES.has(ev.code)) throw new Error(`unexpected error code ${ev.code}`);
    if (typeof ev.message !== 'string' || ev.message.length === 0) throw new Error('error without a message');
  } else if (ev.type !== 'command' && ev.type !== 'continue' && ev.type !== 'line') throw new Error(`unknown event ${JSON.stringify(ev)}`);
}

function drain(d: CommandDecoder, out: string[], dead: { v: boolean }): void {
  for (let ev = d.next(); ev; ev = d.next()) {
    if (dead.v) throw new Error(`event after a fatal error: ${show(ev)}`);
    check(ev);
    out.push(show(ev));
    if (ev.type === 'error' && ev.fatal) dead.v = true;
    if (out.length > MAX_EVENTS) throw new Error('decoder yields events without consuming input');
  }
}

const target: FuzzTarget = {
  name: 'wire',
  description: 'IMAP command decoder: events, split invariance, bounded buffering',
  maxInputBytes: 6000,
  seeds: () => [
    'a1 LOGIN alice secret\r\n',
    'a2 LOGIN {5}\r\nalice {6+}\r\nsecret\r\n',
    'a3 APPEND INBOX (\\Seen) "7-Feb-1994 21:52:25 -0800" {12+}\r\nHello world!\r\n',
    'a4 APPEND INBOX ~{5}\r\nab\0cd\r\n',
    'a5 UID FETCH 1:*,4294967295 (FLAGS BODY.PEEK[HEADER.FIELDS (From To)]<0.100> BINARY[1.2]) (CHANGEDSINCE 12)\r\n',
    'a6 SEARCH CHARSET UTF-8 OR (FROM "a\\"b" SUBJECT {3}\r\nxyz) NOT (SINCE 1-Feb-2020 (LARGER 10))\r\n',
    'a7 LIST "" "%/*"\r\na8 STATUS "&AGE-" (MESSAGES UIDNEXT)\r\n',
    'a9 IDLE\r\nDONE\r\n',
    'b1 STORE 1:3 +FLAGS.SILENT (\\Deleted $Label)\r\n\r\nb2 NOOP\n',
    'b3 AUTHENTICATE PLAIN\r\nAGFsaWNlAHNlY3JldA==\r\n',
    'b4 ID ("name" "x" "version" NIL)\r\n',
    'b5 APPEND INBOX {99999999}\r\n',
    'b6 SELECT (((((((((x)))))))))\r\n',
  ].map((s) => Buffer.from(s, 'latin1')),
  dictionary: ['\r\n', '\n', ' ', '{', '}', '{5}', '{0}', '{3+}', '{2000-}', '{4097+}', '~{4}', '"', '\\"', '\\\\', '(', ')', '[', ']', '<', '>', '<0.5>',
    'BODY[', 'BODY.PEEK[', 'BINARY[', 'HEADER.FIELDS', ']<1.2>', 'NIL', '*', '%', '1:*', 'a1 ', 'APPEND', 'LOGIN', 'SEARCH', 'FETCH', 'DONE', '+', '\0', '\r', '\xff'],
  run(input) {
    // Whole.
    const whole = new CommandDecoder(LIMITS);
    const a: string[] = [];
    whole.push(input);
    drain(whole, a, { v: false });
    // Cut at random points (the same points on every replay of this input), drained after each chunk.
    const r = prngOf(input);
    const split = new CommandDecoder(LIMITS);
    const b: string[] = [];
    const dead = { v: false };
    for (let off = 0; off < input.length; ) {
      const n = r() < 0.3 ? 1 : 1 + Math.floor(r() * 64);
      const chunk = input.subarray(off, off + n);
      off += n;
      split.push(chunk);
      drain(split, b, dead);
      if (!dead.v && split.bufferedBytes > LIMITS.maxLineLength + 2 + chunk.length) throw new Error(`decoder holds ${split.bufferedBytes} bytes after draining`);
    }
    if (a.length !== b.length || a.some((x, i) => x !== b[i])) {
      const i = a.findIndex((x, k) => x !== b[k]);
      throw new Error(`split changes the events at ${i}: whole ${a[i] ?? '(none)'} / split ${b[i] ?? '(none)'}`);
    }
    // The outcome: kinds of the first events, command names, error codes and whether fatal (tags and arguments left out).
    return a.slice(0, 6).map((s) => {
      const w = s.split(' ');
      return w[0] === 'cmd' ? `cmd ${w[2]} ${w.length > 3 ? w[3]!.slice(0, 2) : ''}` : w[0] === 'err' ? `err ${w[1]} ${w[2]}` : s.slice(0, 20);
    }).join('|');
  },
};
export default target;
