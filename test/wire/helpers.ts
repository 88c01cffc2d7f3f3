// Shared fixture driver for the wire decoder: every fixture is run on the
// whole input, fed one byte at a time, and cut in two at every index; all
// runs must produce identical events (STYLE.md habit 3).

import assert from 'node:assert/strict';
import { CommandDecoder, DEFAULT_DECODER_LIMITS, type DecoderEvent, type DecoderLimits, type Token } from '../../src/wire/index.js';
export { prng } from '../helpers/rng.js';
import { prng } from '../helpers/rng.js';

/** Compact, readable form of a token for fixtures. */
export type SimpleToken =
  | string // atom
  | { q: string } // quoted string (latin1 view of the bytes)
  | { lit: string } // literal
  | { lit8: string } // literal8
  | { atom: string; section: SimpleToken[]; partial?: string }
  | SimpleToken[]; // list

export type SimpleEvent =
  | ['command', string, string, SimpleToken[]]
  | ['continue', number]
  | ['line', string]
  | ['error', string, string | null, boolean];

export function simplifyToken(t: Token): SimpleToken {
  switch (t.kind) {
    case 'atom':
      if (t.section) {
        const s: { atom: string; section: SimpleToken[]; partial?: string } = { atom: t.value, section: t.section.map(simplifyToken) };
        if (t.partial !== undefined) s.partial = t.partial;
        return s;
      }
      return t.value;
    case 'string': {
      const text = t.bytes.toString('latin1');
      return t.literal8 ? { lit8: text } : t.literal ? { lit: text } : { q: text };
    }
    case 'list':
      return t.items.map(simplifyToken);
  }
}

export function simplify(ev: DecoderEvent): SimpleEvent {
  switch (ev.type) {
    case 'command':
      return ['command', ev.tag, ev.name, ev.args.map(simplifyToken)];
    case 'continue':
      return ['continue', ev.size];
    case 'line':
      return ['line', ev.line.toString('latin1')];
    case 'error':
      return ['error', ev.code, ev.tag ?? null, ev.fatal];
  }
}

export interface Fixture {
  name: string;
  /** Raw bytes; a string is taken as latin1 so "\xff" is one byte. */
  input: string | Buffer;
  limits?: Partial<DecoderLimits>;
  /** Command names after which the driver calls expectLine() (IDLE, AUTHENTICATE). */
  expectLineAfter?: string[];
  events: SimpleEvent[];
}

export function bytes(input: string | Buffer): Buffer {
  return typeof input === 'string' ? Buffer.from(input, 'latin1') : input;
}

export function makeDecoder(limits?: Partial<DecoderLimits>): CommandDecoder {
  return new CommandDecoder({ ...DEFAULT_DECODER_LIMITS, ...limits });
}

/** Feed `chunks` in order, draining events after each push like a server would. */
export function runChunks(chunks: Buffer[], limits?: Partial<DecoderLimits>, expectLineAfter: string[] = []): SimpleEvent[] {
  const dec = makeDecoder(limits);
  const out: SimpleEvent[] = [];
  const drain = (): void => {
    for (let ev = dec.next(); ev !== null; ev = dec.next()) {
      out.push(simplify(ev));
      if (ev.type === 'command' && expectLineAfter.includes(ev.name)) dec.expectLine();
      if (ev.type === 'error' && ev.fatal) return;
    }
  };
  for (const c of chunks) {
    dec.push(c);
    drain();
  }
  drain();
  return out;
}


/** Every way of feeding `buf` the helper tries: whole, byte by byte, every 2-cut, some random cuts. */
export function* splits(buf: Buffer, seed = 1): Generator<[string, Buffer[]]> {
  yield ['whole', [buf]];
  const singles: Buffer[] = [];
  for (let i = 0; i < buf.length; i++) singles.push(buf.subarray(i, i + 1));
  yield ['byte-at-a-time', singles];
  for (let i = 1; i < buf.length; i++) yield [`cut at ${i}`, [buf.subarray(0, i), buf.subarray(i)]];
  const rnd = prng(seed);
  for (let k = 0; k < 20; k++) {
    const parts: Buffer[] = [];
    let p = 0;
    while (p < buf.length) {
      const n = 1 + Math.floor(rnd() * 7);
      parts.push(buf.subarray(p, p + n));
      p += n;
    }
    yield [`random cuts #${k}`, parts];
  }
}

/** Run one fixture every way and check the events. */
export function checkFixture(fx: Fixture): void {
  const buf = bytes(fx.input);
  for (const [how, chunks] of splits(buf)) {
    // Chunks are copied so the decoder cannot rely on the caller keeping them.
    const events = runChunks(
      chunks.map((c) => Buffer.from(c)),
      fx.limits,
      fx.expectLineAfter,
    );
    assert.deepEqual(events, fx.events, `${fx.name} (${how})`);
  }
}
