// Schema V11 (SORT/THREAD keys) on a store that predates it: the migration
// adds the columns and indexes, and the keys of the messages already stored
// are filled in bounded batches by the server's background work, after which
// SORT and THREAD read only the stored keys.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { SqliteMailStore } from '../../src/store/sqlite/store.js';
import { SCHEMA_VERSION, SORT_KEYS_VERSION } from '../../src/store/sqlite/schema.js';
import { UNDO_AFTER_SORT_KEYS, UNDO_SORT_KEYS } from '../helpers/schema-rewind.js';

const UNDO_V11 = UNDO_AFTER_SORT_KEYS + UNDO_SORT_KEYS;

const msg = (i: number, subject: string, date: string) =>
  Buffer.from(`From: User ${i} <u${i}@example.com>\r\nSubject: ${subject}\r\nDate: ${date}\r\nMessage-ID: <m${i}@x>\r\n${i > 1 ? `References: <m1@x>\r\n` : ''}\r\nbody ${i}\r\n`);

test('a store from before the sort keys is migrated and its messages get their keys in the background', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'quire-sortmig-'));
  try {
    let s = await SqliteMailStore.open({ dataDir: dir, synchronous: 'NORMAL' });
    const u = await s.createUser('alice', 'x');
    const box = await s.createMailbox(u.id, 'INBOX');
    const subjects = ['pear', 'Re: apple', 'fig', 'banana', 'Re: Re: cherry'];
    await s.appendMessages(box.id, subjects.map((sub, i) => ({ data: msg(i + 1, sub, `${10 - i} Jan 2024 10:00:00 +0000`), flags: [], internalDate: Date.UTC(2024, 1, 1 + i) })));
    const other = await s.createMailbox(u.id, 'Other');
    await s.copyMessages(box.id, [1, 2, 3, 4, 5], other.id);
    await s.close();
    // The database as the version before V11 left it.
    let db = new Database(path.join(dir, 'quire.sqlite3'));
    db.exec(UNDO_V11);
    db.pragma(`user_version = ${SORT_KEYS_VERSION - 1}`);
    db.close();

    s = await SqliteMailStore.open({ dataDir: dir, synchronous: 'NORMAL' });
    db = new Database(path.join(dir, 'quire.sqlite3'), { readonly: true });
    assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
    const pending = () => db.prepare('SELECT count(*) FROM messages WHERE sort_date IS NULL').pluck().get() as number;
    assert.equal(pending(), 10, 'every row waits for its keys');
    s.startBackgroundWork((e) => assert.fail(String(e)));
    for (let i = 0; i < 300 && pending() > 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(pending(), 0, 'the background work filled them in');
    assert.equal(db.prepare('SELECT count(*) FROM sort_keys').pluck().get(), 5, 'one key row per body (copies share it)');
    db.close();
    const sorted = await s.sortMessages(other.id, { criteria: [{ key: 'subject', reverse: false }] });
    assert.deepEqual(sorted.uids, [2, 4, 5, 3, 1]);
    const byDate = await s.sortMessages(box.id, { criteria: [{ key: 'date', reverse: false }] });
    assert.deepEqual(byDate.uids, [5, 4, 3, 2, 1]);
    const rows = await s.threadRows(box.id, null);
    assert.deepEqual(rows.map((r) => r.uid), [5, 4, 3, 2, 1], 'in sent-date order');
    assert.deepEqual(rows.find((r) => r.uid === 2)!.references, ['m1@x']);
    assert.equal(rows.find((r) => r.uid === 2)!.isReply, true);
    // RFC 8474 §5.2: their THREADIDs come after the keys (the pass waits for them); copies share their body's.
    for (let i = 0; i < 300 && (await s.fillPendingThreadIds()) > 0; i++) await new Promise((r) => setTimeout(r, 20));
    const here = await s.threadIds(box.id, [1, 2, 3, 4, 5]);
    const there = await s.threadIds(other.id, [1, 2, 3, 4, 5]);
    assert.equal(new Set(here.values()).size, 1, 'every message after the first names <m1@x>');
    assert.deepEqual([...there.values()], [...here.values()]);
    await s.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a mailbox is given its missing keys before it is sorted, without the background work', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'quire-sortmig-'));
  try {
    let s = await SqliteMailStore.open({ dataDir: dir, synchronous: 'NORMAL' });
    const u = await s.createUser('alice', 'x');
    const box = await s.createMailbox(u.id, 'INBOX');
    await s.appendMessages(box.id, Array.from({ length: 450 }, (_, i) => ({ data: msg(i + 1, `s${String(449 - i).padStart(3, '0')}`, '1 Jan 2024 00:00:00 +0000'), flags: [] })));
    await s.close();
    const db = new Database(path.join(dir, 'quire.sqlite3'));
    db.exec(UNDO_V11);
    db.pragma(`user_version = ${SORT_KEYS_VERSION - 1}`);
    db.close();
    s = await SqliteMailStore.open({ dataDir: dir, synchronous: 'NORMAL' });
    // More rows than one backfill batch: filled in several.
    const r = await s.sortMessages(box.id, { criteria: [{ key: 'subject', reverse: false }], range: { first: 1, last: 3 } });
    assert.deepEqual(r, { uids: [450, 449, 448], total: 450 });
    await s.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
