// RFC 1939 §8 exclusive maildrop access (pop3.lockSession) across PostgreSQL
// nodes: two real `quire serve --store postgres://...` processes on one
// schema, each with its own data directory and POP3 listener. The lock is a
// PostgreSQL advisory lock per user on a connection each node dedicates to
// locks (src/store/postgres/user-locks.ts): a second login on the other node
// gets -ERR [IN-USE] (RFC 2449 §8.1.2); QUIT gives the lock back before its
// +OK, so a login right after it succeeds on the other node; a dropped
// connection gives it back too; and when the lock connection itself is lost
// (terminated by the database), the holder is ended with -ERR [SYS/TEMP].
// PgUserLocks is also driven directly, on the real database: one process's
// own sessions exclude each other (advisory locks are re-entrant per
// connection, the map in front is what excludes them).
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { openPostgresStore, type PgMailStore } from '../../src/store/postgres/index.js';
import { provisionUser } from '../../src/cli/users.js';
import { startPgNode, type PgNode } from '../cluster/pg-nodes.js';
import { dropSchema, freshSchema, pgSkip, pgStoreUrl, PG_URL } from '../helpers/pg.js';
import { Pop3Client } from './helpers.js';

const skip = await pgSkip();
const schema = freshSchema('p3lock');
const USER = 'locker';
const PASS = 'lock-pass-1';
/** How long a release after a dropped connection may take to reach the database (it is asynchronous there). */
const RELEASE_WAIT_MS = 10_000;

let store: PgMailStore;
let dirs: string[] = [];
const nodes: PgNode[] = [];
const pop3Ports: number[] = [];

before(async () => {
  if (skip) return;
  store = await openPostgresStore({ url: PG_URL, schema, poolSize: 2 });
  const u = await provisionUser(store, USER, PASS);
  const mb = (await store.getMailbox(u.id, 'INBOX'))!;
  await store.appendMessages(mb.id, [{ data: Buffer.from('Subject: one\r\n\r\nbody\r\n'), flags: [] }]);
  for (const name of ['pa', 'pb']) {
    const dir = await mkdtemp(path.join(tmpdir(), `quire-p3lock-${name}-`));
    dirs.push(dir);
    await writeFile(path.join(dir, 'quire.json'), JSON.stringify({ pop3: { lockSession: 'on' } }));
    const n = await startPgNode(name, pgStoreUrl(schema), dir, ['--pop3-port', '0']);
    nodes.push(n);
    const port = /POP3 \(STLS\): +127\.0\.0\.1:(\d+)/.exec(n.out())?.[1];
    assert.ok(port, n.out());
    pop3Ports.push(Number(port));
  }
});

after(async () => {
  if (skip) return;
  for (const n of nodes) {
    n.child.kill('SIGTERM');
    await n.exited;
  }
  await store?.close();
  await dropSchema(schema).catch(() => undefined);
  for (const d of dirs) await rm(d, { recursive: true, force: true });
  dirs = [];
});

async function pop(node: number): Promise<{ c: Pop3Client; reply: string }> {
  const c = await Pop3Client.connect(pop3Ports[node]!);
  assert.match(await c.line(), /^\+OK /);
  return { c, reply: await c.login(USER, PASS) };
}

/** Logs in on `node` until it is let in (the lock is given back asynchronously after a dropped connection). */
async function popEventually(node: number): Promise<Pop3Client> {
  const deadline = Date.now() + RELEASE_WAIT_MS;
  for (;;) {
    const { c, reply } = await pop(node);
    if (reply.startsWith('+OK')) return c;
    assert.match(reply, /^-ERR \[IN-USE\] /);
    await c.waitClosed();
    if (Date.now() > deadline) throw new Error('the lock was never given back');
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('two nodes: the second login gets -ERR [IN-USE]; after QUIT (+OK) the other node gets in at once', { skip, timeout: 120_000 }, async () => {
  const a = await pop(0);
  assert.match(a.reply, /^\+OK /);
  const b = await pop(1);
  assert.match(b.reply, /^-ERR \[IN-USE\] /, 'the lock holds across nodes');
  await b.c.waitClosed();
  // On the same node too (its own sessions are excluded in the process, not by the database).
  const same = await pop(0);
  assert.match(same.reply, /^-ERR \[IN-USE\] /);
  await same.c.waitClosed();

  assert.match(await a.c.cmd('QUIT'), /^\+OK/);
  await a.c.waitClosed();
  // Released before the +OK: no retry needed.
  const c = await pop(1);
  assert.match(c.reply, /^\+OK /, 'the lock was given back before QUIT answered');
  assert.match(await c.c.cmd('STAT'), /^\+OK 1 /);

  // A dropped connection (no QUIT: no UPDATE state) gives it back too.
  c.c.socket.destroy();
  const d = await popEventually(0);
  assert.match(await d.cmd('QUIT'), /^\+OK/);
  await d.waitClosed();
});

test('a lost lock connection ends its holder with -ERR [SYS/TEMP]; the maildrop can be opened again', { skip, timeout: 120_000 }, async () => {
  const a = await pop(0);
  assert.match(a.reply, /^\+OK /);
  // The database ends node A's lock connection (as a failover or an admin would): PostgreSQL drops its advisory locks.
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  try {
    const r = await admin.query<{ n: number }>(
      `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE application_name = $1 AND pid IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory')`,
      [`quire:${schema}:locks`.slice(0, 63)],
    );
    assert.equal(r.rows[0]!.n, 1, 'one lock connection held the lock');
  } finally {
    await admin.end();
  }
  assert.match(await a.c.line(), /^-ERR \[SYS\/TEMP\] /);
  await a.c.waitClosed();
  // The other node gets in; and node A opens a new lock connection for its next session.
  const b = await pop(1);
  assert.match(b.reply, /^\+OK /);
  assert.match(await b.c.cmd('QUIT'), /^\+OK/);
  await b.c.waitClosed();
  const c = await pop(0);
  assert.match(c.reply, /^\+OK /);
  assert.match(await c.c.cmd('QUIT'), /^\+OK/);
  await c.c.waitClosed();
});

test('PgUserLocks on the real database: one holder per user in a process and across two; release-while-asking gives the lock back', { skip, timeout: 60_000 }, async () => {
  const s1 = await openPostgresStore({ url: PG_URL, schema, poolSize: 1, followOthers: false });
  const s2 = await openPostgresStore({ url: PG_URL, schema, poolSize: 1, followOthers: false });
  try {
    const l1 = s1.maildropLocks();
    const l2 = s2.maildropLocks();
    const lost: string[] = [];
    const onLost = (h: string) => () => void lost.push(h);
    // A user id no node test above uses.
    const user = 987_654;
    assert.equal(await l1.acquire(user, 'h1', onLost('h1')), true);
    assert.equal(await l1.acquire(user, 'h1', onLost('h1')), true, 'the holder again');
    assert.equal(await l1.acquire(user, 'h2', onLost('h2')), false, 'another holder in the same process');
    assert.equal(await l2.acquire(user, 'h3', onLost('h3')), false, 'a holder in another process');
    await l1.release(user, 'h2'); // not the holder: nothing happens
    assert.equal(await l2.acquire(user, 'h3', onLost('h3')), false);
    await l1.release(user, 'h1');
    assert.equal(await l2.acquire(user, 'h3', onLost('h3')), true, 'given back');
    // Released while it was being asked for: whatever was granted goes back.
    const asking = l1.acquire(user + 1, 'h4', onLost('h4'));
    void l1.release(user + 1, 'h4');
    assert.equal(await asking, false);
    assert.equal(await l2.acquire(user + 1, 'h5', onLost('h5')), true, 'nothing left behind by the cancelled ask');
    // User ids beyond the advisory lock's int4 key fold into it (at worst a needless [IN-USE]).
    assert.equal(await l1.acquire(2 ** 40, 'h6', onLost('h6')), true);
    await l1.release(2 ** 40, 'h6');
    assert.deepEqual(lost, []);
  } finally {
    await s1.close();
    await s2.close();
  }
});
