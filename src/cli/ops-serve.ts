// What `quire serve` sets up around the listeners for operating it: the
// logger, the HTTP admin listener, reload (SIGHUP, the cluster primary's
// {type:'reload'} message, and certificate files changing on disk).
// serve() in main.ts calls these few functions; the process model (workers,
// signals in the primary) belongs to serve.
//
// One process (`--workers 1`, tests): everything here runs in it; SIGHUP
// reloads. Under node:cluster the primary owns the signals and the admin
// listener (startPrimaryOps); each worker reloads on {type:'reload'} and
// answers the primary's metrics requests (startServeOps does both).

import cluster from 'node:cluster';
import { unwatchFile, watchFile, type Stats } from 'node:fs';
import type { ServerOptions } from '../server/options.js';
import type { RunningServer } from '../server/index.js';
import { clusterMetrics, exposeMetricsToPrimary, startAdmin, type RunningAdmin } from '../obs/admin.js';
import { processMetrics } from '../obs/metrics.js';
import { createLogger, type LevelLogger } from './log.js';
import { loadConfig, toServerOptions, type QuireConfig } from './config.js';
import { loadOrCreateTls } from './tls.js';
import { answerControlRequests, clusterBackend, localBackend, startControl, type ControlBackend, type RunningControl } from './ops-control.js';

/** How often the certificate and key files are checked for changes (stat polling: works for symlinks, e.g. certbot's live/). */
export const CERT_POLL_MS = 5_000;
/** Quiet time after the last change before reloading: a renewal writes the key and the certificate one after the other. */
export const CERT_DEBOUNCE_MS = 1_000;

/** How often a worker tells the primary its event loop is turning. */
export const HEARTBEAT_MS = 2_000;
/**
 * A worker silent this long is blocked (an event loop stuck in a loop or a
 * synchronous call): the primary kills it and the process model starts a new one.
 * Generous, so that a long but legitimate synchronous step on a loaded machine is not mistaken for a hang.
 */
export const BLOCKED_WORKER_MS = 60_000;

/** The serve logger: level and format from the configuration. */
export function serveLogger(config: QuireConfig): LevelLogger {
  return createLogger({ level: config.logLevel, format: config.logFormat });
}

/**
 * Fresh server options from the same flags (config file and environment are
 * read again) and the certificate files read again: what RunningServer.reload() applies.
 */
export function serverReloader(flags: Record<string, unknown>, log: LevelLogger): () => Promise<ServerOptions> {
  return async () => {
    const config = loadConfig({ flags, onWarning: (m) => log.warn(m) });
    log.level = config.logLevel;
    const tls = await loadOrCreateTls(config, log);
    return toServerOptions(config, tls, log);
  };
}

/** Calls `onChange` once the files stop changing for `debounceMs` (stat polling every `intervalMs`). Returns the stop function. */
export function watchFiles(paths: readonly string[], onChange: () => void, intervalMs = CERT_POLL_MS, debounceMs = CERT_DEBOUNCE_MS): () => void {
  let timer: NodeJS.Timeout | null = null;
  const listener = (cur: Stats, prev: Stats) => {
    if (cur.mtimeMs === prev.mtimeMs && cur.ino === prev.ino && cur.size === prev.size) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      onChange();
    }, debounceMs);
    timer.unref();
  };
  for (const p of paths) watchFile(p, { interval: intervalMs, persistent: false }, listener);
  return () => {
    if (timer) clearTimeout(timer);
    for (const p of paths) unwatchFile(p, listener);
  };
}

export interface ServeOps {
  admin: RunningAdmin | null;
  /** Reloads every running server; never rejects (a failure is logged and the old settings stay). */
  reload(why: string): Promise<boolean>;
  close(): Promise<void>;
}

export interface ServeOpsInput {
  config: QuireConfig;
  log: LevelLogger;
  /** The running servers that can reload (IMAP today; others as they gain reload()). */
  servers: Pick<RunningServer, 'reload' | 'sessions' | 'kick'>[];
  /** Certificate and key files to watch (configured or generated). */
  tlsFiles: readonly string[];
  ready: () => boolean;
  /**
   * False when the process model delivers SIGHUP / {type:'reload'} itself and
   * calls `reload` (or the servers' reload()): then this installs neither handler.
   */
  signals?: boolean;
  /** False: no control socket (in-process tests that share a data directory). */
  control?: boolean;
  /** The serving store, for the index backlog gauge (when the backend can count it) and the /readyz store probe. */
  store?: { indexBacklog?(): Promise<number>; countUsers?(): Promise<number> };
  /** Test hook: heartbeat interval of a cluster worker. */
  heartbeatMs?: number;
  /** Test hook: certificate polling interval. */
  certPollMs?: number;
}

export async function startServeOps(p: ServeOpsInput): Promise<ServeOps> {
  const { log } = p;
  let chain: Promise<boolean> = Promise.resolve(true);
  // Reloads run one after another: a SIGHUP during a certificate reload waits for it.
  const reload = (why: string): Promise<boolean> => {
    chain = chain.then(async () => {
      log.info('reloading', { trigger: why });
      try {
        for (const s of p.servers) await s.reload?.();
        processMetrics().reloads.inc({ result: 'ok' });
        log.info('reloaded', { trigger: why });
        return true;
      } catch (err) {
        processMetrics().reloads.inc({ result: 'error' });
        log.error('reload failed; the previous configuration and certificate stay in use', { trigger: why, error: err instanceof Error ? err.message : String(err) });
        return false;
      }
    });
    return chain;
  };

  const stops: (() => void)[] = [];
  const store = p.store;
  if (store?.indexBacklog) {
    processMetrics().setIndexBacklogSource(() => store.indexBacklog!());
    stops.push(() => processMetrics().setIndexBacklogSource(null));
  }
  stops.push(watchFiles(p.tlsFiles, () => void reload('certificate files changed'), p.certPollMs));

  let admin: RunningAdmin | null = null;
  let control: RunningControl | null = null;
  const backend = localBackend(p.servers, () => reload('control socket'));
  if (cluster.isWorker) {
    // Cross-worker (thin): the primary sends {type:'reload'} on SIGHUP, scrapes metrics and asks `who` over IPC.
    exposeMetricsToPrimary();
    stops.push(answerControlRequests(backend));
    // Liveness for the primary's blocked-worker detection (startPrimaryOps).
    const beat = setInterval(() => process.send?.({ type: 'obs:heartbeat' }), p.heartbeatMs ?? HEARTBEAT_MS);
    beat.unref();
    process.send?.({ type: 'obs:heartbeat' });
    stops.push(() => clearInterval(beat));
    if (p.signals !== false) {
      const onMessage = (m: unknown) => {
        if (m && typeof m === 'object' && (m as { type?: unknown }).type === 'reload') void reload('primary');
      };
      process.on('message', onMessage);
      stops.push(() => process.off('message', onMessage));
    }
  } else {
    // One process: SIGHUP reloads and never stops the server.
    if (p.signals !== false) {
      const onHup = () => void reload('SIGHUP');
      process.on('SIGHUP', onHup);
      stops.push(() => process.off('SIGHUP', onHup));
    }
    const storeCheck = store?.countUsers ? () => store.countUsers!() : undefined;
    if (p.config.admin.port !== null) admin = await startAdminOrWarn(p.config, log, p.ready, false, storeCheck);
    if (p.control !== false) control = await startControlOrWarn(p.config.dataDir, backend, log);
  }

  return {
    admin,
    reload,
    async close() {
      for (const s of stops) s();
      await admin?.close();
      await control?.close();
    },
  };
}

/** The control socket, or null with an error logged (e.g. a data directory path too long for a Unix socket). */
async function startControlOrWarn(dataDir: string, backend: ControlBackend, log: LevelLogger): Promise<RunningControl | null> {
  try {
    return await startControl(dataDir, backend, log);
  } catch (err) {
    log.error('control socket not started; quire who/kick/reload/stats will not reach this server (SIGHUP still reloads)', { dataDir, error: err instanceof Error ? err.message : String(err) });
    return null;
  }
}

/**
 * The admin listener, or null with an error logged when it cannot bind: mail
 * keeps flowing without metrics (a second instance on one host, a port taken).
 */
async function startAdminOrWarn(config: QuireConfig, log: LevelLogger, ready: () => boolean, clustered: boolean, storeCheck?: () => Promise<unknown>): Promise<RunningAdmin | null> {
  try {
    return await startAdmin({ host: config.admin.host, port: config.admin.port ?? 0, log, ready, source: clustered ? clusterMetrics() : undefined, storeCheck });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    log.error('admin listener not started; serving without /metrics, /healthz, /readyz (set admin.port to a free port, or off)', {
      host: config.admin.host,
      port: config.admin.port,
      error: e.code === 'EADDRINUSE' ? 'address already in use' : e.message,
    });
    return null;
  }
}

/**
 * Cross-worker (thin, for the node:cluster primary of `--workers N`): the
 * admin listener merging the workers' metrics, and SIGHUP forwarded to every
 * worker as {type:'reload'}. The primary serves no sessions; /readyz reports
 * `ready()` (e.g. "at least one worker is listening").
 */
export async function startPrimaryOps(
  config: QuireConfig,
  log: LevelLogger,
  ready: () => boolean,
  opts: { signals?: boolean; blockedMs?: number; storeCheck?: () => Promise<unknown> } = {},
): Promise<{ admin: RunningAdmin | null; close(): Promise<void> }> {
  // Blocked workers: one that has sent heartbeats and then falls silent is killed (SIGKILL: a stuck
  // event loop cannot run a SIGTERM handler); the process model restarts it like a crashed one.
  const blockedMs = opts.blockedMs ?? BLOCKED_WORKER_MS;
  const lastBeat = new Map<number, number>();
  const onWorkerMessage = (w: import('node:cluster').Worker, m: unknown) => {
    if (m && typeof m === 'object' && (m as { type?: unknown }).type === 'obs:heartbeat') lastBeat.set(w.id, Date.now());
  };
  const onExit = (w: import('node:cluster').Worker) => lastBeat.delete(w.id);
  cluster.on('message', onWorkerMessage);
  cluster.on('exit', onExit);
  const watchdog = setInterval(() => {
    const now = Date.now();
    for (const w of Object.values(cluster.workers ?? {})) {
      const t = w ? lastBeat.get(w.id) : undefined;
      if (!w || t === undefined || now - t <= blockedMs) continue;
      lastBeat.delete(w.id);
      log.error('worker blocked; killing it so that it is replaced', { worker: w.id, pid: w.process.pid, silentMs: now - t });
      w.process.kill('SIGKILL');
    }
  }, Math.max(100, Math.min(blockedMs / 4, HEARTBEAT_MS)));
  watchdog.unref();
  const onHup = () => {
    log.info('reloading workers', { trigger: 'SIGHUP' });
    for (const w of Object.values(cluster.workers ?? {})) w?.send({ type: 'reload' });
  };
  // The process model may forward SIGHUP itself (signals: false).
  if (opts.signals !== false) process.on('SIGHUP', onHup);
  const admin = config.admin.port !== null ? await startAdminOrWarn(config, log, ready, true, opts.storeCheck) : null;
  const control = await startControlOrWarn(config.dataDir, clusterBackend(), log);
  return {
    admin,
    async close() {
      clearInterval(watchdog);
      cluster.off('message', onWorkerMessage);
      cluster.off('exit', onExit);
      process.off('SIGHUP', onHup);
      await admin?.close();
      await control?.close();
    },
  };
}
