// The cross-worker parts under node:cluster (two workers, test/obs/cluster-fixture.ts):
// the primary's /metrics merges both workers' registries with their `worker`
// labels; `quire who` and `quire stats` over the primary's control socket
// see the sessions of both workers; `quire kick` reaches both; SIGHUP to the
// primary makes every worker reload without dropping sessions; a worker
// whose event loop hangs is detected (no heartbeat) and killed, and replaced.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { RawClient } from '../helpers/imap.js';
import { runProcess } from '../helpers/process.js';
import { cleanEnv, httpGet, ROOT, sample, until } from './helpers.js';

/** ops' port range (coord.md): cluster workers share one listening port. */
const PORT = 21401;

test('two workers: merged metrics, who/stats/kick across workers, SIGHUP reloads every worker', { timeout: 120_000 }, async () => {
  const data = mkdtempSync(join(tmpdir(), 'quire-cluster-'));
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'test/obs/cluster-fixture.ts'), data, String(PORT)], { cwd: ROOT, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('close', r));
  const quire = (args: string[]) => runProcess(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args, '--data', data], { cwd: ROOT, env: cleanEnv() });
  try {
    await until(() => /^ready \d+ \d+$/m.test(out) || child.exitCode !== null, 'two workers listening', 60_000);
    const [, imapPort, adminPort] = /^ready (\d+) (\d+)$/m.exec(out)!.map(Number) as [number, number, number];
    assert.equal(imapPort, PORT);
    // Round-robin: four connections land on both workers.
    const clients = [];
    for (let i = 0; i < 4; i++) clients.push(await RawClient.connect(imapPort, { login: ['alice', 'secret-a'] }));
    await clients[0]!.command('SELECT INBOX');

    const m = (await httpGet(adminPort, '/metrics')).body;
    const w1 = sample(m, 'quire_logins_total', { result: 'success', worker: '1' }) ?? 0;
    const w2 = sample(m, 'quire_logins_total', { result: 'success', worker: '2' }) ?? 0;
    assert.equal(w1 + w2, 4, m.split('\n').filter((l) => l.startsWith('quire_logins')).join('\n'));
    assert.ok(w1 > 0 && w2 > 0, 'both workers served logins and are told apart');
    assert.equal(sample(m, 'quire_connections', { protocol: 'imap', state: 'selected' }), 1);
    assert.equal((await httpGet(adminPort, '/readyz')).status, 200);

    const who = JSON.parse((await quire(['who', '--json'])).stdout) as { user: string }[];
    assert.equal(who.length, 4);
    const stats = JSON.parse((await quire(['stats', '--json'])).stdout) as { workers: number; sessions: number; logins: { success: number } };
    assert.deepEqual([stats.workers, stats.sessions, stats.logins.success], [2, 4, 4]);

    child.kill('SIGHUP');
    await until(() => (err.match(/INFO reloaded worker=\d trigger=primary/g) ?? []).length === 2, 'both workers reloaded', 20_000);
    assert.match((await clients[1]!.command('NOOP')).tagged, /OK/, 'sessions survive the reload');

    const kick = await quire(['kick', 'alice']);
    assert.equal(kick.stdout, 'kicked 4 sessions of alice\n');
    for (const c of clients) await until(() => c.closed, 'kicked');

    // A worker whose event loop hangs is detected by its silence and replaced.
    child.kill('SIGUSR2');
    await until(() => /ERROR worker blocked; killing it so that it is replaced worker=1 pid=\d+ silentMs=\d+/.test(err), 'the blocked worker detected', 30_000);
    await until(() => /^respawned$/m.test(out), 'a new worker', 60_000);
    for (let i = 0; i < 3; i++) {
      const c = await RawClient.connect(imapPort, { login: ['alice', 'secret-a'] });
      assert.match((await c.command('NOOP')).tagged, /OK/);
      await c.close();
    }
  } finally {
    child.kill('SIGTERM');
  }
  await exited;
});
