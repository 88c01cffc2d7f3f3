// FETCH and UID FETCH over a real socket (RFC 9051 §6.4.5, §6.4.9, §7.5.2;
// RFC 3516 BINARY; RFC 8970 PREVIEW; RFC 5182 "$"). Expected answers for
// the MIME sample were checked against the reference Dovecot.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient, message } from '../helpers/imap.js';

let srv: TestServer;
const login = ['alice', 'secret-a'] as [string, string];

const L = (...lines: string[]) => lines.join('\r\n');

const HEADER = L(
  'From: =?UTF-8?Q?J=C3=B6rg?= <jorg@example.com>',
  'To: Alice <alice@example.com>, bob@example.com',
  'Cc: "Team" <team@example.com>',
  'Subject: =?UTF-8?B?SGVsbG8gV8O2cmxk?=',
  'Date: Tue, 2 Mar 2021 10:00:00 +0100',
  'Message-ID: <multi@example.com>',
  'MIME-Version: 1.0',
  'Content-Type: multipart/mixed; boundary="outer"',
  '',
  '',
);
const PART1 = L(
  '--inner',
  'Content-Type: text/plain; charset=utf-8',
  'Content-Transfer-Encoding: quoted-printable',
  '',
  'Caf=C3=A9 plain searchable-needle',
  '--inner',
  'Content-Type: text/html; charset=utf-8',
  '',
  '<p>html</p>',
  '--inner--',
  '',
);
const PART2_MIME = L(
  'Content-Type: application/octet-stream; name="a.bin"',
  'Content-Transfer-Encoding: base64',
  'Content-Disposition: attachment; filename="a.bin"',
  '',
  '',
);
const TEXT = L(
  'preamble',
  '--outer',
  'Content-Type: multipart/alternative; boundary="inner"',
  '',
  PART1,
  '--outer',
  PART2_MIME + 'AAECAwQ=',
  '--outer',
  'Content-Type: text/plain; charset=us-ascii',
  'Content-Transfer-Encoding: x-unknown',
  '',
  'weird',
  '--outer--',
  '',
);
const MULTI = HEADER + TEXT;

const ENVELOPE =
  'ENVELOPE ("Tue, 2 Mar 2021 10:00:00 +0100" "=?UTF-8?B?SGVsbG8gV8O2cmxk?=" (("=?UTF-8?Q?J=C3=B6rg?=" NIL "jorg" "example.com")) ' +
  '(("=?UTF-8?Q?J=C3=B6rg?=" NIL "jorg" "example.com")) (("=?UTF-8?Q?J=C3=B6rg?=" NIL "jorg" "example.com")) ' +
  '(("Alice" NIL "alice" "example.com")(NIL NIL "bob" "example.com")) (("Team" NIL "team" "example.com")) NIL NIL "<multi@example.com>")';
const BODYSTRUCTURE =
  'BODYSTRUCTURE ((("text" "plain" ("charset" "utf-8") NIL NIL "quoted-printable" 33 0 NIL NIL NIL NIL)' +
  '("text" "html" ("charset" "utf-8") NIL NIL "7bit" 11 0 NIL NIL NIL NIL) "alternative" ("boundary" "inner") NIL NIL NIL)' +
  '("application" "octet-stream" ("name" "a.bin") NIL NIL "base64" 8 NIL ("attachment" ("filename" "a.bin")) NIL NIL)' +
  '("text" "plain" ("charset" "us-ascii") NIL NIL "x-unknown" 5 0 NIL NIL NIL NIL) "mixed" ("boundary" "outer") NIL NIL NIL)';
const BODY =
  'BODY ((("text" "plain" ("charset" "utf-8") NIL NIL "quoted-printable" 33 0)("text" "html" ("charset" "utf-8") NIL NIL "7bit" 11 0) "alternative")' +
  '("application" "octet-stream" ("name" "a.bin") NIL NIL "base64" 8)("text" "plain" ("charset" "us-ascii") NIL NIL "x-unknown" 5 0) "mixed")';

let uidValidity = '';

before(async () => {
  srv = await startTestServer();
  const c = await RawClient.connect(srv.port, { login });
  await c.command('CREATE F');
  await c.append('F', MULTI, '"02-Mar-2021 10:00:00 +0100"'); // uid 1
  for (let i = 2; i <= 5; i++) await c.append('F', message(i)); // uids 2..5
  uidValidity = /UIDVALIDITY (\d+)/.exec((await c.command('STATUS F (UIDVALIDITY)')).untagged[0])![1];
  await c.close();
});
after(async () => { await srv.stop(); });

async function selected(mode: 'SELECT' | 'EXAMINE' = 'EXAMINE', box = 'F'): Promise<RawClient> {
  const c = await RawClient.connect(srv.port, { login });
  // rev2: no \Recent in the answers, so they do not depend on which session saw a message first.
  await c.command('ENABLE IMAP4rev2');
  const r = await c.command(`${mode} ${box}`);
  assert.match(r.tagged, / OK /);
  return c;
}

test('FLAGS UID INTERNALDATE RFC822.SIZE, and the macros ALL FAST FULL', async () => {
  const c = await selected();
  const r = await c.command('FETCH 1 (FLAGS UID INTERNALDATE RFC822.SIZE)');
  assert.deepEqual(r.untagged, [`* 1 FETCH (FLAGS () UID 1 INTERNALDATE " 2-Mar-2021 10:00:00 +0100" RFC822.SIZE ${MULTI.length})`]);
  assert.equal(r.tagged, 't4 OK FETCH completed');
  const fast = await c.command('FETCH 1 FAST');
  assert.deepEqual(fast.untagged, [`* 1 FETCH (FLAGS () INTERNALDATE " 2-Mar-2021 10:00:00 +0100" RFC822.SIZE ${MULTI.length})`]);
  const all = await c.command('FETCH 1 ALL');
  assert.deepEqual(all.untagged, [`* 1 FETCH (FLAGS () INTERNALDATE " 2-Mar-2021 10:00:00 +0100" RFC822.SIZE ${MULTI.length} ${ENVELOPE})`]);
  const full = await c.command('FETCH 1 FULL');
  assert.deepEqual(full.untagged, [`* 1 FETCH (FLAGS () INTERNALDATE " 2-Mar-2021 10:00:00 +0100" RFC822.SIZE ${MULTI.length} ${ENVELOPE} ${BODY})`]);
  const many = await c.command('FETCH 2:4 UID');
  assert.deepEqual(many.untagged, ['* 2 FETCH (UID 2)', '* 3 FETCH (UID 3)', '* 4 FETCH (UID 4)']);
  await c.close();
});

test('ENVELOPE, BODYSTRUCTURE and BODY of a nested multipart', async () => {
  const c = await selected();
  assert.deepEqual((await c.command('FETCH 1 ENVELOPE')).untagged, [`* 1 FETCH (${ENVELOPE})`]);
  assert.deepEqual((await c.command('FETCH 1 BODYSTRUCTURE')).untagged, [`* 1 FETCH (${BODYSTRUCTURE})`]);
  assert.deepEqual((await c.command('FETCH 1 BODY')).untagged, [`* 1 FETCH (${BODY})`]);
  const simple = await c.command('FETCH 2 (ENVELOPE BODYSTRUCTURE)');
  assert.deepEqual(simple.untagged, [
    '* 2 FETCH (ENVELOPE ("Mon, 7 Feb 1994 21:52:25 -0800" "Message 2" (("Sender 2" NIL "sender2" "example.com")) (("Sender 2" NIL "sender2" "example.com")) ' +
      '(("Sender 2" NIL "sender2" "example.com")) (("Alice" NIL "alice" "example.com")) NIL NIL NIL "<m2@example.com>") ' +
      'BODYSTRUCTURE ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 20 1 NIL NIL NIL NIL))',
  ]);
  await c.close();
});

test('BODY.PEEK sections: whole, partial, HEADER, HEADER.FIELDS(.NOT), TEXT, parts and MIME', async () => {
  const c = await selected();
  const whole = await c.command('FETCH 1 BODY.PEEK[]');
  assert.deepEqual(whole.untagged, [`* 1 FETCH (BODY[] {${MULTI.length}}\r\n${MULTI})`]);
  const partial = await c.command('FETCH 1 BODY.PEEK[]<5.10>');
  assert.deepEqual(partial.untagged, [`* 1 FETCH (BODY[]<5> {10}\r\n${MULTI.slice(5, 15)})`]);
  const beyond = await c.command('FETCH 1 BODY.PEEK[]<99999.10>');
  assert.deepEqual(beyond.untagged, ['* 1 FETCH (BODY[]<99999> {0}\r\n)']);
  const header = await c.command('FETCH 1 BODY.PEEK[HEADER]');
  assert.deepEqual(header.untagged, [`* 1 FETCH (BODY[HEADER] {${HEADER.length}}\r\n${HEADER})`]);
  const fields = await c.command('FETCH 1 (BODY.PEEK[HEADER.FIELDS (Subject To)] BODY.PEEK[HEADER.FIELDS.NOT (Subject To From Cc Date Message-ID MIME-Version)])');
  const f1 = L('To: Alice <alice@example.com>, bob@example.com', 'Subject: =?UTF-8?B?SGVsbG8gV8O2cmxk?=', '', '');
  const f2 = L('Content-Type: multipart/mixed; boundary="outer"', '', '');
  assert.deepEqual(fields.untagged, [
    `* 1 FETCH (BODY[HEADER.FIELDS (Subject To)] {${f1.length}}\r\n${f1} BODY[HEADER.FIELDS.NOT (Subject To From Cc Date Message-ID MIME-Version)] {${f2.length}}\r\n${f2})`,
  ]);
  const none = await c.command('FETCH 1 BODY.PEEK[HEADER.FIELDS (X-None)]');
  assert.deepEqual(none.untagged, ['* 1 FETCH (BODY[HEADER.FIELDS (X-None)] {2}\r\n\r\n)']);
  const text = await c.command('FETCH 1 BODY.PEEK[TEXT]');
  assert.deepEqual(text.untagged, [`* 1 FETCH (BODY[TEXT] {${TEXT.length}}\r\n${TEXT})`]);
  const parts = await c.command('FETCH 1 (BODY.PEEK[1] BODY.PEEK[1.1] BODY.PEEK[1.2.MIME] BODY.PEEK[2.MIME] BODY.PEEK[2])');
  const p12mime = L('Content-Type: text/html; charset=utf-8', '', '');
  assert.deepEqual(parts.untagged, [
    `* 1 FETCH (BODY[1] {${PART1.length}}\r\n${PART1} BODY[1.1] {33}\r\nCaf=C3=A9 plain searchable-needle BODY[1.2.MIME] {${p12mime.length}}\r\n${p12mime} ` +
      `BODY[2.MIME] {${PART2_MIME.length}}\r\n${PART2_MIME} BODY[2] {8}\r\nAAECAwQ=)`,
  ]);
  const sub = await c.command('FETCH 1 (BODY.PEEK[1.1]<3.4> BODY.PEEK[4] BODY.PEEK[1.2.3])');
  assert.deepEqual(sub.untagged, ['* 1 FETCH (BODY[1.1]<3> {4}\r\n=C3= BODY[4] {0}\r\n BODY[1.2.3] {0}\r\n)']);
  await c.close();
});

test('RFC822, RFC822.HEADER and RFC822.TEXT', async () => {
  const c = await selected();
  const r = await c.command('FETCH 1 (RFC822.HEADER RFC822.SIZE)');
  assert.deepEqual(r.untagged, [`* 1 FETCH (RFC822.HEADER {${HEADER.length}}\r\n${HEADER} RFC822.SIZE ${MULTI.length})`]);
  // EXAMINE: RFC822 and RFC822.TEXT do not set \Seen, so no FLAGS are added.
  const t = await c.command('FETCH 1 RFC822.TEXT');
  assert.deepEqual(t.untagged, [`* 1 FETCH (RFC822.TEXT {${TEXT.length}}\r\n${TEXT})`]);
  const all = await c.command('FETCH 1 RFC822');
  assert.deepEqual(all.untagged, [`* 1 FETCH (RFC822 {${MULTI.length}}\r\n${MULTI})`]);
  await c.close();
});

test('BINARY, BINARY.PEEK, BINARY.SIZE; UNKNOWN-CTE fails before any data', async () => {
  const c = await selected();
  const r = await c.command('FETCH 1 (BINARY.PEEK[2] BINARY.SIZE[2] BINARY.SIZE[1.1] BINARY.PEEK[1.1])');
  assert.equal(r.untagged.length, 1);
  assert.equal(r.untagged[0], '* 1 FETCH (BINARY[2] ~{5}\r\n\x00\x01\x02\x03\x04 BINARY.SIZE[2] 5 BINARY.SIZE[1.1] 29 BINARY[1.1] {29}\r\nCafé plain searchable-needle)');
  const partial = await c.command('FETCH 1 BINARY.PEEK[2]<1.2>');
  assert.equal(partial.untagged[0], '* 1 FETCH (BINARY[2]<1> {2}\r\n\x01\x02)');
  const unknown = await c.command('FETCH 1 (UID BINARY.PEEK[3])');
  assert.deepEqual(unknown.untagged, []);
  assert.match(unknown.tagged, /^t6 NO \[UNKNOWN-CTE\] /);
  const size = await c.command('FETCH 1 BINARY.SIZE[3]');
  assert.match(size.tagged, /^t7 NO \[UNKNOWN-CTE\] /);
  // Plain BODY[3] still works: the client can decode it itself.
  assert.deepEqual((await c.command('FETCH 1 BODY.PEEK[3]')).untagged, ['* 1 FETCH (BODY[3] {5}\r\nweird)']);
  assert.match((await c.command('FETCH 1 BINARY[1.MIME]')).tagged, /^t9 BAD /);
  assert.match((await c.command('FETCH 1 BINARY.SIZE[1]<0.5>')).tagged, /^t10 BAD /);
  await c.close();
});

test('PREVIEW, with and without LAZY', async () => {
  const c = await selected();
  const r = await c.command('FETCH 1:2 PREVIEW');
  assert.deepEqual(r.untagged, ['* 1 FETCH (PREVIEW {29}\r\nCafé plain searchable-needle)', '* 2 FETCH (PREVIEW "Body of message 2.")']);
  const lazy = await c.command('FETCH 2 (UID PREVIEW (LAZY))');
  assert.deepEqual(lazy.untagged, ['* 2 FETCH (UID 2 PREVIEW "Body of message 2.")']);
  assert.match((await c.command('FETCH 2 PREVIEW (FOO)')).tagged, /^t6 BAD /);
  await c.close();
});

test('implicit \\Seen: BODY[] sets it and reports FLAGS; BODY.PEEK and EXAMINE do not', async () => {
  const c = await RawClient.connect(srv.port, { login });
  await c.command('ENABLE IMAP4rev2');
  await c.command('CREATE Seen1');
  for (let i = 1; i <= 4; i++) await c.append('Seen1', message(i));
  await c.command('EXAMINE Seen1');
  const ro = await c.command('FETCH 1 BODY[TEXT]');
  assert.deepEqual(ro.untagged, ['* 1 FETCH (BODY[TEXT] {20}\r\nBody of message 1.\r\n)']);
  assert.deepEqual((await c.command('FETCH 1 FLAGS')).untagged, ['* 1 FETCH (FLAGS ())']);
  await c.command('SELECT Seen1');
  const peek = await c.command('FETCH 1 BODY.PEEK[TEXT]');
  assert.deepEqual(peek.untagged, ['* 1 FETCH (BODY[TEXT] {20}\r\nBody of message 1.\r\n)']);
  const r = await c.command('FETCH 1 BODY[TEXT]');
  assert.deepEqual(r.untagged, ['* 1 FETCH (BODY[TEXT] {20}\r\nBody of message 1.\r\n FLAGS (\\Seen))']);
  // Already seen: no FLAGS unless asked for.
  assert.deepEqual((await c.command('FETCH 1 BODY[TEXT]')).untagged, ['* 1 FETCH (BODY[TEXT] {20}\r\nBody of message 1.\r\n)']);
  // FLAGS asked for before the body: reported once, already with \Seen.
  const both = await c.command('FETCH 2 (FLAGS BODY[HEADER.FIELDS (Subject)])');
  assert.deepEqual(both.untagged, ['* 2 FETCH (FLAGS (\\Seen) BODY[HEADER.FIELDS (Subject)] {22}\r\nSubject: Message 2\r\n\r\n)']);
  const rfc = await c.command('FETCH 3 RFC822.TEXT');
  assert.deepEqual(rfc.untagged, ['* 3 FETCH (RFC822.TEXT {20}\r\nBody of message 3.\r\n FLAGS (\\Seen))']);
  const bin = await c.command('FETCH 4 BINARY[1]');
  assert.deepEqual(bin.untagged, ['* 4 FETCH (BINARY[1] {20}\r\nBody of message 4.\r\n FLAGS (\\Seen))']);
  // Header-only items are not reads of the body: RFC822.HEADER never sets \Seen.
  await c.command('STORE 1:4 -FLAGS.SILENT (\\Seen)');
  assert.deepEqual((await c.command('FETCH 1 RFC822.HEADER')).untagged.length, 1);
  assert.deepEqual((await c.command('FETCH 1 FLAGS')).untagged, ['* 1 FETCH (FLAGS ())']);
  // A second session sees the \Seen set by FETCH as an untagged FETCH FLAGS.
  const other = await RawClient.connect(srv.port, { login });
  await other.command('ENABLE IMAP4rev2');
  await other.command('SELECT Seen1');
  await c.command('FETCH 2 BODY[]');
  const n = await other.command('NOOP');
  assert.deepEqual(n.untagged, ['* 2 FETCH (UID 2 FLAGS (\\Seen))']);
  await other.close();
  await c.close();
});

test('UID FETCH always includes UID; "n:*" beyond the highest UID includes the last message', async () => {
  const c = await selected();
  assert.deepEqual((await c.command('UID FETCH 2 FLAGS')).untagged, ['* 2 FETCH (UID 2 FLAGS ())']);
  assert.deepEqual((await c.command('UID FETCH 3 (FLAGS UID)')).untagged, ['* 3 FETCH (FLAGS () UID 3)']);
  assert.deepEqual((await c.command('UID FETCH 100:* FLAGS')).untagged, ['* 5 FETCH (UID 5 FLAGS ())']);
  assert.deepEqual((await c.command('UID FETCH *:100 UID')).untagged, ['* 5 FETCH (UID 5)']);
  // UIDs that name no message are ignored, not an error (RFC 9051 §6.4.9).
  const none = await c.command('UID FETCH 50:60 FLAGS');
  assert.deepEqual(none.untagged, []);
  assert.equal(none.tagged, 't8 OK FETCH completed');
  assert.deepEqual((await c.command('UID FETCH 4,2,50 UID')).untagged, ['* 2 FETCH (UID 2)', '* 4 FETCH (UID 4)']);
  assert.deepEqual((await c.command('FETCH *:4 UID')).untagged, ['* 4 FETCH (UID 4)', '* 5 FETCH (UID 5)']);
  await c.close();
});

test('sequence numbers out of range, invalid sets and invalid items are BAD', async () => {
  const c = await selected();
  assert.match((await c.command('FETCH 6 FLAGS')).tagged, /^t4 BAD /);
  assert.match((await c.command('FETCH 1:6 FLAGS')).tagged, /^t5 BAD /);
  assert.match((await c.command('FETCH 0 FLAGS')).tagged, /^t6 BAD /);
  assert.match((await c.command('FETCH 1 (FLAGS BOGUS)')).tagged, /^t7 BAD /);
  assert.match((await c.command('FETCH 1 ()')).tagged, /^t8 BAD /);
  assert.match((await c.command('FETCH 1 BODY[HEADER.FIELDS ()]')).tagged, /^t9 BAD /);
  assert.match((await c.command('FETCH 1 BODY[1.MIME.TEXT]')).tagged, /^t10 BAD /);
  assert.match((await c.command('FETCH 1 BODY[MIME]')).tagged, /^t11 BAD /);
  assert.match((await c.command('FETCH 1 BODY[]<0.0>')).tagged, /^t12 BAD /);
  assert.match((await c.command('FETCH 1:x FLAGS')).tagged, /^t13 BAD /);
  assert.match((await c.command('FETCH 1')).tagged, /^t14 BAD /);
  assert.match((await c.command('NOOP')).tagged, /^t15 OK/);
  // Empty mailbox: any sequence number is out of range, a UID set matches nothing.
  await c.command('EXAMINE Trash');
  assert.match((await c.command('FETCH 1:* FLAGS')).tagged, /^t17 BAD /);
  assert.match((await c.command('FETCH * FLAGS')).tagged, /^t18 BAD /);
  const u = await c.command('UID FETCH 1:* FLAGS');
  assert.deepEqual(u.untagged, []);
  assert.equal(u.tagged, 't19 OK FETCH completed');
  await c.close();
});

test('"$" after SEARCH RETURN (SAVE) names the saved messages', async () => {
  const c = await selected();
  const s = await c.command('SEARCH RETURN (SAVE) 2:3,5');
  assert.deepEqual(s.untagged, []);
  assert.match(s.tagged, /^t4 OK /);
  assert.deepEqual((await c.command('FETCH $ UID')).untagged, ['* 2 FETCH (UID 2)', '* 3 FETCH (UID 3)', '* 5 FETCH (UID 5)']);
  assert.deepEqual((await c.command('UID FETCH $ FLAGS')).untagged, ['* 2 FETCH (UID 2 FLAGS ())', '* 3 FETCH (UID 3 FLAGS ())', '* 5 FETCH (UID 5 FLAGS ())']);
  // Selecting again empties "$" (RFC 5182 §2.1).
  await c.command('EXAMINE F');
  assert.deepEqual((await c.command('FETCH $ UID')).untagged, []);
  await c.close();
});

test('APPENDUID validity matches STATUS and FETCH UID', () => {
  assert.match(uidValidity, /^\d+$/);
});
