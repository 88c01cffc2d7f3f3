// UIDONLY (RFC 9586) over real sockets: ENABLE UIDONLY; commands that take or
// return message sequence numbers answer BAD [UIDREQUIRED]; message data is
// UIDFETCH numbered by UID (FETCH, STORE, flag changes by another session,
// NOTIFY's MessageNew); expunges are VANISHED, never EXPUNGE.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient, message } from '../helpers/imap.js';

let srv: TestServer;
const login = ['alice', 'secret-a'] as [string, string];
before(async () => { srv = await startTestServer(); });
after(async () => { await srv.stop(); });

let n = 0;
async function setup(count: number, enable = 'ENABLE IMAP4rev2 UIDONLY'): Promise<{ a: RawClient; box: string }> {
  const box = `UidOnly${++n}`;
  const a = await RawClient.connect(srv.port, { login });
  assert.ok((await a.command(enable)).untagged.some((l) => /^\* ENABLED .*UIDONLY/.test(l)));
  await a.command(`CREATE ${box}`);
  // Gaps between UIDs, so a UID never equals its sequence number by chance.
  for (let i = 1; i <= count + 2; i++) await a.append(box, message(i));
  await a.command(`SELECT ${box}`);
  await a.command('UID STORE 1,3 +FLAGS.SILENT (\\Deleted)');
  await a.command('UID EXPUNGE 1,3');
  return { a, box };
}

test('UIDONLY is advertised and enabled by ENABLE', async () => {
  const c = await RawClient.connect(srv.port, { login });
  assert.match((await c.command('CAPABILITY')).untagged[0]!, / UIDONLY( |$)/);
  assert.deepEqual((await c.command('ENABLE UIDONLY')).untagged, ['* ENABLED UIDONLY']);
  await c.close();
});

test('sequence-number commands and arguments are BAD [UIDREQUIRED]; the UID forms work', async () => {
  const { a, box } = await setup(3);
  for (const cmd of ['FETCH 1 FLAGS', 'STORE 1 +FLAGS (\\Seen)', 'SEARCH ALL', 'SORT (DATE) UTF-8 ALL', 'THREAD REFERENCES UTF-8 ALL',
    `COPY 1 ${box}`, `MOVE 1 ${box}`, 'UID SEARCH 1:2', 'UID SEARCH NOT 1', 'UID SORT (DATE) UTF-8 OR 1 UID 2']) {
    assert.match((await a.command(cmd)).tagged, /^\S+ BAD \[UIDREQUIRED\] /, cmd);
  }
  // REPLACE with a literal: the command is refused after its literal was read.
  const body = message(9);
  const r = await a.command(Buffer.from(`REPLACE 1 ${box} {${Buffer.byteLength(body)}+}\r\n${body}`));
  assert.match(r.tagged, /^\S+ BAD \[UIDREQUIRED\] /);
  // UIDs, ALL and "$" are fine.
  assert.match((await a.command('UID SEARCH UID 1:*')).untagged[0]!, /^\* ESEARCH \(TAG "\S+"\) UID ALL 2,4:5$/);
  assert.deepEqual((await a.command('UID SEARCH RETURN (SAVE) ALL')).untagged, []);
  assert.match((await a.command('UID SEARCH $')).untagged[0]!, /^\* ESEARCH \(TAG "\S+"\) UID ALL 2,4:5$/);
  assert.match((await a.command('EXPUNGE')).tagged, /OK/); // no numbers in it
  await a.command('UNSELECT');
  // QRESYNC's message sequence match data is refused; the rest of QRESYNC works.
  await a.close();
  const q = await RawClient.connect(srv.port, { login });
  await q.command('ENABLE QRESYNC UIDONLY');
  const st = (await q.command(`STATUS ${box} (UIDVALIDITY)`)).untagged[0]!;
  const uv = /UIDVALIDITY (\d+)/.exec(st)![1];
  assert.match((await q.command(`SELECT ${box} (QRESYNC (${uv} 1 1:5 (1,2 2,4)))`)).tagged, /^\S+ BAD \[UIDREQUIRED\] /);
  assert.match((await q.command(`SELECT ${box} (QRESYNC (${uv} 1 1:5))`)).tagged, /^\S+ OK /);
  await q.close();
});

test('message data is UIDFETCH numbered by UID; expunges are VANISHED (own and another session\'s)', async () => {
  const { a, box } = await setup(3);
  // Sequence numbers 1..3 are UIDs 2, 4, 5.
  assert.deepEqual((await a.command('UID FETCH 4:5 (FLAGS)')).untagged, ['* 4 UIDFETCH (UID 4 FLAGS ())', '* 5 UIDFETCH (UID 5 FLAGS ())']);
  assert.deepEqual((await a.command('UID FETCH 2 (UID RFC822.SIZE)')).untagged, [`* 2 UIDFETCH (UID 2 RFC822.SIZE ${Buffer.byteLength(message(2))})`]);
  const body = (await a.command('UID FETCH 4 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])')).untagged;
  assert.deepEqual(body, ['* 4 UIDFETCH (UID 4 BODY[HEADER.FIELDS (SUBJECT)] {22}\r\nSubject: Message 4\r\n\r\n)']);
  assert.deepEqual((await a.command('UID STORE 5 +FLAGS (\\Flagged)')).untagged, ['* 5 UIDFETCH (UID 5 FLAGS (\\Flagged))']);
  // BODY[] without .PEEK sets \Seen: the new flags come in the same UIDFETCH.
  const seen = (await a.command('UID FETCH 2 (BODY[TEXT])')).untagged;
  assert.equal(seen.length, 1);
  assert.match(seen[0]!, /^\* 2 UIDFETCH \(UID 2 BODY\[TEXT\] \{\d+\}\r\n.*FLAGS \(\\Seen\)\)$/s);
  // Another session changes flags and expunges: UIDFETCH and VANISHED, no EXPUNGE.
  const b = await RawClient.connect(srv.port, { login });
  await b.command(`SELECT ${box}`);
  await b.command('UID STORE 4 +FLAGS.SILENT (\\Answered)');
  assert.deepEqual((await a.command('NOOP')).untagged, ['* 4 UIDFETCH (UID 4 FLAGS (\\Answered))']);
  await b.command('UID STORE 2 +FLAGS.SILENT (\\Deleted)');
  await b.command('UID EXPUNGE 2');
  const noop = (await a.command('NOOP')).untagged;
  assert.deepEqual(noop.filter((l) => !l.includes('UIDFETCH')), ['* VANISHED 2']);
  // Our own expunge too.
  await a.command('UID STORE 5 +FLAGS.SILENT (\\Deleted)');
  assert.deepEqual((await a.command('UID EXPUNGE 5')).untagged, ['* VANISHED 5']);
  // New messages: EXISTS (a count, not a number) still comes.
  await b.append(box, message(7));
  assert.deepEqual((await a.command('NOOP')).untagged, ['* 2 EXISTS']);
  await a.close();
  await b.close();
});

test('with NOTIFY, MessageNew fetch attributes and expunges come as UIDFETCH and VANISHED', async () => {
  const { a, box } = await setup(1);
  await a.command('NOTIFY SET (selected (MessageNew (UID FLAGS) MessageExpunge))');
  const b = await RawClient.connect(srv.port, { login });
  await b.append(box, message(8));
  assert.deepEqual(await a.readUntil((l) => l.includes('UIDFETCH'), 2000), ['* 2 EXISTS', '* 4 UIDFETCH (UID 4 FLAGS ())']);
  await b.command(`SELECT ${box}`);
  await b.command('UID STORE 4 +FLAGS.SILENT (\\Deleted)');
  await b.command('UID EXPUNGE 4');
  assert.deepEqual(await a.readUntil((l) => l.startsWith('* VANISHED'), 2000), ['* VANISHED 4']);
  await a.close();
  await b.close();
});

test('without UIDONLY nothing changes: FETCH by sequence number, EXPUNGE responses', async () => {
  const { a } = await setup(2, 'ENABLE IMAP4rev2 UIDONLY').then(async (x) => {
    await x.a.close();
    const c = await RawClient.connect(srv.port, { login });
    await c.command(`SELECT UidOnly${n}`);
    return { a: c };
  });
  assert.deepEqual((await a.command('FETCH 1 (UID)')).untagged, ['* 1 FETCH (UID 2)']);
  await a.command('STORE 1 +FLAGS.SILENT (\\Deleted)');
  assert.deepEqual((await a.command('EXPUNGE')).untagged, ['* 1 EXPUNGE']);
  await a.close();
});
