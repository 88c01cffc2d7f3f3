// EXPUNGE (RFC 9051 §6.4.3) and UID EXPUNGE (§6.4.9, RFC 4315 §2.1) over a
// real socket, and when another session may be told (RFC 9051 §7.5.1, RFC 2180 §4).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient, message } from '../helpers/imap.js';

let srv: TestServer;
const login = ['alice', 'secret-a'] as [string, string];
before(async () => { srv = await startTestServer(); });
after(async () => { await srv.stop(); });

let n = 0;
async function setup(count: number, deleted: number[]): Promise<{ c: RawClient; box: string }> {
  const box = `Ex${++n}`;
  const c = await RawClient.connect(srv.port, { login });
  await c.command('ENABLE IMAP4rev2');
  await c.command(`CREATE ${box}`);
  for (let i = 1; i <= count; i++) await c.append(box, message(i), deleted.includes(i) ? '(\\Deleted)' : '');
  await c.command(`SELECT ${box}`);
  return { c, box };
}

async function other(box: string): Promise<RawClient> {
  const b = await RawClient.connect(srv.port, { login });
  await b.command('ENABLE IMAP4rev2');
  await b.command(`SELECT ${box}`);
  return b;
}

test('EXPUNGE removes \\Deleted messages, announcing each with a valid sequence number', async () => {
  const { c } = await setup(6, [2, 3, 5]);
  const r = await c.command('EXPUNGE', 'e1');
  assert.deepEqual(r.untagged, ['* 5 EXPUNGE', '* 3 EXPUNGE', '* 2 EXPUNGE']);
  assert.equal(r.tagged, 'e1 OK EXPUNGE completed');
  assert.deepEqual((await c.command('FETCH 1:* UID')).untagged, ['* 1 FETCH (UID 1)', '* 2 FETCH (UID 4)', '* 3 FETCH (UID 6)']);
  const again = await c.command('EXPUNGE', 'e2');
  assert.deepEqual(again.untagged, []);
  assert.match((await c.command('EXPUNGE extra', 'e3')).tagged, /^e3 BAD /);
  await c.close();
});

test('UID EXPUNGE removes only the listed \\Deleted messages', async () => {
  const { c } = await setup(5, [1, 2, 4]);
  const r = await c.command('UID EXPUNGE 2:3,5', 'u1');
  assert.deepEqual(r.untagged, ['* 2 EXPUNGE']);
  assert.equal(r.tagged, 'u1 OK UID EXPUNGE completed');
  assert.deepEqual((await c.command('UID FETCH 1:* FLAGS')).untagged, [
    '* 1 FETCH (UID 1 FLAGS (\\Deleted))',
    '* 2 FETCH (UID 3 FLAGS ())',
    '* 3 FETCH (UID 4 FLAGS (\\Deleted))',
    '* 4 FETCH (UID 5 FLAGS ())',
  ]);
  assert.deepEqual((await c.command('UID EXPUNGE 100:200', 'u2')).untagged, []);
  assert.deepEqual((await c.command('UID EXPUNGE 4:*', 'u3')).untagged, ['* 3 EXPUNGE']);
  assert.match((await c.command('UID EXPUNGE', 'u4')).tagged, /^u4 BAD /);
  assert.match((await c.command('UID EXPUNGE 0', 'u5')).tagged, /^u5 BAD /);
  await c.close();
});

test('EXPUNGE in a read-only mailbox is NO and removes nothing', async () => {
  const { c, box } = await setup(2, [1]);
  await c.command(`EXAMINE ${box}`);
  assert.match((await c.command('EXPUNGE', 'r1')).tagged, /^r1 NO /);
  assert.match((await c.command('UID EXPUNGE 1', 'r2')).tagged, /^r2 NO /);
  assert.equal((await c.command(`STATUS ${box} (MESSAGES)`)).untagged[0], `* STATUS ${box} (MESSAGES 2)`);
  await c.close();
});

test('another session: no EXPUNGE during FETCH, STORE, SEARCH; yes at NOOP', async () => {
  const { c, box } = await setup(4, [2]);
  const b = await other(box);
  await c.command('EXPUNGE');
  const f = await b.command('FETCH 1:4 UID', 'b1');
  // Message 2 is gone: data for the others, and either nothing or its old data for 2, never another message's.
  assert.ok(!f.untagged.some((l) => /EXPUNGE/.test(l)), f.raw);
  assert.ok(f.untagged.includes('* 1 FETCH (UID 1)') && f.untagged.includes('* 3 FETCH (UID 3)') && f.untagged.includes('* 4 FETCH (UID 4)'), f.raw);
  for (const l of f.untagged) if (l.startsWith('* 2 ')) assert.equal(l, '* 2 FETCH (UID 2)');
  assert.match(f.tagged, /^b1 (OK|NO \[EXPUNGEISSUED\]) /);
  const s = await b.command('STORE 3 +FLAGS (\\Flagged)', 'b2');
  assert.deepEqual(s.untagged, ['* 3 FETCH (FLAGS (\\Flagged))']);
  const se = await b.command('SEARCH RETURN (ALL) 1:4', 'b3');
  assert.ok(!se.untagged.some((l) => /EXPUNGE/.test(l)), se.raw);
  assert.equal(se.untagged.length, 1);
  assert.match(se.untagged[0], /^\* ESEARCH \(TAG "b3"\) ALL (1:4|1,3:4)$/);
  const noop = await b.command('NOOP', 'b4');
  assert.deepEqual(noop.untagged, ['* 2 EXPUNGE']);
  assert.deepEqual((await b.command('FETCH 1:* UID')).untagged, ['* 1 FETCH (UID 1)', '* 2 FETCH (UID 3)', '* 3 FETCH (UID 4)']);
  await b.close();
  await c.close();
});

test('another session: EXPUNGE is allowed during UID FETCH, UID STORE, UID SEARCH', async () => {
  const { c, box } = await setup(4, [1, 3]);
  const b = await other(box);
  await c.command('UID EXPUNGE 1');
  const f = await b.command('UID FETCH 4 FLAGS', 'u1');
  // Either order is valid as long as each sequence number is right when sent.
  assert.ok(
    JSON.stringify(f.untagged) === JSON.stringify(['* 4 FETCH (UID 4 FLAGS ())', '* 1 EXPUNGE']) ||
      JSON.stringify(f.untagged) === JSON.stringify(['* 1 EXPUNGE', '* 3 FETCH (UID 4 FLAGS ())']),
    f.raw,
  );
  await c.command('UID EXPUNGE 3');
  const s = await b.command('UID STORE 4 +FLAGS (\\Seen)', 'u2');
  assert.ok(s.untagged.includes('* 2 EXPUNGE'), s.raw);
  assert.equal(s.untagged[s.untagged.length - 1], '* 2 FETCH (UID 4 FLAGS (\\Seen))');
  await c.command('STORE 1 +FLAGS.SILENT (\\Deleted)');
  await c.command('EXPUNGE');
  const se = await b.command('UID SEARCH ALL', 'u3');
  assert.ok(se.untagged.includes('* 1 EXPUNGE'), se.raw);
  await b.close();
  await c.close();
});
