// Time spent by the SQLite store on the event loop per write (issue 11): the
// synchronous part of APPEND, COPY, STORE and EXPUNGE of single messages in a
// 30-message mailbox, as the mixed load does them, with synchronous NORMAL (no
// fsync: what is left is the work on the serving thread: SQL, triggers, index
// updates, WAL page writes). Several builds interleaved, median of rounds.
//
//   npx tsx bench/store-writes.ts A_STORE_JS [B_STORE_JS ...] [--ops 2000] [--rounds 5] [--durable]
//
// A_STORE_JS: a build's compiled store/sqlite/store.js (bench/.build/quire/... or a
// checkout's tsc output).
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { performance } from 'node:perf_hooks';

const argv = process.argv.slice(2);
const builds: string[] = [];
let ops = 2000;
let rounds = 5;
/** --durable: synchronous FULL (body and WAL syncs awaited, as a server's APPEND OK waits): wall time, mostly syncs. */
let durable = false;
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--ops') ops = Number(argv[++i]);
  else if (argv[i] === '--rounds') rounds = Number(argv[++i]);
  else if (argv[i] === '--durable') durable = true;
  else builds.push(path.resolve(argv[i]!));
}
if (builds.length === 0) throw new Error('usage: tsx bench/store-writes.ts STORE_JS [STORE_JS ...] [--ops N] [--rounds N]');

function message(i: number): Buffer {
  const body = `Hello ${i},\r\n\r\n${'Some text of a message body. '.repeat(40)}\r\n`;
  return Buffer.from(
    `From: Sender ${i % 7} <s${i % 7}@example.org>\r\nTo: Rcpt <r@example.com>\r\nCc: c${i % 3}@example.net\r\nSubject: ${i % 5 ? 'Re: ' : ''}topic ${i % 11}\r\n` +
      `Date: Mon, 7 Dec 2026 10:${String(i % 60).padStart(2, '0')}:00 +0000\r\nMessage-ID: <m${i}.${Math.random()}@example.org>\r\n` +
      (i % 3 ? `In-Reply-To: <m${i - 1}@example.org>\r\nReferences: <m${i - 1}@example.org>\r\n` : '') +
      `MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${body}`,
  );
}

type Times = Record<'append' | 'copy' | 'store' | 'expunge', number>;

async function measure(storeJs: string): Promise<Times> {
  const { SqliteMailStore } = (await import(pathToFileURL(storeJs).href)) as typeof import('../src/store/sqlite/store.js');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'quire-sw-'));
  const store = await SqliteMailStore.open({ dataDir: dir, synchronous: durable ? 'FULL' : 'NORMAL' });
  // As under `quire serve`: the serving connection never checkpoints in its commits (another thread does).
  store.startBackgroundWork(() => {}, { indexer: false, search: false });
  try {
    const u = await store.createUser('u', 'x');
    const a = await store.createMailbox(u.id, 'A');
    const b = await store.createMailbox(u.id, 'B');
    for (let i = 0; i < 30; i++) await store.appendMessages(a.id, [{ data: message(i), flags: [] }]);
    for (let i = 0; i < 30; i++) await store.appendMessages(b.id, [{ data: message(100 + i), flags: [] }]);
    const t: Times = { append: 0, copy: 0, store: 0, expunge: 0 };
    const frames: Times = { append: 0, copy: 0, store: 0, expunge: 0 };
    const bodies = Array.from({ length: 64 }, (_, i) => message(1000 + i));
    const wal = path.join(dir, 'quire.sqlite3-wal');
    const walBytes = () => statSync(wal, { throwIfNoEntry: false })?.size ?? 0;
    const time = async (k: keyof Times, fn: () => Promise<unknown>) => {
      const w = walBytes();
      const s = performance.now();
      await fn();
      t[k] += performance.now() - s;
      frames[k] += (walBytes() - w) / (4096 + 24);
    };
    for (let i = 0; i < ops; i++) {
      let uid = 0;
      await time('append', async () => (uid = (await store.appendMessages(b.id, [{ data: bodies[i % 64]!, flags: [] }])).uids[0]!));
      const src = (await store.listUids(a.id))[i % 30]!;
      let copied = 0;
      await time('copy', async () => (copied = (await store.copyMessages(a.id, [src], b.id)).destUids[0]!));
      await time('store', () => store.storeFlags(b.id, [uid, copied], 'add', ['\\Deleted']));
      await time('expunge', () => store.expunge(b.id, [uid, copied]));
    }
    for (const k of Object.keys(t) as (keyof Times)[]) t[k] = (t[k] / ops) * 1000;
    process.stderr.write(`WAL pages written per op: ${Object.entries(frames).map(([n, v]) => `${n} ${(v / ops).toFixed(1)}`).join(', ')}\n`);
    return t;
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const results = builds.map(() => [] as Times[]);
for (let r = 0; r < rounds; r++) {
  const order = r % 2 ? [...builds.keys()].reverse() : [...builds.keys()];
  for (const k of order) {
    const t = await measure(builds[k]!);
    results[k]!.push(t);
    process.stderr.write(`round ${r + 1} ${'ABCDEFG'[k]}: ${Object.entries(t).map(([n, v]) => `${n} ${v.toFixed(0)} µs`).join(', ')}\n`);
  }
}
const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[xs.length >> 1]!;
console.log(`| build | ${['append', 'copy', 'store', 'expunge'].map((k) => `${k} µs`).join(' | ')} |`);
console.log(`|---|---|---|---|---|`);
for (const [k, rs] of results.entries()) {
  console.log(`| ${'ABCDEFG'[k]} | ${(['append', 'copy', 'store', 'expunge'] as const).map((n) => median(rs.map((x) => x[n])).toFixed(0)).join(' | ')} |`);
}
