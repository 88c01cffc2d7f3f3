// Store additions for mail flow: addresses and catch-alls, per-user quota
// enforced inside the writing transaction, and import with given UIDs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SqliteMailStore } from '../../src/store/sqlite/index.js';
import { StoreError, type Change, type MailStore } from '../../src/store/types.js';

async function withStore(fn: (s: MailStore, dir: string) => Promise<void>) {
  const dir = await mkdtemp(path.join(tmpdir(), 'quire-store-'));
  const s = await SqliteMailStore.open({ dataDir: dir, synchronous: 'NORMAL' });
  try {
    await fn(s, dir);
  } finally {
    await s.close();
    await rm(dir, { recursive: true, force: true });
  }
}

const kind = (k: string) => (e: unknown) => e instanceof StoreError && e.kind === k;
const msg = (n: number, pad = 0) => ({ data: Buffer.from(`Subject: ${n}\r\n\r\n${'x'.repeat(pad)}\r\n`), flags: [] });

test('addresses: add, find case-insensitively, catch-all, uniqueness, delete, cascade with the user', async () => {
  await withStore(async (s) => {
    const a = await s.createUser('alice', 'h');
    const b = await s.createUser('bob', 'h');
    assert.deepEqual(await s.addAddress(a.id, ' Alice.Smith@Example.COM '), { address: 'alice.smith@example.com', userId: a.id });
    await s.addAddress(b.id, '@example.net');
    assert.equal((await s.findAddress('ALICE.SMITH@example.com'))?.userId, a.id);
    assert.equal((await s.findAddress('@EXAMPLE.NET'))?.userId, b.id);
    assert.equal(await s.findAddress('nobody@example.com'), null);
    await assert.rejects(s.addAddress(b.id, 'alice.smith@example.com'), kind('ALREADYEXISTS'));
    for (const bad of ['no-at-sign', 'a@', 'a b@c', 'a@b@c', '<a@b>']) await assert.rejects(s.addAddress(a.id, bad), kind('CANNOT'), bad);
    await assert.rejects(s.addAddress(999, 'x@y'), kind('NONEXISTENT'));
    assert.deepEqual((await s.listAddresses()).map((x) => x.address), ['@example.net', 'alice.smith@example.com']);
    assert.deepEqual((await s.listAddresses(b.id)).map((x) => x.address), ['@example.net']);
    await s.removeAddress('Alice.Smith@example.com');
    await assert.rejects(s.removeAddress('alice.smith@example.com'), kind('NONEXISTENT'));
    await s.deleteUser(b.id);
    assert.deepEqual(await s.listAddresses(), []);
  });
});

test('quota: usage follows append, copy, move, expunge and mailbox deletion', async () => {
  await withStore(async (s) => {
    const u = await s.createUser('alice', 'h');
    const inbox = await s.createMailbox(u.id, 'INBOX');
    const other = await s.createMailbox(u.id, 'Other');
    await s.appendMessages(inbox.id, [msg(1, 100), msg(2, 100)]);
    const size = (await s.listMessages(inbox.id)).reduce((n, m) => n + m.size, 0);
    assert.deepEqual(await s.getQuota(u.id), { storageLimit: null, messageLimit: null, storageUsed: size, messagesUsed: 2 });
    await s.copyMessages(inbox.id, [1, 2], other.id);
    assert.equal((await s.getQuota(u.id)).messagesUsed, 4, 'a copy counts again');
    await s.moveMessages(other.id, [1], inbox.id);
    assert.equal((await s.getQuota(u.id)).messagesUsed, 4);
    await s.storeFlags(inbox.id, [1], 'add', ['\\Deleted']);
    await s.expunge(inbox.id);
    assert.equal((await s.getQuota(u.id)).messagesUsed, 3);
    await s.deleteMailbox(u.id, 'Other');
    assert.equal((await s.getQuota(u.id)).messagesUsed, 2);
    await assert.rejects(s.getQuota(999), kind('NONEXISTENT'));
  });
});

test('quota: APPEND, COPY and import over a limit fail OVERQUOTA atomically; MOVE at the limit succeeds', async () => {
  await withStore(async (s) => {
    const u = await s.createUser('alice', 'h');
    const inbox = await s.createMailbox(u.id, 'INBOX');
    const other = await s.createMailbox(u.id, 'Other');
    const changes: Change[] = [];
    s.feed.subscribe(u.id, (c) => changes.push(c));
    await s.setQuota(u.id, { messages: 3 });
    await s.appendMessages(inbox.id, [msg(1), msg(2)]);
    await assert.rejects(s.appendMessages(inbox.id, [msg(3), msg(4)]), kind('OVERQUOTA'));
    assert.equal((await s.mailboxStatus(inbox.id)).messages, 2, 'all or nothing');
    await assert.rejects(s.copyMessages(inbox.id, [1, 2], other.id), kind('OVERQUOTA'));
    await assert.rejects(s.importMessages(other.id, [{ ...msg(5), uid: 10 }, { ...msg(6), uid: 11 }]), kind('OVERQUOTA'));
    await s.appendMessages(inbox.id, [msg(3)]);
    // Exactly at the limit: moving between own mailboxes does not change usage.
    await s.moveMessages(inbox.id, [1, 2, 3], other.id);
    assert.equal((await s.mailboxStatus(other.id)).messages, 3);
    await s.renameMailbox(u.id, 'Other', 'Renamed');
    assert.equal(changes.filter((c) => c.kind === 'append').length, 3, 'failed writes publish nothing');
    // Storage limit (bytes), then no limit.
    await s.setQuota(u.id, { messages: null, storage: (await s.getQuota(u.id)).storageUsed + 10 });
    await assert.rejects(s.appendMessages(inbox.id, [msg(9, 50)]), kind('OVERQUOTA'));
    await s.setQuota(u.id, { storage: null });
    await s.appendMessages(inbox.id, [msg(9, 50)]);
    await assert.rejects(s.setQuota(u.id, { storage: -1 }), kind('CANNOT'));
  });
});

test('importMessages keeps UIDs, flags, keywords and dates, sets UIDVALIDITY/UIDNEXT, refuses going back', async () => {
  await withStore(async (s) => {
    const u = await s.createUser('alice', 'h');
    const mb = await s.createMailbox(u.id, 'Imported');
    const changes: Change[] = [];
    s.feed.subscribe(u.id, (c) => changes.push(c));
    const r = await s.importMessages(
      mb.id,
      [
        { ...msg(1), uid: 5, flags: ['\\Seen', '$Label1'], internalDate: 1_000_000_000_000 },
        { ...msg(2), uid: 9, flags: ['\\Flagged', 'Work'] },
      ],
      { uidValidity: 1234567, uidNext: 20 },
    );
    assert.deepEqual(r, { uidValidity: 1234567, uids: [5, 9] });
    const info = (await s.getMailboxById(mb.id))!;
    assert.equal(info.uidValidity, 1234567);
    assert.equal(info.uidNext, 20);
    const list = await s.listMessages(mb.id);
    assert.deepEqual(list.map((m) => [m.uid, m.flags]), [[5, ['\\Seen', '$Label1']], [9, ['\\Flagged', 'Work']]]);
    assert.equal(list[0]!.internalDate, 1_000_000_000_000);
    assert.deepEqual(changes.map((c) => c.kind), ['append']);
    await assert.rejects(s.importMessages(mb.id, [{ ...msg(3), uid: 19 }]), kind('CANNOT'));
    await assert.rejects(s.importMessages(mb.id, [], { uidValidity: 99 }), kind('CANNOT'), 'mailbox has messages');
    await assert.rejects(s.importMessages(mb.id, [{ ...msg(3), uid: 30 }, { ...msg(4), uid: 30 }]), kind('CANNOT'));
    await s.importMessages(mb.id, [{ ...msg(3), uid: 25 }]);
    assert.equal((await s.getMailboxById(mb.id))!.uidNext, 26);
    const body = (await s.openMessage(mb.id, 25))!;
    assert.equal((await body.read(0, body.size)).toString(), msg(3).data.toString());
    // A mailbox created later still gets a greater UIDVALIDITY than anything imported.
    await s.importMessages((await s.createMailbox(u.id, 'Future'))!.id, [], { uidValidity: 4_000_000_000 });
    assert.ok((await s.createMailbox(u.id, 'Later')).uidValidity > 4_000_000_000);
  });
});
