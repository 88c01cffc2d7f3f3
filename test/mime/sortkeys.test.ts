// Sort and thread keys (src/mime/sortkeys.ts): the i;unicode-casemap form
// (RFC 5051), base subject extraction (RFC 5256 §2.1), sent dates (§2.2),
// addresses (RFC 5256 §3, RFC 5957 §3) and message ids (RFC 5256 §4).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Header, findHeaderEnd } from '../../src/mime/index.js';
import { addressKey, baseSubject, casemap, displayKey, messageIds, sentDateOf, sortKeysOf, MAX_SORT_KEY } from '../../src/mime/sortkeys.js';
import { REPO_ROOT } from '../helpers/peer.js';

test('i;unicode-casemap: titlecase, then compatibility decomposition, so that octet order is the collation', () => {
  assert.equal(casemap('abc XYZ'), 'ABC XYZ');
  assert.equal(casemap('é'), 'E\u0301'); // precomposed and decomposed compare equal
  assert.equal(casemap('e\u0301'), casemap('É'));
  assert.equal(casemap('ﬁ'), 'FI'); // compatibility ligature, then titlecased
  assert.equal(casemap('ǆ'), casemap('Ǆ')); // titlecase digraph
  assert.equal(casemap('ß'), 'ß'); // simple mapping only: no "SS"
  assert.equal(casemap('σ'), casemap('Σ'));
  assert.equal(casemap('😀a'), '😀A');
  // "_" (0x5F) after capital letters: titlecase, not lowercase, decides the order.
  assert.ok(casemap('hello') < casemap('_x'));
});

test('base subject: RFC 5256 §2.1 steps, reply/forward detection', () => {
  const cases: [string | null, string, boolean][] = [
    [null, '', false],
    ['', '', false],
    ['Hello', 'Hello', false],
    ['Re: Hello', 'Hello', true],
    ['RE: re: Re[2]: Hello', 'Hello', true],
    ['Fwd: Hello', 'Hello', true],
    ['Fw: Hello', 'Hello', true],
    ['[list] Re: Hello', 'Hello', true],
    ['[list] Hello', 'Hello', false],
    ['[list]', '[list]', false], // a blob alone is the base subject
    ['[a][b] c', 'c', false],
    ['Hello (fwd)', 'Hello', true],
    ['Hello (FWD) (fwd)  ', 'Hello', true],
    ['[Fwd: Re: Hello]', 'Hello', true],
    ['Re: [Fwd: [list] re: subj ] (fwd)', 'subj', true],
    ['Re:Hello', 'Hello', true],
    ['Re : Hello', 'Hello', true], // "re" *WSP [subj-blob] ":"
    ['Reply: Hello', 'Reply: Hello', false],
    ['Re [x]: Hello', 'Hello', true],
    ['Re:', '', true],
    ['Ré: x', 'Ré: x', false],
    ['Hello\t  world', 'Hello world', false],
    ['=?UTF-8?Q?R=C3=A9sum=C3=A9?=', 'Résumé', false],
    ['Re: =?UTF-8?B?w6l0w6kgcGxhbnM=?=', 'été plans', true],
    ['Fwd', 'Fwd', false],
  ];
  for (const [subject, base, isReply] of cases) assert.deepEqual(baseSubject(subject), { base, isReply }, JSON.stringify(subject));
});

test('sent date: zones, obsolete forms, two-digit years; unparseable is null (INTERNALDATE is used then)', () => {
  assert.equal(sentDateOf('Mon, 1 Jan 2024 09:00:00 +0100'), Date.UTC(2024, 0, 1, 8));
  assert.equal(sentDateOf('31 Dec 2000 16:01:33 -0800'), Date.UTC(2001, 0, 1, 0, 1, 33)); // RFC 5256 §2.2's example
  assert.equal(sentDateOf('1 Jan 2024 10:00 EST'), Date.UTC(2024, 0, 1, 15));
  assert.equal(sentDateOf('1 Jan 2024 10:00 XYZ'), Date.UTC(2024, 0, 1, 10)); // an invalid zone is UTC
  assert.equal(sentDateOf('1 Jan 2024 10:00'), Date.UTC(2024, 0, 1, 10));
  assert.equal(sentDateOf('1 Jan 99 10:00 +0000'), Date.UTC(1999, 0, 1, 10));
  assert.equal(sentDateOf('1 Jan 24 10:00 +0000'), Date.UTC(2024, 0, 1, 10));
  assert.equal(sentDateOf('not a date'), null);
  assert.equal(sentDateOf('32 Jan 2024 10:00 +0000'), null);
  assert.equal(sentDateOf(null), null);
});

test('address keys: addr-mailbox of the first address; display name or addr-spec; a group counts by its name', () => {
  assert.equal(addressKey('"Zed" <Anna@x.org>, b@y'), 'ANNA');
  assert.equal(addressKey(null), '');
  assert.equal(addressKey('undisclosed-recipients:;'), 'UNDISCLOSED-RECIPIENTS');
  assert.equal(addressKey('Friends: bob@example.com;'), 'FRIENDS');
  assert.equal(displayKey('"Amy" <C@z.org>'), 'AMY');
  assert.equal(displayKey('<a@x.org>'), 'A@X.ORG');
  assert.equal(displayKey('=?UTF-8?Q?=C3=89mile?= <e@x>'), casemap('Émile'));
  assert.equal(displayKey('undisclosed-recipients:;'), 'UNDISCLOSED-RECIPIENTS');
  assert.equal(displayKey(''), '');
  assert.equal(addressKey(`${'x'.repeat(2000)}@y`).length, MAX_SORT_KEY);
});

test('message ids: angle brackets, quoting normalised, junk between ids, Dovecot-compatible broken ids', () => {
  assert.deepEqual(messageIds('<a@b> <c@d>'), ['a@b', 'c@d']);
  assert.deepEqual(messageIds('<"01KF8JCEOCBS0045PS"@xxx.yyy.com>'), ['01KF8JCEOCBS0045PS@xxx.yyy.com']); // RFC 5256 §4's example
  assert.deepEqual(messageIds('<a@b> (comment) junk <c@d>'), ['a@b', 'c@d']);
  assert.deepEqual(messageIds('<junk <a@b>'), ['junk<a@b']);
  assert.deepEqual(messageIds('<a@b> <junk'), ['a@b']);
  assert.deepEqual(messageIds('<a\r\n\t@b>'), ['a@b']);
  assert.deepEqual(messageIds(null), []);
  assert.deepEqual(messageIds('no ids'), []);
});

function keysOfFixture(name: string) {
  const raw = readFileSync(path.join(REPO_ROOT, 'test/fixtures/mime', name));
  return sortKeysOf(Header.parse(raw, 0, findHeaderEnd(raw, 0, raw.length).fieldsEnd));
}

test('fixtures left out of the Dovecot comparison keep our documented behaviour', () => {
  // Malformed encoded words stay literal (RFC 2047 §6.3), so the subject sorts by its text.
  assert.match(keysOfFixture('32-malformed-encoded-words.eml').subject, /^=\?UTF-8\?B\?NOT BASE64 \?= /);
  // Unlabelled 8-bit bytes that are not UTF-8 become U+FFFD (as Dovecot does), sorting after letters.
  assert.ok(keysOfFixture('08-8bit-latin1-headers.eml').subject.includes('\uFFFD'));
  assert.equal(keysOfFixture('07-8bit-utf8-headers.eml').subject, casemap('Café crème'));
});

test('every key of a message, together', () => {
  const raw = Buffer.from('From: "B" <b@x>\r\nTo: c@y\r\nCc: D <d@z>\r\nSubject: Re: hi\r\nDate: 2 Jan 2024 00:00:00 +0000\r\nMessage-ID: <m@x>\r\nReferences: <r1@x>\r\n <r2@x>\r\nIn-Reply-To: <r2@x>\r\n\r\nbody\r\n');
  const k = sortKeysOf(Header.parse(raw, 0, findHeaderEnd(raw, 0, raw.length).fieldsEnd));
  assert.deepEqual(k, {
    subject: 'HI', isReply: true, from: 'B', to: 'C', cc: 'D', displayFrom: 'B', displayTo: 'C@Y',
    date: Date.UTC(2024, 0, 2), messageId: 'm@x', references: 'r1@x r2@x', inReplyTo: 'r2@x',
  });
});
