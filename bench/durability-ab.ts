// sqlite.durability "mail" vs "all" on one in-process SQLite store (no IMAP,
// no second worker): C concurrent writers, each looping over APPEND (15%),
// STORE of one flag (75%) and STORE \Deleted + UID EXPUNGE of one message
// (10%, above 25 messages), each step after a turn of the event loop (as a
// command arriving on a socket would be). Per point: operations, WAL syncs,
// p50 of each write and of its parts that wait for the disk (the body file's
// fdatasync + directory fsync, `blob`; the WAL's fdatasync, `sync`). The
// points alternate modes, so a loaded machine weighs on both alike; the disk
// is what is measured, so other processes' fsyncs weigh most.
//
//   npx tsx bench/durability-ab.ts [--seconds 3] [--rounds 2] [--clients 6] [--bounds 20,5] [--pace MS]
//
// --pace MS: each writer waits MS between its steps instead of a bare turn of
// the loop, so both modes see the same write rate (without it the faster
// mode also writes more per second, and every fsync has more to flush).
// --bounds: the MAX_UNSYNCED_MS values tried for "mail" (durability.ts; 20 is the default).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SqliteMailStore, type SqliteDurability } from '../src/store/sqlite/index.js';

const o = { seconds: 3, rounds: 2, clients: 6, bounds: [20], pace: 0 };
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i]!;
  const v = process.argv[++i] ?? '';
  if (a === '--seconds') o.seconds = Number(v);
  else if (a === '--rounds') o.rounds = Number(v);
  else if (a === '--clients') o.clients = Number(v);
  else if (a === '--bounds') o.bounds = v.split(',').map(Number);
  else if (a === '--pace') o.pace = Number(v);
  else throw new Error(`unknown option ${a}`);
}

/** Messages each point starts with; expunges stop below MIN_MESSAGES so the mailbox stays about this size. */
const START_MESSAGES = 30;
const MIN_MESSAGES = 25;
const BODY = Buffer.from(`Subject: bench\r\n\r\n${'y'.repeat(4000)}\r\n`);

const p50 = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1] ?? NaN;
};

async function point(mode: SqliteDurability, maxUnsyncedMs: number): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'quire-durab-'));
  const s = await SqliteMailStore.open({ dataDir: dir, synchronous: 'FULL', durability: mode, maxUnsyncedMs });
  const lat = { append: [] as number[], store: [] as number[], expunge: [] as number[], blob: [] as number[], sync: [] as number[] };
  // The two disk waits, timed from outside (bench only: private members).
  const inner = s as unknown as { blobs: { writeAll: (...a: unknown[]) => Promise<void> }; walSync: { sync: () => Promise<void> } };
  const timed = <A extends unknown[]>(fn: (...a: A) => Promise<void>, into: number[]) => async (...a: A) => {
    const t = performance.now();
    try {
      await fn(...a);
    } finally {
      into.push(performance.now() - t);
    }
  };
  inner.blobs.writeAll = timed(inner.blobs.writeAll.bind(inner.blobs), lat.blob);
  inner.walSync.sync = timed(inner.walSync.sync.bind(inner.walSync), lat.sync);
  let ops = 0;
  try {
    const u = await s.createUser('u', 'h');
    const box = await s.createMailbox(u.id, 'INBOX');
    await s.appendMessages(box.id, Array.from({ length: START_MESSAGES }, () => ({ data: BODY, flags: [] })));
    const syncs0 = s.walSyncCount();
    lat.blob.length = 0;
    lat.sync.length = 0;
    const end = performance.now() + o.seconds * 1000;
    await Promise.all(
      Array.from({ length: o.clients }, async (_, c) => {
        let r = c + 1;
        while (performance.now() < end) {
          await new Promise((res) => (o.pace > 0 ? setTimeout(res, o.pace) : setImmediate(res)));
          r = (r * 1103515245 + 12345) & 0x7fffffff;
          const x = r % 100;
          const uids = await s.listUids(box.id);
          const uid = uids[r % uids.length]!;
          const t = performance.now();
          if (x < 15) {
            await s.appendMessages(box.id, [{ data: BODY, flags: [] }]);
            lat.append.push(performance.now() - t);
          } else if (x < 90 || uids.length <= MIN_MESSAGES) {
            await s.storeFlags(box.id, [uid], x % 2 ? 'add' : 'remove', ['\\Flagged']);
            lat.store.push(performance.now() - t);
          } else {
            await s.storeFlags(box.id, [uid], 'add', ['\\Deleted']);
            await s.expunge(box.id, [uid]);
            lat.expunge.push(performance.now() - t);
          }
          ops++;
        }
      }),
    );
    const syncs = s.walSyncCount() - syncs0;
    const f = (xs: number[]) => p50(xs).toFixed(2);
    return `| ${mode}${mode === 'mail' ? ` (${maxUnsyncedMs} ms)` : ''} | ${(ops / o.seconds).toFixed(0)} | ${syncs} | ${f(lat.append)} | ${f(lat.store)} | ${f(lat.expunge)} | ${f(lat.blob)} | ${f(lat.sync)} |`;
  } finally {
    await s.close();
    await rm(dir, { recursive: true, force: true });
  }
}

const modes: [SqliteDurability, number][] = [...o.bounds.map((b) => ['mail', b] as [SqliteDurability, number]), ['all', 0]];
console.log('| durability | ops/s | WAL syncs | APPEND p50 ms | STORE | EXPUNGE | body fsyncs | WAL sync |');
console.log('|---|---|---|---|---|---|---|---|');
for (let round = 0; round < o.rounds; round++) {
  const order = round % 2 ? [...modes].reverse() : modes;
  for (const [m, b] of order) console.log(await point(m, b));
}
