// COPY / UID COPY (RFC 9051 §6.4.7, RFC 4315 COPYUID) and MOVE / UID MOVE
// (RFC 6851) over a real socket, with a second session on the source mailbox.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient, message } from '../helpers/imap.js';

let srv: TestServer;
const login = ['alice', 'secret-a'] as [string, string];
before(async () => { srv = await startTestServer(); });
after(async () => { await srv.stop(); });

let n = 0;
async function setup(count = 4): Promise<{ c: RawClient; src: string; dst: string; v: string }> {
  const src = `Src${++n}`;
  const dst = `Dst${n}`;
  const c = await RawClient.connect(srv.port, { login });
  await c.command('ENABLE IMAP4rev2');
  await c.command(`CREATE ${src}`);
  await c.command(`CREATE ${dst}`);
  for (let i = 1; i <= count; i++) await c.append(src, message(i), i === 2 ? '(\\Flagged $K)' : '');
  const v = /UIDVALIDITY (\d+)/.exec((await c.command(`STATUS ${dst} (UIDVALIDITY)`)).untagged[0])![1];
  await c.command(`SELECT ${src}`);
  return { c, src, dst, v };
}

test('COPY answers COPYUID with source and destination UID sets; flags are copied', async () => {
  const { c, dst, v } = await setup();
  const r = await c.command(`COPY 2,4 ${dst}`, 'c1');
  assert.deepEqual(r.untagged, []);
  assert.equal(r.tagged, `c1 OK [COPYUID ${v} 2,4 1:2] COPY completed`);
  const r2 = await c.command(`COPY 1:* ${dst}`, 'c2');
  assert.equal(r2.tagged, `c2 OK [COPYUID ${v} 1:4 3:6] COPY completed`);
  // The source is untouched.
  assert.deepEqual((await c.command('FETCH 1:* UID')).untagged, ['* 1 FETCH (UID 1)', '* 2 FETCH (UID 2)', '* 3 FETCH (UID 3)', '* 4 FETCH (UID 4)']);
  await c.command(`EXAMINE ${dst}`);
  const f = await c.command('FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (Subject)])');
  assert.equal(f.untagged.length, 6);
  assert.equal(f.untagged[0], '* 1 FETCH (UID 1 FLAGS (\\Flagged $K) BODY[HEADER.FIELDS (Subject)] {22}\r\nSubject: Message 2\r\n\r\n)');
  assert.equal(f.untagged[4], '* 5 FETCH (UID 5 FLAGS () BODY[HEADER.FIELDS (Subject)] {22}\r\nSubject: Message 3\r\n\r\n)');
  await c.close();
});

test('UID COPY: nonexistent UIDs are ignored; nothing to copy is still OK', async () => {
  const { c, dst, v } = await setup(3);
  const r = await c.command(`UID COPY 3,7,2 ${dst}`, 'u1');
  assert.equal(r.tagged, `u1 OK [COPYUID ${v} 2:3 1:2] COPY completed`);
  const none = await c.command(`UID COPY 50:60 ${dst}`, 'u2');
  assert.match(none.tagged, /^u2 OK /);
  assert.doesNotMatch(none.tagged, /COPYUID/);
  const star = await c.command(`UID COPY 99:* ${dst}`, 'u3');
  assert.equal(star.tagged, `u3 OK [COPYUID ${v} 3 3] COPY completed`);
  await c.close();
});

test('COPY/MOVE to a missing mailbox is NO [TRYCREATE]; bad sequence numbers are BAD', async () => {
  const { c } = await setup(2);
  assert.match((await c.command('COPY 1 Missing', 'e1')).tagged, /^e1 NO \[TRYCREATE\] /);
  assert.match((await c.command('MOVE 1 Missing', 'e2')).tagged, /^e2 NO \[TRYCREATE\] /);
  assert.match((await c.command('UID MOVE 1 Missing', 'e3')).tagged, /^e3 NO \[TRYCREATE\] /);
  assert.match((await c.command('COPY 3 INBOX', 'e4')).tagged, /^e4 BAD /);
  assert.match((await c.command('MOVE 1:5 INBOX', 'e5')).tagged, /^e5 BAD /);
  assert.match((await c.command('COPY 1', 'e6')).tagged, /^e6 BAD /);
  // Nothing moved.
  assert.deepEqual((await c.command('FETCH 1:* UID')).untagged, ['* 1 FETCH (UID 1)', '* 2 FETCH (UID 2)']);
  await c.close();
});

test('MOVE: untagged OK [COPYUID] before the EXPUNGEs, highest sequence first', async () => {
  const { c, dst, v } = await setup(5);
  const r = await c.command(`MOVE 2,4 ${dst}`, 'm1');
  assert.deepEqual(r.untagged, [`* OK [COPYUID ${v} 2,4 1:2] Moved`, '* 4 EXPUNGE', '* 2 EXPUNGE']);
  assert.equal(r.tagged, 'm1 OK MOVE completed');
  assert.deepEqual((await c.command('FETCH 1:* UID')).untagged, ['* 1 FETCH (UID 1)', '* 2 FETCH (UID 3)', '* 3 FETCH (UID 5)']);
  const u = await c.command(`UID MOVE 5,1 ${dst}`, 'm2');
  assert.deepEqual(u.untagged, [`* OK [COPYUID ${v} 1,5 3:4] Moved`, '* 3 EXPUNGE', '* 1 EXPUNGE']);
  assert.deepEqual((await c.command('FETCH 1:* UID')).untagged, ['* 1 FETCH (UID 3)']);
  const st = await c.command(`STATUS ${dst} (MESSAGES UIDNEXT)`);
  assert.equal(st.untagged[0], `* STATUS ${dst} (MESSAGES 4 UIDNEXT 5)`);
  await c.close();
});

test('MOVE in a read-only mailbox is NO; COPY from it is allowed', async () => {
  const { c, src, dst } = await setup(2);
  await c.command(`EXAMINE ${src}`);
  assert.match((await c.command(`MOVE 1 ${dst}`, 'r1')).tagged, /^r1 NO /);
  assert.match((await c.command(`COPY 1 ${dst}`, 'r2')).tagged, /^r2 OK \[COPYUID /);
  await c.close();
});

test('MOVE seen by another session: EXPUNGE at its next NOOP, EXISTS in the destination', async () => {
  const { c, src, dst } = await setup(3);
  const b = await RawClient.connect(srv.port, { login });
  await b.command('ENABLE IMAP4rev2');
  await b.command(`SELECT ${src}`);
  const d = await RawClient.connect(srv.port, { login });
  await d.command('ENABLE IMAP4rev2');
  await d.command(`SELECT ${dst}`);
  await c.command(`MOVE 1 ${dst}`);
  // Not during FETCH: the moved message still answers with its data or NO.
  const f = await b.command('FETCH 3 UID', 'b1');
  assert.deepEqual(f.untagged, ['* 3 FETCH (UID 3)']);
  const noop = await b.command('NOOP', 'b2');
  assert.deepEqual(noop.untagged, ['* 1 EXPUNGE']);
  assert.deepEqual((await b.command('FETCH 1:* UID')).untagged, ['* 1 FETCH (UID 2)', '* 2 FETCH (UID 3)']);
  assert.deepEqual((await d.command('NOOP')).untagged, ['* 1 EXISTS']);
  await b.close();
  await c.close();
  await d.close();
});

test('COPY of a message another session expunged: NO [EXPUNGEISSUED] or OK, never the wrong message', async () => {
  const { c, src, dst, v } = await setup(3);
  const b = await RawClient.connect(srv.port, { login });
  await b.command(`SELECT ${src}`);
  await b.command('STORE 2 +FLAGS.SILENT (\\Deleted)');
  await b.command('EXPUNGE');
  // c has not been told yet (no command since): its sequence number 2 is still UID 2.
  const r = await c.command(`COPY 2 ${dst}`, 'x1');
  assert.match(r.tagged, /^x1 NO \[EXPUNGEISSUED\] /);
  // COPY may announce the expunge after its NO: now sequence number 2 is UID 3.
  assert.deepEqual(r.untagged, ['* 2 EXPUNGE']);
  const r2 = await c.command(`COPY 2 ${dst}`, 'x2');
  assert.equal(r2.tagged, `x2 OK [COPYUID ${v} 3 1] COPY completed`);
  // UID MOVE of an expunged UID alone: nothing to do, said so without a COPYUID.
  await b.command('STORE 1 +FLAGS.SILENT (\\Deleted)');
  await b.command('EXPUNGE');
  const m = await c.command(`UID MOVE 1 ${dst}`, 'x3');
  assert.match(m.tagged, /^x3 (NO \[EXPUNGEISSUED\]|OK) /);
  assert.doesNotMatch(m.raw, /COPYUID/);
  await b.close();
  await c.close();
});
