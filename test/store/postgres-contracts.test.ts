// The contracts added to MailStore after the main suite, on PostgreSQL
// (each test in a fresh schema, dropped afterwards): the store-to-store copy
// (bulk-contract.ts), URLAUTH keys and the POP3 maildrop
// (keys-maildrop-contract.ts); plus what only this backend has: bodies
// stored before the bare-LF counts (schema v3-pop3-urlauth) counted at the
// first login and the count kept, and annotation changes carried between
// nodes by the journal.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { openPostgresStore, type PgMailStore } from '../../src/store/postgres/index.js';
import type { Change, MailStore } from '../../src/store/types.js';
import { PG_URL, dropSchema, freshSchema, pgSkip } from '../helpers/pg.js';
import type { StoreHarness } from './contract.js';
import { runBulkContract } from './bulk-contract.js';
import { MAILDROP_BODIES, crlfForm, runMaildropContract, runUrlAuthKeyContract } from './keys-maildrop-contract.js';

const skip = await pgSkip();

async function harness(): Promise<StoreHarness> {
  const schema = freshSchema('contracts');
  let store: MailStore = await openPostgresStore({ url: PG_URL, schema, poolSize: 4 });
  return {
    store,
    reopen: async () => {
      await store.close();
      store = await openPostgresStore({ url: PG_URL, schema, poolSize: 4 });
      return store;
    },
    cleanup: async () => {
      await store.close();
      await dropSchema(schema);
    },
  };
}

runBulkContract('postgres', harness, { skip });
runUrlAuthKeyContract('postgres', harness, { skip });
runMaildropContract('postgres', harness, { skip });

describe('postgres: maildrop sizes and annotation changes', { skip }, () => {
  test('bodies stored before the bare-LF counts are counted at the first login, and the counts kept', async () => {
    const schema = freshSchema('maildrop');
    const s: PgMailStore = await openPostgresStore({ url: PG_URL, schema, poolSize: 4 });
    try {
      const u = await s.createUser('u', 'h');
      const box = await s.createMailbox(u.id, 'INBOX');
      await s.appendMessages(box.id, MAILDROP_BODIES.map((data) => ({ data, flags: [] })));
      await s.pool.query('UPDATE blobs SET bare_lf = NULL');
      const want = MAILDROP_BODIES.map((b) => crlfForm(b).length);
      assert.deepEqual((await s.openMaildrop(box.id)).sizes, want);
      const r = await s.pool.query<{ id: number; bare_lf: number | null }>('SELECT id, bare_lf FROM blobs ORDER BY id');
      assert.deepEqual(r.rows.map((x) => x.bare_lf), MAILDROP_BODIES.map((b, i) => want[i]! - b.length));
      assert.deepEqual((await s.openMaildrop(box.id)).sizes, want);
    } finally {
      await s.close();
      await dropSchema(schema);
    }
  });

  test('METADATA changes (server and mailbox, special use) are journalled and reach another node', async () => {
    const schema = freshSchema('notes');
    const a = await openPostgresStore({ url: PG_URL, schema, poolSize: 2 });
    const b = await openPostgresStore({ url: PG_URL, schema, poolSize: 2 });
    try {
      const u = await a.createUser('u', 'h');
      const box = await a.createMailbox(u.id, 'INBOX');
      const seen: Change[] = [];
      b.feed.subscribe(u.id, (c) => seen.push(c));
      await b.getUserById(u.id); // the subscription's journal position is read before the writes
      const limits = { maxEntries: 10, maxPerUser: 10 };
      await a.setAnnotations(u.id, null, [{ entry: '/private/comment', value: Buffer.from('srv') }], limits);
      await a.setAnnotations(u.id, box.id, [{ entry: '/shared/comment', value: Buffer.from('x') }, { entry: '/shared/comment', value: null }], limits);
      await a.setSpecialUse(box.id, '\\Archive');
      const deadline = Date.now() + 5000;
      while (seen.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(seen, [
        { kind: 'annotation', userId: u.id, mailboxId: null, entries: ['/private/comment'] },
        { kind: 'annotation', userId: u.id, mailboxId: box.id, entries: ['/shared/comment'] },
        { kind: 'annotation', userId: u.id, mailboxId: box.id, entries: ['/private/specialuse'] },
      ]);
    } finally {
      await a.close();
      await b.close();
      await dropSchema(schema);
    }
  });

  test('THREADIDs (RFC 8474 §5.2): fixed at APPEND; bodies stored before v4-thread-ids get theirs from the backfill, in batches; RESETKEY is journalled', async () => {
    const schema = freshSchema('threadid');
    const s: PgMailStore = await openPostgresStore({ url: PG_URL, schema, poolSize: 4 });
    const other = await openPostgresStore({ url: PG_URL, schema, poolSize: 2 });
    try {
      const u = await s.createUser('u', 'h');
      const box = await s.createMailbox(u.id, 'INBOX');
      const m = (id: string, refs = '') => Buffer.from(`Message-ID: <${id}@x>\r\n${refs ? `References: <${refs}@x>\r\n` : ''}Subject: s\r\n\r\nb\r\n`);
      await s.appendMessages(box.id, [m('a'), m('b', 'a'), m('c'), m('d', 'c'), m('e', 'a')].map((data) => ({ data, flags: [] })));
      const at = await s.threadIds(box.id, [1, 2, 3, 4, 5]);
      assert.deepEqual([2, 3, 4, 5].map((u) => at.get(u) === at.get(1)), [true, false, false, true]);
      assert.equal(at.get(4), at.get(3));
      // As a store from before the migration left them: no thread ids, no links.
      await s.pool.query('UPDATE blobs SET thread_id = NULL');
      await s.pool.query('DELETE FROM thread_links');
      // FETCH reports one before the pass reaches it: fixed then, and the pass keeps it.
      const early = (await s.threadIds(box.id, [4])).get(4);
      assert.match(early ?? '', /^T\d+$/);
      let batches = 0;
      while ((await s.fillPendingThreadIds(2)) > 0) batches++;
      assert.equal(batches, 2); // four bodies left after the one FETCH fixed, two a batch
      const again = await s.threadIds(box.id, [1, 2, 3, 4, 5]);
      assert.equal(again.get(2), again.get(1));
      assert.equal(again.get(5), again.get(1));
      assert.equal(again.get(4), early);
      assert.equal(again.get(4), again.get(3));
      assert.notEqual(again.get(3), again.get(1));
      assert.deepEqual((await s.searchMeta(box.id, { k: 'threadid', id: again.get(1)! })).uids, [1, 2, 5]);
      // RFC 4467 §6.3: RESETKEY's change reaches another node's sessions through the journal.
      const seen: Change[] = [];
      other.feed.subscribe(u.id, (c) => seen.push(c));
      await other.getUserById(u.id);
      await s.resetUrlAuthKeys(u.id, box.id, 'INTERNAL');
      const deadline = Date.now() + 5000;
      while (seen.length < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(seen, [{ kind: 'urlauth-key', userId: u.id, mailboxId: box.id }]);
    } finally {
      await s.close();
      await other.close();
      await dropSchema(schema);
    }
  });
});
