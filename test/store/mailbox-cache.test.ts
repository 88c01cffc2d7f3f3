// The SQLite store keeps mailbox rows between commits (rows.ts
// MailboxRowCache): the row every store call looks up is read once while
// nobody commits, and never served stale: not after this connection's own
// commit, not after another connection's (another worker or process on the
// same database), inside a transaction never from the cache.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SqliteMailStore } from '../../src/store/sqlite/index.js';

const msg = (i: number) => Buffer.from(`From: a@example.com\r\nSubject: ${i}\r\n\r\nbody ${i}\r\n`);

test('mailbox rows are read once between commits, and every commit (own or another process\'s) is seen', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'quire-mbcache-'));
  try {
    const a = await SqliteMailStore.open({ dataDir: dir, synchronous: 'NORMAL' });
    const b = await SqliteMailStore.open({ dataDir: dir, synchronous: 'NORMAL', followOthers: false });
    const u = await a.createUser('alice', 'x');
    const box = await a.createMailbox(u.id, 'INBOX');
    const row = (s: SqliteMailStore) => (s as unknown as { mailboxById(id: number): { uid_next: number; msg_count: number } }).mailboxById(box.id);
    const first = row(a);
    assert.equal(row(a), first, 'no commit since: the same row, not read again');
    // This connection's own commit.
    await a.appendMessages(box.id, [{ data: msg(1), flags: [] }]);
    const afterOwn = row(a);
    assert.notEqual(afterOwn, first);
    assert.equal(afterOwn.uid_next, 2);
    assert.equal((await a.getMailboxById(box.id))!.uidNext, 2);
    // Another connection's commit (as another worker's).
    await b.appendMessages(box.id, [{ data: msg(2), flags: [] }, { data: msg(3), flags: [] }]);
    assert.equal(row(a).uid_next, 4, 'data_version moved: read again');
    assert.equal(row(a).msg_count, 3);
    assert.equal((await a.getMailboxById(box.id))!.uidNext, 4);
    // A's next APPEND takes the next UIDs (read inside its transaction, never from the cache).
    const r = await a.appendMessages(box.id, [{ data: msg(4), flags: [] }]);
    assert.deepEqual(r.uids, [4]);
    await b.close();
    await a.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
