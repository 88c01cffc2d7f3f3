// Idle connections over every worker of one Quire build: memory per idle
// authenticated connection (LOGIN, SELECT INBOX, IDLE) summed over the
// primary and all workers (PSS and RSS from /proc), then IDLE push latency
// with many idle clients (bench/idle-push.ts) on the same server.
//
//   npx tsx bench/idle-mem.ts MAIN_JS DATA_DIR [--conns 1000] [--push 1000] [--events 20]
//                             [--workers 2] [--port 34543]
//
// DATA_DIR: a Quire data directory with the bench's users (idle1..idle10 and
// push, password "pass"), e.g. a copy of bench/.cache/quire-s1 after any
// `npm run bench` run. Under load, label the latency figures as such.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { runIdlePush } from './idle-push.js';
import { BENCH_DIR, HOST, pssKb, startQuire } from './lib/servers.js';

const log = (s: string) => process.stderr.write(`[idle ${new Date().toISOString().slice(11, 19)}] ${s}\n`);
const argv = process.argv.slice(2);
const opt = (name: string, dflt: number) => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const [main, dataDir] = argv.filter((a, i) => !a.startsWith('--') && !argv[i - 1]?.startsWith('--'));
if (!main || !dataDir) throw new Error('usage: tsx bench/idle-mem.ts MAIN_JS DATA_DIR [options]');
const conns = opt('--conns', 1000);
const pushClients = opt('--push', 1000);

function rssKb(pids: number[]): number {
  let total = 0;
  for (const pid of pids) {
    try {
      const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) total += Number(m[1]);
    } catch {
      // exited meanwhile
    }
  }
  return total;
}

/** Holds `n` idle connections in a child process (bench/conn-holder.ts); resolves once they are up. */
async function hold(port: number, n: number) {
  const tsx = path.join(BENCH_DIR, '..', 'node_modules', '.bin', 'tsx');
  const child = spawn('bash', ['-c', 'ulimit -n "$(ulimit -Hn)"; exec "$0" "$@"', tsx, path.join(BENCH_DIR, 'conn-holder.ts'), String(port), String(n), 'idle', '10', 'pass'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const report = await new Promise<{ ready: number; ms: number; error?: string }>((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) resolve(JSON.parse(buf.slice(0, nl)) as { ready: number; ms: number });
    });
    child.once('exit', (code) => reject(new Error(`connection holder exited (${code})`)));
  });
  return { ...report, close: async () => (child.stdin!.end(), await exited) };
}

const server = await startQuire(path.resolve(main), { dataDir: path.resolve(dataDir), port: opt('--port', 34543), workers: opt('--workers', 2), log });
try {
  const settle = async () => {
    await server.gc?.();
    await new Promise((r) => setTimeout(r, 1500));
  };
  await settle();
  const pids = server.pids();
  const [pss0, rss0] = [pssKb(pids), rssKb(pids)];
  const h = await hold(server.port, conns);
  await new Promise((r) => setTimeout(r, 2000));
  await settle();
  const [pss1, rss1] = [pssKb(server.pids()), rssKb(server.pids())];
  log(`${h.ready}/${conns} idle connections up in ${(h.ms / 1000).toFixed(1)} s over ${pids.length} processes`);
  console.log(`idle authenticated connections: ${h.ready}; per connection, all processes: PSS ${((pss1 - pss0) / h.ready).toFixed(1)} KiB, RSS ${((rss1 - rss0) / h.ready).toFixed(1)} KiB (PSS ${(pss0 / 1024).toFixed(0)} -> ${(pss1 / 1024).toFixed(0)} MiB)`);
  await h.close();
  await new Promise((r) => setTimeout(r, 2000));
  if (pushClients > 0) {
    const res = await runIdlePush({ host: HOST, port: server.port, user: 'push', pass: 'pass', clients: pushClients, events: opt('--events', 20), eventLoopDelay: server.eventLoopDelay, log });
    console.log(`IDLE push, ${pushClients} idle clients: from the writer's send p50 ${res.fromSend.p50.toFixed(1)} ms, p99 ${res.fromSend.p99.toFixed(1)} ms, max ${res.fromSend.max.toFixed(1)} ms; from its OK p50 ${res.fromOk.p50.toFixed(1)} ms; writer p50 ${res.writerMs.p50.toFixed(1)} ms; missed ${res.missed}`);
  }
} finally {
  await server.stop();
}
