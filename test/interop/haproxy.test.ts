// A real HAProxy 2.6 (Debian's `haproxy`) in front of a real `quire serve`
// with `--proxy-protocol-from 127.0.0.1/32` (issue 13 item 5): `send-proxy-v2`
// and `send-proxy` (v1) to IMAP and IMAPS; the address Quire logs, counts and
// shows in `quire who` is HAProxy's client's (a distinct loopback address,
// 127.0.0.5), not HAProxy's own; HAProxy's health check of the admin
// listener's /readyz sees the node up; a connection that skips the balancer,
// with or without a forged PROXY header, is closed before the greeting.
// Fixed ports 21300-21309 (this suite's range, see .ci/run).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runProcess } from '../helpers/process.js';
import { cleanEnv, have, ROOT, startServe, until } from '../obs/helpers.js';

const haveHaproxy = have('haproxy');
if (!haveHaproxy && process.env.CI) throw new Error('haproxy missing (apt-get install haproxy)');

const FRONT = { imapV2: 21301, imapsV2: 21302, imapV1: 21303, imapsV1: 21304 };
/** The client's own address: any 127.0.0.0/8 address works on Linux loopback; HAProxy reaches Quire from 127.0.0.1. */
const CLIENT = '127.0.0.5';
/** Where the readiness probe of HAProxy's frontend connects from. */
const PROBE = '127.0.0.6';

/** Connects (TLS or not) from CLIENT, reads the greeting, logs in, asks for nothing else. */
function session(port: number, secure: boolean, user: string, password: string): Promise<{ greeting: string; login: string; end(): void }> {
  return new Promise((resolve, reject) => {
    const opts = { host: '127.0.0.1', port, localAddress: CLIENT };
    const s: net.Socket = secure ? tls.connect({ ...opts, rejectUnauthorized: false, servername: 'localhost' }) : net.connect(opts);
    let buf = '';
    let greeting = '';
    s.on('data', (d) => {
      buf += d.toString();
      if (!greeting && buf.includes('\r\n')) {
        greeting = buf.slice(0, buf.indexOf('\r\n'));
        buf = buf.slice(buf.indexOf('\r\n') + 2);
        s.write(`a1 LOGIN ${user} ${password}\r\n`);
      }
      const m = /^a1 .*$/m.exec(buf);
      if (greeting && m) resolve({ greeting, login: m[0], end: () => s.end('a2 LOGOUT\r\n') });
    });
    s.on('error', reject);
    s.on('close', () => reject(new Error(`closed: ${greeting} ${buf}`)));
  });
}

function startHaproxy(cfg: string): Promise<ChildProcess> {
  const child = spawn('haproxy', ['-f', cfg, '-db'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`haproxy exited with ${code}: ${out}`)));
    // Listening once the first frontend accepts (probed from PROBE, whose sessions the test leaves out).
    const deadline = Date.now() + 10_000;
    const poll = () => {
      const c = net.connect({ port: FRONT.imapV2, host: '127.0.0.1', localAddress: PROBE });
      c.once('connect', () => (c.destroy(), resolve(child)));
      c.once('error', () => (Date.now() > deadline ? reject(new Error(`haproxy did not listen: ${out}`)) : setTimeout(poll, 100)));
    };
    poll();
  });
}

/** HAProxy's stats socket: `show stat` as CSV rows keyed by "proxy/server". */
function haproxyStat(sock: string): Promise<Map<string, string>> {
  return new Promise((resolve, reject) => {
    const c = net.connect(sock, () => c.write('show stat\n'));
    let out = '';
    c.on('data', (d) => (out += d));
    c.on('error', reject);
    c.on('end', () => {
      const [head, ...rows] = out.trim().split('\n');
      const cols = head!.replace(/^# /, '').split(',');
      const status = cols.indexOf('status');
      const m = new Map<string, string>();
      for (const r of rows) {
        const f = r.split(',');
        m.set(`${f[0]}/${f[1]}`, f[status]!);
      }
      resolve(m);
    });
  });
}

test('HAProxy send-proxy-v2 and send-proxy to IMAP and IMAPS: Quire sees the client address', { skip: !haveHaproxy && 'haproxy not installed', timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'quire-haproxy-'));
  const data = join(dir, 'data');
  const logFile = join(dir, 'quire.log');
  const srv = await startServe(data, logFile, ['--proxy-protocol-from', '127.0.0.1/32'], { QUIRE_LOG_FORMAT: 'json' });
  const statSock = join(dir, 'haproxy.sock');
  const cfg = join(dir, 'haproxy.cfg');
  const backend = (name: string, port: number, send: string, check = '') => `backend ${name}\n  server q1 127.0.0.1:${port} ${send}${check}\n`;
  writeFileSync(
    cfg,
    [
      `global\n  stats socket ${statSock} mode 600 level admin\n`,
      'defaults\n  mode tcp\n  timeout connect 2s\n  timeout client 30s\n  timeout server 30s\n',
      `frontend imap_v2\n  bind 127.0.0.1:${FRONT.imapV2}\n  default_backend imap_v2\n`,
      `frontend imaps_v2\n  bind 127.0.0.1:${FRONT.imapsV2}\n  default_backend imaps_v2\n`,
      `frontend imap_v1\n  bind 127.0.0.1:${FRONT.imapV1}\n  default_backend imap_v1\n`,
      `frontend imaps_v1\n  bind 127.0.0.1:${FRONT.imapsV1}\n  default_backend imaps_v1\n`,
      // The health check a balancer of several nodes uses: HTTP GET /readyz on the admin listener.
      backend('imap_v2', srv.imapPort, 'send-proxy-v2', ` check port ${srv.adminPort} inter 200ms rise 1 fall 1`).replace('backend imap_v2\n', 'backend imap_v2\n  option httpchk GET /readyz\n  http-check expect status 200\n'),
      backend('imaps_v2', srv.imapsPort, 'send-proxy-v2'),
      backend('imap_v1', srv.imapPort, 'send-proxy'),
      backend('imaps_v1', srv.imapsPort, 'send-proxy'),
    ].join('\n'),
  );
  let haproxy: ChildProcess | null = null;
  try {
    haproxy = await startHaproxy(cfg);
    for (const [port, secure] of [[FRONT.imapV2, false], [FRONT.imapsV2, true], [FRONT.imapV1, false], [FRONT.imapsV1, true]] as const) {
      const s = await session(port, secure, srv.user!, srv.password!);
      assert.match(s.greeting, /^\* OK/, `greeting through ${port}`);
      assert.match(s.login, /^a1 OK/, `login through ${port}`);
      if (port === FRONT.imapsV1) {
        // `quire who` while the last one is logged in: the client's address.
        const who = await runProcess(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'who', '--json', '--data', data], { cwd: ROOT, env: cleanEnv() });
        const list = JSON.parse(who.stdout) as { remote: string; tls: boolean }[];
        assert.deepEqual(list.map((x) => [x.remote, x.tls]), [[CLIENT, true]], who.stdout + who.stderr);
      }
      s.end();
    }
    await until(() => (srv.log().match(/"auth succeeded"/g) ?? []).length >= 4, 'four logins in the log');
    const lines = srv.log().split('\n').filter((l) => l.includes('"connection opened"') && l.includes('"imap"') && !l.includes(PROBE));
    assert.ok(lines.length >= 4, srv.log());
    for (const l of lines) {
      const rec = JSON.parse(l) as { remote: string; tls: string };
      assert.equal(rec.remote, CLIENT, l);
    }
    for (const l of srv.log().split('\n').filter((x) => x.includes('"auth succeeded"'))) assert.equal((JSON.parse(l) as { remote: string }).remote, CLIENT);
    assert.ok(!/"remote":"127\.0\.0\.1"/.test(srv.log()), 'HAProxy\'s own address is never the logged one');
    // HAProxy's /readyz health check sees the node up.
    let stat = await haproxyStat(statSock);
    for (let i = 0; i < 50 && stat.get('imap_v2/q1') !== 'UP'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      stat = await haproxyStat(statSock);
    }
    assert.equal(stat.get('imap_v2/q1'), 'UP', JSON.stringify([...stat]));

    // Skipping the balancer: from 127.0.0.9 (untrusted) with a forged header, and from HAProxy's own address without one.
    const direct = (localAddress: string, first: string) =>
      new Promise<{ data: string; closed: boolean }>((resolve) => {
        const s = net.connect({ host: '127.0.0.1', port: srv.imapPort, localAddress }, () => s.write(first));
        let got = '';
        const t = setTimeout(() => (s.destroy(), resolve({ data: got, closed: false })), 2000);
        s.on('data', (d) => (got += d));
        s.on('error', () => {});
        s.on('close', () => (clearTimeout(t), resolve({ data: got, closed: true })));
      });
    assert.deepEqual(await direct('127.0.0.9', 'PROXY TCP4 192.0.2.1 127.0.0.1 1000 143\r\na1 LOGIN x y\r\n'), { data: '', closed: true });
    assert.deepEqual(await direct('127.0.0.1', 'a1 CAPABILITY\r\n'), { data: '', closed: true });
    await until(() => srv.log().split('\n').some((l) => l.includes('PROXY protocol: connection refused') && l.includes('untrusted source') && l.includes('127.0.0.9')), 'the refusal logged');
    assert.ok(!srv.log().includes('192.0.2.1'), 'a forged address is never believed');
  } finally {
    haproxy?.kill('SIGTERM');
    srv.child.kill('SIGTERM');
    await srv.exited;
  }
});
