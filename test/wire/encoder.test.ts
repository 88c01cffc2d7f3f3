// Encoder: values can never inject a line, and encode -> decode round-trips.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  astring, string, nstring, quoted, literal, flagList, mailboxName, responseText, response,
  ResponseBuilder, EncodeError, type Token, type Piece,
} from '../../src/wire/index.js';
import { makeDecoder, prng } from './helpers.js';

/** Decode `a X <value>\r\n` and return the single argument. */
function decodeArg(value: Piece): Token {
  const dec = makeDecoder();
  for (const b of new ResponseBuilder().add('a X ', value).end().build()) dec.push(b);
  for (let ev = dec.next(); ev; ev = dec.next()) {
    if (ev.type === 'continue') continue;
    assert.equal(ev.type, 'command', JSON.stringify(ev));
    if (ev.type !== 'command') break;
    assert.equal(ev.args.length, 1);
    return ev.args[0]!;
  }
  assert.fail('no command decoded');
}

function tokenText(t: Token): string {
  if (t.kind === 'atom') return t.value;
  if (t.kind === 'string') return t.bytes.toString('utf8');
  assert.fail('unexpected list');
}

function randomString(rnd: () => number): string {
  const alphabet = ['a', 'Z', '0', ' ', '"', '\\', '\r', '\n', '\r\n', '(', ')', '{', '}', '{3}', '*', '%', ']', '[', 'NIL', 'é', '台北', '😀', '\t', '\x7f', '~', '&', '+'];
  const n = Math.floor(rnd() * 12);
  let s = '';
  for (let i = 0; i < n; i++) s += alphabet[Math.floor(rnd() * alphabet.length)];
  return s;
}

test('astring: atom, quoted or literal', () => {
  assert.equal(astring('INBOX'), 'INBOX');
  assert.equal(astring('a]b'), 'a]b');
  assert.equal(astring(''), '""');
  assert.equal(astring('NIL'), '"NIL"');
  assert.equal(astring('nil'), '"nil"');
  assert.equal(astring('a b'), '"a b"');
  assert.equal(astring('a*'), '"a*"');
  assert.equal(astring('say "hi" \\o/'), '"say \\"hi\\" \\\\o/"');
  assert.deepEqual(astring('a\r\nb'), Buffer.from('{4}\r\na\r\nb'));
  assert.deepEqual(astring('é'), Buffer.from('{2}\r\né'));
  assert.equal(astring('é', true), '"é"');
  assert.throws(() => astring('a\0b'), EncodeError);
});

test('quoted refuses CR, LF and NUL', () => {
  assert.equal(quoted('x"y'), '"x\\"y"');
  for (const bad of ['a\r', 'a\n', 'a\0']) assert.throws(() => quoted(bad), EncodeError);
});

test('string / nstring / literal', () => {
  assert.equal(nstring(null), 'NIL');
  assert.equal(nstring(undefined), 'NIL');
  assert.equal(nstring('NIL'), '"NIL"');
  assert.equal(string(Buffer.from('abc')), '"abc"');
  assert.deepEqual(string(Buffer.from('a\r\nb')), Buffer.from('{4}\r\na\r\nb'));
  assert.deepEqual(string(Buffer.from([0xc3, 0xa9]), true), '"é"');
  assert.deepEqual(string(Buffer.from([0xff]), true), Buffer.from([0x7b, 0x31, 0x7d, 0x0d, 0x0a, 0xff]));
  const big = Buffer.alloc(5000, 0x61);
  assert.ok(Buffer.isBuffer(string(big)));
  const [h, d] = literal(big);
  assert.equal(h!.toString(), '{5000}\r\n');
  assert.equal(d, big, 'literal data is not copied');
  assert.equal(literal(Buffer.from('x'), true)[0]!.toString(), '~{1}\r\n');
});

test('flagList', () => {
  assert.equal(flagList(['\\Seen', '$Forwarded', '\\*']), '(\\Seen $Forwarded \\*)');
  assert.equal(flagList([]), '()');
  for (const bad of ['a b', 'x)', '\\', '', 'a]', 'a\r\n']) assert.throws(() => flagList([bad]), EncodeError);
});

test('mailboxName: modified UTF-7 unless UTF-8 is enabled', () => {
  assert.equal(mailboxName('INBOX', false), 'INBOX');
  assert.equal(mailboxName('~peter/mail/台北/日本語', false), '~peter/mail/&U,BTFw-/&ZeVnLIqe-');
  assert.equal(mailboxName('~peter/mail/台北/日本語', true), '"~peter/mail/台北/日本語"');
  assert.equal(mailboxName('A & B', false), '"A &- B"');
  assert.equal(mailboxName('Work*', false), '"Work*"');
});

test('responseText cannot break the line or fake a response code', () => {
  assert.equal(responseText('a\r\n* BYE\r\n'), 'a  * BYE  ');
  assert.equal(responseText('[ALERT] x'), '(ALERT] x');
  assert.equal(responseText('ok\0'), 'ok ');
});

test('ResponseBuilder joins text and keeps literal data as-is', () => {
  const body = Buffer.from('Hello\r\n');
  const out = new ResponseBuilder().add('* 1 FETCH (BODY[] ', literal(body), ')').end().add('a OK done').build();
  assert.equal(Buffer.concat(out).toString(), '* 1 FETCH (BODY[] {7}\r\nHello\r\n)\r\na OK done\r\n');
  assert.ok(out.includes(body));
  assert.throws(() => new ResponseBuilder().add('* OK x\r\n* BYE'), EncodeError);
  assert.equal(Buffer.concat(response('* ', 'OK')).toString(), '* OK\r\n');
});

test('round trip: astring / string / mailboxName through the decoder', () => {
  const rnd = prng(42);
  for (let i = 0; i < 3000; i++) {
    const s = randomString(rnd);
    if (s.includes('\0')) continue;
    for (const utf8 of [false, true]) {
      assert.equal(tokenText(decodeArg(astring(s, utf8))), s, JSON.stringify(s));
      assert.equal(tokenText(decodeArg(string(s, utf8))), s);
      assert.equal(tokenText(decodeArg(string(Buffer.from(s), utf8))), s);
      const mb = tokenText(decodeArg(mailboxName(s, utf8)));
      assert.equal(mb, utf8 ? s : mailboxName(s, false).toString().replace(/^"|"$/g, '').replace(/\\(.)/g, '$1'));
    }
  }
});
