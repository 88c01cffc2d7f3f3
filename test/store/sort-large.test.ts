// Schema V_SORT_LARGE (issue 11): message rows come with their sort keys, and
// the nine sort indexes hold only the rows of mailboxes of
// SORT_INDEX_MIN_MESSAGES or more. A small mailbox is sorted from its rows; one
// that grows past the mark has its older rows put into the indexes (once, in
// batches) and its new ones as they come; the answers are the same either way.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { SqliteMailStore } from '../../src/store/sqlite/store.js';
import { SCHEMA_VERSION, SORT_INDEX_MIN_MESSAGES } from '../../src/store/sqlite/schema.js';
import { UNDO_AFTER_SORT_KEYS } from '../helpers/schema-rewind.js';
import type { SortKey } from '../../src/store/types.js';

const SUBJECTS = ['pear', 'Re: apple', 'fig', 'banana', 'Re: Re: cherry', 'date', 'elder'];
const msg = (i: number) =>
  Buffer.from(
    `From: User ${i % 13} <u${(i * 7) % 11}@example.com>\r\nTo: R${i % 5} <r${i % 3}@example.org>\r\nCc: c${i % 4}@example.net\r\n` +
      `Subject: ${SUBJECTS[i % SUBJECTS.length]}\r\n` +
      (i % 9 === 0 ? '' : `Date: ${1 + (i % 28)} Feb 2024 ${String(i % 24).padStart(2, '0')}:00:00 +0000\r\n`) +
      `Message-ID: <m${i}@x>\r\n\r\nbody ${'x'.repeat(i % 50)}\r\n`,
  );

const KEYS: SortKey[] = ['arrival', 'size', 'date', 'subject', 'from', 'to', 'cc', 'displayfrom', 'displayto'];

/** Every row's sort columns as the V11 trigger computes them from sort_keys. */
function keysMatchTrigger(db: Database.Database): number {
  return db
    .prepare(
      `SELECT count(*) FROM messages m JOIN sort_keys k ON k.blob_id = m.blob_id
       WHERE m.sort_subject IS NOT k.subject OR m.sort_from IS NOT k.addr_from OR m.sort_to IS NOT k.addr_to OR m.sort_cc IS NOT k.addr_cc
          OR m.sort_dfrom IS NOT k.disp_from OR m.sort_dto IS NOT k.disp_to OR m.sort_date IS NOT coalesce(k.sent, m.internal_date)`,
    )
    .pluck()
    .get() as number;
}

async function sortAll(s: SqliteMailStore, mailboxId: number): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>();
  for (const key of KEYS) {
    for (const reverse of [false, true]) {
      out.set(`${key}${reverse ? ' rev' : ''}`, (await s.sortMessages(mailboxId, { criteria: [{ key, reverse }, { key: 'subject', reverse: false }] })).uids);
    }
  }
  out.set('window', (await s.sortMessages(mailboxId, { criteria: [{ key: 'date', reverse: true }], range: { first: 1, last: 50 } })).uids);
  out.set('thread', (await s.threadRows(mailboxId, null)).map((r) => r.uid));
  return out;
}

test('small mailboxes stay out of the sort indexes; one that grows past the mark goes in and sorts the same', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'quire-sortlarge-'));
  const s = await SqliteMailStore.open({ dataDir: dir, synchronous: 'NORMAL' });
  s.startBackgroundWork(() => {}, { indexer: false }); // the search thread (THREAD)
  const db = new Database(path.join(dir, 'quire.sqlite3'), { readonly: true });
  try {
    const u = await s.createUser('alice', 'x');
    const box = await s.createMailbox(u.id, 'INBOX');
    const other = await s.createMailbox(u.id, 'Other');
    const first = SORT_INDEX_MIN_MESSAGES - 40;
    for (let at = 0; at < first; at += 200) {
      const n = Math.min(200, first - at);
      await s.appendMessages(box.id, Array.from({ length: n }, (_, i) => ({ data: msg(at + i), flags: [], internalDate: Date.UTC(2024, 0, 1) + ((at + i) % 97) * 60_000 })));
    }
    await s.copyMessages(box.id, [3, 1, 2, 10, 11], other.id);
    const state = (id: number) => db.prepare('SELECT sort_indexed FROM mailboxes WHERE id = ?').pluck().get(id) as number;
    const inIndex = (id: number) => db.prepare('SELECT count(*) FROM messages INDEXED BY messages_sort_subject WHERE mailbox_id = ? AND sort_ix = 1').pluck().get(id) as number;
    assert.equal(keysMatchTrigger(db), 0, 'APPEND and COPY wrote the keys the trigger would have');
    assert.equal(db.prepare('SELECT count(*) FROM messages WHERE sort_date IS NULL').pluck().get(), 0);
    assert.equal(state(box.id), 0);
    assert.equal(inIndex(box.id), 0, 'a small mailbox has no sort index entries');
    const small = await sortAll(s, box.id);
    assert.deepEqual((await s.sortMessages(other.id, { criteria: [{ key: 'subject', reverse: false }] })).uids, [2, 5, 3, 4, 1], 'apple, banana, fig, fig (by UID), pear');

    // Past the mark: new rows go in at once, the older ones at the next SORT.
    await s.appendMessages(box.id, Array.from({ length: 60 }, (_, i) => ({ data: msg(first + i), flags: [], internalDate: Date.UTC(2024, 0, 1) + ((first + i) % 97) * 60_000 })));
    assert.equal(state(box.id), 1);
    assert.equal(inIndex(box.id) > 0 && inIndex(box.id) <= 60, true, 'the rows appended after the mark');
    // THREAD=ORDEREDSUBJECT on the search thread: from the rows while the mailbox is not all indexed, along the index after.
    const ordered = () => s.threadForest(box.id, { algorithm: 'ORDEREDSUBJECT', maxUid: first + 30 });
    const fromRows = JSON.stringify(await ordered());
    assert.ok(fromRows.length > 100, 'a forest was computed');
    await s.sortMessages(box.id, { criteria: [{ key: 'subject', reverse: false }] });
    assert.equal(state(box.id), 2, 'a SORT put the older rows in');
    // The same messages named one by one: not an answer kept from the first call.
    const named = (await s.listUids(box.id)).filter((u) => u <= first + 30);
    assert.equal(JSON.stringify(await s.threadForest(box.id, { algorithm: 'ORDEREDSUBJECT', uids: named })), fromRows, 'the same forest along the index');
    const expungeable = [5, 7];
    await s.storeFlags(box.id, expungeable, 'add', ['\\Deleted']);
    await s.expunge(box.id, expungeable);
    const large = await sortAll(s, box.id);
    assert.equal(state(box.id), 2);
    const count = db.prepare('SELECT count(*) FROM messages WHERE mailbox_id = ?').pluck().get(box.id) as number;
    assert.equal(inIndex(box.id), count, 'every row of the mailbox');
    // Same answers as a plain sort of the same rows: the small-mailbox path sorted them.
    const plain = new Map(small);
    for (const [k, uids] of plain) {
      if (k === 'window') continue;
      const got = large.get(k)!.filter((u) => u <= first && !expungeable.includes(u));
      assert.deepEqual(got, uids.filter((u) => !expungeable.includes(u)), k);
    }
    // The index path is the one SORT and THREAD take now: a row taken out of the indexes behind the
    // store's back is missing from their answers (and back once it is put in again).
    const rw = new Database(path.join(dir, 'quire.sqlite3'));
    const setIx = (v: number) => rw.prepare('UPDATE messages SET sort_ix = ? WHERE mailbox_id = ? AND uid = 1').run(v, box.id);
    try {
      setIx(0);
      assert.equal((await s.sortMessages(box.id, { criteria: [{ key: 'from', reverse: false }] })).uids.includes(1), false, 'SORT read the index');
      assert.equal((await s.threadRows(box.id, null)).some((r) => r.uid === 1), false, 'THREAD rows read the index');
      setIx(1);
      assert.equal((await s.sortMessages(box.id, { criteria: [{ key: 'from', reverse: false }] })).uids.includes(1), true);
    } finally {
      rw.close();
    }
    // New rows in an indexed mailbox: in the index, with their keys, by APPEND and by COPY.
    await s.copyMessages(other.id, [1, 2], box.id);
    await s.appendMessages(box.id, [{ data: msg(9999), flags: [] }]);
    assert.equal(inIndex(box.id), count + 3);
    assert.equal(keysMatchTrigger(db), 0);
  } finally {
    db.close();
    await s.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('the migration indexes the large mailboxes of an older store and only those', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'quire-sortlarge-mig-'));
  try {
    let s = await SqliteMailStore.open({ dataDir: dir, synchronous: 'NORMAL' });
    const u = await s.createUser('alice', 'x');
    const big = await s.createMailbox(u.id, 'Big');
    const small = await s.createMailbox(u.id, 'Small');
    for (let at = 0; at < SORT_INDEX_MIN_MESSAGES; at += 250) {
      await s.appendMessages(big.id, Array.from({ length: 250 }, (_, i) => ({ data: msg(at + i), flags: [] })));
    }
    await s.appendMessages(small.id, Array.from({ length: 30 }, (_, i) => ({ data: msg(i), flags: [] })));
    const before = await sortAll(s, big.id);
    const beforeSmall = await sortAll(s, small.id);
    await s.close();
    let db = new Database(path.join(dir, 'quire.sqlite3'));
    db.exec(undoSortLarge());
    db.pragma(`user_version = ${SCHEMA_VERSION - 1}`);
    db.close();

    s = await SqliteMailStore.open({ dataDir: dir, synchronous: 'NORMAL' });
    db = new Database(path.join(dir, 'quire.sqlite3'), { readonly: true });
    try {
      assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
      assert.equal(db.prepare('SELECT sort_indexed FROM mailboxes WHERE id = ?').pluck().get(big.id), 2);
      assert.equal(db.prepare('SELECT sort_indexed FROM mailboxes WHERE id = ?').pluck().get(small.id), 0);
      assert.equal(db.prepare('SELECT count(*) FROM messages WHERE sort_ix = 1').pluck().get(), SORT_INDEX_MIN_MESSAGES);
      assert.deepEqual(await sortAll(s, big.id), before);
      assert.deepEqual(await sortAll(s, small.id), beforeSmall);
    } finally {
      db.close();
      await s.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/** The part of UNDO_AFTER_SORT_KEYS that undoes V_SORT_LARGE alone (the newest migration). */
function undoSortLarge(): string {
  const all = UNDO_AFTER_SORT_KEYS;
  return all.slice(0, all.indexOf('DROP TRIGGER thread_msgs_answers_ai'));
}
