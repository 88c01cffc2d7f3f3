// FETCH with body items opens metadata and bodies in one store call where the
// store has MailStore.getMessagesWithBodies (SQLite; issue 11), and answers
// byte for byte what the per-group path (getMessages, then openMessages: the
// PostgreSQL store's) answers, over a real server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer } from '../helpers/server.js';
import { RawClient, message } from '../helpers/imap.js';
import type { MailStore } from '../../src/store/types.js';

const multipart = (n: number) =>
  [
    `From: Multi ${n} <m${n}@example.com>`,
    'To: Alice <alice@example.com>',
    `Subject: =?utf-8?q?mehrteilig_${n}?=`,
    'Date: Mon, 7 Feb 1994 21:52:25 -0800',
    `Message-ID: <multi${n}@example.com>`,
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="b1"',
    '',
    '--b1',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: quoted-printable',
    '',
    `Gr=C3=BC=C3=9Fe ${n}`,
    '--b1',
    'Content-Type: application/octet-stream',
    'Content-Transfer-Encoding: base64',
    '',
    Buffer.from(`attachment ${n} `.repeat(40)).toString('base64'),
    '--b1--',
    '',
  ].join('\r\n');

/** Counts the store calls FETCH makes, on the store instance the server uses (own properties shadow the methods). */
function countCalls(store: MailStore, names: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  const s = store as unknown as Record<string, (...a: unknown[]) => unknown>;
  for (const name of names) {
    counts[name] = 0;
    const fn = s[name]!;
    s[name] = function (this: unknown, ...a: unknown[]) {
      counts[name]!++;
      return fn.apply(store, a);
    };
  }
  return counts;
}

test('FETCH with body items: one store call, the same bytes as getMessages + openMessages', async () => {
  const t = await startTestServer();
  try {
    const store = t.store as MailStore;
    assert.equal(typeof store.getMessagesWithBodies, 'function', 'the SQLite store has it');
    const c = await RawClient.connect(t.port, { login: ['alice', 'secret-a'] });
    await c.command('CREATE Both');
    for (let i = 1; i <= 12; i++) await c.append('Both', i % 3 === 0 ? multipart(i) : message(i), i % 2 ? '(\\Seen $Work)' : '');
    await c.command('SELECT Both');
    // Expunge one in the middle so the set has a hole.
    await c.command('STORE 5 +FLAGS.SILENT (\\Deleted)');
    await c.command('EXPUNGE');
    const commands = [
      'FETCH 1:* (UID FLAGS RFC822.SIZE ENVELOPE BODYSTRUCTURE BODY.PEEK[HEADER.FIELDS (Subject Message-ID)])',
      'FETCH 2:9 (BODY.PEEK[] BODY.PEEK[1] BODY.PEEK[TEXT]<3.50> BINARY.PEEK[1] BINARY.SIZE[1])',
      'UID FETCH 1,3,6,12,99 (BODY.PEEK[HEADER] BODY.PEEK[1.MIME] INTERNALDATE EMAILID)',
      'FETCH 3 (RFC822 PREVIEW)',
      'FETCH 4,7 (BODY[])', // not PEEK: sets \Seen, and the new FLAGS come with the data
      'FETCH 1:* (BODY)',
    ];
    const counts = countCalls(store, ['getMessages', 'openMessages', 'getMessagesWithBodies']);
    const together: string[] = [];
    for (const cmd of commands) together.push((await c.command(cmd)).raw.replace(/^\S+ /gm, ''));
    assert.equal(counts.getMessages, 0);
    assert.equal(counts.openMessages, 0);
    assert.equal(counts.getMessagesWithBodies, commands.length, 'one store call per FETCH');
    // Reset \Seen on 4 and 7 so that the second pass sets it again the same way.
    await c.command('STORE 4,7 -FLAGS.SILENT (\\Seen)');
    // The per-group path, as for a store without the method.
    (store as unknown as Record<string, unknown>).getMessagesWithBodies = undefined;
    const perGroup: string[] = [];
    for (const cmd of commands) perGroup.push((await c.command(cmd)).raw.replace(/^\S+ /gm, ''));
    assert.equal(counts.getMessagesWithBodies, commands.length, 'the second pass took the per-group path');
    assert.ok(counts.getMessages! >= commands.length && counts.openMessages! >= commands.length);
    for (let i = 0; i < commands.length; i++) {
      assert.equal(together[i], perGroup[i], commands[i]!.replace(/MODSEQ \(\d+\)/g, ''));
    }
    await c.command('LOGOUT');
  } finally {
    await t.stop();
  }
});

test('getMessagesWithBodies: the UIDs that exist, ascending, metadata as getMessages, bodies as openMessages', async () => {
  const t = await startTestServer();
  try {
    const store = t.store as MailStore;
    const user = (await store.getUser('alice'))!;
    const box = await store.createMailbox(user.id, 'Direct');
    const data = Array.from({ length: 20 }, (_, i) => Buffer.from(i % 4 === 0 ? multipart(i) : message(i)));
    const { uids } = await store.appendMessages(box.id, data.map((d) => ({ data: d, flags: [] })));
    await store.storeFlags(box.id, [uids[3]!], 'add', ['\\Deleted']);
    await store.expunge(box.id);
    for (const ask of [uids, uids.slice(2, 5), [uids[19]!, uids[0]!, 9999], [uids[3]!], []]) {
      const both = await store.getMessagesWithBodies!(box.id, ask);
      const metas = await store.getMessages(box.id, ask);
      assert.deepEqual(both.map((x) => x.meta), metas);
      const bodies = await store.openMessages(box.id, metas.map((m) => m.uid));
      for (let i = 0; i < both.length; i++) {
        const a = both[i]!.body;
        const b = bodies[i]!;
        assert.equal(a.size, b.size);
        assert.deepEqual(a.structure, b.structure);
        assert.ok((await a.read(0, a.size)).equals(await b.read(0, b.size)));
        assert.ok((await a.read(0, a.size)).equals(data[uids.indexOf(both[i]!.meta.uid)]!));
      }
    }
    await assert.rejects(store.getMessagesWithBodies!(999_999, [1]), (e: Error & { kind?: string }) => e.kind === 'NONEXISTENT');
  } finally {
    await t.stop();
  }
});
