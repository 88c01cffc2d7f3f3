import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  parseSequenceSet, normalizeRanges, resolveSequenceSet, iterateSequenceSet, containsNormalized,
  sequenceContains, formatSequenceSet, formatRanges, STAR,
} from '../../src/wire/index.js';

test('parse valid sets', () => {
  assert.deepEqual(parseSequenceSet('1'), { saved: false, ranges: [{ start: 1, end: 1 }] });
  assert.deepEqual(parseSequenceSet('1:3,7,9:*'), { saved: false, ranges: [{ start: 1, end: 3 }, { start: 7, end: 7 }, { start: 9, end: STAR }] });
  assert.deepEqual(parseSequenceSet('4:2'), { saved: false, ranges: [{ start: 2, end: 4 }] });
  assert.deepEqual(parseSequenceSet('*:4'), { saved: false, ranges: [{ start: 4, end: STAR }] });
  assert.deepEqual(parseSequenceSet('*'), { saved: false, ranges: [{ start: STAR, end: STAR }] });
  assert.deepEqual(parseSequenceSet('$'), { saved: true });
  assert.deepEqual(parseSequenceSet('4294967295'), { saved: false, ranges: [{ start: 4294967295, end: 4294967295 }] });
});

test('reject invalid sets', () => {
  for (const bad of ['', '0', '1:0', '01', '1,', ',1', '1,,2', '1:', ':1', '1:2:3', 'a', '-1', '1.5', '4294967296', '$,1', '$:1', ' 1', '1 ', '**', '1:*:2', '+1']) {
    assert.equal(parseSequenceSet(bad), null, bad);
  }
});

function ranges(s: string) {
  const set = parseSequenceSet(s);
  assert.ok(set && !set.saved);
  return set.ranges;
}

test('resolve: star, clipping, merging, order', () => {
  assert.deepEqual(resolveSequenceSet(ranges('1:3,7,9:*'), 10), [1, 2, 3, 7, 9, 10]);
  assert.deepEqual(resolveSequenceSet(ranges('3:*'), 2), [2]); // RFC 9051: "*" is the largest number in use
  assert.deepEqual(resolveSequenceSet(ranges('*:4'), 2), [2]);
  assert.deepEqual(resolveSequenceSet(ranges('5,1:2,2:3,100'), 6), [1, 2, 3, 5]);
  assert.deepEqual(resolveSequenceSet(ranges('1:*'), 0), []);
  assert.deepEqual([...iterateSequenceSet(ranges('2,1'), 5)], [1, 2]);
  assert.deepEqual(normalizeRanges(ranges('1:4000000000,5'), 3_000_000), [{ start: 1, end: 3_000_000 }]);
  assert.deepEqual(normalizeRanges(ranges('1,3,2,10:12,13'), 20), [{ start: 1, end: 3 }, { start: 10, end: 13 }]);
});

test('contains', () => {
  const n = normalizeRanges(ranges('1:3,7,9:*'), 100);
  assert.equal(containsNormalized(n, 2), true);
  assert.equal(containsNormalized(n, 5), false);
  assert.equal(containsNormalized(n, 100), true);
  assert.equal(containsNormalized(n, 101), false);
  assert.equal(sequenceContains(ranges('*'), 10, 10), true);
  assert.equal(sequenceContains(ranges('*:8'), 9, 10), true);
  assert.equal(sequenceContains(ranges('5'), 4, 10), false);
});

test('format', () => {
  assert.equal(formatSequenceSet([1, 2, 3, 7, 9, 10]), '1:3,7,9:10');
  assert.equal(formatSequenceSet([]), '');
  assert.equal(formatSequenceSet([5]), '5');
  assert.equal(formatSequenceSet([3, 1, 2]), '3,1:2');
  assert.equal(formatRanges(ranges('1:3,9:*,*')), '1:3,9:*,*');
});

test('rangesOf groups consecutive runs and ignores duplicates', async () => {
  const { rangesOf } = await import('../../src/wire/index.js');
  assert.deepEqual(rangesOf([1, 2, 3, 3, 7, 9, 10]), [{ start: 1, end: 3 }, { start: 7, end: 7 }, { start: 9, end: 10 }]);
  assert.deepEqual(rangesOf([]), []);
});
