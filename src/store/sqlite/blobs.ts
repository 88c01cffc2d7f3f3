// Message bodies as files: <dataDir>/blobs/<xx>/<yy>/<id>, where xx and yy
// are hex of id / 65536 and (id / 256) % 256, so ids handed out together
// share a directory and a crashed writer's block can be scanned cheaply.
//
// Write protocol (APPEND is acknowledged only after it is durable):
// temp file in <dataDir>/tmp -> fdatasync -> rename into place -> fsync the
// directory (and a new directory's parent) -> only then does the caller
// commit the SQLite transaction that references the blob.

import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { BodyReader } from './body-reads.js';
import { BodyCache } from './body-cache.js';
import path from 'node:path';
import { StoreError, type LeasedBytes, type MessageBody } from '../types.js';
import type { MimePart } from '../../mime/index.js';

/** Default chunk size of MessageBody.stream. */
export const STREAM_CHUNK_SIZE = 64 * 1024;
/** Files written at once by one append (bounded so a big batch does not exhaust file descriptors). */
const WRITE_CONCURRENCY = 16;

/** Owners of the store instances open in this process; see isOwnerDead. */
const LIVE_OWNERS = new Set<string>();

export function newOwner(): string {
  const owner = `${process.pid}-${randomBytes(6).toString('hex')}`;
  LIVE_OWNERS.add(owner);
  return owner;
}

export function releaseOwner(owner: string): void {
  LIVE_OWNERS.delete(owner);
}

/**
 * Whether the writer that owned a temp file or an id block is gone: another
 * store instance of this process that was closed, or a process that no
 * longer exists. (A pid reused by an unrelated process only delays cleanup.)
 */
export function isOwnerDead(owner: string): boolean {
  const pid = Number(owner.split('-', 1)[0]);
  if (!Number.isSafeInteger(pid) || pid <= 0) return true;
  if (pid === process.pid) return !LIVE_OWNERS.has(owner);
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}

export class BlobFiles {
  readonly blobDir: string;
  readonly tmpDir: string;
  private readonly knownDirs = new Set<string>();
  /**
   * Set by the store: whether blob `id` is still referenced. A body file
   * missing while referenced is damage (CORRUPT, logged with a log id and
   * reported by doctor), not an expunge race (EXPUNGEISSUED).
   */
  isReferenced: ((id: number) => boolean) | null = null;

  constructor(
    dataDir: string,
    /** false with synchronous=NORMAL: survive a crash of the process, not of the machine. */
    private readonly durable: boolean,
    readonly owner: string,
    /** Recently appended and read bodies (body-cache.ts); the default keeps BODY_CACHE_BYTES. */
    readonly cache: BodyCache = new BodyCache(),
  ) {
    this.blobDir = path.join(dataDir, 'blobs');
    this.tmpDir = path.join(dataDir, 'tmp');
  }

  async init(): Promise<void> {
    await fs.mkdir(this.blobDir, { recursive: true });
    await fs.mkdir(this.tmpDir, { recursive: true });
  }

  dirOf(id: number): string {
    return path.join(this.blobDir, hex2(Math.floor(id / 65536)), hex2(Math.floor(id / 256) % 256));
  }

  pathOf(id: number): string {
    return path.join(this.dirOf(id), String(id));
  }

  /** Writes every body durably under its id; on failure removes what it wrote and rethrows. */
  async writeAll(ids: readonly number[], data: readonly Buffer[]): Promise<void> {
    const dirs = new Set<string>();
    const syncs: Promise<void>[] = [];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < ids.length) {
        const i = next++;
        await this.writeOne(ids[i]!, data[i]!, dirs, syncs);
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(WRITE_CONCURRENCY, ids.length) }, worker));
      // The files' data and their directory entries are synced at once, not one after the other
      // (an APPEND's OK waited for three syncs in a row, with the WAL's): see writeOne.
      if (this.durable) syncs.push(...[...dirs].map((d) => fsyncDir(d)));
      const failed = (await Promise.allSettled(syncs)).find((r) => r.status === 'rejected');
      if (failed) throw (failed as PromiseRejectedResult).reason;
    } catch (err) {
      await Promise.allSettled(syncs);
      await this.unlinkAll(ids);
      throw err;
    }
    // A message just appended is the likeliest to be fetched next (the newest of a list, a client's
    // own sent copy). Copied: the caller's buffer may be a view of a literal's larger one.
    // If the transaction that references them fails, unlinkAll drops them again.
    for (let i = 0; i < ids.length; i++) this.cache.put(ids[i]!, data[i]!, true);
  }

  /**
   * Writes one body and moves it into place; with `durable`, its data sync is left running in
   * `syncs`. The file may reach its place before its data is durable: no row references the body
   * until writeAll has synced both the data and the directory entry, so a crash in between leaves
   * only an unreferenced file in a reservation of a dead owner, which recovery removes (cleanRange).
   */
  private async writeOne(id: number, data: Buffer, dirs: Set<string>, syncs: Promise<void>[]): Promise<void> {
    const dir = this.dirOf(id);
    await this.ensureDir(dir);
    const tmp = path.join(this.tmpDir, `${this.owner}.${id}.tmp`);
    const fh = await fs.open(tmp, 'wx', 0o600);
    let placed = false;
    try {
      let off = 0;
      while (off < data.length) off += (await fh.write(data, off, data.length - off, off)).bytesWritten;
      await fs.rename(tmp, path.join(dir, String(id)));
      placed = true;
      dirs.add(dir);
    } finally {
      if (!placed || !this.durable) await fh.close();
    }
    if (this.durable) syncs.push(fh.datasync().finally(() => fh.close()));
  }

  private async ensureDir(dir: string): Promise<void> {
    if (this.knownDirs.has(dir)) return;
    const top = path.dirname(dir);
    const createdTop = await mkdirIfMissing(top);
    const createdLeaf = await mkdirIfMissing(dir);
    if (this.durable) {
      if (createdTop) await fsyncDir(this.blobDir);
      if (createdLeaf) await fsyncDir(top);
    }
    this.knownDirs.add(dir);
  }

  async unlinkAll(ids: Iterable<number>): Promise<void> {
    const all = [...ids];
    for (const id of all) this.cache.delete(id);
    await Promise.all(all.map((id) => unlinkQuiet(this.pathOf(id))));
  }

  /** Removes temp files left by writers that are gone. */
  async cleanTmp(): Promise<void> {
    for (const name of await fs.readdir(this.tmpDir)) {
      const owner = name.split('.', 1)[0]!;
      if (isOwnerDead(owner)) await unlinkQuiet(path.join(this.tmpDir, name));
    }
  }

  /** Removes files with ids in [start, end) for which `exists(id)` is false. Returns how many. */
  async cleanRange(start: number, end: number, exists: (id: number) => boolean): Promise<number> {
    let removed = 0;
    for (let leaf = Math.floor(start / 256); leaf <= Math.floor((end - 1) / 256); leaf++) {
      const dir = this.dirOf(leaf * 256);
      let names: string[];
      try {
        names = await fs.readdir(dir);
      } catch {
        continue;
      }
      for (const name of names) {
        const id = Number(name);
        if (!/^\d+$/.test(name) || id < start || id >= end || exists(id)) continue;
        this.cache.delete(id);
        await unlinkQuiet(path.join(dir, name));
        removed++;
      }
    }
    return removed;
  }

  body(id: number, size: number, structure: MimePart | null = null, header: Buffer | null = null): MessageBody {
    return new FileBody(this, id, size, structure, header);
  }

  /** Whole-body reads in batches on a thread of their own (body-reads.ts), started at the first. */
  private readonly reader = new BodyReader();

  /**
   * The whole body `id` of `size` bytes, or null when its file is gone and no
   * message references it (expunged). Read on the body-reading thread: a
   * FileHandle's open/read/close here cost the event loop more than anything
   * else in a POP3 download (issue 17).
   */
  async readWhole(id: number, size: number): Promise<Buffer | null> {
    // A cached body is used, but a download does not fill the cache (it would push out the hot set).
    const hit = this.cache.fits(size) ? this.cache.get(id) : undefined;
    if (hit && hit.length === size) return hit;
    const file = this.pathOf(id);
    const r = await this.reader.read(file, size);
    if (typeof r !== 'string') return r;
    return this.readFailed(id, file, r);
  }

  /**
   * Bytes [start, end) of body `id` in memory lent from the body reader's
   * slabs (release() once written out), or null when its file is gone and no
   * message references it (expunged). POP3's RETR (issue 17).
   */
  async lend(id: number, start: number, end: number): Promise<LeasedBytes | null> {
    const file = this.pathOf(id);
    const r = await this.reader.lend(file, start, end - start);
    if (typeof r !== 'string') return r;
    return this.readFailed(id, file, r);
  }

  private readFailed(id: number, file: string, r: string): null {
    if (r === 'ENOENT') {
      if (this.isReferenced?.(id)) throw new StoreError('CORRUPT', `message body file ${file} is missing (quire doctor reports it; restore it from a backup)`);
      return null;
    }
    if (r === 'SHORT') throw new StoreError('CORRUPT', 'message body is shorter than recorded');
    throw new StoreError('UNAVAILABLE', `cannot read message body: ${r}`);
  }

  /**
   * `length` bytes of body `id` from `start` (at most THREAD_READ_MAX), read on
   * the body-reading thread: one message to it and back instead of three
   * thread-pool trips through a FileHandle (open, read, close were ~9% of a
   * worker's busy time under the mixed load; BENCHMARKS.md "Where the CPU goes").
   */
  async readRange(id: number, start: number, length: number): Promise<Buffer> {
    const file = this.pathOf(id);
    const r = await this.reader.read(file, length, start);
    if (typeof r !== 'string') return r;
    if (r === 'ENOENT') {
      if (this.isReferenced?.(id)) throw new StoreError('CORRUPT', `message body file ${file} is missing (quire doctor reports it; restore it from a backup)`);
      throw new StoreError('EXPUNGEISSUED', 'message was expunged');
    }
    if (r === 'SHORT') throw new StoreError('CORRUPT', 'message body is shorter than recorded');
    throw new StoreError('UNAVAILABLE', `cannot read message body: ${r}`);
  }

  /**
   * The whole body `id` of `size` bytes (at most the cache's entry limit), from
   * the cache or read and kept there. A body of the wrong length is never kept
   * (the read fails CORRUPT first).
   */
  async readCached(id: number, size: number): Promise<Buffer> {
    const hit = this.cache.get(id);
    if (hit && hit.length === size) return hit;
    const whole = await this.readRange(id, 0, size);
    this.cache.put(id, whole);
    return whole;
  }

  /** Stops the body-reading thread. */
  close(): Promise<void> {
    return this.reader.close();
  }
}

/**
 * Reads of at most this many bytes go to the body-reading thread (FETCH of a
 * message, a header, a part); bigger ones stream through a FileHandle here,
 * so one big read never holds up the thread's queue of small ones.
 */
export const THREAD_READ_MAX = 256 * 1024;

class FileBody implements MessageBody {
  constructor(
    private readonly files: BlobFiles,
    private readonly id: number,
    readonly size: number,
    readonly structure: MimePart | null,
    readonly header: Buffer | null,
  ) {}

  /** The body's file, worked out only when read (a message list never reads it). */
  private get file(): string {
    return this.files.pathOf(this.id);
  }

  async read(start: number, end: number): Promise<Buffer> {
    const [s, e] = this.clamp(start, end);
    if (e <= s) return Buffer.alloc(0);
    // Small bodies are read whole once and kept (body-cache.ts): a later part, header or BODY[] is a view.
    if (this.files.cache.fits(this.size) && this.size <= THREAD_READ_MAX) {
      const whole = await this.files.readCached(this.id, this.size);
      return s === 0 && e === whole.length ? whole : whole.subarray(s, e);
    }
    if (e - s <= THREAD_READ_MAX) return this.files.readRange(this.id, s, e - s);
    const fh = await openBody(this.file, () => this.files.isReferenced?.(this.id) ?? false);
    try {
      return await readRange(fh, s, e - s);
    } finally {
      await fh.close();
    }
  }

  async *stream(start = 0, end = this.size, chunkSize = STREAM_CHUNK_SIZE): AsyncIterable<Buffer> {
    const [s, e] = this.clamp(start, end);
    if (e <= s) return;
    const step = Math.max(1, Math.floor(chunkSize));
    const fh = await openBody(this.file, () => this.files.isReferenced?.(this.id) ?? false);
    try {
      for (let pos = s; pos < e; pos += step) yield await readRange(fh, pos, Math.min(step, e - pos));
    } finally {
      await fh.close();
    }
  }

  private clamp(start: number, end: number): [number, number] {
    const s = Math.max(0, Math.min(Math.floor(start), this.size));
    const e = Math.max(s, Math.min(Math.floor(end), this.size));
    return [s, e];
  }
}

async function openBody(file: string, referenced: () => boolean): Promise<fs.FileHandle> {
  try {
    return await fs.open(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      if (referenced()) throw new StoreError('CORRUPT', `message body file ${file} is missing (quire doctor reports it; restore it from a backup)`);
      throw new StoreError('EXPUNGEISSUED', 'message was expunged');
    }
    throw new StoreError('UNAVAILABLE', `cannot read message body: ${(err as Error).message}`);
  }
}

async function readRange(fh: fs.FileHandle, pos: number, length: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(buf, got, length - got, pos + got);
    if (bytesRead === 0) throw new StoreError('CORRUPT', 'message body is shorter than recorded');
    got += bytesRead;
  }
  return buf;
}

async function mkdirIfMissing(dir: string): Promise<boolean> {
  try {
    await fs.mkdir(dir);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await fs.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function unlinkQuiet(file: string): Promise<void> {
  try {
    await fs.unlink(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
