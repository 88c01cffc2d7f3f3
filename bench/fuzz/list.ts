// Fuzz target for the LIST matcher (src/commands/list-match.ts):
// 1. small random patterns and names: the compiled matcher must agree with the
//    exponential reference matcher;
// 2. large hostile patterns (wildcard runs, "%a%a…", literal floods, INBOX
//    spellings) against long names: no exception but PatternTooLongError, and
//    every match within MAX_MATCH_MS.
// Findings are written to test/fixtures/fuzz/list/ as JSON and replayed by
// test/commands/list-match.test.ts.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { compileListPattern, referenceListMatch, PatternTooLongError } from '../../src/commands/list-match.ts';
import type { FuzzOptions, FuzzResult } from './run.ts';
import { prng } from './lib/fuzz.ts';

/** A single compile + match slower than this is a finding (the loop must stay responsive). */
const MAX_MATCH_MS = 20;
const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../test/fixtures/fuzz/list');


const SMALL = ['a', 'b', '/', '*', '%', 'I', 'N', 'B', 'O', 'X', 'i', 'n', 'x', '.', 'é', '\u{1F600}'];

function timeMatch(pattern: string, name: string, onError: (e: unknown) => void = () => {}): number {
  const t0 = performance.now();
  try {
    compileListPattern(pattern).test(name);
  } catch (e) {
    if (!(e instanceof PatternTooLongError)) onError(e);
  }
  return performance.now() - t0;
}

export function fuzz(o: FuzzOptions): FuzzResult {
  const r = prng(o.seed);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)]!;
  const small = (max: number) => {
    let s = '';
    const n = Math.floor(r() * (max + 1));
    for (let i = 0; i < n; i++) s += pick(SMALL);
    return s;
  };
  const big = (): string => {
    const unit = pick(['%*', '%a', '*a', 'a%', '%', '*', 'ab/', 'INBOX/', 'a']);
    return unit.repeat(1 + Math.floor(r() * 1500)) + pick(['', 'x', 'b', '/%', '*']);
  };
  const longName = (): string => pick(['a', 'ab', 'a/', 'abcdefghij/', 'x']).repeat(1 + Math.floor(r() * 500)).slice(0, 1024);
  const findings: string[] = [];
  const record = (kind: string, pattern: string, name: string, detail: string) => {
    if (findings.length >= 20) return;
    findings.push(`${kind}: ${detail} pattern=${JSON.stringify(pattern.slice(0, 80))} name=${JSON.stringify(name.slice(0, 80))}`);
    mkdirSync(FIXTURES, { recursive: true });
    writeFileSync(path.join(FIXTURES, `${kind}-${o.seed}-${findings.length}.json`), JSON.stringify({ kind, pattern, name, detail }) + '\n');
  };
  for (let i = 0; i < o.runs; i++) {
    if (i % 50 !== 49) {
      const pattern = small(9);
      const name = r() < 0.5 ? small(12) : pattern.replace(/[*%]/g, () => pick(['', 'a', '/', 'ab', 'X'])); // RegExp on our own generated input
      const caseless = r() < 0.8;
      let got: boolean;
      try {
        got = compileListPattern(pattern, '/', caseless).test(name);
      } catch (e) {
        record('throws', pattern, name, String(e));
        continue;
      }
      if (got !== referenceListMatch(pattern, name, '/', caseless)) record('mismatch', pattern, name, `got ${got}`);
    } else {
      const pattern = big();
      const name = longName();
      const ms = timeMatch(pattern, name, (e) => record('throws', pattern, name, String(e)));
      // On a loaded machine one run can be descheduled: a slow case is re-timed, the fastest run counts.
      if (ms > MAX_MATCH_MS && Math.min(ms, timeMatch(pattern, name), timeMatch(pattern, name)) > MAX_MATCH_MS) {
        record('slow', pattern, name, `${ms.toFixed(1)} ms`);
      }
    }
  }
  return { inputs: o.runs, findings };
}
