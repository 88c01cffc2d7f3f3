// Message bodies on a filesystem path shared by the nodes (NFS, CephFS, a
// local disk for one node), behind the PostgreSQL store's BlobStore
// interface (postgres/blobs.ts): the metadata row (`blobs`) stays in
// PostgreSQL, the bytes go to one file per body, named by the blob id
// (`<path>/<shard>/<id>`, shard = id / FS_SHARD_FILES in hex, so no directory
// holds more than FS_SHARD_FILES files). Ids come from the `blobs` id
// sequence, which never hands one out twice, so a name is never reused for
// other bytes.
//
// Durability: put() runs inside the writer's transaction, before COMMIT:
// the bytes go to a temporary file in the shard directory, which is fsynced,
// renamed to its name and the directory fsynced (and a new shard directory's
// parent too). Only then does the transaction go on to commit the metadata,
// so an APPEND acknowledged to a client has its bytes on stable storage.
// A crash or rollback before COMMIT leaves a file no row refers to (an
// orphan); expunged bodies, whose rows go in the expunging transaction,
// leave their files too. sweep() removes both: every file (and temporary
// file) older than the grace period whose id has no `blobs` row; the store
// runs it every FS_SWEEP_MS on each node (postgres/store.ts) and
// `PgMailStore.sweepBlobs()` runs it at once. A body read after its
// message was expunged and before the sweep may still be served (RFC 2180
// §4.1.1 allows either answer); once the file is gone it reads as
// EXPUNGEISSUED, as a PostgreSQL-held body does.
//
// A marker file (FS_MARKER) names the database and schema the path belongs
// to; opening it for another store fails, since two stores' ids would
// collide in one directory.
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { BlobStore, Queryable } from './postgres/blobs.js';
import { StoreError } from './types.js';

/** Files per shard directory. */
export const FS_SHARD_FILES = 4096;
/** Orphans (and temporary files) younger than this are left alone: their transaction may still commit. */
export const FS_ORPHAN_GRACE_MS = 60 * 60 * 1000;
/** The marker file at the root of the path. */
export const FS_MARKER = 'quire-blobs.json';
/** Largest single read of a stream (a 50 MB body is never one Buffer on its way out). */
export const FS_READ_CHUNK = 256 * 1024;
/** Shard directories known to exist, remembered at most (then forgotten and re-created as needed). */
const MAX_KNOWN_DIRS = 10_000;
/** Ids asked of the database per query while sweeping. */
const SWEEP_BATCH = 1_000;

const TMP_PREFIX = '.tmp-';

export interface BlobOwner {
  database: string;
  schema: string;
}

export interface SweepResult {
  /** Files removed (orphans and stale temporary files). */
  removed: number;
  /** Files kept (referenced, or too young to judge). */
  kept: number;
}

/** Which of `ids` have a `blobs` row. */
export type LiveIds = (ids: number[]) => Promise<Set<number>>;

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function notFound(err: unknown): boolean {
  return (err as { code?: unknown })?.code === 'ENOENT';
}

export class FsBlobStore implements BlobStore {
  private readonly known = new Set<string>();

  private constructor(readonly root: string) {}

  /**
   * Opens (creating it if need be) the body directory `root` for the store
   * `owner`; fails CANNOT when the path belongs to another store.
   */
  static async open(root: string, owner: BlobOwner): Promise<FsBlobStore> {
    // Every node must name the same directory: a relative path would depend on each one's working directory.
    if (!path.isAbsolute(root)) throw new StoreError('CANNOT', `body directory must be an absolute path, not ${JSON.stringify(root)}`);
    const abs = path.resolve(root);
    try {
      await mkdir(abs, { recursive: true, mode: 0o700 });
      const marker = path.join(abs, FS_MARKER);
      let text: string | null = null;
      try {
        text = await readFile(marker, 'utf8');
      } catch (err) {
        if (!notFound(err)) throw err;
      }
      if (text === null) {
        const s = new FsBlobStore(abs);
        await s.writeDurably(abs, FS_MARKER, Buffer.from(JSON.stringify(owner) + '\n'));
        return s;
      }
      let have: Partial<BlobOwner> = {};
      try {
        have = JSON.parse(text) as Partial<BlobOwner>;
      } catch {
        // reported below
      }
      if (have.database !== owner.database || have.schema !== owner.schema) {
        throw new StoreError('CANNOT', `body directory ${abs} belongs to another store (${FS_MARKER}: ${text.trim().slice(0, 200)}), not database ${owner.database} schema ${owner.schema}`);
      }
      return new FsBlobStore(abs);
    } catch (err) {
      if (err instanceof StoreError) throw err;
      throw new StoreError('UNAVAILABLE', `body directory ${abs}: ${(err as Error).message}`);
    }
  }

  private shardOf(id: number): string {
    return path.join(this.root, Math.floor(id / FS_SHARD_FILES).toString(16).padStart(6, '0'));
  }

  private fileOf(id: number): string {
    if (!Number.isSafeInteger(id) || id <= 0) throw new StoreError('CORRUPT', `invalid blob id ${id}`);
    return path.join(this.shardOf(id), String(id));
  }

  /** temp file, fsync, rename, fsync of the directory. */
  private async writeDurably(dir: string, name: string, data: Buffer): Promise<void> {
    const tmp = path.join(dir, `${TMP_PREFIX}${name}-${randomBytes(6).toString('hex')}`);
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path.join(dir, name));
    await fsyncDir(dir);
  }

  private async ensureShard(dir: string): Promise<void> {
    if (this.known.has(dir)) return;
    const made = await mkdir(dir, { recursive: true, mode: 0o700 });
    // A new directory's entry in the root must be durable too.
    if (made !== undefined) await fsyncDir(this.root);
    if (this.known.size >= MAX_KNOWN_DIRS) this.known.clear();
    this.known.add(dir);
  }

  async put(_tx: Queryable, id: number, data: Buffer): Promise<void> {
    const file = this.fileOf(id);
    const dir = path.dirname(file);
    try {
      await this.ensureShard(dir);
      await this.writeDurably(dir, path.basename(file), data);
    } catch (err) {
      this.known.delete(dir);
      throw new StoreError('UNAVAILABLE', `storing body ${id}: ${(err as Error).message}`);
    }
  }

  /** The size of body `id`'s file, or null when it has none (quire doctor). */
  async sizeOf(id: number): Promise<number | null> {
    try {
      return (await stat(this.fileOf(id))).size;
    } catch (err) {
      if (notFound(err)) return null;
      throw err;
    }
  }

  private async openBody(id: number): Promise<FileHandle> {
    try {
      return await open(this.fileOf(id), 'r');
    } catch (err) {
      if (notFound(err)) throw new StoreError('EXPUNGEISSUED', 'message was expunged');
      throw new StoreError('UNAVAILABLE', `reading body ${id}: ${(err as Error).message}`);
    }
  }

  private static async readAt(fh: FileHandle, into: Buffer, position: number): Promise<void> {
    let done = 0;
    while (done < into.length) {
      const { bytesRead } = await fh.read(into, done, into.length - done, position + done);
      if (bytesRead === 0) throw new StoreError('CORRUPT', 'body file is shorter than its recorded size');
      done += bytesRead;
    }
  }

  async read(id: number, start: number, end: number): Promise<Buffer> {
    if (end <= start) return Buffer.alloc(0);
    const fh = await this.openBody(id);
    try {
      const buf = Buffer.allocUnsafe(end - start);
      await FsBlobStore.readAt(fh, buf, start);
      return buf;
    } finally {
      await fh.close();
    }
  }

  async *stream(id: number, start: number, end: number, chunkSize: number): AsyncIterable<Buffer> {
    if (end <= start) return;
    const step = Math.max(1, Math.min(Math.floor(chunkSize), FS_READ_CHUNK));
    const fh = await this.openBody(id);
    try {
      for (let at = start; at < end; at += step) {
        const buf = Buffer.allocUnsafe(Math.min(step, end - at));
        await FsBlobStore.readAt(fh, buf, at);
        yield buf;
      }
    } finally {
      await fh.close();
    }
  }

  /**
   * Removes files no `blobs` row refers to (and stale temporary files), if
   * older than `graceMs`. Directory by directory, the event loop gets turns
   * between them; a concurrent sweep on another node is harmless.
   * `remove` false only counts (quire doctor without --repair).
   */
  async sweep(live: LiveIds, graceMs = FS_ORPHAN_GRACE_MS, now = Date.now(), remove = true): Promise<SweepResult> {
    const out: SweepResult = { removed: 0, kept: 0 };
    let shards: string[];
    try {
      shards = (await readdir(this.root, { withFileTypes: true })).filter((e) => e.isDirectory() && /^[0-9a-f]{6,}$/.test(e.name)).map((e) => e.name);
    } catch (err) {
      if (notFound(err)) return out;
      throw err;
    }
    // Temporary files of the marker, at the root.
    for (const name of await readdir(this.root)) if (name.startsWith(TMP_PREFIX)) await this.removeIfOld(path.join(this.root, name), graceMs, now, out, remove);
    for (const shard of shards) {
      const dir = path.join(this.root, shard);
      let names: string[];
      try {
        names = await readdir(dir);
      } catch (err) {
        if (notFound(err)) continue;
        throw err;
      }
      const ids: number[] = [];
      for (const n of names) {
        if (n.startsWith(TMP_PREFIX)) await this.removeIfOld(path.join(dir, n), graceMs, now, out, remove);
        else if (/^[1-9]\d{0,15}$/.test(n)) ids.push(Number(n));
      }
      for (let i = 0; i < ids.length; i += SWEEP_BATCH) {
        const batch = ids.slice(i, i + SWEEP_BATCH);
        const alive = await live(batch);
        for (const id of batch) {
          if (alive.has(id)) out.kept++;
          else await this.removeIfOld(path.join(dir, String(id)), graceMs, now, out, remove);
        }
      }
      await new Promise((r) => setImmediate(r));
    }
    return out;
  }

  private async removeIfOld(file: string, graceMs: number, now: number, out: SweepResult, remove: boolean): Promise<void> {
    try {
      const st = await stat(file);
      // A grace of 0 means none: no age check at all. (mtimeMs has a fraction of a millisecond that
      // Date.now() truncates, so a file written in the same millisecond would otherwise look young.)
      if (graceMs > 0 && now - st.mtimeMs < graceMs) {
        out.kept++;
        return;
      }
      if (remove) await unlink(file);
      out.removed++;
    } catch (err) {
      if (!notFound(err)) throw err;
    }
  }
}
