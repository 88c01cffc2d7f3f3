// Sort programs (RFC 5256 §5 sort-criteria, RFC 5957 DISPLAYFROM/DISPLAYTO)
// and PARTIAL ranges (RFC 9394 §3) parsed from tokens.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePartialRange, parseSortCriteria, windowOf, MAX_SORT_CRITERIA } from '../../src/search/sort.js';
import { SearchSyntaxError } from '../../src/search/program.js';
import type { Token } from '../../src/wire/types.js';

const atoms = (s: string): Token[] => s.split(' ').filter(Boolean).map((value) => ({ kind: 'atom', value }) as Token);

test('sort criteria: every key, REVERSE per key, case-insensitive, repeats dropped', () => {
  assert.deepEqual(parseSortCriteria(atoms('ARRIVAL cc Date FROM SIZE SUBJECT TO DISPLAYFROM DISPLAYTO')).map((c) => c.key),
    ['arrival', 'cc', 'date', 'from', 'size', 'subject', 'to', 'displayfrom', 'displayto']);
  assert.deepEqual(parseSortCriteria(atoms('REVERSE DATE SUBJECT')), [{ key: 'date', reverse: true }, { key: 'subject', reverse: false }]);
  assert.deepEqual(parseSortCriteria(atoms('SUBJECT REVERSE SUBJECT')), [{ key: 'subject', reverse: false }]);
});

test('sort criteria: empty, dangling or doubled REVERSE, unknown keys, non-atoms and too many are errors', () => {
  for (const bad of ['', 'REVERSE', 'DATE REVERSE', 'REVERSE REVERSE DATE', 'NOSUCH']) assert.throws(() => parseSortCriteria(atoms(bad)), SearchSyntaxError, bad);
  assert.throws(() => parseSortCriteria([{ kind: 'list', items: [] } as unknown as Token]), SearchSyntaxError);
  const many = Array.from({ length: MAX_SORT_CRITERIA + 1 }, (_, i) => ['DATE', 'SIZE', 'FROM', 'TO', 'CC', 'SUBJECT', 'ARRIVAL', 'DISPLAYFROM', 'DISPLAYTO'][i % 9]).join(' ');
  assert.equal(parseSortCriteria(atoms(many)).length, 9); // repeats dropped before the cap matters
});

test('PARTIAL ranges: positive and negative, ends in either order; zero, mixed signs and junk refused', () => {
  assert.deepEqual(parsePartialRange('1:50'), { first: 1, last: 50 });
  assert.deepEqual(parsePartialRange('50:1'), { first: 1, last: 50 });
  assert.deepEqual(parsePartialRange('-1:-50'), { first: -1, last: -50 });
  assert.deepEqual(parsePartialRange('-50:-1'), { first: -1, last: -50 });
  for (const bad of ['0:5', '1:-5', '-1:5', '1', '1:*', 'a:b', '1:99999999999', '01:5', ':5']) assert.equal(parsePartialRange(bad), null, bad);
});

test('windows: from the start, from the end, past either end', () => {
  const xs = [10, 20, 30, 40, 50];
  assert.deepEqual(windowOf(xs, { first: 2, last: 3 }), [20, 30]);
  assert.deepEqual(windowOf(xs, { first: 4, last: 99 }), [40, 50]);
  assert.deepEqual(windowOf(xs, { first: 6, last: 9 }), []);
  assert.deepEqual(windowOf(xs, { first: -1, last: -2 }), [40, 50]);
  assert.deepEqual(windowOf(xs, { first: -2, last: -99 }), [10, 20, 30, 40]);
  assert.deepEqual(windowOf(xs, { first: -6, last: -9 }), []);
});
