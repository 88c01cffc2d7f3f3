// Group commit (src/store/sqlite/durability.ts): durable writes commit with
// synchronous=NORMAL and then share fdatasync()s of the WAL file run off the
// event loop; each resolves only after a sync that started after its commit,
// with its change records published first. Writers of several connections on
// one database (workers) publish each other's changes in modseq order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SqliteMailStore } from '../../src/store/sqlite/index.js';
import type { Change } from '../../src/store/types.js';

const msg = (i: number) => Buffer.from(`Subject: m${i}\r\nFrom: a@example.org\r\n\r\nbody ${i}\r\n`);

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'quire-gc-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('concurrent durable APPENDs share WAL syncs, and each resolves after a sync with its change published', async () => {
  await withDir(async (dir) => {
    const store = await SqliteMailStore.open({ dataDir: dir, synchronous: 'FULL' });
    try {
      const u = await store.createUser('u', 'h');
      const box = await store.createMailbox(u.id, 'INBOX');
      const published = new Set<number>();
      store.feed.subscribe(u.id, (c) => {
        if (c.kind === 'append') for (const m of c.messages) published.add(m.uid);
      });

      // One append alone: it does not resolve before a sync has run.
      const before = store.walSyncCount();
      const one = await store.appendMessages(box.id, [{ data: msg(0), flags: [] }]);
      assert.ok(store.walSyncCount() > before, 'the append waited for a WAL sync');
      assert.ok(published.has(one.uids[0]!));

      const N = 40;
      const start = store.walSyncCount();
      const results = await Promise.all(
        Array.from({ length: N }, async (_, i) => {
          const r = await store.appendMessages(box.id, [{ data: msg(i + 1), flags: [] }]);
          // Published (to this process's sessions) before the caller hears of durability.
          assert.ok(published.has(r.uids[0]!), `uid ${r.uids[0]} published before the append resolved`);
          return r.uids[0]!;
        }),
      );
      const syncs = store.walSyncCount() - start;
      assert.equal(new Set(results).size, N);
      assert.ok(syncs >= 1, 'at least one sync');
      assert.ok(syncs < N, `fewer syncs (${syncs}) than appends (${N})`);
      assert.equal((await store.mailboxStatus(box.id)).messages, N + 1);
    } finally {
      await store.close();
    }
  });
});

test('a writer first publishes what another connection committed to the same mailbox (modseq order, appends stay appends)', async () => {
  await withDir(async (dir) => {
    const a = await SqliteMailStore.open({ dataDir: dir, synchronous: 'FULL' });
    const u = await a.createUser('u', 'h');
    const box = await a.createMailbox(u.id, 'INBOX');
    const b = await SqliteMailStore.open({ dataDir: dir, synchronous: 'FULL' });
    try {
      const seen: Change[] = [];
      b.feed.subscribe(u.id, (c) => seen.push(c));
      await a.appendMessages(box.id, [{ data: msg(1), flags: [] }]);
      await a.storeFlags(box.id, [1], 'add', ['\\Seen']);
      // b writes before any poll could have run: its transaction catches up first.
      await b.appendMessages(box.id, [{ data: msg(2), flags: [] }]);
      const msgs = seen.filter((c) => c.kind === 'append' || c.kind === 'flags');
      assert.deepEqual(
        msgs.map((c) => [c.kind, (c as { messages: { uid: number }[] }).messages.map((m) => m.uid)]),
        [
          ['append', [1]],
          ['append', [2]],
        ],
      );
      const modseqs = msgs.map((c) => (c as { modseq: number }).modseq);
      assert.deepEqual([...modseqs].sort((x, y) => x - y), modseqs, 'ascending modseqs');
      // The foreign append carries the flags it has now.
      assert.deepEqual((msgs[0] as { messages: { flags: string[] }[] }).messages[0]!.flags, ['\\Seen']);
      // Nothing is reported twice by the poll afterwards.
      b.wake(null);
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(seen.filter((c) => c.kind === 'append').length, 2);
    } finally {
      await b.close();
      await a.close();
    }
  });
});

test('a mailbox another connection created and filled: the first write here publishes its messages first; a MOVE within one mailbox is not reported twice', async () => {
  await withDir(async (dir) => {
    const a = await SqliteMailStore.open({ dataDir: dir, synchronous: 'NORMAL' });
    const u = await a.createUser('u', 'h');
    const b = await SqliteMailStore.open({ dataDir: dir, synchronous: 'NORMAL' });
    try {
      const seen: Change[] = [];
      b.feed.subscribe(u.id, (c) => seen.push(c));
      const box = await a.createMailbox(u.id, 'New');
      await a.appendMessages(box.id, [{ data: msg(1), flags: [] }, { data: msg(2), flags: [] }]);
      await b.appendMessages(box.id, [{ data: msg(3), flags: [] }]);
      const appended = seen.filter((c) => c.kind === 'append').map((c) => (c as { messages: { uid: number }[] }).messages.map((m) => m.uid));
      assert.deepEqual(appended, [[1, 2], [3]]);
      seen.length = 0;
      await b.moveMessages(box.id, [1], box.id);
      assert.deepEqual(
        seen.map((c) => c.kind),
        ['append', 'expunge'],
      );
    } finally {
      await b.close();
      await a.close();
    }
  });
});

test('mailboxes created, renamed and deleted by another connection become change records', async () => {
  await withDir(async (dir) => {
    const a = await SqliteMailStore.open({ dataDir: dir, synchronous: 'NORMAL' });
    const u = await a.createUser('u', 'h');
    const b = await SqliteMailStore.open({ dataDir: dir, synchronous: 'NORMAL' });
    try {
      const seen: Change[] = [];
      b.feed.subscribe(u.id, (c) => seen.push(c));
      const box = await a.createMailbox(u.id, 'One');
      b.wake(null);
      await new Promise((r) => setTimeout(r, 20));
      await a.renameMailbox(u.id, 'One', 'Two');
      b.wake({ userId: u.id, mailboxId: box.id, modseq: 0, kind: 'mailboxes' });
      await new Promise((r) => setTimeout(r, 20));
      await a.deleteMailbox(u.id, 'Two');
      b.wake(null);
      await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(
        seen.map((c) => c.kind),
        ['mailbox-create', 'mailbox-rename', 'mailbox-delete'],
      );
    } finally {
      await b.close();
      await a.close();
    }
  });
});
