// Several `quire serve --store postgres://...` nodes (separate processes, each
// its own data directory) on one PostgreSQL schema, and a real HAProxy in
// front of them (send-proxy-v2, roundrobin, HTTP health check of each node's
// /readyz). Each node has its own server name (QUIRE_SERVER_NAME), which its
// IMAP greeting shows, so a test can tell where the balancer put a
// connection, and kill that node with SIGKILL.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { RawClient } from '../helpers/imap.js';
import { cleanEnv } from '../obs/helpers.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = path.join(ROOT, 'src/cli/main.ts');
/** Generous: three nodes start at once on a shared machine. */
const START_MS = 45_000;

export interface PgNode {
  /** Its server name (in the greeting). */
  name: string;
  child: ChildProcess;
  pid: number;
  imapPort: number;
  adminPort: number;
  exited: Promise<number | null>;
  out(): string;
}

/** One node (node itself, not a tsx wrapper, so that the pid and signals are the server's); `args` come last, so they may override the defaults here. */
export function startPgNode(name: string, storeUrl: string, data: string, args: string[] = []): Promise<PgNode> {
  const child = spawn(
    process.execPath,
    [
      '--import', 'tsx', MAIN, 'serve', '--store', storeUrl, '--data', data, '--workers', '1', // callers' args may override (the last value counts)
      '--imap-port', '0', '--imaps-port', 'off', '--lmtp-port', 'off', '--pop3-port', 'off', '--pop3s-port', 'off',
      '--admin-port', '0', '--log-level', 'warn', ...args,
    ],
    { cwd: ROOT, env: cleanEnv({ QUIRE_SERVER_NAME: name }), stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`node did not start:\n${out}`)), START_MS);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`node exited with ${code}:\n${out}`));
    });
    child.stdout!.on('data', () => {
      if (!/Quire is running\.[\s\S]*\n\n$/.test(out)) return;
      clearTimeout(timer);
      const imap = /IMAP \(STARTTLS\): +127\.0\.0\.1:(\d+)/.exec(out);
      const admin = /admin \(HTTP\): +http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (!imap || !admin) return reject(new Error(`no ports in the banner:\n${out}`));
      resolve({ name, child, pid: child.pid!, imapPort: Number(imap[1]), adminPort: Number(admin[1]), exited, out: () => out });
    });
  });
}

export interface Balancer {
  child: ChildProcess;
  port: number;
  /** "backend/server" -> status (UP, DOWN, ...) from the stats socket. */
  status(): Promise<Map<string, string>>;
  out(): string;
}

/**
 * HAProxy in TCP mode on 127.0.0.1:`port`: roundrobin over the nodes with
 * send-proxy-v2, each checked by GET /readyz on its admin listener; a
 * connection refused by a dead node is redispatched to another.
 */
export async function startBalancer(dir: string, port: number, nodes: PgNode[]): Promise<Balancer> {
  const sock = path.join(dir, 'haproxy.sock');
  const cfg = path.join(dir, 'haproxy.cfg');
  writeFileSync(
    cfg,
    [
      `global\n  stats socket ${sock} mode 600 level admin\n`,
      'defaults\n  mode tcp\n  timeout connect 1s\n  timeout client 60s\n  timeout server 60s\n  retries 3\n  option redispatch\n',
      `frontend imap\n  bind 127.0.0.1:${port}\n  default_backend quire\n`,
      'backend quire\n  balance roundrobin\n  option httpchk GET /readyz\n  http-check expect status 200\n' +
        nodes.map((n, i) => `  server n${i + 1} 127.0.0.1:${n.imapPort} send-proxy-v2 check port ${n.adminPort} inter 200ms rise 1 fall 1\n`).join(''),
    ].join('\n'),
  );
  const child = spawn('haproxy', ['-f', cfg, '-db'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const status = () =>
    new Promise<Map<string, string>>((resolve, reject) => {
      const c = net.connect(sock, () => c.write('show stat\n'));
      let text = '';
      c.on('data', (d) => (text += d));
      c.on('error', reject);
      c.on('end', () => {
        const [head, ...rows] = text.trim().split('\n');
        const cols = head!.replace(/^# /, '').split(',');
        const at = cols.indexOf('status');
        const m = new Map<string, string>();
        for (const r of rows) {
          const f = r.split(',');
          m.set(`${f[0]}/${f[1]}`, f[at]!);
        }
        resolve(m);
      });
    });
  const b: Balancer = { child, port, status, out: () => out };
  // Ready once every node is UP (the health checks have run).
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`haproxy exited: ${out}`);
    const s = await status().catch(() => new Map<string, string>());
    if (nodes.every((_, i) => s.get(`quire/n${i + 1}`) === 'UP')) return b;
    if (Date.now() > deadline) throw new Error(`nodes not UP behind haproxy: ${JSON.stringify([...s])}\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface NodeClient extends RawClient {
  /** The name of the node the balancer chose. */
  node: string;
}

/** A connection through the balancer (logged in) that landed on a node `want` accepts; others are closed. */
export async function connectVia(port: number, login: [string, string], want: (node: string) => boolean = () => true): Promise<NodeClient> {
  for (let i = 0; i < 30; i++) {
    const c = await RawClient.connect(port);
    const node = /\] (\S+) ready$/.exec(c.greeting)?.[1] ?? '';
    if (node && want(node)) {
      const r = await c.command(`LOGIN ${login[0]} ${login[1]}`);
      if (!/^\S+ OK/.test(r.tagged)) throw new Error(`login failed: ${r.tagged}`);
      return Object.assign(c, { node });
    }
    await c.close();
  }
  throw new Error('the balancer never chose a wanted node');
}
