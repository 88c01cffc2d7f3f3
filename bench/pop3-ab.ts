// The POP3 download (bench/pop3.ts) against long-running servers, one
// download of each in turn (A, B, ..., then the order rotated), so a loaded
// machine weighs on all alike: Quire builds A and B (B optional) and the
// bench's private Dovecot (optional). Per download: wall time of the 1,000
// RETRs, server CPU (all its processes and threads, from /proc), and for
// Quire where the session waited (its POP3 logout log line: readWaitMs on
// body reads, drainWaitMs on the socket draining), which tells a server-side
// stall from a client that reads slowly. Each server first gets
// --warmups-per-worker downloads per Quire worker (the same count for all).
//
//   npx tsx bench/pop3-ab.ts A_MAIN_JS [B_MAIN_JS] [--dovecot] [--runs 25] [--warmups-per-worker 5]
//                            [--workers N] [--port-base 22200] [--dovecot-port 22290] [--cache DIR] [--pause-ms 50]
//
// A_MAIN_JS / B_MAIN_JS: a compiled `cli/main.js` (bench/.build/quire/cli/main.js after
// `npm run bench`, or any build made with `tsc --outDir`). Each gets a fresh
// data directory under the cache with the 1k corpus loaded over IMAP; the
// Dovecot is the one `npm run bench` keeps under the cache (loaded if needed).
import { mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import path from 'node:path';
import { ensureCorpus } from './lib/corpus.js';
import { cpuTimes } from './lib/mixed.js';
import { loadDovecot, loadQuire } from './lib/load.js';
import { BENCH_DIR, dovecotPeer, dovecotUsers, peerCmd, quireUserAdd, startDovecot, startQuire, type Server } from './lib/servers.js';
import { POP3_PORT_OFFSET, Pop3ClientProcess } from './pop3.js';

const log = (s: string) => process.stderr.write(`[pop3-ab ${new Date().toISOString().slice(11, 19)}] ${s}\n`);
const USER = 'bench1k';
const PASS = 'pass';
const MESSAGES = 1000;

function args(argv: string[]) {
  const o = { builds: [] as string[], dovecot: false, runs: 25, warmupsPerWorker: 5, workers: 0, portBase: 22200, dovecotPort: 0, cache: path.join(BENCH_DIR, '.cache'), seed: 1, pauseMs: 50 };
  for (let i = 0; i < argv.length; i++) {
    const v = () => argv[++i] ?? '';
    const a = argv[i]!;
    if (a === '--dovecot') o.dovecot = true;
    else if (a === '--runs') o.runs = Number(v());
    else if (a === '--warmups-per-worker') o.warmupsPerWorker = Number(v());
    else if (a === '--workers') o.workers = Number(v());
    else if (a === '--port-base') o.portBase = Number(v());
    else if (a === '--dovecot-port') o.dovecotPort = Number(v());
    else if (a === '--cache') o.cache = path.resolve(v());
    else if (a === '--pause-ms') o.pauseMs = Number(v());
    else if (a.startsWith('--')) throw new Error(`unknown option ${a}`);
    else o.builds.push(path.resolve(a));
  }
  if (o.builds.length < 1 || o.builds.length > 2) throw new Error('usage: tsx bench/pop3-ab.ts A_MAIN_JS [B_MAIN_JS] [--dovecot] [options]');
  if (!o.dovecotPort) o.dovecotPort = o.portBase + 90;
  return o;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

interface Target {
  name: string;
  server: Server;
  /** Quire's POP3 logout lines, oldest first (consumed per download). */
  logouts: { readWaitMs: number; pieceWaitMs: number; readWaits: number; drainWaitMs: number; sessionMs: number }[];
}

interface Sample {
  retrMs: number;
  ms: number;
  cpuMs: number;
  clientCpuMs: number;
  readWaitMs?: number;
  pieceWaitMs?: number;
  readWaits?: number;
  drainWaitMs?: number;
  load: number;
}

const o = args(process.argv.slice(2));
const corpus = await ensureCorpus(o.cache, o.seed, MESSAGES, log);
const workers = o.workers || availableParallelism();
const targets: Target[] = [];
try {
  for (const [k, main] of o.builds.entries()) {
    const name = `quire-${'AB'[k]}`;
    const dataDir = path.join(o.cache, `pop3-ab-${'AB'[k]}`);
    rmSync(dataDir, { recursive: true, force: true });
    mkdirSync(dataDir, { recursive: true });
    quireUserAdd(main, dataDir, USER, PASS);
    const t: Target = { name, server: null as unknown as Server, logouts: [] };
    t.server = await startQuire(main, {
      dataDir,
      port: o.portBase + 43 + 10 * k,
      workers: o.workers || undefined,
      serveArgs: ['--log-level', 'info', '--log-format', 'json'],
      log,
      onLog: (line) => {
        if (!line.includes('POP3 logout')) return;
        try {
          const j = JSON.parse(line) as { readWaitMs?: number; pieceWaitMs?: number; readWaits?: number; drainWaitMs?: number; sessionMs?: number };
          t.logouts.push({ readWaitMs: j.readWaitMs ?? NaN, pieceWaitMs: j.pieceWaitMs ?? NaN, readWaits: j.readWaits ?? NaN, drainWaitMs: j.drainWaitMs ?? NaN, sessionMs: j.sessionMs ?? NaN });
        } catch {
          /* not JSON: an older build's log format */
        }
      },
    });
    log(`${name}: loading ${MESSAGES} messages`);
    await loadQuire(t.server.port, USER, PASS, corpus, log);
    targets.push(t);
  }
  if (o.dovecot) {
    const p = dovecotPeer(path.join(o.cache, `dovecot-s${o.seed}`), o.dovecotPort, o.portBase + 24);
    mkdirSync(p.dir, { recursive: true });
    if (!dovecotUsers(p).has(USER)) peerCmd(p, 'adduser', USER, PASS);
    const server = await startDovecot(p);
    const markerFile = path.join(p.dir, 'bench-loaded.json');
    const marker = existsSync(markerFile) ? (JSON.parse(readFileSync(markerFile, 'utf8')) as { sizes: number[] }) : { sizes: [] };
    if (!marker.sizes.includes(MESSAGES)) {
      await loadDovecot(p, USER, corpus, log);
      marker.sizes.push(MESSAGES);
      writeFileSync(markerFile, JSON.stringify(marker));
    }
    targets.push({ name: 'dovecot', server, logouts: [] });
  }

  // One client process for every server: downloads alternate, so it is equally warm for each.
  const client = await Pop3ClientProcess.start();
  const samples = new Map<string, Sample[]>(targets.map((t) => [t.name, []]));
  const once = async (t: Target): Promise<Sample> => {
    const cpu0 = cpuTimes(t.server.pids()).total;
    const r = await client.download(t.server.port + POP3_PORT_OFFSET, USER, PASS, MESSAGES);
    const cpuMs = (cpuTimes(t.server.pids()).total - cpu0) * 1000;
    if (r.messages !== MESSAGES) throw new Error(`${t.name}: downloaded ${r.messages} messages`);
    return { retrMs: r.retrMs, ms: r.ms, cpuMs, clientCpuMs: r.clientCpuMs, load: loadavg()[0]! };
  };
  const pause = () => new Promise((r) => setTimeout(r, o.pauseMs));
  const warmups = o.warmupsPerWorker * workers;
  log(`${warmups} warm-ups per server (${o.warmupsPerWorker} x ${workers} workers), then ${o.runs} rounds; load average ${loadavg()[0]!.toFixed(2)}`);
  for (let i = 0; i < warmups; i++) for (const t of targets) await once(t);
  // The logout lines of the warm-ups are not part of the samples (they arrive a moment after QUIT's +OK).
  await pause();
  for (const t of targets) t.logouts.length = 0;
  for (let round = 0; round < o.runs; round++) {
    const order = targets.map((_, i) => targets[(i + round) % targets.length]!);
    for (const t of order) {
      const s = await once(t);
      samples.get(t.name)!.push(s);
      await pause();
    }
  }
  await client.stop();
  await pause();
  // Logouts arrive in download order per server.
  for (const t of targets) {
    const ss = samples.get(t.name)!;
    t.logouts.forEach((l, i) => {
      if (ss[i]) Object.assign(ss[i]!, { readWaitMs: l.readWaitMs, pieceWaitMs: l.pieceWaitMs, readWaits: l.readWaits, drainWaitMs: l.drainWaitMs });
    });
  }
  const loads = [...samples.values()].flat().map((s) => s.load);
  console.log(`\nPOP3 download of ${MESSAGES} messages (${(corpus.totalBytes / 1e6).toFixed(0)} MB), ${o.runs} interleaved rounds after ${warmups} warm-ups each; load average ${Math.min(...loads).toFixed(1)}-${Math.max(...loads).toFixed(1)} (1-min)\n`);
  console.log('| server | the 1,000 RETRs, median (min-max) ms | whole session ms | server CPU ms / download | client CPU ms | Quire readWaitMs (of it: pieces of large messages; waits) | Quire drainWaitMs |');
  console.log('|---|---|---|---|---|---|---|');
  const f = (x: number) => (Number.isNaN(x) ? '-' : x >= 100 ? x.toFixed(0) : x.toFixed(1));
  for (const t of targets) {
    const ss = samples.get(t.name)!;
    const col = (k: keyof Sample) => ss.map((s) => s[k] as number).filter((x) => x !== undefined && !Number.isNaN(x));
    const r = col('retrMs');
    console.log(
      `| ${t.name} | ${f(median(r))} (${f(Math.min(...r))}-${f(Math.max(...r))}) | ${f(median(col('ms')))} | ${f(median(col('cpuMs')))} | ${f(median(col('clientCpuMs')))} | ${f(median(col('readWaitMs')))} (${f(median(col('pieceWaitMs')))}; ${f(median(col('readWaits')))}) | ${f(median(col('drainWaitMs')))} |`,
    );
  }
} finally {
  for (const t of targets) await t.server.stop().catch(() => undefined);
}
