// A slow database does not stall unrelated sessions beyond their own
// commands (issue 13 item 7). Another PostgreSQL client holds alice's user
// row locked in an open transaction, as a long or stuck transaction would:
// every write of alice's waits for it (writes lock their user's row first,
// src/store/postgres/base.ts). Meanwhile bob's sessions, and alice's own
// reads, must be answered at their usual pace, and the server's event loop
// must stay free. Once the lock goes, alice's waiting APPENDs complete, each
// once, in UID order.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient, message } from '../helpers/imap.js';
import { PG_URL, pgSkip } from '../helpers/pg.js';

const skip = await pgSkip();

/** Alice's writes stuck behind the lock: more than the test server's pool of 6 connections. */
const STUCK_WRITES = 8;
/** How long bob's commands may take while alice's writes wait (generous for a loaded CI machine; they take milliseconds). */
const UNRELATED_MS = 3000;

describe('a slow database under a running server', { skip }, () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer({ store: 'postgres' });
  });
  after(async () => {
    await srv?.stop();
  });

  test("alice's writes wait on a locked row; bob's sessions and alice's reads are served meanwhile", async () => {
    const alice = ['alice', 'secret-a'] as [string, string];
    const bob = ['bob', 'secret-b'] as [string, string];
    const reader = await RawClient.connect(srv.port, { login: alice });
    assert.match((await reader.append('INBOX', message(0))).tagged, /OK/);
    assert.match((await reader.command('SELECT INBOX')).tagged, /OK/);
    const writers = await Promise.all(Array.from({ length: STUCK_WRITES }, () => RawClient.connect(srv.port, { login: alice })));
    const b = await RawClient.connect(srv.port, { login: bob });
    assert.match((await b.command('SELECT INBOX')).tagged, /OK/);

    const locker = new pg.Client({ connectionString: PG_URL });
    await locker.connect();
    let released = false;
    try {
      await locker.query('BEGIN');
      const r = await locker.query(`SELECT id FROM "${srv.pgSchema}".users WHERE name = 'alice' FOR UPDATE`);
      assert.equal(r.rowCount, 1);

      const pending = writers.map((w, i) => w.append('INBOX', message(100 + i)));
      let settled = 0;
      for (const p of pending) void p.then(() => settled++);
      // Give the APPENDs time to reach the database and block there.
      await new Promise((res) => setTimeout(res, 500));
      assert.equal(settled, 0, "alice's APPENDs wait for the lock");

      // The event loop stays free while they wait.
      const lagStart = performance.now();
      await new Promise((res) => setImmediate(res));
      assert.ok(performance.now() - lagStart < 50, 'event loop turns');

      // Bob: writes and reads, each answered promptly.
      for (let i = 0; i < 3; i++) {
        const t0 = performance.now();
        assert.match((await b.append('INBOX', message(200 + i))).tagged, /OK/);
        assert.match((await b.command('UID FETCH 1:* (FLAGS RFC822.SIZE)')).tagged, /OK/);
        assert.match((await b.command('UID STORE 1 +FLAGS (\\Seen)')).tagged, /OK/);
        assert.match((await b.command('STATUS INBOX (MESSAGES UIDNEXT)')).tagged, /OK/);
        const ms = performance.now() - t0;
        assert.ok(ms < UNRELATED_MS, `bob's commands took ${ms.toFixed(0)} ms while alice's writes waited`);
      }
      // A new session of bob's logs in meanwhile.
      const t1 = performance.now();
      const b2 = await RawClient.connect(srv.port, { login: bob });
      assert.match((await b2.command('EXAMINE INBOX')).tagged, /OK/);
      assert.ok(performance.now() - t1 < UNRELATED_MS, 'a new login is not held up');
      await b2.close();
      // Alice's reads are not writes: answered too.
      const t2 = performance.now();
      assert.match((await reader.command('UID FETCH 1:* (FLAGS ENVELOPE)')).tagged, /OK/);
      assert.ok(performance.now() - t2 < UNRELATED_MS, "alice's reads are answered");
      assert.equal(settled, 0, 'still waiting');

      await locker.query('COMMIT');
      released = true;
      const replies = await Promise.all(pending);
      for (const r of replies) assert.match(r.tagged, /OK \[APPENDUID \d+ \d+\]/, r.raw);
      const uids = replies.map((r) => Number(/APPENDUID \d+ (\d+)/.exec(r.tagged)![1])).sort((x, y) => x - y);
      assert.equal(new Set(uids).size, STUCK_WRITES, 'each APPEND got its own UID');
      const st = await reader.command('STATUS INBOX (MESSAGES)');
      assert.ok(st.raw.includes(`MESSAGES ${STUCK_WRITES + 1})`), st.raw);
    } finally {
      if (!released) await locker.query('ROLLBACK').catch(() => undefined);
      await locker.end();
      for (const w of writers) await w.close();
      await reader.close();
      await b.close();
    }
    assert.deepEqual(srv.errors, []);
  });
});
