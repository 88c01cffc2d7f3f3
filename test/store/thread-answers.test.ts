// Whole-mailbox THREAD answers kept across restarts (schema V_THREAD_ANSWERS,
// src/store/sqlite/threading.ts keptAnswer / keepThreadAnswer), over real
// sockets. The kept answer is the computed one byte for byte; after a restart
// it is what answers (shown without timing: a row planted on disk, a valid
// forest but not the mailbox's threads, is what the restarted server sends);
// and it is never served once the mailbox's messages changed: APPEND, EXPUNGE
// and MOVE by another session, or a write by another process (a second store
// on the same files, as `quire import` or `quire mailbox` would be), while
// flag changes keep it. Each fresh answer is checked against the same threads
// computed for a restriction (`UID 1:*`), which is never kept.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient } from '../helpers/imap.js';
import { threadCorpus } from '../helpers/thread-corpus.js';
import { SqliteMailStore } from '../../src/store/sqlite/store.js';
import { keepThreadAnswer, THREAD_KEEP_MAX_BYTES, THREAD_KEEP_MIN_MESSAGES } from '../../src/store/sqlite/threading.js';

const login = ['alice', 'secret-a'] as [string, string];
/** Above THREAD_KEEP_MIN_MESSAGES. */
const BIG = 1_200;
const ALGS = ['REFERENCES', 'REFS', 'ORDEREDSUBJECT'] as const;

let dataDir: string;
let srv: TestServer | null = null;

type Counts = { computed: number; memory: number; kept: number; written: number };
const counts = (s: TestServer): Counts => ({ ...(s.store as SqliteMailStore).threadAnswers });
const dbFile = () => path.join(dataDir, 'quire.sqlite3');

/** Loads `n` messages of the thread corpus into a new mailbox (straight into the store, as an import would). */
async function load(s: TestServer, name: string, n: number, seed: number): Promise<number> {
  const user = (await s.store.getUser('alice'))!;
  const box = await s.store.createMailbox(user.id, name);
  const msgs = threadCorpus(seed, n);
  for (let i = 0; i < msgs.length; i += 200) {
    await s.store.appendMessages(box.id, msgs.slice(i, i + 200).map((m) => ({ data: Buffer.from(m.raw), flags: [], internalDate: Date.parse(m.internalDate.replace(/^(\d+)-(\w+)-(\d+) /, '$2 $1 $3 ')) })));
  }
  return box.id;
}

async function restart(): Promise<TestServer> {
  await srv?.stop();
  srv = await startTestServer({ dataDir, users: [] });
  return srv;
}

async function session(s: TestServer, box: string): Promise<RawClient> {
  const c = await RawClient.connect(s.port, { login });
  assert.match((await c.command(`SELECT ${box}`)).tagged, /OK/);
  return c;
}

/** The THREAD line of `cmd`. */
async function threadLine(c: RawClient, cmd: string): Promise<string> {
  const r = await c.command(cmd);
  assert.match(r.tagged, /OK/, `${cmd}: ${r.tagged}`);
  const lines = r.untagged.filter((l) => l.startsWith('* THREAD'));
  assert.equal(lines.length, 1, cmd);
  return lines[0]!;
}

/** The whole-mailbox answer, checked against the same threads of a restriction to every UID (never kept). */
async function checkedAll(c: RawClient, alg: string): Promise<string> {
  const all = await threadLine(c, `UID THREAD ${alg} UTF-8 ALL`);
  assert.equal(all, await threadLine(c, `UID THREAD ${alg} UTF-8 UID 1:*`), `${alg}: the whole-mailbox answer is the computed one`);
  return all;
}

function keptRows(box: number): { alg: string; msg_count: number; bytes: number }[] {
  const db = new Database(dbFile(), { readonly: true });
  try {
    return db.prepare('SELECT alg, msg_count, length(nodes) AS bytes FROM thread_answers WHERE mailbox_id = ? ORDER BY alg').all(box) as never;
  } finally {
    db.close();
  }
}

/** Waits for the serving thread's write of kept answers (after the command's answer). */
async function written(s: TestServer, n: number): Promise<void> {
  for (let i = 0; i < 200 && counts(s).written < n; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(counts(s).written, n, 'kept answers written');
}

let big: number;
let small: number;
const firstAnswers = new Map<string, string>();

before(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'quire-thread-answers-'));
  srv = await startTestServer({ dataDir });
  big = await load(srv, 'Big', BIG, 31);
  small = await load(srv, 'Small', THREAD_KEEP_MIN_MESSAGES - 1, 32);
});

after(async () => {
  await srv?.stop();
  await rm(dataDir, { recursive: true, force: true });
});

test('a whole-mailbox answer is kept across a restart, the same bytes as computed', async () => {
  let s = srv!;
  let c = await session(s, 'Big');
  for (const alg of ALGS) firstAnswers.set(alg, await checkedAll(c, alg));
  await c.close();
  await written(s, ALGS.length);
  assert.deepEqual(keptRows(big).map((r) => [r.alg, r.msg_count]), [['ORDEREDSUBJECT', BIG], ['REFERENCES', BIG], ['REFS', BIG]]);
  for (const r of keptRows(big)) assert.ok(r.bytes <= THREAD_KEEP_MAX_BYTES);

  s = await restart();
  c = await session(s, 'Big');
  for (const alg of ALGS) assert.equal(await threadLine(c, `UID THREAD ${alg} UTF-8 ALL`), firstAnswers.get(alg), `${alg} after the restart`);
  // Also THREAD (sequence numbers: the same answer, numbered as this session sees it).
  assert.ok((await threadLine(c, 'THREAD REFERENCES UTF-8 ALL')).startsWith('* THREAD ('));
  assert.equal(counts(s).kept, ALGS.length, 'the first of each after the restart came from disk');
  assert.equal(counts(s).written, 0, 'nothing written again');
  await c.close();
  assert.deepEqual(s.errors, []);
});

test('after a restart the kept row is what answers (a planted row is served as it is)', async () => {
  await srv!.stop();
  srv = null;
  // A valid forest of the same messages, but not their threads: every message a thread of its own.
  const db = new Database(dbFile());
  const uids = db.prepare('SELECT uid FROM messages WHERE mailbox_id = ? ORDER BY uid').pluck().all(big) as number[];
  const nodes = new Uint32Array(2 * uids.length);
  uids.forEach((u, i) => (nodes[2 * i] = u));
  db.prepare("UPDATE thread_answers SET roots = ?, nodes = ? WHERE mailbox_id = ? AND alg = 'REFERENCES'").run(uids.length, Buffer.from(nodes.buffer), big);
  db.close();
  const flat = `* THREAD ${uids.map((u) => `(${u})`).join('')}`;

  let s = await restart();
  let c = await session(s, 'Big');
  assert.equal(await threadLine(c, 'UID THREAD REFERENCES UTF-8 ALL'), flat);
  // A restriction is computed: the real threads.
  assert.equal(await threadLine(c, 'UID THREAD REFERENCES UTF-8 UID 1:*'), firstAnswers.get('REFERENCES'));
  // Flags are not the message set: the kept row stays.
  await c.command('UID STORE 1:20 +FLAGS.SILENT (\\Seen $Work)');
  await c.close();

  // A damaged row (a node count that does not add up) is recomputed, never sent.
  s = await restart();
  c = await session(s, 'Big');
  assert.equal(await threadLine(c, 'UID THREAD REFERENCES UTF-8 ALL'), flat, 'kept across the flag change and the restart');
  await c.close();
  await s.stop();
  srv = null;
  const db2 = new Database(dbFile());
  db2.prepare("UPDATE thread_answers SET roots = roots + 1 WHERE mailbox_id = ? AND alg = 'REFERENCES'").run(big);
  db2.close();
  s = await restart();
  c = await session(s, 'Big');
  assert.equal(await checkedAll(c, 'REFERENCES'), firstAnswers.get('REFERENCES'));
  assert.equal(counts(s).kept, 0);
  await c.close();
  await written(s, 1);
});

test('an APPEND, EXPUNGE or MOVE by another session, or another process, is never answered from a kept answer', async () => {
  const s = await restart();
  const c = await session(s, 'Big');
  const other = await session(s, 'Big');
  let expectWritten = 0;
  const changed = async (what: string, prev: Map<string, string>): Promise<Map<string, string>> => {
    const next = new Map<string, string>();
    for (const alg of ALGS) {
      const line = await checkedAll(c, alg);
      assert.notEqual(line, prev.get(alg), `${alg} after ${what}: a new answer`);
      next.set(alg, line);
    }
    expectWritten += ALGS.length;
    await written(s, expectWritten);
    // The restarted server's first answer is the new one, from disk.
    return next;
  };
  let prev = firstAnswers;
  // Warm: every algorithm once (kept from before), then the changes.
  for (const alg of ALGS) assert.equal(await threadLine(c, `UID THREAD ${alg} UTF-8 ALL`), prev.get(alg));

  const reply = threadCorpus(31, 2)[1]!.raw.replace(/^Message-ID:.*$/im, 'Message-ID: <late-1@example.com>');
  assert.match((await other.append('Big', reply)).tagged, /OK/);
  await c.command('NOOP');
  prev = await changed('an APPEND', prev);

  await other.command('UID STORE 5 +FLAGS.SILENT (\\Deleted)');
  await other.command('UID EXPUNGE 5');
  await c.command('NOOP');
  prev = await changed('an EXPUNGE', prev);

  assert.match((await other.command('UID MOVE 7 Small')).tagged, /OK/);
  await c.command('NOOP');
  prev = await changed('a MOVE out', prev);

  const smallSession = await session(s, 'Small');
  assert.match((await smallSession.command('UID MOVE 1 Big')).tagged, /OK/);
  await smallSession.close();
  await c.command('NOOP');
  prev = await changed('a MOVE in', prev);

  // Another process: a second store on the same files appends, with the server running.
  const cli = await SqliteMailStore.open({ dataDir, synchronous: 'NORMAL' });
  try {
    await cli.appendMessages(big, [{ data: Buffer.from(threadCorpus(33, 1)[0]!.raw), flags: [] }]);
  } finally {
    await cli.close();
  }
  // The server notices another process's commit within a moment (foreign.ts); the session is told of it.
  for (let i = 0; i < 100 && !(await c.command('NOOP')).untagged.some((l) => / EXISTS$/.test(l)); i++) await new Promise((r) => setTimeout(r, 50));
  prev = await changed('an append by another process', prev);
  await c.close();
  await other.close();

  // The kept rows are of the message set as it is now.
  const count = (await s.store.mailboxStatus(big)).messages;
  assert.deepEqual(keptRows(big).map((r) => r.msg_count), [count, count, count]);
  const s2 = await restart();
  const d = await session(s2, 'Big');
  for (const alg of ALGS) assert.equal(await threadLine(d, `UID THREAD ${alg} UTF-8 ALL`), prev.get(alg));
  assert.equal(counts(s2).kept, ALGS.length);
  await d.close();
  assert.deepEqual(s.errors, []);
});

test('a change made while the server is stopped is not answered from the kept answer', async () => {
  await srv!.stop();
  srv = null;
  const cli = await SqliteMailStore.open({ dataDir, synchronous: 'NORMAL' });
  try {
    const uid = (await cli.listUids(big))[0]!;
    await cli.storeFlags(big, [uid], 'add', ['\\Deleted']);
    assert.deepEqual(keptRows(big).length, 3, 'a flag change keeps them');
    assert.deepEqual(await cli.expunge(big, [uid]), [uid]);
  } finally {
    await cli.close();
  }
  assert.deepEqual(keptRows(big), [], 'the triggers dropped the rows');
  const s = await restart();
  const c = await session(s, 'Big');
  for (const alg of ALGS) await checkedAll(c, alg);
  assert.equal(counts(s).kept, 0);
  await c.close();
});

test('small mailboxes, restrictions and answers over THREAD_KEEP_MAX_BYTES are not kept', async () => {
  const s = await restart();
  const c = await session(s, 'Small');
  for (const alg of ALGS) await checkedAll(c, alg);
  await c.close();
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(counts(s).written, 0);
  assert.deepEqual(keptRows(small), []);
  // Restricted answers of the big mailbox: none written either.
  const d = await session(s, 'Big');
  await threadLine(d, 'UID THREAD REFERENCES UTF-8 UNDELETED');
  await d.close();
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(counts(s).written, 0);
  // The limits themselves, on the writer's own function: too few messages, or too many bytes.
  const db = new Database(dbFile());
  try {
    const q = (sql: string) => db.prepare(sql);
    const mb = db.prepare('SELECT uid_validity, uid_next, msg_count FROM mailboxes WHERE id = ?').raw().get(big) as [number, number, number];
    const key = { mailboxId: big, alg: 'REFS' as const, uidValidity: mb[0], uidNext: mb[1], count: mb[2] };
    db.prepare('DELETE FROM thread_answers').run();
    assert.equal(keepThreadAnswer(q, { ...key, count: THREAD_KEEP_MIN_MESSAGES - 1 }, { roots: 1, nodes: new Uint32Array(2) }), false);
    assert.equal(keepThreadAnswer(q, key, { roots: 1, nodes: new Uint32Array(THREAD_KEEP_MAX_BYTES / 4 + 2) }), false);
    // Of another message set than the mailbox's now: not written.
    assert.equal(keepThreadAnswer(q, { ...key, uidNext: key.uidNext - 1 }, { roots: 1, nodes: new Uint32Array(2) }), false);
    assert.equal(keepThreadAnswer(q, key, { roots: 1, nodes: new Uint32Array(2) }), true);
    assert.equal(db.prepare('SELECT count(*) FROM thread_answers').pluck().get(), 1);
  } finally {
    db.close();
  }
});

test('a deleted mailbox leaves no kept answer behind', async () => {
  const s = await restart();
  const c = await session(s, 'Big');
  for (const alg of ALGS) await checkedAll(c, alg);
  await written(s, ALGS.length);
  assert.equal(keptRows(big).length, ALGS.length);
  assert.match((await c.command('SELECT Small')).tagged, /OK/);
  assert.match((await c.command('DELETE Big')).tagged, /OK/);
  await c.close();
  assert.deepEqual(keptRows(big), [], 'dropped with the mailbox (a later mailbox given its row id starts without them)');
  assert.deepEqual(s.errors, []);
});
