// `quire serve`: the process model.
//
// --workers 1: one process does everything, as it always did: the store (with
// its indexing and search threads), IMAP and LMTP listeners, signals.
//
// --workers N > 1 (0, the default: one per core): node:cluster. The primary opens the
// store first (schema migration, first user, the certificate), runs the
// full-text indexing thread (which also checkpoints the WAL), holds the write
// gate every writer queues at, relays the change bus, and forks N workers.
// Each worker opens the store and runs startServer + startLmtp on the same
// ports (cluster shares the listening sockets; the primary hands out
// connections round-robin). The primary serves no sessions. It prints the
// banner once all workers listen, and handles the signals:
//   SIGTERM / SIGINT: every worker drains and exits, then the primary (exit 0);
//   SIGHUP: each worker gets {type:'reload'} and reloads its configuration
//     and certificate through ops-serve.ts (never fatal; a broken new
//     certificate keeps the old one); the primary runs the admin HTTP
//     listener (every worker's metrics merged) and the control socket;
//   a worker that dies unasked is restarted, with a growing delay while it
//     keeps dying.
// Worker messages are namespaced by feature ('serve:', 'bus:', 'reload').
// With QUIRE_DEBUG_WORKER_GREETING=1 each worker names itself in the IMAP
// greeting ("Quire worker 2 pid 1234 ready"): the multi-worker tests use it to find
// connections on different workers.
import cluster, { type Worker } from 'node:cluster';
import { mkdir } from 'node:fs/promises';
import { availableParallelism, userInfo } from 'node:os';
import { buildAuthenticator } from './auth-config.js';
import type { MailStore } from '../store/types.js';
import type { ChangeHint } from '../store/types.js';
import { toLmtpOptions, toPop3Options, toServerOptions, type QuireConfig } from './config.js';
import type { LevelLogger } from './log.js';
import { loadOrCreateTls, type TlsMaterial } from './tls.js';
import { firstUserName, generatePassword, provisionUser } from './users.js';
import type { SqliteStoreOptions, WriteGate } from '../store/sqlite/index.js';
import { ClusterChangeBus, ClusterHub, ClusterWriteGate, batchedChannel } from '../bus/cluster.js';
import { AdmissionHub, ClusterAdmission, type AdmissionChannel, type AdmissionLimits } from '../server/admission.js';
import { ClusterMaildropLocks, Pop3LockHub, type LockChannel, type MaildropLocks } from '../pop3/lock.js';
import { serveLogger, serverReloader, startPrimaryOps, startServeOps, type ServeOps } from './ops-serve.js';
import { acquireDataLock, clearFirstPassword, dataFlag, listenErrorMessage, quireCommand, writeFirstPassword } from './ops-safety.js';
import { instrumentStore } from '../obs/metrics.js';
import { warnAboutDescriptorLimit } from './fdlimit.js';
import { sessionEvents } from '../obs/session.js';

/** How long a clean shutdown may take before we exit anyway. */
export const SHUTDOWN_TIMEOUT_MS = 10_000;
/** First delay before restarting a crashed worker; doubles per crash in a row... */
const RESTART_FIRST_MS = 100;
/** ...up to this. */
const RESTART_MAX_MS = 10_000;
/** A worker that ran this long without dying resets the delay. */
const RESTART_STABLE_MS = 30_000;
/** How long the primary waits for the workers to listen at start. */
const START_TIMEOUT_MS = 60_000;
/** The environment variable telling a worker its number (1..N). */
const WORKER_ENV = 'QUIRE_WORKER_ID';

export interface ServeContext {
  configure(flags: Record<string, unknown>, log?: LevelLogger): QuireConfig;
}

type Addr = { host: string; port: number };
interface Addresses {
  imap: Addr[];
  imaps: Addr[];
  /** The banner's POP3 lines (src/pop3/server.ts pop3Banner). */
  pop3: string[];
  lmtp: Addr[];
  lmtpSocket: string | null;
}

/** A running IMAP or LMTP server as the process model sees it (reloads go through ops-serve.ts). */
interface Running {
  close(): Promise<void>;
}

export async function serve(flags: Record<string, unknown>, ctx: ServeContext): Promise<void> {
  if (cluster.isWorker && process.env[WORKER_ENV]) return runWorker(flags, ctx, Number(process.env[WORKER_ENV]));
  const config = ctx.configure(flags, undefined);
  const log = serveLogger(config);
  warnAboutDescriptorLimit(config, log);
  const n = config.workers === 0 ? availableParallelism() : config.workers;
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  // One server per data directory (ops): refused before anything is created; the workers share the primary's lock.
  const releaseLock = acquireDataLock(config.dataDir);
  try {
    const tls = await loadOrCreateTls(config, log);
    if (n <= 1) return await runSingle(flags, config, log, tls, releaseLock);
    return await runPrimary(config, log, tls, n, releaseLock);
  } catch (err) {
    releaseLock();
    throw err;
  }
}

function formatAddr(a: Addr): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

async function openStore(config: QuireConfig, extra: Partial<SqliteStoreOptions> = {}) {
  // Loaded lazily so that `quire --help` loads no database driver (store-open.ts picks SQLite or PostgreSQL).
  const { openStore: open } = await import('./store-open.js');
  const { onCommit, followOthers, feed, ...sqlite } = extra;
  return open({ data: config.dataDir, store: config.store, synchronous: config.sqlite.synchronous, maxMailboxesPerUser: config.mailboxes.maxPerUser, onCommit, followOthers, feed, sqlite: { durability: config.sqlite.durability, bodyCacheBytes: config.sqlite.bodyCacheBytes, ...sqlite } });
}

/** The first user's password file goes at that user's first login (ops); in a cluster each worker watches its own sessions. */
function watchFirstLogin(dataDir: string, name: string, log: LevelLogger): void {
  const onLogin = (u: string) => {
    if (u !== name) return;
    sessionEvents.off('login', onLogin);
    void clearFirstPassword(dataDir, name).then((done) => done && log.info('first login: removed the first-user password file', { user: name }));
  };
  sessionEvents.on('login', onLogin);
}

type FirstUser = { name: string; password: string; file: string };

/**
 * The first start's user, created once the listeners are bound (ops: a first
 * start that fails creates nothing whose password was never shown), with its
 * password also in a 0600 file until the first login or a password change.
 * Only with the built-in user table: other user databases hold their own accounts.
 */
async function ensureFirstUser(config: QuireConfig, store: MailStore, log: LevelLogger): Promise<FirstUser | null> {
  if (config.userdb.driver !== 'builtin' || (await store.countUsers()) !== 0) return null;
  let osName: string | undefined;
  try {
    osName = userInfo().username;
  } catch {
    osName = undefined;
  }
  const name = firstUserName(osName);
  const password = generatePassword();
  await provisionUser(store, name, password);
  const file = await writeFirstPassword(config.dataDir, name, password);
  log.info('created first user', { user: name, passwordFile: file });
  return { name, password, file };
}

/** Starts the IMAP and LMTP listeners of one process on `store`. */
async function startListeners(
  flags: Record<string, unknown>,
  config: QuireConfig,
  store: MailStore,
  tls: TlsMaterial,
  log: LevelLogger,
  serverName?: string,
  admission?: ReturnType<typeof toServerOptions>['admission'],
  pop3Locks?: MaildropLocks,
) {
  const auth = buildAuthenticator(config, store, log);
  const { startServer } = await import('../server/index.js');
  // What this process's share of the settings is (a worker's connection cap, its greeting) survives a reload.
  const own = (o: ReturnType<typeof toServerOptions>) => {
    o.limits.maxConnections = config.limits.maxConnections;
    if (serverName) o.serverName = serverName;
    if (admission) o.admission = admission;
    return o;
  };
  const reloader = serverReloader(flags, log);
  const opts = own(toServerOptions(config, tls, log));
  const server = await startServer(store, auth, { ...opts, reload: async () => own(await reloader()) });
  let lmtp: Awaited<ReturnType<typeof import('../delivery/server.js').startLmtp>> | null = null;
  const lmtpOptions = toLmtpOptions(config, log);
  // Mail for an external account that has not logged in yet: its local user is created at delivery.
  if (lmtpOptions && config.userdb.driver !== 'builtin') lmtpOptions.externalUser = (name) => auth.localUserFor(name);
  if (lmtpOptions) {
    const { startLmtp } = await import('../delivery/server.js');
    lmtp = await startLmtp(store, lmtpOptions).catch(async (err: unknown) => {
      await server.close().catch(() => {});
      throw err;
    });
  }
  // POP3 (src/pop3/server.ts), on the same store and authenticator.
  const pop3Mod = await import('../pop3/server.js');
  const pop3Options = toPop3Options(config, tls, log);
  // RFC 1939 §8 locks: the store's when it has them (PostgreSQL: across every node), else the primary's for its workers, else this process's.
  const storeLocks = pop3Options?.lockSession ? store.maildropLocks?.() : undefined;
  if (pop3Options && (storeLocks ?? pop3Locks)) pop3Options.locks = storeLocks ?? pop3Locks;
  if (pop3Options && serverName) pop3Options.serverName = serverName;
  const pop3 = await pop3Mod.startPop3IfConfigured(store, auth, pop3Options).catch(async (err: unknown) => {
    await lmtp?.close().catch(() => {});
    await server.close().catch(() => {});
    throw err;
  });
  const addresses: Addresses = {
    imap: server.addresses.imap,
    imaps: server.addresses.imaps,
    pop3: pop3Mod.pop3Banner(pop3),
    lmtp: lmtp?.addresses.tcp ?? [],
    lmtpSocket: lmtp?.addresses.socket ?? null,
  };
  const running: Running[] = [...(pop3 ? [pop3] : []), ...(lmtp ? [lmtp] : []), server];
  return { addresses, running, server };
}

function banner(config: QuireConfig, tls: TlsMaterial, a: Addresses, firstUser: FirstUser | null, workers: number, admin: { host: string; port: number } | null): string {
  const out: string[] = ['', 'Quire is running.'];
  for (const x of a.imap) out.push(`  IMAP (STARTTLS):   ${formatAddr(x)}`);
  for (const x of a.imaps) out.push(`  IMAPS (TLS):       ${formatAddr(x)}`);
  for (const x of a.lmtp) out.push(`  LMTP:              ${formatAddr(x)}`);
  if (a.lmtpSocket) out.push(`  LMTP socket:       ${a.lmtpSocket}`);
  out.push(...a.pop3);
  if (admin) out.push(`  admin (HTTP):      http://${formatAddr(admin)}/metrics, /healthz, /readyz`);
  out.push(`  data directory:    ${config.dataDir}`);
  if (workers > 1) out.push(`  workers:           ${workers}`);
  if (tls.selfSigned) {
    out.push(`  TLS certificate:   self-signed (${tls.certPath})`);
    out.push(`  SHA-256:           ${tls.fingerprint256}`);
    out.push('  Your mail client will warn about the certificate; accept it only if the fingerprint matches.');
  } else {
    out.push(`  TLS certificate:   ${tls.certPath} (SHA-256 ${tls.fingerprint256})`);
  }
  if (config.plaintextAuth !== 'never') out.push(`  Login without TLS: ${config.plaintextAuth === 'loopback' ? 'allowed from loopback only' : 'allowed everywhere (!)'}`);
  if (firstUser) {
    out.push('');
    out.push(`First start: created user "${firstUser.name}" with password:`);
    out.push(`  ${firstUser.password}`);
    out.push(`It is also in ${firstUser.file} (mode 0600) until the first login or a password change.`);
    out.push(`Change it with: ${quireCommand()} user passwd ${firstUser.name}${dataFlag(config.dataDir)}`);
  }
  out.push('');
  return out.join('\n') + '\n';
}

/** Installs SIGTERM/SIGINT (→ `stop`, a second one exits at once) and SIGHUP (→ `hup`). */
function onSignals(log: LevelLogger, stop: (signal: string) => Promise<number>, hup: () => void, drainMs = 0): void {
  let closing = false;
  const shutdown = (signal: string): void => {
    if (closing) {
      log.warn('second signal, exiting immediately', { signal });
      process.exit(1);
    }
    closing = true;
    log.info('shutting down', { signal });
    const timer = setTimeout(() => {
      log.error('shutdown timed out, exiting', { timeoutMs: SHUTDOWN_TIMEOUT_MS });
      process.exit(1);
    }, SHUTDOWN_TIMEOUT_MS + drainMs);
    timer.unref();
    void stop(signal).then((code) => {
      log.info('stopped');
      process.exit(code);
    });
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGHUP', () => {
    if (closing) return;
    log.info('reloading', { signal: 'SIGHUP' });
    hup();
  });
}

/** Closes the listeners (draining sessions), then the store: sessions may still be writing while the servers drain. */
async function closeAll(running: Running[], store: MailStore, log: LevelLogger): Promise<number> {
  let code = 0;
  for (const r of running) {
    try {
      await r.close();
    } catch (err) {
      code = 1;
      log.error('error while closing the server', { err });
    }
  }
  try {
    await store.close();
  } catch (err) {
    code = 1;
    log.error('error while closing the store', { err });
  }
  return code;
}

// ---- one process

async function runSingle(flags: Record<string, unknown>, config: QuireConfig, log: LevelLogger, tls: TlsMaterial, releaseLock: () => void): Promise<void> {
  // Store writes timed at this boundary for /metrics (ops).
  const store = instrumentStore(await openStore(config));
  let started: Awaited<ReturnType<typeof startListeners>>;
  try {
    store.startBackgroundWork?.((err) => log.warn('full-text indexing failed', { err: String(err) }));
    started = await startListeners(flags, config, store, tls, log);
  } catch (err) {
    await store.close().catch(() => {});
    throw err;
  }
  let ready = false;
  let ops: ServeOps;
  let firstUser: FirstUser | null;
  try {
    ops = await startServeOps({ config, log, servers: [started.server], store, tlsFiles: [tls.certPath, tls.keyPath], ready: () => ready, signals: false });
    firstUser = await ensureFirstUser(config, store, log);
    if (firstUser) watchFirstLogin(config.dataDir, firstUser.name, log);
  } catch (err) {
    await closeAll(started.running, store, log);
    throw err;
  }
  ready = true;
  const stop = async (): Promise<number> => {
    // Draining: /readyz answers 503 from now on, while the listeners still serve for shutdownDrainMs (the
    // balancer's health check notices and sends new sessions elsewhere) and then while the sessions finish;
    // the admin listener closes last.
    ready = false;
    if (config.shutdownDrainMs > 0) {
      log.info('draining: /readyz is 503; closing the listeners after the drain delay', { drainMs: config.shutdownDrainMs });
      await new Promise((r) => setTimeout(r, config.shutdownDrainMs));
    }
    const code = await closeAll(started.running, store, log);
    await ops.close().catch((err: unknown) => log.error('error while closing the admin listeners', { err }));
    releaseLock();
    return code;
  };
  onSignals(log, stop, () => void ops.reload('SIGHUP'), config.shutdownDrainMs);
  // The banner last: whoever waits for it may signal us at once, and the handlers are in place.
  process.stdout.write(banner(config, tls, started.addresses, firstUser, 1, ops.admin?.address ?? null));
}

// ---- the cluster's primary

type ToPrimary = { type: 'serve:ready'; addresses: Addresses } | { type: 'serve:failed'; message: string };

async function runPrimary(config: QuireConfig, log: LevelLogger, tls: TlsMaterial, n: number, releaseLock: () => void): Promise<void> {
  const { LocalWriteGate } = await import('../store/sqlite/index.js');
  const gate = new LocalWriteGate();
  // The primary's store: schema migration and the first user happen once, here; it runs the indexing thread.
  const store = await openStore(config, { writeGate: gate, followOthers: false });
  try {
    store.startBackgroundWork?.((err) => log.warn('full-text indexing failed', { err: String(err) }), { search: false });
  } catch (err) {
    await store.close().catch(() => {});
    throw err;
  }
  const hub = new ClusterHub(gate, (hint: ChangeHint) => store.wake(hint));
  // The caps that must hold across workers (per address before login, per user): counted here (src/server/admission.ts).
  const admission = new AdmissionHub();
  // POP3 maildrop locks (RFC 1939 §8) of every worker's sessions: held here (src/pop3/lock.ts).
  const pop3Locks = new Pop3LockHub();
  let stopping = false;
  const slots = new Map<number, { worker: Worker; crashes: number; startedAt: number }>();

  let onReady: ((a: Addresses) => void) | null = null;
  let onFailed: ((e: Error) => void) | null = null;
  const ready = new Promise<Addresses[]>((resolve, reject) => {
    const got: Addresses[] = [];
    onReady = (a) => {
      got.push(a);
      if (got.length === n) resolve(got);
    };
    onFailed = reject;
  });
  let listening = false;

  const fork = (slot: number, crashes: number): void => {
    const worker = cluster.fork({ [WORKER_ENV]: String(slot) });
    slots.set(slot, { worker, crashes, startedAt: Date.now() });
    const busHandler = hub.attach(worker);
    const admissionHandler = admission.attach(worker);
    const lockHandler = pop3Locks.attach(worker);
    worker.on('message', (m: unknown) => {
      busHandler(m);
      admissionHandler(m);
      lockHandler(m);
      const msg = m as ToPrimary;
      if (msg?.type === 'serve:ready') onReady?.(msg.addresses);
      else if (msg?.type === 'serve:failed' && !listening) onFailed?.(new Error(msg.message));
    });
    worker.on('exit', (code, signal) => {
      hub.detach(worker.id);
      admission.detach(worker.id);
      pop3Locks.detach(worker.id);
      if (stopping) return;
      const s = slots.get(slot);
      if (s?.worker !== worker) return;
      if (!listening) {
        onFailed?.(new Error(`worker ${slot} exited during start (${signal ?? `code ${code}`})`));
        return;
      }
      const stable = Date.now() - s.startedAt >= RESTART_STABLE_MS;
      const next = stable ? 0 : s.crashes + 1;
      const delay = Math.min(RESTART_MAX_MS, RESTART_FIRST_MS * 2 ** next);
      log.error('worker died, restarting', { worker: slot, pid: worker.process.pid, code, signal, restartInMs: delay });
      setTimeout(() => {
        if (!stopping) fork(slot, next);
      }, delay).unref();
    });
  };

  for (let slot = 1; slot <= n; slot++) fork(slot, 0);
  const timer = setTimeout(() => onFailed?.(new Error(`workers did not start within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
  let addresses: Addresses[];
  try {
    addresses = await ready;
  } catch (err) {
    stopping = true;
    for (const s of slots.values()) s.worker.process.kill('SIGKILL');
    await store.close().catch(() => {});
    throw err;
  } finally {
    clearTimeout(timer);
  }
  listening = true;
  let firstUser: FirstUser | null = null;
  let ops: Awaited<ReturnType<typeof startPrimaryOps>>;
  try {
    // The first user once every worker listens (ops); each worker then watches for its first login.
    firstUser = await ensureFirstUser(config, store, log);
    if (firstUser) for (const { worker } of slots.values()) if (worker.isConnected()) worker.send({ type: 'serve:first-user', name: firstUser.name });
    // The admin listener (merged metrics of every worker) and the control socket live here.
    ops = await startPrimaryOps(config, log, () => listening && !stopping, { signals: false, storeCheck: () => store.countUsers() });
  } catch (err) {
    stopping = true;
    for (const s of slots.values()) s.worker.process.kill('SIGKILL');
    await store.close().catch(() => {});
    throw err;
  }

  const stop = async (): Promise<number> => {
    stopping = true;
    // /readyz (here, in the primary) is 503 from now on; the workers keep serving for the drain delay.
    if (config.shutdownDrainMs > 0) await new Promise((r) => setTimeout(r, config.shutdownDrainMs));
    let code = 0;
    await Promise.all(
      [...slots.values()].map(
        ({ worker }) =>
          new Promise<void>((resolve) => {
            if (worker.isDead()) return resolve();
            worker.once('exit', (c) => {
              if (c !== 0) code = 1;
              resolve();
            });
            if (worker.isConnected()) worker.send({ type: 'serve:stop' });
            else worker.process.kill('SIGTERM');
          }),
      ),
    );
    try {
      await ops.close();
      await store.close();
    } catch (err) {
      code = 1;
      log.error('error while closing the store', { err });
    }
    releaseLock();
    return code;
  };
  const hup = (): void => {
    for (const { worker } of slots.values()) if (worker.isConnected()) worker.send({ type: 'reload' });
  };
  onSignals(log, stop, hup, config.shutdownDrainMs);
  process.stdout.write(banner(config, tls, addresses[0]!, firstUser, n, ops.admin?.address ?? null));
}

// ---- a worker

async function runWorker(flags: Record<string, unknown>, ctx: ServeContext, slot: number): Promise<void> {
  const config = ctx.configure(flags, undefined);
  const log = serveLogger(config).child({ worker: slot });
  // Signals are the primary's: a terminal's ^C reaches the whole process group, the primary then tells us.
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => {});
  process.on('SIGHUP', () => {});
  const fail = (err: unknown): void => {
    // The primary reports this text: a listen error keeps its address and reason (the error object does not cross IPC).
    const message = listenErrorMessage(err) ?? (err instanceof Error ? err.message : String(err));
    log.error('worker failed to start', { err: message });
    if (process.send) process.send({ type: 'serve:failed', message }, () => process.exit(1));
    else process.exit(1);
  };
  // Bus messages of one piece of work leave in one IPC message (cluster.ts BusBatcher).
  const channel = batchedChannel(process as unknown as ConstructorParameters<typeof ClusterChangeBus>[0]);
  const bus = new ClusterChangeBus(channel);
  const gate: WriteGate = new ClusterWriteGate(channel);
  let store: Awaited<ReturnType<typeof openStore>>;
  try {
    const tls = await loadOrCreateTls(config, log);
    store = instrumentStore(await openStore(config, { writeGate: gate, onCommit: (hint) => bus.publish(hint) }));
    bus.subscribe((hint) => store.wake(hint));
    store.startBackgroundWork?.((err) => log.warn('search thread failed', { err: String(err) }), { indexer: false });
    // The connection cap is the whole server's: each worker takes its share (connections arrive round-robin).
    // The LMTP Unix socket is one file: worker 1 alone listens on it (TCP listeners are shared by all).
    const share = {
      ...config,
      limits: { ...config.limits, maxConnections: Math.ceil(config.limits.maxConnections / Math.max(1, workerCount(config))) },
      lmtp: { ...config.lmtp, socket: slot === 1 ? config.lmtp.socket : null },
    };
    const name = process.env.QUIRE_DEBUG_WORKER_GREETING === '1' ? `${config.serverName} worker ${slot} pid ${process.pid}` : undefined;
    // Per-address and per-user caps across workers: asked of the primary's AdmissionHub.
    const counts = (limits: () => AdmissionLimits) => new ClusterAdmission(process as unknown as AdmissionChannel, limits);
    const started = await startListeners(flags, share, store, tls, log, name, counts, new ClusterMaildropLocks(process as unknown as LockChannel)).catch(async (err: unknown) => {
      await store.close().catch(() => {});
      throw err;
    });
    let closing = false;
    // Metrics, heartbeats, certificate watching and control requests of this worker (ops); reload is delivered below.
    const ops = await startServeOps({ config: share, log, servers: [started.server], store, tlsFiles: [tls.certPath, tls.keyPath], ready: () => !closing, signals: false }).catch(
      async (err: unknown) => {
        await closeAll(started.running, store, log);
        throw err;
      },
    );
    process.on('message', (m: unknown) => {
      const msg = m as { type?: unknown; name?: unknown };
      const type = msg?.type;
      if (type === 'reload') void ops.reload('primary');
      else if (type === 'serve:first-user' && typeof msg.name === 'string') watchFirstLogin(config.dataDir, msg.name, log);
      else if (type === 'serve:stop' && !closing) {
        closing = true;
        void ops.close().catch(() => undefined).then(() => closeAll(started.running, store, log)).then(async (code) => {
          await bus.close();
          process.exit(code);
        });
      }
    });
    // Without the primary there is no gate nor bus: stop at once (the primary restarts nothing then either).
    process.on('disconnect', () => {
      if (!closing) process.exit(1);
    });
    process.send?.({ type: 'serve:ready', addresses: started.addresses });
  } catch (err) {
    fail(err);
  }
}

function workerCount(config: QuireConfig): number {
  return config.workers === 0 ? availableParallelism() : config.workers;
}
