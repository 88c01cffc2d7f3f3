// A real `quire serve` child for the ops tests: stderr (the log) goes to a
// real file, the banner is parsed for the ports and the first user's password.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface Serve {
  child: ChildProcess;
  banner: string;
  imapPort: number;
  imapsPort: number;
  lmtpPort: number;
  adminPort: number | null;
  user: string | null;
  password: string | null;
  exited: Promise<number | null>;
  log(): string;
}

/** The environment without the caller's QUIRE_* settings, plus `extra`. */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('QUIRE_') && v !== undefined) env[k] = v;
  return { ...env, QUIRE_AUTH_FAILURE_DELAY: '10', QUIRE_AUTH_MAX_FAILURE_DELAY: '20', ...extra };
}

/** How long startServe waits for the banner of `quire serve`. */
export const SERVE_START_MS = 90_000;

export function startServe(data: string, logFile: string, args: string[] = [], env: Record<string, string> = {}): Promise<Serve> {
  const fd = openSync(logFile, 'a');
  // node itself (not the tsx wrapper), so that signals and the pid are the server's.
  // One process unless the test asks for workers (the last --workers wins): cluster.test.ts covers several.
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'serve', '--data', data, '--pop3-port', 'off', '--pop3s-port', 'off', '--imap-port', '0', '--imaps-port', '0', '--lmtp-port', '0', '--admin-port', '0', '--workers', '1', ...args],
    { cwd: ROOT, env: cleanEnv(env), stdio: ['ignore', 'pipe', fd] },
  );
  closeSync(fd);
  let stdout = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const log = () => readFileSync(logFile, 'utf8');
  return new Promise((resolve, reject) => {
    // Waits for the banner; how long a start takes is not what is checked: the first start generates a
    // certificate and tsx compiles the sources, which takes far longer than usual on a loaded machine.
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`serve did not start:\n${stdout}\n${log()}`));
    }, SERVE_START_MS);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited with ${code}:\n${stdout}\n${log()}`));
    });
    child.stdout!.on('data', () => {
      if (!/Quire is running\.[\s\S]*\n\n$/.test(stdout)) return;
      clearTimeout(timer);
      const num = (re: RegExp) => Number(re.exec(stdout)?.[1] ?? NaN);
      const admin = /admin \(HTTP\): +http:\/\/127\.0\.0\.1:(\d+)/.exec(stdout);
      const first = /created user "([^"]+)" with password:\n {2}(\S+)/.exec(stdout);
      resolve({
        child,
        banner: stdout,
        imapPort: num(/IMAP \(STARTTLS\): +127\.0\.0\.1:(\d+)/),
        imapsPort: num(/IMAPS \(TLS\): +127\.0\.0\.1:(\d+)/),
        lmtpPort: num(/LMTP: +127\.0\.0\.1:(\d+)/),
        adminPort: admin ? Number(admin[1]) : null,
        user: first?.[1] ?? null,
        password: first?.[2] ?? null,
        exited,
        log,
      });
    });
  });
}

export function httpGet(port: number, path: string): Promise<{ status: number; body: string; type: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, type: String(res.headers['content-type'] ?? '') }));
      })
      .on('error', reject);
  });
}

/** The value of one sample in Prometheus text output, matched by name and all given labels. */
export function sample(metrics: string, name: string, labels: Record<string, string> = {}): number | null {
  let total: number | null = null;
  for (const line of metrics.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = new Map<string, string>();
    for (const kv of (m[3] ?? '').matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)) have.set(kv[1]!, kv[2]!);
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) total = (total ?? 0) + Number(m[4]);
  }
  return total;
}

/** Waits until `pred` holds (polling), or fails with `what`. */
export async function until(pred: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** True if a program is on PATH. */
export function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}
