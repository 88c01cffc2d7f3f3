// Replays the cases the fuzzers kept (test/fixtures/fuzz/<target>/*.bin:
// former crashes and slow inputs, and a sample of inputs that reached
// distinct behaviour) through the same targets and invariants as
// `npm run fuzz` (bench/fuzz/), so that a fixed finding stays fixed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { keptCases, loadTarget, targetNames } from '../../bench/fuzz/run.ts';

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/fuzz');
/** Per input; the fuzzer's own budget is 20 ms, this allows for a loaded CI machine. */
const MAX_MS = 1000;

const dirs = existsSync(FIXTURES) ? readdirSync(FIXTURES).sort() : [];

test('every fixture directory belongs to a fuzz target', () => {
  const names = targetNames();
  for (const d of dirs) assert.ok(names.includes(d), `test/fixtures/fuzz/${d} has no bench/fuzz/${d}.ts`);
});

for (const name of dirs) {
  test(`fuzz cases of ${name} replay cleanly`, async () => {
    const target = await loadTarget(name);
    // Self-driving targets (list) replay their own fixtures in their own tests (test/commands/list-match.test.ts).
    if (!target) return;
    await target.init?.();
    try {
      const cases = keptCases(name);
      assert.ok(cases.length > 0, `test/fixtures/fuzz/${name} holds no cases`);
      for (const [file, input] of cases) {
        const t0 = performance.now();
        try {
          target.run(input);
        } catch (e) {
          assert.fail(`${name}/${file}: ${e instanceof Error ? e.stack : String(e)}`);
        }
        const ms = performance.now() - t0;
        assert.ok(ms < MAX_MS, `${name}/${file} took ${ms.toFixed(0)} ms`);
      }
    } finally {
      await target.close?.();
    }
  });
}
