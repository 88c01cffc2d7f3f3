// The SQLite store's body cache (src/store/sqlite/body-cache.ts): bounded by
// bytes, no entry over its limit, least recently used out first, an entry
// dropped when its blob's file is unlinked (EXPUNGE), and what it serves is
// byte for byte the file, through the store and over a real server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BodyCache } from '../../src/store/sqlite/body-cache.js';
import { SqliteMailStore } from '../../src/store/sqlite/index.js';
import type { BlobFiles } from '../../src/store/sqlite/blobs.js';
import { startTestServer } from '../helpers/server.js';
import { RawClient } from '../helpers/imap.js';

const blobsOf = (s: unknown) => (s as { blobs: BlobFiles }).blobs;

/** A message of about `size` bytes, CRLF line ends, its number in every line. */
function body(n: number, size: number): Buffer {
  const head = `From: a@example.com\r\nSubject: body ${n}\r\nMessage-ID: <b${n}@example.com>\r\n\r\n`;
  let text = head;
  for (let i = 0; text.length < size; i++) text += `line ${i} of message ${n} ${'x'.repeat(60)}\r\n`;
  return Buffer.from(text);
}

async function files(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) out.push(path.join(e.parentPath, e.name));
  return out;
}

test('BodyCache: bounded by bytes, entries over the limit refused, least recently used evicted first, delete', () => {
  const c = new BodyCache(1000, 300);
  assert.ok(c.enabled);
  c.put(1, Buffer.alloc(300, 1));
  c.put(2, Buffer.alloc(300, 2));
  c.put(3, Buffer.alloc(301, 3));
  assert.equal(c.has(3), false, 'over the entry limit: not kept');
  c.put(4, Buffer.alloc(300, 4));
  assert.equal(c.bytes, 900);
  assert.ok(c.get(1), 'a hit makes 1 the most recently used');
  c.put(5, Buffer.alloc(200, 5));
  assert.equal(c.has(2), false, 'the least recently used left');
  assert.deepEqual([c.has(1), c.has(4), c.has(5)], [true, true, true]);
  assert.ok(c.bytes <= 1000);
  assert.equal(c.bytes, 800);
  // Replacing an entry counts its bytes once.
  c.put(5, Buffer.alloc(100, 5));
  assert.equal(c.bytes, 700);
  c.delete(4);
  assert.equal(c.has(4), false);
  assert.equal(c.bytes, 400);
  c.delete(4);
  assert.equal(c.bytes, 400);
  // A copy is private: the caller's buffer may change afterwards.
  const mine = Buffer.alloc(10, 7);
  c.put(9, mine, true);
  mine.fill(0);
  assert.equal(c.get(9)![0], 7);
  // Off.
  const off = new BodyCache(0);
  off.put(1, Buffer.alloc(1));
  assert.equal(off.enabled, false);
  assert.equal(off.size, 0);
  // Many puts never exceed the bound.
  const r = new BodyCache(4096, 1024);
  for (let i = 0; i < 500; i++) {
    r.put(i, Buffer.alloc((i * 37) % 1025));
    assert.ok(r.bytes <= 4096, `bytes ${r.bytes} after put ${i}`);
  }
});

test('store: a cached body is the file byte for byte, bounded, none over the entry limit, gone after EXPUNGE', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'quire-bodycache-'));
  try {
    const s = await SqliteMailStore.open({ dataDir: dir, synchronous: 'NORMAL', bodyCacheBytes: 64 * 1024, bodyCacheEntryBytes: 16 * 1024 });
    const cache = blobsOf(s).cache;
    const u = await s.createUser('alice', 'x');
    const box = await s.createMailbox(u.id, 'INBOX');
    const sizes = [500, 3_000, 15_000, 17_000, 8_000, 12_000, 2_000, 16_384, 9_000, 14_000];
    const data = sizes.map((n, i) => body(i + 1, n));
    const { uids } = await s.appendMessages(box.id, data.map((d) => ({ data: d, flags: [] })));
    assert.ok(cache.bytes <= 64 * 1024, 'appended bodies kept within the bound');
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < uids.length; i++) {
        const b = (await s.openMessage(box.id, uids[i]!))!;
        const whole = await b.read(0, b.size);
        assert.ok(whole.equals(data[i]!), `message ${i + 1} whole`);
        assert.ok((await b.read(7, 300)).equals(data[i]!.subarray(7, 300)), `message ${i + 1} range`);
        assert.ok(cache.bytes <= 64 * 1024, `bound kept: ${cache.bytes}`);
      }
    }
    assert.ok(cache.hits > 0, 'later reads are served from the cache');
    // The files say the same, and the long bodies were never kept.
    const stored = await files(path.join(dir, 'blobs'));
    assert.equal(stored.length, data.length);
    for (const f of stored) {
      const id = Number(path.basename(f));
      const onDisk = await readFile(f);
      assert.ok(data.some((d) => d.equals(onDisk)));
      if (onDisk.length > 16 * 1024) assert.equal(cache.has(id), false, `blob ${id} of ${onDisk.length} bytes is over the entry limit`);
    }
    // A hot body is cached; after its EXPUNGE the entry and the file are gone.
    const b3 = (await s.openMessage(box.id, uids[2]!))!;
    await b3.read(0, b3.size);
    const cachedIds = stored.map((f) => Number(path.basename(f))).filter((id) => cache.has(id));
    assert.ok(cachedIds.length > 0);
    await s.storeFlags(box.id, uids, 'add', ['\\Deleted']);
    assert.deepEqual(await s.expunge(box.id, uids), uids);
    for (const id of cachedIds) assert.equal(cache.has(id), false, `blob ${id} dropped with its file`);
    for (const f of stored) assert.equal(existsSync(f), false);
    assert.equal(cache.size, 0);
    await s.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('store: bodyCacheBytes 0 keeps nothing and reads every time; a bad value is refused', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'quire-bodycache-'));
  try {
    await assert.rejects(SqliteMailStore.open({ dataDir: dir, synchronous: 'NORMAL', bodyCacheBytes: -1 }), /bodyCacheBytes/);
    const s = await SqliteMailStore.open({ dataDir: dir, synchronous: 'NORMAL', bodyCacheBytes: 0 });
    const u = await s.createUser('alice', 'x');
    const box = await s.createMailbox(u.id, 'INBOX');
    const d = body(1, 4000);
    const { uids } = await s.appendMessages(box.id, [{ data: d, flags: [] }]);
    const b = (await s.openMessage(box.id, uids[0]!))!;
    assert.ok((await b.read(0, b.size)).equals(d));
    assert.equal(blobsOf(s).cache.size, 0);
    await s.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('over a real server: FETCH BODY[] from the cache is the stored file; another session expunges it and the entry leaves', async () => {
  const t = await startTestServer();
  try {
    const a = await RawClient.connect(t.port, { login: ['alice', 'secret-a'] });
    const b = await RawClient.connect(t.port, { login: ['alice', 'secret-a'] });
    await a.command('CREATE Cached');
    const msgs = [body(1, 900), body(2, 20_000), body(3, 5_000)];
    for (const m of msgs) assert.match((await a.append('Cached', m)).tagged, /OK/);
    const cache = blobsOf(t.store).cache;
    await a.command('SELECT Cached');
    await b.command('SELECT Cached');
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < msgs.length; i++) {
        const r = await a.command(`UID FETCH ${i + 1} BODY.PEEK[]`);
        assert.match(r.tagged, /OK/);
        // The literal's lines joined by CRLF are the message (its lines end in CRLF).
        assert.ok(r.raw.includes(`BODY[] {${msgs[i]!.length}}\r\n${msgs[i]!.toString()}`), `message ${i + 1}, round ${round}`);
        const part = await a.command(`UID FETCH ${i + 1} BODY.PEEK[TEXT]<0.40>`);
        const text = msgs[i]!.subarray(msgs[i]!.indexOf('\r\n\r\n') + 4).subarray(0, 40).toString();
        assert.ok(part.raw.includes(`{40}\r\n${text}`), part.raw);
      }
    }
    assert.ok(cache.hits >= msgs.length, `hits ${cache.hits}`);
    const stored = await files(path.join(t.dataDir, 'blobs'));
    for (const f of stored) {
      const id = Number(path.basename(f));
      const onDisk = await readFile(f);
      assert.ok(msgs.some((m) => m.equals(onDisk)));
      assert.ok(cache.has(id), `blob ${id} cached`);
    }
    assert.match((await b.command('UID STORE 2 +FLAGS (\\Deleted)')).tagged, /OK/);
    assert.match((await b.command('UID EXPUNGE 2')).tagged, /OK/);
    const gone = stored.filter((f) => !existsSync(f));
    assert.equal(gone.length, 1);
    assert.equal(cache.has(Number(path.basename(gone[0]!))), false, 'the expunged body left the cache');
    // The first session, not yet told, still gets the other messages' bytes, then learns of the expunge.
    const r = await a.command('UID FETCH 1 BODY.PEEK[]');
    assert.ok(r.raw.includes(msgs[0]!.toString()));
    const n = await a.command('NOOP');
    assert.ok([...r.untagged, ...n.untagged].includes('* 2 EXPUNGE'), r.raw + n.raw);
    await a.command('LOGOUT');
    await b.command('LOGOUT');
  } finally {
    await t.stop();
  }
});
