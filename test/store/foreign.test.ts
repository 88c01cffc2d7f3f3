// Changes another process commits to the same data directory (quire import,
// quire mailbox, a second server) reach this server's sessions: IDLE clients
// are pushed EXISTS, FETCH and EXPUNGE as for local writers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient, message } from '../helpers/imap.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import type { MailStore } from '../../src/store/types.js';

let srv: TestServer;
let other: MailStore; // a second connection to the same database, as another process would have
before(async () => {
  srv = await startTestServer();
  other = await openSqliteStore({ dataDir: srv.dataDir, synchronous: 'NORMAL' });
});
after(async () => {
  await other.close();
  await srv.stop();
});

test('an IDLE client sees appends, flag changes and expunges committed by another process', async () => {
  const c = await RawClient.connect(srv.port, { login: ['alice', 'secret-a'] });
  await c.command('CREATE Fx');
  await c.append('Fx', message(1));
  await c.command('SELECT Fx');
  c.write('i1 IDLE\r\n');
  assert.match(await c.readLine(), /^\+ /);

  const user = (await other.getUser('alice'))!;
  const box = (await other.getMailbox(user.id, 'Fx'))!;
  await other.appendMessages(box.id, [{ data: Buffer.from(message(2)), flags: [] }]);
  assert.ok((await c.readUntil((l) => l === '* 2 EXISTS', 3000)).length > 0);

  await other.storeFlags(box.id, [1], 'add', ['\\Flagged']);
  const f = await c.readUntil((l) => /^\* 1 FETCH/.test(l), 3000);
  assert.match(f[f.length - 1]!, /FLAGS \(\\Flagged/);

  await other.storeFlags(box.id, [2], 'add', ['\\Deleted']);
  await other.expunge(box.id);
  assert.ok((await c.readUntil((l) => l === '* 2 EXPUNGE', 3000)).length > 0);

  c.write('DONE\r\n');
  assert.match((await c.collect('i1')).tagged, /^i1 OK/);
  // This process's own writes are not reported twice.
  const a = await c.append('Fx', message(3));
  const n = await c.command('NOOP');
  await new Promise((r) => setTimeout(r, 1200));
  const n2 = await c.command('NOOP');
  const all = [...a.untagged, ...n.untagged, ...n2.untagged];
  assert.deepEqual(all.filter((l) => / EXISTS$/.test(l)), ['* 2 EXISTS'], all.join('\n'));
  await c.close();
});
