// The LMTP line codec fed raw bytes, whole, one byte at a time and cut at
// every boundary (STYLE habit 3).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LmtpDecoder, parsePathArg, type DecoderEvent } from '../../src/delivery/codec.js';

/** Feeds `parts` and drains events; switches to data mode after a DATA line like the session does. */
function run(parts: Buffer[], maxLine = 64, maxData = 1 << 20): DecoderEvent[] {
  const d = new LmtpDecoder(maxLine, maxData);
  const out: DecoderEvent[] = [];
  for (const p of parts) {
    d.push(p);
    for (let ev = d.next(); ev; ev = d.next()) {
      out.push(ev);
      if (ev.type === 'line' && ev.line === 'DATA') d.startData();
    }
  }
  return out;
}

function norm(evs: DecoderEvent[]): unknown[] {
  return evs.map((e) => (e.type === 'data' ? { type: 'data', text: Buffer.concat(e.chunks).toString('latin1'), size: e.size, tooBig: e.tooBig } : e));
}

/** Same events whole, byte by byte, and split at every position. */
function checkSplits(input: string, maxLine?: number, maxData?: number): unknown[] {
  const b = Buffer.from(input, 'latin1');
  const whole = norm(run([b], maxLine, maxData));
  assert.deepEqual(norm(run([...b].map((x) => Buffer.from([x])), maxLine, maxData)), whole, 'byte at a time');
  for (let i = 1; i < b.length; i++) {
    assert.deepEqual(norm(run([b.subarray(0, i), b.subarray(i)], maxLine, maxData)), whole, `split at ${i}`);
  }
  return whole;
}

test('command lines: CRLF, bare LF tolerated, empty line', () => {
  assert.deepEqual(checkSplits('LHLO x\r\nNOOP\n\r\nQUIT\r\n'), [
    { type: 'line', line: 'LHLO x' },
    { type: 'line', line: 'NOOP' },
    { type: 'line', line: '' },
    { type: 'line', line: 'QUIT' },
  ]);
});

test('an over-long line is reported once and skipped up to its end', () => {
  const long = 'X'.repeat(100);
  assert.deepEqual(checkSplits(`NOOP\r\n${long}\r\nQUIT\r\n`, 64), [
    { type: 'line', line: 'NOOP' },
    { type: 'line-too-long' },
    { type: 'line', line: 'QUIT' },
  ]);
});

test('data: dot-unstuffing, only CRLF.CRLF ends, the final CRLF belongs to the message', () => {
  const input = 'DATA\r\nSubject: a\r\n\r\n..leading dot\r\n.x\r\nbare\n.\nstill data\r\n.\r\nQUIT\r\n';
  assert.deepEqual(checkSplits(input), [
    { type: 'line', line: 'DATA' },
    { type: 'data', text: 'Subject: a\r\n\r\n.leading dot\r\nx\r\nbare\n.\nstill data\r\n', size: 50, tooBig: false },
    { type: 'line', line: 'QUIT' },
  ]);
});

test('data: empty message and a message whose first line is a stuffed dot', () => {
  assert.deepEqual(checkSplits('DATA\r\n.\r\n'), [{ type: 'line', line: 'DATA' }, { type: 'data', text: '', size: 0, tooBig: false }]);
  assert.deepEqual(checkSplits('DATA\r\n..\r\n.\r\n')[1], { type: 'data', text: '.\r\n', size: 3, tooBig: false });
  // "." followed by CR and something other than LF is not the end.
  assert.deepEqual(checkSplits('DATA\r\n.\rx\r\n.\r\n')[1], { type: 'data', text: '\rx\r\n', size: 4, tooBig: false });
});

test('data beyond the size limit is read to its end and flagged, not buffered', () => {
  const body = 'y'.repeat(200);
  const [, ev] = checkSplits(`DATA\r\n${body}\r\n.\r\nNOOP\r\n`, 64, 100) as { size: number; tooBig: boolean }[];
  assert.equal(ev!.tooBig, true);
  assert.equal(ev!.size, 0);
  assert.deepEqual(checkSplits(`DATA\r\n${body}\r\n.\r\nNOOP\r\n`, 64, 100)[2], { type: 'line', line: 'NOOP' });
});

test('random bytes only ever produce events, never exceptions', () => {
  for (let n = 0; n < 300; n++) {
    const len = Math.floor(Math.random() * 200);
    const b = Buffer.alloc(len);
    for (let i = 0; i < len; i++) b[i] = [0x0d, 0x0a, 0x2e, 0x41, Math.floor(Math.random() * 256)][Math.floor(Math.random() * 5)]!;
    const d = new LmtpDecoder(32, 64);
    d.push(Buffer.from('DATA\r\n'));
    d.next();
    d.startData();
    d.push(b);
    while (d.next());
    assert.ok(d.pending <= b.length);
  }
});

test('MAIL/RCPT path arguments', () => {
  assert.deepEqual(parsePathArg('FROM:<a@b.c> SIZE=10 BODY=8BITMIME', 'FROM'), {
    address: 'a@b.c',
    params: new Map([['SIZE', '10'], ['BODY', '8BITMIME']]),
  });
  assert.equal(parsePathArg('FROM:<>', 'FROM')?.address, '');
  assert.equal(parsePathArg('to: <x@y>', 'TO')?.address, 'x@y');
  assert.equal(parsePathArg('TO:<@relay.example:x@y>', 'TO')?.address, 'x@y');
  assert.equal(parsePathArg('TO:x@y', 'TO'), null);
  assert.equal(parsePathArg('FROM:<x@y>', 'TO'), null);
  assert.equal(parsePathArg('TO:<x y@z>', 'TO'), null);
});

// Found by `npm run fuzz -- lmtp` (issue 10): the CR of a line of exactly the limit arrived before its LF.
test('a line of exactly the limit is accepted when its CR and LF arrive in different chunks', () => {
  const line = 'X'.repeat(64);
  assert.deepEqual(run([Buffer.from(`${line}\r`), Buffer.from('\nNOOP\r\n')]), [{ type: 'line', line }, { type: 'line', line: 'NOOP' }]);
  assert.deepEqual(run([Buffer.from(`${line}X\r`), Buffer.from('\nNOOP\r\n')]), [{ type: 'line-too-long' }, { type: 'line', line: 'NOOP' }]);
});
