// AsciiBuilder (src/wire/ascii.ts): numbers and ASCII text into one growing buffer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AsciiBuilder } from '../../src/wire/ascii.js';

test('numbers, bytes and text come out as their decimal ASCII, across growth', () => {
  const b = new AsciiBuilder(4);
  const want: string[] = [];
  for (const n of [0, 7, 9, 10, 99, 100, 12345, 4294967295, 2 ** 53 - 1]) {
    b.number(n);
    b.byte(0x20);
    want.push(`${n} `);
  }
  b.text('(THREAD)');
  want.push('(THREAD)');
  for (let i = 0; i < 5000; i++) {
    b.byte(0x2c);
    b.number(i * 7919);
    want.push(`,${i * 7919}`);
  }
  assert.equal(b.bytes().toString('latin1'), want.join(''));
  assert.equal(b.length, want.join('').length);
});
