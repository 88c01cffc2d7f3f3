// Server CPU per command, one command type at a time (issue 11): N clients,
// each logged in with its mailbox selected, send one kind of command in a
// closed loop; the server's CPU (utime+stime of every process, /proc) over
// the timed commands, per 1,000 commands. Several builds are measured
// interleaved (A, B, B, A, ...) so a loaded machine weighs on each alike.
// The mailboxes are bench/lib/mixed.ts's (30 messages each, refilled once per build).
//
//   npx tsx bench/percmd.ts A_MAIN_JS [B_MAIN_JS ...] [--cmd fetch-body,fetch-flags,...]
//        [--clients 10] [--commands 3000] [--rounds 3] [--workers 2] [--port-base 34300] [--cache DIR] [--profile]
//
// --profile: node --cpu-prof for every build, summarised at the end (bench/lib/profile.ts; sampling
// slows the server, so its CPU figures are then only relative).
//
// Commands: fetch-body (UID FETCH of one message's BODY.PEEK[]), fetch-flags
// (FETCH 1:* (UID FLAGS)), fetch-envelope (the newest 10 with ENVELOPE),
// search (SEARCH UNSEEN), status (STATUS of the other mailbox), noop, select
// (SELECT of the mailbox again); and one write for scale: store (UID STORE
// +/-FLAGS.SILENT of a keyword, durable). Only `store` writes (flags only, so
// the mailboxes keep their messages).
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { ensureCorpus } from './lib/corpus.js';
import { ImapClient } from './lib/imap.js';
import { MIXED_USERS, appendableMessages, cpuTimes, resetMailboxes } from './lib/mixed.js';
import { summarizeProfileDir } from './lib/profile.js';
import { BENCH_DIR, quireUserAdd, startQuire, type Server } from './lib/servers.js';

const HOST = '127.0.0.1';
/** Clients per user (the mixed load's sharing: about ten sessions on each user's mailboxes). */
const CLIENTS_PER_USER = 10;
/** Untimed commands per client before each timed run (JIT, caches). */
const WARMUP_PER_CLIENT = 30;

const log = (s: string) => process.stderr.write(`[percmd ${new Date().toISOString().slice(11, 19)}] ${s}\n`);

/** The command a client sends next (`n`: how many it has sent; the mailbox holds 30 messages). */
const COMMANDS: Record<string, (n: number) => string> = {
  'fetch-body': (n) => `UID FETCH ${1 + (n % 30)} BODY.PEEK[]`,
  'fetch-flags': () => 'FETCH 1:* (UID FLAGS)',
  'fetch-envelope': () => 'FETCH 21:* (UID ENVELOPE)',
  search: () => 'SEARCH UNSEEN',
  status: () => 'STATUS Work (MESSAGES UIDNEXT UNSEEN)',
  noop: () => 'NOOP',
  select: () => 'SELECT INBOX',
  // A write, for scale: a durable flag change (+ then - of one keyword on each message in turn).
  store: (n) => `UID STORE ${1 + (n % 30)} ${n % 60 < 30 ? '+' : '-'}FLAGS.SILENT ($Percmd)`,
};

function args(argv: string[]) {
  const o = { builds: [] as string[], cmds: Object.keys(COMMANDS), clients: 10, commands: 3000, rounds: 3, workers: 2, portBase: 34300, cache: path.join(BENCH_DIR, '.cache'), seed: 1, profile: false };
  for (let i = 0; i < argv.length; i++) {
    const v = () => argv[++i] ?? '';
    const a = argv[i]!;
    if (a === '--cmd') o.cmds = v().split(',');
    else if (a === '--clients') o.clients = Number(v());
    else if (a === '--commands') o.commands = Number(v());
    else if (a === '--rounds') o.rounds = Number(v());
    else if (a === '--workers') o.workers = Number(v());
    else if (a === '--port-base') o.portBase = Number(v());
    else if (a === '--cache') o.cache = path.resolve(v());
    else if (a === '--profile') o.profile = true;
    else o.builds.push(path.resolve(a));
  }
  for (const c of o.cmds) if (!COMMANDS[c]) throw new Error(`unknown --cmd ${c}; one of ${Object.keys(COMMANDS).join(', ')}`);
  if (o.builds.length === 0) throw new Error('usage: tsx bench/percmd.ts A_MAIN_JS [B_MAIN_JS ...] [options]');
  return o;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** `total` commands of kind `cmd` over the clients, each client in a closed loop; the server's CPU over them. */
async function measure(s: Server, clients: ImapClient[], cmd: string, total: number): Promise<{ cpuPer1000: number; system: number; perSec: number }> {
  const next = COMMANDS[cmd]!;
  const loop = async (c: ImapClient, count: number) => {
    for (let n = 0; n < count; n++) await c.command(next(n));
  };
  await Promise.all(clients.map((c) => loop(c, WARMUP_PER_CLIENT)));
  const per = Math.ceil(total / clients.length);
  const before = cpuTimes(s.pids());
  const t0 = performance.now();
  await Promise.all(clients.map((c) => loop(c, per)));
  const secs = (performance.now() - t0) / 1000;
  const after = cpuTimes(s.pids());
  const n = per * clients.length;
  return { cpuPer1000: ((after.total - before.total) / n) * 1000, system: (after.system - before.system) / Math.max(1e-9, after.total - before.total), perSec: n / secs };
}

const o = args(process.argv.slice(2));
const corpus = await ensureCorpus(o.cache, o.seed, 1000, log);
const users = MIXED_USERS.slice(0, Math.max(1, Math.ceil(o.clients / CLIENTS_PER_USER)));
const servers: Server[] = [];
const profileDirs: string[] = [];
const sessions: ImapClient[][] = [];
const label = (k: number) => String.fromCharCode(65 + k);
try {
  for (const [k, main] of o.builds.entries()) {
    const dataDir = path.join(o.cache, `percmd-${label(k)}`);
    rmSync(dataDir, { recursive: true, force: true });
    mkdirSync(dataDir, { recursive: true });
    for (const u of users) quireUserAdd(main, dataDir, u, 'pass');
    const cpuProfDir = o.profile ? path.join(o.cache, 'profiles', `percmd-${label(k)}-${Date.now()}`) : undefined;
    if (cpuProfDir) profileDirs.push(cpuProfDir);
    const s = await startQuire(main, { dataDir, port: o.portBase + 43 + 100 * k, workers: o.workers, log, cpuProfDir });
    servers.push(s);
    await resetMailboxes({ name: `quire-${label(k)}`, port: s.port, pids: () => s.pids() }, users, corpus, appendableMessages(corpus), o.seed);
    const cs: ImapClient[] = [];
    for (let i = 0; i < o.clients; i++) {
      const c = await ImapClient.connect(HOST, s.port);
      await c.login(users[i % users.length]!, 'pass');
      await c.command('SELECT INBOX');
      cs.push(c);
    }
    sessions.push(cs);
    log(`${label(k)}: ${main} on port ${s.port}, ${o.clients} sessions`);
  }
  const results = new Map<string, number[][]>();
  for (const cmd of o.cmds) {
    results.set(cmd, o.builds.map(() => []));
    for (let round = 0; round < o.rounds; round++) {
      const order = o.builds.map((_, k) => k);
      if (round % 2) order.reverse();
      for (const k of order) {
        const r = await measure(servers[k]!, sessions[k]!, cmd, o.commands);
        results.get(cmd)![k]!.push(r.cpuPer1000);
        log(`${label(k)} ${cmd} round ${round + 1}: ${r.cpuPer1000.toFixed(3)} CPU s / 1k commands (kernel ${(100 * r.system).toFixed(0)}%), ${r.perSec.toFixed(0)} commands/s`);
      }
    }
  }
  const head = o.builds.map((_, k) => label(k));
  console.log(`| command (${o.clients} clients) | ${head.map((h) => `CPU ms / command ${h} (median; runs)`).join(' | ')} |${o.builds.length > 1 ? ' B / A |' : ''}`);
  console.log(`|---|${head.map(() => '---|').join('')}${o.builds.length > 1 ? '---|' : ''}`);
  for (const [cmd, per] of results) {
    const m = per.map(median);
    const cells = per.map((xs, k) => `${m[k]!.toFixed(3)} (${xs.map((x) => x.toFixed(3)).join(', ')})`);
    console.log(`| ${cmd} | ${cells.join(' | ')} |${o.builds.length > 1 ? ` ${(m[1]! / m[0]!).toFixed(2)} |` : ''}`);
  }
} finally {
  for (const cs of sessions) for (const c of cs) c.destroy();
  for (const s of servers) await s.stop();
}
for (const [k, d] of profileDirs.entries()) console.log(`\nProfile of build ${label(k)}:\n${await summarizeProfileDir(d, 40)}`);
