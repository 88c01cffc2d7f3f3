// Store-level contracts of the URLAUTH mailbox access keys (RFC 4467 §2.4:
// urlAuthKey / resetUrlAuthKeys) and of the POP3 maildrop snapshot
// (openMaildrop: RFC 1939 §4 one snapshot at login, §11 sizes in CRLF form),
// for every backend:
//   runUrlAuthKeyContract / runMaildropContract('sqlite', open)   (test/store/urlauth-keys.test.ts)
//   the same on PostgreSQL                                        (test/store/postgres-contracts.test.ts)
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { MailStore } from '../../src/store/types.js';
import { rejectsKind, type StoreHarness } from './contract.js';

type Opts = { skip?: false | string };

async function withStore(open: () => Promise<StoreHarness>, fn: (h: StoreHarness, alice: number) => Promise<void>): Promise<void> {
  const h = await open();
  try {
    const u = await h.store.createUser('alice', 'hash');
    await h.store.createMailbox(u.id, 'INBOX');
    await fn(h, u.id);
  } finally {
    await h.cleanup();
  }
}

export function runUrlAuthKeyContract(name: string, open: () => Promise<StoreHarness>, opts: Opts = {}): void {
  describe(`MailStore URLAUTH keys contract: ${name}`, { skip: opts.skip ?? false }, () => {
    test('made on demand, stable until reset, per user and mailbox, durable, gone with the mailbox and the user', () =>
      withStore(open, async (h, alice) => {
        let s: MailStore = h.store;
        const box = await s.createMailbox(alice, 'K');
        assert.equal(await s.urlAuthKey(alice, box.id, 'INTERNAL', false), null);
        const k1 = (await s.urlAuthKey(alice, box.id, 'INTERNAL', true))!;
        assert.equal(k1.length, 32);
        assert.deepEqual(await s.urlAuthKey(alice, box.id, 'INTERNAL', true), k1);
        assert.deepEqual(await s.urlAuthKey(alice, box.id, 'INTERNAL', false), k1);
        // Two sessions asking at once get the same key (the first one made is kept).
        const other = await s.createMailbox(alice, 'K2');
        const both = await Promise.all([s.urlAuthKey(alice, other.id, 'INTERNAL', true), s.urlAuthKey(alice, other.id, 'INTERNAL', true)]);
        assert.deepEqual(both[0], both[1]);
        // Another user's mailbox is not this user's key table.
        const bob = (await s.createUser('bob', 'hash-b')).id;
        const bobBox = await s.createMailbox(bob, 'INBOX');
        await rejectsKind(s.urlAuthKey(bob, box.id, 'INTERNAL', true), 'NONEXISTENT');
        await rejectsKind(s.resetUrlAuthKeys(bob, box.id, 'INTERNAL'), 'NONEXISTENT');
        await rejectsKind(s.urlAuthKey(alice, 987_654_321, 'INTERNAL', false), 'NONEXISTENT');
        const kb = (await s.urlAuthKey(bob, bobBox.id, 'INTERNAL', true))!;
        // RESETKEY <mailbox>: a new key at once.
        await s.resetUrlAuthKeys(alice, box.id, 'INTERNAL');
        const k2 = (await s.urlAuthKey(alice, box.id, 'INTERNAL', false))!;
        assert.ok(k2 && !k2.equals(k1));
        // RESETKEY alone: every key of that user gone, other users' kept.
        await s.resetUrlAuthKeys(alice, null, 'INTERNAL');
        assert.equal(await s.urlAuthKey(alice, box.id, 'INTERNAL', false), null);
        assert.equal(await s.urlAuthKey(alice, other.id, 'INTERNAL', false), null);
        assert.deepEqual(await s.urlAuthKey(bob, bobBox.id, 'INTERNAL', false), kb);
        // Gone with the mailbox: a new mailbox of the same name starts without one.
        const k3 = (await s.urlAuthKey(alice, box.id, 'INTERNAL', true))!;
        await s.deleteMailbox(alice, 'K');
        await rejectsKind(s.urlAuthKey(alice, box.id, 'INTERNAL', false), 'NONEXISTENT');
        const again = await s.createMailbox(alice, 'K');
        assert.equal(await s.urlAuthKey(alice, again.id, 'INTERNAL', false), null);
        const k4 = (await s.urlAuthKey(alice, again.id, 'INTERNAL', true))!;
        assert.ok(!k4.equals(k3));
        // Kept across a restart.
        s = await h.reopen();
        assert.deepEqual(await s.urlAuthKey(alice, again.id, 'INTERNAL', false), k4);
        // Gone with the user; alice's stay.
        await s.deleteUser(bob);
        await rejectsKind(s.urlAuthKey(bob, bobBox.id, 'INTERNAL', false), 'NONEXISTENT');
        assert.deepEqual(await s.urlAuthKey(alice, again.id, 'INTERNAL', false), k4);
      }));
  });
}

/** The message as POP3 sends it (RFC 1939 §11 counts this form): every bare LF becomes CRLF. */
export function crlfForm(data: Buffer): Buffer {
  const out: number[] = [];
  for (let i = 0; i < data.length; i++) {
    if (data[i] === 10 && (i === 0 || data[i - 1] !== 13)) out.push(13);
    out.push(data[i]!);
  }
  return Buffer.from(out);
}

export const MAILDROP_BODIES = [
  Buffer.from('From: a@example.com\nSubject: bare LF\n\nline one\n.dot line\nline three\n'),
  Buffer.from('From: a@example.com\r\nSubject: mixed\r\n\r\nCRLF line\r\nLF line\nCR alone\rstays\r\n'),
  Buffer.from('From: a@example.com\r\nSubject: plain\r\n\r\nall CRLF\r\n'),
  Buffer.from('\nSubject: starts with LF\n\n' + 'x'.repeat(300_000) + '\n'),
];

export function runMaildropContract(name: string, open: () => Promise<StoreHarness>, opts: Opts = {}): void {
  describe(`MailStore POP3 maildrop contract: ${name}`, { skip: opts.skip ?? false }, () => {
    test('one snapshot: UIDs ascending, CRLF-form sizes, \\Seen, bodies byte for byte; later changes do not move it', () =>
      withStore(open, async (h, alice) => {
        const s = h.store;
        const inbox = (await s.getMailbox(alice, 'INBOX'))!;
        assert.deepEqual(await s.openMaildrop(inbox.id).then((d) => [d.uids, d.sizes, d.seen]), [[], [], []]);
        await s.appendMessages(inbox.id, MAILDROP_BODIES.map((data, i) => ({ data, flags: i === 1 ? ['\\Seen'] : [] })));
        // A gap in the UIDs: the maildrop numbers messages 1..n whatever their UIDs.
        await s.storeFlags(inbox.id, [3], 'add', ['\\Deleted']);
        await s.expunge(inbox.id);
        const live = [0, 1, 3];
        const d = await s.openMaildrop(inbox.id);
        assert.deepEqual(d.uids, [1, 2, 4]);
        assert.deepEqual(d.sizes, live.map((i) => crlfForm(MAILDROP_BODIES[i]!).length));
        assert.deepEqual(d.seen, [false, true, false]);
        for (let k = 0; k < live.length; k++) {
          const want = MAILDROP_BODIES[live[k]!]!;
          assert.ok((await d.readWhole(k))!.equals(want), `readWhole ${k}`);
          const b = d.body(k);
          assert.equal(b.size, want.length);
          assert.ok((await b.read(0, b.size)).equals(want), `body ${k}`);
          const parts: Buffer[] = [];
          for await (const p of b.stream(0, b.size, 65_536)) parts.push(p);
          assert.ok(Buffer.concat(parts).equals(want), `stream ${k}`);
        }
        // Appended after login: not in this snapshot; the next login sees it.
        await s.appendMessages(inbox.id, [{ data: Buffer.from('Subject: later\n\nx\n'), flags: [] }]);
        assert.equal(d.uids.length, 3);
        assert.deepEqual((await s.openMaildrop(inbox.id)).uids, [1, 2, 4, 5]);
        // Expunged after login (by IMAP): never someone else's bytes; gone once the store dropped the body.
        await s.storeFlags(inbox.id, [1], 'add', ['\\Deleted']);
        await s.expunge(inbox.id);
        const got = await d.readWhole(0).catch(() => null);
        assert.ok(got === null || got.equals(MAILDROP_BODIES[0]!));
        // Sizes survive a restart (the bare-LF counts are stored).
        const s2 = await h.reopen();
        const d2 = await s2.openMaildrop(inbox.id);
        assert.deepEqual(d2.uids, [2, 4, 5]);
        assert.deepEqual(d2.sizes, [crlfForm(MAILDROP_BODIES[1]!).length, crlfForm(MAILDROP_BODIES[3]!).length, crlfForm(Buffer.from('Subject: later\n\nx\n')).length]);
      }));
  });
}
