// IDLE (RFC 2177, RFC 9051 §6.3.13) over a real socket: DONE, prompt pushes
// of EXISTS / FETCH / EXPUNGE caused by another connection, bad continuations.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient, message } from '../helpers/imap.js';

let srv: TestServer;
const login = ['alice', 'secret-a'] as [string, string];
before(async () => { srv = await startTestServer(); });
after(async () => { await srv.stop(); });

let n = 0;
async function pair(count: number): Promise<{ a: RawClient; b: RawClient; box: string }> {
  const box = `Idle${++n}`;
  const a = await RawClient.connect(srv.port, { login });
  await a.command('ENABLE IMAP4rev2');
  await a.command(`CREATE ${box}`);
  for (let i = 1; i <= count; i++) await a.append(box, message(i));
  await a.command(`SELECT ${box}`);
  const b = await RawClient.connect(srv.port, { login });
  await b.command('ENABLE IMAP4rev2');
  await b.command(`SELECT ${box}`);
  return { a, b, box };
}

async function startIdle(c: RawClient, tag = 'i1'): Promise<void> {
  c.write(`${tag} IDLE\r\n`);
  assert.match(await c.readLine(), /^\+ /);
}

test('IDLE then DONE: continuation, then tagged OK', async () => {
  const { a, b } = await pair(1);
  await startIdle(a);
  a.write('DONE\r\n');
  assert.equal(await a.readLine(), 'i1 OK IDLE terminated');
  // Lower-case done is accepted too (RFC 9051 §9: "DONE" is case-insensitive).
  await startIdle(a, 'i2');
  a.write('done\r\n');
  assert.equal(await a.readLine(), 'i2 OK IDLE terminated');
  assert.match((await a.command('NOOP')).tagged, /OK/);
  // IDLE is valid in the authenticated state too.
  const c = await RawClient.connect(srv.port, { login });
  await startIdle(c, 'i3');
  c.write('DONE\r\n');
  assert.equal(await c.readLine(), 'i3 OK IDLE terminated');
  await c.close();
  await a.close();
  await b.close();
});

test('pushes EXISTS, FETCH and EXPUNGE from another connection within a second', async () => {
  const { a, b, box } = await pair(2);
  await startIdle(a);
  let t = Date.now();
  await b.append(box, message(3));
  assert.deepEqual(await a.readUntil((l) => l === '* 3 EXISTS', 1000), ['* 3 EXISTS']);
  assert.ok(Date.now() - t < 1000);
  t = Date.now();
  await b.command('STORE 1 +FLAGS.SILENT (\\Flagged)');
  assert.deepEqual(await a.readUntil((l) => l.startsWith('* 1 FETCH'), 1000), ['* 1 FETCH (UID 1 FLAGS (\\Flagged))']);
  await b.command('STORE 2 +FLAGS.SILENT (\\Deleted)');
  assert.deepEqual(await a.readUntil((l) => l.startsWith('* 2 FETCH'), 1000), ['* 2 FETCH (UID 2 FLAGS (\\Deleted))']);
  t = Date.now();
  await b.command('EXPUNGE');
  assert.deepEqual(await a.readUntil((l) => /EXPUNGE/.test(l), 1000), ['* 2 EXPUNGE']);
  assert.ok(Date.now() - t < 1000);
  a.write('DONE\r\n');
  assert.equal(await a.readLine(), 'i1 OK IDLE terminated');
  assert.deepEqual((await a.command('FETCH 1:* UID')).untagged, ['* 1 FETCH (UID 1)', '* 2 FETCH (UID 3)']);
  await a.close();
  await b.close();
});

test('changes queued before IDLE are sent as soon as IDLE starts', async () => {
  const { a, b, box } = await pair(2);
  await b.command('STORE 1 +FLAGS.SILENT (\\Deleted)');
  await b.command('EXPUNGE');
  await b.append(box, message(9));
  a.write('i1 IDLE\r\n');
  const lines = await a.readUntil((l) => l === '* 2 EXISTS', 1000);
  assert.deepEqual(lines.filter((l) => !l.startsWith('+')), ['* 1 EXPUNGE', '* 2 EXISTS']);
  a.write('DONE\r\n');
  assert.equal(await a.readLine(), 'i1 OK IDLE terminated');
  await a.close();
  await b.close();
});

test('a bad continuation line ends IDLE with a tagged BAD; the connection stays usable', async () => {
  const { a, b } = await pair(1);
  await startIdle(a);
  a.write('NOT-DONE\r\n');
  assert.match(await a.readLine(), /^i1 BAD /);
  assert.match((await a.command('NOOP', 'n1')).tagged, /^n1 OK/);
  // Arguments to IDLE are a syntax error.
  assert.match((await a.command('IDLE now', 'n2')).tagged, /^n2 BAD /);
  await a.close();
  await b.close();
});

test('changes to another mailbox are not pushed', async () => {
  const { a, b } = await pair(1);
  await startIdle(a);
  await b.append('INBOX', message(1));
  await new Promise((r) => setTimeout(r, 200));
  a.write('DONE\r\n');
  assert.equal(await a.readLine(), 'i1 OK IDLE terminated');
  await a.close();
  await b.close();
});
