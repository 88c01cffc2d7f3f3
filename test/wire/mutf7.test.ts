import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeMutf7, decodeMutf7, MUtf7Error } from '../../src/wire/index.js';
import { prng } from './helpers.js';

test('RFC 3501 §5.1.3 example', () => {
  assert.equal(encodeMutf7('~peter/mail/台北/日本語'), '~peter/mail/&U,BTFw-/&ZeVnLIqe-');
  assert.equal(decodeMutf7('~peter/mail/&U,BTFw-/&ZeVnLIqe-'), '~peter/mail/台北/日本語');
});

test('ampersand, plain ASCII, astral characters', () => {
  assert.equal(encodeMutf7('A&B'), 'A&-B');
  assert.equal(decodeMutf7('A&-B'), 'A&B');
  assert.equal(encodeMutf7('INBOX'), 'INBOX');
  assert.equal(encodeMutf7('Entwürfe'), 'Entw&APw-rfe');
  assert.equal(decodeMutf7('Entw&APw-rfe'), 'Entwürfe');
  assert.equal(decodeMutf7(encodeMutf7('😀')), '😀');
  assert.equal(encodeMutf7('\t'), '&AAk-');
});

test('invalid and non-canonical input throws MUtf7Error', () => {
  for (const bad of [
    '&AGE-', // "a" encoded: printable ASCII must not be encoded
    '&U,BTFw', // unterminated shift
    '&U,BTF-', // truncated: odd byte count
    '&U,BTFx-', // non-zero padding bits
    '&U/BTFw-', // "/" is not modified base64
    '&U,BTFw=-', // padding
    '&APw-&APw-', // adjacent runs must be merged
    '&2D0-', // lone high surrogate
    '&3gA-', // lone low surrogate
    'caf\u00e9', // raw 8-bit
    'a\tb', // control character
    '&-&', // lone "&"
  ]) {
    assert.throws(() => decodeMutf7(bad), MUtf7Error, bad);
  }
});

test('round trip of random strings', () => {
  const rnd = prng(5);
  const pool = ['a', '&', '-', ' ', '/', 'é', 'ü', '台', '北', '😀', '\x01', '\x7f', '~', ','];
  for (let i = 0; i < 2000; i++) {
    let s = '';
    const n = Math.floor(rnd() * 10);
    for (let k = 0; k < n; k++) s += pool[Math.floor(rnd() * pool.length)];
    const enc = encodeMutf7(s);
    assert.match(enc, /^[\x20-\x7e]*$/);
    assert.equal(decodeMutf7(enc), s);
  }
});
