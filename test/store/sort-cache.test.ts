// Whole-mailbox SORT answers kept on the search thread (src/store/sqlite/sort-cache.ts): the same
// messages sort the same way, so a kept answer is reused while the mailbox holds them, and never once
// a message came or went. Checked against the same SORT answered on this thread (a restriction to all
// the UIDs is never kept), over a mailbox big enough to be sorted on the search thread.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SqliteMailStore } from '../../src/store/sqlite/store.js';
import type { SortKey } from '../../src/store/types.js';
import { prng } from '../helpers/rng.js';

/** Above the index entries a sort may walk on the event loop (sorting.ts MAIN_THREAD_SORT_ROWS). */
const MESSAGES = 6_000;

let dir: string;
let s: SqliteMailStore;
let box: number;

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'quire-sortcache-'));
  s = await SqliteMailStore.open({ dataDir: path.join(dir, 'data'), synchronous: 'NORMAL' });
  s.startBackgroundWork(() => {}, { indexer: false });
  const u = await s.createUser('alice', 'x');
  box = (await s.createMailbox(u.id, 'INBOX')).id;
  const r = prng(20261203);
  let n = 0;
  const batch = (k: number) =>
    Array.from({ length: k }, () => {
      n++;
      const who = `user${Math.floor(r() * 50)}@example.com`;
      return { data: Buffer.from(`From: ${who}\r\nSubject: ${r() < 0.3 ? 'Re: ' : ''}topic ${Math.floor(r() * 300)}\r\nDate: Mon, ${1 + Math.floor(r() * 28)} Feb 2024 10:00:00 +0000\r\n\r\nbody ${n}\r\n`), flags: [], internalDate: Date.UTC(2024, 0, 1) + n * 1000 };
    });
  for (let i = 0; i < MESSAGES; i += 500) await s.appendMessages(box, batch(500));
  (s as unknown as { nextBatch: typeof batch }).nextBatch = batch;
});

after(async () => {
  await s.close();
  await rm(dir, { recursive: true, force: true });
});

async function both(key: SortKey, reverse = false): Promise<[number[], number[]]> {
  const criteria = [{ key, reverse }];
  const whole = (await s.sortMessages(box, { criteria, uids: null })).uids;
  const all = await s.listUids(box);
  const restricted = (await s.sortMessages(box, { criteria, uids: all })).uids;
  return [whole, restricted];
}

test('a kept SORT answer is reused only while the mailbox holds the same messages', async () => {
  const batch = (s as unknown as { nextBatch: (k: number) => { data: Buffer; flags: string[]; internalDate: number }[] }).nextBatch;
  for (const key of ['from', 'subject', 'date'] as SortKey[]) {
    const [a, b] = await both(key);
    assert.equal(a.length, MESSAGES);
    assert.deepEqual(a, b, `${key}: whole = restricted`);
    // Kept: the same again.
    assert.deepEqual((await both(key))[0], b);
  }
  // Flags change nothing of the order: still the same answer.
  await s.storeFlags(box, (await s.listUids(box)).slice(0, 100), 'add', ['\\Seen']);
  let [a, b] = await both('from', true);
  assert.deepEqual(a, b);
  // A message comes: it is in the answer at once.
  await s.appendMessages(box, batch(3));
  [a, b] = await both('from', true);
  assert.equal(a.length, MESSAGES + 3);
  assert.deepEqual(a, b, 'after APPEND');
  // Messages go (and as many come, so the count is the same again): never the answer of before.
  const uids = await s.listUids(box);
  await s.storeFlags(box, uids.slice(10, 13), 'add', ['\\Deleted']);
  await s.expunge(box);
  [a, b] = await both('subject');
  assert.equal(a.length, MESSAGES);
  assert.deepEqual(a, b, 'after EXPUNGE');
  await s.appendMessages(box, batch(3));
  [a, b] = await both('subject');
  assert.equal(a.length, MESSAGES + 3);
  assert.deepEqual(a, b, 'after EXPUNGE and APPEND');
});
