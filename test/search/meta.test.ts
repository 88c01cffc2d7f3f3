// The store's index search (MetaFilter compiled to SQL) must agree with the
// reference evaluator on every program it can take: a seeded differential
// test. Metadata and header keys are decided by the store; BODY/TEXT may only
// be ruled out by its full-text index, and what stays undecided is read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { evaluate, type MessageContent } from '../../src/search/evaluate.js';
import { Header, addressSearchText, decodeEncodedWords, parseMessage, searchBodyText, searchHeaderText } from '../../src/mime/index.js';
import { toMetaFilter } from '../../src/search/meta.js';
import type { Criterion } from '../../src/search/program.js';
import { STAR } from '../../src/wire/index.js';
import { prng as rng } from '../helpers/rng.js';


test('SQL index search equals the reference evaluator on random programs', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'quire-meta-'));
  const store = await openSqliteStore({ dataDir: dir, synchronous: 'NORMAL' });
  try {
    const r = rng(Number(process.env.QUIRE_META_SEED ?? 20261126));
    const user = await store.createUser('u', 'x');
    const box = await store.createMailbox(user.id, 'INBOX');
    const flags = ['\\Seen', '\\Answered', '\\Flagged', '\\Deleted', '\\Draft', '$Work', 'Later', '$label_1'];
    const day = 86_400_000;
    const base = Date.UTC(2024, 0, 1);
    const words = ['Report', 'lunch', 'Grüße', 'invoice', 'RE: plans'];
    const bodyWords = ['kumquat', 'Ölpreis', 'meeting', 'x"y', 'ab', 'ZEPHYRINE', 'the plan'];
    const bodyOf = (i: number): string => {
      const text = Array.from({ length: 1 + Math.floor(r() * 6) }, () => bodyWords[Math.floor(r() * bodyWords.length)]!).join(' ');
      const pad = 'x'.repeat(Math.floor(r() * 400));
      const kind = i % 3;
      if (kind === 0) return `\r\n${text} ${pad}\r\n`;
      if (kind === 1) {
        return `MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n${Buffer.from(text + ' ' + pad).toString('base64')}\r\n`;
      }
      return `MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n${text.replaceAll('Ö', '=C3=96')}\r\n--b\r\nContent-Type: application/octet-stream\r\n\r\nkumquat ${pad}\r\n--b--\r\n`;
    };
    const items = Array.from({ length: 300 }, (_, i) => ({
      data: Buffer.from(
        (r() < 0.9 ? (i % 4 === 3 ? `From: <u${i % 13} (Person ${i % 7})@ (x) ex${i % 3}.com>\r\n` : `From: Person ${i % 7} <u${i % 13}@ex${i % 3}.com>\r\n`) : '') +
          (r() < 0.5 ? `Cc: c${i % 5}@ex.org\r\n` : '') +
          `Subject: ${words[i % words.length]} ${i}\r\n` +
          (r() < 0.8 ? `Date: ${1 + (i % 20)} Jan 2024 10:00:00 +0000\r\n` : '') +
          bodyOf(i),
      ),
      flags: flags.filter(() => r() < 0.3),
      internalDate: base + Math.floor(r() * 20) * day + Math.floor(r() * day),
    }));
    await store.appendMessages(box.id, items);
    // What a server's indexing thread does after APPEND, here on this thread.
    while ((await store.indexPendingText(100)) > 0);
    // Some history: flag changes (modseqs) and expunges (UID gaps).
    const all0 = await store.listUids(box.id);
    await store.storeFlags(box.id, all0.filter(() => r() < 0.2), 'add', ['\\Deleted']);
    await store.expunge(box.id);
    await store.storeFlags(box.id, (await store.listUids(box.id)).filter(() => r() < 0.3), 'add', ['$Work']);
    const metas = await store.listMessages(box.id);
    const uids = metas.map((m) => m.uid);
    const meta = new Map(metas.map((m) => [m.uid, m]));
    const recent = new Set(uids.filter(() => r() < 0.1));
    const saved = uids.filter(() => r() < 0.2);
    const maxModseq = Math.max(...metas.map((m) => m.modseq));
    const num = (max: number) => 1 + Math.floor(r() * max);
    const seqSet = (max: number) => ({
      saved: false as const,
      ranges: Array.from({ length: num(3) }, () => {
        const a = r() < 0.1 ? STAR : num(max + 5);
        const b = r() < 0.1 ? STAR : num(max + 5);
        return a <= b ? { start: a, end: b } : { start: b, end: a };
      }),
    });
    const needles = ['person 3', 'U1', '@EX2', 'grüße', 'report', 'c4@', 'zzz', 're: p', 'u1@ex1.com', '(x)', '3 <u'];
    // Content needles: hits in text parts only, an attachment-only word, quotes, a 2-character needle, one across words, header text.
    const contentNeedles = ['kumquat', 'ölpreis', 'MEETING', 'x"y', 'ab', 'zephyrine', 'the plan', 'person 3', 'subject: re', 'zzz'];
    const gen = (depth: number): Criterion => {
      if (r() < 0.25) {
        const n = needles[Math.floor(r() * needles.length)]!;
        const x = Math.floor(r() * 6);
        if (x >= 4) {
          const value = contentNeedles[Math.floor(r() * contentNeedles.length)]!;
          return { k: x === 4 ? 'body' : 'text', value };
        }
        // FROM/CC keys: parsed addresses (HEADER FROM, raw, is not indexed: toMetaFilter leaves it to the evaluator).
        if (x === 0) return { k: 'header', field: 'From', value: n, address: true };
        if (x === 1) return { k: 'header', field: 'subject', value: n };
        if (x === 2) return { k: 'header', field: 'CC', value: n, address: true };
        return { k: (['sentbefore', 'senton', 'sentsince'] as const)[Math.floor(r() * 3)]!, date: { year: 2024, month: 1, day: 1 + Math.floor(r() * 22) } };
      }
      const k = Math.floor(r() * (depth > 3 ? 11 : 14));
      const d = { year: 2024, month: 1, day: 1 + Math.floor(r() * 22) };
      switch (k) {
        case 0: return { k: 'flag', flag: flags[Math.floor(r() * flags.length)]!.toUpperCase(), present: r() < 0.5 };
        case 1: return { k: 'flag', flag: flags[Math.floor(r() * flags.length)]!, present: r() < 0.5 };
        case 2: return { k: r() < 0.5 ? 'larger' : 'smaller', n: Math.floor(r() * 450) };
        case 3: return { k: (['before', 'on', 'since'] as const)[Math.floor(r() * 3)]!, date: d };
        case 4: return { k: 'uid', set: seqSet(uids[uids.length - 1]!) };
        case 5: return { k: 'seq', set: seqSet(uids.length) };
        case 6: return { k: 'recent', present: r() < 0.5 };
        case 7: return { k: 'new' };
        case 8: return { k: 'modseq', modseq: num(maxModseq) };
        case 9: return { k: 'seq', set: { saved: true } };
        case 10: return { k: 'all' };
        case 11: return { k: 'not', c: gen(depth + 1) };
        case 12: return { k: 'or', a: gen(depth + 1), b: gen(depth + 1) };
        default: return { k: 'and', cs: Array.from({ length: num(3) }, () => gen(depth + 1)) };
      }
    };
    const index = await store.headerIndex(box.id);
    // Content as the server reads it (src/mime searchtext), from the appended bytes.
    const dataOf = new Map<number, Buffer>();
    (await store.listUids(box.id)).forEach((u) => dataOf.set(u, items[u - 1]!.data));
    const content = async (u: number): Promise<MessageContent | null> => {
      const raw = dataOf.get(u)!;
      const root = parseMessage(raw);
      const header = Header.parse(raw, root.headerStart, root.headerEnd);
      return {
        headerValues: (f) => header.getAll(f).map((v) => decodeEncodedWords(v)),
        addressValues: (f) => header.getAll(f).map((v) => addressSearchText(v)),
        headerText: () => searchHeaderText(raw, root),
        bodyText: () => searchBodyText(raw, root),
        sentDay: () => null,
      };
    };
    // A few bodies lose their header index and their full-text rows (as if stored before them): the store must call them undecided.
    const db = new Database(path.join(dir, 'quire.sqlite3'));
    const fts = new Database(path.join(dir, 'quire-fts.sqlite3'));
    const unindexed = new Set(uids.filter(() => r() < 0.05));
    const blobOf = db.prepare('SELECT blob_id FROM messages WHERE mailbox_id = ? AND uid = ?').pluck();
    const clear = db.prepare('UPDATE blobs SET indexed = 0, fts = 0 WHERE id = ?');
    const dropText = fts.prepare('DELETE FROM blob_text WHERE rowid IN (?, ?)');
    const dropRow = fts.prepare('DELETE FROM indexed WHERE blob_id = ?');
    for (const u of unindexed) {
      const b = blobOf.get(box.id, u) as number;
      clear.run(b);
      dropText.run(b * 2, b * 2 + 1);
      dropRow.run(b);
    }
    fts.close();
    db.close();
    const usesContent = (c: Criterion): boolean =>
      c.k === 'body' || c.k === 'text' || (c.k === 'not' && usesContent(c.c)) || (c.k === 'or' && (usesContent(c.a) || usesContent(c.b))) || (c.k === 'and' && c.cs.some(usesContent));
    let undecidedSeen = 0;
    let contentPrograms = 0;
    const replay: [Criterion, NonNullable<ReturnType<typeof toMetaFilter>>, number[]][] = [];
    for (let i = 0; i < 800; i++) {
      const program = gen(0);
      const target = { uids, meta, isRecent: (u: number) => recent.has(u), saved: () => saved, content, index };
      const expected = await evaluate(program, target);
      const filter = toMetaFilter(program, { uids, recent, saved });
      assert.ok(filter, 'every program without sequence-dependent content converts');
      const got = await store.searchMeta(box.id, filter);
      const why = JSON.stringify(program);
      if (!usesContent(program)) {
        for (const u of got.undecided) assert.ok(unindexed.has(u), `only unindexed messages are undecided: ${why}`);
      } else contentPrograms++;
      // What the store decided is right; reading the undecided ones completes the answer.
      const read = await evaluate(program, { ...target, only: new Set(got.undecided) });
      assert.deepEqual(got.uids, expected.filter((u) => !got.undecided.includes(u)), why);
      assert.deepEqual([...got.uids, ...read].sort((a, b) => a - b), expected, why);
      undecidedSeen += got.undecided.length;
      if (i < 150) replay.push([program, filter, expected]);
    }
    // The same through the search thread a server runs (search-worker.ts): the same answers.
    store.startBackgroundWork?.((err) => assert.fail(String(err)));
    for (const [program, filter, expected] of replay) {
      const got = await store.searchMeta(box.id, filter);
      const read = await evaluate(program, { uids, meta, isRecent: (u: number) => recent.has(u), saved: () => saved, content, index, only: new Set(got.undecided) });
      assert.deepEqual([...got.uids, ...read].sort((a, b) => a - b), expected, `search thread: ${JSON.stringify(program)}`);
    }
    assert.ok(contentPrograms > 50, 'content keys were exercised');
    // The text index rules out: a rare word leaves few messages to read.
    for (const [needle, scope] of [['zephyrine', 'body'], ['kumquat', 'text'], ['ölpreis', 'body']] as const) {
      const got = await store.searchMeta(box.id, { k: 'content', scope, value: needle });
      const hits = await evaluate({ k: scope, value: needle }, { uids, meta, isRecent: () => false, saved: () => [], content });
      assert.equal(got.uids.length, 0, 'the index never decides a match');
      for (const u of hits) assert.ok(got.undecided.includes(u), `${needle}: hit ${u} is left to read`);
      assert.ok(got.undecided.length < uids.length * 0.6, `${needle}: ${got.undecided.length} of ${uids.length} left to read`);
    }
    // A needle without a trigram rules nothing out.
    assert.equal((await store.searchMeta(box.id, { k: 'content', scope: 'body', value: 'ab' })).undecided.length, uids.length);
    assert.ok(undecidedSeen > 0, 'some programs met unindexed messages');
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
});
