// The mixed load (bench/lib/mixed.ts: N clients, seeded command mix, per-client
// consistency checks) on the PostgreSQL store, one node and two nodes (a
// user's clients alternate between the nodes, so pushes cross them), beside
// the SQLite store, in the same run. CPU per 1,000 operations is counted for
// Quire's processes and, separately, for the PostgreSQL backends serving the
// schema (pg_stat_activity by application_name; /proc), as the database's
// work is part of the cost. The bench's Dovecot (dovecot-peer, Maildir) runs
// the same load in the same invocation as the reference column.
//
//   npm run bench -- pg-mixed [--clients 10,50] [--seconds 10] [--seed 1] [--dovecot-port 17143 | --no-dovecot]
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import pg from 'pg';
import { ensureCorpus } from './lib/corpus.js';
import { cheapQuireHash } from './lib/load.js';
import { MIXED_USERS, cpuTimes, mixedUsers, runMixedPoint, type MixedPointResult } from './lib/mixed.js';
import { BENCH_DIR, HOST, buildQuire, dovecotAvailable, dovecotPeer, dovecotUsers, peerCmd, quireUserAdd, startDovecot, startQuire, type Server } from './lib/servers.js';
import { freePort } from './lib/free-port.js';

const PG_URL = process.env.QUIRE_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
/** Where the SQLite node, PostgreSQL node A and node B listen: free ports from this range (this helper's, 33000-33999). */
const PORT_RANGE = [33120, 33199] as const;
const PASS = 'pass';

/** utime+stime (s) of each pid still alive. */
function cpuOf(pids: number[]): Map<number, number> {
  const m = new Map<number, number>();
  for (const pid of pids) {
    try {
      const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
      m.set(pid, (Number(rest[11]) + Number(rest[12])) / 100);
    } catch {
      // gone
    }
  }
  return m;
}

async function backends(db: pg.Client, schema: string): Promise<number[]> {
  const r = await db.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE application_name = $1', [`quire:${schema}`]);
  return r.rows.map((x) => x.pid);
}

interface Row extends MixedPointResult {
  where: string;
  dbCpuPer1000: number | null;
}

export async function main(argv: string[]): Promise<void> {
  const get = (name: string, dflt: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : dflt;
  };
  const clientCounts = get('clients', '10,50').split(',').map(Number);
  const seconds = Number(get('seconds', '10'));
  const seed = Number(get('seed', '1'));
  const dovecotPort = Number(get('dovecot-port', '17143'));
  const why = argv.includes('--no-dovecot') ? 'disabled with --no-dovecot' : dovecotAvailable();
  const log = (s: string) => process.stderr.write(s + '\n');
  const cache = process.env.QUIRE_BENCH_CACHE ?? path.join(BENCH_DIR, '.cache');
  const corpus = await ensureCorpus(cache, seed, 1000, log);
  const main = buildQuire(log);
  const schema = `qt_pgnodes_mixed_${randomBytes(4).toString('hex')}`;
  const url = `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}schema=${schema}`;
  const dirs = ['sqlite', 'a', 'b'].map((n) => mkdtempSync(path.join(tmpdir(), `quire-pgmixed-${n}-`)));
  const db = new pg.Client({ connectionString: PG_URL });
  await db.connect();
  const servers: Server[] = [];
  const rows: Row[] = [];
  const load0 = loadavg()[0]!;
  try {
    const users = MIXED_USERS;
    for (const u of users) quireUserAdd(main, dirs[0]!, u, PASS);
    const sq = new Database(path.join(dirs[0]!, 'quire.sqlite3'));
    for (const u of users) sq.prepare('UPDATE users SET password_hash = ? WHERE name = ?').run(cheapQuireHash(PASS), u);
    sq.close();
    for (const u of users) {
      const r = spawnSync(process.execPath, [main, 'user', 'add', u, '--password-stdin', '--store', url], { input: PASS + '\n', encoding: 'utf8', env: { ...process.env, QUIRE_MIN_PASSWORD_LENGTH: '1' } });
      if (r.status !== 0) throw new Error(`user add ${u}: ${r.stderr}`);
    }
    for (const u of users) await db.query(`UPDATE "${schema}".users SET password_hash = $1 WHERE name = $2`, [cheapQuireHash(PASS), u]);
    const ports: number[] = [];
    for (let i = 0; i < 3; i++) ports.push(await freePort(HOST, PORT_RANGE[0], PORT_RANGE[1], ports));
    const PORTS = { sqlite: ports[0]!, a: ports[1]!, b: ports[2]! };
    const sqlite = await startQuire(main, { dataDir: dirs[0]!, port: PORTS.sqlite, workers: 1, serveArgs: ['--admin-port', 'off', '--pop3-port', 'off'], log });
    servers.push(sqlite);
    const pgArgs = ['--store', url, '--admin-port', 'off', '--pop3-port', 'off'];
    const a = await startQuire(main, { dataDir: dirs[1]!, port: PORTS.a, workers: 1, serveArgs: pgArgs, log });
    servers.push(a);
    const b = await startQuire(main, { dataDir: dirs[2]!, port: PORTS.b, workers: 1, serveArgs: pgArgs, log });
    servers.push(b);
    let dovecot: Server | null = null;
    if (why) log(`Dovecot column skipped: ${why}`);
    else {
      // Its LMTP port is not used by this load; IMAP on --dovecot-port (POP3, IMAPS and the rest derived from it by dovecot-peer).
      const p = dovecotPeer(path.join(cache, 'dovecot-pgmixed'), dovecotPort, dovecotPort - 19);
      mkdirSync(p.dir, { recursive: true });
      const have = dovecotUsers(p);
      for (const u of users) if (!have.has(u)) peerCmd(p, 'adduser', u, PASS);
      dovecot = await startDovecot(p);
      servers.push(dovecot);
    }
    for (const n of clientCounts) {
      // Interleaved per client count, so a busy machine hurts every column alike.
      const points: { where: string; port: number; portOf?: (id: number) => number; pids: () => number[]; pgDb: boolean }[] = [
        { where: 'Quire sqlite, 1 node (1 worker)', port: PORTS.sqlite, pids: () => sqlite.pids(), pgDb: false },
        { where: 'Quire postgres, 1 node (1 worker)', port: PORTS.a, pids: () => a.pids(), pgDb: true },
        { where: 'Quire postgres, 2 nodes (1 worker each)', port: PORTS.a, portOf: (id) => (Math.floor(id / mixedUsers(n)) % 2 === 0 ? PORTS.a : PORTS.b), pids: () => [...a.pids(), ...b.pids()], pgDb: true },
      ];
      const d = dovecot;
      if (d) points.push({ where: 'dovecot (Maildir)', port: d.port, pids: () => d.pids(), pgDb: false });
      for (const p of points) {
        log(`  ${p.where}, ${n} clients`);
        const pids0 = p.pgDb ? await backends(db, schema) : [];
        const before = cpuOf(pids0);
        const res = await runMixedPoint({ name: p.where, port: p.port, portOf: p.portOf, pids: p.pids }, { clients: n, logins: false, seconds, seed, corpus, log });
        let dbCpuPer1000: number | null = null;
        if (p.pgDb) {
          const after = cpuOf([...new Set([...pids0, ...(await backends(db, schema))])]);
          let used = 0;
          for (const [pid, t] of after) used += t - (before.get(pid) ?? 0);
          dbCpuPer1000 = (used * 1000) / Math.max(1, res.ops);
        }
        rows.push({ ...res, where: p.where, dbCpuPer1000 });
      }
    }
  } finally {
    for (const s of servers) await s.stop();
    await db.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined);
    await db.end();
    for (const d of dirs) if (existsSync(d)) rmSync(d, { recursive: true, force: true });
  }
  const load1 = loadavg()[0]!;
  const loaded = load0 > 1.5 || load1 > 1.5;
  console.log(`\nMixed load, ${seconds} s per point. Load average ${load0.toFixed(1)} -> ${load1.toFixed(1)}${loaded ? ' (LOADED machine: not quiet-machine figures)' : ''}.\n`);
  console.log('| store | clients | ops/s | Quire CPU s / 1k ops | PostgreSQL backends CPU s / 1k ops | latency p50 / p99 ms | errors / failures |');
  console.log('|---|---|---|---|---|---|---|');
  const r2 = (x: number) => (Number.isFinite(x) ? x.toFixed(3) : '-');
  for (const r of rows) {
    console.log(`| ${r.where} | ${r.clients} | ${Math.round(r.opsPerSec)} | ${r2(r.cpuPer1000)} | ${r.dbCpuPer1000 === null ? '-' : r2(r.dbCpuPer1000)} | ${r.overall.p50.toFixed(1)} / ${r.overall.p99.toFixed(1)} | ${r.errors} / ${r.failures} |`);
  }
  for (const r of rows) if (r.samples.length) log(`${r.where} ${r.clients}: ${r.samples.slice(0, 3).join(' | ')}`);
  console.log(JSON.stringify({ load: [load0, load1], rows: rows.map(({ samples: _s, ...x }) => x) }));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    console.error(e instanceof Error ? e.stack : e);
    process.exit(1);
  });
}
