// The POP3 codec as raw bytes, every fixture also fed one byte at a time and
// cut at every boundary (STYLE.md habit 3).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crlfSize, encodeMultiline, LineDecoder, MultilineEncoder, splitCommand, type LineEvent } from '../../src/pop3/codec.js';
import { uidlOf } from '../../src/pop3/maildrop.js';

const show = (e: LineEvent) => (e.type === 'line' ? `L:${e.line.toString('latin1')}` : 'TOO-LONG');

function decodeSplit(input: string, limit: number, cuts: number[]): string[] {
  const d = new LineDecoder(limit);
  const out: string[] = [];
  const bytes = Buffer.from(input, 'latin1');
  let last = 0;
  for (const c of [...cuts, bytes.length]) {
    d.push(bytes.subarray(last, c));
    last = c;
    for (let e = d.next(); e; e = d.next()) out.push(show(e));
  }
  return out;
}

function decodeEverySplit(input: string, limit: number): string[] {
  const whole = decodeSplit(input, limit, []);
  const n = Buffer.byteLength(input, 'latin1');
  for (let i = 1; i < n; i++) assert.deepEqual(decodeSplit(input, limit, [i]), whole, `cut at ${i}`);
  assert.deepEqual(decodeSplit(input, limit, [...Array(n).keys()].slice(1)), whole, 'byte at a time');
  return whole;
}

test('lines: CRLF and bare LF end a line; pipelined commands come out in order', () => {
  assert.deepEqual(decodeEverySplit('USER alice\r\nPASS a b c\r\nSTAT\nQUIT\r\n', 255), ['L:USER alice', 'L:PASS a b c', 'L:STAT', 'L:QUIT']);
  assert.deepEqual(decodeEverySplit('\r\nNOOP\r\n', 255), ['L:', 'L:NOOP']);
});

test('lines: a line over the limit (CRLF counted, RFC 2449 §4) is one too-long event and the next command is still read', () => {
  const long = 'X'.repeat(300);
  assert.deepEqual(decodeEverySplit(`${long}\r\nNOOP\r\n`, 255), ['TOO-LONG', 'L:NOOP']);
  // exactly 255 octets with CRLF is allowed, 256 is not
  assert.deepEqual(decodeSplit(`${'A'.repeat(253)}\r\n${'B'.repeat(254)}\r\nQUIT\r\n`, 255, []), [`L:${'A'.repeat(253)}`, 'TOO-LONG', 'L:QUIT']);
});

test('lines: an endless line without LF is dropped as it arrives, buffering at most the limit', () => {
  const d = new LineDecoder(255);
  let tooLong = 0;
  for (let i = 0; i < 1000; i++) {
    d.push(Buffer.alloc(1000, 0x41));
    for (let e = d.next(); e; e = d.next()) if (e.type === 'too-long') tooLong++;
    assert.ok(d.pending <= 1000, `pending ${d.pending}`);
  }
  d.push(Buffer.from('\r\nNOOP\r\n'));
  const rest: string[] = [];
  for (let e = d.next(); e; e = d.next()) rest.push(show(e));
  assert.equal(tooLong, 1);
  assert.deepEqual(rest, ['L:NOOP']);
});

test('discard drops what was pipelined (STLS, RFC 2595 §4)', () => {
  const d = new LineDecoder(255);
  d.push(Buffer.from('STLS\r\nUSER mallory\r\n'));
  assert.equal(show(d.next()!), 'L:STLS');
  d.discard();
  assert.equal(d.next(), null);
});

test('splitCommand: case-insensitive keyword, PASS keeps its spaces', () => {
  assert.deepEqual(splitCommand(Buffer.from('pass  my secret ')), { name: 'PASS', rest: ' my secret ', args: ['my', 'secret'] });
  assert.deepEqual(splitCommand(Buffer.from('list')), { name: 'LIST', rest: '', args: [] });
});

function encodeSplit(msg: Buffer, bodyLines: number | undefined, cuts: number[]): Buffer {
  const e = new MultilineEncoder(bodyLines);
  const out: Buffer[] = [];
  let last = 0;
  for (const c of [...cuts, msg.length]) {
    if (!e.finished) out.push(e.push(msg.subarray(last, c)));
    last = c;
  }
  out.push(e.end());
  return Buffer.concat(out);
}

function encodeEverySplit(msg: string, bodyLines?: number): string {
  const m = Buffer.from(msg, 'latin1');
  const whole = encodeMultiline(m, bodyLines);
  for (let i = 1; i < m.length; i++) assert.equal(encodeSplit(m, bodyLines, [i]).toString('latin1'), whole.toString('latin1'), `cut at ${i}`);
  assert.equal(encodeSplit(m, bodyLines, [...Array(m.length).keys()].slice(1)).toString('latin1'), whole.toString('latin1'), 'byte at a time');
  return whole.toString('latin1');
}

test('multi-line: byte-stuffing of lines starting with "." (RFC 1939 §3), terminator', () => {
  assert.equal(encodeEverySplit('Subject: x\r\n\r\n.\r\n..two\r\nend.\r\n.'), 'Subject: x\r\n\r\n..\r\n...two\r\nend.\r\n..\r\n.\r\n');
  assert.equal(encodeEverySplit('.starts\r\n'), '..starts\r\n.\r\n');
  assert.equal(encodeEverySplit(''), '.\r\n');
});

test('multi-line: bare LF becomes CRLF, a missing final line end is added, bare CR is data', () => {
  assert.equal(encodeEverySplit('A: b\n\nline\nlast'), 'A: b\r\n\r\nline\r\nlast\r\n.\r\n');
  assert.equal(encodeEverySplit('A: b\r\n\r\nx\ry\r\n'), 'A: b\r\n\r\nx\ry\r\n.\r\n');
  assert.equal(encodeEverySplit('A: b\r\n\r\nends in CR\r'), 'A: b\r\n\r\nends in CR\r\n.\r\n');
});

test('TOP: the header, the blank line, then n body lines (RFC 1939 §7)', () => {
  const msg = 'A: 1\r\nB: 2\r\n\r\none\r\n.two\r\nthree\r\n';
  assert.equal(encodeEverySplit(msg, 0), 'A: 1\r\nB: 2\r\n\r\n.\r\n');
  assert.equal(encodeEverySplit(msg, 2), 'A: 1\r\nB: 2\r\n\r\none\r\n..two\r\n.\r\n');
  assert.equal(encodeEverySplit(msg, 99), encodeMultiline(Buffer.from(msg)).toString('latin1'));
  // LF-only blank line ends the header too
  assert.equal(encodeEverySplit('A: 1\n\nbody\nmore\n', 1), 'A: 1\r\n\r\nbody\r\n.\r\n');
  // no blank line: the whole message is header
  assert.equal(encodeEverySplit('A: 1\r\nB: 2\r\n', 0), 'A: 1\r\nB: 2\r\n.\r\n');
});

test('random messages: un-stuffing what the encoder sent gives the CRLF form, whose length crlfSize predicts', () => {
  let seed = 42;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const alphabet = ['.', '\r', '\n', '\r\n', 'a', ' ', '..', '\n.'];
  for (let k = 0; k < 300; k++) {
    let s = '';
    const len = Math.floor(rnd() * 40);
    for (let i = 0; i < len; i++) s += alphabet[Math.floor(rnd() * alphabet.length)];
    const out = encodeEverySplit(s);
    assert.ok(out.endsWith('\r\n.\r\n') || out === '.\r\n', JSON.stringify(out));
    // every LF is preceded by CR
    assert.ok(!/[^\r]\n/.test(out) && !out.startsWith('\n'), JSON.stringify(out));
    const body = out.slice(0, -3);
    const lines = body.split('\r\n');
    lines.pop();
    const unstuffed = lines.map((l) => (l.startsWith('.') ? l.slice(1) : l)).join('\r\n') + (lines.length ? '\r\n' : '');
    const crlf = s.replace(/\r?\n/g, '\n').replace(/\n/g, '\r\n');
    const expected = crlf === '' || crlf.endsWith('\r\n') ? crlf : crlf.endsWith('\r') ? crlf + '\n' : crlf + '\r\n';
    assert.equal(unstuffed, expected, JSON.stringify(s));
    assert.equal(crlfSize(Buffer.from(s, 'latin1')), crlf.length, JSON.stringify(s));
  }
});

test('UIDL: %08x UID then %08x UIDVALIDITY, as Dovecot pop3_uidl_format=%08Xu%08Xv', () => {
  assert.equal(uidlOf(0x6b113d9d, 1), '000000016b113d9d');
  assert.equal(uidlOf(0xffffffff, 0xfffffffe), 'fffffffeffffffff');
});

/** pushParts with `clean` (no bare LF, as RETR knows from the CRLF size) over the given cuts, joined. */
function encodeCleanSplit(m: Buffer, cuts: number[]): string {
  const e = new MultilineEncoder();
  const out: Buffer[] = [];
  let last = 0;
  for (const c of [...cuts, m.length]) {
    const chunk = m.subarray(last, c);
    last = c;
    const before = out.length;
    e.pushParts(chunk, out, true);
    // The pieces are views of the chunk or the inserted dots: nothing copied.
    for (const p of out.slice(before)) assert.ok(p.buffer === chunk.buffer || p.toString('latin1') === '.', 'a view, not a copy');
  }
  out.push(e.end());
  return Buffer.concat(out).toString('latin1');
}

test('RETR of a message without bare LF: dots stuffed from one search per chunk, the same bytes as the line-by-line encoder, cut anywhere', () => {
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const alphabet = ['.', '\r\n', 'a', ' ', '..', '\r\n.', '\r\n..', 'b\r'];
  const fixed = ['.\r\n', '..\r\n.\r\n', 'A: b\r\n\r\n.x\r\nno end', 'ends in CR\r', '', 'x\r\n.'];
  const messages = [...fixed];
  for (let k = 0; k < 200; k++) {
    let s = '';
    const len = Math.floor(rnd() * 30);
    for (let i = 0; i < len; i++) s += alphabet[Math.floor(rnd() * alphabet.length)];
    messages.push(s);
  }
  for (const s of messages) {
    const m = Buffer.from(s, 'latin1');
    assert.equal(crlfSize(m), m.length, 'fixture has no bare LF');
    const want = encodeMultiline(m).toString('latin1');
    assert.equal(encodeCleanSplit(m, []), want, JSON.stringify(s));
    for (let i = 1; i < m.length; i++) assert.equal(encodeCleanSplit(m, [i]), want, `${JSON.stringify(s)} cut at ${i}`);
    assert.equal(encodeCleanSplit(m, [...Array(m.length).keys()].slice(1)), want, `${JSON.stringify(s)} byte at a time`);
  }
});
