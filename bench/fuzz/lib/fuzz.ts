// The fuzzing engine behind `npm run fuzz -- <target>`: a coverage-free,
// feedback-driven mutator. Each target (bench/fuzz/<target>.ts) names its
// seeds and a dictionary of protocol tokens, and runs one input, throwing on a
// finding (a crash, a broken invariant) and otherwise returning an "outcome
// signature" (which events or errors the input produced). Inputs that produce
// a signature not seen before join the pool that further inputs are mutated
// from, so the run drifts towards inputs that reach new behaviour, without
// instrumenting the code. Inputs slower than the target's budget are findings
// too (the event loop must never block).
//
// Findings and a sample of signature-novel inputs are written to
// test/fixtures/fuzz/<target>/, where test/fuzz/replay.test.ts replays them
// on every `npm test`.
import { createHash } from 'node:crypto';

export interface FuzzTarget {
  name: string;
  description: string;
  /** Starting inputs (hand-written protocol samples, fixture files). */
  seeds(): Buffer[] | Promise<Buffer[]>;
  /** Tokens inserted by mutations: keywords, delimiters, escapes. */
  dictionary: readonly string[];
  /** Largest input the mutator builds. */
  maxInputBytes: number;
  /** One-time setup (e.g. a store to run searches against). */
  init?(): Promise<void>;
  /** Runs one input: throws on a finding, else returns the outcome signature. Must be synchronous. */
  run(input: Buffer): string;
  close?(): Promise<void>;
}

/** One input taking longer than this is a finding: anything a client sends must stay far below the 50 ms event-loop budget. */
export const SLOW_INPUT_MS = 20;

/** mulberry32, seeded: runs are reproducible with --seed (the one PRNG of the tests). */
import { prng } from '../../../test/helpers/rng.ts';
export { prng };

/** A deterministic PRNG derived from an input (for targets that split or vary an input the same way on every replay). */
export function prngOf(input: Buffer): () => number {
  return prng(createHash('sha1').update(input).digest().readUInt32LE(0));
}

const SPECIAL_BYTES = [0x00, 0x0a, 0x0d, 0x20, 0x22, 0x28, 0x29, 0x2a, 0x25, 0x5c, 0x7b, 0x7d, 0x5b, 0x5d, 0x3c, 0x3e, 0x2e, 0x2b, 0x2d, 0x7e, 0x3d, 0x3b, 0x3a, 0x40, 0x7f, 0x80, 0xc3, 0xff, 0x30, 0x39];

export class Mutator {
  constructor(
    private readonly r: () => number,
    private readonly dict: readonly Buffer[],
    private readonly maxBytes: number,
  ) {}

  private int(n: number): number {
    return Math.floor(this.r() * n);
  }

  /** 1-4 stacked mutations of `base`, sometimes spliced with `other`. */
  mutate(base: Buffer, other: Buffer): Buffer {
    let b = base;
    const rounds = 1 + this.int(4);
    for (let i = 0; i < rounds; i++) b = this.once(b, other);
    return b.length > this.maxBytes ? b.subarray(0, this.maxBytes) : b;
  }

  private once(b: Buffer, other: Buffer): Buffer {
    const pos = this.int(b.length + 1);
    switch (this.int(10)) {
      case 0: { // flip a bit
        if (b.length === 0) return b;
        const c = Buffer.from(b);
        c[this.int(c.length)] ^= 1 << this.int(8);
        return c;
      }
      case 1: { // set a byte to a special one
        if (b.length === 0) return Buffer.from([SPECIAL_BYTES[this.int(SPECIAL_BYTES.length)]!]);
        const c = Buffer.from(b);
        c[this.int(c.length)] = SPECIAL_BYTES[this.int(SPECIAL_BYTES.length)]!;
        return c;
      }
      case 2:
      case 3: { // insert a dictionary token
        const t = this.dict[this.int(this.dict.length)] ?? Buffer.from(' ');
        return Buffer.concat([b.subarray(0, pos), t, b.subarray(pos)]);
      }
      case 4: { // delete a range
        const len = 1 + this.int(Math.min(32, Math.max(1, b.length - pos)));
        return Buffer.concat([b.subarray(0, pos), b.subarray(pos + len)]);
      }
      case 5: { // repeat a range (nesting, long runs)
        const len = 1 + this.int(Math.min(16, Math.max(1, b.length - pos)));
        const piece = b.subarray(pos, pos + len);
        const times = 1 + this.int(this.int(4) === 0 ? 200 : 8);
        return Buffer.concat([b.subarray(0, pos + len), ...Array.from({ length: times }, () => piece), b.subarray(pos + len)]);
      }
      case 6: { // splice with another input
        const at = this.int(other.length + 1);
        return Buffer.concat([b.subarray(0, pos), other.subarray(at)]);
      }
      case 7: { // a number: boundary values for sizes, counts and sequence sets
        const nums = ['0', '1', '4294967295', '4294967296', '2147483648', '18446744073709551616', '-1', '99999999999999999999', '65536', '4096'];
        return Buffer.concat([b.subarray(0, pos), Buffer.from(nums[this.int(nums.length)]!), b.subarray(pos)]);
      }
      case 8: // truncate
        return b.subarray(0, pos);
      default: { // random byte
        const c = Buffer.from([this.int(256)]);
        return Buffer.concat([b.subarray(0, pos), c, b.subarray(pos)]);
      }
    }
  }
}

export function hashOf(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex').slice(0, 16);
}
