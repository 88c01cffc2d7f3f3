// IDLE push across PostgreSQL nodes (issue 13 item 4: p99 < 20 ms): two
// `quire serve --store postgres://...` nodes on one fresh schema; N clients
// IDLE on node A while a writer on node B (and, for comparison, a writer on
// node A itself: the same-node column) APPENDs a message and STOREs a flag on
// it, event after event. Latency is from the writer's tagged OK (and from its
// send) to each idle client's untagged EXISTS / FETCH. The one session per
// node that claims a new message's \Recent (RFC 3501 §2.3.2; its EXISTS
// comes with `* 1 RECENT`) is reported apart: its push waits for the claim.
// The reference is Dovecot's own IDLE push on one instance (the private
// dovecot-peer, when running), in the same invocation.
//
// A load-independent figure beside the wall-clock ones: node A's CPU time
// per event (/proc utime+stime of its process).
//
//   npm run bench -- pg-idle [--clients 1,100] [--events 30] [--no-dovecot]
//   (or: npx tsx bench/pg-idle.ts ...)
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { ImapClient, quote, withTimeout } from './lib/imap.js';
import { buildQuire, HOST, startQuire, type Server } from './lib/servers.js';
import { freePort } from './lib/free-port.js';

const PG_URL = process.env.QUIRE_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
/** Nodes A and B listen on free ports from this range (this helper's, 33000-33999). */
const PORT_RANGE = [33100, 33119] as const;
const USER = 'push';
const PASS = 'pass';
/** How long one event waits for every idle client before counting the rest as missed. */
const EVENT_TIMEOUT_MS = 15_000;
/** Pause between events (the writer's pace). */
const EVENT_GAP_MS = 20;
const CONNECT_CONCURRENCY = 25;
/** The Dovecot peer's IMAP port and one of its users (dovecot-peer's fixed setup). */
const DOVECOT = { port: 10143, user: 'testuser1', pass: 'pass' };

export interface Dist { p50: number; p99: number; max: number; n: number }
export interface PgIdleRow {
  where: string;
  clients: number;
  exists: Dist;
  existsClaimer: Dist;
  fetch: Dist;
  fromSend: Dist;
  missed: number;
  cpuMsPerEvent: number | null;
}

function dist(xs: number[]): Dist {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => (s.length ? s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]! : NaN);
  const r = (x: number) => Math.round(x * 100) / 100;
  return { p50: r(q(0.5)), p99: r(q(0.99)), max: r(s.at(-1) ?? NaN), n: s.length };
}

const MESSAGE = (i: number) =>
  Buffer.from(
    `From: <writer@example.com>\r\nTo: <push@example.com>\r\nSubject: pg push ${i}\r\nMessage-ID: <pgpush.${Date.now()}.${i}@example.com>\r\n\r\n` +
      'A short message to wake up the idle clients.\r\n'.repeat(40),
  );

/** utime + stime of a process (ms). */
function cpuMs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return ((Number(rest[11]) + Number(rest[12])) * 1000) / 100; // USER_HZ = 100 on Linux
}

interface RunOpts {
  where: string;
  idlePort: number;
  writerPort: number;
  user: string;
  pass: string;
  clients: number;
  events: number;
  /** pid whose CPU time is counted (the idle clients' node). */
  pid?: number;
}

export async function runPgIdle(o: RunOpts): Promise<PgIdleRow> {
  const cleanup: ImapClient[] = [];
  let current: { kind: 'EXISTS' | 'FETCH'; got: Set<number>; t0: number; tOk: number; times: { k: number; at: number }[]; resolve: () => void } | null = null;
  const claimer = new Set<number>();
  try {
    const idlers: { c: ImapClient; done: Promise<unknown> }[] = [];
    let next = 0;
    const connectOne = async (k: number) => {
      const c = await ImapClient.connect(HOST, o.idlePort);
      cleanup.push(c);
      await c.login(o.user, o.pass);
      await c.command('SELECT INBOX');
      c.onUntagged = (line, at) => {
        const ev = current;
        if (!ev) return;
        if (ev.kind === 'EXISTS' && /^\* [1-9]\d* RECENT$/.test(line)) claimer.add(k);
        if (ev.got.has(k)) return;
        if ((ev.kind === 'EXISTS' && / EXISTS$/.test(line)) || (ev.kind === 'FETCH' && / FETCH /.test(line))) {
          ev.got.add(k);
          ev.times.push({ k, at });
          if (ev.got.size === o.clients) ev.resolve();
        }
      };
      idlers.push({ c, done: (await c.idle()).done });
    };
    await withTimeout(`connecting ${o.clients} idle clients`, 120_000, () =>
      Promise.all(Array.from({ length: Math.min(CONNECT_CONCURRENCY, o.clients) }, async () => {
        while (next < o.clients) await connectOne(next++);
      })),
    );
    const writer = await ImapClient.connect(HOST, o.writerPort);
    cleanup.push(writer);
    await writer.login(o.user, o.pass);
    await writer.command('SELECT INBOX');
    await new Promise((r) => setTimeout(r, 300));
    const exists: number[] = [];
    const existsClaimer: number[] = [];
    const fetch: number[] = [];
    const fromSend: number[] = [];
    let missed = 0;
    const cpu0 = o.pid ? cpuMs(o.pid) : 0;
    const event = async (kind: 'EXISTS' | 'FETCH', cmd: string | Buffer) => {
      let resolve!: () => void;
      const all = new Promise<void>((r) => (resolve = r));
      claimer.clear();
      const ev = { kind, got: new Set<number>(), t0: performance.now(), tOk: 0, times: [] as { k: number; at: number }[], resolve };
      current = ev;
      const ok = await writer.command(cmd);
      ev.tOk = ev.t0 + ok.ms;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([all, new Promise<void>((r) => (timer = setTimeout(r, EVENT_TIMEOUT_MS)))]);
      clearTimeout(timer);
      current = null;
      missed += o.clients - ev.got.size;
      for (const { k, at } of ev.times) {
        fromSend.push(at - ev.t0);
        const ms = at - ev.tOk;
        if (kind === 'FETCH') fetch.push(ms);
        else if (claimer.has(k)) existsClaimer.push(ms);
        else exists.push(ms);
      }
    };
    for (let i = 0; i < o.events; i++) {
      const m = MESSAGE(i);
      await event('EXISTS', Buffer.concat([Buffer.from(`APPEND INBOX () {${m.length}+}\r\n`), m, Buffer.from('\r\n')]));
      await writer.command('NOOP');
      await event('FETCH', 'STORE * +FLAGS (\\Flagged)');
      await new Promise((r) => setTimeout(r, EVENT_GAP_MS));
    }
    const cpuMsPerEvent = o.pid ? Math.round(((cpuMs(o.pid) - cpu0) / (2 * o.events)) * 100) / 100 : null;
    await writer.command('STORE 1:* +FLAGS.SILENT (\\Deleted)');
    await writer.command('EXPUNGE');
    for (const { c } of idlers) c.write('DONE\r\n');
    await withTimeout('ending IDLE', 60_000, () => Promise.allSettled(idlers.map((i) => i.done)));
    return { where: o.where, clients: o.clients, exists: dist(exists), existsClaimer: dist(existsClaimer), fetch: dist(fetch), fromSend: dist(fromSend), missed, cpuMsPerEvent };
  } finally {
    for (const c of cleanup) c.destroy();
  }
}

async function dovecotUp(): Promise<boolean> {
  try {
    const c = await ImapClient.connect(HOST, DOVECOT.port, 2000);
    await c.login(DOVECOT.user, DOVECOT.pass);
    await c.logout();
    return true;
  } catch {
    return false;
  }
}

export async function main(argv: string[]): Promise<void> {
  const get = (name: string, dflt: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : dflt;
  };
  const clientCounts = get('clients', '1,100').split(',').map(Number);
  const events = Number(get('events', '30'));
  const log = (s: string) => process.stderr.write(s + '\n');
  const main = buildQuire(log);
  const schema = `qt_pgnodes_bench_${randomBytes(4).toString('hex')}`;
  const url = `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}schema=${schema}`;
  const dirs = [mkdtempSync(path.join(tmpdir(), 'quire-pgidle-a-')), mkdtempSync(path.join(tmpdir(), 'quire-pgidle-b-'))];
  const db = new pg.Client({ connectionString: PG_URL });
  await db.connect();
  const servers: Server[] = [];
  const rows: PgIdleRow[] = [];
  const load0 = loadavg()[0]!;
  try {
    const add = spawnSync(process.execPath, [main, 'user', 'add', USER, '--password-stdin', '--store', url], { input: PASS + '\n', encoding: 'utf8', env: { ...process.env, QUIRE_MIN_PASSWORD_LENGTH: '1' } });
    if (add.status !== 0) throw new Error(`user add: ${add.stderr}`);
    const serveArgs = ['--store', url, '--admin-port', 'off', '--pop3-port', 'off'];
    const PORT_A = await freePort(HOST, PORT_RANGE[0], PORT_RANGE[1]);
    const PORT_B = await freePort(HOST, PORT_RANGE[0], PORT_RANGE[1], [PORT_A]);
    servers.push(await startQuire(main, { dataDir: dirs[0]!, port: PORT_A, serveArgs, workers: 1, log }));
    servers.push(await startQuire(main, { dataDir: dirs[1]!, port: PORT_B, serveArgs, workers: 1, log }));
    const pidA = servers[0]!.pids()[0]!;
    for (const n of clientCounts) {
      for (const [where, writerPort] of [['quire, 2 nodes (writer on B)', PORT_B], ['quire, 1 node (writer on A)', PORT_A]] as const) {
        log(`  ${where}, ${n} idle`);
        rows.push(await runPgIdle({ where, idlePort: PORT_A, writerPort, user: USER, pass: PASS, clients: n, events, pid: pidA }));
      }
      if (!argv.includes('--no-dovecot') && (await dovecotUp())) {
        log(`  dovecot (one instance), ${n} idle`);
        rows.push(await runPgIdle({ where: 'dovecot (one instance)', idlePort: DOVECOT.port, writerPort: DOVECOT.port, user: DOVECOT.user, pass: DOVECOT.pass, clients: n, events }));
      }
    }
  } finally {
    for (const s of servers) await s.stop();
    await db.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined);
    await db.end();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
  const load1 = loadavg()[0]!;
  const f = (d: Dist) => `${d.p50} / ${d.p99} / ${d.max} (n=${d.n})`;
  console.log(`\nIDLE push, ms from the writer's OK: p50 / p99 / max. Load average ${load0.toFixed(1)} -> ${load1.toFixed(1)} on ${spawnSync('nproc').stdout.toString().trim()} cores${load0 > 1.5 || load1 > 1.5 ? ' (LOADED machine: wall-clock figures are not quiet-machine figures)' : ''}.\n`);
  console.log('| where | idle clients | EXISTS (others) | EXISTS (the \\Recent claimer) | FETCH (flag) | from writer\'s send, all | missed | node A CPU ms/event |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.where} | ${r.clients} | ${f(r.exists)} | ${f(r.existsClaimer)} | ${f(r.fetch)} | ${f(r.fromSend)} | ${r.missed} | ${r.cpuMsPerEvent ?? '-'} |`);
  console.log(JSON.stringify({ load: [load0, load1], rows }));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    console.error(e instanceof Error ? e.stack : e);
    process.exit(1);
  });
}
