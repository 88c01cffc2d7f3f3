// Interop harness: runs Quire the way the README does (`npm start`, i.e.
// `npm run build && node dist/cli/main.js serve`) as a child process on a
// private data directory and free ports, so that real third-party clients can
// talk to it over real sockets. Nothing here imports server code.
import { runProcess, type Run } from '../helpers/process.js';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const INTEROP_DIR = fileURLToPath(new URL('./', import.meta.url));
const MAIN = join(ROOT, 'dist/cli/main.js');
const STAMP = join(ROOT, 'dist/.interop-build-stamp');

/** How long `quire serve` may take to print its banner and accept connections. */
const START_TIMEOUT_MS = 30_000;
/** How long a SIGTERM'd server may take to exit (the CLI itself gives up after 10 s). */
const STOP_TIMEOUT_MS = 15_000;
/** A build lock older than this is left over from a killed process. */
const STALE_LOCK_MS = 180_000;

export interface User {
  name: string;
  password: string;
}

// ---------------------------------------------------------------- build

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestMtime(p));
    else if (e.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

function needsBuild(): boolean {
  if (!existsSync(MAIN) || !existsSync(STAMP)) return true;
  const inputs = Math.max(newestMtime(join(ROOT, 'src')), statSync(join(ROOT, 'tsconfig.json')).mtimeMs, statSync(join(ROOT, 'package.json')).mtimeMs);
  return inputs > statSync(STAMP).mtimeMs;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

let built: Promise<void> | undefined;

/**
 * `npm run build` (tsc) when dist/ is missing or older than src/. Test files
 * run in parallel processes, so builds are serialised with a lock directory.
 */
export function ensureBuilt(): Promise<void> {
  built ??= (async () => {
    const lock = join(tmpdir(), `quire-interop-build-${createHash('sha256').update(ROOT).digest('hex').slice(0, 12)}.lock`);
    for (;;) {
      try {
        mkdirSync(lock);
        break;
      } catch {
        try {
          if (Date.now() - statSync(lock).mtimeMs > STALE_LOCK_MS) rmSync(lock, { recursive: true, force: true });
        } catch {
          /* released meanwhile */
        }
        await sleep(200);
      }
    }
    try {
      if (!needsBuild()) return;
      const started = Date.now();
      const r = spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: ROOT, encoding: 'utf8' });
      if (r.status !== 0) {
        const msg = `npm run build (tsc -p tsconfig.json) failed with ${r.status}:\n${r.stdout}${r.stderr}`;
        // `npm start` refuses to start on a type error, and so does CI. Locally,
        // while others edit src/, tsc still emits JavaScript: run that, loudly.
        if (process.env.CI || r.status !== 2 || !existsSync(MAIN)) throw new Error(msg);
        process.stderr.write(`WARNING: ${msg}\n`);
      }
      // Dated at the start of the build: a source edited during it is newer.
      writeFileSync(STAMP, new Date(started).toISOString() + '\n');
      utimesSync(STAMP, new Date(started), new Date(started));
    } finally {
      rmSync(lock, { recursive: true, force: true });
    }
  })();
  return built;
}

// ---------------------------------------------------------------- tools

/** Is `cmd` on PATH? */
export function hasTool(cmd: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    try {
      if (statSync(join(dir, cmd)).isFile()) return true;
    } catch {
      /* not here */
    }
  }
  return false;
}

/**
 * A test needs a client program. Absent: skip visibly, except under CI,
 * where a missing client is a broken CI image and must fail the test.
 */
export function requireTool(t: TestContext, cmd: string, pkg = cmd): boolean {
  if (hasTool(cmd)) return true;
  if (process.env.CI) throw new Error(`${cmd} is not installed (Debian package ${pkg}); CI must provide it`);
  t.skip(`${cmd} not installed (apt-get install ${pkg})`);
  return false;
}

// ---------------------------------------------------------------- server

function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('QUIRE_') && v !== undefined) env[k] = v;
  return env;
}

function run(args: string[], input?: string): Promise<Run> {
  return runProcess(process.execPath, [MAIN, ...args], { cwd: ROOT, env: cleanEnv(), stdin: input });
}

/**
 * Wait until `port` accepts a connection and, with `greeting`, until the
 * server's JavaScript answers on it with `* OK`. A kernel-level accept proves
 * nothing about the event loop; the greeting proves the startup code has run
 * to its end (including installing the SIGTERM handler, which `quire serve`
 * does after printing its banner).
 */
function waitForPort(port: number, deadline: number, greeting: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const s = connect(port, '127.0.0.1');
      let buf = '';
      const retry = () => {
        s.destroy();
        if (Date.now() > deadline) reject(new Error(`port ${port} does not accept connections${greeting ? ' with an IMAP greeting' : ''}`));
        else setTimeout(attempt, 50);
      };
      s.once('connect', () => {
        if (!greeting) {
          s.destroy();
          resolve();
        }
      });
      s.on('data', (d: Buffer) => {
        buf += d.toString('latin1');
        if (!buf.includes('\r\n')) return;
        s.destroy();
        if (buf.startsWith('* OK')) resolve();
        else reject(new Error(`unexpected greeting on port ${port}: ${JSON.stringify(buf)}`));
      });
      s.once('error', retry);
    };
    attempt();
  });
}

/** Port options of listeners the interop tests do not use; switched off when the CLI has them. */
const OTHER_LISTENERS = ['--lmtp-port', '--pop3-port', '--pop3s-port'];

let serveHelp: string[] | undefined;
/** The long options `quire serve --help` lists. */
function serveOptions(): string[] {
  if (!serveHelp) {
    const r = spawnSync(process.execPath, [MAIN, 'serve', '--help'], { cwd: ROOT, env: cleanEnv(), encoding: 'utf8' });
    serveHelp = [...new Set(r.stdout.match(/--[a-z][a-z0-9-]*/g) ?? [])];
  }
  return serveHelp;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of running) c.kill('SIGKILL');
});

export class QuireServer {
  readonly host = '127.0.0.1';
  imapPort = 0;
  imapsPort = 0;
  /** POP3 ports when started with { pop3: true } (0 otherwise). */
  pop3Port = 0;
  pop3sPort = 0;
  /** Start the POP3 listeners too (on free ports; kept across restarts). */
  pop3 = false;
  /** stdout + stderr of every start, for failure messages. */
  log = '';
  private child: ChildProcess | undefined;
  private exited: Promise<number | null> | undefined;

  constructor(
    readonly dataDir: string,
    readonly users: User[],
  ) {}

  /** The self-signed certificate the server generated (clients may trust it). */
  get certPath(): string {
    return join(this.dataDir, 'tls', 'cert.pem');
  }

  /** Start `node dist/cli/main.js serve`; on first start the ports are chosen by the OS (port 0). */
  async start(): Promise<void> {
    if (this.child) throw new Error('already running');
    const args = ['serve', '--data', this.dataDir, '--imap-port', String(this.imapPort), '--imaps-port', String(this.imapsPort), '--log-level', 'warn'];
    // Other listeners have fixed default ports that parallel test files would fight over.
    for (const opt of serveOptions()) if (OTHER_LISTENERS.includes(opt) && !(this.pop3 && opt.startsWith('--pop3'))) args.push(opt, 'off');
    if (this.pop3) args.push('--pop3-port', String(this.pop3Port), '--pop3s-port', String(this.pop3sPort));
    const child = spawn(process.execPath, [MAIN, ...args], { cwd: ROOT, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    running.add(child);
    this.log += `--- ${['quire', ...args].join(' ')}\n`;
    let stdout = '';
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
      this.log += d.toString();
    });
    child.stderr!.on('data', (d: Buffer) => (this.log += d.toString()));
    this.exited = new Promise((resolve) =>
      child.on('close', (code) => {
        running.delete(child);
        resolve(code);
      }),
    );
    const deadline = Date.now() + START_TIMEOUT_MS;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`quire serve did not start:\n${this.log}`)), START_TIMEOUT_MS);
      const check = () => {
        const imap = /IMAP \(STARTTLS\): +\S+:(\d+)/.exec(stdout);
        const imaps = /IMAPS \(TLS\): +\S+:(\d+)/.exec(stdout);
        if (imap && imaps && /Login without TLS|TLS certificate/.test(stdout)) {
          clearTimeout(timer);
          this.imapPort = Number(imap[1]);
          this.imapsPort = Number(imaps[1]);
          if (this.pop3) {
            this.pop3Port = Number(/POP3 \(STLS\): +\S+:(\d+)/.exec(stdout)?.[1] ?? 0);
            this.pop3sPort = Number(/POP3S \(TLS\): +\S+:(\d+)/.exec(stdout)?.[1] ?? 0);
          }
          resolve();
        }
      };
      child.stdout!.on('data', check);
      void this.exited!.then((code) => {
        clearTimeout(timer);
        reject(new Error(`quire serve exited with ${code}:\n${this.log}`));
      });
    });
    await waitForPort(this.imapPort, deadline, true);
    await waitForPort(this.imapsPort, deadline, false);
  }

  /** SIGTERM and wait for a clean exit (status 0). */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = undefined;
    child.kill('SIGTERM');
    const code = await Promise.race([this.exited!, sleep(STOP_TIMEOUT_MS).then(() => 'timeout' as const)]);
    if (code === 'timeout') {
      child.kill('SIGKILL');
      throw new Error(`quire serve did not stop within ${STOP_TIMEOUT_MS} ms:\n${this.log}`);
    }
    if (code !== 0) throw new Error(`quire serve exited with status ${code}:\n${this.log}`);
  }

  /** Stop, then start again on the same data directory and the same ports. */
  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** Stop (ignoring errors) and delete the data directory. */
  async dispose(): Promise<void> {
    try {
      await this.stop();
    } finally {
      rmSync(this.dataDir, { recursive: true, force: true });
    }
  }
}

/** Build if needed, create the users, start the server. */
export async function startQuire(users: User[], opts: { pop3?: boolean } = {}): Promise<QuireServer> {
  await ensureBuilt();
  const dataDir = mkdtempSync(join(tmpdir(), 'quire-interop-'));
  for (const u of users) {
    const r = await run(['user', 'add', u.name, '--password-stdin', '--data', dataDir], u.password + '\n');
    if (r.code !== 0) throw new Error(`quire user add ${u.name} failed (${r.code}):\n${r.stdout}${r.stderr}`);
  }
  const server = new QuireServer(dataDir, users);
  server.pop3 = !!opts.pop3;
  await server.start();
  return server;
}

// ---------------------------------------------------------------- clients

export interface ToolResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Run an external client with a timeout; never throws for a non-zero exit. */
export function runTool(cmd: string, args: string[], opts: { env?: Record<string, string>; cwd?: string; input?: string; timeoutMs?: number } = {}): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd ?? ROOT, env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      stderr += `\n[killed after ${opts.timeoutMs ?? 60_000} ms]`;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 60_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    // A child that exits without reading all its input (sh -c 'ulimit ...', a tool that ignores stdin) closes the
    // pipe first on a busy machine: EPIPE on its stdin is not the test's failure (its exit and output are checked).
    child.stdin.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE') reject(e);
    });
    child.stdin.end(opts.input ?? '');
  });
}

export function sha256(b: Uint8Array | string): string {
  return createHash('sha256').update(b).digest('hex');
}

/** A scratch directory removed by the caller. */
export function scratchDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `quire-${prefix}-`));
}
