// Issue 10 item 1, the class behind it: places where client, message, server
// or config input went through a RegExp that backtracks super-linearly. Each
// case below took seconds (quadratic) before its fix; now each finishes in a
// few milliseconds. Bounds are generous for a loaded machine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMessage } from '../../src/mime/index.js';
import { parsePathArg } from '../../src/delivery/codec.js';
import { loadConfig } from '../../src/cli/config.js';
import { tokenize, literalMarkerAt } from '../../src/cli/imap-client.js';

const N = 60_000; // quadratic at this size: ~2-5 s each before the fixes

function timed(what: string, fn: () => void): void {
  const t0 = process.hrtime.bigint();
  fn();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  assert.ok(ms < 400, `${what} took ${ms.toFixed(0)} ms`);
}

test('a header name followed by a long run of blanks before a non-blank (header field parser)', () => {
  const raw = Buffer.from(`Subject: x\r\nX-A${' '.repeat(N)}b: y\r\n\r\nbody\r\n`, 'latin1');
  timed('header', () => parseMessage(raw));
  const m = parseMessage(Buffer.from('Subject \t : trailing blanks\r\n\r\n'));
  assert.equal(m.envelope?.subject, 'trailing blanks', 'blanks before the colon are still trimmed');
});

test('a Content-Transfer-Encoding of many unclosed comments', () => {
  const raw = Buffer.from(`Content-Transfer-Encoding: ${'('.repeat(N)}\r\n\r\nbody\r\n`, 'latin1');
  timed('cte', () => parseMessage(raw));
  assert.equal(parseMessage(Buffer.from('Content-Transfer-Encoding: (c) base64 (comment (nested))\r\n\r\nAAAA\r\n')).encoding, 'base64');
});

test('an LMTP MAIL FROM argument with a long run of blanks and a CR', () => {
  timed('lmtp', () => assert.equal(parsePathArg(`FROM:<a@b>${' '.repeat(N)}x\rx`, 'FROM'), null));
  assert.deepEqual(parsePathArg('FROM:<a@b> BODY=8BITMIME SIZE=10', 'FROM'), { address: 'a@b', params: new Map([['BODY', '8BITMIME'], ['SIZE', '10']]) });
  assert.deepEqual(parsePathArg('TO: <a@b>', 'TO')?.address, 'a@b');
  assert.equal(parsePathArg('TO:<a@b>x', 'TO'), null);
  assert.equal(parsePathArg('TO:<a<b@c>', 'TO'), null);
  assert.equal(parsePathArg('FROM:<a@b>', 'TO'), null);
});

test('a config size with blanks around an empty unit', () => {
  timed('config', () => assert.throws(() => loadConfig({ env: { QUIRE_LINE_LENGTH: ` 1${' '.repeat(N)}!` }, flags: {} })));
  assert.equal(loadConfig({ env: { QUIRE_LINE_LENGTH: ' 128 KiB ' }, flags: {} }).limits.lineLength, 128 * 1024);
});

test('a remote server line with many "{" (import client tokenizer)', () => {
  const line = `* 1 FETCH (X ${'{1'.repeat(N / 2)})`;
  timed('tokenize', () => tokenize({ lines: [line], literals: [] } as never));
  assert.equal(literalMarkerAt('* 1 FETCH (BODY[] {12}'), 18);
  assert.equal(literalMarkerAt('* 1 FETCH (BODY[] ~{12+}'), 18);
  assert.equal(literalMarkerAt('* 1 FETCH (BODY[] {}'), -1);
  assert.equal(literalMarkerAt('{1'.repeat(100)), -1);
});
