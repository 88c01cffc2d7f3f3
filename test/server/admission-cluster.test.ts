// Issue 10 (b): with `quire serve --workers 2` the per-address pre-auth cap
// and the per-user and per-user-and-address caps hold across both workers
// (src/server/admission.ts: the primary's AdmissionHub counts them), and a
// worker that dies gives its slots back. Before, each worker counted only its
// own sockets: a cap of N allowed N per worker.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { RawClient } from '../helpers/imap.js';
import { startServe } from '../obs/helpers.js';

/** The worker a greeting names (QUIRE_DEBUG_WORKER_GREETING=1): [slot, pid], or null for a refusal. */
function workerOf(c: RawClient): [number, number] | null {
  const m = / worker (\d+) pid (\d+) /.exec(c.greeting);
  return m ? [Number(m[1]), Number(m[2])] : null;
}

async function login(port: number, user: string, pass: string, localAddress: string): Promise<{ c: RawClient; ok: boolean; tagged: string }> {
  const c = await RawClient.connect(port, { localAddress });
  assert.ok(workerOf(c), `refused at connect: ${c.greeting}`);
  const r = await c.command(`LOGIN ${user} ${pass}`);
  return { c, ok: /^\S+ OK/.test(r.tagged), tagged: r.tagged };
}

async function eventually(what: string, fn: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('quire serve --workers 2: per-address pre-auth and per-user caps are global, and a dead worker frees its slots', { timeout: 120_000 }, async () => {
  const data = mkdtempSync(join(tmpdir(), 'quire-adm-cluster-'));
  const srv = await startServe(data, join(data, 'log'), ['--workers', '2', '--imaps-port', 'off', '--lmtp-port', 'off', '--log-level', 'info'], {
    QUIRE_DEBUG_WORKER_GREETING: '1',
    QUIRE_MAX_PRE_AUTH_CONNECTIONS_PER_ADDRESS: '3',
    QUIRE_MAX_CONNECTIONS_PER_USER: '3',
    QUIRE_MAX_CONNECTIONS_PER_USER_ADDRESS: '2',
  });
  const port = srv.imapPort;
  const user = srv.user!;
  const pass = srv.password!;
  const open: RawClient[] = [];
  try {
    // Pre-auth: 3 from one address over both workers, then refusals whichever worker takes them.
    const pre: RawClient[] = [];
    for (let i = 0; i < 3; i++) pre.push(await RawClient.connect(port, { localAddress: '127.0.0.5' }));
    open.push(...pre);
    const slots = new Set(pre.map((c) => workerOf(c)?.[0]));
    assert.ok(pre.every((c) => workerOf(c)), pre.map((c) => c.greeting).join('\n'));
    assert.equal(slots.size, 2, 'the three sockets landed on both workers');
    for (let i = 0; i < 2; i++) {
      const c = await RawClient.connect(port, { localAddress: '127.0.0.5' });
      open.push(c);
      assert.match(c.greeting, /^\* BYE \[UNAVAILABLE\] Too many unauthenticated connections from your address/);
    }
    // Another address is not affected.
    const other = await RawClient.connect(port, { localAddress: '127.0.0.6' });
    open.push(other);
    assert.ok(workerOf(other), other.greeting);
    for (const c of pre) await c.close();
    await eventually('pre-auth slots back after close', async () => {
      const c = await RawClient.connect(port, { localAddress: '127.0.0.5' });
      open.push(c);
      return workerOf(c) !== null;
    });

    // Per user and address: 2 from 127.0.0.7 (on both workers), the third is refused wherever it lands.
    const a1 = await login(port, user, pass, '127.0.0.7');
    const a2 = await login(port, user, pass, '127.0.0.7');
    open.push(a1.c, a2.c);
    assert.ok(a1.ok && a2.ok, `${a1.tagged} ${a2.tagged}`);
    const a3 = await login(port, user, pass, '127.0.0.7');
    open.push(a3.c);
    assert.match(a3.tagged, /NO \[LIMIT\] Too many connections for this user from your address/);
    const a3b = await login(port, user, pass, '127.0.0.7');
    open.push(a3b.c);
    assert.match(a3b.tagged, /NO \[LIMIT\]/);
    assert.equal(new Set([a3, a3b].map((x) => workerOf(x.c)![0])).size, 2, 'refused on both workers');
    // Per user: a third session from elsewhere is allowed, a fourth is not.
    const b1 = await login(port, user, pass, '127.0.0.8');
    open.push(b1.c);
    assert.ok(b1.ok, b1.tagged);
    const b2 = await login(port, user, pass, '127.0.0.9');
    open.push(b2.c);
    assert.match(b2.tagged, /NO \[LIMIT\] Too many connections for this user$/);
    const b3 = await login(port, user, pass, '127.0.0.9');
    open.push(b3.c);
    assert.match(b3.tagged, /NO \[LIMIT\]/);
    assert.equal(new Set([b2, b3].map((x) => workerOf(x.c)![0])).size, 2, 'refused on both workers');

    // A worker dies (SIGKILL: no goodbye): the slots of its sessions and sockets come back.
    const sessions = [a1, a2, b1];
    const victim = workerOf(a1.c)!;
    const lost = sessions.filter((x) => workerOf(x.c)![0] === victim[0]).length;
    process.kill(victim[1], 'SIGKILL');
    await eventually('the killed worker’s sessions closed', async () => sessions.filter((x) => workerOf(x.c)![0] === victim[0]).every((x) => x.c.closed));
    // Exactly `lost` logins fit again (3 per user in all).
    const again: { c: RawClient; ok: boolean; tagged: string }[] = [];
    await eventually('slots of the dead worker released', async () => {
      const x = await login(port, user, pass, `127.0.1.${again.length + 1}`);
      open.push(x.c);
      if (x.ok) again.push(x);
      else await x.c.close();
      return again.length === lost;
    });
    const over = await login(port, user, pass, '127.0.2.1');
    open.push(over.c);
    assert.match(over.tagged, /NO \[LIMIT\]/, 'no more than the slots the dead worker held');
    assert.doesNotMatch(srv.log(), /SERVERBUG|unhandled/i);
  } finally {
    for (const c of open) await c.close();
    srv.child.kill('SIGTERM');
    await srv.exited;
  }
});

test('a worker whose primary does not answer refuses after ADMISSION_ANSWER_TIMEOUT_MS and releases what the primary counted late', async () => {
  const { ClusterAdmission, AdmissionHub } = await import('../../src/server/admission.js');
  const { EventEmitter } = await import('node:events');
  const limits = () => ({ maxConnections: 100, maxPreAuthConnections: 100, maxPreAuthConnectionsPerAddress: 2, maxConnectionsPerUser: 10, maxConnectionsPerUserAddress: 10 });
  // The primary's side is real; the channel between holds every request until we let it through.
  const hub = new AdmissionHub();
  const toWorker = new EventEmitter();
  const held: unknown[] = [];
  const handle = hub.attach({ id: 1, isConnected: () => true, send: (m: unknown) => { toWorker.emit('message', m); return true; } } as never);
  const channel = { send: (m: unknown) => { held.push(m); return true; }, on: (e: 'message', fn: (m: unknown) => void) => toWorker.on(e, fn) };
  const worker = new ClusterAdmission(channel, limits, 50);
  const t0 = Date.now();
  const r = await worker.admit('192.0.2.1');
  assert.equal(r, 'maxConnections', 'refused when no answer came');
  assert.ok(Date.now() - t0 < 2000);
  // The primary now sees the late request and the release the worker sent after refusing: nothing stays counted.
  for (const m of held.splice(0)) handle(m);
  assert.equal(hub.preAuthConnections, 0);
  // With answers flowing again, admission works and counts.
  const live = { send: (m: unknown) => { handle(m); return true; }, on: channel.on };
  const w2 = new ClusterAdmission(live, limits, 50);
  const t = await w2.admit('192.0.2.1');
  assert.equal(typeof t, 'object');
  assert.equal(hub.preAuthConnections, 1);
});
