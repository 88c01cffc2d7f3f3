import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { LocalChangeFeed } from '../../src/store/feed.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { SCHEMA_VERSION } from '../../src/store/sqlite/schema.js';
import type { Change, MailStore } from '../../src/store/types.js';
import { msg, runStoreContract } from './contract.js';

const here = path.dirname(fileURLToPath(import.meta.url));

async function tempDir(): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), 'quire-store-'));
}

runStoreContract('sqlite', async () => {
  const dir = await tempDir();
  let store: MailStore = await openSqliteStore({ dataDir: path.join(dir, 'data') });
  return {
    store,
    reopen: async () => {
      await store.close();
      store = await openSqliteStore({ dataDir: path.join(dir, 'data') });
      return store;
    },
    cleanup: async () => {
      await store.close();
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
});

async function countFiles(dir: string): Promise<number> {
  let n = 0;
  for (const e of await fs.readdir(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) n++;
  return n;
}

describe('sqlite backend', () => {
  test('creates the data directory, WAL mode and schema version', async () => {
    const dir = await tempDir();
    try {
      const dataDir = path.join(dir, 'a', 'b');
      const store = await openSqliteStore({ dataDir });
      await store.close();
      const db = new Database(path.join(dataDir, 'quire.sqlite3'));
      assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
      assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
      db.close();
      // reopening an existing database runs no migration twice
      await (await openSqliteStore({ dataDir })).close();
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  test('blob files are shared by copies and unlinked with the last reference', async () => {
    const dir = await tempDir();
    try {
      const store = await openSqliteStore({ dataDir: dir });
      const u = await store.createUser('u', 'h');
      const a = await store.createMailbox(u.id, 'INBOX');
      const b = await store.createMailbox(u.id, 'B');
      const blobs = path.join(dir, 'blobs');
      await store.appendMessages(a.id, [
        { data: msg(1), flags: ['\\Deleted'] },
        { data: msg(2), flags: [] },
      ]);
      assert.equal(await countFiles(blobs), 2);
      await store.copyMessages(a.id, [1, 2], b.id);
      assert.equal(await countFiles(blobs), 2, 'COPY copies no bytes');
      await store.expunge(a.id);
      assert.equal(await countFiles(blobs), 2);
      await store.deleteMailbox(u.id, 'B');
      assert.equal(await countFiles(blobs), 1);
      await store.deleteUser(u.id);
      assert.equal(await countFiles(blobs), 0);
      await store.close();
      assert.equal(await countFiles(path.join(dir, 'tmp')), 0);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  test('open removes temp files and uncommitted blobs of dead writers', async () => {
    const dir = await tempDir();
    try {
      let store = await openSqliteStore({ dataDir: dir });
      const u = await store.createUser('u', 'h');
      const box = await store.createMailbox(u.id, 'INBOX');
      await store.appendMessages(box.id, [{ data: msg(1), flags: [] }]);
      await store.close();
      // Simulate a writer (pid that cannot exist) that died after writing files but before committing.
      const dead = '2147483646-deadbeef';
      const db = new Database(path.join(dir, 'quire.sqlite3'));
      const start = db.prepare("SELECT value FROM meta WHERE key = 'blob_next'").pluck().get() as number;
      db.prepare("UPDATE meta SET value = ? WHERE key = 'blob_next'").run(start + 1024);
      db.prepare('INSERT INTO blob_reservations (start, end, owner) VALUES (?, ?, ?)').run(start, start + 1024, dead);
      db.close();
      const hex2 = (n: number) => n.toString(16).padStart(2, '0');
      const orphanDir = path.join(dir, 'blobs', hex2(Math.floor(start / 65536)), hex2(Math.floor(start / 256) % 256));
      await fs.mkdir(orphanDir, { recursive: true });
      await fs.writeFile(path.join(orphanDir, String(start + 3)), 'orphan');
      await fs.writeFile(path.join(dir, 'tmp', `${dead}.${start + 4}.tmp`), 'partial');
      assert.equal(await countFiles(path.join(dir, 'blobs')), 2);
      store = await openSqliteStore({ dataDir: dir });
      assert.equal(await countFiles(path.join(dir, 'blobs')), 1);
      assert.equal(await countFiles(path.join(dir, 'tmp')), 0);
      assert.deepEqual(await (await store.openMessage(box.id, 1))!.read(0, 1e6), msg(1));
      await store.close();
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  test('an acknowledged append survives kill -9 right after it resolved', async () => {
    const dir = await tempDir();
    try {
      let store = await openSqliteStore({ dataDir: dir });
      const u = await store.createUser('u', 'h');
      const box = await store.createMailbox(u.id, 'INBOX');
      await store.close();
      const data = msg('durable', 'z'.repeat(50_000));
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', path.join(here, 'fixtures', 'append-child.ts'), dir, String(box.id), data.toString('base64')],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      const uid = await new Promise<number>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /APPENDED (\d+)\n/.exec(out);
          if (m) {
            child.kill('SIGKILL');
            resolve(Number(m[1]));
          }
        });
        child.on('exit', (code, signal) => {
          if (signal !== 'SIGKILL') reject(new Error(`child exited ${code}: ${stderr}`));
        });
      });
      await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(null) : child.on('exit', r)));
      store = await openSqliteStore({ dataDir: dir });
      const [m] = await store.getMessages(box.id, [uid]);
      assert.ok(m, 'message survived');
      assert.deepEqual(m.flags, ['\\Flagged']);
      assert.deepEqual(await (await store.openMessage(box.id, uid))!.read(0, 1e9), data);
      assert.equal((await store.mailboxStatus(box.id)).messages, 1);
      await store.close();
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  test('the UID list of a big mailbox is cached and always equals the messages', async () => {
    const dir = await tempDir();
    try {
      const store = await openSqliteStore({ dataDir: dir, synchronous: 'NORMAL' });
      const u = await store.createUser('big', 'x');
      const box = await store.createMailbox(u.id, 'INBOX');
      const other = await store.createMailbox(u.id, 'Other');
      await store.appendMessages(box.id, Array.from({ length: 6000 }, (_, i) => ({ data: msg(i), flags: [] })));
      const a = await store.listUids(box.id);
      assert.equal(a.length, 6000);
      a.length = 0; // the caller owns its copy
      assert.equal((await store.listUids(box.id)).length, 6000);
      await store.storeFlags(box.id, [10, 20, 30], 'add', ['\\Deleted']);
      assert.equal((await store.listUids(box.id)).length, 6000, 'a flag change keeps the set');
      await store.expunge(box.id);
      const b = await store.listUids(box.id);
      assert.deepEqual(b.slice(8, 12), [9, 11, 12, 13]);
      assert.equal(b.length, 5997);
      await store.appendMessages(box.id, [{ data: msg('x'), flags: [] }]);
      assert.equal((await store.listUids(box.id)).at(-1), 6001);
      await store.moveMessages(box.id, [1, 2], other.id);
      const c = await store.listUids(box.id);
      assert.equal(c[0], 3);
      assert.deepEqual(c, (await store.listMessages(box.id)).map((m) => m.uid));
      await store.close();
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  test('a closed store refuses calls with UNAVAILABLE', async () => {
    const dir = await tempDir();
    try {
      const store = await openSqliteStore({ dataDir: dir });
      await store.close();
      await assert.rejects(store.countUsers(), (e: unknown) => (e as { kind?: string }).kind === 'UNAVAILABLE');
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  test('scale: listMessages over a large mailbox', { timeout: 300_000 }, async () => {
    const dir = await tempDir();
    try {
      // NORMAL skips per-file fsyncs so the fixture loads quickly; the read path is what is measured.
      const store = await openSqliteStore({ dataDir: dir, synchronous: 'NORMAL' });
      const u = await store.createUser('u', 'h');
      const box = await store.createMailbox(u.id, 'INBOX');
      // Fixture: 5 x appendMessages(1000) of real bodies, then in-mailbox COPY
      // (which shares bodies) doubling the mailbox up to TOTAL messages.
      const TOTAL = Number(process.env.QUIRE_SCALE ?? 100_000);
      const BATCH = 1000;
      const t0 = performance.now();
      for (let i = 0; i < Math.min(5 * BATCH, TOTAL); i += BATCH) {
        await store.appendMessages(
          box.id,
          Array.from({ length: Math.min(BATCH, TOTAL - i) }, (_, j) => ({
            data: msg(i + j),
            flags: (i + j) % 3 === 0 ? ['\\Seen'] : (i + j) % 7 === 0 ? ['$Label1'] : [],
          })),
        );
      }
      const tAppend = performance.now() - t0;
      for (;;) {
        const have = (await store.mailboxStatus(box.id)).messages;
        if (have >= TOTAL) break;
        const all = (await store.listMessages(box.id)).map((m) => m.uid);
        await store.copyMessages(box.id, all.slice(0, TOTAL - have), box.id);
      }
      const tInsert = performance.now() - t0;
      const t1 = performance.now();
      const list = await store.listMessages(box.id);
      const tList = performance.now() - t1;
      const t2 = performance.now();
      const st = await store.mailboxStatus(box.id);
      const tStatus = performance.now() - t2;
      const t3 = performance.now();
      const some = await store.getMessages(box.id, list.filter((_, i) => i % 2 === 0).map((m) => m.uid));
      const tGet = performance.now() - t3;
      const t4 = performance.now();
      await store.storeFlags(box.id, list.map((m) => m.uid), 'add', ['\\Seen']);
      const tStore = performance.now() - t4;
      console.log(
        `scale ${TOTAL}: append 5000 ${tAppend.toFixed(0)} ms, fill by COPY ${(tInsert - tAppend).toFixed(0)} ms, listMessages ${tList.toFixed(1)} ms, ` +
          `STATUS ${tStatus.toFixed(2)} ms, getMessages(${some.length}) ${tGet.toFixed(1)} ms, ` +
          `storeFlags(all) ${tStore.toFixed(0)} ms`,
      );
      assert.equal(list.length, TOTAL);
      assert.equal(st.messages, TOTAL);
      assert.equal(st.unseen, list.filter((m) => !m.flags.includes('\\Seen')).length);
      assert.ok(tList < 2000, `listMessages took ${tList} ms`);
      assert.equal((await store.mailboxStatus(box.id)).unseen, 0);
      await store.close();
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});

describe('LocalChangeFeed', () => {
  const change = (userId: number, name: string): Change => ({ kind: 'mailbox-create', userId, mailboxId: 1, name });

  test('a throwing listener does not stop the others', () => {
    const errors: unknown[] = [];
    const feed = new LocalChangeFeed((e) => errors.push(e));
    const got: string[] = [];
    feed.subscribe(1, () => {
      throw new Error('boom');
    });
    feed.subscribe(1, (c) => got.push(c.kind === 'mailbox-create' ? c.name : ''));
    feed.publish(change(1, 'a'));
    feed.publish(change(2, 'other user'));
    assert.deepEqual(got, ['a']);
    assert.equal(errors.length, 1);
  });

  test('nested publishes are delivered in publish order to everyone', () => {
    const feed = new LocalChangeFeed();
    const log: string[] = [];
    feed.subscribe(1, (c) => {
      const n = c.kind === 'mailbox-create' ? c.name : '';
      log.push(`L1:${n}`);
      if (n === 'first') feed.publish(change(1, 'second'));
    });
    feed.subscribe(1, (c) => log.push(`L2:${c.kind === 'mailbox-create' ? c.name : ''}`));
    feed.publish(change(1, 'first'));
    assert.deepEqual(log, ['L1:first', 'L2:first', 'L1:second', 'L2:second']);
  });

  test('unsubscribe, including during dispatch', () => {
    const feed = new LocalChangeFeed();
    const log: string[] = [];
    let unsub2: () => void = () => undefined;
    const unsub1 = feed.subscribe(1, () => {
      log.push('L1');
      unsub2();
    });
    unsub2 = feed.subscribe(1, () => log.push('L2'));
    feed.publish(change(1, 'x'));
    assert.deepEqual(log, ['L1']);
    unsub1();
    unsub1();
    feed.publish(change(1, 'y'));
    assert.deepEqual(log, ['L1']);
    assert.equal(feed.listenerCount(1), 0);
  });
});
