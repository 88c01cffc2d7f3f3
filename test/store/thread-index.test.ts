// The SQLite store's thread index (schema V_THREAD_INDEX, src/store/sqlite/
// threading.ts) against today's THREAD, the oracle: for the generated thread
// corpus (test/helpers/thread-corpus.ts: broken and truncated References,
// duplicate and missing Message-IDs, a loop, equal dates) and the bench's
// generated mailbox (bench/lib/corpus.ts: replies, References chains,
// "Re:"/"Fwd:" subjects), threadForest (threaded on the search thread from
// the interned index) gives exactly what src/search/thread.ts gives from
// threadRows, for REFERENCES, REFS and ORDEREDSUBJECT, for every message,
// a search-restricted subset and a session that has not seen the newest;
// again after EXPUNGE (a referenced message among them), COPY and MOVE, and
// after the index rows were lost (rebuilt from the sort keys); and the
// search thread's kept answers are never those of a mailbox since changed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { SqliteMailStore } from '../../src/store/sqlite/store.js';
import { formatForest, formatThreads, threadMessages } from '../../src/search/thread.js';
import type { ThreadAlgorithmName } from '../../src/store/threading.js';
import { threadCorpus } from '../helpers/thread-corpus.js';
import { ensureCorpus } from '../../bench/lib/corpus.js';

const ALGS: ThreadAlgorithmName[] = ['REFERENCES', 'REFS', 'ORDEREDSUBJECT'];
const BENCH_MESSAGES = 1500;

let dir: string;
let s: SqliteMailStore;
let userId: number;

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'quire-thridx-'));
  s = await SqliteMailStore.open({ dataDir: path.join(dir, 'data'), synchronous: 'NORMAL' });
  s.startBackgroundWork(() => {}, { indexer: false });
  userId = (await s.createUser('alice', 'x')).id;
});

after(async () => {
  await s.close();
  await rm(dir, { recursive: true, force: true });
});

function parseInternal(d: string): number {
  const m = /^(\d\d)-(\w{3})-(\d{4}) (\d\d):(\d\d):(\d\d)/.exec(d)!;
  const mon = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'].indexOf(m[2]!);
  return Date.UTC(Number(m[3]), mon, Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6]));
}

async function fill(name: string, items: { data: Buffer; internalDate: number }[]): Promise<number> {
  const box = await s.createMailbox(userId, name);
  for (let i = 0; i < items.length; i += 200) await s.appendMessages(box.id, items.slice(i, i + 200).map((m) => ({ ...m, flags: [] })));
  return box.id;
}

/** Today's THREAD (commands/thread.ts before the index): rows, the subject order from SORT, the reference algorithm. */
async function oracle(mailboxId: number, alg: ThreadAlgorithmName, uids: number[] | null, maxUid?: number): Promise<string> {
  const rows = await s.threadRows(mailboxId, uids, maxUid);
  const subjectOrder = alg === 'ORDEREDSUBJECT'
    ? (await s.sortMessages(mailboxId, { criteria: [{ key: 'subject', reverse: false }, { key: 'date', reverse: false }], uids, maxUid })).uids
    : undefined;
  return formatThreads(await threadMessages(alg, rows, { subjectOrder }), (u) => u);
}

async function fast(mailboxId: number, alg: ThreadAlgorithmName, uids: number[] | null, maxUid?: number): Promise<string> {
  const forest = await s.threadForest(mailboxId, { algorithm: alg, uids, maxUid });
  assert.ok(forest, 'answered from the thread index on the search thread');
  return (await formatForest(forest, (u) => u))!.toString('latin1');
}

async function compare(mailboxId: number, what: string): Promise<void> {
  const all = (await s.listUids(mailboxId));
  const every3 = all.filter((_, i) => i % 3 !== 1);
  const maxUid = all[Math.floor(all.length * 0.8)];
  for (const alg of ALGS) {
    const whole = await oracle(mailboxId, alg, null);
    assert.ok(whole.length > 0);
    assert.equal(await fast(mailboxId, alg, null), whole, `${what}: ${alg} of every message`);
    assert.equal(await fast(mailboxId, alg, null), whole, `${what}: ${alg} of every message again (kept)`);
    assert.equal(await fast(mailboxId, alg, every3), await oracle(mailboxId, alg, every3), `${what}: ${alg} of a subset`);
    assert.equal(await fast(mailboxId, alg, null, maxUid), await oracle(mailboxId, alg, null, maxUid), `${what}: ${alg} up to UID ${maxUid}`);
  }
}

test('the thread corpus: the index answers as the reference, also after EXPUNGE, COPY and MOVE', async () => {
  const items = [1, 2, 3].flatMap((seed) => threadCorpus(seed, 400)).map((m) => ({ data: Buffer.from(m.raw), internalDate: parseInternal(m.internalDate) }));
  const box = await fill('Threads', items);
  await compare(box, 'thread corpus');
  // Kept answers (the search thread's cache) are not answered for a mailbox that changed: an APPEND
  // of replies to messages already threaded, then expunges.
  const replies = threadCorpus(1, 460).slice(400).map((m) => ({ data: Buffer.from(m.raw), internalDate: parseInternal(m.internalDate) }));
  await s.appendMessages(box, replies.map((m) => ({ ...m, flags: [] })));
  await compare(box, 'after APPEND');
  // Expunge a fifth, parents of replies among them (their children then hang from dummies or move up).
  const uids = await s.listUids(box);
  const gone = uids.filter((u) => u % 5 === 2);
  await s.storeFlags(box, gone, 'add', ['\\Deleted']);
  await s.expunge(box, gone);
  await compare(box, 'after EXPUNGE');
  const other = (await s.createMailbox(userId, 'Copies')).id;
  const some = (await s.listUids(box)).filter((u) => u % 2 === 0);
  await s.copyMessages(box, some, other);
  await s.moveMessages(box, some.filter((u) => u % 4 === 0), other);
  await compare(other, 'copies');
  await compare(box, 'after MOVE');
});

test('the bench corpus (replies, References chains, Re:/Fwd: subjects)', async () => {
  const corpus = await ensureCorpus(path.join(dir, 'bench-cache'), 1, BENCH_MESSAGES, () => {});
  try {
    const items = Array.from({ length: corpus.count }, (_, i) => ({ data: corpus.message(i), internalDate: corpus.dates[i]! }));
    const box = await fill('Bench', items);
    await compare(box, 'bench corpus');
  } finally {
    corpus.close();
  }
});

test('lost thread index rows are rebuilt from the sort keys before threading', async () => {
  const items = threadCorpus(9, 300).map((m) => ({ data: Buffer.from(m.raw), internalDate: parseInternal(m.internalDate) }));
  const box = await fill('Rebuilt', items);
  const want = await oracle(box, 'REFERENCES', null);
  const db = new Database(path.join(dir, 'data', 'quire.sqlite3'));
  db.exec('DELETE FROM thread_keys; DELETE FROM thread_msgs');
  db.close();
  assert.equal(await fast(box, 'REFERENCES', null), want);
  const db2 = new Database(path.join(dir, 'data', 'quire.sqlite3'), { readonly: true });
  const blobs = db2.prepare('SELECT count(*) FROM messages m WHERE mailbox_id = ? AND uid NOT IN (SELECT uid FROM thread_msgs WHERE mailbox_id = m.mailbox_id)').pluck().get(box);
  db2.close();
  assert.equal(blobs, 0, 'every message of the mailbox has its row again');
});
