// Before/after CPU of two Quire builds under the mixed load, interleaved in
// one invocation (A, B, A, B, ...) so that a loaded machine weighs on both
// alike: server CPU seconds per 1,000 operations from /proc, per round and
// as medians. Wall-clock figures are printed too but mean little under load.
//
//   npx tsx bench/mixed-ab.ts A_MAIN_JS B_MAIN_JS [--clients 10,50] [--seconds 8]
//                             [--rounds 3] [--workers 2] [--port-base 34200] [--cache DIR] [--strace]
//
// --no-idle: the mix without its IDLE waits (bench/lib/mixed.ts runMixedPoint idle).
// --pace MS: each client waits MS between its steps (an open-ish load below the server's capacity:
// CPU per operation then does not swing with how starved the server is on a loaded machine).
// --profile: node --cpu-prof for both builds, summarised at the end (bench/lib/profile.ts).
// --strace: system calls per operation of each build, counted by `strace -c -f`
// attached to every server process for exactly the timed window (it slows the
// server: the CPU figures of such a run are not comparable with others).
//
// A_MAIN_JS / B_MAIN_JS: compiled `cli/main.js` of each build (e.g. a
// checkout of the old commit built with `tsc --outDir`, and bench/.build/quire
// from `npm run bench`). Each gets a fresh data directory under the cache.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { ensureCorpus } from './lib/corpus.js';
import { summarizeProfileDir } from './lib/profile.js';
import { MIXED_USERS, runMixedPoint, type MixedPointResult, type OpKind } from './lib/mixed.js';
import { BENCH_DIR, quireUserAdd, startQuire, type Server } from './lib/servers.js';

const log = (s: string) => process.stderr.write(`[ab ${new Date().toISOString().slice(11, 19)}] ${s}\n`);

function args(argv: string[]) {
  const o = { a: '', b: '', clients: [10, 50], seconds: 8, rounds: 3, workers: 2, portBase: 34200, cache: path.join(BENCH_DIR, '.cache'), seed: 1, strace: false, profile: false, pace: 0, idle: true };
  const pos: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const v = () => argv[++i] ?? '';
    const a = argv[i]!;
    if (a === '--clients') o.clients = v().split(',').map(Number);
    else if (a === '--seconds') o.seconds = Number(v());
    else if (a === '--no-idle') o.idle = false;
    else if (a === '--rounds') o.rounds = Number(v());
    else if (a === '--workers') o.workers = Number(v());
    else if (a === '--port-base') o.portBase = Number(v());
    else if (a === '--cache') o.cache = path.resolve(v());
    else if (a === '--strace') o.strace = true;
    else if (a === '--profile') o.profile = true;
    else if (a === '--pace') o.pace = Number(v());
    else pos.push(a);
  }
  if (pos.length !== 2) throw new Error('usage: tsx bench/mixed-ab.ts A_MAIN_JS B_MAIN_JS [options]');
  [o.a, o.b] = pos.map((p) => path.resolve(p));
  return o;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

const o = args(process.argv.slice(2));
const corpus = await ensureCorpus(o.cache, o.seed, 1000, log);
const users = Math.max(2, Math.ceil(Math.max(...o.clients) / 10));
const servers: Server[] = [];
const profileDirs: string[] = [];
for (const [k, main] of [o.a, o.b].entries()) {
  const dataDir = path.join(o.cache, `ab-${'AB'[k]}`);
  rmSync(dataDir, { recursive: true, force: true });
  mkdirSync(dataDir, { recursive: true });
  for (const u of MIXED_USERS.slice(0, users)) quireUserAdd(main, dataDir, u, 'pass');
  const cpuProfDir = o.profile ? path.join(o.cache, 'profiles', `ab-${'AB'[k]}-${Date.now()}`) : undefined;
  if (cpuProfDir) profileDirs.push(cpuProfDir);
  servers.push(await startQuire(main, { dataDir, port: o.portBase + 43 + 100 * k, workers: o.workers, log, cpuProfDir }));
}
const results: { build: string; clients: number; r: MixedPointResult; syscalls?: Map<string, number> }[] = [];

/** strace -c -f on `pids` from 'start' to 'end'; `counts()` then gives calls per system call. */
function straceWindow(pids: () => number[], out: string) {
  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();
  return {
    window: async (phase: 'start' | 'end') => {
      if (phase === 'start') {
        child = spawn('strace', ['-c', '-f', '-o', out, ...pids().flatMap((p) => ['-p', String(p)])], { stdio: 'ignore' });
        exited = new Promise((r) => child!.once('exit', () => r()));
        await new Promise((r) => setTimeout(r, 300)); // attached (the window's CPU includes strace's slowdown)
      } else {
        child?.kill('SIGINT');
        await exited;
      }
    },
    counts: (): Map<string, number> => {
      const m = new Map<string, number>();
      for (const line of readFileSync(out, 'utf8').split('\n')) {
        const f = line.trim().split(/\s+/);
        // % time, seconds, usecs/call, calls, [errors,] syscall
        if (f.length >= 5 && f[f.length - 1] !== 'total' && /^\d+$/.test(f[3]!) && /^[a-z_0-9]+$/.test(f[f.length - 1]!)) m.set(f[f.length - 1]!, Number(f[3]));
      }
      return m;
    },
  };
}
try {
  for (const clients of o.clients) {
    for (let round = 0; round < o.rounds; round++) {
      // Alternate which build goes first, so neither always follows the other's leftovers.
      const order = round % 2 ? [1, 0] : [0, 1];
      for (const k of order) {
        const s = servers[k]!;
        const st = o.strace ? straceWindow(() => s.pids(), path.join(o.cache, `ab-strace-${'AB'[k]}.txt`)) : null;
        const r = await runMixedPoint({ name: `quire-${'AB'[k]}`, port: s.port, pids: () => s.pids() }, { clients, logins: false, seconds: o.seconds, seed: o.seed, corpus, log, window: st?.window, paceMs: o.pace, idle: o.idle });
        results.push({ build: 'AB'[k]!, clients, r, syscalls: st?.counts() });
        log(`${'AB'[k]} ${clients} clients round ${round + 1}: ${r.cpuPer1000.toFixed(3)} CPU s/1k ops (kernel ${(100 * r.systemShare).toFixed(0)}%), ${r.opsPerSec.toFixed(0)} ops/s, ${r.errors} errors, ${r.failures} failures`);
      }
    }
  }
} finally {
  for (const s of servers) await s.stop();
}
console.log(`| clients | CPU s / 1k ops A (median, runs) | B | B / A | errors A / B |`);
console.log(`|---|---|---|---|---|`);
for (const clients of o.clients) {
  const of = (b: string) => results.filter((x) => x.build === b && x.clients === clients).map((x) => x.r);
  const [a, b] = [of('A'), of('B')];
  const ma = median(a.map((r) => r.cpuPer1000));
  const mb = median(b.map((r) => r.cpuPer1000));
  const runs = (rs: MixedPointResult[]) => rs.map((r) => r.cpuPer1000.toFixed(3)).join(', ');
  const errs = (rs: MixedPointResult[]) => rs.reduce((n, r) => n + r.errors, 0);
  console.log(`| ${clients} | ${ma.toFixed(3)} (${runs(a)}) | ${mb.toFixed(3)} (${runs(b)}) | ${(mb / ma).toFixed(2)} | ${errs(a)} / ${errs(b)} |`);
}
console.log(`\nops/s and write latency p50 / p99 in ms (median of the rounds; wall clock: a loaded machine weighs on it):\n`);
const LATENCY_KINDS: OpKind[] = ['STORE', 'EXPUNGE', 'APPEND', 'COPY', 'FETCH flags'];
console.log(`| clients | build | ops/s | ${LATENCY_KINDS.join(' | ')} |`);
console.log(`|---|---|---|${LATENCY_KINDS.map(() => '---|').join('')}`);
for (const clients of o.clients) {
  for (const b of ['A', 'B']) {
    const rs = results.filter((x) => x.build === b && x.clients === clients).map((x) => x.r);
    const lat = (k: OpKind, q: 'p50' | 'p99') => median(rs.map((r) => r.latency[k]?.[q] ?? NaN).filter((v) => !Number.isNaN(v)));
    const cells = LATENCY_KINDS.map((k) => `${lat(k, 'p50').toFixed(2)} / ${lat(k, 'p99').toFixed(1)}`);
    console.log(`| ${clients} | ${b} | ${median(rs.map((r) => r.opsPerSec)).toFixed(0)} | ${cells.join(' | ')} |`);
  }
}
if (o.strace) {
  console.log(`\nSystem calls per operation (strace -c -f over the timed window; median of the rounds):\n`);
  console.log(`| clients | system call | A | B |`);
  console.log(`|---|---|---|---|`);
  for (const clients of o.clients) {
    const per = (b: string, name: string) =>
      median(results.filter((x) => x.build === b && x.clients === clients && x.syscalls).map((x) => (name === 'total' ? [...x.syscalls!.values()].reduce((p, q) => p + q, 0) : x.syscalls!.get(name) ?? 0) / Math.max(1, x.r.ops)));
    const names = new Set<string>();
    for (const x of results) if (x.clients === clients) for (const [n, c] of x.syscalls ?? []) if (c / Math.max(1, x.r.ops) >= 0.05) names.add(n);
    for (const n of ['total', ...[...names].sort((p, q) => per('A', q) - per('A', p))]) console.log(`| ${clients} | ${n} | ${per('A', n).toFixed(2)} | ${per('B', n).toFixed(2)} |`);
  }
}
for (const [k, d] of profileDirs.entries()) console.log(`\nProfile of build ${'AB'[k]}:\n${await summarizeProfileDir(d, 40)}`);
