// `quire serve --workers 2` as a real child process: connections land on
// different workers (each names itself in the greeting under
// QUIRE_DEBUG_WORKER_GREETING=1), and a change made through one worker
// reaches an IDLE session on the other, in order; SIGHUP leaves sessions up;
// a worker killed with SIGKILL loses no acknowledged APPEND and is replaced;
// SIGTERM stops every process with exit code 0.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SqliteMailStore } from '../../src/store/sqlite/index.js';
import { provisionUser } from '../../src/cli/users.js';
import { RawClient, message } from '../helpers/imap.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Generous bounds: the machine is shared. */
const START_MS = 60_000;
const PUSH_MS = 5_000;

let dir: string;
let child: ChildProcess;
let port: number;
let stderr = '';
let exited: Promise<number | null>;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The worker a greeting names: [slot, pid]. */
function workerOf(greeting: string): [number, number] {
  const m = / worker (\d+) pid (\d+) ready/.exec(greeting);
  assert.ok(m, `greeting names its worker: ${greeting}`);
  return [Number(m[1]), Number(m[2])];
}

/** Connections until one lands on a worker accepted by `want`; the others are closed. */
async function connectTo(want: (slot: number, pid: number) => boolean, tries = 40): Promise<RawClient & { slot: number; pid: number }> {
  for (let i = 0; i < tries; i++) {
    const c = await RawClient.connect(port);
    const [slot, pid] = workerOf(c.greeting);
    if (want(slot, pid)) {
      const r = await c.command('LOGIN alice secret-a');
      assert.match(r.tagged, /^\S+ OK/);
      return Object.assign(c, { slot, pid });
    }
    await c.close();
  }
  throw new Error('no connection reached the wanted worker');
}

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'quire-workers-'));
  const store = await SqliteMailStore.open({ dataDir: dir });
  await provisionUser(store, 'alice', 'secret-a');
  await store.close();
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('QUIRE_') && v !== undefined) env[k] = v;
  env.QUIRE_DEBUG_WORKER_GREETING = '1';
  // node itself (not the tsx wrapper, which would take the signals): the test signals the primary directly.
  child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), 'serve', '--data', dir, '--pop3-port', 'off', '--pop3s-port', 'off', '--workers', '2', '--imap-port', '0', '--imaps-port', 'off', '--lmtp-port', 'off', '--log-level', 'warn'],
    { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  exited = new Promise((resolve) => child.on('close', (code) => resolve(code)));
  port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start:\n${stdout}\n${stderr}`)), START_MS);
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
      const m = /IMAP \(STARTTLS\): +127\.0\.0\.1:(\d+)/.exec(stdout);
      if (m && /\n\n$/.test(stdout)) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    void exited.then((code) => reject(new Error(`serve exited with ${code}:\n${stdout}\n${stderr}`)));
  });
  assert.match(stdout, /workers: +2/);
});

after(async () => {
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGKILL');
    await exited;
  }
  await rm(dir, { recursive: true, force: true });
});

test('APPEND, STORE and EXPUNGE through one worker reach an IDLE session on the other, in order', async () => {
  const a = await connectTo(() => true);
  const b = await connectTo((slot) => slot !== a.slot);
  assert.notEqual(a.pid, b.pid);
  assert.match((await a.command('CREATE Shared')).tagged, /OK/);
  assert.match((await b.command('SELECT Shared')).tagged, /OK/);
  b.write('i1 IDLE\r\n');
  assert.match(await b.readLine(), /^\+ /);

  const t0 = performance.now();
  assert.match((await a.append('Shared', message(1))).tagged, /OK/);
  assert.ok((await b.readUntil((l) => l === '* 1 EXISTS', PUSH_MS)).length > 0);
  const pushMs = performance.now() - t0;

  assert.match((await a.command('SELECT Shared')).tagged, /OK/);
  assert.match((await a.command('STORE 1 +FLAGS.SILENT (\\Flagged)')).tagged, /OK/);
  const f = await b.readUntil((l) => /^\* 1 FETCH/.test(l), PUSH_MS);
  assert.match(f[f.length - 1]!, /\\Flagged/);

  assert.match((await a.append('Shared', message(2))).tagged, /OK/);
  assert.ok((await b.readUntil((l) => l === '* 2 EXISTS', PUSH_MS)).length > 0);
  assert.match((await a.command('STORE 1 +FLAGS.SILENT (\\Deleted)')).tagged, /OK/);
  assert.match((await a.command('EXPUNGE')).tagged, /OK/);
  const e = await b.readUntil((l) => l === '* 1 EXPUNGE', PUSH_MS);
  // Nothing out of order or unknown: no EXPUNGE or FETCH for a message b was not told about.
  for (const l of e) assert.doesNotMatch(l, /^\* [3-9]\d* (EXPUNGE|FETCH)/, l);

  // The change bus, not the periodic poll (FOREIGN_POLL_MS = 500), carries these: from a's OK to b's EXISTS is
  // quick (without hints it would average about 250 ms).
  const delays: number[] = [];
  for (let i = 0; i < 10; i++) {
    assert.match((await a.append('Shared', message(10 + i))).tagged, /OK/);
    const ok = performance.now();
    await b.readUntil((l) => l === `* ${2 + i} EXISTS`, PUSH_MS);
    delays.push(performance.now() - ok);
  }
  const mean = delays.reduce((x, y) => x + y, 0) / delays.length;
  assert.ok(mean < 150, `mean push delay after the OK ${mean.toFixed(1)} ms: ${delays.map((d) => d.toFixed(1)).join(' ')}`);
  console.log(`# cross-worker push after the APPEND's OK: mean ${mean.toFixed(1)} ms, max ${Math.max(...delays).toFixed(1)} ms`);
  assert.match((await a.command('STORE 2:* +FLAGS.SILENT (\\Deleted)')).tagged, /OK/);
  assert.match((await a.command('EXPUNGE')).tagged, /OK/);
  await b.readUntil((l) => l === '* 2 EXPUNGE', PUSH_MS);
  b.write('DONE\r\n');
  const done = await b.collect('i1');
  assert.match(done.tagged, /^i1 OK/);
  assert.match((await b.command('NOOP')).tagged, /OK/);
  assert.match((await a.command('NOOP')).tagged, /OK/);

  // And the other way round, with b's writes reaching a's IDLE.
  a.write('i2 IDLE\r\n');
  assert.match(await a.readLine(), /^\+ /);
  assert.match((await b.append('Shared', message(3))).tagged, /OK/);
  assert.ok((await a.readUntil((l) => l === '* 2 EXISTS', PUSH_MS)).length > 0);
  a.write('DONE\r\n');
  assert.match((await a.collect('i2')).tagged, /^i2 OK/);
  // Both see the same mailbox.
  const fa = await a.command('FETCH 1:* (UID FLAGS)');
  const fb = await b.command('FETCH 1:* (UID FLAGS)');
  // \Recent is a per-session flag (RFC 3501 §2.3.2): one of the two sessions has it.
  const norecent = (r: { untagged: string[] }) => r.untagged.map((l) => l.replace(/ ?\\Recent/, ''));
  assert.deepEqual(norecent(fa), norecent(fb));
  assert.equal(fa.untagged.length, 2);
  console.log(`# cross-worker push of an APPEND: ${pushMs.toFixed(1)} ms (APPEND round trip included)`);
  await a.close();
  await b.close();
});

test('SIGHUP leaves the server and an IDLE session up', async () => {
  const c = await connectTo(() => true);
  assert.match((await c.command('SELECT INBOX')).tagged, /OK/);
  c.write('h1 IDLE\r\n');
  assert.match(await c.readLine(), /^\+ /);
  child.kill('SIGHUP');
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(c.closed, false);
  c.write('DONE\r\n');
  assert.match((await c.collect('h1')).tagged, /^h1 OK/);
  const d = await connectTo(() => true);
  assert.match((await d.command('NOOP')).tagged, /OK/);
  await c.close();
  await d.close();
  assert.equal(child.exitCode, null);
  assert.equal(child.signalCode, null);
});

test('a worker killed with SIGKILL mid-APPEND loses no acknowledged message, and is replaced', async () => {
  const victim = await connectTo(() => true);
  const watcher = await connectTo((slot) => slot !== victim.slot);
  assert.match((await watcher.command('SELECT INBOX')).tagged, /OK/);
  const acked: number[] = [];
  for (let i = 0; i < 5; i++) {
    const r = await victim.append('INBOX', message(100 + i));
    const m = /APPENDUID \d+ (\d+)/.exec(r.tagged);
    assert.ok(m, r.tagged);
    acked.push(Number(m[1]));
  }
  // The sixth is in flight (its literal half sent) when the worker dies, right after the fifth's OK.
  const body = Buffer.from(message(200, { body: 'x'.repeat(20_000) }));
  victim.write(`z APPEND INBOX {${body.length}+}\r\n`);
  victim.write(body.subarray(0, 10_000));
  process.kill(victim.pid, 'SIGKILL');
  await victim.readLine(PUSH_MS).catch(() => undefined);

  // The other worker keeps serving, and sees every acknowledged message.
  // The dead worker's last hint may never have left it: the other worker's poll (FOREIGN_POLL_MS) finds the change anyway.
  await new Promise((res) => setTimeout(res, 1500));
  await watcher.command('NOOP');
  const r = await watcher.command('UID SEARCH ALL');
  const uids = (/^\* SEARCH(.*)$/.exec(r.untagged.find((l) => l.startsWith('* SEARCH')) ?? '')?.[1] ?? '').trim().split(/\s+/).filter(Boolean).map(Number);
  for (const u of acked) assert.ok(uids.includes(u), `acknowledged UID ${u} is there (have ${uids.join(',')})`);

  // The primary restarts the worker: a new process answers in its slot.
  const deadline = Date.now() + START_MS;
  let replaced = false;
  while (!replaced && Date.now() < deadline) {
    const c = await RawClient.connect(port);
    const [slot, pid] = workerOf(c.greeting);
    if (slot === victim.slot && pid !== victim.pid) {
      assert.match((await c.command('LOGIN alice secret-a')).tagged, /OK/);
      assert.match((await c.command('SELECT INBOX')).tagged, /OK/);
      replaced = true;
    }
    await c.close();
    if (!replaced) await new Promise((res) => setTimeout(res, 100));
  }
  assert.ok(replaced, 'a new worker took the dead one\'s place');
  assert.match(stderr, /worker died, restarting/);
  await watcher.close();
});

test('SIGTERM stops every worker and the primary with exit code 0', { timeout: 60_000 }, async () => {
  const pids = new Set<number>();
  for (let i = 0; i < 6; i++) {
    const c = await RawClient.connect(port);
    pids.add(workerOf(c.greeting)[1]);
    await c.close();
  }
  assert.equal(pids.size, 2, 'both workers answered');
  const idle = await connectTo(() => true);
  assert.match((await idle.command('SELECT INBOX')).tagged, /OK/);
  idle.write('s1 IDLE\r\n');
  assert.match(await idle.readLine(), /^\+ /);
  child.kill('SIGTERM');
  assert.equal(await exited, 0, stderr);
  // The IDLE session was told goodbye and closed.
  await idle.readUntil((l) => l.startsWith('* BYE'), PUSH_MS).catch(() => undefined);
  for (const pid of pids) assert.equal(alive(pid), false, `worker ${pid} exited`);
});
