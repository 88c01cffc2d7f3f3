// SEARCH and UID SEARCH over a real socket: every RFC 9051 §6.4.4 key and
// the rev1 keys (RFC 3501 §6.4.4), nesting, CHARSET, ESEARCH (RFC 4731),
// SEARCHRES (RFC 5182), and content searches through encodings.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient, message } from '../helpers/imap.js';

let srv: TestServer;
const login = ['alice', 'secret-a'] as [string, string];
const L = (...lines: string[]) => lines.join('\r\n');

const M2 = L(
  'From: =?UTF-8?Q?J=C3=B6rg?= <jorg@example.com>',
  'To: Bob <bob@example.org>',
  'Subject: =?UTF-8?B?SGVsbG8gV8O2cmxk?=',
  'Date: Tue, 15 Jun 2021 23:30:00 -0700',
  'X-Custom: alpha beta',
  'Content-Type: text/plain; charset=utf-8',
  'Content-Transfer-Encoding: base64',
  '',
  Buffer.from('Grüße aus Köln, zebra\r\n').toString('base64'),
  '',
);
const M3 = Buffer.concat([
  Buffer.from(L(
    'From: Carol <carol@example.net>',
    'To: Alice <alice@example.com>',
    'Cc: Team <team@example.com>',
    'Bcc: hidden@example.com',
    'Subject: Invoice 42',
    'Date: 20 Dec 2022 10:00:00 +0000',
    'Content-Type: text/plain; charset=iso-8859-1',
    'Content-Transfer-Encoding: 8bit',
    '',
    '',
  )),
  Buffer.from('caf\xe9 cr\xe8me\r\n', 'latin1'),
]);
const M4 = L('From: Dave <dave@example.com>', 'Subject: big one', 'Date: Sun, 1 Jan 2023 00:00:00 +0000', 'X-Custom: gamma', '', 'x'.repeat(5000), '');

before(async () => {
  srv = await startTestServer();
  const c = await RawClient.connect(srv.port, { login });
  await c.command('CREATE S');
  await c.append('S', message(1), '(\\Seen) "01-Jan-2020 12:00:00 +0000"');
  await c.append('S', M2, '(\\Flagged $Work) "15-Jun-2021 12:00:00 +0000"');
  await c.append('S', M3, '(\\Answered \\Deleted) "20-Dec-2022 12:00:00 +0000"');
  await c.append('S', M4, '(\\Draft) "01-Jan-2023 12:00:00 +0000"');
  await c.append('S', message(5), '"02-Jan-2023 12:00:00 +0000"');
  await c.close();
});
after(async () => { await srv.stop(); });

async function client(rev2 = false, mode = 'EXAMINE'): Promise<RawClient> {
  const c = await RawClient.connect(srv.port, { login });
  if (rev2) await c.command('ENABLE IMAP4rev2');
  await c.command(`${mode} S`);
  return c;
}

async function search(c: RawClient, criteria: string | Buffer): Promise<string> {
  const r = await c.command(Buffer.isBuffer(criteria) ? Buffer.concat([Buffer.from('SEARCH '), criteria]) : `SEARCH ${criteria}`);
  assert.match(r.tagged, /^t\d+ OK /, `${criteria}: ${r.tagged}`);
  assert.equal(r.untagged.length, 1, r.raw);
  return r.untagged[0];
}

test('flag keys and their negations', async () => {
  const c = await client();
  const cases: [string, string][] = [
    ['ALL', '* SEARCH 1 2 3 4 5'],
    ['SEEN', '* SEARCH 1'],
    ['UNSEEN', '* SEARCH 2 3 4 5'],
    ['FLAGGED', '* SEARCH 2'],
    ['UNFLAGGED', '* SEARCH 1 3 4 5'],
    ['ANSWERED', '* SEARCH 3'],
    ['UNANSWERED', '* SEARCH 1 2 4 5'],
    ['DELETED', '* SEARCH 3'],
    ['UNDELETED', '* SEARCH 1 2 4 5'],
    ['DRAFT', '* SEARCH 4'],
    ['UNDRAFT', '* SEARCH 1 2 3 5'],
    ['KEYWORD $Work', '* SEARCH 2'],
    ['KEYWORD $work', '* SEARCH 2'],
    ['UNKEYWORD $Work', '* SEARCH 1 3 4 5'],
    ['KEYWORD $Nothing', '* SEARCH'],
  ];
  for (const [q, want] of cases) assert.equal(await search(c, q), want, q);
  await c.close();
});

test('RECENT and NEW for a rev1 session that selected first', async () => {
  const c = await RawClient.connect(srv.port, { login });
  await c.command('CREATE SRec');
  await c.append('SRec', message(1), '(\\Seen)');
  await c.append('SRec', message(2));
  await c.command('SELECT SRec');
  assert.equal(await search(c, 'RECENT'), '* SEARCH 1 2');
  assert.equal(await search(c, 'NEW'), '* SEARCH 2');
  assert.equal(await search(c, 'OLD'), '* SEARCH');
  await c.close();
});

test('date, size, sequence and UID keys', async () => {
  const c = await client();
  const cases: [string, string][] = [
    ['BEFORE 15-Jun-2021', '* SEARCH 1'],
    ['ON 15-Jun-2021', '* SEARCH 2'],
    ['SINCE 20-Dec-2022', '* SEARCH 3 4 5'],
    ['SINCE "1-Jan-2023"', '* SEARCH 4 5'],
    ['SENTBEFORE 1-Jan-2000', '* SEARCH 1 5'],
    // The Date header's own day, disregarding its zone (15 Jun -0700 is 16 Jun UTC).
    ['SENTON 15-Jun-2021', '* SEARCH 2'],
    ['SENTON 16-Jun-2021', '* SEARCH'],
    ['SENTSINCE 20-Dec-2022', '* SEARCH 3 4'],
    ['LARGER 4000', '* SEARCH 4'],
    ['SMALLER 200', '* SEARCH 1 5'],
    ['NOT LARGER 179', '* SEARCH 1 5'],
    ['2:3', '* SEARCH 2 3'],
    ['4:*', '* SEARCH 4 5'],
    ['*', '* SEARCH 5'],
    ['1,3,5', '* SEARCH 1 3 5'],
    ['9', '* SEARCH'],
    ['UID 2,4:*', '* SEARCH 2 4 5'],
    ['UID 99:*', '* SEARCH 5'],
  ];
  for (const [q, want] of cases) assert.equal(await search(c, q), want, q);
  await c.close();
});

test('header and content keys, through encoded words, base64 and 8-bit bodies', async () => {
  const c = await client();
  const cases: [string, string][] = [
    ['FROM sender1', '* SEARCH 1'],
    ['FROM example.com', '* SEARCH 1 2 4 5'],
    ['FROM "jorg@"', '* SEARCH 2'],
    ['TO bob', '* SEARCH 2'],
    ['CC team', '* SEARCH 3'],
    ['BCC hidden', '* SEARCH 3'],
    ['SUBJECT "message"', '* SEARCH 1 5'],
    ['SUBJECT INVOICE', '* SEARCH 3'],
    ['HEADER X-Custom alpha', '* SEARCH 2'],
    ['HEADER x-custom ""', '* SEARCH 2 4'],
    ['HEADER Message-ID "<m5@"', '* SEARCH 5'],
    ['BODY zebra', '* SEARCH 2'],
    ['BODY "Body of message"', '* SEARCH 1 5'],
    ['BODY Invoice', '* SEARCH'],
    ['TEXT Invoice', '* SEARCH 3'],
    ['TEXT zebra', '* SEARCH 2'],
    ['TEXT gamma', '* SEARCH 4'],
  ];
  for (const [q, want] of cases) assert.equal(await search(c, q), want, q);
  await c.close();
});

test('CHARSET UTF-8 and ISO-8859-1 search strings; BADCHARSET for unknown charsets', async () => {
  const c = await client();
  const utf = (s: string) => Buffer.from(s, 'utf8');
  const lit = (b: Buffer) => Buffer.concat([Buffer.from(`{${b.length}+}\r\n`), b]);
  assert.equal(await search(c, Buffer.concat([Buffer.from('CHARSET UTF-8 SUBJECT '), lit(utf('Wörld'))])), '* SEARCH 2');
  assert.equal(await search(c, Buffer.concat([Buffer.from('CHARSET UTF-8 FROM '), lit(utf('JÖRG'))])), '* SEARCH 2');
  assert.equal(await search(c, Buffer.concat([Buffer.from('CHARSET UTF-8 BODY '), lit(utf('grüße'))])), '* SEARCH 2');
  assert.equal(await search(c, Buffer.concat([Buffer.from('CHARSET UTF-8 BODY '), lit(utf('café'))])), '* SEARCH 3');
  assert.equal(await search(c, Buffer.concat([Buffer.from('CHARSET ISO-8859-1 BODY '), lit(Buffer.from('cr\xe8me', 'latin1'))])), '* SEARCH 3');
  assert.equal(await search(c, Buffer.concat([Buffer.from('CHARSET ISO-8859-1 TEXT '), lit(Buffer.from('K\xf6ln', 'latin1'))])), '* SEARCH 2');
  // Without CHARSET, UTF-8 is assumed (RFC 9051 §6.4.4).
  assert.equal(await search(c, Buffer.concat([Buffer.from('BODY '), lit(utf('Köln'))])), '* SEARCH 2');
  assert.equal(await search(c, 'CHARSET US-ASCII SUBJECT hello'), '* SEARCH 2');
  const r = await c.command('SEARCH CHARSET X-NO-SUCH-CHARSET BODY a');
  assert.deepEqual(r.untagged, []);
  assert.match(r.tagged, /^t\d+ NO \[BADCHARSET( \([^)]*UTF-8[^)]*\))?\] /);
  await c.close();
});

test('AND, OR, NOT and parenthesised nesting', async () => {
  const c = await client();
  const cases: [string, string][] = [
    ['UNSEEN UNDELETED', '* SEARCH 2 4 5'],
    ['OR SEEN FLAGGED', '* SEARCH 1 2'],
    ['OR OR SEEN FLAGGED DRAFT', '* SEARCH 1 2 4'],
    ['NOT SEEN', '* SEARCH 2 3 4 5'],
    ['NOT NOT SEEN', '* SEARCH 1'],
    ['NOT (SEEN OR FLAGGED DRAFT)', '* SEARCH 1 2 3 4 5'],
    ['NOT (SEEN UNDELETED)', '* SEARCH 2 3 4 5'],
    ['(OR SEEN FLAGGED) (OR 2 3)', '* SEARCH 2'],
    ['OR (FROM carol SUBJECT invoice) (LARGER 4000 DRAFT)', '* SEARCH 3 4'],
    ['NOT OR 1 2', '* SEARCH 3 4 5'],
    ['((((SEEN))))', '* SEARCH 1'],
    ['OR NOT SEEN NOT UNSEEN', '* SEARCH 1 2 3 4 5'],
    ['UID 1:3 NOT DELETED', '* SEARCH 1 2'],
  ];
  for (const [q, want] of cases) assert.equal(await search(c, q), want, q);
  for (const bad of ['', 'BOGUS', 'OR SEEN', 'NOT', 'LARGER x', 'BEFORE 32-Jan-2020', '()', 'FROM', 'UID x', 'KEYWORD', 'HEADER X-Custom', '0']) {
    const r = await c.command(`SEARCH ${bad}`.trim());
    assert.match(r.tagged, /^t\d+ BAD /, `SEARCH ${bad}`);
  }
  await c.close();
});

test('ESEARCH: RETURN (MIN MAX COUNT ALL), RETURN (), empty results, UID form', async () => {
  const c = await client();
  const r = await c.command('SEARCH RETURN (MIN MAX COUNT ALL) UNDELETED', 'e1');
  assert.deepEqual(r.untagged, ['* ESEARCH (TAG "e1") MIN 1 MAX 5 COUNT 4 ALL 1:2,4:5']);
  assert.deepEqual((await c.command('SEARCH RETURN () 2:4', 'e2')).untagged, ['* ESEARCH (TAG "e2") ALL 2:4']);
  assert.deepEqual((await c.command('SEARCH RETURN (COUNT) KEYWORD $none', 'e3')).untagged, ['* ESEARCH (TAG "e3") COUNT 0']);
  assert.deepEqual((await c.command('SEARCH RETURN (MIN MAX) KEYWORD $none', 'e4')).untagged, ['* ESEARCH (TAG "e4")']);
  assert.deepEqual((await c.command('UID SEARCH RETURN (MAX ALL) 2:3', 'e5')).untagged, ['* ESEARCH (TAG "e5") UID MAX 3 ALL 2:3']);
  assert.deepEqual((await c.command('SEARCH RETURN (MAX) CHARSET UTF-8 ALL', 'e6')).untagged, ['* ESEARCH (TAG "e6") MAX 5']);
  assert.match((await c.command('SEARCH RETURN (BOGUS) ALL', 'e7')).tagged, /^e7 BAD /);
  await c.close();
});

test('after ENABLE IMAP4rev2 SEARCH answers ESEARCH; before it, SEARCH', async () => {
  const v1 = await client(false);
  assert.deepEqual((await v1.command('SEARCH FLAGGED', 'a')).untagged, ['* SEARCH 2']);
  assert.deepEqual((await v1.command('UID SEARCH FLAGGED', 'b')).untagged, ['* SEARCH 2']);
  await v1.close();
  const v2 = await client(true);
  assert.deepEqual((await v2.command('SEARCH FLAGGED', 'a')).untagged, ['* ESEARCH (TAG "a") ALL 2']);
  assert.deepEqual((await v2.command('UID SEARCH 1:5 SEEN', 'b')).untagged, ['* ESEARCH (TAG "b") UID ALL 1']);
  assert.deepEqual((await v2.command('SEARCH KEYWORD $none', 'c')).untagged, ['* ESEARCH (TAG "c")']);
  await v2.close();
});

test('SEARCHRES: SAVE, "$" as a key and in UID/sequence keys, failed SAVE empties it', async () => {
  const c = await client(true);
  const s = await c.command('SEARCH RETURN (SAVE) UNSEEN', 's1');
  assert.deepEqual(s.untagged, []);
  assert.match(s.tagged, /^s1 OK /);
  assert.deepEqual((await c.command('SEARCH $ FLAGGED', 's2')).untagged, ['* ESEARCH (TAG "s2") ALL 2']);
  assert.deepEqual((await c.command('SEARCH UID $', 's3')).untagged, ['* ESEARCH (TAG "s3") ALL 2:5']);
  assert.deepEqual((await c.command('SEARCH OR $ 1', 's4')).untagged, ['* ESEARCH (TAG "s4") ALL 1:5']);
  const both = await c.command('SEARCH RETURN (SAVE COUNT) DRAFT', 's5');
  assert.deepEqual(both.untagged, ['* ESEARCH (TAG "s5") COUNT 1']);
  assert.deepEqual((await c.command('UID FETCH $ UID', 's6')).untagged, ['* 4 FETCH (UID 4)']);
  const minmax = await c.command('SEARCH RETURN (SAVE MIN MAX) UNSEEN', 's7');
  assert.deepEqual(minmax.untagged, ['* ESEARCH (TAG "s7") MIN 2 MAX 5']);
  assert.deepEqual((await c.command('FETCH $ UID', 's8')).untagged, ['* 2 FETCH (UID 2)', '* 5 FETCH (UID 5)']);
  const failed = await c.command('SEARCH RETURN (SAVE) CHARSET X-NOPE ALL', 's9');
  assert.match(failed.tagged, /^s9 NO \[BADCHARSET/);
  assert.deepEqual((await c.command('FETCH $ UID', 's10')).untagged, []);
  await c.close();
});

test('search results follow another session\'s changes', async () => {
  const a = await client(true, 'SELECT');
  const b = await RawClient.connect(srv.port, { login });
  await b.command('SELECT S');
  await b.command('STORE 5 +FLAGS.SILENT (\\Flagged)');
  const r = await a.command('SEARCH FLAGGED', 'f1');
  assert.deepEqual(r.untagged.filter((l) => l.startsWith('* ESEARCH')), ['* ESEARCH (TAG "f1") ALL 2,5']);
  assert.ok(r.untagged.includes('* 5 FETCH (UID 5 FLAGS (\\Flagged))'), r.raw);
  await b.command('STORE 5 -FLAGS.SILENT (\\Flagged)');
  await a.close();
  await b.close();
});
