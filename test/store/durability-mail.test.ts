// sqlite.durability (docs/config.md "Durability"; src/store/sqlite/durability.ts
// soon/covered/flush, store.ts lazyDone): with "mail" (the default, like
// Dovecot's mail_fsync = optimized) new mail answers only after the WAL sync,
// STORE and EXPUNGE answer after COMMIT and are published at once, an
// expunged body's file stays until the expunge is durable, and an orderly
// shutdown syncs; with "all" every write waits for its sync. Each test runs a
// real IMAP server on a real store in a child process
// (fixtures/durability-server.ts), so that it can be killed with SIGKILL; the
// bound of the lazy sync is widened there to a minute so that the unsynced
// window can be watched (a sync then happens only for a durable write or at
// shutdown).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { RawClient, message } from '../helpers/imap.js';
import { BlobFiles } from '../../src/store/sqlite/blobs.js';
import { SqliteMailStore, openSqliteStore } from '../../src/store/sqlite/index.js';
import type { Change } from '../../src/store/types.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** The child's lazy-sync bound: far longer than any test step, so only durable writes and shutdown sync. */
const WIDE_UNSYNCED_MS = 60_000;
/** How long the tests wait for something that should happen at once (a loaded machine). */
const SOON_MS = 5_000;

interface Child {
  proc: ChildProcess;
  port: number;
  dataDir: string;
  /** Sends a control line and returns the child's answer line starting with `prefix`. */
  ask(cmd: string, prefix: string): Promise<string[]>;
  /** WAL syncs so far and whether every lazy commit is synced. */
  state(): Promise<{ syncs: number; covered: boolean }>;
}

async function startChild(mode: 'mail' | 'all'): Promise<Child> {
  const proc = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'fixtures', 'durability-server.ts'), mode, String(WIDE_UNSYNCED_MS)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let stderr = '';
  const waiting: { prefix: string; resolve: (words: string[]) => void }[] = [];
  const take = () => {
    for (;;) {
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      const line = out.slice(0, nl);
      out = out.slice(nl + 1);
      const i = waiting.findIndex((w) => line.startsWith(w.prefix));
      if (i >= 0) waiting.splice(i, 1)[0]!.resolve(line.split(' ').slice(1));
    }
  };
  proc.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    take();
  });
  proc.stderr!.on('data', (d: Buffer) => (stderr += d));
  const next = (prefix: string) =>
    new Promise<string[]>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${prefix} from the child; stderr: ${stderr}`)), 60_000);
      waiting.push({
        prefix,
        resolve: (w) => {
          clearTimeout(timer);
          resolve(w);
        },
      });
      take();
    });
  const [port, dataDir] = await next('READY ');
  const ask = (cmd: string, prefix: string) => {
    const p = next(prefix);
    proc.stdin!.write(`${cmd}\n`);
    return p;
  };
  return {
    proc,
    port: Number(port),
    dataDir: dataDir!,
    ask,
    async state() {
      const [syncs, covered] = await ask('state', 'STATE ');
      return { syncs: Number(syncs), covered: covered === '1' };
    },
  };
}

async function killHard(c: Child): Promise<void> {
  if (c.proc.exitCode !== null || c.proc.signalCode !== null) return;
  const gone = new Promise((r) => c.proc.once('exit', r));
  c.proc.kill('SIGKILL');
  await gone;
}

/** The body file of alice's INBOX message `uid` (read through a read-only connection of the test's own). */
function bodyFile(dataDir: string, uid: number): string {
  const db = new Database(path.join(dataDir, 'quire.sqlite3'), { readonly: true, fileMustExist: true });
  try {
    const id = db
      .prepare(
        `SELECT m.blob_id FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id JOIN users u ON u.id = b.user_id
         WHERE u.name = 'alice' AND b.name = 'INBOX' AND m.uid = ?`,
      )
      .pluck()
      .get(uid) as number;
    return new BlobFiles(dataDir, false, 'test').pathOf(id);
  } finally {
    db.close();
  }
}

async function until(what: string, cond: () => boolean): Promise<void> {
  const deadline = Date.now() + SOON_MS;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const ok = (tagged: string) => assert.match(tagged, /^\S+ OK/);

test('mail mode: STORE and EXPUNGE answer and publish before the WAL sync; the expunged file stays until a later sync covers it; shutdown syncs', async () => {
  const c = await startChild('mail');
  try {
    const a = await RawClient.connect(c.port, { login: ['alice', 'secret-a'] });
    const b = await RawClient.connect(c.port, { login: ['alice', 'secret-a'] });
    ok((await a.command('SELECT INBOX')).tagged);
    const before = await c.state();
    ok((await a.append('INBOX', message(1))).tagged);
    const afterAppend = await c.state();
    assert.ok(afterAppend.syncs > before.syncs, 'APPEND waits for a WAL sync in mail mode too');
    assert.equal(afterAppend.covered, true);

    ok((await b.command('SELECT INBOX')).tagged);
    b.write('I1 IDLE\r\n');
    await b.readUntil((l) => l.startsWith('+'));
    ok((await a.command('STORE 1 +FLAGS (\\Flagged)')).tagged);
    // The other session hears of it although nothing has synced since the APPEND.
    await b.readUntil((l) => /^\* 1 FETCH .*\\Flagged/.test(l), SOON_MS);
    let s = await c.state();
    assert.equal(s.syncs, afterAppend.syncs, 'STORE answered and published without a sync');
    assert.equal(s.covered, false, 'the STORE is not yet durable');

    const file = bodyFile(c.dataDir, 1);
    assert.ok(existsSync(file));
    ok((await a.command('STORE 1 +FLAGS.SILENT (\\Deleted)')).tagged);
    const ex = await a.command('EXPUNGE');
    ok(ex.tagged);
    assert.ok(ex.untagged.includes('* 1 EXPUNGE'));
    await b.readUntil((l) => l === '* 1 EXPUNGE', SOON_MS);
    // Give a wrong purge every chance to run: the file must outlive the unsynced expunge.
    await new Promise((r) => setTimeout(r, 200));
    s = await c.state();
    assert.equal(s.syncs, afterAppend.syncs, 'EXPUNGE answered without a sync');
    assert.ok(existsSync(file), 'the body file is kept while its expunge is not durable');

    // A durable write's sync covers the earlier lazy commits (WAL order); then the file goes.
    ok((await a.append('INBOX', message(2))).tagged);
    s = await c.state();
    assert.ok(s.syncs > afterAppend.syncs);
    assert.equal(s.covered, true, 'the APPEND sync covered the STORE and EXPUNGE before it');
    await until('the expunged body file to be unlinked', () => !existsSync(file));

    b.write('DONE\r\n');
    await b.readUntil((l) => l.startsWith('I1 '));
    ok((await a.command('UID STORE 2 +FLAGS (\\Seen)')).tagged);
    s = await c.state();
    assert.equal(s.covered, false);
    await a.close();
    await b.close();

    // Orderly shutdown syncs what is left.
    const [syncs, covered] = await c.ask('close', 'CLOSED ');
    assert.ok(Number(syncs) > s.syncs, 'close synced');
    assert.equal(covered, '1');
    await new Promise((r) => (c.proc.exitCode !== null ? r(null) : c.proc.once('exit', r)));
    const store = await openSqliteStore({ dataDir: c.dataDir });
    try {
      const box = (await store.listMailboxes((await store.getUser('alice'))!.id)).find((m) => m.name === 'INBOX')!;
      const msgs = await store.getMessages(box.id, [1, 2]);
      assert.deepEqual(
        msgs.map((m) => [m.uid, m.flags]),
        [[2, ['\\Seen']]],
      );
    } finally {
      await store.close();
    }
  } finally {
    await killHard(c);
    await rm(c.dataDir, { recursive: true, force: true });
  }
});

test('mail mode, kill -9 right after acknowledged writes: the APPENDed message survives, and so do the STORE and EXPUNGE (a process crash loses nothing acknowledged)', async () => {
  const c = await startChild('mail');
  try {
    const a = await RawClient.connect(c.port, { login: ['alice', 'secret-a'] });
    ok((await a.command('SELECT INBOX')).tagged);
    const body = message(7, { subject: 'survives', body: 'z'.repeat(20_000) });
    ok((await a.append('INBOX', body, '(\\Draft)')).tagged);
    ok((await a.append('INBOX', message(8))).tagged);
    ok((await a.command('STORE 1 +FLAGS (\\Answered)')).tagged);
    ok((await a.command('STORE 2 +FLAGS.SILENT (\\Deleted)')).tagged);
    ok((await a.command('EXPUNGE')).tagged);
    await killHard(c);
    const store = await openSqliteStore({ dataDir: c.dataDir });
    try {
      const box = (await store.listMailboxes((await store.getUser('alice'))!.id)).find((m) => m.name === 'INBOX')!;
      const msgs = await store.getMessages(box.id, [1, 2]);
      assert.equal(msgs.length, 1);
      assert.deepEqual([...msgs[0]!.flags].sort(), ['\\Answered', '\\Draft']);
      const read = (await store.openMessage(box.id, 1))!;
      assert.equal((await read.read(0, 1e9)).toString(), body);
      // The UID of the expunged message is never given again.
      const st = await store.mailboxStatus(box.id);
      assert.equal(st.uidNext, 3);
    } finally {
      await store.close();
    }
  } finally {
    await killHard(c);
    await rm(c.dataDir, { recursive: true, force: true });
  }
});

test('all mode: STORE and EXPUNGE each answer only after a WAL sync, and the expunged file is gone when EXPUNGE answers', async () => {
  const c = await startChild('all');
  try {
    const a = await RawClient.connect(c.port, { login: ['alice', 'secret-a'] });
    ok((await a.command('SELECT INBOX')).tagged);
    ok((await a.append('INBOX', message(1))).tagged);
    let s = await c.state();
    ok((await a.command('STORE 1 +FLAGS (\\Flagged)')).tagged);
    let t = await c.state();
    assert.ok(t.syncs > s.syncs, 'STORE waited for a sync');
    assert.equal(t.covered, true);
    const file = bodyFile(c.dataDir, 1);
    ok((await a.command('STORE 1 +FLAGS.SILENT (\\Deleted)')).tagged);
    s = await c.state();
    ok((await a.command('EXPUNGE')).tagged);
    t = await c.state();
    assert.ok(t.syncs > s.syncs, 'EXPUNGE waited for a sync');
    assert.equal(existsSync(file), false, 'as before: the file is unlinked before EXPUNGE answers');
    await a.close();
    await c.ask('close', 'CLOSED ');
  } finally {
    await killHard(c);
    await rm(c.dataDir, { recursive: true, force: true });
  }
});

test('mail mode, store level: a lazy STORE that catches another connection\'s unsynced APPEND in its transaction waits for a sync before anyone sees it; one that catches only flag changes does not', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'quire-lazy-'));
  // a never syncs (NORMAL): its commits stand for another worker's, committed and not yet durable.
  const a = await SqliteMailStore.open({ dataDir: dir, synchronous: 'NORMAL' });
  // b does not poll (followOthers false), so what it learns of a comes only from its own write transactions.
  const b = await SqliteMailStore.open({ dataDir: dir, synchronous: 'FULL', durability: 'mail', maxUnsyncedMs: WIDE_UNSYNCED_MS, followOthers: false });
  try {
    const u = await a.createUser('u', 'h');
    const box = await a.createMailbox(u.id, 'INBOX');
    const seen: Change[] = [];
    b.feed.subscribe(u.id, (c) => seen.push(c));
    const data = (i: number) => Buffer.from(`Subject: m${i}\r\n\r\nbody ${i}\r\n`);
    await a.appendMessages(box.id, [{ data: data(1), flags: [] }, { data: data(2), flags: [] }]);

    let syncs = b.walSyncCount();
    await b.storeFlags(box.id, [1], 'add', ['\\Seen']);
    assert.ok(b.walSyncCount() > syncs, 'the STORE that showed a foreign append waited for a sync');
    assert.deepEqual(
      seen.map((c) => c.kind),
      ['append', 'flags'],
      'the append is published first, then the STORE',
    );
    assert.equal(b.walCovered(), true);

    seen.length = 0;
    await a.storeFlags(box.id, [2], 'add', ['\\Flagged']);
    syncs = b.walSyncCount();
    await b.storeFlags(box.id, [1], 'add', ['\\Answered']);
    assert.equal(b.walSyncCount(), syncs, 'only flag changes caught: answered before any sync');
    assert.equal(b.walCovered(), false);
    assert.deepEqual(
      seen.map((c) => [c.kind, (c as { messages: { uid: number }[] }).messages.map((m) => m.uid)]),
      [
        ['flags', [2]],
        ['flags', [1]],
      ],
    );
  } finally {
    await b.close();
    await a.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('mail mode, store level: a lazy commit is synced within the bound without any other write', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'quire-lazy-'));
  const s = await SqliteMailStore.open({ dataDir: dir, synchronous: 'FULL' });
  try {
    const u = await s.createUser('u', 'h');
    const box = await s.createMailbox(u.id, 'INBOX');
    await s.appendMessages(box.id, [{ data: Buffer.from('Subject: x\r\n\r\nx\r\n'), flags: [] }]);
    const syncs = s.walSyncCount();
    await s.storeFlags(box.id, [1], 'add', ['\\Seen']);
    await until('the lazy STORE to be synced', () => s.walCovered());
    assert.equal(s.walSyncCount(), syncs + 1, 'one sync, started by the MAX_UNSYNCED_MS timer');
  } finally {
    await s.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('all mode, store level: a purge waits for a sync begun after it read the trash, so another writer\'s unsynced expunge keeps its file until that expunge is durable', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'quire-alltrash-'));
  const b = await SqliteMailStore.open({ dataDir: dir, synchronous: 'FULL', durability: 'all', followOthers: false });
  try {
    const u = await b.createUser('u', 'h');
    const box = await b.createMailbox(u.id, 'INBOX');
    const data = (i: number) => Buffer.from(`Subject: m${i}\r\n\r\nbody ${i}\r\n`);
    await b.appendMessages(box.id, [{ data: data(1), flags: [] }, { data: data(2), flags: ['\\Deleted'] }]);
    // Another writer (a raw connection that never syncs: a worker whose commit is not durable yet)
    // expunges message 1; the triggers put its body into blob_trash.
    const other = new Database(path.join(dir, 'quire.sqlite3'));
    other.pragma('synchronous = OFF');
    const blob1 = other.prepare('SELECT blob_id FROM messages WHERE mailbox_id = ? AND uid = 1').pluck().get(box.id) as number;
    other.prepare('DELETE FROM messages WHERE mailbox_id = ? AND uid = 1').run(box.id);
    assert.ok(other.prepare('SELECT count(*) FROM blob_trash WHERE id = ?').pluck().get(blob1), 'the other writer\'s expunge put the body in the trash');
    other.close();
    const file1 = new BlobFiles(dir, true, 'test').pathOf(blob1);
    assert.equal(existsSync(file1), true);
    // b expunges message 2: its EXPUNGE waits for its own sync, then its purge finds both bodies in the trash.
    // The syncs completed when the files are unlinked, not only by the end: the order is what protects the body.
    const blobs = (b as unknown as { blobs: { unlinkAll(ids: Iterable<number>): Promise<void> } }).blobs;
    const unlinkAll = blobs.unlinkAll.bind(blobs);
    const before = b.walSyncCount();
    let syncsAtUnlink = -1;
    blobs.unlinkAll = (ids) => {
      if ([...ids].includes(blob1)) syncsAtUnlink = b.walSyncCount() - before;
      return unlinkAll(ids);
    };
    await b.expunge(box.id);
    assert.equal(existsSync(file1), false, 'the purge unlinked the other writer\'s body too');
    assert.ok(syncsAtUnlink >= 2, `a sync after reading the trash, besides the expunge's own, before the unlink (${syncsAtUnlink} syncs then)`);
  } finally {
    await b.close();
    await rm(dir, { recursive: true, force: true });
  }
});
