// Big mailboxes' metadata is kept in memory by the SQLite store and brought
// up to date from modseqs and tombstones on every use. Whatever happens to
// the mailbox (flag changes, expunges, appends, moves, copies, writes by a
// second store on the same files, tombstone pruning) what the store answers
// must equal the rows in the database: a seeded differential test against a
// separate SQLite connection.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { decodeFlags } from '../../src/store/sqlite/flags.js';
import type { MessageMeta } from '../../src/store/types.js';
import { msg } from './contract.js';
import { prng } from '../helpers/rng.js';
import { startTestServer } from '../helpers/server.js';
import { RawClient, message } from '../helpers/imap.js';

test('metadata of a big mailbox always equals its rows', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'quire-snap-'));
  const r = prng(Number(process.env.QUIRE_SNAPSHOT_SEED ?? 20261127));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  try {
    const store = await openSqliteStore({ dataDir: dir, synchronous: 'NORMAL' });
    const u = await store.createUser('big', 'x');
    const box = await store.createMailbox(u.id, 'INBOX');
    const other = await store.createMailbox(u.id, 'Other');
    let n = 0;
    const batch = (k: number) => Array.from({ length: k }, () => ({ data: msg(n++), flags: r() < 0.5 ? ['\\Seen'] : [], internalDate: 1_700_000_000_000 + n * 1000 }));
    for (let i = 0; i < 6; i++) await store.appendMessages(box.id, batch(1000));
    // A second store on the same files: another process (quire import, a second server).
    const foreign = await openSqliteStore({ dataDir: dir, synchronous: 'NORMAL' });
    const db = new Database(path.join(dir, 'quire.sqlite3'), { readonly: true });
    const truth = (): MessageMeta[] =>
      (db.prepare('SELECT uid, sysflags, keywords, internal_date, size, modseq, internal_tz, save_date, blob_id FROM messages WHERE mailbox_id = ? ORDER BY uid').raw().all(box.id) as [number, number, string, number, number, number, number, number | null, number][])
        .map(([uid, sys, kw, internalDate, size, modseq, internalTz, saveDate, blobId]) => ({ uid, flags: [...decodeFlags(sys, kw)], internalDate, internalTz, saveDate, emailId: `M${blobId}`, size, modseq }));
    const plain = (ms: MessageMeta[]) => ms.map((m) => ({ ...m, flags: [...m.flags] }));
    const flags = ['\\Seen', '\\Flagged', '\\Deleted', '\\Answered', '$Work', 'Later'];
    const ops: [string, () => Promise<unknown>][] = [
      ['flags', async () => {
        const uids = await store.listUids(box.id);
        const some = uids.filter(() => r() < 0.01);
        await pick([store, foreign]).storeFlags(box.id, some, pick(['add', 'remove', 'replace'] as const), [pick(flags), pick(flags)]);
      }],
      ['one flag', async () => store.storeFlags(box.id, [pick(await store.listUids(box.id))], 'add', ['\\Flagged'])],
      ['expunge', async () => {
        const uids = await store.listUids(box.id);
        await store.storeFlags(box.id, uids.filter(() => r() < 0.005), 'add', ['\\Deleted']);
        await pick([store, foreign]).expunge(box.id);
      }],
      ['append', async () => pick([store, foreign]).appendMessages(box.id, batch(1 + Math.floor(r() * 20)))],
      ['move out', async () => store.moveMessages(box.id, (await store.listUids(box.id)).filter(() => r() < 0.003), other.id)],
      ['copy in', async () => {
        if ((await store.listUids(other.id)).length) await store.copyMessages(other.id, await store.listUids(other.id), box.id);
      }],
      ['many flags', async () => store.storeFlags(box.id, (await store.listUids(box.id)).filter(() => r() < 0.4), 'add', ['$Bulk'])],
    ];
    for (let step = 0; step < 60; step++) {
      const [name, op] = pick(ops);
      await op();
      const want = truth();
      const why = `step ${step} after ${name}`;
      assert.deepEqual(plain(await store.listMessages(box.id)), want, why);
      assert.deepEqual(await store.listUids(box.id), want.map((m) => m.uid), why);
      // Dense ranges, sparse sets, unsorted with duplicates and missing UIDs.
      const all = want.map((m) => m.uid);
      const lo = Math.floor(r() * all.length);
      const dense = all.slice(lo, lo + 1500);
      const sparse = all.filter(() => r() < 0.002);
      const messy = [...sparse.slice().reverse(), ...sparse.slice(0, 3), 999_999, 0];
      for (const ask of [dense, sparse, messy, [...dense, 999_999]]) {
        const set = new Set(ask);
        assert.deepEqual(plain(await store.getMessages(box.id, ask)), want.filter((m) => set.has(m.uid)), `${why}: getMessages`);
      }
      // The other store's view agrees too.
      if (step % 10 === 0) assert.deepEqual(plain(await foreign.listMessages(box.id)), want, `${why} (second store)`);
    }
    db.close();
    await foreign.close();
    await store.close();
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

// A big mailbox's snapshot is built a page at a time with the event loop free between pages
// (metadata.ts): commits by this store and by another one land between the pages. Whatever lands,
// the snapshot built must be the mailbox at some moment (ascending UIDs, no message twice) and,
// once the writers stop, exactly its rows: a change lost or counted twice during the build would
// stay in it, since later uses only apply what changed after the build.
test('a snapshot built while others write loses and doubles nothing', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'quire-snap-'));
  const r = prng(Number(process.env.QUIRE_SNAPSHOT_SEED ?? 20261203));
  try {
    const store = await openSqliteStore({ dataDir: dir, synchronous: 'NORMAL' });
    const u = await store.createUser('big', 'x');
    const box = await store.createMailbox(u.id, 'INBOX');
    let n = 0;
    const batch = (k: number) => Array.from({ length: k }, () => ({ data: msg(n++), flags: r() < 0.5 ? ['\\Seen'] : [], internalDate: 1_700_000_000_000 + n * 1000 }));
    for (let i = 0; i < 20; i++) await store.appendMessages(box.id, batch(1000));
    const foreign = await openSqliteStore({ dataDir: dir, synchronous: 'NORMAL' });
    const db = new Database(path.join(dir, 'quire.sqlite3'), { readonly: true });
    const truth = () => db.prepare('SELECT uid, sysflags, keywords, modseq FROM messages WHERE mailbox_id = ? ORDER BY uid').raw().all(box.id) as [number, number, string, number][];
    const plain = (ms: MessageMeta[]) => ms.map((m) => [m.uid, [...m.flags].sort().join(' '), m.modseq]);
    const want = () => truth().map(([uid, sys, kw, modseq]) => [uid, [...decodeFlags(sys, kw)].sort().join(' '), modseq]);
    let pages = 0;
    for (let round = 0; round < 6; round++) {
      store.dropSnapshots();
      let writing = true;
      let writes = 0;
      // Writers on both stores, each step a turn of the event loop apart: flags here and there
      // (already read and not yet read), expunges low and high, appends at the top.
      const writer = (async () => {
        while (writing) {
          const w = r() < 0.5 ? store : foreign;
          const all = truth().map((x) => x[0]);
          const some = [all[Math.floor(r() * all.length)]!, all[Math.floor(r() * all.length)]!];
          const step = r();
          if (step < 0.4) await w.storeFlags(box.id, some, 'add', [r() < 0.5 ? '\\Flagged' : '$Mid']);
          else if (step < 0.7) {
            await w.storeFlags(box.id, some, 'add', ['\\Deleted']);
            await w.expunge(box.id);
          } else await w.appendMessages(box.id, batch(1 + Math.floor(r() * 5)));
          writes++;
          await new Promise((res) => setImmediate(res));
        }
      })();
      // The event loop turns while the snapshot is built (a page of rows per turn: metadata.ts SNAPSHOT_PAGE).
      let turns = 0;
      let building = true;
      const count = () => { turns++; if (building) setImmediate(count); };
      setImmediate(count);
      const built = await store.listMessages(box.id);
      building = false;
      assert.ok(turns >= 10, `round ${round}: the event loop turned ${turns} times while 20,000 rows were read`);
      writing = false;
      await writer;
      pages += writes;
      for (let i = 1; i < built.length; i++) assert.ok(built[i]!.uid > built[i - 1]!.uid, `round ${round}: UIDs ascend, none twice`);
      assert.deepEqual(plain(await store.listMessages(box.id)), want(), `round ${round} after ${writes} writes during the build`);
      assert.deepEqual(plain(await store.getMessages(box.id, truth().map((x) => x[0]))), want(), `round ${round}: getMessages`);
    }
    // The writers did run during the builds (or the test shows nothing).
    assert.ok(pages >= 6, `writes landed during the builds (${pages})`);
    db.close();
    await foreign.close();
    await store.close();
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

// Small mailboxes have snapshots too (issue 11: the mixed load's shared mailboxes of ~30 messages),
// refreshed inside the reader's read transaction (metadata.ts refreshNow), and a read of a few
// messages of a stale one reads rows. Two stores on the same files (two workers) write flags,
// expunges and appends, some while the reads run; every answer must equal the rows.
test('metadata of small mailboxes equals their rows under writes by this and another store', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'quire-snap-'));
  const r = prng(Number(process.env.QUIRE_SNAPSHOT_SEED ?? 20261204));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  try {
    const store = await openSqliteStore({ dataDir: dir, synchronous: 'NORMAL' });
    const foreign = await openSqliteStore({ dataDir: dir, synchronous: 'NORMAL' });
    const u = await store.createUser('small', 'x');
    const boxes = [await store.createMailbox(u.id, 'INBOX'), await store.createMailbox(u.id, 'Work')];
    let n = 0;
    const batch = (k: number) => Array.from({ length: k }, () => ({ data: msg(n++), flags: r() < 0.5 ? ['\\Seen'] : [], internalDate: 1_700_000_000_000 + n * 1000 }));
    for (const b of boxes) await store.appendMessages(b.id, batch(30));
    const db = new Database(path.join(dir, 'quire.sqlite3'), { readonly: true });
    const truth = (id: number): MessageMeta[] =>
      (db.prepare('SELECT uid, sysflags, keywords, internal_date, size, modseq, internal_tz, save_date, blob_id FROM messages WHERE mailbox_id = ? ORDER BY uid').raw().all(id) as [number, number, string, number, number, number, number, number | null, number][])
        .map(([uid, sys, kw, internalDate, size, modseq, internalTz, saveDate, blobId]) => ({ uid, flags: [...decodeFlags(sys, kw)], internalDate, internalTz, saveDate, emailId: `M${blobId}`, size, modseq }));
    const plain = (ms: MessageMeta[]) => ms.map((m) => ({ ...m, flags: [...m.flags] }));
    const flags = ['\\Seen', '\\Flagged', '\\Answered', '$Mine', 'Later'];
    const write = async (id: number): Promise<void> => {
      const w = pick([store, foreign]);
      const uids = truth(id).map((m) => m.uid);
      const step = r();
      if (step < 0.5) await w.storeFlags(id, uids.filter(() => r() < 0.2), pick(['add', 'remove', 'replace'] as const), [pick(flags)]);
      else if (step < 0.75) {
        if (uids.length > 20) {
          await w.storeFlags(id, uids.filter(() => r() < 0.1), 'add', ['\\Deleted']);
          await w.expunge(id);
        }
      } else if (uids.length < 40) await w.appendMessages(id, batch(1 + Math.floor(r() * 3)));
    };
    const snaps = (s: unknown) => (s as { snapshots: { counting: number } }).snapshots;
    for (let step = 0; step < 120; step++) {
      const box = pick(boxes).id;
      // Some writes land while the reads below are in flight (both stores, interleaved turns).
      const writing = Promise.all([write(box), r() < 0.5 ? write(pick(boxes).id) : null]);
      const during = await Promise.all([store.getMessages(box, truth(box).map((m) => m.uid)), store.listUids(box)]);
      for (let i = 1; i < during[0].length; i++) assert.ok(during[0][i]!.uid > during[0][i - 1]!.uid, 'ascending, none twice');
      await writing;
      const want = truth(box);
      const why = `step ${step}`;
      assert.deepEqual(plain(await store.listMessages(box)), want, `${why}: listMessages`);
      assert.deepEqual(await store.listUids(box), want.map((m) => m.uid), `${why}: listUids`);
      const all = want.map((m) => m.uid);
      const few = all.filter(() => r() < 0.1).slice(0, 5);
      for (const ask of [all, few, [...few, 999_999], [all[all.length - 1]!]]) {
        const set = new Set(ask);
        assert.deepEqual(plain(await store.getMessages(box, ask)), want.filter((m) => set.has(m.uid)), `${why}: getMessages of ${ask.length}`);
        assert.deepEqual(plain(await foreign.getMessages(box, ask)), want.filter((m) => set.has(m.uid)), `${why}: the other store's getMessages`);
      }
    }
    assert.ok(snaps(store).counting > 0, 'the small mailboxes have snapshots');
    db.close();
    await foreign.close();
    await store.close();
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

// The same over a real server: one session changes flags and expunges while the other fetches
// FLAGS of the whole small mailbox; once both are caught up (NOOP) they see the same messages and
// flags, and the reader saw every message it knew of in each FETCH 1:* that ended OK.
test('over a real server: FETCH 1:* FLAGS of a small mailbox follows another session\'s STORE and EXPUNGE', async () => {
  const t = await startTestServer();
  const r = prng(20261205);
  try {
    const a = await RawClient.connect(t.port, { login: ['alice', 'secret-a'] });
    const b = await RawClient.connect(t.port, { login: ['alice', 'secret-a'] });
    await a.command('CREATE Small');
    for (let i = 1; i <= 30; i++) await a.append('Small', message(i));
    await a.command('SELECT Small');
    await b.command('SELECT Small');
    const flagsOf = (lines: string[]) => lines.filter((l) => / FETCH /.test(l)).map((l) => l.replace(/^\* \d+ FETCH /, '').replace(/ ?\\Recent/, '').replace('( ', '(')).sort();
    for (let round = 0; round < 25; round++) {
      const uid = 1 + Math.floor(r() * (30 + round));
      const writes = Promise.all([
        b.command(`UID STORE ${uid} ${r() < 0.5 ? '+' : '-'}FLAGS.SILENT (\\Flagged $K${round % 3})`),
        round % 4 === 3 ? b.command(`UID STORE ${uid}:${uid + 1} +FLAGS.SILENT (\\Deleted)`).then(() => b.command(`UID EXPUNGE ${uid}:${uid + 1}`)) : null,
        round % 5 === 0 ? b.append('Small', message(100 + round)) : null,
      ]);
      const seen = await a.command('FETCH 1:* (UID FLAGS)');
      assert.match(seen.tagged, / OK/);
      await writes;
      await a.command('NOOP');
      await b.command('NOOP');
      const ra = await a.command('UID FETCH 1:* (UID FLAGS)');
      const rb = await b.command('UID FETCH 1:* (UID FLAGS)');
      assert.deepEqual(flagsOf(ra.untagged), flagsOf(rb.untagged), `round ${round}`);
    }
    await a.command('LOGOUT');
    await b.command('LOGOUT');
  } finally {
    await t.stop();
  }
});
