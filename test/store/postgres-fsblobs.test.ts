// The PostgreSQL store with bodies on a filesystem path (src/store/blob-fs.ts):
// the whole MailStore contract suite again with an FsBlobStore, and what
// only this layout has: one file per body (no blob_chunks rows), streamed
// back in bounded pieces; the order of the system calls (strace): body file
// fsynced, renamed, its directory fsynced, then COMMIT; kill -9 of a writer mid-APPEND (every acknowledged
// body's file whole, nothing visible without its file); orphans of
// transactions that never committed and files of expunged bodies removed by
// the sweep (after the grace period only); a path that belongs to another
// store refused; the configuration forms (object and ?blobs= in the URL).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';
import { openPostgresStore, type PgMailStore } from '../../src/store/postgres/index.js';
import { FS_MARKER, FS_SHARD_FILES } from '../../src/store/blob-fs.js';
import { parseStoreConfig, openStore } from '../../src/cli/store-open.js';
import { StoreError, type MailStore } from '../../src/store/types.js';
import { PG_URL, dropSchema, freshSchema, pgSkip } from '../helpers/pg.js';
import { msg, runStoreContract, type StoreHarness } from './contract.js';
import { runBulkContract } from './bulk-contract.js';
import { runMaildropContract } from './keys-maildrop-contract.js';
import { appenderPayload } from './fixtures/pg-payload.js';
import { traceLines } from '../helpers/strace.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const APPENDER = path.join(here, 'fixtures', 'pg-appender.ts');
const APPEND_ONCE = path.join(here, 'fixtures', 'fs-append-once.ts');
const skip = await pgSkip();
const haveStrace = spawnSync('sh', ['-c', 'command -v strace']).status === 0;
if (!haveStrace && process.env.CI) throw new Error('strace missing (apt-get install strace)');
const dirs: string[] = [];
const schemas: string[] = [];
after(async () => {
  for (const s of schemas) await dropSchema(s).catch(() => undefined);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function blobDir(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'quire-fsblobs-'));
  dirs.push(d);
  return path.join(d, 'bodies');
}

async function fresh(): Promise<{ store: PgMailStore; schema: string; dir: string }> {
  const schema = freshSchema('fsblobs');
  schemas.push(schema);
  const dir = blobDir();
  return { store: await openPostgresStore({ url: PG_URL, schema, poolSize: 4, blobsPath: dir }), schema, dir };
}

/** Every body file under `dir` (not the marker, not temporary files). */
function bodyFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .flatMap((e) => readdirSync(path.join(dir, e.name)).filter((n) => /^\d+$/.test(n)).map((n) => path.join(dir, e.name, n)));
}

async function harness(): Promise<StoreHarness> {
  const f = await fresh();
  let store: MailStore = f.store;
  return {
    store,
    reopen: async () => {
      await store.close();
      store = await openPostgresStore({ url: PG_URL, schema: f.schema, poolSize: 4, blobsPath: f.dir });
      return store;
    },
    cleanup: async () => {
      await store.close();
    },
  };
}

runStoreContract('postgres with bodies in files', harness, { skip });
// Copies between stores (quire migrate) and POP3's maildrop read bodies back through the BlobStore too.
runBulkContract('postgres with bodies in files', harness, { skip });
runMaildropContract('postgres with bodies in files', harness, { skip });

describe('postgres store, bodies in files', { skip }, () => {
  test('one file per body, none in blob_chunks; streamed in bounded pieces byte for byte; the shard layout', async () => {
    const { store, dir, schema } = await fresh();
    try {
      const u = await store.createUser('u', 'h');
      const box = await store.createMailbox(u.id, 'INBOX');
      const body = Buffer.alloc(700_000);
      for (let i = 0; i < body.length; i++) body[i] = (i * 7 + 13) & 0xff;
      const data = Buffer.concat([Buffer.from('Subject: big\r\n\r\n'), body]);
      await store.appendMessages(box.id, [{ data, flags: [] }, { data: msg(2, 'small'), flags: [] }]);
      assert.equal((await store.pool.query('SELECT count(*)::int AS n FROM blob_chunks')).rows[0].n, 0, 'no body bytes in PostgreSQL');
      const files = bodyFiles(dir);
      assert.equal(files.length, 2);
      const ids = (await store.pool.query<{ id: number }>('SELECT id FROM blobs ORDER BY id')).rows.map((r) => r.id);
      for (const id of ids) assert.ok(existsSync(path.join(dir, Math.floor(id / FS_SHARD_FILES).toString(16).padStart(6, '0'), String(id))));
      assert.ok(readFileSync(files.find((f) => statSync(f).size === data.length)!).equals(data), 'the file holds the message as appended');
      assert.equal(JSON.parse(readFileSync(path.join(dir, FS_MARKER), 'utf8')).schema, schema);
      const m = (await store.openMessage(box.id, 1))!;
      const pieces: Buffer[] = [];
      for await (const p of m.stream(100, data.length - 5, 100_000)) {
        assert.ok(p.length <= 100_000);
        pieces.push(p);
      }
      assert.ok(Buffer.concat(pieces).equals(data.subarray(100, data.length - 5)));
      assert.ok((await m.read(5, 300_000)).equals(data.subarray(5, 300_000)));
      // EMAILID: the same body copied is the same file (no second one).
      const dst = await store.createMailbox(u.id, 'Copy');
      await store.copyMessages(box.id, [1], dst.id);
      assert.equal(bodyFiles(dir).length, 2);
    } finally {
      await store.close();
    }
  });

  test('orphans: a failed APPEND leaves an invisible file; the sweep removes it and expunged bodies once past the grace period, never a live one', async () => {
    const { store, dir } = await fresh();
    try {
      const u = await store.createUser('u', 'h');
      const box = await store.createMailbox(u.id, 'INBOX');
      await store.appendMessages(box.id, [{ data: msg(1, 'keep'), flags: [] }, { data: msg(2, 'expunge me'), flags: [] }]);
      // The body is written (before the user's row is locked), then the quota check in the transaction fails: rolled back.
      await store.setQuota(u.id, { messages: 2 });
      await assert.rejects(store.appendMessages(box.id, [{ data: msg(3, 'orphan'), flags: [] }]), (e) => e instanceof StoreError && e.kind === 'OVERQUOTA');
      assert.equal(bodyFiles(dir).length, 3, 'the rolled back APPEND left its file');
      assert.deepEqual(await store.listUids(box.id), [1, 2], 'and nothing visible');
      await store.storeFlags(box.id, [2], 'add', ['\\Deleted']);
      await store.expunge(box.id);
      const before = bodyFiles(dir).length;
      assert.equal(before, 3, 'the expunged body\'s file is still there until the sweep');
      // Within the grace period nothing goes (a transaction may still commit it).
      assert.deepEqual(await store.sweepBlobs(), { removed: 0, kept: before });
      writeFileSync(path.join(path.dirname(bodyFiles(dir)[0]!), '.tmp-999-abcdef'), 'half');
      const r = (await store.sweepBlobs(0))!;
      assert.equal(r.kept, 1);
      assert.equal(r.removed, 3, 'the orphan, the expunged body\'s file and the stale temporary file');
      assert.equal(bodyFiles(dir).length, 1);
      const m = (await store.openMessage(box.id, 1))!;
      assert.ok((await m.read(0, m.size)).equals(msg(1, 'keep')), 'the live body is untouched');
    } finally {
      await store.close();
    }
  });

  test('kill -9 of a writer mid-APPEND: every acknowledged message is there byte for byte, every visible one has its whole file', async () => {
    const { store, schema, dir } = await fresh();
    try {
      const u = await store.createUser('alice', 'h');
      const box = await store.createMailbox(u.id, 'INBOX');
      const child = spawn(process.execPath, ['--import', 'tsx', APPENDER, `${PG_URL}?blobs=${encodeURIComponent(dir)}`, schema, String(box.id), 'forever'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise((r) => child.on('close', r));
      const deadline = Date.now() + 20_000;
      while ((out.match(/^ACK /gm)?.length ?? 0) < 12 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 40)));
      child.kill('SIGKILL');
      await exited;
      const acks = [...out.matchAll(/^ACK (\d+) (\d+)$/gm)].map((m) => ({ uid: Number(m[1]), i: Number(m[2]) }));
      assert.ok(acks.length >= 12, out);
      for (const a of acks) {
        const body = await store.openMessage(box.id, a.uid);
        assert.ok(body, `acknowledged UID ${a.uid} exists`);
        assert.ok((await body.read(0, body.size)).equals(appenderPayload(String(child.pid), a.i)), `UID ${a.uid} byte for byte`);
      }
      for (const m of await store.listMessages(box.id)) {
        const body = (await store.openMessage(box.id, m.uid))!;
        assert.equal((await body.read(0, body.size)).length, m.size, `UID ${m.uid} whole`);
      }
      assert.equal(await store.pool.query('SELECT 1 FROM blobs').then((r) => r.rowCount), (await store.listMessages(box.id)).length, 'no body row without its message');
    } finally {
      await store.close();
    }
  });

  test('durability order, seen by strace: temporary file written and fsynced, renamed, directory fsynced, and only then COMMIT sent', { skip: !haveStrace && 'strace not installed' }, async () => {
    const { store, schema, dir } = await fresh();
    const u = await store.createUser('u', 'h');
    const box = await store.createMailbox(u.id, 'INBOX');
    await store.close();
    const trace = path.join(path.dirname(dir), 'strace.txt');
    const r = spawnSync('strace', ['-f', '-qq', '--seccomp-bpf', '-s', '256', '-o', trace, '-e', 'trace=openat,fsync,fdatasync,rename,renameat,renameat2,write,writev,sendto',
      process.execPath, '--import', 'tsx', APPEND_ONCE, PG_URL, schema, dir, String(box.id)], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^UID 1$/m);
    const { lines, done, at } = traceLines(readFileSync(trace, 'utf8'));
    const esc = (x: string) => x.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const tmpOpen = at(new RegExp(`openat\\(AT_FDCWD, "${esc(dir)}/[0-9a-f]{6}/\\.tmp-\\d+-[0-9a-f]+", O_WRONLY\\|O_CREAT\\|O_EXCL`));
    assert.ok(tmpOpen >= 0, 'the body goes to a temporary file first');
    const tmpFd = /= (\d+)$/.exec(lines[done(tmpOpen)]!)![1];
    const tmpSync = at(new RegExp(`^\\d+ +f(data)?sync\\(${tmpFd}[,)<]|^\\d+ +f(data)?sync\\(${tmpFd} `), tmpOpen);
    assert.ok(tmpSync > tmpOpen, 'the temporary file is fsynced');
    const ren = at(/rename(at2?)?\(.*\.tmp-\d+-[0-9a-f]+", .*\/1"/, tmpSync);
    assert.ok(ren > done(tmpSync), 'renamed to its name after the fsync returned');
    const dirOpen = at(new RegExp(`openat\\(AT_FDCWD, "${esc(dir)}/[0-9a-f]{6}", O_RDONLY`), ren);
    assert.ok(dirOpen > ren, 'then the directory is opened');
    const dirFd = /= (\d+)$/.exec(lines[done(dirOpen)]!)![1];
    const dirSync = at(new RegExp(`^\\d+ +f(data)?sync\\(${dirFd}`), dirOpen);
    assert.ok(dirSync > dirOpen, 'and fsynced');
    const commit = at(/(write|writev|sendto)\(.*COMMIT/, tmpOpen);
    assert.ok(commit > done(dirSync), `COMMIT is sent only after the directory's fsync returned (lines ${tmpOpen} ${tmpSync} ${ren} ${dirSync} ${commit})`);
    const again = await openPostgresStore({ url: PG_URL, schema, blobsPath: dir });
    try {
      const m = (await again.openMessage(box.id, 1))!;
      assert.equal((await m.read(0, m.size)).toString(), 'Subject: traced\r\n\r\nthe traced body\r\n');
    } finally {
      await again.close();
    }
  });

  test('a path that belongs to another store is refused; a relative one too', async () => {
    const a = await fresh();
    await a.store.close();
    const other = freshSchema('fsblobs');
    schemas.push(other);
    await assert.rejects(openPostgresStore({ url: PG_URL, schema: other, blobsPath: a.dir }), (e) => e instanceof StoreError && e.kind === 'CANNOT' && /belongs to another store/.test(e.message));
    await assert.rejects(openPostgresStore({ url: PG_URL, schema: other, blobsPath: 'relative/bodies' }), (e) => e instanceof StoreError && e.kind === 'CANNOT');
    const again = await openPostgresStore({ url: PG_URL, schema: a.schema, blobsPath: a.dir });
    await again.close();
  });

  test('configuration: {"blobs": {"kind": "fs", "path"}} and ?blobs= in the URL reach the same files', async () => {
    assert.throws(() => parseStoreConfig({ kind: 'postgres', url: PG_URL, blobs: { kind: 's3', path: '/x' } }), /blobs.kind/);
    assert.throws(() => parseStoreConfig({ kind: 'postgres', url: PG_URL, blobs: { kind: 'fs', path: 'rel' } }), /absolute/);
    const schema = freshSchema('fsblobs');
    schemas.push(schema);
    const dir = blobDir();
    const cfg = parseStoreConfig({ kind: 'postgres', url: `${PG_URL}?schema=${schema}`, blobs: { kind: 'fs', path: dir } });
    const a = await openStore({ data: tmpdir(), store: cfg });
    const u = await a.createUser('u', 'h');
    const box = await a.createMailbox(u.id, 'INBOX');
    await a.appendMessages(box.id, [{ data: msg(1, 'via config'), flags: [] }]);
    await a.close();
    assert.equal(bodyFiles(dir).length, 1);
    const b = await openStore({ data: tmpdir(), store: `${PG_URL}?schema=${schema}&blobs=${encodeURIComponent(dir)}` });
    const m = (await b.openMessage(box.id, 1))!;
    assert.ok((await m.read(0, m.size)).equals(msg(1, 'via config')));
    await b.close();
  });
});
