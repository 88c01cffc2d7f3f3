// Hostile input: random and mutated bytes must only ever produce decoder
// events (never an exception), and the events must not depend on how the
// bytes were cut into chunks (STYLE.md habit 4).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { prng, runChunks, makeDecoder } from './helpers.js';

const LIMITS = { maxLineLength: 80, maxLiteralSize: 40, maxNonSyncLiteral: 10, maxCommandSize: 200, maxDepth: 3, maxTokens: 20, maxDiscardLiteral: 60 };

const PIECES = [
  'a', 'b1', ' ', ' ', ' ', '(', ')', '{', '}', '{3}', '{2+}', '~{2}', '{1-}', '{99999999999+}', '+', '~', '"', '\\', '[', ']', '<', '>', '.', '0', '5',
  '\r\n', '\r\n', '\n', '\r', '\x00', '\xff', '\x80', 'BODY[', 'BODY.PEEK[', 'BINARY[', 'HEADER.FIELDS', 'UID', 'FETCH', 'IDLE', 'DONE', '*', '%', 'x'.repeat(90),
];

function randomInput(rnd: () => number): Buffer {
  const n = 1 + Math.floor(rnd() * 40);
  const parts: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    if (rnd() < 0.15) {
      const len = 1 + Math.floor(rnd() * 8);
      parts.push(Buffer.from(Array.from({ length: len }, () => Math.floor(rnd() * 256))));
    } else {
      parts.push(Buffer.from(PIECES[Math.floor(rnd() * PIECES.length)]!, 'latin1'));
    }
  }
  return Buffer.concat(parts);
}

function randomCuts(buf: Buffer, rnd: () => number): Buffer[] {
  const out: Buffer[] = [];
  let p = 0;
  while (p < buf.length) {
    const n = 1 + Math.floor(rnd() * 12);
    out.push(buf.subarray(p, p + n));
    p += n;
  }
  return out;
}

const VALID_CODES = new Set(['PARSE', 'TOOBIG', 'LIMIT', 'CLIENTBUG']);

test('fuzz: random IMAP-ish bytes never throw and are chunking-independent', () => {
  const rnd = prng(20240601);
  for (let i = 0; i < 4000; i++) {
    const input = randomInput(rnd);
    const whole = runChunks([input], LIMITS, ['IDLE']);
    for (const ev of whole) {
      assert.ok(['command', 'continue', 'line', 'error'].includes(ev[0]));
      if (ev[0] === 'error') assert.ok(VALID_CODES.has(ev[1]));
    }
    const cut = runChunks(randomCuts(input, rnd), LIMITS, ['IDLE']);
    assert.deepEqual(cut, whole, `input ${JSON.stringify(input.toString('latin1'))}`);
    if (i % 10 === 0) {
      const singles = Array.from(input, (b) => Buffer.from([b]));
      assert.deepEqual(runChunks(singles, LIMITS, ['IDLE']), whole);
    }
  }
});

test('fuzz: uniformly random bytes with default limits', () => {
  const rnd = prng(7);
  for (let i = 0; i < 2000; i++) {
    const len = Math.floor(rnd() * 300);
    const input = Buffer.from(Array.from({ length: len }, () => Math.floor(rnd() * 256)));
    const whole = runChunks([input]);
    assert.deepEqual(runChunks(randomCuts(input, rnd)), whole);
  }
});

test('fuzz: mutated valid commands', () => {
  const seeds = [
    'a1 FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From To)]<0.10>)\r\n',
    'a2 APPEND INBOX (\\Seen) {5+}\r\nhello\r\n',
    'a3 LOGIN {3}\r\nabc "p\\"w"\r\n',
    'a4 UID SEARCH OR (FROM "x") (NOT (SUBJECT y))\r\n',
    'a5 APPEND INBOX ~{3+}\r\na\x00b\r\n',
  ].map((s) => Buffer.from(s, 'latin1'));
  const rnd = prng(99);
  for (let i = 0; i < 3000; i++) {
    const base = Buffer.from(seeds[i % seeds.length]!);
    const muts = 1 + Math.floor(rnd() * 3);
    let buf = base;
    for (let m = 0; m < muts; m++) {
      const at = Math.floor(rnd() * buf.length);
      const r = rnd();
      if (r < 0.4) buf[at] = Math.floor(rnd() * 256);
      else if (r < 0.7) buf = Buffer.concat([buf.subarray(0, at), buf.subarray(at + 1)]);
      else buf = Buffer.concat([buf.subarray(0, at), Buffer.from([Math.floor(rnd() * 128)]), buf.subarray(at)]);
    }
    const input = Buffer.concat([buf, Buffer.from('\r\nz NOOP\r\n')]);
    const whole = runChunks([input], LIMITS);
    assert.deepEqual(runChunks(randomCuts(input, rnd), LIMITS), whole);
  }
});

test('fuzz: the decoder always resynchronises on a clean command after garbage', () => {
  const rnd = prng(3);
  for (let i = 0; i < 1000; i++) {
    let garbage = randomInput(rnd);
    // Remove literal headers so no literal can swallow the next command, and end the line.
    garbage = Buffer.from(garbage.toString('latin1').replace(/[{}]/g, 'x'), 'latin1');
    const dec = makeDecoder(LIMITS);
    dec.push(Buffer.concat([garbage, Buffer.from('\r\nzz NOOP\r\n')]));
    const events = [];
    for (let ev = dec.next(); ev; ev = dec.next()) {
      events.push(ev);
      if (ev.type === 'command' && ev.name === 'IDLE') dec.expectLine();
    }
    const last = events[events.length - 1];
    assert.ok(last && last.type === 'command' && last.tag === 'zz' && last.name === 'NOOP', JSON.stringify(garbage.toString('latin1')));
  }
});
