// SORT, UID SORT, THREAD and UID THREAD over a real socket (RFC 5256,
// RFC 5957 SORT=DISPLAY, RFC 5267 §3 ESORT, RFC 5182 SEARCHRES with SORT,
// RFC 9394 PARTIAL): every key, REVERSE and tie-breaks, CHARSET, bad
// arguments, RETURN options and "$", a second session changing the mailbox,
// COPY keeping the keys, and keys filled in for rows stored before them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import Database from 'better-sqlite3';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient } from '../helpers/imap.js';

let srv: TestServer;
const login = ['alice', 'secret-a'] as [string, string];

// The probe mailbox from the Dovecot comparison (answers checked against Dovecot 2.3).
const MSGS = [
  'From: "Zed" <a@x.org>\r\nTo: =?UTF-8?Q?=C3=A9mile?= <e@x>\r\nSubject: Re: [list] Hello\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\nx\r\n',
  'From: b@y.org\r\nSubject: hello (fwd)\r\nDate: Mon, 1 Jan 2024 09:00:00 +0100\r\nCc: zz@q\r\n\r\nxx\r\n',
  'From: "Amy" <C@z.org>\r\nSubject: [Fwd: Re: hello]\r\nDate: garbage\r\n\r\nxxxxxx\r\n',
  'Subject: _underscore\r\n\r\nxxxxx\r\n',
  'From: =?UTF-8?Q?=C3=89mile?= <a@x.org>\r\nTo: "Bob" <bob@q>\r\nSubject: Fw: re: Re[2]: hello\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\nCc: aa@q\r\n\r\nxxxx\r\n',
  'From: <a@x.org>\r\nTo: group: x@y, z@w;\r\nSubject: [x]\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\nxxx\r\n',
];
const DATES = ['01-Jan-2024 00:00:05 +0000', '01-Jan-2024 00:00:01 +0000', '01-Jan-2024 00:00:03 +0000', '01-Jan-2024 00:00:03 +0000', '01-Jan-2024 00:00:00 +0000', '01-Jan-2024 00:00:02 +0000'];

before(async () => {
  srv = await startTestServer();
  const c = await RawClient.connect(srv.port, { login });
  await c.command('CREATE P');
  for (let i = 0; i < MSGS.length; i++) await c.append('P', MSGS[i]!, `"${DATES[i]}"`);
  await c.close();
});
after(async () => {
  await srv.stop();
});

async function client(box = 'P', mode = 'SELECT'): Promise<RawClient> {
  const c = await RawClient.connect(srv.port, { login });
  const r = await c.command(`${mode} ${box}`);
  assert.match(r.tagged, /OK/);
  return c;
}

async function one(c: RawClient, cmd: string | Buffer): Promise<string> {
  const r = await c.command(cmd);
  assert.match(r.tagged, /^t\d+ OK /, `${cmd}: ${r.tagged}`);
  const lines = r.untagged.filter((l) => /^\* (SORT|THREAD|ESEARCH|SEARCH)\b/.test(l));
  assert.equal(lines.length, 1, r.raw);
  return lines[0]!.replace(/\(TAG "[^"]*"\)/, '(TAG *)');
}

test('capabilities: SORT, SORT=DISPLAY, ESORT and the three THREAD algorithms once authenticated', async () => {
  const c = await RawClient.connect(srv.port);
  const pre = await c.command('CAPABILITY');
  assert.doesNotMatch(pre.untagged[0]!, / SORT/);
  await c.command(`LOGIN ${login.join(' ')}`);
  const caps = (await c.command('CAPABILITY')).untagged[0]!.split(' ');
  for (const cap of ['SORT', 'SORT=DISPLAY', 'ESORT', 'THREAD=ORDEREDSUBJECT', 'THREAD=REFERENCES', 'THREAD=REFS', 'PARTIAL']) assert.ok(caps.includes(cap), cap);
  await c.close();
});

test('every sort key, REVERSE only reversing its key, ties by sequence number', async () => {
  const c = await client('P', 'EXAMINE');
  const cases: [string, string][] = [
    ['(ARRIVAL)', '5 2 6 3 4 1'],
    ['(REVERSE ARRIVAL)', '1 3 4 6 2 5'],
    ['(FROM)', '4 1 5 6 2 3'],
    ['(REVERSE FROM)', '3 2 1 5 6 4'],
    ['(TO)', '2 3 4 5 1 6'],
    ['(CC)', '1 3 4 6 5 2'],
    ['(DISPLAYFROM)', '4 6 3 2 5 1'],
    ['(DISPLAYTO)', '2 3 4 5 1 6'],
    ['(SUBJECT)', '1 2 3 5 6 4'],
    ['(REVERSE SUBJECT)', '4 6 1 2 3 5'],
    ['(SIZE)', '4 3 2 6 1 5'],
    // No or unparseable Date: INTERNALDATE (RFC 5256 §2.2).
    ['(DATE)', '3 4 2 1 5 6'],
    ['(REVERSE DATE)', '1 5 6 2 3 4'],
    ['(SUBJECT REVERSE DATE)', '1 5 2 3 6 4'],
    ['(FROM DATE)', '4 1 5 6 2 3'],
  ];
  for (const [prog, want] of cases) assert.equal(await one(c, `SORT ${prog} UTF-8 ALL`), `* SORT ${want}`, prog);
  await c.close();
});

test('UID SORT answers UIDs; a search restricts; "$" and sequence sets work as criteria', async () => {
  const c = await client();
  await c.command('CREATE P2');
  await c.command('COPY 1:6 P2');
  await c.command('SELECT P2');
  await c.command('STORE 2 +FLAGS (\\Deleted)');
  await c.command('EXPUNGE');
  // Sequence numbers 1..5 are UIDs 1,3,4,5,6 now.
  assert.equal(await one(c, 'UID SORT (SUBJECT) UTF-8 ALL'), '* SORT 1 3 5 6 4');
  assert.equal(await one(c, 'SORT (SUBJECT) UTF-8 ALL'), '* SORT 1 2 4 5 3');
  assert.equal(await one(c, 'UID SORT (DATE) UTF-8 FROM "a@x.org"'), '* SORT 1 5 6');
  assert.equal(await one(c, 'SORT (REVERSE SIZE) UTF-8 2:4'), '* SORT 4 2 3');
  assert.equal(await one(c, 'UID SORT (SIZE) UTF-8 UID 4:*'), '* SORT 4 6 5');
  assert.equal(await one(c, 'SORT (DATE) UTF-8 SUBJECT nothing-matches'), '* SORT');
  await c.close();
});

test('CHARSET: legacy charsets decode the search strings, unknown ones answer NO [BADCHARSET]', async () => {
  const c = await client();
  await c.command('CREATE P3');
  await c.append('P3', 'Subject: caf\u00e9 au lait\r\nFrom: x@y\r\n\r\nx\r\n');
  await c.append('P3', 'Subject: tea\r\nFrom: x@y\r\n\r\nx\r\n');
  await c.command('SELECT P3');
  const latin1 = Buffer.concat([Buffer.from('SORT (SUBJECT) ISO-8859-1 SUBJECT {4}\r\ncaf'), Buffer.from([0xe9])]);
  c.write(Buffer.concat([Buffer.from('t100 '), latin1, Buffer.from('\r\n')]));
  const r0 = await c.collect('t100');
  assert.match(r0.tagged, /^t100 OK/);
  assert.deepEqual(r0.untagged.filter((l) => l.startsWith('* SORT')), ['* SORT 1']);
  assert.equal(await one(c, 'SORT (SUBJECT) US-ASCII SUBJECT tea'), '* SORT 2');
  const bad = await c.command('SORT (SUBJECT) X-NO-SUCH-CHARSET SUBJECT tea');
  assert.match(bad.tagged, /^t\d+ NO \[BADCHARSET/);
  // A failed SAVE empties "$" (RFC 5182 §2.1).
  await one(c, 'SEARCH RETURN (SAVE ALL) ALL');
  const bad2 = await c.command('SORT RETURN (SAVE) (SUBJECT) X-NO-SUCH-CHARSET ALL');
  assert.match(bad2.tagged, /NO \[BADCHARSET/);
  assert.equal(await one(c, 'SORT (SUBJECT) UTF-8 $'), '* SORT');
  await c.close();
});

test('bad arguments get BAD, never a crash', async () => {
  const c = await client('P', 'EXAMINE');
  for (const cmd of [
    'SORT () UTF-8 ALL',
    'SORT (REVERSE) UTF-8 ALL',
    'SORT (REVERSE REVERSE DATE) UTF-8 ALL',
    'SORT (NOSUCHKEY) UTF-8 ALL',
    'SORT DATE UTF-8 ALL',
    'SORT (DATE)',
    'SORT (DATE) UTF-8',
    'SORT (DATE) UTF-8 NOSUCHSEARCHKEY',
    'SORT RETURN (BOGUS) (DATE) UTF-8 ALL',
    'SORT RETURN (PARTIAL) (DATE) UTF-8 ALL',
    'SORT RETURN (PARTIAL 0:5) (DATE) UTF-8 ALL',
    'SORT RETURN (PARTIAL 1:-5) (DATE) UTF-8 ALL',
    'SORT RETURN (PARTIAL 1:5 ALL) (DATE) UTF-8 ALL',
    'THREAD NOSUCHALG UTF-8 ALL',
    'THREAD REFERENCES',
    'THREAD REFERENCES UTF-8',
    'THREAD (REFERENCES) UTF-8 ALL',
  ]) {
    const r = await c.command(cmd);
    assert.match(r.tagged, /^t\d+ BAD /, `${cmd}: ${r.tagged}`);
  }
  const unsel = await RawClient.connect(srv.port, { login });
  assert.match((await unsel.command('SORT (DATE) UTF-8 ALL')).tagged, /BAD/);
  await unsel.close();
  await c.close();
});

test('ESORT: RETURN MIN MAX COUNT ALL in sort order, SAVE into "$" (SEARCHRES)', async () => {
  const c = await client('P', 'EXAMINE');
  assert.equal(await one(c, 'SORT RETURN (MIN MAX COUNT ALL) (SUBJECT) UTF-8 ALL'), '* ESEARCH (TAG *) MIN 1 MAX 4 COUNT 6 ALL 1:3,5:6,4');
  assert.equal(await one(c, 'SORT RETURN () (DATE) UTF-8 ALL'), '* ESEARCH (TAG *) ALL 3:4,2,1,5:6');
  assert.equal(await one(c, 'UID SORT RETURN (MIN) (DATE) UTF-8 ALL'), '* ESEARCH (TAG *) UID MIN 3');
  assert.equal(await one(c, 'SORT RETURN (COUNT) (DATE) UTF-8 SUBJECT nothing'), '* ESEARCH (TAG *) COUNT 0');
  // SAVE alone: no response; "$" then holds the set.
  const r = await c.command('SORT RETURN (SAVE) (SUBJECT) UTF-8 FROM "a@x.org"');
  assert.match(r.tagged, /OK/);
  assert.deepEqual(r.untagged.filter((l) => /SORT|ESEARCH/.test(l)), []);
  assert.equal(await one(c, 'SORT (REVERSE DATE) UTF-8 $'), '* SORT 1 5 6');
  // SAVE with MIN only keeps the first in sort order (RFC 5182 §2.4).
  await c.command('SORT RETURN (SAVE MIN) (SIZE) UTF-8 ALL');
  assert.equal(await one(c, 'SEARCH $'), '* SEARCH 4');
  await c.close();
});

test('PARTIAL (RFC 9394): windows from the start and from the end, empty windows, with COUNT', async () => {
  const c = await client('P', 'EXAMINE');
  assert.equal(await one(c, 'SORT RETURN (PARTIAL 1:2) (DATE) UTF-8 ALL'), '* ESEARCH (TAG *) PARTIAL (1:2 3:4)');
  assert.equal(await one(c, 'SORT RETURN (PARTIAL 3:5 COUNT) (DATE) UTF-8 ALL'), '* ESEARCH (TAG *) COUNT 6 PARTIAL (3:5 2,1,5)');
  assert.equal(await one(c, 'SORT RETURN (PARTIAL -1:-2) (DATE) UTF-8 ALL'), '* ESEARCH (TAG *) PARTIAL (-1:-2 5:6)');
  assert.equal(await one(c, 'SORT RETURN (PARTIAL 5:100) (DATE) UTF-8 ALL'), '* ESEARCH (TAG *) PARTIAL (5:100 5:6)');
  assert.equal(await one(c, 'SORT RETURN (PARTIAL 7:9) (DATE) UTF-8 ALL'), '* ESEARCH (TAG *) PARTIAL (7:9 NIL)');
  assert.equal(await one(c, 'UID SORT RETURN (PARTIAL 1:3) (SUBJECT) UTF-8 FROM "a@x.org"'), '* ESEARCH (TAG *) UID PARTIAL (1:3 1,5:6)');
  assert.equal(await one(c, 'SORT RETURN (PARTIAL 2:1 MIN) (SIZE) UTF-8 ALL'), '* ESEARCH (TAG *) MIN 4 PARTIAL (1:2 4,3)');
  // On SEARCH too, in UID order.
  assert.equal(await one(c, 'SEARCH RETURN (PARTIAL -1:-3) ALL'), '* ESEARCH (TAG *) PARTIAL (-1:-3 4:6)');
  assert.equal(await one(c, 'UID SEARCH RETURN (PARTIAL 2:3 COUNT) ALL'), '* ESEARCH (TAG *) UID COUNT 6 PARTIAL (2:3 2:3)');
  // The FETCH modifier: a window of the messages the set names, in UID order.
  const fetched = async (cmd: string) => (await c.command(cmd)).untagged.filter((l) => / FETCH /.test(l)).map((l) => l.split(' ')[1]);
  assert.deepEqual(await fetched('UID FETCH 1:* (FLAGS) (PARTIAL -1:-2)'), ['5', '6']);
  assert.deepEqual(await fetched('FETCH 2:* (UID) (PARTIAL 2:3)'), ['3', '4']);
  assert.deepEqual(await fetched('FETCH 1:3 (UID) (PARTIAL 5:9)'), []);
  for (const bad of ['FETCH 1:* (UID) (PARTIAL 0:1)', 'FETCH 1:* (UID) (PARTIAL)', 'FETCH 1:* (UID) (PARTIAL 1:2 PARTIAL 3:4)']) assert.match((await c.command(bad)).tagged, /BAD/, bad);
  await c.close();
});

test('THREAD ORDEREDSUBJECT, REFERENCES and REFS; UID THREAD; a restricting search', async () => {
  const c = await client('P', 'EXAMINE');
  assert.equal(await one(c, 'THREAD ORDEREDSUBJECT UTF-8 ALL'), '* THREAD (3 (2)(1)(5))(4)(6)');
  assert.equal(await one(c, 'THREAD REFERENCES UTF-8 ALL'), '* THREAD ((3)(2)(1)(5))(4)(6)');
  assert.equal(await one(c, 'THREAD REFS UTF-8 ALL'), '* THREAD (3)(4)(2)(1)(5)(6)');
  assert.equal(await one(c, 'THREAD REFERENCES UTF-8 SUBJECT nothing'), '* THREAD');
  await c.command('CREATE T');
  const m = (id: string, extra: string, subj: string) => `Message-ID: <${id}>\r\nSubject: ${subj}\r\nDate: 1 Jan 2024 10:00:00 +0000\r\n${extra}\r\nx\r\n`;
  await c.append('T', m('a@x', '', 'topic'));
  await c.append('T', m('b@x', 'References: <a@x>\r\n', 'Re: topic'));
  await c.append('T', m('c@x', 'In-Reply-To: <b@x>\r\n', 'Re: topic'));
  await c.append('T', m('d@x', 'References: <a@x>\r\n', 'Re: topic'));
  await c.append('T', m('e@x', '', 'other'));
  await c.command('SELECT T');
  await c.command('STORE 1 +FLAGS (\\Deleted)');
  await c.command('EXPUNGE');
  // UIDs 2..5 are sequence numbers 1..4; a's dummy gathers b and d.
  assert.equal(await one(c, 'THREAD REFERENCES UTF-8 ALL'), '* THREAD ((1 2)(3))(4)');
  assert.equal(await one(c, 'UID THREAD REFERENCES UTF-8 ALL'), '* THREAD ((2 3)(4))(5)');
  assert.equal(await one(c, 'UID THREAD REFERENCES UTF-8 NOT UID 4'), '* THREAD (2 3)(5)');
  await c.close();
});

test('another session appending and expunging: results only name messages this session knows; no EXPUNGE during SORT', async () => {
  const c = await client();
  await c.command('CREATE P4');
  for (let i = 0; i < 3; i++) await c.append('P4', `Subject: m${i}\r\n\r\nx\r\n`);
  await c.command('SELECT P4');
  const other = await client('P4');
  await other.append('P4', 'Subject: a-new\r\n\r\nx\r\n');
  await other.command('STORE 2 +FLAGS (\\Deleted)');
  await other.command('EXPUNGE');
  const r = await c.command('SORT (SUBJECT) UTF-8 ALL');
  assert.match(r.tagged, /OK/);
  // The expunged message is gone from the store; no EXPUNGE is sent during SORT (RFC 5256 §3).
  assert.ok(!r.untagged.some((l) => /EXPUNGE/.test(l)), r.raw);
  const sortLine = r.untagged.find((l) => l.startsWith('* SORT'))!;
  const nums = sortLine.split(' ').slice(2).map(Number);
  assert.ok(nums.every((n) => n >= 1 && n <= 4), sortLine);
  // UID SORT may send it.
  const u = await c.command('UID SORT (SUBJECT) UTF-8 ALL');
  assert.ok(u.untagged.some((l) => /^\* 2 EXPUNGE$/.test(l)), u.raw);
  assert.equal(u.untagged.find((l) => l.startsWith('* SORT')), '* SORT 4 1 3');
  await other.close();
  await c.close();
});

test('COPY keeps the sort keys; rows stored before the keys existed get them when sorted', async () => {
  const c = await client();
  await c.command('CREATE P5');
  await c.command('COPY 1:6 P5');
  await c.command('SELECT P5');
  assert.equal(await one(c, 'SORT (SUBJECT) UTF-8 ALL'), '* SORT 1 2 3 5 6 4');
  // Simulate rows from before schema V11: keys gone from both the bodies and the rows.
  const db = new Database(path.join(srv.dataDir, 'quire.sqlite3'));
  db.pragma('busy_timeout = 5000');
  const mb = db.prepare("SELECT id FROM mailboxes WHERE name = 'P5'").pluck().get() as number;
  db.prepare(`DELETE FROM sort_keys WHERE blob_id IN (SELECT blob_id FROM messages WHERE mailbox_id = ?)`).run(mb);
  db.prepare(`UPDATE messages SET sort_subject = NULL, sort_from = NULL, sort_dfrom = NULL, sort_date = NULL WHERE mailbox_id = ?`).run(mb);
  assert.equal(await one(c, 'SORT (SUBJECT) UTF-8 ALL'), '* SORT 1 2 3 5 6 4');
  assert.equal(await one(c, 'SORT (DISPLAYFROM) UTF-8 ALL'), '* SORT 4 6 3 2 5 1');
  assert.equal(await one(c, 'SORT (DATE) UTF-8 ALL'), '* SORT 3 4 2 1 5 6');
  assert.equal(db.prepare('SELECT count(*) FROM messages WHERE mailbox_id = ? AND sort_date IS NULL').pluck().get(mb), 0);
  assert.equal(db.prepare('SELECT count(*) FROM messages m WHERE NOT EXISTS (SELECT 1 FROM sort_keys k WHERE k.blob_id = m.blob_id)').pluck().get(), 0);
  assert.equal(await one(c, 'THREAD ORDEREDSUBJECT UTF-8 ALL'), '* THREAD (3 (2)(1)(5))(4)(6)');
  db.close();
  await c.close();
});

test('SORT with MODSEQ carries the highest mod-sequence (RFC 7162 §3.1.7)', async () => {
  const c = await client();
  await c.command('CREATE P6');
  await c.append('P6', 'Subject: b\r\n\r\nx\r\n');
  await c.append('P6', 'Subject: a\r\n\r\nx\r\n');
  await c.command('SELECT P6');
  const st = await c.command('STORE 2 +FLAGS (\\Flagged)');
  assert.match(st.tagged, /OK/);
  const line = await one(c, 'SORT (SUBJECT) UTF-8 MODSEQ 1');
  assert.match(line, /^\* SORT 2 1 \(MODSEQ \d+\)$/);
  await c.close();
});
