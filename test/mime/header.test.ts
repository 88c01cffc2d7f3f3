// Header splitting, unfolding, RFC 2047 and 8-bit header decoding.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeBytes, decodeEncodedWords, Header, parseHeaderFields, parseMessage } from '../../src/mime/index.js';
import { fixture } from './helpers.js';

test('fields keep their raw byte ranges, folding included', () => {
  const raw = Buffer.from('Subject: a\r\n b\r\nX-Y : z\r\nnot a field\r\nTo: t\r\n\r\nbody');
  const fields = parseHeaderFields(raw, 0, raw.length);
  assert.deepEqual(
    fields.map((f) => [f.name, raw.subarray(f.start, f.end).toString()]),
    [
      ['Subject', 'Subject: a\r\n b\r\n'],
      ['X-Y', 'X-Y : z\r\n'],
      ['To', 'To: t\r\n'],
    ],
  );
  const h = new Header(raw, fields);
  assert.equal(h.get('subject'), 'a b');
  assert.equal(h.get('x-y'), 'z');
  assert.equal(h.get('missing'), null);
});

test('header parsing stops at maxBytes', () => {
  const raw = Buffer.from('A: 1\r\nB: 2\r\nC: 3\r\n\r\n');
  assert.deepEqual(
    parseHeaderFields(raw, 0, raw.length, 8).map((f) => f.name),
    ['A', 'B'],
  );
});

test('RFC 2047 words in several charsets', () => {
  const root = parseMessage(fixture('06-encoded-words.eml'));
  const raw = fixture('06-encoded-words.eml');
  const h = Header.parse(raw, root.headerStart, root.headerEnd);
  assert.equal(h.getDecoded('subject'), 'Grüße aus Köln and 日本語');
  assert.equal(h.getDecoded('from'), 'Jürgen Müller <juergen@example.de>');
  assert.equal(h.getDecoded('to'), 'André Pirard <PIRARD@vm1.ulg.ac.be>');
  assert.equal(h.getDecoded('cc'), '“Quoted” <q@example.com>, Привет <ru@example.ru>');
  const r30 = fixture('30-koi8-body.eml');
  assert.equal(Header.parse(r30, 0, r30.length).getDecoded('subject'), 'Привет мир');
});

test('adjacent encoded words are joined, even mid-character', () => {
  assert.equal(decodeEncodedWords('=?UTF-8?Q?=C3?= =?UTF-8?Q?=BC?='), 'ü');
  assert.equal(decodeEncodedWords('=?utf-8?q?a?=  =?utf-8?q?b?= c =?utf-8?q?d?='), 'ab c d');
  assert.equal(decodeEncodedWords('=?ISO-8859-1*de?Q?=FC?='), 'ü');
  assert.equal(decodeEncodedWords('no words'), 'no words');
});

test('malformed encoded words stay literally', () => {
  const raw = fixture('32-malformed-encoded-words.eml');
  const v = Header.parse(raw, 0, raw.length).getDecoded('subject');
  assert.equal(v, '=?utf-8?B?not base64 ?= =?unknown-charset?Q?abc?= ok =?utf-8?X?bad?= plain =?utf-8?Q?unterminated');
  assert.equal(decodeEncodedWords('=?utf-8?B?!!!!?='), '=?utf-8?B?!!!!?=');
  assert.equal(decodeEncodedWords('=?utf-8?Q?a=Zb?='), '=?utf-8?Q?a=Zb?=');
});

test('8-bit headers: UTF-8 first, legacy charset fallback', () => {
  assert.equal(decodeBytes(Buffer.from('Café', 'utf8')), 'Café');
  assert.equal(decodeBytes(Buffer.from([0x43, 0x61, 0x66, 0xe9, 0x20, 0x93, 0x78, 0x94])), 'Café “x”');
  assert.equal(decodeBytes(Buffer.from([0xe9]), 'koi8-r'), 'И');
  const r7 = fixture('07-8bit-utf8-headers.eml');
  assert.equal(Header.parse(r7, 0, r7.length).get('subject'), 'Café crème');
  const r8 = fixture('08-8bit-latin1-headers.eml');
  assert.equal(Header.parse(r8, 0, r8.length).get('subject'), 'Café crème');
});
