import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDate, parseDateTime, formatDateTime, formatDate, dateToUtcMs } from '../../src/wire/index.js';

test('parseDate', () => {
  assert.deepEqual(parseDate('1-Feb-1994'), { year: 1994, month: 2, day: 1 });
  assert.deepEqual(parseDate('29-feb-2024'), { year: 2024, month: 2, day: 29 });
  assert.equal(dateToUtcMs(parseDate('1-Jan-1970')!), 0);
  for (const bad of ['29-Feb-2023', '32-Jan-2000', '0-Jan-2000', '1-Foo-2000', '1-Jan-99', '001-Jan-2000', ' 1-Jan-2000', '1-Jan-2000 ', '']) {
    assert.equal(parseDate(bad), null, bad);
  }
  assert.equal(formatDate({ year: 1994, month: 2, day: 1 }), '1-Feb-1994');
});

test('parseDateTime', () => {
  const r = parseDateTime('17-Jul-1996 02:44:25 -0700');
  assert.deepEqual(r, { ms: Date.UTC(1996, 6, 17, 9, 44, 25), tzOffsetMinutes: -420 });
  assert.deepEqual(parseDateTime(' 7-Jul-1996 02:44:25 +0130'), { ms: Date.UTC(1996, 6, 7, 1, 14, 25), tzOffsetMinutes: 90 });
  assert.deepEqual(parseDateTime('7-Jul-1996 02:44:25 +0000')?.ms, Date.UTC(1996, 6, 7, 2, 44, 25));
  for (const bad of ['17-Jul-1996 24:00:00 +0000', '17-Jul-1996 02:60:00 +0000', '17-Jul-1996 02:44:25 +0060', '17-Jul-1996 02:44:25', '17-Jul-1996 2:44:25 +0000', '31-Apr-1996 02:44:25 +0000', '17-Jul-1996  02:44:25 +0000']) {
    assert.equal(parseDateTime(bad), null, bad);
  }
});

test('formatDateTime', () => {
  assert.equal(formatDateTime(Date.UTC(1996, 6, 17, 9, 44, 25), -420), '17-Jul-1996 02:44:25 -0700');
  assert.equal(formatDateTime(Date.UTC(1996, 6, 7, 1, 14, 25), 90), ' 7-Jul-1996 02:44:25 +0130');
  assert.equal(formatDateTime(0), ' 1-Jan-1970 00:00:00 +0000');
  for (const s of ['17-Jul-1996 02:44:25 -0700', ' 1-Jan-2000 23:59:59 +1400', '29-Feb-2024 12:00:00 -1200']) {
    const p = parseDateTime(s)!;
    assert.equal(formatDateTime(p.ms, p.tzOffsetMinutes), s);
  }
});
