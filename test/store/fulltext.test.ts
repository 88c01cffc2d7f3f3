// The full-text index behind SEARCH BODY/TEXT: a store from before it
// (schema v6) is migrated and its bodies indexed by the indexing thread;
// deleted bodies leave the index; through a real server, new bodies are
// indexed after APPEND and the index decides which messages are read (proved
// by planting text in a body file behind its back).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { SqliteMailStore } from '../../src/store/sqlite/index.js';
import { pruneDeleted } from '../../src/store/sqlite/fulltext.js';
import { startTestServer } from '../helpers/server.js';
import { RawClient } from '../helpers/imap.js';
import { UNDO_AFTER_SORT_KEYS, UNDO_SORT_KEYS } from '../helpers/schema-rewind.js';

function msg(i: number, word: string): Buffer {
  return Buffer.from(
    `From: Person ${i} <p${i}@example.com>\r\nSubject: Note ${i}\r\nMIME-Version: 1.0\r\n` +
      `Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n` +
      `${Buffer.from(`Hello, this is note ${i} about ${word}.\r\n`).toString('base64')}\r\n`,
  );
}

const WORDS = ['apricots', 'bananas', 'cherries', 'dates'];

/** Removes what schema V11 (SORT/THREAD keys) adds, so a store can be taken back to an older version. */

test('a v6 store is migrated, indexed in the background, and searched through the index', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'quire-fts-'));
  try {
    let s = await SqliteMailStore.open({ dataDir: dir, synchronous: 'NORMAL' });
    const u = await s.createUser('alice', 'x');
    const box = await s.createMailbox(u.id, 'INBOX');
    await s.appendMessages(box.id, Array.from({ length: 40 }, (_, i) => ({ data: msg(i + 1, WORDS[i % 4]!), flags: [] })));
    await s.close();
    // Back to schema v6: no flag indexes, no text table, no fts column (and none of V11's sort keys).
    let db = new Database(path.join(dir, 'quire.sqlite3'));
    db.exec(UNDO_AFTER_SORT_KEYS);
    db.exec(UNDO_SORT_KEYS);
    db.exec('DROP INDEX blobs_fts_pending; DROP INDEX messages_flagged; DROP INDEX messages_unseen; DROP INDEX messages_deleted; DROP TRIGGER IF EXISTS blobs_fts_ad; DROP TABLE IF EXISTS blob_text; ALTER TABLE blobs DROP COLUMN fts; ' +
      // ...and none of what later schemas added (V11 attributes, V12 annotations).
      'DROP TABLE annotations; DROP INDEX mailboxes_object_id; ALTER TABLE mailboxes DROP COLUMN object_id; ' +
      'ALTER TABLE messages DROP COLUMN internal_tz; ALTER TABLE messages DROP COLUMN save_date; PRAGMA user_version = 6;');
    db.close();
    // A v6 store had no index file either.
    await rm(path.join(dir, 'quire-fts.sqlite3'), { force: true });

    s = await SqliteMailStore.open({ dataDir: dir, synchronous: 'NORMAL' });
    // V11 on old rows: a MAILBOXID for every mailbox, no save date, INTERNALDATE zone +0000.
    assert.match((await s.getMailboxById(box.id))!.objectId, /^F[0-9a-f]{24}$/);
    const old = (await s.listMessages(box.id))[0]!;
    assert.equal(old.saveDate, null);
    assert.equal(old.internalTz, 0);
    const body = (value: string) => s.searchMeta(box.id, { k: 'content', scope: 'body', value });
    // Not indexed yet: nothing can be ruled out, every message is read.
    assert.equal((await body('cherries')).undecided.length, 40);
    assert.equal(await s.indexPendingText(15), 15);
    // Of the 15 indexed (UIDs 1-15), the 11 without the word are ruled out.
    assert.equal((await body('cherries')).undecided.length, 29, 'indexed bodies without the word are ruled out');
    const errors: unknown[] = [];
    s.startBackgroundWork((err) => errors.push(err));
    for (let i = 0; i < 200 && (await body('cherries')).undecided.length !== 10; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(errors, []);
    const got = await body('cherries');
    assert.deepEqual(got.undecided, [3, 7, 11, 15, 19, 23, 27, 31, 35, 39], 'only the ten bodies with the word are left to read');
    assert.equal(await s.indexPendingText(), 0, 'nothing left to index');
    // TEXT also looks at the header; BODY does not.
    assert.equal((await s.searchMeta(box.id, { k: 'content', scope: 'text', value: 'subject: note 17' })).undecided.length, 1);
    assert.equal((await s.searchMeta(box.id, { k: 'content', scope: 'body', value: 'subject: note 17' })).undecided.length, 0);
    // Expunged bodies leave the index (pruned by the indexing thread, here called directly).
    await s.storeFlags(box.id, [3, 7], 'add', ['\\Deleted']);
    await s.expunge(box.id);
    await s.close();
    db = new Database(path.join(dir, 'quire.sqlite3'));
    const fts = new Database(path.join(dir, 'quire-fts.sqlite3'));
    assert.equal(pruneDeleted((sql) => db.prepare(sql), fts, 0) > 0, true);
    // Deletes never rewrite segments, emergency merges never run in the indexing thread's transactions (schema v10's tuning).
    const config = Object.fromEntries(fts.prepare('SELECT k, v FROM blob_text_config').raw().all() as [string, number][]);
    assert.equal(config.deletemerge, 0);
    assert.equal(config.crisismerge, 1000);
    const rows = fts.prepare("SELECT count(*) FROM blob_text WHERE blob_text MATCH '\"che\" AND \"ies\"'").pluck().get();
    fts.close();
    db.close();
    assert.equal(rows, 8);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('SEARCH BODY/TEXT read only the messages the index cannot rule out', async () => {
  // The body cache off: the test tells which bodies were read by planting text in a file.
  const srv = await startTestServer({ storeOptions: { bodyCacheBytes: 0 } });
  try {
    const c = await RawClient.connect(srv.port, { login: ['alice', 'secret-a'] });
    await c.command('CREATE Fts');
    for (let i = 1; i <= 4; i++) await c.append('Fts', msg(i, WORDS[i - 1]!).toString());
    await c.command('SELECT Fts');
    // Answers are the same before the indexing thread has got to the bodies and after.
    assert.equal((await c.command('SEARCH BODY "Bananas"')).untagged[0], '* SEARCH 2');
    const db = new Database(path.join(srv.dataDir, 'quire.sqlite3'), { readonly: true });
    const pending = db.prepare('SELECT count(*) FROM blobs WHERE fts = 0').pluck();
    for (let i = 0; i < 500 && (pending.get() as number) > 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(pending.get(), 0, 'the indexing thread indexed the appended bodies');
    assert.equal((await c.command('SEARCH BODY "Bananas"')).untagged[0], '* SEARCH 2');
    // Substrings, not words (RFC 9051 §6.4.4): inside a word, across words, in a base64 part, any case.
    assert.equal((await c.command('SEARCH BODY "NANA"')).untagged[0], '* SEARCH 2');
    assert.equal((await c.command('SEARCH BODY "note 3 about cher"')).untagged[0], '* SEARCH 3');
    assert.equal((await c.command('SEARCH TEXT "<p4@exam"')).untagged[0], '* SEARCH 4');
    assert.equal((await c.command('SEARCH BODY "<p4@exam"')).untagged[0], '* SEARCH', 'the header is not body');
    assert.equal((await c.command('SEARCH TEXT "person 4"')).untagged[0], '* SEARCH 4');
    assert.equal((await c.command('SEARCH NOT BODY "cherries"')).untagged[0], '* SEARCH 1 2 4');
    assert.equal((await c.command('SEARCH OR BODY dates BODY apricots')).untagged[0], '* SEARCH 1 4');
    // Plant a word in message 1's file behind the store's back: the index rules message 1 out, so it is not read.
    const blob = db.prepare("SELECT m.blob_id FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id WHERE b.name = 'Fts' AND m.uid = 1").pluck().get() as number;
    db.close();
    const file = await findFile(path.join(srv.dataDir, 'blobs'), String(blob));
    assert.ok(file, 'body file found');
    const planted = msg(1, 'kumquats'); // as long as "apricots": same offsets
    assert.equal(planted.length, msg(1, WORDS[0]!).length);
    await writeFile(file, planted);
    assert.equal((await c.command('SEARCH BODY kumquats')).untagged[0], '* SEARCH', 'ruled out by the index: the file was not read');
    // A needle of two characters has no trigram: every message is read, and the planted text is found.
    assert.equal((await c.command('SEARCH BODY "qu"')).untagged[0], '* SEARCH 1');
    await c.close();
  } finally {
    await srv.stop();
  }
});

async function findFile(dir: string, name: string): Promise<string | null> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      const hit = await findFile(p, name);
      if (hit) return hit;
    } else if (e.name === name) return p;
  }
  return null;
}

test('if the indexing thread dies, the server connection checkpoints the WAL again and says so', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'quire-fts-'));
  try {
    const s = await SqliteMailStore.open({ dataDir: dir, synchronous: 'NORMAL' });
    const errors: string[] = [];
    s.startBackgroundWork((err) => errors.push(String(err)));
    const internals = s as unknown as { db: Database.Database; indexer: { worker: { terminate(): Promise<number> } } | null };
    assert.equal(internals.db.pragma('wal_autocheckpoint', { simple: true }), 0, 'the thread checkpoints while it runs');
    await internals.indexer!.worker.terminate();
    for (let i = 0; i < 100 && internals.indexer; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(internals.db.pragma('wal_autocheckpoint', { simple: true }), 1000);
    assert.ok(errors.some((e) => e.includes('indexing thread stopped')), errors.join('; '));
    await s.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the server keeps planner statistics, so SEARCH FLAGGED uses its partial index', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'quire-stats-'));
  try {
    const s = await SqliteMailStore.open({ dataDir: dir, synchronous: 'NORMAL' });
    const u = await s.createUser('alice', 'x');
    const box = await s.createMailbox(u.id, 'INBOX');
    await s.appendMessages(box.id, Array.from({ length: 400 }, (_, i) => ({ data: msg(i + 1, WORDS[i % 4]!), flags: i % 50 === 0 ? ['\\Flagged'] : ['\\Seen'] })));
    const db = (s as unknown as { db: Database.Database }).db;
    const plan = () => JSON.stringify(db.prepare('EXPLAIN QUERY PLAN SELECT m.uid FROM messages m WHERE m.mailbox_id = ? AND ((m.sysflags & 4) != 0) ORDER BY m.uid').all(box.id));
    assert.doesNotMatch(plan(), /messages_flagged/, 'without statistics SQLite scans the primary key');
    s.startBackgroundWork();
    for (let i = 0; i < 300 && !/messages_flagged/.test(plan()); i++) await new Promise((r) => setTimeout(r, 10));
    assert.match(plan(), /messages_flagged/);
    assert.deepEqual((await s.searchMeta(box.id, { k: 'flag', flag: '\\Flagged', present: true })).uids, [1, 51, 101, 151, 201, 251, 301, 351]);
    await s.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
