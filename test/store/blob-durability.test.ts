// The order in which an APPEND to the SQLite store makes a body durable, seen
// by strace: the body's data and its directory entry are both synced (they may
// overlap: no row references the body until both returned, and a crash
// between them leaves an unreferenced file in a dead owner's reservation,
// which recovery removes) before the first WAL write of the transaction that
// references it, and the WAL is synced before APPEND resolves.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SqliteMailStore } from '../../src/store/sqlite/store.js';
import { traceLines } from '../helpers/strace.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const CHILD = path.join(here, 'fixtures', 'sqlite-append-once.ts');
const haveStrace = spawnSync('sh', ['-c', 'command -v strace']).status === 0;
if (!haveStrace && process.env.CI) throw new Error('strace missing (apt-get install strace)');

test('APPEND: body data and directory entry synced before the WAL write that references them; WAL synced before it resolves', { skip: !haveStrace && 'strace not installed' }, async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'quire-blobsync-'));
  try {
    const s = await SqliteMailStore.open({ dataDir: dir, synchronous: 'FULL' });
    const u = await s.createUser('u', 'h');
    const box = await s.createMailbox(u.id, 'INBOX');
    // A first message, so that the blob directories exist and the traced APPEND creates none.
    await s.appendMessages(box.id, [{ data: Buffer.from('Subject: first\r\n\r\nx\r\n'), flags: [] }]);
    await s.close();
    const trace = path.join(dir, 'strace.txt');
    const r = spawnSync('strace', ['-f', '-qq', '-s', '256', '-o', trace, '-e', 'trace=openat,fsync,fdatasync,rename,renameat,renameat2,pwrite64,write',
      process.execPath, '--import', 'tsx', CHILD, dir, String(box.id)], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^UID 2$/m);
    const { lines, done, at } = traceLines(await readFile(trace, 'utf8'));
    const fdOf = (i: number) => /= (\d+)$/.exec(lines[done(i)]!)![1]!;
    /** The path file descriptor `fd` named at line i (descriptors are reused: the latest openat that returned it). */
    const pathAt = (fd: string, i: number) => {
      for (let k = i; k >= 0; k--) {
        const m = /openat\(AT_FDCWD, "([^"]+)"/.exec(lines[k]!);
        if (m && fdOf(k) === fd && done(k) <= i) return m[1]!;
      }
      return '';
    };
    /** The first sync at or after `from` of a descriptor naming a path that `test` accepts. */
    const syncOf = (test: (p: string) => boolean, from: number) =>
      lines.findIndex((l, k) => {
        if (k < from) return false;
        const m = /^\d+ +f(?:data)?sync\((\d+)/.exec(l);
        return m !== null && test(pathAt(m[1]!, k));
      });

    const tmpOpen = at(/openat\(AT_FDCWD, "[^"]*\/tmp\/[^"]*\.tmp", O_WRONLY\|O_CREAT\|O_EXCL/);
    assert.ok(tmpOpen >= 0, 'the body is written to a temporary file');
    const tmpPath = /"([^"]+)"/.exec(lines[tmpOpen]!)![1]!;
    const ren = at(/rename(at2?)?\(.*\.tmp", .*\/blobs\/[0-9a-f]+\/[0-9a-f]+\/\d+"/, tmpOpen);
    assert.ok(ren > tmpOpen, 'and moved to its place');
    const blobDir = path.dirname(/, "([^"]+)"/.exec(lines[ren]!)![1]!);
    const bodySync = syncOf((p) => p === tmpPath, tmpOpen);
    assert.ok(bodySync > tmpOpen, 'its data is synced');
    const dirSync = syncOf((p) => p === blobDir, ren);
    assert.ok(dirSync > ren, 'its directory is synced after the move');
    const walWrite = lines.findIndex((l, k) => {
      const m = k > tmpOpen ? /^\d+ +pwrite64\((\d+),/.exec(l) : null;
      return m !== null && pathAt(m[1]!, k).endsWith('/quire.sqlite3-wal');
    });
    assert.ok(walWrite > done(bodySync) && walWrite > done(dirSync), `the transaction is written only after both syncs returned (lines ${tmpOpen} ${bodySync} ${dirSync} ${walWrite})`);
    const walSync = syncOf((p) => p.endsWith('/quire.sqlite3-wal'), walWrite);
    assert.ok(walSync > walWrite, 'and the WAL is synced');
    const ack = at(/write\(1, "UID 2/, walWrite);
    assert.ok(ack > done(walSync), `before APPEND resolves (lines ${walWrite} ${walSync} ${ack})`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
