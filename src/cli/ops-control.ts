// The control socket: `quire who`, `quire kick USER`, `quire reload` and
// `quire stats` talk to the running server over a Unix socket in the data
// directory (<dataDir>/quire.sock, mode 0600 in a 0700 directory: only the
// server's own user, or root, can connect; the client refuses a socket that
// is not owned by its own user or root, or that others may write to).
//
// Protocol: the client sends one JSON line {"cmd": "...", ...}; the server
// answers one JSON line {"ok": true, "result": ...} or {"ok": false,
// "error": "..."} and closes. Requests are bounded in size and time.
//
// One process: the backend is this process's servers. Under node:cluster the
// primary owns the socket and asks every worker over IPC (`obs:control`
// request, `obs:control-reply` answer) and merges the answers: that part is
// thin (clusterBackend / answerControlRequests) until the worker model lands.

import cluster from 'node:cluster';
import { lstat, unlink, chmod } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import type { RunningServer, SessionInfo } from '../server/index.js';
import { processMetrics } from '../obs/metrics.js';
import type { LevelLogger } from './log.js';

export const CONTROL_SOCKET = 'quire.sock';
/** Only the server's user may connect (the data directory is 0700 as well). */
export const CONTROL_SOCKET_MODE = 0o600;
/** Longest request line. */
const MAX_REQUEST_BYTES = 4096;
/** Longest answer the client reads (a `who` of many thousands of sessions fits). */
const MAX_REPLY_BYTES = 64 * 1024 * 1024;
/** Time a client has to send its request, and the CLI waits for an answer. */
const REQUEST_TIMEOUT_MS = 10_000;
/** Time the primary waits for the workers' answers. */
const WORKER_REPLY_TIMEOUT_MS = 5_000;

export interface ControlStats {
  pid: number;
  uptimeSeconds: number;
  workers: number;
  sessions: number;
  sessionsByState: Record<string, number>;
  logins: { success: number; failure: number };
  commands: number;
  deliveries: number;
  rssBytes: number;
}

export interface ControlBackend {
  who(): Promise<SessionInfo[]>;
  kick(user: string): Promise<number>;
  reload(): Promise<boolean>;
  stats(): Promise<ControlStats>;
}

async function counterTotal(name: string, filter: (labels: Record<string, string | number>) => boolean = () => true): Promise<number> {
  const m = processMetrics().registry.getSingleMetric(name);
  if (!m) return 0;
  const v = await m.get();
  return v.values.filter((x) => filter(x.labels as Record<string, string | number>) && !('metricName' in x && String(x.metricName).endsWith('_bucket')) && !('metricName' in x && String(x.metricName).endsWith('_sum'))).reduce((n, x) => n + x.value, 0);
}

/** This process's figures for `quire stats`. */
export async function localStats(sessions: SessionInfo[]): Promise<ControlStats> {
  const byState: Record<string, number> = {};
  for (const s of sessions) byState[s.state] = (byState[s.state] ?? 0) + 1;
  return {
    pid: process.pid,
    uptimeSeconds: Math.round(process.uptime()),
    workers: 1,
    sessions: sessions.length,
    sessionsByState: byState,
    logins: {
      success: await counterTotal('quire_logins_total', (l) => l.result === 'success'),
      failure: await counterTotal('quire_logins_total', (l) => l.result === 'failure'),
    },
    commands: await counterTotal('quire_command_duration_seconds', () => true),
    deliveries: await counterTotal('quire_lmtp_deliveries_total', (l) => l.result === 'delivered'),
    rssBytes: process.memoryUsage().rss,
  };
}

/** The backend of one process: its own servers. */
export function localBackend(servers: Pick<RunningServer, 'sessions' | 'kick'>[], reload: () => Promise<boolean>): ControlBackend {
  const who = async () => servers.flatMap((s) => s.sessions?.() ?? []);
  return {
    who,
    kick: async (user) => servers.reduce((n, s) => n + (s.kick?.(user, 'Disconnected by an administrator') ?? 0), 0),
    reload,
    stats: async () => localStats(await who()),
  };
}

// ---- cross-worker (node:cluster), thin ---------------------------------------------------------

interface WorkerRequest {
  type: 'obs:control';
  id: number;
  cmd: 'who' | 'kick' | 'reload' | 'stats';
  user?: string;
}

/** In a worker: answers the primary's control requests with this process's backend. */
export function answerControlRequests(backend: ControlBackend): () => void {
  if (!cluster.isWorker) return () => {};
  const onMessage = (m: unknown) => {
    const r = m as WorkerRequest;
    if (!r || r.type !== 'obs:control') return;
    const run = async (): Promise<unknown> => {
      switch (r.cmd) {
        case 'who':
          return backend.who();
        case 'kick':
          return backend.kick(String(r.user ?? ''));
        case 'reload':
          return backend.reload();
        case 'stats':
          return backend.stats();
      }
    };
    run().then(
      (result) => process.send?.({ type: 'obs:control-reply', id: r.id, result }),
      (err: unknown) => process.send?.({ type: 'obs:control-reply', id: r.id, error: err instanceof Error ? err.message : String(err) }),
    );
  };
  process.on('message', onMessage);
  return () => process.off('message', onMessage);
}

/** In the primary: asks every worker and merges the answers. */
export function clusterBackend(): ControlBackend {
  let nextId = 1;
  const ask = async <T>(cmd: WorkerRequest['cmd'], user?: string): Promise<T[]> => {
    const workers = Object.values(cluster.workers ?? {}).filter((w) => w !== undefined && w.isConnected());
    const id = nextId++;
    return Promise.all(
      workers.map(
        (w) =>
          new Promise<T>((resolve, reject) => {
            const timer = setTimeout(() => {
              w!.off('message', onMessage);
              reject(new Error(`worker ${w!.id} did not answer`));
            }, WORKER_REPLY_TIMEOUT_MS);
            const onMessage = (m: { type?: string; id?: number; result?: T; error?: string }) => {
              if (m?.type !== 'obs:control-reply' || m.id !== id) return;
              clearTimeout(timer);
              w!.off('message', onMessage);
              if (m.error) reject(new Error(m.error));
              else resolve(m.result as T);
            };
            w!.on('message', onMessage);
            w!.send({ type: 'obs:control', id, cmd, user } satisfies WorkerRequest);
          }),
      ),
    );
  };
  return {
    who: async () => (await ask<SessionInfo[]>('who')).flat(),
    kick: async (user) => (await ask<number>('kick', user)).reduce((a, b) => a + b, 0),
    reload: async () => (await ask<boolean>('reload')).every(Boolean),
    stats: async () => {
      const all = await ask<ControlStats>('stats');
      const sum = (f: (s: ControlStats) => number) => all.reduce((n, s) => n + f(s), 0);
      const byState: Record<string, number> = {};
      for (const s of all) for (const [k, v] of Object.entries(s.sessionsByState)) byState[k] = (byState[k] ?? 0) + v;
      return {
        pid: process.pid,
        uptimeSeconds: Math.round(process.uptime()),
        workers: all.length,
        sessions: sum((s) => s.sessions),
        sessionsByState: byState,
        logins: { success: sum((s) => s.logins.success), failure: sum((s) => s.logins.failure) },
        commands: sum((s) => s.commands),
        deliveries: sum((s) => s.deliveries),
        rssBytes: sum((s) => s.rssBytes) + process.memoryUsage().rss,
      };
    },
  };
}

// ---- the socket (server side) ----------------------------------------------------------------

export interface RunningControl {
  path: string;
  close(): Promise<void>;
}

export async function startControl(dataDir: string, backend: ControlBackend, log: LevelLogger): Promise<RunningControl> {
  const path = join(dataDir, CONTROL_SOCKET);
  // The data directory lock guarantees no other server owns this path: a leftover socket is stale.
  const st = await lstat(path).catch(() => null);
  if (st) {
    if (!st.isSocket()) throw new Error(`${path} exists and is not a socket; move it away`);
    await unlink(path);
  }
  const server = net.createServer((sock) => {
    let buf = '';
    sock.setTimeout(REQUEST_TIMEOUT_MS, () => sock.destroy());
    sock.on('error', () => {});
    sock.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      if (buf.length > MAX_REQUEST_BYTES) {
        sock.end(JSON.stringify({ ok: false, error: 'request too long' }) + '\n');
        return;
      }
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      sock.removeAllListeners('data');
      void handle(buf.slice(0, nl)).then((reply) => sock.end(JSON.stringify(reply) + '\n'));
    });
  });
  const handle = async (line: string): Promise<unknown> => {
    let req: { cmd?: unknown; user?: unknown };
    try {
      req = JSON.parse(line) as typeof req;
    } catch {
      return { ok: false, error: 'request is not JSON' };
    }
    try {
      switch (req.cmd) {
        case 'who':
          return { ok: true, result: await backend.who() };
        case 'kick': {
          if (typeof req.user !== 'string' || req.user === '') return { ok: false, error: 'kick needs a user' };
          const n = await backend.kick(req.user);
          log.info('admin kicked user', { user: req.user, sessions: n });
          return { ok: true, result: n };
        }
        case 'reload':
          return { ok: true, result: await backend.reload() };
        case 'stats':
          return { ok: true, result: await backend.stats() };
        default:
          return { ok: false, error: 'unknown command' };
      }
    } catch (err) {
      return { ok: false, error: err instanceof Error ? err.message : String(err) };
    }
  };
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  await chmod(path, CONTROL_SOCKET_MODE);
  server.on('error', (err) => log.error('control socket error', { error: err.message }));
  return {
    path,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        void unlink(path).catch(() => {});
      }),
  };
}

// ---- the client (CLI side) ---------------------------------------------------------------------

export class NoServerError extends Error {}

/** Sends one request to the running server of `dataDir`; throws NoServerError when none is running. */
export async function controlRequest<T>(dataDir: string, req: Record<string, unknown>): Promise<T> {
  const path = join(dataDir, CONTROL_SOCKET);
  const st = await lstat(path).catch(() => null);
  if (!st) throw new NoServerError(`no running server for ${dataDir} (no ${path})`);
  if (!st.isSocket()) throw new Error(`${path} is not a socket`);
  const uid = process.getuid?.();
  if (uid !== undefined && uid !== 0 && st.uid !== uid && st.uid !== 0) throw new Error(`refusing ${path}: owned by uid ${st.uid}, not by you (uid ${uid}) or root`);
  if ((st.mode & 0o002) !== 0) throw new Error(`refusing ${path}: anyone may write to it (mode ${(st.mode & 0o777).toString(8)})`);
  return new Promise<T>((resolve, reject) => {
    const sock = net.connect(path);
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`the server did not answer within ${REQUEST_TIMEOUT_MS / 1000} s`));
    }, REQUEST_TIMEOUT_MS);
    sock.on('connect', () => sock.write(JSON.stringify(req) + '\n'));
    sock.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      if (buf.length > MAX_REPLY_BYTES) sock.destroy(new Error('answer too long'));
    });
    sock.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (err.code === 'ECONNREFUSED' || err.code === 'ENOENT') reject(new NoServerError(`no running server for ${dataDir} (${path} refuses connections)`));
      else if (err.code === 'EACCES') reject(new Error(`permission denied on ${path}: run this as the server's user`));
      else reject(err);
    });
    sock.on('end', () => {
      clearTimeout(timer);
      try {
        const r = JSON.parse(buf) as { ok: boolean; result?: T; error?: string };
        if (r.ok) resolve(r.result as T);
        else reject(new Error(r.error ?? 'request failed'));
      } catch {
        reject(new Error('the server sent an invalid answer'));
      }
    });
  });
}
