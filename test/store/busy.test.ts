// A write lock held by a process outside the server's write gate (an admin
// CLI's long transaction) never puts the server's event loop to sleep in
// SQLite's busy handler, and never reaches the client as an error: the
// APPEND waits (retrying asynchronously) and succeeds once the lock is free,
// while other connections are served meanwhile.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import Database from 'better-sqlite3';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient, message } from '../helpers/imap.js';
import { DB_FILE } from '../../src/store/sqlite/index.js';

let srv: TestServer;
before(async () => {
  srv = await startTestServer();
});
after(async () => {
  await srv.stop();
});

/** How long the foreign transaction holds the write lock. */
const HOLD_MS = 1500;

test('APPEND waits for a foreign write lock without stalling the event loop, then succeeds', async () => {
  const writer = await RawClient.connect(srv.port, { login: ['alice', 'secret-a'] });
  const other = await RawClient.connect(srv.port, { login: ['alice', 'secret-a'] });
  // Another process's connection (the same as `quire mailbox ...` would open) takes the write lock.
  const foreign = new Database(path.join(srv.dataDir, DB_FILE));
  foreign.prepare('BEGIN IMMEDIATE').run();
  let released = 0;
  const t0 = performance.now();
  setTimeout(() => {
    foreign.prepare('COMMIT').run();
    released = performance.now();
    foreign.close();
  }, HOLD_MS);

  const append = writer.append('INBOX', message(1));
  // Meanwhile the server answers others at once (a sleeping busy handler would hold every connection).
  const stalls: number[] = [];
  while (performance.now() - t0 < HOLD_MS - 300) {
    const s = performance.now();
    assert.match((await other.command('NOOP')).tagged, /OK/);
    stalls.push(performance.now() - s);
    await new Promise((r) => setTimeout(r, 50));
  }
  const r = await append;
  assert.match(r.tagged, /^\S+ OK/, 'no SQLITE_BUSY reached the client');
  assert.ok(released > 0 && performance.now() >= released, 'the APPEND completed only after the lock was released');
  assert.ok(stalls.length >= 3, `NOOPs answered while the lock was held (${stalls.length})`);
  assert.ok(Math.max(...stalls) < 500, `NOOP round trips while waiting: ${stalls.map((x) => x.toFixed(0)).join(' ')} ms`);
  await writer.close();
  await other.close();
});
