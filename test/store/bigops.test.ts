// Removing many messages (EXPUNGE, UID EXPUNGE, DELETE of a big mailbox) and
// changing the flags of many (STORE) happen in bounded transactions, so the event loop (every other
// connection) is never held for the whole job: checked through the change
// feed, which gets one record per transaction, and through the result.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import type { Change } from '../../src/store/types.js';
import { msg } from './contract.js';

test('EXPUNGE, DELETE and STORE of thousands of messages run in bounded steps', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'quire-bigops-'));
  try {
    const store = await openSqliteStore({ dataDir: dir, synchronous: 'NORMAL' });
    const u = await store.createUser('big', 'x');
    const box = await store.createMailbox(u.id, 'Box');
    const other = await store.createMailbox(u.id, 'Other');
    for (const b of [box, other]) {
      for (let i = 0; i < 2400; i += 600) await store.appendMessages(b.id, Array.from({ length: 600 }, (_, j) => ({ data: msg(i + j), flags: [] })));
    }
    const changes: Change[] = [];
    store.feed.subscribe(u.id, (c) => changes.push(c));
    // Every other message \Deleted, then EXPUNGE: 1,200 go, in several records, each its own modseq.
    const uids = await store.listUids(box.id);
    await store.storeFlags(box.id, uids.filter((x) => x % 2 === 0), 'add', ['\\Deleted']);
    changes.length = 0;
    const gone = await store.expunge(box.id);
    assert.deepEqual(gone, uids.filter((x) => x % 2 === 0));
    const ex = changes.filter((c): c is Extract<Change, { kind: 'expunge' }> => c.kind === 'expunge');
    assert.ok(ex.length >= 3, `${ex.length} expunge records`);
    assert.ok(ex.every((c) => c.uids.length <= 500), 'each step is bounded');
    assert.deepEqual(ex.flatMap((c) => c.uids), gone, 'the steps together are the whole expunge, in order');
    assert.ok(ex.every((c, i) => i === 0 || c.modseq > ex[i - 1]!.modseq), 'each step has its own, growing modseq');
    assert.deepEqual(await store.listUids(box.id), uids.filter((x) => x % 2 === 1));
    // UID EXPUNGE of a given set: only the \Deleted among them.
    await store.storeFlags(box.id, await store.listUids(box.id), 'add', ['\\Deleted']);
    const some = (await store.listUids(box.id)).slice(100, 1000);
    changes.length = 0;
    assert.deepEqual(await store.expunge(box.id, [...some, 999_999].reverse()), some);
    assert.ok(changes.filter((c) => c.kind === 'expunge').length >= 2);
    // DELETE of a big mailbox: emptied in steps, then the mailbox goes; its messages are gone for good.
    changes.length = 0;
    await store.deleteMailbox(u.id, 'Other');
    const kinds = changes.map((c) => c.kind);
    assert.equal(kinds.at(-1), 'mailbox-delete');
    assert.ok(kinds.filter((k) => k === 'expunge').length >= 4, kinds.join(' '));
    assert.equal(await store.getMailbox(u.id, 'Other'), null);
    assert.equal((await store.getQuota(u.id)).messagesUsed, 300, "quota counts only what is left");
    // STORE on more than 5,000 messages: several transactions, every message changed once.
    const third = await store.createMailbox(u.id, 'Third');
    for (let i = 0; i < 5200; i += 1300) await store.appendMessages(third.id, Array.from({ length: 1300 }, (_, j) => ({ data: msg(i + j), flags: [] })));
    const all = await store.listUids(third.id);
    changes.length = 0;
    const res = await store.storeFlags(third.id, [...all].reverse(), 'add', ['\\Seen', '$Done']);
    assert.deepEqual(res.changed.map((m) => m.uid), all);
    const fl = changes.filter((c): c is Extract<Change, { kind: 'flags' }> => c.kind === 'flags');
    assert.equal(fl.length, 2);
    assert.equal(fl[0]!.messages.length + fl[1]!.messages.length, 5200);
    assert.ok(fl[1]!.modseq > fl[0]!.modseq);
    assert.ok((await store.listMessages(third.id)).every((m) => m.flags.includes('\\Seen') && m.flags.includes('$Done')));
    await store.close();
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('COPY and MOVE of thousands of messages run in bounded steps; a COPY failing part way leaves the destination as it was', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'quire-bigcopy-'));
  try {
    const store = await openSqliteStore({ dataDir: dir, synchronous: 'NORMAL' });
    const u = await store.createUser('big', 'x');
    const box = await store.createMailbox(u.id, 'Box');
    const dest = await store.createMailbox(u.id, 'Dest');
    for (let i = 0; i < 1200; i += 600) await store.appendMessages(box.id, Array.from({ length: 600 }, (_, j) => ({ data: msg(i + j), flags: j % 3 ? [] : ['\\Flagged'] })));
    const uids = await store.listUids(box.id);
    const changes: Change[] = [];
    store.feed.subscribe(u.id, (c) => changes.push(c));
    const res = await store.copyMessages(box.id, [...uids].reverse(), dest.id);
    assert.deepEqual(res.sourceUids, uids);
    assert.equal(res.destUids.length, uids.length);
    assert.ok(res.destUids.every((d, i) => i === 0 || d > res.destUids[i - 1]!), 'destination UIDs ascend');
    const ap = changes.filter((c): c is Extract<Change, { kind: 'append' }> => c.kind === 'append');
    assert.ok(ap.length >= 4, `${ap.length} append records`);
    assert.ok(ap.every((c) => c.messages.length <= 200), 'each step is bounded');
    assert.deepEqual(await store.listUids(dest.id), res.destUids);
    // The quota allows only part of a second copy: the steps already made are removed again (RFC 9051 §6.4.7).
    const before = await store.listUids(dest.id);
    await store.setQuota(u.id, { messages: 2400 + 500 });
    await assert.rejects(store.copyMessages(box.id, uids, dest.id), (e: { kind?: string }) => e.kind === 'OVERQUOTA');
    assert.deepEqual(await store.listUids(dest.id), before, 'the destination is as it was');
    assert.equal((await store.getQuota(u.id)).messagesUsed, 2400);
    await store.setQuota(u.id, { messages: null });
    // MOVE: every message moved once, in steps, each its own EXPUNGE record in the source.
    changes.length = 0;
    const moved = await store.moveMessages(dest.id, before, box.id);
    assert.deepEqual(moved.sourceUids, before);
    assert.deepEqual(await store.listUids(dest.id), []);
    assert.equal((await store.listUids(box.id)).length, 2400);
    const ex = changes.filter((c): c is Extract<Change, { kind: 'expunge' }> => c.kind === 'expunge');
    assert.ok(ex.length >= 4 && ex.every((c) => c.uids.length <= 200));
    await store.close();
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
