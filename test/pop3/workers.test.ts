// RFC 1939 §8 maildrop lock (pop3.lockSession) under `quire serve --workers 2`:
// the lock is the cluster primary's (src/pop3/lock.ts), so two POP3 sessions
// of one user that land on different workers still exclude each other, and a
// worker killed while its session holds the lock gives it back.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SqliteMailStore } from '../../src/store/sqlite/index.js';
import { provisionUser } from '../../src/cli/users.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { Pop3Client } from './helpers.js';

const USER = 'locky';
const PASS = 'lock-pass-1';
/** A fixed port in this work's range (coord.md: pop3 32000-32999): the cluster helper reads only the IMAP port from the banner. */
const POP3_PORT = 32321;
/** Time for the primary to see a killed worker exit (its locks are dropped then). */
const RELEASE_WAIT_MS = 20_000;
/** A greeting normally comes at once. */
const GREETING_WAIT_MS = 3_000;

let cluster: Cluster;
const pop3Port = POP3_PORT;

before(async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'quire-pop3-workers-'));
  const store = await SqliteMailStore.open({ dataDir: dir });
  const u = await provisionUser(store, USER, PASS);
  const mb = (await store.getMailbox(u.id, 'INBOX'))!;
  await store.appendMessages(mb.id, [{ data: Buffer.from('Subject: one\r\n\r\nbody\r\n'), flags: [] }]);
  await store.close();
  await writeFile(path.join(dir, 'quire.json'), JSON.stringify({ pop3: { lockSession: 'on' } }));
  cluster = await startCluster({ workers: 2, users: [], dir, args: ['--pop3-port', String(POP3_PORT)] });
});
after(async () => {
  await cluster?.stop();
});

/** A POP3 connection on a worker `want` accepts (its greeting names the worker: QUIRE_DEBUG_WORKER_GREETING). */
async function popOn(want: (pid: number) => boolean): Promise<{ c: Pop3Client; pid: number }> {
  for (let i = 0; i < 60; i++) {
    const c = await Pop3Client.connect(pop3Port);
    // A connection handed to a worker that was just killed is never greeted: try again.
    const greeting = await Promise.race([c.line(), new Promise<string>((r) => setTimeout(() => r(''), GREETING_WAIT_MS))]);
    if (greeting === '') {
      c.socket.destroy();
      continue;
    }
    const pid = Number(/ worker \d+ pid (\d+) POP3 ready/.exec(greeting)?.[1] ?? 0);
    assert.ok(pid > 0, greeting);
    if (want(pid)) return { c, pid };
    c.socket.destroy();
  }
  throw new Error('no POP3 connection reached the wanted worker');
}

test('two sessions of one user on different workers: the second gets -ERR [IN-USE]; QUIT and a SIGKILLed worker both release the lock', async (t) => {
  const a = await popOn(() => true);
  assert.match(await a.c.login(USER, PASS), /^\+OK /);
  const b = await popOn((pid) => pid !== a.pid);
  assert.match(await b.c.login(USER, PASS), /^-ERR \[IN-USE\] /, 'the lock holds across workers');
  await b.c.waitClosed();

  // QUIT (UPDATE state) releases it: a session on the other worker gets in.
  assert.match(await a.c.cmd('QUIT'), /^\+OK/);
  await a.c.waitClosed();
  const c = await popOn((pid) => pid !== a.pid);
  assert.match(await c.c.login(USER, PASS), /^\+OK /);

  // The worker holding it is killed: the primary drops its locks, a session elsewhere gets in.
  const other = await popOn((pid) => pid !== c.pid);
  assert.match(await other.c.login(USER, PASS), /^-ERR \[IN-USE\] /);
  await other.c.waitClosed();
  process.kill(c.pid, 'SIGKILL');
  const deadline = Date.now() + RELEASE_WAIT_MS;
  let last = '';
  for (;;) {
    const d = await popOn((pid) => pid !== c.pid);
    last = await d.c.login(USER, PASS);
    if (/^\+OK /.test(last)) {
      await d.c.cmd('QUIT');
      break;
    }
    await d.c.waitClosed();
    if (Date.now() > deadline) assert.fail(`still locked ${RELEASE_WAIT_MS} ms after the holder's worker was killed: ${last}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  t.diagnostic(`released after the kill: ${last}`);
});
