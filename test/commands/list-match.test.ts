// The LIST matcher (src/commands/list-match.ts, issue 10 item 1): agrees with
// an exponential reference matcher on small inputs, stays fast on the
// patterns that made the old RegExp backtrack, and bounds pattern length.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileListPattern, referenceListMatch, MAX_LIST_PATTERN_LENGTH, PatternTooLongError } from '../../src/commands/list-match.js';

const alphabet = ['a', 'b', '/', '*', '%', 'I', 'N', 'B', 'O', 'X', 'i', 'n', 'o', 'x', '.'];
const nameChars = ['a', 'b', '/', 'I', 'N', 'B', 'O', 'X', 'i', 'x', '.', '*', '%'];
const str = (chars: string[], max: number) => fc.array(fc.constantFrom(...chars), { maxLength: max }).map((a) => a.join(''));

test('the matcher agrees with the reference matcher (random patterns and names)', () => {
  fc.assert(
    fc.property(str(alphabet, 10), str(nameChars, 12), fc.boolean(), (pattern, name, caseless) => {
      assert.equal(compileListPattern(pattern, '/', caseless).test(name), referenceListMatch(pattern, name, '/', caseless), `${pattern} ~ ${name}`);
    }),
    { numRuns: 20_000, seed: 10 },
  );
});

test('the matcher agrees with the reference on names built from the pattern', () => {
  // Names derived from the pattern match far more often than random ones.
  const derived = str(alphabet, 8).chain((p) =>
    fc.tuple(fc.constant(p), fc.array(fc.constantFrom('', 'a', 'b/', '/', 'ab', 'X'), { minLength: p.length, maxLength: p.length })),
  );
  fc.assert(
    fc.property(derived, ([pattern, fills]) => {
      let name = '';
      for (let i = 0; i < pattern.length; i++) name += pattern[i] === '*' || pattern[i] === '%' ? fills[i]! : pattern[i]!;
      assert.equal(compileListPattern(pattern).test(name), referenceListMatch(pattern, name), `${pattern} ~ ${name}`);
    }),
    { numRuns: 20_000, seed: 11 },
  );
});

test('the matcher agrees with the reference on long patterns with few wildcards (several state words)', () => {
  const long = fc
    .tuple(fc.array(str(['a', 'b', '/'], 14), { minLength: 1, maxLength: 4 }), fc.array(fc.constantFrom('*', '%'), { minLength: 3, maxLength: 3 }))
    .map(([lits, wilds]) => lits.map((l, i) => l + (i < lits.length - 1 ? wilds[i] : '')).join(''));
  fc.assert(
    fc.property(long, str(['a', 'b', '/'], 50), (pattern, name) => {
      assert.equal(compileListPattern(pattern).test(name), referenceListMatch(pattern, name), `${pattern} ~ ${name}`);
      const self = pattern.replace(/[*%]/g, ''); // test-only RegExp on generated input
      assert.equal(compileListPattern(pattern).test(self), referenceListMatch(pattern, self));
    }),
    { numRuns: 5_000, seed: 12 },
  );
});

test('state sets wider than one 32-bit word carry across words', () => {
  const p = 'a%'.repeat(40) + 'z';
  const yes = 'a'.repeat(40) + 'z';
  const m = compileListPattern(p);
  assert.equal(m.test(yes), true);
  assert.equal(m.test('a'.repeat(39) + 'z'), false);
  assert.equal(m.test('ab'.repeat(40) + 'z'), true);
  assert.equal(m.test('ab'.repeat(20) + '/' + 'ab'.repeat(20) + 'z'), false, '"%" does not cross the delimiter');
  assert.equal(compileListPattern('a*'.repeat(40) + 'z').test('ab'.repeat(20) + '/' + 'ab'.repeat(20) + 'z'), true);
});

test('INBOX compares case-insensitively only in its own level', () => {
  assert.equal(compileListPattern('inb%').test('INBOX'), true);
  assert.equal(compileListPattern('*box').test('INBOX'), true);
  assert.equal(compileListPattern('inbox/%').test('INBOX/Sub'), true);
  assert.equal(compileListPattern('*box/sub').test('INBOX/Sub'), false);
  assert.equal(compileListPattern('inbox%').test('INBOXes'), false);
  assert.equal(compileListPattern('Inbox/Sub').test('INBOX/Sub'), true);
  assert.equal(compileListPattern('inbox').test('Inbox'), false, 'a name that is not INBOX is case-sensitive');
});

test('hostile patterns of the longest allowed size finish in milliseconds against long names', () => {
  const names = [
    'a'.repeat(1000),
    'a/'.repeat(500),
    ('abcdefghij'.repeat(3) + '/').repeat(30),
    'x'.repeat(1024),
  ];
  const patterns = [
    '%*'.repeat(5) + 'x', // the 11-byte pattern that took 8 s
    '%*'.repeat(512) + 'x',
    ('%*'.repeat(100_000) + 'x'), // runs of wildcards merge: any length up to the line limit
    '%a'.repeat(MAX_LIST_PATTERN_LENGTH / 2 - 1) + 'b',
    '*a'.repeat(MAX_LIST_PATTERN_LENGTH / 2 - 1) + 'b',
    'a%'.repeat(300) + '/' + '*',
    'a'.repeat(5000), // more literal characters than any name: matches nothing
  ];
  const t0 = process.hrtime.bigint();
  for (const p of patterns) {
    const m = compileListPattern(p);
    for (const n of names) m.test(n);
  }
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  // The old RegExp needed 8 s for the first pattern against one 30-character name.
  assert.ok(ms < 500, `took ${ms.toFixed(1)} ms`);
  assert.equal(compileListPattern('%*'.repeat(512) + 'x').test('x'.repeat(1024)), true);
  assert.equal(compileListPattern('%*'.repeat(512) + 'x').test('a'.repeat(1000)), false);
});

test('a pattern longer than MAX_LIST_PATTERN_LENGTH after merging wildcards is refused', () => {
  assert.throws(() => compileListPattern('%a'.repeat(MAX_LIST_PATTERN_LENGTH)), PatternTooLongError);
  compileListPattern('%*'.repeat(MAX_LIST_PATTERN_LENGTH)); // merges to "*"
});

test('fuzz findings replay (test/fixtures/fuzz/list, written by `npm run fuzz -- list`)', () => {
  const dir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/fuzz/list');
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.json')) : [];
  for (const f of files) {
    const { pattern, name } = JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as { pattern: string; name: string };
    const t0 = Date.now();
    let got: boolean | null = null;
    try {
      got = compileListPattern(pattern).test(name);
    } catch (e) {
      assert.ok(e instanceof PatternTooLongError, `${f}: ${String(e)}`);
    }
    assert.ok(Date.now() - t0 < 200, `${f} is slow`);
    if (got !== null && pattern.length <= 12 && name.length <= 14) assert.equal(got, referenceListMatch(pattern, name), f);
  }
});
