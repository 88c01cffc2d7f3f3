// Contract of the store-to-store copy methods (exportMailbox, bulkImport,
// exportCredentials; issue 13 item 6), for every backend:
//   runBulkContract('sqlite', open)               (test/store/bulk.test.ts)
//   runBulkContract('postgres', open, { skip })   (test/store/postgres-contracts.test.ts)
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { BulkMessage, Change, MailStore } from '../../src/store/types.js';
import { msg, rejectsKind, type StoreHarness } from './contract.js';

const bm = (uid: number, modseq: number, extra: Partial<BulkMessage> = {}): BulkMessage => ({
  uid,
  modseq,
  flags: [],
  internalDate: 1_500_000_000_000 + uid,
  internalTz: -300,
  saveDate: 1_600_000_000_000 + uid,
  data: msg(uid),
  ...extra,
});

export function runBulkContract(name: string, open: () => Promise<StoreHarness>, opts: { skip?: false | string } = {}): void {
  async function withStore(fn: (s: MailStore, userId: number, reopen: () => Promise<MailStore>) => Promise<void>): Promise<void> {
    const h = await open();
    try {
      const user = await h.store.createUser('alice', 'hash');
      await fn(h.store, user.id, h.reopen);
    } finally {
      await h.cleanup();
    }
  }

  describe(`MailStore bulk copy contract: ${name}`, { skip: opts.skip ?? false }, () => {
    test('UIDs, MODSEQs, flags, dates, tombstones and state survive, durably; an append change is published', () =>
      withStore(async (s, userId, reopen) => {
        const mb = await s.createMailbox(userId, 'Copy');
        const seen: Change[] = [];
        const unsub = s.feed.subscribe(userId, (c) => seen.push(c));
        await s.bulkImport(mb.id, {
          messages: [bm(3, 40, { flags: ['\\Seen', 'Work'] }), bm(7, 12, { saveDate: null }), bm(9, 41, { flags: ['\\Deleted'] })],
          state: { uidValidity: 123456, objectId: 'Fmigrated0001' },
        });
        await s.bulkImport(mb.id, { messages: [bm(10, 5)], state: { uidNext: 20, highestModseq: 60, expunged: [{ uid: 4, modseq: 50 }, { uid: 11, modseq: 55 }], tombstoneFloor: 30 } });
        unsub();
        assert.deepEqual(seen.map((c) => c.kind), ['append', 'append']);
        s = await reopen();
        const st = await s.exportMailbox(mb.id);
        assert.deepEqual(st, { uidValidity: 123456, uidNext: 20, highestModseq: 60, objectId: 'Fmigrated0001', expunged: [{ uid: 4, modseq: 50 }, { uid: 11, modseq: 55 }], tombstoneFloor: 30 });
        const metas = await s.listMessages(mb.id);
        assert.deepEqual(metas.map((m) => [m.uid, m.modseq, [...m.flags].sort(), m.internalDate, m.internalTz, m.saveDate]), [
          [3, 40, ['Work', '\\Seen'], 1_500_000_000_003, -300, 1_600_000_000_003],
          [7, 12, [], 1_500_000_000_007, -300, null],
          [9, 41, ['\\Deleted'], 1_500_000_000_009, -300, 1_600_000_000_009],
          [10, 5, [], 1_500_000_000_010, -300, 1_600_000_000_010],
        ]);
        const b = (await s.openMessage(mb.id, 7))!;
        assert.deepEqual(await b.read(0, b.size), msg(7));
        const info = (await s.getMailboxById(mb.id))!;
        assert.deepEqual([info.uidValidity, info.uidNext, info.highestModseq, info.objectId], [123456, 20, 60, 'Fmigrated0001']);
        const status = await s.mailboxStatus(mb.id);
        assert.deepEqual([status.messages, status.unseen, status.deleted], [4, 3, 1]);
        // QRESYNC answers from the copied tombstones.
        assert.deepEqual((await s.expungedSince(mb.id, 52)).uids, [11]);
        assert.deepEqual((await s.listChangedSince(mb.id, 40)).map((m) => m.uid), [9]);
        // Later writes continue above the copied UIDs and MODSEQs; later mailboxes get a greater UIDVALIDITY.
        const r = await s.appendMessages(mb.id, [{ data: msg('new'), flags: [] }]);
        assert.deepEqual(r.uids, [20]);
        assert.ok((await s.getMailboxById(mb.id))!.highestModseq > 60);
        assert.ok((await s.createMailbox(userId, 'Later')).uidValidity > 123456);
      }));

    test('messages sharing an EMAILID share it in the target, across batches and mailboxes; the EMAILID is kept', () =>
      withStore(async (s, userId) => {
        const a = await s.createMailbox(userId, 'A');
        const b = await s.createMailbox(userId, 'B');
        const body = msg('shared');
        await s.bulkImport(a.id, { messages: [bm(1, 2, { emailId: 'M900', data: body }), bm(2, 2, { emailId: 'M901' })] });
        await s.bulkImport(b.id, { messages: [bm(5, 3, { emailId: 'M900', data: body })] });
        const [x] = await s.getMessages(a.id, [1]);
        const [y] = await s.getMessages(b.id, [5]);
        assert.equal(x!.emailId, y!.emailId);
        assert.notEqual(x!.emailId, (await s.getMessages(a.id, [2]))[0]!.emailId);
        // A backend whose EMAILIDs look like the source's keeps them (SQLite: "M<n>").
        if (x!.emailId!.startsWith('M')) assert.equal(x!.emailId, 'M900');
        // A different body under an EMAILID the target already uses gets its own.
        await s.bulkImport(b.id, { messages: [bm(6, 3, { emailId: 'M900', data: msg('other') })] });
        const [z] = await s.getMessages(b.id, [6]);
        assert.notEqual(z!.emailId, x!.emailId);
        const zb = (await s.openMessage(b.id, 6))!;
        assert.deepEqual(await zb.read(0, zb.size), msg('other'));
        const xb = (await s.openMessage(a.id, 1))!;
        assert.deepEqual(await xb.read(0, xb.size), body);
      }));

    test('an EMAILID whose body the target expunged earlier can carry another body: the bytes read back are the new ones', () =>
      withStore(async (s, userId, reopen) => {
        const mb = await s.createMailbox(userId, 'E');
        await s.appendMessages(mb.id, [{ data: msg('gone'), flags: ['\\Deleted'] }]);
        const [gone] = await s.listMessages(mb.id);
        await s.expunge(mb.id);
        const dst = await s.createMailbox(userId, 'F');
        await s.bulkImport(dst.id, { messages: [bm(1, 1, { emailId: gone!.emailId, data: msg('kept') })] });
        s = await reopen();
        const b = (await s.openMessage(dst.id, 1))!;
        assert.deepEqual(await b.read(0, b.size), msg('kept'));
      }));

    test('refused: UIDs not ascending or not above the mailbox, UIDVALIDITY/MAILBOXID of a used mailbox, tombstone over a message, bad numbers', () =>
      withStore(async (s, userId) => {
        const mb = await s.createMailbox(userId, 'X');
        const other = await s.createMailbox(userId, 'Y');
        await rejectsKind(s.bulkImport(mb.id, { messages: [bm(5, 1), bm(5, 1)] }), 'CANNOT');
        await rejectsKind(s.bulkImport(mb.id, { messages: [bm(5, 1), bm(4, 1)] }), 'CANNOT');
        await rejectsKind(s.bulkImport(mb.id, { messages: [bm(0, 1)] }), 'CANNOT');
        await rejectsKind(s.bulkImport(mb.id, { messages: [bm(2 ** 32, 1)] }), 'CANNOT');
        await rejectsKind(s.bulkImport(mb.id, { messages: [bm(1, 0)] }), 'CANNOT');
        await rejectsKind(s.bulkImport(mb.id, { messages: [bm(1, 1.5)] }), 'CANNOT');
        await rejectsKind(s.bulkImport(mb.id, { messages: [], state: { uidValidity: 0 } }), 'CANNOT');
        await rejectsKind(s.bulkImport(mb.id, { messages: [], state: { objectId: other.objectId } }), 'ALREADYEXISTS');
        await rejectsKind(s.bulkImport(999_999, { messages: [bm(1, 1)] }), 'TRYCREATE');
        await rejectsKind(s.exportMailbox(999_999), 'NONEXISTENT');
        await s.bulkImport(mb.id, { messages: [bm(5, 1)] });
        await rejectsKind(s.bulkImport(mb.id, { messages: [bm(5, 2)] }), 'CANNOT');
        await rejectsKind(s.bulkImport(mb.id, { messages: [bm(3, 2)] }), 'CANNOT');
        await rejectsKind(s.bulkImport(mb.id, { messages: [], state: { uidValidity: 77 } }), 'CANNOT');
        await rejectsKind(s.bulkImport(mb.id, { messages: [], state: { objectId: 'Fsomethingelse' } }), 'CANNOT');
        await rejectsKind(s.bulkImport(mb.id, { messages: [], state: { expunged: [{ uid: 5, modseq: 9 }] } }), 'CANNOT');
        // A refused batch leaves nothing behind.
        await rejectsKind(s.bulkImport(mb.id, { messages: [bm(6, 2), bm(7, 2)], state: { expunged: [{ uid: 5, modseq: 9 }] } }), 'CANNOT');
        assert.deepEqual((await s.listMessages(mb.id)).map((m) => m.uid), [5]);
        // Tombstones sit above the UIDs: a later batch must be above them too.
        await s.bulkImport(mb.id, { messages: [], state: { expunged: [{ uid: 8, modseq: 3 }] } });
        await rejectsKind(s.bulkImport(mb.id, { messages: [bm(8, 4)] }), 'CANNOT');
        await s.bulkImport(mb.id, { messages: [bm(9, 4)] });
      }));

    test('quota is not enforced on a copy (the source held the mail); usage is counted', () =>
      withStore(async (s, userId) => {
        await s.setQuota(userId, { messages: 1 });
        const mb = await s.createMailbox(userId, 'Q');
        await s.bulkImport(mb.id, { messages: [bm(1, 1), bm(2, 1), bm(3, 1)] });
        assert.equal((await s.getQuota(userId)).messagesUsed, 3);
        await rejectsKind(s.appendMessages(mb.id, [{ data: msg(4), flags: [] }]), 'OVERQUOTA');
      }));

    test('exportCredentials lists every kind', () =>
      withStore(async (s, userId) => {
        await s.setCredential(userId, 'scram', '', 'v1');
        await s.setCredential(userId, 'app', 'phone', 'v2');
        await s.setCredential(userId, 'app', 'laptop', 'v3');
        assert.deepEqual((await s.exportCredentials(userId)).map((c) => [c.kind, c.name, c.secret]), [['app', 'laptop', 'v3'], ['app', 'phone', 'v2'], ['scram', '', 'v1']]);
      }));
  });
}
