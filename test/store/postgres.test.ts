// The MailStore contract suite (contract.ts) on the PostgreSQL backend, each
// test in a fresh schema dropped afterwards; plus what only this backend
// has: chunked bodies, migrations, the trigram index.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pg from 'pg';
import { openPostgresStore, BLOB_CHUNK_SIZE, MIGRATIONS, type PgMailStore } from '../../src/store/postgres/index.js';
import type { MailStore } from '../../src/store/types.js';
import { PG_URL, dropSchema, freshSchema, pgSkip } from '../helpers/pg.js';
import { msg, runStoreContract } from './contract.js';

const skip = await pgSkip();


async function fresh(): Promise<{ store: PgMailStore; schema: string }> {
  const schema = freshSchema('contract');
  return { store: await openPostgresStore({ url: PG_URL, schema, poolSize: 4 }), schema };
}

runStoreContract(
  'postgres',
  async () => {
    const f = await fresh();
    let store: MailStore = f.store;
    return {
      store,
      reopen: async () => {
        await store.close();
        store = await openPostgresStore({ url: PG_URL, schema: f.schema, poolSize: 4 });
        return store;
      },
      cleanup: async () => {
        await store.close();
        await dropSchema(f.schema);
      },
    };
  },
  { skip },
);

describe('postgres backend', { skip }, () => {
  test('bodies are stored in 256 KiB chunks and stream back in pieces, byte for byte', async () => {
    const { store, schema } = await fresh();
    try {
      const u = await store.createUser('u', 'h');
      const box = await store.createMailbox(u.id, 'INBOX');
      const body = Buffer.alloc(BLOB_CHUNK_SIZE * 3 + 1234);
      for (let i = 0; i < body.length; i++) body[i] = (i * 7 + 13) & 0xff;
      const data = Buffer.concat([Buffer.from('Subject: big\r\n\r\n'), body]);
      await store.appendMessages(box.id, [{ data, flags: [] }]);
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      try {
        const r = await c.query(`SELECT count(*)::int AS n, max(length(data))::int AS max FROM "${schema}".blob_chunks`);
        assert.equal(r.rows[0].n, 4);
        assert.equal(r.rows[0].max, BLOB_CHUNK_SIZE);
      } finally {
        await c.end();
      }
      const m = (await store.openMessage(box.id, 1))!;
      const pieces: Buffer[] = [];
      for await (const p of m.stream(100, data.length - 5, 100_000)) {
        assert.ok(p.length <= 100_000);
        pieces.push(p);
      }
      assert.ok(Buffer.concat(pieces).equals(data.subarray(100, data.length - 5)));
      const across = await m.read(BLOB_CHUNK_SIZE - 10, BLOB_CHUNK_SIZE + 10);
      assert.ok(across.equals(data.subarray(BLOB_CHUNK_SIZE - 10, BLOB_CHUNK_SIZE + 10)));
      // The last copy's expunge removes the body and its chunks.
      await store.storeFlags(box.id, [1], 'add', ['\\Deleted']);
      await store.expunge(box.id);
      const c2 = new pg.Client({ connectionString: PG_URL });
      await c2.connect();
      try {
        const r = await c2.query(`SELECT (SELECT count(*) FROM "${schema}".blob_chunks)::int AS chunks, (SELECT count(*) FROM "${schema}".blobs)::int AS blobs`);
        assert.deepEqual(r.rows[0], { chunks: 0, blobs: 0 });
      } finally {
        await c2.end();
      }
    } finally {
      await store.close();
      await dropSchema(schema);
    }
  });

  test('migrations are recorded once; a second open (another node) applies nothing again', async () => {
    const { store, schema } = await fresh();
    const [a, b] = await Promise.all([openPostgresStore({ url: PG_URL, schema }), openPostgresStore({ url: `${PG_URL}?schema=${schema}` })]);
    try {
      const r = await store.pool.query('SELECT name FROM schema_migrations ORDER BY name');
      assert.deepEqual(r.rows.map((x) => x.name), MIGRATIONS.map((m) => m.name).sort());
      // The URL's ?schema= reaches the same data.
      await a.createUser('shared', 'h');
      assert.equal((await b.getUser('shared'))?.name, 'shared');
    } finally {
      await a.close();
      await b.close();
      await store.close();
      await dropSchema(schema);
    }
  });

  test('SEARCH BODY/TEXT: the index rules out exactly the messages without the needle, others stay undecided', async () => {
    const { store, schema } = await fresh();
    try {
      // pg_trgm only speeds this up (GIN indexes); the answers are the same without it.
      if (!store.trigram) console.log('# pg_trgm not available: SEARCH BODY/TEXT scan blob_text');
      const u = await store.createUser('u', 'h');
      const box = await store.createMailbox(u.id, 'INBOX');
      await store.appendMessages(box.id, [
        { data: msg(1, 'the quick brown fox'), flags: [] },
        { data: msg(2, 'nothing here'), flags: [] },
        { data: Buffer.from('Subject: fox in header\r\n\r\nplain'), flags: [] },
      ]);
      const body = await store.searchMeta(box.id, { k: 'content', scope: 'body', value: 'brown fox' });
      assert.deepEqual(body, { uids: [], undecided: [1] });
      const text = await store.searchMeta(box.id, { k: 'content', scope: 'text', value: 'fox' });
      assert.deepEqual(text, { uids: [], undecided: [1, 3] });
      const none = await store.searchMeta(box.id, { k: 'not', f: { k: 'content', scope: 'body', value: 'zebra' } });
      assert.deepEqual(none, { uids: [1, 2, 3], undecided: [] });
    } finally {
      await store.close();
      await dropSchema(schema);
    }
  });
});
