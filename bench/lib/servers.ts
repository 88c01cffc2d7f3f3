// Starting, measuring and stopping the two servers under test.
//
// Quire runs from a private build (tsc into bench/.build, rebuilt when src/
// changes) with a preload that reports the event-loop delay on SIGUSR2.
// Dovecot runs as a private dovecot-peer instance (own directory and ports),
// so the shared peer that tests use as an oracle is never disturbed.
import { spawn, spawnSync, execFileSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync, promises as fs } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const ROOT = path.resolve(BENCH_DIR, '..');
export const DOVECOT_PEER =
  process.env.DOVECOT_PEER_BIN ??
  // shared/ beside the repository; never a machine path (bench says so and stops when it is missing)
  path.resolve(ROOT, '../shared/peers/dovecot/dovecot-peer');
export const HOST = '127.0.0.1';

export interface Server {
  name: 'quire' | 'dovecot';
  port: number;
  /** Pids whose PSS counts as the server's memory. */
  pids(): number[];
  /** Runs a full GC in the server (Quire only) before a memory measurement. */
  gc?(): Promise<void>;
  /** Event-loop delay since the last call (Quire only), in ms. */
  eventLoopDelay?(): Promise<EldStats | null>;
  stop(): Promise<void>;
}

export interface EldStats {
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

function srcHash(dir: string): string {
  const h = createHash('sha1');
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts')) h.update(p).update(readFileSync(p));
    }
  };
  walk(dir);
  return h.digest('hex');
}

/** Compiles src/ into bench/.build/quire unless the same sources were compiled before. */
export function buildQuire(log: (s: string) => void): string {
  const out = path.join(BENCH_DIR, '.build', 'quire');
  const hash = srcHash(path.join(ROOT, 'src'));
  const stamp = path.join(out, '.src-hash');
  const main = path.join(out, 'cli', 'main.js');
  if (existsSync(main) && existsSync(stamp) && readFileSync(stamp, 'utf8') === hash) return main;
  log('compiling Quire (tsc) into bench/.build/quire');
  const r = spawnSync(path.join(ROOT, 'node_modules', '.bin', 'tsc'), ['-p', path.join(ROOT, 'tsconfig.json'), '--outDir', out], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  // tsc emits JavaScript even when others' work in progress has type errors.
  if (!existsSync(main)) throw new Error(`tsc produced no ${main}:\n${r.stdout}${r.stderr}`);
  if (r.status !== 0) log(`note: tsc reported type errors in src/ (work in progress elsewhere); using the emitted JavaScript`);
  writeFileSync(stamp, hash);
  return main;
}

export function waitPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const s = net.connect({ host: HOST, port });
      s.once('data', () => {
        s.destroy();
        resolve();
      });
      s.once('error', () => {
        s.destroy();
        if (Date.now() > deadline) reject(new Error(`port ${port} did not open within ${timeoutMs} ms`));
        else setTimeout(attempt, 100);
      });
    };
    attempt();
  });
}

export interface QuireStartOptions {
  dataDir: string;
  port: number;
  cpuProfDir?: string;
  /** More `quire serve` arguments (e.g. `--workers N`). */
  serveArgs?: string[];
  /** `quire serve --workers N` (undefined: Quire's default, one per core). */
  workers?: number;
  log: (s: string) => void;
  /** Each log line Quire writes (stderr; e.g. with `--log-level info --log-format json` in serveArgs). */
  onLog?: (line: string) => void;
}

/** Runs `quire user add` (password on stdin) unless the user exists. */
export function quireUserAdd(main: string, dataDir: string, user: string, pass: string): void {
  // The bench's users share Dovecot's short test password ("pass"), below serve's default minimum length.
  const env = { ...process.env, QUIRE_MIN_PASSWORD_LENGTH: '1' };
  const r = spawnSync(process.execPath, [main, 'user', 'add', user, '--password-stdin', '--data', dataDir], { input: pass + '\n', encoding: 'utf8', env });
  if (r.status !== 0 && !/exist/i.test(r.stderr + r.stdout)) throw new Error(`quire user add ${user}: ${r.stderr}${r.stdout}`);
}

export function quireUsers(main: string, dataDir: string): Set<string> {
  const r = spawnSync(process.execPath, [main, 'user', 'list', '--data', dataDir], { encoding: 'utf8' });
  return new Set(r.stdout.split('\n').filter(Boolean).map((l) => l.split('\t')[0]!));
}

/** True if something already accepts connections on `port`. */
export function portBusy(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: HOST, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Children to kill if the benchmark dies (a leftover server would answer the next run). */
const running = new Set<ChildProcess>();
export function killLeftovers(): void {
  for (const c of running) c.kill('SIGKILL');
}
process.once('exit', killLeftovers);

export async function startQuire(main: string, o: QuireStartOptions): Promise<Server> {
  if (await portBusy(o.port)) throw new Error(`port ${o.port} is already in use (a leftover server?); choose another with --port-base`);
  const preload = path.join(BENCH_DIR, 'lib', 'eld-preload.mjs');
  const nodeArgs = ['--expose-gc', '--import', preload];
  if (o.cpuProfDir) nodeArgs.push('--cpu-prof', '--cpu-prof-dir', o.cpuProfDir);
  // POP3 (the pop3 scenario) on PORT - 33, where dovecot-peer puts its own; no POP3S; no LMTP (its fixed default port may be taken).
  const args = [...nodeArgs, main, 'serve', '--data', o.dataDir, '--imap-port', String(o.port), '--imaps-port', 'off', '--pop3-port', String(o.port - 33), '--pop3s-port', 'off', '--lmtp-port', 'off', ...(o.serveArgs ?? [])];
  if (o.workers !== undefined) args.push('--workers', String(o.workers));
  // Raise the soft fd limit to the hard one for 10k connections.
  const child: ChildProcess = spawn('bash', ['-c', 'ulimit -n "$(ulimit -Hn)"; exec "$0" "$@"', process.execPath, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      BENCH_ELD: '1',
      QUIRE_LOG_LEVEL: 'warn',
      QUIRE_MAX_CONNECTIONS: '30000',
      QUIRE_MAX_CONNECTIONS_PER_USER: '30000',
      // Every benchmark connection comes from 127.0.0.1, most as few users: lift the per-address caps too.
      QUIRE_MAX_CONNECTIONS_PER_USER_ADDRESS: '30000',
      QUIRE_MAX_PRE_AUTH_CONNECTIONS: '30000',
      QUIRE_MAX_PRE_AUTH_CONNECTIONS_PER_ADDRESS: '30000',
    },
  });
  let stderr = '';
  const eldWaiters: ((s: EldStats | null) => void)[] = [];
  const gcWaiters: (() => void)[] = [];
  child.stderr!.setEncoding('utf8');
  let partial = '';
  child.stderr!.on('data', (d: string) => {
    partial += d;
    let nl: number;
    while ((nl = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      if (line.startsWith('BENCH_ELD ')) eldWaiters.shift()?.(JSON.parse(line.slice(10)) as EldStats);
      else if (line.startsWith('BENCH_GC ')) gcWaiters.shift()?.();
      else {
        o.onLog?.(line);
        if (stderr.length < 20_000) stderr += line + '\n';
      }
    }
  });
  child.stdout!.resume();
  let exited = false;
  running.add(child);
  const exitP = new Promise<void>((r) =>
    child.once('exit', () => {
      exited = true;
      running.delete(child);
      r();
    }),
  );
  try {
    await Promise.race([
      waitPort(o.port, 60_000),
      exitP.then(() => {
        throw new Error(`quire exited at start:\n${stderr}`);
      }),
    ]);
  } catch (e) {
    child.kill('SIGKILL');
    throw e;
  }
  const pid = child.pid!;
  return {
    name: 'quire',
    port: o.port,
    pids: () => [pid, ...descendants(pid)],
    // With workers (node:cluster) every process answers: the primary and each worker.
    async gc() {
      if (exited) return;
      const all = [pid, ...descendants(pid)];
      const p = Promise.all(all.map(() => new Promise<void>((r) => {
        gcWaiters.push(r);
        setTimeout(r, 10_000);
      })));
      for (const x of all) process.kill(x, 'SIGWINCH');
      await p;
    },
    async eventLoopDelay() {
      if (exited) return null;
      const all = [pid, ...descendants(pid)];
      const p = Promise.all(all.map(() => new Promise<EldStats | null>((r) => {
        eldWaiters.push(r);
        setTimeout(() => r(null), 5000);
      })));
      for (const x of all) process.kill(x, 'SIGUSR2');
      const got = (await p).filter((s): s is EldStats => s !== null);
      if (got.length === 0) return null;
      // The worst event loop of the server's processes.
      return { p50: Math.max(...got.map((s) => s.p50)), p99: Math.max(...got.map((s) => s.p99)), max: Math.max(...got.map((s) => s.max)), mean: Math.max(...got.map((s) => s.mean)) };
    },
    async stop() {
      if (exited) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exitP;
      clearTimeout(t);
    },
  };
}

// ---- Dovecot (a private dovecot-peer instance)

export interface DovecotPeer {
  dir: string;
  port: number;
  lmtp: number;
  conf: string;
  env: NodeJS.ProcessEnv;
}

export function dovecotAvailable(): string | null {
  if (!existsSync(DOVECOT_PEER)) return `${DOVECOT_PEER} not found`;
  const r = spawnSync('bash', ['-c', 'command -v dovecot && command -v doveadm'], { encoding: 'utf8' });
  if (r.status !== 0) return 'dovecot/doveadm are not installed (run dovecot-peer start once to install them)';
  return null;
}

export function dovecotVersion(): string {
  try {
    return execFileSync('dovecot', ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

export function dovecotPeer(dir: string, port: number, lmtp: number): DovecotPeer {
  return {
    dir,
    port,
    lmtp,
    conf: path.join(dir, 'dovecot.conf'),
    env: { ...process.env, DOVECOT_PEER_DIR: dir, DOVECOT_PEER_PORT: String(port), DOVECOT_PEER_LMTP: String(lmtp) },
  };
}

export function peerCmd(p: DovecotPeer, ...args: string[]): string {
  const r = spawnSync('bash', [DOVECOT_PEER, ...args], { env: p.env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`dovecot-peer ${args.join(' ')}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

export function doveadm(p: DovecotPeer, ...args: string[]): string {
  return execFileSync('doveadm', ['-c', p.conf, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
}

export function dovecotUsers(p: DovecotPeer): Set<string> {
  const f = path.join(p.dir, 'users');
  if (!existsSync(f)) return new Set();
  return new Set(readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => l.split(':')[0]!));
}

const DOVECOT_OVERRIDE_MARK = '# quire-bench override';
const DOVECOT_OVERRIDE = `
${DOVECOT_OVERRIDE_MARK}: every imap process keeps a connection to stats (default client_limit 1000)
service stats {
  client_limit = 30000
}
`;

/** fs.inotify.max_user_instances: each Dovecot imap process in IDLE needs one inotify instance. */
export function inotifyInstances(): number {
  try {
    return Number(readFileSync('/proc/sys/fs/inotify/max_user_instances', 'utf8').trim());
  } catch {
    return 0;
  }
}

/** Raises fs.inotify.max_user_instances (root only); returns the old value. */
export function raiseInotifyInstances(n: number): number {
  const old = inotifyInstances();
  if (old < n) writeFileSync('/proc/sys/fs/inotify/max_user_instances', String(n));
  return old;
}

export async function startDovecot(p: DovecotPeer): Promise<Server> {
  const pidFile = path.join(p.dir, 'run', 'master.pid');
  const ours = existsSync(pidFile) && spawnSync('kill', ['-0', readFileSync(pidFile, 'utf8').trim()]).status === 0;
  if (!ours && (await portBusy(p.port))) throw new Error(`port ${p.port} is already in use by another program; choose another with --port-base`);
  peerCmd(p, 'start');
  await waitPort(p.port, 30_000);
  // dovecot-peer rewrites its config at each start; add what thousands of
  // imap processes need (each one connects to the stats service) and reload.
  const conf = readFileSync(p.conf, 'utf8');
  if (!conf.includes(DOVECOT_OVERRIDE_MARK)) {
    writeFileSync(p.conf, conf + DOVECOT_OVERRIDE);
    doveadm(p, 'reload');
    await new Promise((r) => setTimeout(r, 1000));
    await waitPort(p.port, 30_000);
  }
  const masterPid = () => Number(readFileSync(path.join(p.dir, 'run', 'master.pid'), 'utf8').trim());
  return {
    name: 'dovecot',
    port: p.port,
    pids: () => {
      const m = masterPid();
      return [m, ...descendants(m)];
    },
    async stop() {
      peerCmd(p, 'stop');
    },
  };
}

// ---- process memory

/** All descendants of `pid` (children, grandchildren, ...), from /proc. */
export function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid);
      if (list) list.push(Number(e));
      else children.set(ppid, [Number(e)]);
    } catch {
      // exited meanwhile
    }
  }
  const out: number[] = [];
  const stack = [pid];
  while (stack.length) {
    for (const c of children.get(stack.pop()!) ?? []) {
      out.push(c);
      stack.push(c);
    }
  }
  return out;
}

/** Sum of PSS (kB) over `pids`, from /proc/PID/smaps_rollup. */
export function pssKb(pids: number[]): number {
  let total = 0;
  for (const pid of pids) {
    try {
      const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
      if (m) total += Number(m[1]);
    } catch {
      // exited meanwhile
    }
  }
  return total;
}

export function machineInfo(): { nproc: number; memGiB: number; cpu: string; node: string; kernel: string } {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const cpu = /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? 'unknown';
  const mem = Number(/MemTotal:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0);
  let kernel = '';
  try {
    kernel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  } catch {
    // not Linux
  }
  return { nproc: (cpuinfo.match(/^processor\s*:/gm) ?? []).length, memGiB: Math.round(mem / 1048576), cpu, node: process.version, kernel };
}

export function memAvailableKb(): number {
  return Number(/MemAvailable:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0);
}

export async function dirSizeBytes(dir: string): Promise<number> {
  let total = 0;
  const walk = async (d: string) => {
    for (const e of await fs.readdir(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) total += statSync(p).size;
    }
  };
  if (existsSync(dir)) await walk(dir);
  return total;
}
