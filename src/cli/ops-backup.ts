// `quire backup DIR` and `quire restore DIR`: a consistent copy of a store
// while the server keeps serving, and putting one back.
//
// Consistency: message bodies are files written (and made durable) before
// the SQLite commit that references them, and deleted only after the commit
// that drops the last reference. So:
//   1. copy every body file that exists now;
//   2. take a snapshot of the database with SQLite's online backup API
//      (better-sqlite3 db.backup, all pages in one step: one read
//      transaction, so the copy is the database as of one commit, while the
//      server keeps writing through WAL);
//   3. copy the bodies the snapshot references that appeared after step 1,
//      and drop copies the snapshot does not reference;
//   4. verify: SQLite integrity check of the copy, and every referenced body
//      present with the size the database records.
// A body that was both created after step 1 and deleted before step 3
// cannot be copied; the backup then fails (run it again) rather than be
// silently incomplete.

import Database from 'better-sqlite3';
import { copyFile, mkdir, readdir, rename, rm, stat, writeFile, readFile, cp } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DB_FILE } from '../store/sqlite/index.js';
import { BlobFiles } from '../store/sqlite/blobs.js';
import { describeFsError, LOCK_FILE, OpsError } from './ops-safety.js';

/** Body files copied at once. */
const COPY_CONCURRENCY = 16;
/** Pages per backup step: all of them, so the snapshot is one read transaction (see above). */
const ALL_PAGES = 0x7fffffff;
/** Name of the backup's description file. */
export const MANIFEST = 'quire-backup.json';
/** Files of the data directory besides the store that a backup carries. */
const EXTRA_FILES = ['quire.json'];
const EXTRA_DIRS = ['tls'];

export interface BackupResult {
  dir: string;
  messages: number;
  bodies: number;
  bytes: number;
}

export class BackupError extends OpsError {}

function fsFail(what: string, path: string, err: unknown): never {
  throw new BackupError(`${what} ${path}: ${describeFsError(err as NodeJS.ErrnoException)}`);
}

async function pool<T>(items: T[], fn: (t: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: Math.min(COPY_CONCURRENCY, items.length) }, async () => {
      while (i < items.length) await fn(items[i++]!);
    }),
  );
}

/** Ids of the body files present under <dir>/blobs. */
async function blobIdsOnDisk(blobDir: string): Promise<number[]> {
  const ids: number[] = [];
  const level = async (dir: string): Promise<string[]> => readdir(dir).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? [] : fsFail('cannot read', dir, e)));
  for (const a of await level(blobDir)) {
    for (const b of await level(join(blobDir, a))) {
      for (const f of await level(join(blobDir, a, b))) if (/^\d+$/.test(f)) ids.push(Number(f));
    }
  }
  return ids;
}

async function copyBody(src: BlobFiles, dst: BlobFiles, id: number): Promise<boolean> {
  const from = src.pathOf(id);
  const to = dst.pathOf(id);
  await mkdir(dst.dirOf(id), { recursive: true });
  try {
    await copyFile(from, to);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    fsFail('cannot copy', from, err);
  }
}

/** Checks a store directory: SQLite integrity and every referenced body present with its recorded size. Returns counts. */
export async function verifyStoreDir(dir: string): Promise<{ messages: number; bodies: number; bytes: number }> {
  const dbPath = join(dir, DB_FILE);
  if (!existsSync(dbPath)) throw new BackupError(`${dbPath} does not exist`);
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    const ic = db.pragma('integrity_check', { simple: true });
    if (ic !== 'ok') throw new BackupError(`${dbPath}: SQLite integrity check failed: ${String(ic)}`);
    const blobs = db.prepare('SELECT id, size FROM blobs WHERE refcount > 0 OR id IN (SELECT blob_id FROM messages)').all() as { id: number; size: number }[];
    const messages = (db.prepare('SELECT count(*) AS n FROM messages').get() as { n: number }).n;
    const files = new BlobFiles(dir, false, 'verify');
    const bad: string[] = [];
    let bytes = 0;
    await pool(blobs, async (b) => {
      const s = await stat(files.pathOf(b.id)).catch(() => null);
      if (!s) bad.push(`body ${b.id} missing`);
      else if (s.size !== b.size) bad.push(`body ${b.id} has ${s.size} bytes, the database says ${b.size}`);
      else bytes += s.size;
    });
    if (bad.length) throw new BackupError(`${dir}: ${bad.length} problem(s): ${bad.slice(0, 5).join('; ')}${bad.length > 5 ? '; …' : ''}`);
    return { messages, bodies: blobs.length, bytes };
  } finally {
    db.close();
  }
}

export async function backup(dataDir: string, dest: string, log: (m: string) => void = () => {}): Promise<BackupResult> {
  dataDir = resolve(dataDir);
  dest = resolve(dest);
  const srcDb = join(dataDir, DB_FILE);
  if (!existsSync(srcDb)) throw new BackupError(`no store in ${dataDir} (no ${DB_FILE})`);
  if (dest === dataDir || dest.startsWith(dataDir + '/')) throw new BackupError('the backup directory must be outside the data directory');
  const existing = await readdir(dest).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? null : fsFail('cannot read', dest, e)));
  if (existing && existing.length > 0) throw new BackupError(`${dest} is not empty; back up into a new directory`);
  await mkdir(dest, { recursive: true, mode: 0o700 }).catch((e) => fsFail('cannot create', dest, e));
  // Work in a hidden directory and rename at the end: a half-made backup is never mistaken for one.
  const work = join(dest, '.partial');
  await mkdir(work, { mode: 0o700 }).catch((e) => fsFail('cannot create', work, e));

  const src = new BlobFiles(dataDir, false, 'backup');
  const dst = new BlobFiles(work, false, 'backup');
  // 1. Bodies present now.
  const before = await blobIdsOnDisk(src.blobDir);
  const copied = new Set<number>();
  await pool(before, async (id) => {
    if (await copyBody(src, dst, id)) copied.add(id);
  });
  log(`copied ${copied.size} message bodies`);

  // 2. The database as of one commit.
  const live = new Database(srcDb, { readonly: true, fileMustExist: true });
  try {
    await live.backup(join(work, DB_FILE), { progress: () => ALL_PAGES });
  } catch (err) {
    throw new BackupError(`SQLite backup of ${srcDb} failed: ${(err as Error).message}`);
  } finally {
    live.close();
  }
  log('copied the database');

  // 3. Bodies the snapshot references that appeared since step 1; copies it does not reference go.
  const snap = new Database(join(work, DB_FILE), { fileMustExist: true });
  let referenced: number[];
  try {
    referenced = (snap.prepare('SELECT id FROM blobs WHERE refcount > 0 OR id IN (SELECT blob_id FROM messages)').all() as { id: number }[]).map((r) => r.id);
  } finally {
    snap.close();
  }
  const wanted = new Set(referenced);
  const late = referenced.filter((id) => !copied.has(id));
  const lost: number[] = [];
  await pool(late, async (id) => {
    if (!(await copyBody(src, dst, id))) lost.push(id);
  });
  if (lost.length) throw new BackupError(`${lost.length} message bodies were deleted while the backup ran (messages expunged at that moment); run the backup again`);
  await pool([...copied].filter((id) => !wanted.has(id)), async (id) => {
    await rm(dst.pathOf(id), { force: true });
  });

  for (const f of EXTRA_FILES) if (existsSync(join(dataDir, f))) await copyFile(join(dataDir, f), join(work, f)).catch((e) => fsFail('cannot copy', join(dataDir, f), e));
  for (const d of EXTRA_DIRS) if (existsSync(join(dataDir, d))) await cp(join(dataDir, d), join(work, d), { recursive: true }).catch((e) => fsFail('cannot copy', join(dataDir, d), e));

  // 4. Verify what was written.
  const v = await verifyStoreDir(work);
  await writeFile(join(work, MANIFEST), JSON.stringify({ format: 1, created: new Date().toISOString(), source: dataDir, ...v }, null, 2) + '\n', { mode: 0o600 });
  for (const name of await readdir(work)) await rename(join(work, name), join(dest, name));
  await rm(work, { recursive: true, force: true });
  return { dir: dest, ...v };
}

/** Puts a backup made by `backup` into an empty (or absent) data directory, verified first and after. */
export async function restore(backupDir: string, dataDir: string, log: (m: string) => void = () => {}): Promise<BackupResult> {
  backupDir = resolve(backupDir);
  dataDir = resolve(dataDir);
  if (!existsSync(join(backupDir, MANIFEST))) throw new BackupError(`${backupDir} is not a Quire backup (no ${MANIFEST})`);
  const manifest = JSON.parse(await readFile(join(backupDir, MANIFEST), 'utf8')) as { format?: number };
  if (manifest.format !== 1) throw new BackupError(`${backupDir}: unknown backup format ${String(manifest.format)}`);
  await verifyStoreDir(backupDir);
  log('backup verified');
  if (existsSync(join(dataDir, LOCK_FILE))) throw new BackupError(`${dataDir} has a lock file (${LOCK_FILE}): stop the server first`);
  const existing = await readdir(dataDir).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? null : fsFail('cannot read', dataDir, e)));
  if (existing && existing.some((n) => n === DB_FILE || n === 'blobs')) throw new BackupError(`${dataDir} already holds a store; restore into a new, empty directory (then move it into place)`);
  await mkdir(dataDir, { recursive: true, mode: 0o700 }).catch((e) => fsFail('cannot create', dataDir, e));
  const work = join(dataDir, '.restoring');
  await rm(work, { recursive: true, force: true });
  await cp(backupDir, work, { recursive: true, filter: (s) => !s.endsWith(`/${MANIFEST}`) }).catch((e) => fsFail('cannot copy into', work, e));
  const v = await verifyStoreDir(work);
  for (const name of await readdir(work)) await rename(join(work, name), join(dataDir, name));
  await rm(work, { recursive: true, force: true });
  log('restored');
  return { dir: dataDir, ...v };
}
