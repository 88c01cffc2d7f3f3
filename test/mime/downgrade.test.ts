// The RFC 6857 downgrade of ENVELOPE / BODYSTRUCTURE values (src/mime/downgrade.ts):
// 7-bit output, RFC 2047 limits, and decoding back to the original text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeEncodedWords, downgradeAddresses, downgradeEnvelope, downgradeText, encodeWords, formatBodyStructure, formatEnvelope, parseMessage,
} from '../../src/mime/index.js';

const sevenBit = (s: string) => !/[^\x00-\x7f]/.test(s);

test('encodeWords: every word at most 75 characters, split between characters, decodes back', () => {
  for (const text of ['é', 'Grüße aus München', '日本語のテキスト'.repeat(20), '😀🎉'.repeat(40) + 'x', 'a'.repeat(300) + 'ü']) {
    const enc = encodeWords(text);
    assert.ok(sevenBit(enc));
    for (const w of enc.split(' ')) {
      assert.ok(w.length <= 75, `${w.length}: ${w}`);
      assert.match(w, /^=\?UTF-8\?B\?[A-Za-z0-9+/=]+\?=$/);
      // Each word is whole UTF-8 on its own (RFC 2047 §5 (3)).
      const b = Buffer.from(w.slice(10, -2), 'base64');
      assert.equal(Buffer.from(b.toString('utf8'), 'utf8').compare(b), 0);
      assert.ok(!b.toString('utf8').includes('\ufffd'));
    }
    assert.equal(decodeEncodedWords(enc), text);
  }
});

test('downgradeText: 7-bit text unchanged; only the run from the first to the last non-ASCII word is encoded', () => {
  assert.equal(downgradeText('Hello =?x?= world'), 'Hello =?x?= world');
  assert.equal(downgradeText(null), null);
  const d = downgradeText('Re: Grüße from Köln, today');
  assert.ok(d.startsWith('Re: =?UTF-8?B?') && d.endsWith('?= today'), d);
  assert.equal(decodeEncodedWords(d), 'Re: Grüße from Köln, today');
  assert.equal(decodeEncodedWords(downgradeText('  ünïcode  ')), '  ünïcode  ');
});

test('downgradeAddresses: encoded names, A-label domains, an empty group for a non-ASCII local part', () => {
  const got = downgradeAddresses([
    { name: 'René', adl: null, mailbox: 'rene', host: 'example.fr' },
    { name: null, adl: null, mailbox: 'info', host: 'bücher.example' },
    { name: 'Ñandú', adl: null, mailbox: 'ñandú', host: 'example.org' },
    { name: null, adl: null, mailbox: 'Grüppe', host: null },
    { name: null, adl: null, mailbox: 'a', host: 'b.example' },
    { name: null, adl: null, mailbox: null, host: null },
  ])!;
  assert.deepEqual(got[0], { name: '=?UTF-8?B?UmVuw6k=?=', adl: null, mailbox: 'rene', host: 'example.fr' });
  assert.deepEqual(got[1], { name: null, adl: null, mailbox: 'info', host: 'xn--bcher-kva.example' });
  assert.equal(got[2]!.host, null);
  assert.equal(decodeEncodedWords(got[2]!.mailbox!), 'Ñandú <ñandú@example.org>');
  assert.deepEqual(got[3], { name: null, adl: null, mailbox: null, host: null }, 'end of the stand-in group');
  // A group start carries its name in `mailbox`: encoded like a display name.
  assert.equal(decodeEncodedWords(got[4]!.mailbox!), 'Grüppe');
  assert.equal(got[4]!.host, null);
  assert.equal(got.length, 7);
  const plain = [{ name: 'A', adl: null, mailbox: 'a', host: 'b.example' }];
  assert.equal(downgradeAddresses(plain), plain, '7-bit lists are returned as they are');
});

test('a downgraded ENVELOPE and BODYSTRUCTURE of an internationalized message are 7-bit', () => {
  const raw = Buffer.from(
    'From: 田中 <tanaka@例え.jp>\r\nTo: Gruppe: jörg@example.de;\r\nSubject: こんにちは\r\nMessage-ID: <ü@example.jp>\r\n' +
      'Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; name="Grüße.txt"\r\nContent-Description: Größe\r\n' +
      'Content-Disposition: attachment; filename="Grüße.txt"\r\n\r\nx\r\n--b\r\nContent-Type: message/global\r\n\r\nSubject: 你好\r\nFrom: 王 <wang@例子.中国>\r\n\r\nbody\r\n--b--\r\n',
    'utf8',
  );
  const root = parseMessage(raw);
  const env = formatEnvelope(downgradeEnvelope(root.envelope!));
  assert.ok(sevenBit(env), env);
  assert.ok(!sevenBit(formatEnvelope(root.envelope!)));
  const bs = formatBodyStructure(root, true, true);
  assert.ok(sevenBit(bs), bs);
  assert.ok(!sevenBit(formatBodyStructure(root, true)));
  assert.match(bs, /"filename\*" "utf-8''Gr%C3%BC%C3%9Fe\.txt"/);
  assert.match(bs, /"xn--fsqu00a\.xn--fiqs8s"/);
});
