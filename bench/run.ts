// Quire vs Dovecot benchmarks: big mailboxes and many connections.
//
//   npm run bench                                   every scenario, sizes 1k,10k,100k
//   npm run bench -- SCENARIO[,SCENARIO] [--sizes 1k,10k] [--quick] [--runs N]
//                    [--seed N] [--cache DIR] [--port-base N] [--no-dovecot]
//                    [--profile] [--markdown FILE] [--raise-inotify] [--budget S]
//                    [--clients 10,50,200] [--seconds S] [--workers N] [--no-idle] [--dovecot-port N]
//
// Scenarios: select fetch-flags fetch-200 search store append conns idle-push
// mixed auth sort (see BENCHMARKS.md for what each measures). `mixed` alone loads no
// big mailbox (unless --sizes is given); --workers N (or QUIRE_BENCH_WORKERS)
// is passed to `quire serve`. Corpora and loaded stores are
// cached under --cache (default bench/.cache) keyed by seed and size.
import { Pop3ClientProcess, POP3_PORT_OFFSET } from './pop3.js';
import { availableParallelism } from 'node:os';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import { ImapClient, quote, withTimeout } from './lib/imap.js';
import { ensureCorpus, SEARCH_FROM, SEARCH_TEXT, type Corpus } from './lib/corpus.js';
import {
  BENCH_DIR,
  HOST,
  buildQuire,
  dovecotAvailable,
  dovecotPeer,
  dovecotUsers,
  dovecotVersion,
  inotifyInstances,
  killLeftovers,
  raiseInotifyInstances,
  machineInfo,
  memAvailableKb,
  peerCmd,
  pssKb,
  quireUserAdd,
  quireUsers,
  startDovecot,
  startQuire,
  type DovecotPeer,
  type EldStats,
  type Server,
} from './lib/servers.js';
import { appendRange, cheapQuireHash, fingerprint, loadDovecot, loadQuire } from './lib/load.js';
import { runIdlePush } from './idle-push.js';
import { runPushFloor } from './push-floor.js';
import { runAuthLogins, type BenchMechanism } from './auth-logins.js';
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { summarizeProfileDir } from './lib/profile.js';
import { MIXED_USERS, cpuTimes, runMixedPoint, type MixedPointResult } from './lib/mixed.js';

// Issue 14: SORT / THREAD scenarios.
import { scSortThread } from './sort-thread.js';

const ALL_SCENARIOS = ['select', 'fetch-flags', 'fetch-200', 'search', 'store', 'append', 'conns', 'idle-push', 'mixed', 'auth', 'sort', 'pop3'] as const;
type Scenario = (typeof ALL_SCENARIOS)[number];
const PASS = 'pass';
/** Users that hold the idle connections (connections are spread over them). */
const IDLE_USERS = 10;
/** Users of the auth scenario: each mechanism gets its own slice, each user's first login is the cold one. */
const AUTH_USERS = 40;
const AUTH_MECHANISMS: BenchMechanism[] = ['LOGIN', 'PLAIN', 'SCRAM-SHA-256', 'OAUTHBEARER'];
const authUsers = Array.from({ length: AUTH_USERS }, (_, i) => `auth${i + 1}`);
/** The auth scenario's token issuer: a key made at each run, its JWKS written beside Quire's data. */
const BENCH_ISSUER = 'https://bench-issuer.invalid/';
const BENCH_AUDIENCE = 'quire-bench';
let benchKey: KeyObject | null = null;

function benchToken(user: string): string {
  const b = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const data = `${b({ alg: 'ES256', kid: 'bench', typ: 'at+jwt' })}.${b({ iss: BENCH_ISSUER, aud: BENCH_AUDIENCE, sub: user, exp: now + 3600, iat: now })}`;
  return `${data}.${sign('sha256', Buffer.from(data), { key: benchKey!, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
}

/** Writes the issuer's JWKS and points Quire's quire.json at it (other settings in the file are kept). */
function writeBenchOAuth(dataDir: string): void {
  const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  benchKey = pair.privateKey;
  const jwks = path.join(dataDir, 'bench-jwks.json');
  writeFileSync(jwks, JSON.stringify({ keys: [{ ...pair.publicKey.export({ format: 'jwk' }), kid: 'bench', alg: 'ES256', use: 'sig' }] }));
  const cfgFile = path.join(dataDir, 'quire.json');
  let cfg: Record<string, unknown> = {};
  try {
    cfg = JSON.parse(readFileSync(cfgFile, 'utf8')) as Record<string, unknown>;
  } catch {
    /* none yet */
  }
  cfg.oauth = { issuers: [{ issuer: BENCH_ISSUER, audience: BENCH_AUDIENCE, jwks, algorithms: ['ES256'], userClaim: 'sub' }] };
  writeFileSync(cfgFile, JSON.stringify(cfg, null, 2));
}

async function scAuth(o: Options, t: Target): Promise<void> {
  const g = 'Logins (one connection each: connect, authenticate, tagged OK)';
  const users = o.quick ? authUsers.slice(0, AUTH_MECHANISMS.length * 3) : authUsers;
  const res = await runAuthLogins({
    host: HOST,
    port: t.server.port,
    users,
    pass: PASS,
    mechanisms: AUTH_MECHANISMS,
    repeats: o.quick ? 2 : 5,
    token: benchToken,
    log,
  });
  for (const r of res) {
    const cold = row(g, `${r.mechanism}: cold (first login of a user after start)`, 'ms');
    const cached = row(g, `· ${r.mechanism}: cached (the same users again)`, 'ms');
    if (!r.offered) {
      cold.notes[t.name] = 'not offered';
      cached.notes[t.name] = 'not offered';
      continue;
    }
    for (const v of r.coldMs) record(cold, t.name, v);
    for (const v of r.cachedMs) record(cached, t.name, v);
    if (r.failures) cold.notes[t.name] = `(${r.failures} failed)`;
  }
}

// ---------------------------------------------------------------- options

interface Options {
  scenarios: Scenario[];
  sizes: number[];
  quick: boolean;
  runs: number;
  seed: number;
  cache: string;
  portBase: number;
  /** The private Dovecot's IMAP port (default port base + 143; its LMTP is port base + 24). */
  dovecotPort: number;
  dovecot: boolean;
  profile: boolean;
  markdown: string | null;
  /** Raise fs.inotify.max_user_instances so 1,000 Dovecot IDLE processes each get inotify. */
  raiseInotify: boolean;
  /** Seconds a (scenario, server, size) may spend on timed runs before it stops repeating. */
  budgetS: number;
  /** Client counts of the mixed load. */
  clients: number[];
  /** Seconds each mixed-load point is measured. */
  seconds: number;
  /** `quire serve --workers N` (null: serve's default). */
  workers: number | null;
  /** IDLE (fixed 50-250 ms waits) in the mixed load's mix; `--no-idle` leaves it out. */
  mixIdle: boolean;
}

function parseSize(s: string): number {
  const m = /^(\d+)(k?)$/i.exec(s.trim());
  if (!m) throw new Error(`bad size ${s} (use e.g. 1k,10k,100k)`);
  return Number(m[1]) * (m[2] ? 1000 : 1);
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    scenarios: [],
    sizes: [1000, 10_000, 100_000],
    quick: false,
    runs: 0,
    seed: 1,
    cache: process.env.QUIRE_BENCH_CACHE ?? path.join(BENCH_DIR, '.cache'),
    portBase: 17100,
    dovecotPort: 0,
    dovecot: true,
    profile: false,
    markdown: null,
    raiseInotify: false,
    budgetS: 0,
    clients: [],
    seconds: 0,
    workers: process.env.QUIRE_BENCH_WORKERS ? Number(process.env.QUIRE_BENCH_WORKERS) : null,
    mixIdle: true,
  };
  let sizesGiven = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const val = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--sizes') {
      o.sizes = val().split(',').map(parseSize);
      sizesGiven = true;
    } else if (a === '--quick') o.quick = true;
    else if (a === '--runs') o.runs = Number(val());
    else if (a === '--seed') o.seed = Number(val());
    else if (a === '--cache') o.cache = path.resolve(val());
    else if (a === '--port-base') o.portBase = Number(val());
    else if (a === '--dovecot-port') o.dovecotPort = Number(val());
    else if (a === '--no-dovecot') o.dovecot = false;
    else if (a === '--profile') o.profile = true;
    else if (a === '--markdown') o.markdown = path.resolve(val());
    else if (a === '--budget') o.budgetS = Number(val());
    else if (a === '--raise-inotify') o.raiseInotify = true;
    else if (a === '--clients') o.clients = val().split(',').map(Number);
    else if (a === '--seconds') o.seconds = Number(val());
    else if (a === '--no-idle') o.mixIdle = false;
    else if (a === '--workers') o.workers = Number(val());
    else if (a === '--help' || a === '-h') {
      console.log(readFileSync(new URL(import.meta.url), 'utf8').split('\n').slice(0, 10).join('\n'));
      process.exit(0);
    } else if (a.startsWith('--')) throw new Error(`unknown option ${a}`);
    else
      for (const s of a.split(',')) {
        if (!(ALL_SCENARIOS as readonly string[]).includes(s)) throw new Error(`unknown scenario ${s}; one of ${ALL_SCENARIOS.join(' ')}`);
        o.scenarios.push(s as Scenario);
      }
  }
  if (o.scenarios.length === 0) o.scenarios = [...ALL_SCENARIOS];
  if (o.quick && !sizesGiven) o.sizes = [1000];
  // The mixed load has its own small mailboxes: alone, it needs no big one.
  if (!sizesGiven && o.scenarios.every((s) => s === 'mixed')) o.sizes = [];
  if (!o.clients.length) o.clients = o.quick ? [10, 50] : [10, 50, 200];
  if (!o.seconds) o.seconds = o.quick ? 6 : 20;
  if (o.workers !== null && !(Number.isInteger(o.workers) && o.workers > 0)) throw new Error('--workers needs a positive integer');
  o.sizes.sort((a, b) => a - b);
  if (!o.dovecotPort) o.dovecotPort = o.portBase + 143;
  if (!o.runs) o.runs = o.quick ? 3 : 5;
  if (!o.budgetS) o.budgetS = o.quick ? 15 : 90;
  return o;
}

const label = (n: number) => (n % 1000 === 0 ? `${n / 1000}k` : String(n));
const log = (s: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${s}\n`);

// ---------------------------------------------------------------- results

interface Row {
  group: string;
  name: string;
  unit: string;
  /** 'lower' for times and memory, 'higher' for throughput. */
  better: 'lower' | 'higher' | 'none';
  values: Partial<Record<Server['name'], number[]>>;
  notes: Partial<Record<Server['name'], string>>;
}

const rows: Row[] = [];
const eldRows: { scenario: string; eld: EldStats }[] = [];

function row(group: string, name: string, unit: string, better: Row['better'] = 'lower'): Row {
  let r = rows.find((x) => x.group === group && x.name === name);
  if (!r) {
    r = { group, name, unit, better, values: {}, notes: {} };
    rows.push(r);
  }
  return r;
}

function record(r: Row, server: Server['name'], v: number): void {
  (r.values[server] ??= []).push(v);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return '–';
  if (Math.abs(v) >= 100) return v.toFixed(0);
  if (Math.abs(v) >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

function cell(xs: number[] | undefined, note: string | undefined): string {
  if (!xs || xs.length === 0) return note ?? 'not run';
  const s = xs.length === 1 ? fmt(xs[0]!) : `${fmt(median(xs))} (${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))})`;
  return note ? `${s} ${note}` : s;
}

function table(): string {
  const out = ['| scenario | unit | Quire median (min–max) | Dovecot median (min–max) | Quire/Dovecot |', '|---|---|---|---|---|'];
  let group = '';
  for (const r of rows) {
    if (r.group !== group) {
      group = r.group;
      out.push(`| **${group}** | | | | |`);
    }
    const q = r.values.quire;
    const d = r.values.dovecot;
    let ratio = '–';
    if (r.better !== 'none' && q?.length && d?.length && median(d) > 0 && median(q) >= 0) {
      const x = median(q) / median(d);
      ratio = `${x.toFixed(2)}×` + (r.better === 'lower' ? (x > 1.1 ? ' slower/heavier' : x < 0.9 ? ' faster/lighter' : '') : x < 0.9 ? ' slower' : x > 1.1 ? ' faster' : '');
    }
    const n = Math.max(q?.length ?? 0, d?.length ?? 0);
    out.push(`| ${r.name}${n > 1 ? ` (n=${n})` : ''} | ${r.unit} | ${cell(q, r.notes.quire)} | ${cell(d, r.notes.dovecot)} | ${ratio} |`);
  }
  if (eldRows.length) {
    out.push('', 'Quire event-loop delay while each scenario ran (perf_hooks monitorEventLoopDelay, ms):', '', '| scenario | p50 | p99 | max |', '|---|---|---|---|');
    for (const e of eldRows) out.push(`| ${e.scenario} | ${fmt(e.eld.p50)} | ${fmt(e.eld.p99)} | ${fmt(e.eld.max)} |`);
  }
  return out.join('\n');
}

// ---------------------------------------------------------------- helpers

interface Target {
  server: Server;
  name: Server['name'];
}

async function session(t: Target, user: string, mailbox: string | null, readOnly = false): Promise<ImapClient> {
  const c = await ImapClient.connect(HOST, t.server.port);
  await c.login(user, PASS);
  if (mailbox) await c.command(`${readOnly ? 'EXAMINE' : 'SELECT'} ${quote(mailbox)}`);
  return c;
}

/**
 * Repeats `fn` (one untimed warm-up, then up to `runs` timed runs) until the
 * time budget is spent; each run returns the values to record per row.
 */
/** A scenario whose warm-up took less than this (ms) gets FAST_WARMUPS warm-ups and at least FAST_RUNS timed runs. */
const FAST_RUN_MS = 250;
const FAST_WARMUPS = 30;
const FAST_RUNS = 25;

async function repeat(
  o: Options,
  what: string,
  t: Target,
  fn: (warm: boolean) => Promise<[Row, number][]>,
  opts: { warmup?: boolean; runs?: number } = {},
): Promise<void> {
  const runs = opts.runs ?? o.runs;
  const start = performance.now();
  try {
    await t.server.eventLoopDelay?.();
    let quickRuns = false;
    if (opts.warmup !== false) {
      const tw = performance.now();
      await withTimeout(`${what} (warm-up)`, 600_000, () => fn(true));
      const took = performance.now() - tw;
      if (took > (o.budgetS * 1000) / 2) log(`  ${t.name} ${what}: warm-up took ${(took / 1000).toFixed(1)} s`);
      // Operations of a few milliseconds: more warm-up (both a JIT and caches reach their steady state only after some runs) and more runs, so the median is steady.
      if (took < FAST_RUN_MS && opts.runs === undefined && !o.quick) {
        quickRuns = true;
        for (let i = 1; i < FAST_WARMUPS; i++) await withTimeout(`${what} (warm-up)`, 600_000, () => fn(true));
      }
    }
    const total = quickRuns ? Math.max(runs, FAST_RUNS) : runs;
    for (let i = 0; i < total; i++) {
      const rs = await withTimeout(what, 600_000, () => fn(false));
      for (const [r, v] of rs) record(r, t.name, v);
      if (performance.now() - start > o.budgetS * 1000) break;
    }
    const eld = await t.server.eventLoopDelay?.();
    if (eld) eldRows.push({ scenario: what, eld });
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    log(`  ${t.name} ${what}: FAILED: ${msg}`);
    for (const r of rows) if (what.startsWith(r.group) && !r.values[t.name]?.length) r.notes[t.name] = `failed: ${msg.slice(0, 80)}`;
    throw new ScenarioFailed(msg);
  }
}

class ScenarioFailed extends Error {}

// ---------------------------------------------------------------- scenarios

/** The POP3 scenario downloads this many messages (issue 17: a 1,000-message maildrop). */
const POP3_MESSAGES = 1000;
/**
 * Untimed downloads per Quire worker before the timed ones (both servers get
 * the same count). Successive connections alternate Quire's workers, and each
 * worker's JIT and body slabs warm up on their own.
 */
const POP3_WARMUPS_PER_WORKER = 5;
/** Timed downloads at least (more with a larger --runs), within --budget. */
const POP3_MIN_RUNS = 25;

async function scPop3(o: Options, t: Target, size: number): Promise<void> {
  const g = `POP3 download (${label(POP3_MESSAGES)} of ${label(size)})`;
  const rMs = row(g, `USER/PASS + STAT + ${POP3_MESSAGES} pipelined RETR + QUIT`, 'ms');
  const rRetr = row(g, `· the ${POP3_MESSAGES} RETRs (first sent to last received; login apart)`, 'ms');
  const rMbs = row(g, '· throughput of the RETRs', 'MB/s', 'higher');
  const rCpu = row(g, '· server CPU per download (all its processes and threads, /proc)', 'ms');
  const rClient = row(g, '· client CPU per download (its own process)', 'ms');
  // The client in a process of its own (bench/pop3.ts), a fresh one per server: the same client, warmed by the same runs.
  const client = await Pop3ClientProcess.start();
  const user = `bench${label(size)}`;
  const once = async () => {
    const cpu0 = serverCpuNow(t);
    const r = await client.download(t.server.port + POP3_PORT_OFFSET, user, PASS, POP3_MESSAGES);
    const cpu = serverCpuNow(t) - cpu0;
    if (r.messages !== POP3_MESSAGES) throw new Error(`downloaded ${r.messages} messages`);
    return { r, cpu };
  };
  try {
    const warmups = POP3_WARMUPS_PER_WORKER * (o.workers ?? availableParallelism());
    const tw = performance.now();
    for (let i = 0; i < warmups; i++) await withTimeout(`${g} (warm-up)`, 600_000, once);
    log(`  ${t.name} ${g}: ${warmups} warm-ups in ${((performance.now() - tw) / 1000).toFixed(1)} s`);
    await repeat(
      o,
      g,
      t,
      async () => {
        const { r, cpu } = await once();
        return [
          [rMs, r.ms],
          [rRetr, r.retrMs],
          [rMbs, r.bytes / 1e6 / (r.retrMs / 1000)],
          [rCpu, cpu],
          [rClient, r.clientCpuMs],
        ];
      },
      { warmup: false, runs: Math.max(o.runs, POP3_MIN_RUNS) },
    );
  } finally {
    await client.stop();
  }
}

/** CPU (user + system, ms) of every process of the server so far, threads and reaped children included (/proc). */
function serverCpuNow(t: Target): number {
  return cpuTimes(t.server.pids()).total * 1000;
}

async function scSelect(o: Options, t: Target, size: number): Promise<void> {
  const g = `login + SELECT (${label(size)})`;
  const rTotal = row(g, `connect + LOGIN + SELECT INBOX, ${label(size)} messages`, 'ms');
  const rLogin = row(g, '· connect + LOGIN', 'ms');
  const rSelect = row(g, '· SELECT', 'ms');
  await repeat(o, g, t, async () => {
    const t0 = performance.now();
    const c = await ImapClient.connect(HOST, t.server.port);
    await c.login(`bench${label(size)}`, PASS);
    const t1 = performance.now();
    const s = await c.command('SELECT INBOX');
    const t2 = performance.now();
    await c.logout();
    return [
      [rTotal, t2 - t0],
      [rLogin, t1 - t0],
      [rSelect, s.ms],
    ];
  });
}

async function withSelected<T>(t: Target, size: number, fn: (c: ImapClient) => Promise<T>, readOnly = true): Promise<T> {
  const c = await session(t, `bench${label(size)}`, 'INBOX', readOnly);
  try {
    return await fn(c);
  } finally {
    await c.logout();
  }
}

/**
 * Server CPU per command (utime+stime of all the server's processes, from
 * /proc, over `n` runs one after the other): unlike wall time it hardly moves
 * when other programs share the machine.
 */
async function serverCpuMs(t: Target, c: ImapClient, cmd: string, n: number): Promise<{ ms: number; kernelMs: number }> {
  await c.command(cmd);
  const before = cpuTimes(t.server.pids());
  for (let i = 0; i < n; i++) await c.command(cmd);
  const after = cpuTimes(t.server.pids());
  return { ms: ((after.total - before.total) * 1000) / n, kernelMs: ((after.system - before.system) * 1000) / n };
}

/** Runs of a command whose server CPU is measured (enough for /proc's 10 ms ticks). */
const cpuRuns = (o: Options, ms: number) => Math.max(20, Math.ceil((o.quick ? 500 : 2000) / Math.max(ms, 1)));

async function scFetchFlags(o: Options, t: Target, size: number): Promise<void> {
  const g = `UID FETCH 1:* (UID FLAGS) (${label(size)})`;
  const r = row(g, `UID FETCH 1:* (UID FLAGS), ${label(size)} messages`, 'ms');
  const r2 = row(g, `UID FETCH 1:* (FLAGS), ${label(size)} messages`, 'ms');
  const rCpu = row(g, '· server CPU per UID FETCH 1:* (FLAGS), from /proc', 'ms');
  const rKernel = row(g, '· · of which in the kernel (system time)', 'ms');
  await withSelected(t, size, async (c) => {
    await repeat(o, g, t, async () => {
      const x = await c.command('UID FETCH 1:* (UID FLAGS)');
      if (x.untagged < size) throw new Error(`only ${x.untagged} FETCH responses for ${size} messages`);
      const y = await c.command('UID FETCH 1:* (FLAGS)');
      return [
        [r, x.ms],
        [r2, y.ms],
      ];
    });
    const cpu = await serverCpuMs(t, c, 'UID FETCH 1:* (FLAGS)', cpuRuns(o, size / 2000));
    record(rCpu, t.name, cpu.ms);
    record(rKernel, t.name, cpu.kernelMs);
  });
}

const FETCH_200_ITEMS = '(UID FLAGS ENVELOPE BODYSTRUCTURE BODY.PEEK[HEADER.FIELDS (From To Subject Date)])';

async function scFetch200(o: Options, t: Target, size: number): Promise<void> {
  const g = `FETCH newest 200 (${label(size)})`;
  const r = row(g, `FETCH newest 200 ${FETCH_200_ITEMS}, ${label(size)}`, 'ms');
  const r2 = row(g, `FETCH newest 200 (ENVELOPE BODYSTRUCTURE), ${label(size)}`, 'ms');
  const rCpu = row(g, '· server CPU per FETCH newest 200 (ENVELOPE BODYSTRUCTURE), from /proc', 'ms');
  const rKernel = row(g, '· · of which in the kernel (system time)', 'ms');
  const range = `${Math.max(1, size - 199)}:*`;
  await withSelected(t, size, async (c) => {
    await repeat(o, g, t, async () => {
      const x = await c.command(`FETCH ${range} ${FETCH_200_ITEMS}`);
      if (x.untagged < Math.min(200, size)) throw new Error(`only ${x.untagged} FETCH responses`);
      const y = await c.command(`FETCH ${range} (ENVELOPE BODYSTRUCTURE)`);
      return [
        [r, x.ms],
        [r2, y.ms],
      ];
    });
    const cpu = await serverCpuMs(t, c, `FETCH ${range} (ENVELOPE BODYSTRUCTURE)`, cpuRuns(o, 2));
    record(rCpu, t.name, cpu.ms);
    record(rKernel, t.name, cpu.kernelMs);
  });
}

const searchCounts: Record<string, Partial<Record<Server['name'], number>>> = {};

async function scSearch(o: Options, t: Target, size: number): Promise<void> {
  const queries: [string, string][] = [
    ['flag', 'UID SEARCH FLAGGED'],
    ['from', `UID SEARCH FROM ${quote(SEARCH_FROM)}`],
    ['text', `UID SEARCH TEXT ${quote(SEARCH_TEXT)}`],
  ];
  await withSelected(t, size, async (c) => {
    const g = `UID SEARCH (${label(size)})`;
    for (const [k, cmd] of queries) {
      const r = row(g, `${cmd}, ${label(size)}`, 'ms');
      try {
        await repeat(o, `${g}: ${k}`, t, async () => {
          c.collect = [];
          const x = await c.command(cmd);
          const line = c.collect.find((l) => l.startsWith('* SEARCH') || l.startsWith('* ESEARCH')) ?? '';
          c.collect = null;
          const hits = line.startsWith('* SEARCH') ? line.split(' ').length - 2 : -1;
          (searchCounts[`${k} ${label(size)}`] ??= {})[t.name] = hits;
          return [[r, x.ms]];
        });
      } catch (e) {
        if (!(e instanceof ScenarioFailed)) throw e;
      }
    }
  });
}

async function scStore(o: Options, t: Target, size: number): Promise<void> {
  const n = Math.min(10_000, size);
  const g = `STORE on ${label(n)} messages (${label(size)})`;
  const r = row(g, `UID STORE 1:${n} +FLAGS.SILENT ($BenchStore), ${label(size)} mailbox`, 'ms');
  const r2 = row(g, `UID STORE 1:${n} -FLAGS.SILENT ($BenchStore)`, 'ms');
  await withSelected(
    t,
    size,
    (c) =>
      repeat(o, g, t, async () => {
        const a = await c.command(`UID STORE 1:${n} +FLAGS.SILENT ($BenchStore)`);
        const b = await c.command(`UID STORE 1:${n} -FLAGS.SILENT ($BenchStore)`);
        return [
          [r, a.ms],
          [r2, b.ms],
        ];
      }),
    false,
  );
}

async function scAppend(o: Options, t: Target, corpus: Corpus): Promise<void> {
  const n = o.quick ? 1000 : 10_000;
  const single = o.quick ? 200 : 1000;
  const g = 'APPEND (durable)';
  const rMulti = row(g, `APPEND ${label(n)} messages: MULTIAPPEND batches (≤200 msgs / 8 MB), LITERAL+, 3 in flight`, 'msg/s', 'higher');
  const rMB = row(g, '· same, payload throughput', 'MB/s', 'higher');
  const rSingle = row(g, `APPEND ${label(single)} messages one by one, waiting for each OK`, 'msg/s', 'higher');
  const bytes = corpus.lengths.slice(0, n).reduce((a, b) => a + b, 0);
  const c = await session(t, 'benchappend', null);
  let k = 0;
  try {
    await repeat(
      o,
      g,
      t,
      async () => {
        const box = `append-${process.pid}-${k++}`;
        await c.command(`CREATE ${quote(box)}`);
        const ms = await appendRange(c, box, corpus, 0, n, { multi: true });
        const box2 = `${box}-single`;
        await c.command(`CREATE ${quote(box2)}`);
        const ms2 = await (async () => {
          const t0 = performance.now();
          for (let i = 0; i < single; i++) await appendRange(c, box2, corpus, i, i + 1, { multi: false });
          return performance.now() - t0;
        })();
        await c.command(`DELETE ${quote(box)}`);
        await c.command(`DELETE ${quote(box2)}`);
        return [
          [rMulti, (n * 1000) / ms],
          [rMB, bytes / 1e6 / (ms / 1000)],
          [rSingle, (single * 1000) / ms2],
        ];
      },
      { warmup: false, runs: o.quick ? 1 : 3 },
    );
  } finally {
    await c.logout();
  }
}

/** Holds `n` idle connections in a child process; returns what it reported. */
async function holdConnections(port: number, n: number): Promise<{ ready: number; failed: number; ms: number; error?: string; close: () => Promise<void> }> {
  const tsx = path.join(BENCH_DIR, '..', 'node_modules', '.bin', 'tsx');
  const child = spawn('bash', ['-c', 'ulimit -n "$(ulimit -Hn)"; exec "$0" "$@"', tsx, path.join(BENCH_DIR, 'conn-holder.ts'), String(port), String(n), 'idle', String(IDLE_USERS), PASS], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const report = await new Promise<{ ready: number; failed: number; ms: number; error?: string }>((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) resolve(JSON.parse(buf.slice(0, nl)) as { ready: number; failed: number; ms: number });
    });
    child.once('exit', (code) => reject(new Error(`connection holder exited (${code}) before reporting`)));
  });
  return {
    ...report,
    close: async () => {
      child.stdin!.end();
      const t = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(t);
    },
  };
}

const idlePushNotes: string[] = [];
/** The bare fan-out floor of this machine (bench/push-floor.ts), measured once per invocation. */
const pushFloorNotes: string[] = [];

const perConnKb: Partial<Record<Server['name'], Record<number, number>>> = {};

async function scConns(o: Options, t: Target): Promise<void> {
  const counts = o.quick ? [100, 1000] : [1000, 10_000];
  const g = 'idle connections';
  for (let n of counts) {
    const r = row(g, `${label(n)} idle connections (LOGIN, SELECT, IDLE): server PSS per connection`, 'KiB/conn');
    const rRamp = row(g, `· ${label(n)} connections: time to log them all in (64 at a time)`, 's');
    // Do not let a heavy per-connection footprint exhaust the machine.
    const known = perConnKb[t.name];
    const per = known ? Math.max(...Object.values(known)) : 0;
    const avail = memAvailableKb();
    if (per > 0 && per * n > avail * 0.6) {
      const fit = Math.floor((avail * 0.6) / per / 1000) * 1000;
      r.notes[t.name] = `(capped at ${label(fit)}: ${label(n)} × ${fmt(per)} KiB would exceed 60% of available memory)`;
      if (fit < 1000) continue;
      n = fit;
    }
    await t.server.gc?.();
    await new Promise((res) => setTimeout(res, 1000));
    const before = pssKb(t.server.pids());
    let h: Awaited<ReturnType<typeof holdConnections>> | undefined;
    try {
      h = await withTimeout(`${n} connections`, 480_000, () => holdConnections(t.server.port, n));
      if (h.ready < n) {
        log(`  ${t.name}: only ${h.ready}/${n} connections came up (${h.error ?? 'no error'})`);
        r.notes[t.name] = `(only ${h.ready} of ${label(n)} connected: ${h.error ?? ''})`;
      }
      await new Promise((res) => setTimeout(res, 2000));
      await t.server.gc?.();
      await new Promise((res) => setTimeout(res, 1000));
      const after = pssKb(t.server.pids());
      if (h.ready > 0) {
        record(r, t.name, (after - before) / h.ready);
        record(rRamp, t.name, h.ms / 1000);
        (perConnKb[t.name] ??= {})[n] = (after - before) / h.ready;
      }
      log(`  ${t.name}: ${h.ready} connections in ${(h.ms / 1000).toFixed(1)} s; PSS ${(before / 1024).toFixed(0)} → ${(after / 1024).toFixed(0)} MiB over ${t.server.pids().length} processes`);
    } catch (e) {
      r.notes[t.name] = `failed: ${e instanceof Error ? e.message : e}`;
      log(`  ${t.name} ${n} connections: ${r.notes[t.name]}`);
    } finally {
      await h?.close();
      // Let the server notice the closed sockets and (Dovecot) reap its processes.
      const deadline = performance.now() + 60_000;
      while (performance.now() < deadline && t.server.pids().length > 12 && t.name === 'dovecot') await new Promise((res) => setTimeout(res, 500));
      await new Promise((res) => setTimeout(res, 2000));
    }
  }
}

let restoreInotify: (() => void) | null = null;
function writeInotify(n: number): void {
  writeFileSync('/proc/sys/fs/inotify/max_user_instances', String(n));
}

async function scIdlePush(o: Options, t: Target): Promise<void> {
  const counts = o.quick ? [1, 100] : [1, 100, 1000];
  if (t.name === 'dovecot') {
    const want = Math.max(...counts) + 200;
    if (o.raiseInotify) {
      const old = raiseInotifyInstances(want);
      if (old < want) {
        log(`  raised fs.inotify.max_user_instances from ${old} to ${want} for this scenario (--raise-inotify)`);
        restoreInotify = () => writeInotify(old);
      }
    }
    const have = inotifyInstances();
    if (have < want) {
      const msg = `fs.inotify.max_user_instances is ${have}: Dovecot IDLE clients beyond it fall back to polling (mailbox_idle_check_interval, 30 s); --raise-inotify raises it`;
      log(`  note: ${msg}`);
      idlePushNotes.push(msg);
    }
  }
  const events = o.quick ? 8 : 20;
  const g = 'IDLE push';
  if (pushFloorNotes.length === 0) {
    // What no server can beat here: one line to each socket from bare Node processes, read by this process.
    const senders = o.workers ?? availableParallelism();
    for (const n of counts) {
      const f = await runPushFloor({ clients: n, senders, events: events * 2 });
      log(`  floor idle-push ${n}: ${JSON.stringify(f)}`);
      pushFloorNotes.push(`${label(n)} socket(s) from ${senders} bare Node process(es): p50 ${f.fromSignal.p50} ms, p99 ${f.fromSignal.p99} ms`);
    }
  }
  for (const n of counts) {
    const r50 = row(g, `${label(n)} idle client(s): push latency p50, from writer's send`, 'ms');
    const r99 = row(g, `· ${label(n)}: push latency p99`, 'ms');
    const rOk = row(g, `· ${label(n)}: push p50 measured from the writer's tagged OK (negative: pushed before the OK)`, 'ms', 'none');
    const rProbe = row(g, `· ${label(n)}: NOOP round trip p99 on a probe connection meanwhile`, 'ms');
    try {
      const res = await runIdlePush({
        host: HOST,
        port: t.server.port,
        user: 'push',
        pass: PASS,
        clients: n,
        events,
        eventLoopDelay: t.server.eventLoopDelay,
        log,
      });
      record(r50, t.name, res.fromSend.p50);
      record(r99, t.name, res.fromSend.p99);
      record(rOk, t.name, res.fromOk.p50);
      record(rProbe, t.name, res.probeMs.p99);
      if (res.missed) r50.notes[t.name] = `(${res.missed} pushes missed)`;
      if (res.eld) eldRows.push({ scenario: `IDLE push, ${label(n)} clients`, eld: res.eld });
      log(`  ${t.name} idle-push ${n}: ${JSON.stringify(res)}`);
    } catch (e) {
      r50.notes[t.name] = `failed: ${e instanceof Error ? e.message : e}`;
      log(`  ${t.name} idle-push ${n}: ${r50.notes[t.name]}`);
    }
  }
  restoreInotify?.();
  restoreInotify = null;
}

const mixedResults: (MixedPointResult & { server: string })[] = [];

async function scMixed(o: Options, targets: Target[], corpus: Corpus): Promise<void> {
  for (const logins of [false, true]) {
    for (const n of o.clients) {
      const g = `mixed load, ${n} clients${logins ? ', LOGIN/LOGOUT in the mix' : ''}`;
      const rOps = row(g, `mixed load: ${n} clients, ${o.seconds} s${logins ? ', with LOGIN/LOGOUT' : ''}: throughput`, 'ops/s', 'higher');
      const rCpu = row(g, '· server CPU per 1,000 operations (all its processes)', 'CPU s', 'lower');
      const rP50 = row(g, '· latency p50, all commands', 'ms');
      const rP99 = row(g, '· latency p99, all commands', 'ms');
      const rErr = row(g, '· consistency errors seen by the clients', 'count', 'none');
      const rFail = row(g, '· failed commands / dropped connections', 'count', 'none');
      const rSrv = row(g, '· server CPU use (cores busy)', 'cores', 'none');
      const rSys = row(g, '· share of the server CPU in the kernel', '%', 'none');
      const rGen = row(g, '· load generator CPU use (cores busy; near 1: the clients limit)', 'cores', 'none');
      for (const t of targets) {
        try {
          await t.server.eventLoopDelay?.();
          const res = await withTimeout(`${g} (${t.name})`, (o.seconds + 300) * 1000, () =>
            runMixedPoint({ name: t.name, port: t.server.port, pids: () => t.server.pids() }, { clients: n, logins, seconds: o.seconds, seed: o.seed, corpus, log, idle: o.mixIdle }),
          );
          const eld = await t.server.eventLoopDelay?.();
          if (eld) eldRows.push({ scenario: g, eld });
          mixedResults.push({ ...res, server: t.name });
          record(rOps, t.name, res.opsPerSec);
          record(rCpu, t.name, res.cpuPer1000);
          record(rP50, t.name, res.overall.p50);
          record(rP99, t.name, res.overall.p99);
          record(rErr, t.name, res.errors);
          record(rFail, t.name, res.failures);
          record(rSrv, t.name, res.cpuSeconds / res.seconds);
          record(rSys, t.name, res.systemShare * 100);
          record(rGen, t.name, res.clientCpuShare);
          log(`  ${t.name} ${g}: ${res.opsPerSec.toFixed(0)} ops/s, ${res.cpuPer1000.toFixed(3)} CPU s/1k ops, ${res.errors} errors, ${res.failures} failures; server ${(res.cpuSeconds / res.seconds).toFixed(2)} cores, load generator ${res.clientCpuShare.toFixed(2)}`);
          if (res.errors) log(`    errors by kind: ${JSON.stringify(res.errorKinds)}`);
          for (const e of res.samples) log(`    ${e}`);
        } catch (e) {
          rOps.notes[t.name] = `failed: ${e instanceof Error ? e.message : e}`;
          log(`  ${t.name} ${g}: ${rOps.notes[t.name]}`);
        }
      }
    }
  }
}

/** Per-command latency of each mixed-load point, Quire beside Dovecot. */
function mixedTables(): string {
  if (!mixedResults.length) return '';
  const out: string[] = ['', 'Mixed load, latency per command (ms, p50 / p99; n = commands in the timed window):'];
  const points = [...new Set(mixedResults.map((r) => `${r.clients}|${r.logins}`))];
  for (const p of points) {
    const [n, logins] = p.split('|');
    const rs = mixedResults.filter((r) => `${r.clients}|${r.logins}` === p);
    const servers = rs.map((r) => r.server);
    out.push('', `${n} clients on ${rs[0]!.users} users${logins === 'true' ? ', LOGIN/LOGOUT in the mix' : ''}:`, '');
    out.push(`| command | ${servers.map((s) => `${s} p50 / p99 (n)`).join(' | ')} |`, `|---|${servers.map(() => '---').join('|')}|`);
    const kinds = [...new Set(rs.flatMap((r) => Object.keys(r.latency)))].sort();
    for (const k of kinds) {
      const cells = rs.map((r) => {
        const l = r.latency[k as keyof typeof r.latency];
        return l ? `${fmt(l.p50)} / ${fmt(l.p99)} (${l.n})` : '–';
      });
      out.push(`| ${k} | ${cells.join(' | ')} |`);
    }
  }
  return out.join('\n');
}

// ---------------------------------------------------------------- setup

interface LoadedMarker {
  sizes: number[];
}

function readMarker(file: string): LoadedMarker {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as LoadedMarker;
  } catch {
    return { sizes: [] };
  }
}

function setQuireHashes(dataDir: string, names: string[]): void {
  const db = new Database(path.join(dataDir, 'quire.sqlite3'));
  try {
    const up = db.prepare('UPDATE users SET password_hash = ? WHERE name = ?');
    for (const n of names) up.run(cheapQuireHash(PASS), n);
  } finally {
    db.close();
  }
}

/** Where this run's Quire writes its CPU profiles (--profile). */
let profileDir: string | null = null;

async function setupQuire(o: Options, main: string, corpus: Corpus, port: number): Promise<Server> {
  if (o.profile) profileDir = path.join(o.cache, 'profiles', new Date().toISOString().replace(/[:.]/g, '-'));
  const dataDir = path.join(o.cache, `quire-s${o.seed}`);
  const markerFile = path.join(dataDir, 'bench-loaded.json');
  const marker = readMarker(markerFile);
  mkdirSync(dataDir, { recursive: true });
  const have = quireUsers(main, dataDir);
  const idle = Array.from({ length: IDLE_USERS }, (_, i) => `idle${i + 1}`);
  for (const u of ['benchappend', 'push', ...idle, ...MIXED_USERS, ...authUsers]) if (!have.has(u)) quireUserAdd(main, dataDir, u, PASS);
  if (o.scenarios.includes('auth')) writeBenchOAuth(dataDir);
  // Cheap hashes (scrypt ln=10) for the users of the many-connection scenarios
  // and the mixed load (Dovecot's peer stores PLAIN passwords); LOGIN cost is measured with bench<size>.
  setQuireHashes(dataDir, ['push', ...idle, ...MIXED_USERS]);
  for (const size of o.sizes) {
    const u = `bench${label(size)}`;
    if (marker.sizes.includes(size)) continue;
    if (have.has(u)) {
      // An interrupted load: start that user again.
      const { spawnSync } = await import('node:child_process');
      spawnSync(process.execPath, [main, 'user', 'del', u, '--data', dataDir]);
    }
    quireUserAdd(main, dataDir, u, PASS);
  }
  const server = await startQuire(main, {
    dataDir,
    port,
    cpuProfDir: profileDir ?? undefined,
    serveArgs: o.workers !== null ? ['--workers', String(o.workers)] : [],
    log,
  });
  for (const size of o.sizes) {
    if (marker.sizes.includes(size)) continue;
    log(`loading ${label(size)} messages into Quire (bench${label(size)})`);
    await loadQuire(port, `bench${label(size)}`, PASS, corpus.count === size ? corpus : subCorpus(corpus, size), log);
    marker.sizes.push(size);
    writeFileSync(markerFile, JSON.stringify(marker));
  }
  await waitTextIndexed(dataDir);
  return server;
}

/**
 * Quire indexes bodies for SEARCH BODY/TEXT on a thread of its own after
 * APPEND (answers are the same meanwhile: unindexed bodies are read). The
 * scenarios measure the steady state, so they wait for it; how long it took
 * is logged.
 */
async function waitTextIndexed(dataDir: string): Promise<void> {
  const db = new Database(path.join(dataDir, 'quire.sqlite3'), { readonly: true });
  try {
    const pending = db.prepare('SELECT count(*) FROM blobs WHERE fts = 0').pluck();
    const first = pending.get() as number;
    if (first === 0) return;
    log(`waiting for Quire's full-text indexing of ${first} bodies`);
    const t0 = performance.now();
    while ((pending.get() as number) > 0) await new Promise((r) => setTimeout(r, 500));
    log(`  indexed ${first} bodies in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  } finally {
    db.close();
  }
}

function subCorpus(c: Corpus, n: number): Corpus {
  return { ...c, count: n };
}

async function setupDovecot(o: Options, corpus: Corpus, p: DovecotPeer): Promise<Server> {
  mkdirSync(p.dir, { recursive: true });
  const markerFile = path.join(p.dir, 'bench-loaded.json');
  const marker = readMarker(markerFile);
  const have = dovecotUsers(p);
  const idle = Array.from({ length: IDLE_USERS }, (_, i) => `idle${i + 1}`);
  for (const u of ['benchappend', 'push', ...idle, ...MIXED_USERS, ...authUsers, ...o.sizes.map((s) => `bench${label(s)}`)]) if (!have.has(u)) peerCmd(p, 'adduser', u, PASS);
  const server = await startDovecot(p);
  for (const size of o.sizes) {
    if (marker.sizes.includes(size)) continue;
    log(`loading ${label(size)} messages into Dovecot (bench${label(size)}, Maildir + doveadm force-resync)`);
    await loadDovecot(p, `bench${label(size)}`, subCorpus(corpus, size), log);
    marker.sizes.push(size);
    writeFileSync(markerFile, JSON.stringify(marker));
  }
  return server;
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  mkdirSync(o.cache, { recursive: true });
  const m = machineInfo();
  const needCorpus = Math.max(...o.sizes, o.scenarios.includes('append') ? (o.quick ? 1000 : 10_000) : 0, o.scenarios.includes('mixed') ? 1000 : 0);
  log(`scenarios: ${o.scenarios.join(' ')}; sizes: ${o.sizes.map(label).join(',')}; runs: ${o.runs}; seed: ${o.seed}; cache: ${o.cache}`);
  const corpus = await ensureCorpus(o.cache, o.seed, needCorpus, log);
  const main = buildQuire(log);
  const targets: Target[] = [];
  const why = o.dovecot ? dovecotAvailable() : 'disabled with --no-dovecot';
  let dversion = 'not run';
  const started: Server[] = [];
  const onSignal = () => {
    log('interrupted: stopping servers');
    killLeftovers();
    for (const s of started) if (s.name === 'dovecot') void s.stop().catch(() => undefined);
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const q = await setupQuire(o, main, corpus, o.portBase + 43);
    started.push(q);
    targets.push({ server: q, name: 'quire' });
    if (why) log(`Dovecot column skipped: ${why}`);
    else {
      dversion = dovecotVersion();
      const p = dovecotPeer(path.join(o.cache, `dovecot-s${o.seed}`), o.dovecotPort, o.portBase + 24);
      const d = await setupDovecot(o, corpus, p);
      started.push(d);
      targets.push({ server: d, name: 'dovecot' });
      // Same mailbox, same order on both sides.
      for (const size of o.sizes) {
        const seqs = [1, 2, Math.ceil(size / 2), size];
        const a = await fingerprint(q.port, `bench${label(size)}`, PASS, seqs);
        const b = await fingerprint(d.port, `bench${label(size)}`, PASS, seqs);
        if (a.join() !== b.join()) throw new Error(`the ${label(size)} mailboxes differ:\nquire   ${a.join('\n        ')}\ndovecot ${b.join('\n        ')}`);
      }
    }

    for (const sc of o.scenarios) {
      log(`scenario ${sc}`);
      if (sc === 'mixed') {
        // Points interleave the servers, so a busy machine hurts both alike.
        await scMixed(o, targets, corpus);
        continue;
      }
      for (const t of targets) {
        try {
          switch (sc) {
            case 'select':
              for (const s of o.sizes) await scSelect(o, t, s);
              break;
            case 'fetch-flags':
              for (const s of o.sizes) await scFetchFlags(o, t, s);
              break;
            case 'fetch-200':
              for (const s of o.sizes) await scFetch200(o, t, s);
              break;
            case 'search':
              for (const s of o.sizes) await scSearch(o, t, s);
              break;
            case 'store':
              for (const s of o.sizes) await scStore(o, t, s);
              break;
            case 'append':
              await scAppend(o, t, corpus);
              break;
            case 'conns':
              await scConns(o, t);
              break;
            case 'idle-push':
              await scIdlePush(o, t);
              break;
            case 'auth':
              await scAuth(o, t);
              break;
            case 'sort':
              for (const s of o.sizes) {
                await scSortThread({ size: s, label: label(s), row, repeat: (what, fn, ro) => repeat(o, what, t, fn, ro), withSelected: (fn) => withSelected(t, s, fn) });
              }
              break;
            case 'pop3':
              for (const sz of o.sizes) if (sz >= POP3_MESSAGES) await scPop3(o, t, sz);
              break;
          }
        } catch (e) {
          if (!(e instanceof ScenarioFailed)) log(`  ${t.name} ${sc}: ${e instanceof Error ? e.message : e}`);
        }
      }
    }
  } finally {
    for (const s of started.reverse()) await s.stop().catch((e: unknown) => log(`stopping ${s.name}: ${e}`));
  }

  const header = [
    `Machine: ${m.nproc} × ${m.cpu}, ${m.memGiB} GiB RAM, Linux ${m.kernel}; Node ${m.node}; Dovecot ${dversion}.`,
    `Command: npm run bench -- ${process.argv.slice(2).join(' ')}`.trimEnd(),
    `Corpus: seed ${o.seed}, ${corpus.count} messages, ${(corpus.totalBytes / 1e6).toFixed(0)} MB; sizes ${o.sizes.map(label).join(', ')}; up to ${o.runs} timed runs after one warm-up, or ${FAST_RUNS} after ${FAST_WARMUPS} where a run takes under ${FAST_RUN_MS} ms${o.quick ? ' (not with --quick)' : ''} (stops repeating after ${o.budgetS} s).`,
  ];
  if (o.scenarios.includes('pop3')) {
    header.push(
      `POP3: the client in a process of its own (bench/pop3.ts Pop3ClientProcess, a fresh one per server), ${POP3_WARMUPS_PER_WORKER} warm-ups per Quire worker (${POP3_WARMUPS_PER_WORKER * (o.workers ?? availableParallelism())}, both servers alike), then at least ${POP3_MIN_RUNS} timed downloads.`,
    );
  }
  if (why) header.push(`Dovecot: skipped (${why}).`);
  const counts = Object.entries(searchCounts).map(([k, v]) => `${k}: quire ${v.quire ?? '–'}, dovecot ${v.dovecot ?? '–'}`);
  const text = [
    ...header,
    '',
    table(),
    '',
    counts.length ? `SEARCH hit counts (sanity check): ${counts.join('; ')}` : '',
    mixedTables(),
    ...idlePushNotes.map((n) => `Note (IDLE push, Dovecot): ${n}.`),
    pushFloorNotes.length ? `Floor (IDLE push, bench/push-floor.ts: the machine's own cost of a fan-out, no IMAP, no commit): ${pushFloorNotes.join('; ')}.` : '',
  ].join('\n');
  console.log('\n' + text);
  const results = path.join(o.cache, `results-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(results, JSON.stringify({ machine: m, dovecot: dversion, options: o, rows, eldRows, searchCounts, mixed: mixedResults }, null, 1));
  log(`results: ${results}`);
  if (o.markdown) writeFileSync(o.markdown, text + '\n');
  if (o.profile && profileDir) console.log('\n' + (await summarizeProfileDir(profileDir)));
}

// `npm run bench -- pg-idle [...]` / `pg-mixed [...]`: the PostgreSQL store's runs of their own (bench/pg-idle.ts, bench/pg-mixed.ts).
const own: Record<string, () => Promise<{ main(argv: string[]): Promise<void> }>> = { 'pg-idle': () => import('./pg-idle.js'), 'pg-mixed': () => import('./pg-mixed.js') };
const pick = own[process.argv[2] ?? ''];
const run = pick ? pick().then((m) => m.main(process.argv.slice(3))) : main();
run.catch((e: unknown) => {
  log(`error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  killLeftovers();
  process.exit(1);
});
