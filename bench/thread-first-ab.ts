// The first THREAD of a big mailbox after a server start (issue 14's last
// bench row), for two Quire builds and Dovecot, interleaved in one invocation
// so that a loaded machine weighs on all three alike. Each round starts every
// server afresh (A, B and Dovecot in a rotating order), selects the mailbox,
// and times the first `UID THREAD <alg> UTF-8 ALL` of each algorithm since
// that start; the server's CPU time for the three commands comes from /proc.
// A build that keeps THREAD answers across restarts (schema V_THREAD_ANSWERS)
// computes in round 0 and answers from the kept answer after that;
// --invalidate appends one message to every server at the end of each round,
// so every first THREAD computes (the uncached path after a change).
//
//   npx tsx bench/thread-first-ab.ts A_MAIN_JS B_MAIN_JS [--size 10k] [--rounds 5]
//        [--port-base 21500] [--dovecot-port 21590] [--invalidate] [--settle-ms 1000] [--no-dovecot] [--cache DIR] [--seed 1]
//
// --settle-ms: the pause between a server's start and its session (default 1 s), as the bench's
// sort scenario runs long after the start: the THREAD is timed, not the server's own start.
//
// A_MAIN_JS / B_MAIN_JS: compiled `cli/main.js` of each build (e.g. the old
// commit built with `tsc --outDir`, and bench/.build/quire from `npm run
// bench`). The mailbox is loaded once (with A, over IMAP) and copied for B, so
// both hold the same files; B's copy is upgraded by B's schema at its start.
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import { ensureCorpus, type Corpus } from './lib/corpus.js';
import { ImapClient } from './lib/imap.js';
import { loadDovecot, loadQuire, multiAppend } from './lib/load.js';
import { cpuTimes } from './lib/mixed.js';
import { BENCH_DIR, HOST, dovecotAvailable, dovecotPeer, dovecotUsers, peerCmd, quireUserAdd, startDovecot, startQuire, type Server } from './lib/servers.js';

const log = (s: string) => process.stderr.write(`[thread-ab ${new Date().toISOString().slice(11, 19)}] ${s}\n`);
const USER = 'threadab';
const PASS = 'pass';
const ALGS = ['REFERENCES', 'ORDEREDSUBJECT', 'REFS'] as const;

function args(argv: string[]) {
  const o = { a: '', b: '', size: 10_000, rounds: 5, portBase: 21500, dovecotPort: 21590, invalidate: false, settleMs: 1000, dovecot: true, cache: path.join(BENCH_DIR, '.cache'), seed: 1 };
  const pos: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const v = () => argv[++i] ?? '';
    const a = argv[i]!;
    if (a === '--size') o.size = Number(v().replace(/k$/i, '000'));
    else if (a === '--rounds') o.rounds = Number(v());
    else if (a === '--port-base') o.portBase = Number(v());
    else if (a === '--dovecot-port') o.dovecotPort = Number(v());
    else if (a === '--invalidate') o.invalidate = true;
    else if (a === '--settle-ms') o.settleMs = Number(v());
    else if (a === '--no-dovecot') o.dovecot = false;
    else if (a === '--cache') o.cache = path.resolve(v());
    else if (a === '--seed') o.seed = Number(v());
    else pos.push(a);
  }
  if (pos.length !== 2) throw new Error('usage: tsx bench/thread-first-ab.ts A_MAIN_JS B_MAIN_JS [options]');
  [o.a, o.b] = pos.map((p) => path.resolve(p));
  return o;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

/** Waits until Quire's full-text indexing thread has indexed every body (as run.ts waitTextIndexed). */
async function waitTextIndexed(dbFile: string): Promise<void> {
  const db = new Database(dbFile, { readonly: true });
  try {
    const pending = db.prepare('SELECT count(*) FROM blobs WHERE fts = 0').pluck();
    const first = pending.get() as number;
    if (first > 0) log(`waiting for Quire's full-text indexing of ${first} bodies`);
    while ((pending.get() as number) > 0) await new Promise((r) => setTimeout(r, 500));
  } finally {
    db.close();
  }
}

interface Target {
  name: string;
  start(): Promise<Server>;
}

/** One round on one server: start, select, the first THREAD of each algorithm (ms), their CPU (s), stop. */
async function firstThreads(t: Target, invalidate: { corpus: Corpus; at: number } | null): Promise<{ ms: number[]; cpu: number }> {
  const s = await t.start();
  try {
    // As in the bench's sort scenario, the server has been up a while before the first THREAD: its
    // start (Quire's threads loading their modules and warming up) is not what is timed.
    await new Promise((r) => setTimeout(r, o.settleMs));
    const c = await ImapClient.connect(HOST, s.port);
    await c.login(USER, PASS);
    await c.command('SELECT INBOX');
    const ms: number[] = [];
    const cpu0 = cpuTimes(s.pids()).total;
    for (const alg of ALGS) {
      c.collect = [];
      const t0 = performance.now();
      await c.command(`UID THREAD ${alg} UTF-8 ALL`);
      ms.push(performance.now() - t0);
      const line = c.collect.find((l) => l.startsWith('* THREAD')) ?? '';
      c.collect = null;
      if (!line.startsWith('* THREAD (')) throw new Error(`${t.name} ${alg}: not a THREAD answer: ${line.slice(0, 60)}`);
    }
    const cpu = cpuTimes(s.pids()).total - cpu0;
    // The mailbox changes before the next start: every first THREAD of the next round computes.
    if (invalidate) await c.command(multiAppend('INBOX', invalidate.corpus, invalidate.at, invalidate.at + 1, false));
    await c.logout();
    return { ms, cpu };
  } finally {
    await s.stop();
  }
}

const o = args(process.argv.slice(2));
mkdirSync(o.cache, { recursive: true });
const corpus = await ensureCorpus(o.cache, o.seed, o.size + o.rounds + 1, log);
const body = { ...corpus, count: o.size };
const label = `${o.size / 1000}k`;
const dirA = path.join(o.cache, `thread-ab-${label}-A`);
const dirB = path.join(o.cache, `thread-ab-${label}-B`);
// A fresh copy of the loaded mailbox for each build at every invocation (a build's kept answers never carry over).
const master = path.join(o.cache, `thread-ab-${label}-loaded`);
if (!existsSync(path.join(master, 'indexed'))) {
  const loaded = existsSync(path.join(master, 'loaded'));
  if (!loaded) {
    rmSync(master, { recursive: true, force: true });
    mkdirSync(master, { recursive: true });
    quireUserAdd(o.a, master, USER, PASS);
  }
  const s = await startQuire(o.a, { dataDir: master, port: o.portBase + 43, log });
  try {
    if (!loaded) await loadQuire(s.port, USER, PASS, body, log);
    writeFileSync(path.join(master, 'loaded'), '');
    // The full-text indexing thread catches up after the load: left to run at every start, it would share the cores with the THREADs timed.
    await waitTextIndexed(path.join(master, 'quire.sqlite3'));
  } finally {
    await s.stop();
  }
  writeFileSync(path.join(master, 'indexed'), '');
}
for (const d of [dirA, dirB]) {
  rmSync(d, { recursive: true, force: true });
  cpSync(master, d, { recursive: true });
}
const targets: Target[] = [
  { name: 'A', start: () => startQuire(o.a, { dataDir: dirA, port: o.portBase + 43, log }) },
  { name: 'B', start: () => startQuire(o.b, { dataDir: dirB, port: o.portBase + 44, log }) },
];
const why = o.dovecot ? dovecotAvailable() : 'disabled with --no-dovecot';
if (why) log(`Dovecot skipped: ${why}`);
else {
  const p = dovecotPeer(path.join(o.cache, `thread-ab-dovecot-${label}`), o.dovecotPort, o.portBase + 24);
  mkdirSync(p.dir, { recursive: true });
  const marker = path.join(p.dir, 'bench-loaded');
  if (!dovecotUsers(p).has(USER)) peerCmd(p, 'adduser', USER, PASS);
  if (!existsSync(marker)) {
    // doveadm force-resync asks the running Dovecot's auth service for the user.
    const s = await startDovecot(p);
    try {
      await loadDovecot(p, USER, body, log);
    } finally {
      await s.stop();
    }
    writeFileSync(marker, '');
  }
  targets.push({ name: 'Dovecot', start: () => startDovecot(p) });
}

const results = new Map<string, { ms: number[]; cpu: number }[]>(targets.map((t) => [t.name, []]));
log(`${label}, ${o.rounds} rounds${o.invalidate ? ', one APPEND after each round' : ''}; load average ${loadavg()}`);
for (let round = 0; round < o.rounds; round++) {
  const order = targets.map((_, i) => targets[(i + round) % targets.length]!);
  for (const t of order) {
    const r = await firstThreads(t, o.invalidate ? { corpus, at: o.size + round } : null);
    results.get(t.name)!.push(r);
    log(`round ${round} ${t.name}: ${ALGS.map((a, i) => `${a} ${r.ms[i]!.toFixed(1)}`).join(', ')} ms; CPU ${(r.cpu * 1000).toFixed(0)} ms; load ${loadavg()}`);
  }
}
const fmt = (xs: number[]) => `${median(xs).toFixed(1)} (${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)})`;
// Round 0 apart: a build that keeps answers has none kept yet there.
console.log(`\n${label}, first THREAD after a start, ms: median (min–max) of rounds 1..${o.rounds - 1}${o.invalidate ? ' (mailbox changed before each start)' : ''}; round 0 apart; load average at the end ${loadavg()}\n`);
console.log(`| server | round 0: ${ALGS.join(' / ')} | ${ALGS.map((a) => `${a}`).join(' | ')} | server CPU for the three (ms) |`);
console.log(`|---|---|${ALGS.map(() => '---|').join('')}---|`);
for (const t of targets) {
  const rs = results.get(t.name)!;
  const later = rs.slice(1);
  console.log(`| ${t.name} | ${rs[0]!.ms.map((x) => x.toFixed(1)).join(' / ')} | ${ALGS.map((_, i) => fmt(later.map((r) => r.ms[i]!))).join(' | ')} | ${fmt(later.map((r) => r.cpu * 1000))} |`);
}
