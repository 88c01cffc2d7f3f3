// The full-text index in a file of its own (quire-fts.sqlite3, fulltext.ts;
// issue 11): a store whose index is still inside its database keeps its
// SEARCH answers across the upgrade and gets the index rebuilt in the new
// file; and while the indexing thread is inside a batch on the index file,
// the store's writers are not held up (the thread holds only that file's lock).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { SqliteMailStore } from '../../src/store/sqlite/index.js';
import { provisionUser } from '../../src/cli/users.js';
import { startCluster } from '../helpers/cluster.js';

const WORDS = ['apricots', 'bananas', 'cherries', 'dates'];

function msg(i: number, word: string): Buffer {
  return Buffer.from(
    `From: Person ${i} <p${i}@example.com>\r\nSubject: Note ${i}\r\nMIME-Version: 1.0\r\n` +
      `Content-Type: text/plain; charset=utf-8\r\n\r\nHello, this is note ${i} about ${word}.\r\n`,
  );
}

/** The index as schema v7-v10 kept it, inside the store's database (blobs.fts exists already). */
const LEGACY_INDEX = `
CREATE VIRTUAL TABLE blob_text USING fts5(t, content='', contentless_delete=1, detail='none', tokenize='trigram case_sensitive 1');
CREATE TRIGGER blobs_fts_ad AFTER DELETE ON blobs WHEN OLD.fts = 1 BEGIN
  DELETE FROM blob_text WHERE rowid = OLD.id * 2;
  DELETE FROM blob_text WHERE rowid = OLD.id * 2 + 1;
END;
`;

async function until(what: string, ok: () => boolean, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('a store with the index inside its database keeps its SEARCH answers after the upgrade, and the index is rebuilt in its own file', { timeout: 120_000 }, async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'quire-ftsfile-'));
  const s = await SqliteMailStore.open({ dataDir: dir, synchronous: 'NORMAL' });
  const u = await provisionUser(s, 'alice', 'secret-a');
  const inbox = (await s.getMailbox(u.id, 'INBOX'))!;
  await s.appendMessages(inbox.id, Array.from({ length: 40 }, (_, i) => ({ data: msg(i + 1, WORDS[i % 4]!), flags: [] })));
  await s.close();
  // As a store from before: the index's rows in the database, every body marked indexed, no index file.
  const db = new Database(path.join(dir, 'quire.sqlite3'));
  db.exec(LEGACY_INDEX);
  db.exec("INSERT INTO blob_text (rowid, t) SELECT id * 2, 'hello, this is note' FROM blobs; UPDATE blobs SET fts = 1;");
  db.close();
  for (const f of ['quire-fts.sqlite3', 'quire-fts.sqlite3-wal', 'quire-fts.sqlite3-shm']) await rm(path.join(dir, f), { force: true });

  const cluster = await startCluster({ workers: 1, users: [], dir });
  try {
    const c = await cluster.connectTo(['alice', 'secret-a']);
    assert.match((await c.command('SELECT INBOX')).tagged, /OK/);
    const cherries = '* SEARCH 3 7 11 15 19 23 27 31 35 39';
    const search = async () => [(await c.command('SEARCH BODY cherries')).untagged[0], (await c.command('SEARCH TEXT "subject: note 17"')).untagged[0], (await c.command('SEARCH BODY "subject: note 17"')).untagged[0]];
    // Right after the upgrade (nothing indexed yet: every body is read).
    assert.deepEqual(await search(), [cherries, '* SEARCH 17', '* SEARCH']);
    const main = new Database(path.join(dir, 'quire.sqlite3'), { readonly: true });
    assert.equal(main.prepare("SELECT count(*) FROM sqlite_master WHERE name IN ('blob_text', 'blobs_fts_ad')").pluck().get(), 0, 'the old index is gone from the database');
    assert.ok(existsSync(path.join(dir, 'quire-fts.sqlite3')), 'the index has its own file');
    const pending = main.prepare('SELECT count(*) FROM blobs WHERE fts = 0').pluck();
    await until('the indexing thread to rebuild the index', () => pending.get() === 0);
    main.close();
    const fts = new Database(path.join(dir, 'quire-fts.sqlite3'), { readonly: true });
    assert.equal(fts.prepare('SELECT count(*) FROM indexed WHERE state = 1').pluck().get(), 40);
    assert.equal(fts.prepare("SELECT count(*) FROM blob_text WHERE blob_text MATCH '\"che\" AND \"ies\"'").pluck().get(), 10);
    fts.close();
    // And through the rebuilt index, the same answers.
    assert.deepEqual(await search(), [cherries, '* SEARCH 17', '* SEARCH']);
    await c.close();
  } finally {
    await cluster.stop();
  }
});

test('while the indexing thread is inside a batch on the index file, the store\'s writers go on', { timeout: 120_000 }, async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'quire-ftsfile-'));
  try {
    const s = await SqliteMailStore.open({ dataDir: dir, synchronous: 'NORMAL' });
    const u = await s.createUser('alice', 'x');
    const box = await s.createMailbox(u.id, 'INBOX');
    // Something holds the index file's write lock (as a long indexing batch would): the thread waits inside its batch.
    const blocker = new Database(path.join(dir, 'quire-fts.sqlite3'));
    blocker.exec('BEGIN IMMEDIATE');
    const errors: unknown[] = [];
    s.startBackgroundWork((e) => errors.push(e));
    const times: number[] = [];
    for (let i = 0; i < 30; i++) {
      const t0 = performance.now();
      await s.appendMessages(box.id, [{ data: msg(i + 1, WORDS[i % 4]!), flags: [] }]);
      times.push(performance.now() - t0);
    }
    await new Promise((r) => setTimeout(r, 1500));
    const main = new Database(path.join(dir, 'quire.sqlite3'));
    const pending = main.prepare('SELECT count(*) FROM blobs WHERE fts = 0').pluck();
    assert.ok((pending.get() as number) > 0, 'the indexing thread is held at the index file');
    // The store's own write lock is free meanwhile: another connection takes it at once.
    main.pragma('busy_timeout = 0');
    main.exec('BEGIN IMMEDIATE');
    main.exec('ROLLBACK');
    await s.appendMessages(box.id, [{ data: msg(99, 'figs'), flags: [] }]);
    assert.ok(Math.max(...times) < 2000, `APPENDs took ${times.map((t) => t.toFixed(1)).join(' ')} ms`);
    blocker.exec('ROLLBACK');
    blocker.close();
    await until('the index to catch up', () => pending.get() === 0);
    main.close();
    assert.equal((await s.searchMeta(box.id, { k: 'content', scope: 'body', value: 'figs' })).undecided.length, 1, 'the index rules out the other 30');
    assert.deepEqual(errors, []);
    await s.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
