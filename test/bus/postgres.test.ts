// PgChangeBus: the ChangeBus over LISTEN/NOTIFY between processes of one
// PostgreSQL store: a publish reaches the other participants (not as data:
// only whom to look at), and a NOTIFY from a store write transaction reaches
// it too; after its connection is terminated it reconnects and says so.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pg from 'pg';
import { PgChangeBus } from '../../src/bus/postgres.js';
import { openPostgresStore } from '../../src/store/postgres/index.js';
import type { ChangeHint } from '../../src/store/types.js';
import { PG_URL, dropSchema, freshSchema, pgSkip } from '../helpers/pg.js';

const skip = await pgSkip();

function next(bus: PgChangeBus, ms = 3000): Promise<ChangeHint> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no hint')), ms);
    const off = bus.subscribe((h) => {
      clearTimeout(t);
      off();
      resolve(h);
    });
  });
}

describe('PgChangeBus', { skip }, () => {
  test('hints cross processes; a store commit notifies; reconnects after termination', async () => {
    const schema = freshSchema('bus');
    let reconnects = 0;
    const a = new PgChangeBus(PG_URL, schema);
    const b = new PgChangeBus(PG_URL, schema, () => reconnects++);
    const store = await openPostgresStore({ url: PG_URL, schema, followOthers: false });
    try {
      await Promise.all([a.ready, b.ready]);
      assert.equal(reconnects, 1, 'the first connection counts as one (catch up at start)');
      const got = next(b);
      a.publish({ userId: 42, mailboxId: 7, modseq: 9, kind: 'append' });
      assert.equal((await got).userId, 42);
      const u = await store.createUser('alice', 'h');
      const fromStore = next(b);
      await store.createMailbox(u.id, 'INBOX');
      assert.equal((await fromStore).userId, u.id);
      // A PostgreSQL restart, as far as this connection is concerned.
      const admin = new pg.Client({ connectionString: PG_URL });
      await admin.connect();
      await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN %' AND pid <> pg_backend_pid() AND backend_type = 'client backend' AND pid IN (SELECT pid FROM pg_stat_activity WHERE query = $1)`, [`LISTEN ${b.channel}`]);
      await admin.end();
      const deadline = Date.now() + 5000;
      while (reconnects < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.equal(reconnects, 2, 'reconnected and asked for a full catch-up');
      const again = next(b);
      a.publish({ userId: 43, mailboxId: 0, modseq: 0, kind: 'mailboxes' });
      assert.equal((await again).userId, 43);
    } finally {
      await a.close();
      await b.close();
      await store.close();
      await dropSchema(schema);
    }
  });
});
