// A store left by the last release (schema version 15, ending at V11's sort
// keys) opened by this code: the migrations added since run once, in order,
// and everything they back works on the mail already stored (THREAD from the
// thread index, POP3's exact sizes, URLAUTH keys). Guards the rule that
// migrations are append-only (schema.ts): inserting one before V11 would
// re-run V11 on such a store and fail to open it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { SqliteMailStore } from '../../src/store/sqlite/store.js';
import { SCHEMA_VERSION, SORT_KEYS_VERSION } from '../../src/store/sqlite/schema.js';
import { UNDO_AFTER_SORT_KEYS } from '../helpers/schema-rewind.js';

const msg = (i: number, subject: string, lf = false) => {
  const eol = lf ? '\n' : '\r\n';
  return Buffer.from([`From: U${i} <u${i}@example.com>`, `Subject: ${subject}`, `Date: ${i} Jan 2024 10:00:00 +0000`, `Message-ID: <m${i}@x>`,
    ...(i > 1 ? ['References: <m1@x>'] : []), '', `body ${i}`, ''].join(eol));
};

test('a store at the last released schema (15) upgrades and serves THREAD, POP3 sizes, URLAUTH keys and THREADIDs', async () => {
  assert.equal(SORT_KEYS_VERSION, 15, 'V11 stays where the release left it');
  const dir = await mkdtemp(path.join(tmpdir(), 'quire-upgrade-'));
  try {
    let s = await SqliteMailStore.open({ dataDir: dir, synchronous: 'NORMAL' });
    const u = await s.createUser('alice', 'x');
    const box = await s.createMailbox(u.id, 'INBOX');
    s.startBackgroundWork((e) => assert.fail(String(e)), { indexer: false });
    await s.appendMessages(box.id, [msg(1, 'hello'), msg(2, 'Re: hello', true), msg(3, 'other'), msg(4, 'Re: hello')].map((data) => ({ data, flags: [] })));
    const before = await s.threadForest!(box.id, { algorithm: 'REFERENCES' });
    const dropBefore = await s.openMaildrop(box.id);
    await s.close();

    let db = new Database(path.join(dir, 'quire.sqlite3'));
    db.exec(UNDO_AFTER_SORT_KEYS);
    db.pragma(`user_version = ${SORT_KEYS_VERSION}`);
    db.close();

    s = await SqliteMailStore.open({ dataDir: dir, synchronous: 'NORMAL' });
    db = new Database(path.join(dir, 'quire.sqlite3'), { readonly: true });
    assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
    // V_THREAD_ANSWERS: the table of kept THREAD answers and the triggers that drop them (threading.ts).
    assert.equal(db.prepare('SELECT count(*) FROM thread_answers').pluck().get(), 0);
    assert.equal(db.prepare("SELECT count(*) FROM sqlite_schema WHERE type = 'trigger' AND name LIKE '%_answers_%'").pluck().get(), 8);
    db.close();
    s.startBackgroundWork((e) => assert.fail(String(e)), { indexer: false });
    try {
      const after = await s.threadForest!(box.id, { algorithm: 'REFERENCES' });
      assert.ok(before && after);
      assert.deepEqual({ roots: after.roots, nodes: [...after.nodes] }, { roots: before.roots, nodes: [...before.nodes] });
      const drop = await s.openMaildrop(box.id);
      assert.deepEqual(drop.sizes, dropBefore.sizes, 'bare-LF bodies stored before V_POP3_SIZE get exact CRLF sizes');
      assert.equal(drop.sizes[1], msg(2, 'Re: hello', true).length + 7, 'seven bare LFs become CRLF');
      const key = await s.urlAuthKey(u.id, box.id, 'INTERNAL', true);
      assert.ok(key && key.length >= 16);
      // RFC 8474 §5.2 THREADIDs for the mail stored before V_THREAD_IDS: the background pass gives them, in batches.
      let batches = 0;
      while ((await s.fillPendingThreadIds(2)) > 0) batches++;
      assert.ok(batches >= 2, 'more than one batch of two');
      const t = await s.threadIds(box.id, [1, 2, 3, 4]);
      assert.equal(t.size, 4);
      assert.equal(t.get(2), t.get(1));
      assert.equal(t.get(3), t.get(1)); // every message after the first names <m1@x>
      assert.equal(t.get(4), t.get(1));
      assert.match(t.get(1)!, /^T\d+$/);
      assert.deepEqual((await s.searchMeta(box.id, { k: 'threadid', id: t.get(1)! })).uids, [1, 2, 3, 4]);
      assert.deepEqual((await s.searchMeta(box.id, { k: 'threadid', id: 'T999999' })).uids, []);
      assert.equal(await s.fillPendingThreadIds(), 0, 'the pass is remembered as done');
    } finally {
      await s.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
