// Backend-agnostic contract suite for MailStore. Every backend runs it:
//   runStoreContract('sqlite', async () => ({ store, reopen, cleanup }))
// (test/store/sqlite.test.ts and test/store/postgres.test.ts).
// `reopen` closes the current store and opens the same data again.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { StoreError, type Change, type MailStore, type MessageMeta, type StoreErrorKind } from '../../src/store/types.js';

export interface StoreHarness {
  store: MailStore;
  reopen: () => Promise<MailStore>;
  cleanup: () => Promise<void>;
}

export async function rejectsKind(p: Promise<unknown>, kind: StoreErrorKind): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof StoreError, `expected StoreError, got ${String(err)}`);
    assert.equal(err.kind, kind);
    return true;
  });
}

export function msg(n: number | string, extra = ''): Buffer {
  return Buffer.from(`From: a@example.com\r\nSubject: ${n}\r\n\r\nbody ${n}\r\n${extra}`);
}

/** Checks that STATUS counters agree with the messages actually listed. */
export async function assertStatusConsistent(store: MailStore, mailboxId: number): Promise<void> {
  const list = await store.listMessages(mailboxId);
  const st = await store.mailboxStatus(mailboxId);
  assert.equal(st.messages, list.length, 'messages');
  assert.equal(st.unseen, list.filter((m) => !m.flags.includes('\\Seen')).length, 'unseen');
  assert.equal(st.deleted, list.filter((m) => m.flags.includes('\\Deleted')).length, 'deleted');
  assert.equal(st.size, list.reduce((a, m) => a + m.size, 0), 'size');
  const maxUid = list.length ? list[list.length - 1]!.uid : 0;
  assert.ok(st.uidNext > maxUid, 'uidNext above every uid');
  assert.ok(list.every((m) => m.modseq <= st.highestModseq), 'highestModseq covers every message');
  const box = await store.getMailboxById(mailboxId);
  assert.equal(box?.uidNext, st.uidNext);
  assert.equal(box?.highestModseq, st.highestModseq);
}

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const c of it) out.push(c);
  return out;
}

/** Flags compare as sets: the order within a flag list is the backend's choice. */
export function assertFlags(actual: readonly string[], expected: readonly string[], message?: string): void {
  assert.deepEqual([...actual].sort(), [...expected].sort(), message);
}

function uids(list: MessageMeta[]): number[] {
  return list.map((m) => m.uid);
}

/** `skip`: a reason to skip the whole suite (a backend whose server is unreachable outside CI), or false. */
export function runStoreContract(name: string, open: () => Promise<StoreHarness>, opts: { skip?: false | string } = {}): void {
  async function withStore(fn: (h: StoreHarness & { userId: number }) => Promise<void>): Promise<void> {
    const h = await open();
    try {
      const user = await h.store.createUser('alice', 'hash');
      await fn({ ...h, userId: user.id });
    } finally {
      await h.cleanup();
    }
  }

  describe(`MailStore contract: ${name}`, { skip: opts.skip ?? false }, () => {
    describe('users', () => {
      test('create, get, update, list, count, delete', () =>
        withStore(async ({ store, userId }) => {
          const a = await store.getUser('alice');
          assert.equal(a?.id, userId);
          assert.equal(a?.passwordHash, 'hash');
          assert.ok(a?.createdAt instanceof Date);
          assert.equal((await store.getUser('ALICE'))?.id, userId, 'user names are case-insensitive');
          await rejectsKind(store.createUser('Alice', 'x'), 'ALREADYEXISTS');
          const b = await store.createUser('bob', 'h2');
          assert.equal((await store.getUserById(b.id))?.name, 'bob');
          assert.equal(await store.getUser('nobody'), null);
          assert.equal(await store.getUserById(999999), null);
          await store.setPasswordHash(b.id, 'h3');
          assert.equal((await store.getUser('bob'))?.passwordHash, 'h3');
          await rejectsKind(store.setPasswordHash(999999, 'x'), 'NONEXISTENT');
          assert.deepEqual((await store.listUsers()).map((u) => u.name), ['alice', 'bob']);
          assert.equal(await store.countUsers(), 2);
          assert.deepEqual(await store.listMailboxes(b.id), [], 'a new user has no mailboxes');
          const inbox = await store.createMailbox(b.id, 'INBOX');
          await store.appendMessages(inbox.id, [{ data: msg(1), flags: [] }]);
          await store.setSubscribed(b.id, 'INBOX', true);
          await store.deleteUser(b.id);
          assert.equal(await store.getUser('bob'), null);
          assert.equal(await store.getMailboxById(inbox.id), null);
          assert.equal(await store.countUsers(), 1);
          await rejectsKind(store.deleteUser(b.id), 'NONEXISTENT');
          const again = await store.createUser('bob', 'h4');
          assert.deepEqual(await store.listMailboxes(again.id), []);
          assert.deepEqual(await store.listSubscriptions(again.id), []);
        }));
    });

    describe('mailboxes', () => {
      test('create, list, get, delete', () =>
        withStore(async ({ store, userId }) => {
          const inbox = await store.createMailbox(userId, 'INBOX');
          const sent = await store.createMailbox(userId, 'Sent', '\\Sent');
          await store.createMailbox(userId, 'Work/Projects');
          assert.equal(sent.specialUse, '\\Sent');
          assert.equal(inbox.specialUse, null);
          assert.equal(inbox.uidNext, 1);
          assert.equal(inbox.subscribed, false);
          assert.ok(inbox.uidValidity > 0);
          assert.deepEqual((await store.listMailboxes(userId)).map((m) => m.name), ['INBOX', 'Sent', 'Work/Projects']);
          assert.equal((await store.getMailbox(userId, 'Sent'))?.id, sent.id);
          assert.equal(await store.getMailbox(userId, 'sent'), null, 'mailbox names are exact');
          assert.equal((await store.getMailboxById(inbox.id))?.name, 'INBOX');
          await rejectsKind(store.createMailbox(userId, 'Sent'), 'ALREADYEXISTS');
          await rejectsKind(store.deleteMailbox(userId, 'INBOX'), 'CANNOT');
          await rejectsKind(store.deleteMailbox(userId, 'Nope'), 'NONEXISTENT');
          await store.appendMessages(sent.id, [{ data: msg(1), flags: [] }]);
          await store.deleteMailbox(userId, 'Sent');
          assert.equal(await store.getMailbox(userId, 'Sent'), null);
          assert.equal(await store.getMailboxById(sent.id), null);
          await rejectsKind(store.mailboxStatus(sent.id), 'NONEXISTENT');
          await rejectsKind(store.appendMessages(sent.id, [{ data: msg(2), flags: [] }]), 'TRYCREATE');
          const other = await store.createUser('bob', 'x');
          assert.deepEqual(await store.listMailboxes(other.id), []);
          await store.createMailbox(other.id, 'INBOX'); // same name, other user
        }));

      test('rename renames children, keeps messages, moves subscriptions', () =>
        withStore(async ({ store, userId }) => {
          const a = await store.createMailbox(userId, 'A');
          const ab = await store.createMailbox(userId, 'A/B');
          await store.createMailbox(userId, 'AB'); // not a child of A
          await store.createMailbox(userId, 'X');
          await store.appendMessages(ab.id, [{ data: msg(1), flags: ['\\Seen'] }]);
          await store.setSubscribed(userId, 'A/B', true);
          await rejectsKind(store.renameMailbox(userId, 'A', 'X'), 'ALREADYEXISTS');
          await rejectsKind(store.renameMailbox(userId, 'Nope', 'Y'), 'NONEXISTENT');
          await rejectsKind(store.renameMailbox(userId, 'A', 'A/B/C'), 'CANNOT');
          await store.renameMailbox(userId, 'A', 'Z');
          assert.deepEqual((await store.listMailboxes(userId)).map((m) => m.name), ['AB', 'X', 'Z', 'Z/B']);
          const zb = await store.getMailbox(userId, 'Z/B');
          assert.equal(zb?.id, ab.id);
          assert.equal(zb?.uidValidity, ab.uidValidity, 'rename keeps UIDVALIDITY');
          assert.equal(zb?.subscribed, true);
          assert.equal((await store.getMailbox(userId, 'Z'))?.id, a.id);
          assert.deepEqual(await store.listSubscriptions(userId), ['Z/B']);
          assert.equal((await store.listMessages(ab.id)).length, 1);
        }));

      test('renaming INBOX moves its messages to a new mailbox and leaves INBOX empty', () =>
        withStore(async ({ store, userId }) => {
          const inbox = await store.createMailbox(userId, 'INBOX');
          await store.createMailbox(userId, 'INBOX/Child');
          await store.appendMessages(inbox.id, [
            { data: msg(1), flags: ['\\Seen'] },
            { data: msg(2), flags: ['$Work'] },
          ]);
          await store.renameMailbox(userId, 'INBOX', 'Old');
          const old = await store.getMailbox(userId, 'Old');
          assert.ok(old);
          assert.notEqual(old.id, inbox.id);
          assert.notEqual(old.uidValidity, inbox.uidValidity);
          const moved = await store.listMessages(old.id);
          assert.deepEqual(uids(moved), [1, 2]);
          assertFlags(moved[1]!.flags, ['$Work']);
          const body = await store.openMessage(old.id, 2);
          assert.deepEqual(await body!.read(0, 1e9), msg(2));
          assert.deepEqual(await store.listMessages(inbox.id), []);
          const st = await store.mailboxStatus(inbox.id);
          assert.equal(st.messages, 0);
          assert.equal(st.uidNext, 3, 'INBOX UIDs are not reused');
          assert.ok(await store.getMailbox(userId, 'INBOX/Child'), 'children of INBOX are unaffected');
          await rejectsKind(store.renameMailbox(userId, 'INBOX', 'Old'), 'ALREADYEXISTS');
          await assertStatusConsistent(store, old.id);
          await assertStatusConsistent(store, inbox.id);
        }));

      test('subscriptions are independent of mailbox existence', () =>
        withStore(async ({ store, userId }) => {
          await store.setSubscribed(userId, 'Ghost', true);
          await store.setSubscribed(userId, 'Ghost', true);
          await store.createMailbox(userId, 'Real');
          await store.setSubscribed(userId, 'Real', true);
          assert.deepEqual(await store.listSubscriptions(userId), ['Ghost', 'Real']);
          await store.deleteMailbox(userId, 'Real');
          assert.deepEqual(await store.listSubscriptions(userId), ['Ghost', 'Real'], 'DELETE keeps the subscription');
          await store.setSubscribed(userId, 'Ghost', false);
          assert.deepEqual(await store.listSubscriptions(userId), ['Real']);
          const m = await store.createMailbox(userId, 'Real');
          assert.equal(m.subscribed, true);
        }));

      test('UIDVALIDITY is stable across reopen and grows after delete + recreate or rename onto a used name', () =>
        withStore(async (h) => {
          let store = h.store;
          const a = await store.createMailbox(h.userId, 'A');
          const b = await store.createMailbox(h.userId, 'B');
          store = await h.reopen();
          assert.equal((await store.getMailbox(h.userId, 'A'))?.uidValidity, a.uidValidity);
          await store.deleteMailbox(h.userId, 'A');
          const a2 = await store.createMailbox(h.userId, 'A');
          assert.ok(a2.uidValidity > a.uidValidity);
          store = await h.reopen();
          await store.deleteMailbox(h.userId, 'A');
          const a3 = await store.createMailbox(h.userId, 'A');
          assert.ok(a3.uidValidity > a2.uidValidity);
          // B (older) renamed onto the name A: must not reuse a smaller UIDVALIDITY for "A".
          await store.deleteMailbox(h.userId, 'A');
          await store.renameMailbox(h.userId, 'B', 'A');
          const renamed = await store.getMailbox(h.userId, 'A');
          assert.equal(renamed?.id, b.id);
          assert.ok(renamed!.uidValidity > a3.uidValidity);
        }));
    });

    describe('messages', () => {
      test('UIDs ascend and are never reused, also after expunge and reopen', () =>
        withStore(async (h) => {
          let store = h.store;
          const box = await store.createMailbox(h.userId, 'INBOX');
          const r1 = await store.appendMessages(box.id, [
            { data: msg(1), flags: [] },
            { data: msg(2), flags: ['\\Deleted'] },
          ]);
          assert.deepEqual(r1.uids, [1, 2]);
          assert.equal(r1.uidValidity, box.uidValidity);
          assert.deepEqual(await store.expunge(box.id), [2]);
          const r2 = await store.appendMessages(box.id, [{ data: msg(3), flags: [] }]);
          assert.deepEqual(r2.uids, [3]);
          await store.storeFlags(box.id, [1, 3], 'add', ['\\Deleted']);
          await store.expunge(box.id);
          store = await h.reopen();
          const r3 = await store.appendMessages(box.id, [{ data: msg(4), flags: [] }]);
          assert.deepEqual(r3.uids, [4]);
          assert.deepEqual(uids(await store.listMessages(box.id)), [4]);
          assert.equal((await store.getMailboxById(box.id))?.uidValidity, box.uidValidity);
        }));

      test('append keeps flags, internal date and bytes; ranges and streaming', () =>
        withStore(async ({ store, userId }) => {
          const box = await store.createMailbox(userId, 'INBOX');
          const data = Buffer.alloc(200_000);
          for (let i = 0; i < data.length; i++) data[i] = (i * 31 + 7) & 0xff;
          const date = Date.UTC(2020, 1, 3, 4, 5, 6);
          const r = await store.appendMessages(box.id, [
            { data, flags: ['\\seen', '\\RECENT', '$Label1', '\\Flagged'], internalDate: date },
            { data: Buffer.alloc(0), flags: [] },
          ]);
          const [m, empty] = await store.getMessages(box.id, r.uids);
          assertFlags(m!.flags, ['\\Seen', '\\Flagged', '$Label1']);
          assert.equal(m!.internalDate, date);
          assert.equal(m!.size, data.length);
          assert.ok(m!.modseq > 0);
          assert.ok(Math.abs(empty!.internalDate - Date.now()) < 60_000, 'internal date defaults to now');
          const body = await store.openMessage(box.id, r.uids[0]!);
          assert.ok(body);
          assert.equal(body.size, data.length);
          assert.deepEqual(await body.read(0, data.length), data);
          assert.deepEqual(await body.read(1000, 1010), data.subarray(1000, 1010));
          assert.deepEqual(await body.read(data.length - 5, data.length + 100), data.subarray(data.length - 5));
          assert.equal((await body.read(10, 5)).length, 0);
          const chunks = await collect(body.stream());
          assert.ok(chunks.every((c) => c.length <= 64 * 1024));
          assert.deepEqual(Buffer.concat(chunks), data);
          const small = await collect(body.stream(100, 1100, 300));
          assert.deepEqual(small.map((c) => c.length), [300, 300, 300, 100]);
          assert.deepEqual(Buffer.concat(small), data.subarray(100, 1100));
          const e = await store.openMessage(box.id, r.uids[1]!);
          assert.equal(e?.size, 0);
          assert.equal((await e!.read(0, 10)).length, 0);
          assert.equal(await store.openMessage(box.id, 99), null);
        }));

      test('the MIME structure is computed at append and shared by copies', () =>
        withStore(async ({ store, userId }) => {
          const box = await store.createMailbox(userId, 'INBOX');
          const other = await store.createMailbox(userId, 'Other');
          const data = Buffer.from(
            'From: a@example.com\r\nSubject: s\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n' +
              '--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b\r\nContent-Type: text/html\r\n\r\n<b>x</b>\r\n--b--\r\n',
          );
          const r = await store.appendMessages(box.id, [{ data, flags: [] }]);
          const body = await store.openMessage(box.id, r.uids[0]!);
          assert.ok(body?.structure, 'structure stored');
          assert.equal(body.structure.type, 'multipart');
          assert.equal(body.structure.children?.length, 2);
          const part2 = body.structure.children![1]!;
          assert.equal(data.subarray(part2.bodyStart, part2.bodyEnd).toString(), '<b>x</b>');
          assert.equal(body.structure.envelope?.subject, 's');
          // The top-level header bytes are kept beside it (message lists need no file read).
          assert.deepEqual(body.header, data.subarray(0, body.structure.headerEnd));
          const [again, none] = await store.openMessages(box.id, [r.uids[0]!, 999]);
          assert.deepEqual(again?.structure, body.structure, 'openMessages gives the same body');
          assert.equal(none, null);
          const c = await store.copyMessages(box.id, r.uids, other.id);
          const copied = await store.openMessage(other.id, c.destUids[0]!);
          assert.deepEqual(copied?.structure, body.structure);
        }));

      test('modseq history: changed-since and expunged-since (RFC 7162)', () =>
        withStore(async ({ store, userId }) => {
          const box = await store.createMailbox(userId, 'INBOX');
          const r = await store.appendMessages(box.id, [1, 2, 3, 4].map((n) => ({ data: msg(n), flags: [] })));
          const st0 = await store.mailboxStatus(box.id);
          const f = await store.storeFlags(box.id, [r.uids[1]!], 'add', ['\\Flagged']);
          const changed = await store.listChangedSince(box.id, st0.highestModseq);
          assert.deepEqual(changed.map((m) => m.uid), [r.uids[1]]);
          assert.equal(changed[0]!.modseq, f.changed[0]!.modseq);
          assert.deepEqual(await store.listChangedSince(box.id, f.changed[0]!.modseq), []);
          await store.storeFlags(box.id, [r.uids[0]!, r.uids[2]!], 'add', ['\\Deleted']);
          const before = (await store.mailboxStatus(box.id)).highestModseq;
          const gone = await store.expunge(box.id);
          assert.deepEqual(gone, [r.uids[0], r.uids[2]]);
          const e = await store.expungedSince(box.id, before);
          assert.deepEqual(e, { uids: [r.uids[0], r.uids[2]], complete: true });
          assert.deepEqual((await store.expungedSince(box.id, (await store.mailboxStatus(box.id)).highestModseq)).uids, []);
          assert.deepEqual((await store.expungedSince(box.id, 0)).uids, [r.uids[0], r.uids[2]]);
        }));

      test('the SEARCH header index holds decoded, lower-cased From/To/Cc/Bcc/Subject and the sent day', () =>
        withStore(async ({ store, userId }) => {
          const box = await store.createMailbox(userId, 'INBOX');
          const data = Buffer.from(
            'From: =?utf-8?q?J=C3=BCrgen?= <J@Example.COM>\r\nTo: a@x, b@y\r\nTo: c@z\r\nSubject: =?iso-8859-1?q?Gr=FC=DFe?=\r\n' +
              'Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n\r\nbody\r\n',
          );
          const r = await store.appendMessages(box.id, [{ data, flags: [] }, { data: msg(2), flags: [] }]);
          const ix = await store.headerIndex(box.id);
          const a = ix.get(r.uids[0]!);
          assert.ok(a);
          assert.equal(a.from, 'jürgen <j@example.com>');
          assert.equal(a.to, 'a@x, b@y\nc@z');
          assert.equal(a.cc, '');
          assert.equal(a.subject, 'grüße');
          assert.equal(a.sentDay, Math.floor(Date.UTC(1994, 1, 7) / 86_400_000));
          assert.equal(ix.get(r.uids[1]!)?.sentDay, null);
        }));

      test('a 5 MB message round-trips byte for byte', () =>
        withStore(async ({ store, userId }) => {
          const box = await store.createMailbox(userId, 'INBOX');
          const data = Buffer.alloc(5 * 1024 * 1024 + 123);
          for (let i = 0; i + 4 <= data.length; i += 4) data.writeUInt32LE((i * 2654435761) >>> 0, i);
          const r = await store.appendMessages(box.id, [{ data, flags: [] }]);
          const body = await store.openMessage(box.id, r.uids[0]!);
          assert.equal(body?.size, data.length);
          assert.ok(Buffer.concat(await collect(body!.stream())).equals(data));
          assert.ok((await body!.read(5 * 1024 * 1024, 6 * 1024 * 1024)).equals(data.subarray(5 * 1024 * 1024)));
          assert.equal((await store.mailboxStatus(box.id)).size, data.length);
        }));

      test('append is all or nothing and TRYCREATE for a missing mailbox', () =>
        withStore(async ({ store, userId }) => {
          const box = await store.createMailbox(userId, 'INBOX');
          await assert.rejects(
            store.appendMessages(box.id, [
              { data: msg(1), flags: [] },
              { data: msg(2), flags: ['\\Bogus'] },
            ]),
            StoreError,
          );
          assert.deepEqual(await store.listMessages(box.id), []);
          assert.equal((await store.mailboxStatus(box.id)).uidNext, 1);
          await rejectsKind(store.appendMessages(424242, [{ data: msg(1), flags: [] }]), 'TRYCREATE');
          assert.deepEqual((await store.appendMessages(box.id, [])).uids, []);
        }));

      test('getMessages handles large, unsorted, duplicate and missing UID lists', () =>
        withStore(async ({ store, userId }) => {
          const box = await store.createMailbox(userId, 'INBOX');
          await store.appendMessages(
            box.id,
            Array.from({ length: 50 }, (_, i) => ({ data: msg(i), flags: [] })),
          );
          const ask = Array.from({ length: 100_000 }, (_, i) => 100_000 - i);
          ask.push(3, 3, 0, -1, 1.5);
          const got = await store.getMessages(box.id, ask);
          assert.deepEqual(uids(got), Array.from({ length: 50 }, (_, i) => i + 1));
          assert.deepEqual(await store.getMessages(box.id, []), []);
          await rejectsKind(store.listMessages(424242), 'NONEXISTENT');
        }));

      test('flags: add, remove, set, case-insensitive keywords, \\Recent ignored', () =>
        withStore(async ({ store, userId }) => {
          const box = await store.createMailbox(userId, 'INBOX');
          await store.appendMessages(box.id, [
            { data: msg(1), flags: ['$Work'] },
            { data: msg(2), flags: [] },
            { data: msg(3), flags: ['\\Seen'] },
          ]);
          assert.deepEqual(await store.listKeywords(box.id), ['$Work']);
          let r = await store.storeFlags(box.id, [1, 2, 3, 99], 'add', ['\\SEEN', '$WORK', 'Todo', '\\Recent']);
          assert.deepEqual(uids(r.changed), [1, 2, 3]);
          assertFlags(r.changed[0]!.flags, ['\\Seen', 'Todo', '$Work']);
          assertFlags(r.changed[1]!.flags, ['\\Seen', 'Todo', '$Work'], 'existing spelling wins');
          assert.deepEqual(await store.listKeywords(box.id), ['$Work', 'Todo']);
          const ms = r.changed[0]!.modseq;
          assert.ok(r.changed.every((m) => m.modseq === ms));
          assert.equal((await store.mailboxStatus(box.id)).highestModseq, ms);

          r = await store.storeFlags(box.id, [1, 2], 'add', ['\\Seen']);
          assert.deepEqual(r.changed, [], 'no change, no new modseq');
          assert.equal((await store.mailboxStatus(box.id)).highestModseq, ms);

          r = await store.storeFlags(box.id, [1], 'remove', ['$work', '\\seen']);
          assertFlags(r.changed[0]!.flags, ['Todo']);
          r = await store.storeFlags(box.id, [2], 'set', ['\\Answered', 'todo', '\\Draft']);
          assertFlags(r.changed[0]!.flags, ['\\Answered', '\\Draft', 'Todo']);
          r = await store.storeFlags(box.id, [3], 'set', []);
          assertFlags(r.changed[0]!.flags, []);
          const list = await store.listMessages(box.id);
          assertFlags(list[0]!.flags, ['Todo']);
          assertFlags(list[1]!.flags, ['\\Answered', '\\Draft', 'Todo']);
          assertFlags(list[2]!.flags, []);
          await assertStatusConsistent(store, box.id);
          await rejectsKind(store.storeFlags(424242, [1], 'add', ['\\Seen']), 'NONEXISTENT');
        }));

      test('flags: UNCHANGEDSINCE refuses messages modified since (RFC 7162)', () =>
        withStore(async ({ store, userId }) => {
          const box = await store.createMailbox(userId, 'INBOX');
          await store.appendMessages(box.id, [
            { data: msg(1), flags: [] },
            { data: msg(2), flags: [] },
          ]);
          const base = (await store.mailboxStatus(box.id)).highestModseq;
          const r1 = await store.storeFlags(box.id, [2], 'add', ['\\Flagged']);
          const r = await store.storeFlags(box.id, [1, 2], 'add', ['\\Seen'], base);
          assert.deepEqual(r.modified, [2]);
          assert.deepEqual(uids(r.changed), [1]);
          const [m1, m2] = await store.listMessages(box.id);
          assertFlags(m1!.flags, ['\\Seen']);
          assertFlags(m2!.flags, ['\\Flagged']);
          assert.equal(m2!.modseq, r1.changed[0]!.modseq);
        }));

      test('keyword count per mailbox is limited', () =>
        withStore(async ({ store, userId }) => {
          const box = await store.createMailbox(userId, 'INBOX');
          await store.appendMessages(box.id, [{ data: msg(1), flags: [] }]);
          let n = 0;
          await assert.rejects(async () => {
            for (; n < 10_000; n++) await store.storeFlags(box.id, [1], 'add', [`kw${n}`]);
          }, (e: unknown) => e instanceof StoreError && e.kind === 'LIMIT');
          assert.ok(n >= 64 && n < 10_000, `limit at ${n}`);
          assert.equal((await store.listKeywords(box.id)).length, n);
        }));

      test('copy and move map UIDs and skip vanished ones', () =>
        withStore(async ({ store, userId }) => {
          const src = await store.createMailbox(userId, 'INBOX');
          const dst = await store.createMailbox(userId, 'Archive');
          await store.appendMessages(dst.id, [{ data: msg('d'), flags: ['$work'] }]);
          const date = Date.UTC(2001, 0, 1);
          await store.appendMessages(
            src.id,
            [1, 2, 3, 4].map((i) => ({ data: msg(i), flags: i === 2 ? ['\\Seen', '$Work'] : [], internalDate: date })),
          );
          await store.storeFlags(src.id, [3], 'add', ['\\Deleted']);
          await store.expunge(src.id);
          const c = await store.copyMessages(src.id, [4, 3, 2, 99], dst.id);
          assert.equal(c.uidValidity, dst.uidValidity);
          assert.deepEqual(c.sourceUids, [2, 4]);
          assert.deepEqual(c.destUids, [2, 3]);
          const copied = await store.getMessages(dst.id, c.destUids);
          assertFlags(copied[0]!.flags, ['\\Seen', '$work'], 'keywords take the destination spelling');
          assert.equal(copied[0]!.internalDate, date);
          assert.deepEqual(await (await store.openMessage(dst.id, 3))!.read(0, 1e6), msg(4));

          const m = await store.moveMessages(src.id, [1, 2], dst.id);
          assert.deepEqual(m.sourceUids, [1, 2]);
          assert.deepEqual(m.destUids, [4, 5]);
          assert.deepEqual(uids(await store.listMessages(src.id)), [4]);
          assert.deepEqual(uids(await store.listMessages(dst.id)), [1, 2, 3, 4, 5]);
          // the copy of 4 survives expunging the original (shared body)
          await store.storeFlags(src.id, [4], 'add', ['\\Deleted']);
          await store.expunge(src.id);
          assert.deepEqual(await (await store.openMessage(dst.id, 3))!.read(0, 1e6), msg(4));
          assert.deepEqual(await (await store.openMessage(dst.id, 5))!.read(0, 1e6), msg(2));

          const same = await store.copyMessages(dst.id, [1], dst.id);
          assert.deepEqual(same.destUids, [6]);
          const selfMove = await store.moveMessages(dst.id, [6], dst.id);
          assert.deepEqual(selfMove.destUids, [7]);
          assert.deepEqual(uids(await store.listMessages(dst.id)), [1, 2, 3, 4, 5, 7]);

          const empty = await store.copyMessages(src.id, [1, 2], dst.id);
          assert.deepEqual([empty.sourceUids, empty.destUids], [[], []]);
          await rejectsKind(store.copyMessages(src.id, [1], 424242), 'TRYCREATE');
          await rejectsKind(store.moveMessages(src.id, [1], 424242), 'TRYCREATE');
          await rejectsKind(store.copyMessages(424242, [1], dst.id), 'NONEXISTENT');
          await assertStatusConsistent(store, src.id);
          await assertStatusConsistent(store, dst.id);
        }));

      test('replaceMessage: expunge and append in one step, modseqs ascending, nothing done when the source is gone', () =>
        withStore(async ({ store, userId }) => {
          const d = await store.createMailbox(userId, 'Drafts');
          const s = await store.createMailbox(userId, 'Sent');
          await store.appendMessages(d.id, [1, 2].map((i) => ({ data: msg(i), flags: [] })));
          const before = await store.mailboxStatus(d.id);
          const seen: string[] = [];
          const off = store.feed.subscribe(userId, (c) => seen.push(`${c.kind}:${'modseq' in c ? c.modseq : ''}`));
          const r = await store.replaceMessage(d.id, 1, d.id, { data: msg('v2'), flags: ['\\Draft'] });
          off();
          assert.deepEqual(r.uids, [3]);
          assert.deepEqual(uids(await store.listMessages(d.id)), [2, 3]);
          assert.deepEqual(await (await store.openMessage(d.id, 3))!.read(0, 1e6), msg('v2'));
          const h = before.highestModseq;
          assert.deepEqual(seen, [`expunge:${h + 1}`, `append:${h + 2}`]);
          assert.equal((await store.mailboxStatus(d.id)).highestModseq, h + 2);
          const moved = await store.replaceMessage(d.id, 2, s.id, { data: msg('sent'), flags: ['\\Seen'] });
          assert.deepEqual(moved.uids, [1]);
          assert.deepEqual(uids(await store.listMessages(d.id)), [3]);
          await rejectsKind(store.replaceMessage(d.id, 2, s.id, { data: msg('again'), flags: [] }), 'EXPUNGEISSUED');
          await rejectsKind(store.replaceMessage(d.id, 3, 424242, { data: msg('x'), flags: [] }), 'TRYCREATE');
          assert.deepEqual(uids(await store.listMessages(s.id)), [1]);
          assert.deepEqual(uids(await store.listMessages(d.id)), [3]);
          await assertStatusConsistent(store, d.id);
          await assertStatusConsistent(store, s.id);
        }));

      test('expunge removes \\Deleted messages, optionally limited to UIDs', () =>
        withStore(async ({ store, userId }) => {
          const box = await store.createMailbox(userId, 'INBOX');
          await store.appendMessages(
            box.id,
            [1, 2, 3, 4, 5].map((i) => ({ data: msg(i), flags: i % 2 ? ['\\Deleted'] : [] })),
          );
          const before = (await store.mailboxStatus(box.id)).highestModseq;
          assert.deepEqual(await store.expunge(box.id, [5, 2, 1]), [1, 5]);
          const after = (await store.mailboxStatus(box.id)).highestModseq;
          assert.ok(after > before);
          assert.deepEqual(uids(await store.listMessages(box.id)), [2, 3, 4]);
          assert.deepEqual(await store.expunge(box.id, []), []);
          assert.deepEqual(await store.expunge(box.id), [3]);
          assert.deepEqual(await store.expunge(box.id), []);
          assert.equal((await store.mailboxStatus(box.id)).highestModseq, after + 1, 'empty expunge changes nothing');
          assert.equal(await store.openMessage(box.id, 3), null);
        }));

      test('status counters stay right through every kind of mutation', () =>
        withStore(async ({ store, userId }) => {
          const a = await store.createMailbox(userId, 'INBOX');
          const b = await store.createMailbox(userId, 'B');
          const check = async () => {
            await assertStatusConsistent(store, a.id);
            await assertStatusConsistent(store, b.id);
          };
          await store.appendMessages(a.id, [
            { data: msg(1, 'x'.repeat(100)), flags: ['\\Seen'] },
            { data: msg(2), flags: ['\\Deleted'] },
            { data: msg(3), flags: [] },
          ]);
          await check();
          let st = await store.mailboxStatus(a.id);
          assert.deepEqual([st.messages, st.unseen, st.deleted], [3, 2, 1]);
          await store.storeFlags(a.id, [1, 2, 3], 'set', ['\\Deleted']);
          await check();
          await store.storeFlags(a.id, [2], 'remove', ['\\Deleted']);
          await store.storeFlags(a.id, [3], 'add', ['\\Seen']);
          await check();
          await store.copyMessages(a.id, [1, 2, 3], b.id);
          await check();
          await store.moveMessages(a.id, [2], b.id);
          await check();
          await store.expunge(a.id);
          await check();
          await store.expunge(b.id, [1]);
          await check();
          st = await store.mailboxStatus(b.id);
          assert.deepEqual([st.messages, st.unseen, st.deleted], [3, 2, 1]);
          await store.renameMailbox(userId, 'INBOX', 'Old');
          await check();
        }));

      test('claimRecent hands each new message to one claimant', () =>
        withStore(async ({ store, userId }) => {
          const box = await store.createMailbox(userId, 'INBOX');
          assert.equal(await store.claimRecent(box.id), 1);
          await store.appendMessages(box.id, [
            { data: msg(1), flags: [] },
            { data: msg(2), flags: [] },
          ]);
          assert.equal((await store.mailboxStatus(box.id)).recent, 2);
          assert.equal(await store.claimRecent(box.id), 1, 'first session: 1 and 2 are recent');
          assert.equal((await store.mailboxStatus(box.id)).recent, 0);
          assert.equal(await store.claimRecent(box.id), 3, 'second session: none recent');
          await store.appendMessages(box.id, [{ data: msg(3), flags: [] }]);
          assert.equal((await store.mailboxStatus(box.id)).recent, 1);
          assert.equal(await store.claimRecent(box.id), 3);
          await rejectsKind(store.claimRecent(424242), 'NONEXISTENT');
        }));
    });

    describe('change feed', () => {
      test('every committed change is published, in order, to the user only', () =>
        withStore(async ({ store, userId }) => {
          const seen: Change[] = [];
          const other: Change[] = [];
          const bob = await store.createUser('bob', 'x');
          const unsub = store.feed.subscribe(userId, (c) => seen.push(c));
          store.feed.subscribe(bob.id, (c) => other.push(c));
          const inbox = await store.createMailbox(userId, 'INBOX');
          const arch = await store.createMailbox(userId, 'Archive');
          const ap = await store.appendMessages(inbox.id, [
            { data: msg(1), flags: [] },
            { data: msg(2), flags: [] },
          ]);
          await store.storeFlags(inbox.id, [1], 'add', ['\\Deleted']);
          await store.storeFlags(inbox.id, [1], 'add', ['\\Deleted']); // no change: no record
          await store.moveMessages(inbox.id, [2], arch.id);
          await store.expunge(inbox.id);
          await store.setSubscribed(userId, 'Archive', true);
          await store.renameMailbox(userId, 'Archive', 'Old');
          await store.deleteMailbox(userId, 'Old');
          assert.deepEqual(
            seen.map((c) => `${c.kind}:${'mailboxId' in c ? c.mailboxId : ''}`),
            [
              `mailbox-create:${inbox.id}`,
              `mailbox-create:${arch.id}`,
              `append:${inbox.id}`,
              `flags:${inbox.id}`,
              `append:${arch.id}`,
              `expunge:${inbox.id}`,
              `expunge:${inbox.id}`,
              'subscription:',
              `mailbox-rename:${arch.id}`,
              'subscription:',
              'subscription:',
              `mailbox-delete:${arch.id}`,
            ],
          );
          const append = seen[2]!;
          assert.ok(append.kind === 'append');
          assert.deepEqual(uids(append.messages), ap.uids);
          const flags = seen[3]!;
          assert.ok(flags.kind === 'flags');
          assertFlags(flags.messages[0]!.flags, ['\\Deleted']);
          assert.ok(flags.modseq > append.modseq);
          const exp = seen[5]!;
          assert.ok(exp.kind === 'expunge' && exp.uids[0] === 2 && exp.modseq > flags.modseq);
          const rename = seen[8]!;
          assert.ok(rename.kind === 'mailbox-rename' && rename.oldName === 'Archive' && rename.name === 'Old');
          assert.ok(seen.every((c) => c.userId === userId));
          assert.deepEqual(other, []);
          unsub();
          await store.createMailbox(userId, 'Later');
          assert.equal(seen.length, 12);
        }));
    });

    describe('message and mailbox attributes (RFC 9051 §2.3.3, RFC 8514, RFC 8474)', () => {
      test('INTERNALDATE zone, save date and EMAILID: kept by append, carried by copy/move/changes, searched', () =>
        withStore(async (h) => {
          let store = h.store;
          const a = await store.createMailbox(h.userId, 'A', null);
          const b = await store.createMailbox(h.userId, 'B', null);
          const seen: Change[] = [];
          const unsub = store.feed.subscribe(h.userId, (c) => seen.push(c));
          const t0 = Date.now();
          await store.appendMessages(a.id, [
            { data: msg(1), flags: [], internalDate: 946_700_000_000, internalTz: -300 },
            { data: msg(1), flags: [] },
          ]);
          const [m1, m2] = await store.listMessages(a.id);
          assert.equal(m1!.internalTz, -300);
          // No zone given: the server's zone at that instant.
          assert.equal(m2!.internalTz, 0 - new Date(m2!.internalDate).getTimezoneOffset());
          for (const m of [m1!, m2!]) assert.ok(m.saveDate! >= t0 && m.saveDate! <= Date.now(), 'save date is the time of saving');
          assert.ok(m1!.emailId && m2!.emailId && m1!.emailId !== m2!.emailId, 'each append stores its own message');
          const appended = seen.find((c) => c.kind === 'append');
          assert.ok(appended?.kind === 'append');
          assert.deepEqual(appended.messages[0], m1);
          await new Promise((r) => setTimeout(r, 5));
          await store.copyMessages(a.id, [1], b.id);
          await store.moveMessages(a.id, [2], b.id);
          const [c1, c2] = await store.listMessages(b.id);
          assert.equal(c1!.internalTz, -300);
          assert.equal(c1!.internalDate, m1!.internalDate);
          assert.equal(c1!.emailId, m1!.emailId, 'a copy is the same message');
          assert.equal(c2!.emailId, m2!.emailId, 'a moved message is the same message');
          assert.ok(c1!.saveDate! > m1!.saveDate!, 'a copy is saved anew');
          assert.ok(c2!.saveDate! > m2!.saveDate!, 'a moved message is saved anew');
          assert.deepEqual((await store.listMessages(a.id))[0], m1, 'the source keeps its save date');
          const st = await store.storeFlags(b.id, [c1!.uid], 'add', ['\\Seen']);
          assert.equal(st.changed[0]!.saveDate, c1!.saveDate);
          assert.equal(st.changed[0]!.emailId, c1!.emailId);
          assert.equal(st.changed[0]!.internalTz, -300);
          assert.deepEqual((await store.getMessages(b.id, [c2!.uid]))[0], c2);
          assert.deepEqual((await store.searchMeta(b.id, { k: 'emailid', id: m2!.emailId! })).uids, [c2!.uid]);
          assert.deepEqual((await store.searchMeta(b.id, { k: 'emailid', id: 'nonsense' })).uids, []);
          const window = { start: t0 - 1000, end: Date.now() + 1000 };
          assert.deepEqual((await store.searchMeta(b.id, { k: 'savedon', ...window })).uids, [1, 2]);
          assert.deepEqual((await store.searchMeta(b.id, { k: 'savedbefore', ...window })).uids, []);
          assert.deepEqual((await store.searchMeta(b.id, { k: 'savedsince', ...window })).uids, [1, 2]);
          // BEFORE/ON/SINCE: the day as written in the zone (31 Dec 1999 -0500, 1 Jan 2000 UTC).
          const day = Math.floor(Date.UTC(1999, 11, 31) / 86_400_000);
          assert.deepEqual((await store.searchMeta(b.id, { k: 'on', day })).uids, [1]);
          unsub();
          const before = await store.listMessages(b.id);
          store = await h.reopen();
          assert.deepEqual(await store.listMessages(b.id), before);
        }));

      test('MAILBOXID: unique, kept across RENAME and reopen, never given again; renaming INBOX makes a new one', () =>
        withStore(async (h) => {
          let store = h.store;
          const inbox = await store.createMailbox(h.userId, 'INBOX', null);
          const x = await store.createMailbox(h.userId, 'X', null);
          const y = await store.createMailbox(h.userId, 'X/Y', null);
          assert.match(x.objectId, /^[A-Za-z0-9_-]{1,255}$/);
          assert.notEqual(x.objectId, y.objectId);
          await store.renameMailbox(h.userId, 'X', 'Z');
          assert.equal((await store.getMailbox(h.userId, 'Z'))?.objectId, x.objectId);
          assert.equal((await store.getMailbox(h.userId, 'Z/Y'))?.objectId, y.objectId);
          await store.deleteMailbox(h.userId, 'Z/Y');
          const again = await store.createMailbox(h.userId, 'Z/Y', null);
          assert.notEqual(again.objectId, y.objectId);
          await store.appendMessages(inbox.id, [{ data: msg(1), flags: [] }]);
          await store.renameMailbox(h.userId, 'INBOX', 'Old');
          assert.equal((await store.getMailbox(h.userId, 'INBOX'))?.objectId, inbox.objectId);
          const old = (await store.getMailbox(h.userId, 'Old'))!;
          assert.notEqual(old.objectId, inbox.objectId);
          const ids = (await store.listMailboxes(h.userId)).map((m) => m.objectId);
          assert.equal(new Set(ids).size, ids.length);
          store = await h.reopen();
          assert.deepEqual((await store.listMailboxes(h.userId)).map((m) => m.objectId), ids);
        }));
    });

    describe('annotations (RFC 5464)', () => {
      test('set, get by depth, remove; all or nothing at the limits; follow RENAME, go with DELETE; per user; setSpecialUse', () =>
        withStore(async (h) => {
          let store = h.store;
          const bob = await store.createUser('bob', 'hash');
          const box = await store.createMailbox(h.userId, 'A', null);
          const limits = { maxEntries: 4, maxPerUser: 6 };
          const v = (s: string) => Buffer.from(s);
          await store.setAnnotations(h.userId, box.id, [
            { entry: '/private/a', value: v('1') },
            { entry: '/private/a/b', value: v('2') },
            { entry: '/private/a/b/c', value: Buffer.from([0, 1, 2]) },
          ], limits);
          await store.setAnnotations(h.userId, null, [{ entry: '/shared/comment', value: v('server') }], limits);
          const names = async (mb: number | null, e: string, d: 0 | 1 | 'infinity', u = h.userId) =>
            (await store.getAnnotations(u, mb, [e], d)).map((x) => x.entry);
          assert.deepEqual(await names(box.id, '/private/a', 0), ['/private/a']);
          assert.deepEqual(await names(box.id, '/private/a', 1), ['/private/a', '/private/a/b']);
          assert.deepEqual(await names(box.id, '/private/a', 'infinity'), ['/private/a', '/private/a/b', '/private/a/b/c']);
          assert.deepEqual((await store.getAnnotations(h.userId, box.id, ['/private/a/b/c'], 0))[0]!.value, Buffer.from([0, 1, 2]));
          assert.deepEqual(await names(null, '/shared/comment', 0), ['/shared/comment']);
          assert.deepEqual(await names(null, '/shared/comment', 0, bob.id), [], 'another user sees none');
          // Over the per-mailbox limit: nothing of the call is kept.
          await rejectsKind(store.setAnnotations(h.userId, box.id, [
            { entry: '/private/a', value: null },
            { entry: '/private/x', value: v('x') },
            { entry: '/private/y', value: v('y') },
            { entry: '/private/z', value: v('z') },
          ], limits), 'LIMIT');
          assert.deepEqual(await names(box.id, '/private', 'infinity'), ['/private/a', '/private/a/b', '/private/a/b/c']);
          // Over the per-user limit (4 here + 1 server + 2 = 7 > 6).
          const other = await store.createMailbox(h.userId, 'B', null);
          await rejectsKind(store.setAnnotations(h.userId, other.id, [{ entry: '/private/p', value: v('p') }, { entry: '/private/q', value: v('q') }, { entry: '/private/r', value: v('r') }], limits), 'LIMIT');
          await store.setAnnotations(h.userId, box.id, [{ entry: '/private/a', value: null }], limits);
          assert.deepEqual(await names(box.id, '/private/a', 0), []);
          await rejectsKind(store.getAnnotations(h.userId, 999_999, ['/private/a'], 0), 'NONEXISTENT');
          await rejectsKind(store.setAnnotations(h.userId, 999_999, [{ entry: '/private/a', value: v('1') }], limits), 'NONEXISTENT');
          await store.renameMailbox(h.userId, 'A', 'C');
          const renamed = (await store.getMailbox(h.userId, 'C'))!;
          assert.deepEqual(await names(renamed.id, '/private', 'infinity'), ['/private/a/b', '/private/a/b/c']);
          await store.setSpecialUse(renamed.id, '\\Archive');
          assert.equal((await store.getMailbox(h.userId, 'C'))!.specialUse, '\\Archive');
          await store.setSpecialUse(renamed.id, null);
          assert.equal((await store.getMailbox(h.userId, 'C'))!.specialUse, null);
          store = await h.reopen();
          assert.deepEqual(await names(renamed.id, '/private', 'infinity'), ['/private/a/b', '/private/a/b/c']);
          await store.deleteMailbox(h.userId, 'C');
          const again = await store.createMailbox(h.userId, 'C', null);
          assert.deepEqual(await names(again.id, '/private', 'infinity'), []);
          assert.deepEqual(await names(null, '/shared/comment', 0), ['/shared/comment'], 'server annotations stay');
        }));
    });

    describe('durability', () => {
      test('everything is there after reopen', () =>
        withStore(async (h) => {
          let store = h.store;
          const box = await store.createMailbox(h.userId, 'INBOX', null);
          await store.setSubscribed(h.userId, 'INBOX', true);
          const data = msg('persist', 'y'.repeat(10_000));
          await store.appendMessages(box.id, [{ data, flags: ['\\Seen', 'Kw'], internalDate: 1234567890000 }]);
          const before = await store.mailboxStatus(box.id);
          store = await h.reopen();
          assert.equal((await store.getUser('alice'))?.id, h.userId);
          assert.deepEqual(await store.mailboxStatus(box.id), before);
          const [m] = await store.listMessages(box.id);
          assertFlags(m!.flags, ['\\Seen', 'Kw']);
          assert.equal(m!.internalDate, 1234567890000);
          assert.deepEqual(await (await store.openMessage(box.id, m!.uid))!.read(0, 1e9), data);
          assert.deepEqual(await store.listKeywords(box.id), ['Kw']);
          assert.deepEqual(await store.listSubscriptions(h.userId), ['INBOX']);
        }));
    });
  });
}
