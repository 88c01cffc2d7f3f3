// `quire serve --workers N` as a real child process for tests that need
// sessions on different workers: each worker names itself in its greeting
// (QUIRE_DEBUG_WORKER_GREETING=1), so a test can pick where a connection lands.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SqliteMailStore } from '../../src/store/sqlite/index.js';
import { provisionUser } from '../../src/cli/users.js';
import { RawClient } from './imap.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Generous: the machine is shared. */
const START_MS = 60_000;

export interface WorkerClient extends RawClient {
  slot: number;
  pid: number;
}

export interface Cluster {
  port: number;
  dir: string;
  child: ChildProcess;
  stderr(): string;
  exited: Promise<number | null>;
  /** A logged-in connection on a worker `want` accepts (connections elsewhere are closed). */
  connectTo(user: [string, string], want?: (slot: number, pid: number) => boolean): Promise<WorkerClient>;
  stop(): Promise<void>;
}

/** The worker a greeting names: [slot, pid]; [0, 0] from a single process (`--workers 1`). */
export function workerOf(greeting: string): [number, number] {
  const m = / worker (\d+) pid (\d+) ready/.exec(greeting);
  return m ? [Number(m[1]), Number(m[2])] : [0, 0];
}

/** `dir`: an existing data directory to serve (its users as they are; removed by stop() all the same). */
export async function startCluster(opts: { workers: number; users: [string, string][]; args?: string[]; dir?: string }): Promise<Cluster> {
  const dir = opts.dir ?? (await mkdtemp(path.join(tmpdir(), 'quire-cluster-')));
  if (!opts.dir) {
    const store = await SqliteMailStore.open({ dataDir: dir });
    for (const [u, p] of opts.users) await provisionUser(store, u, p);
    await store.close();
  }
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('QUIRE_') && v !== undefined) env[k] = v;
  env.QUIRE_DEBUG_WORKER_GREETING = '1';
  const child = spawn(
    process.execPath,
    [
      '--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), 'serve', '--data', dir, '--workers', String(opts.workers),
      '--imap-port', '0', '--imaps-port', 'off', '--lmtp-port', 'off', '--pop3-port', 'off', '--pop3s-port', 'off',
      '--admin-port', 'off', '--log-level', 'warn', ...(opts.args ?? []),
    ],
    { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const port = await new Promise<number>((resolve, reject) => {
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
  return {
    port,
    dir,
    child,
    stderr: () => stderr,
    exited,
    async connectTo(user, want = () => true) {
      for (let i = 0; i < 60; i++) {
        const c = await RawClient.connect(port);
        const [slot, pid] = workerOf(c.greeting);
        if (want(slot, pid)) {
          const r = await c.command(`LOGIN ${user[0]} ${user[1]}`);
          if (!/^\S+ OK/.test(r.tagged)) throw new Error(`login failed: ${r.tagged}`);
          return Object.assign(c, { slot, pid });
        }
        await c.close();
      }
      throw new Error('no connection reached the wanted worker');
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(timer);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
