// Message bodies of the PostgreSQL store behind a small interface, so that a
// shared filesystem path (NFS, a mounted object store) could keep them
// instead: the metadata row (blobs) always lives in PostgreSQL, the bytes
// wherever the BlobStore puts them.
//
// PgBlobStore, the default, keeps the bytes in blob_chunks rows of
// BLOB_CHUNK_SIZE, written inside the writer's transaction (so a body is
// visible exactly when the message row that references it commits: a crash
// mid-APPEND leaves nothing behind) and read back a chunk at a time, so a
// 50 MB message is never one Buffer on its way out.
import type pg from 'pg';
import { StoreError } from '../types.js';

/** Bytes per blob_chunks row: large enough for few rows per message, small enough to stream. */
export const BLOB_CHUNK_SIZE = 256 * 1024;

/** Anything that runs a query: a pool (reads) or the writer's transaction client. */
export interface Queryable {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

export interface BlobStore {
  /** Stores the bytes of blob `id` inside the caller's transaction `tx`. */
  put(tx: Queryable, id: number, data: Buffer): Promise<void>;
  /** Bytes [start, end) of blob `id` (already clamped to its size). */
  read(id: number, start: number, end: number): Promise<Buffer>;
  /** Bytes [start, end) in pieces of at most `chunkSize`. */
  stream(id: number, start: number, end: number, chunkSize: number): AsyncIterable<Buffer>;
}

export class PgBlobStore implements BlobStore {
  constructor(private readonly db: Queryable) {}

  async put(tx: Queryable, id: number, data: Buffer): Promise<void> {
    // One row per chunk, a few chunks per statement (bounded parameter size).
    const PER_STATEMENT = 4;
    const n = Math.max(1, Math.ceil(data.length / BLOB_CHUNK_SIZE));
    for (let first = 0; first < n; first += PER_STATEMENT) {
      const values: unknown[] = [];
      const rows: string[] = [];
      for (let i = first; i < Math.min(n, first + PER_STATEMENT); i++) {
        values.push(i, data.subarray(i * BLOB_CHUNK_SIZE, (i + 1) * BLOB_CHUNK_SIZE));
        rows.push(`($1, $${values.length}, $${values.length + 1})`);
      }
      await tx.query(`INSERT INTO blob_chunks (blob_id, seq, data) VALUES ${rows.join(', ')}`, [id, ...values]);
    }
  }

  async read(id: number, start: number, end: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const p of this.stream(id, start, end, end - start)) parts.push(p);
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  async *stream(id: number, start: number, end: number, chunkSize: number): AsyncIterable<Buffer> {
    if (end <= start) return;
    const step = Math.max(1, Math.floor(chunkSize));
    let pending: Buffer[] = [];
    let pendingLen = 0;
    const firstChunk = Math.floor(start / BLOB_CHUNK_SIZE);
    const lastChunk = Math.floor((end - 1) / BLOB_CHUNK_SIZE);
    for (let c = firstChunk; c <= lastChunk; c++) {
      const r = await this.db.query<{ data: Buffer }>('SELECT data FROM blob_chunks WHERE blob_id = $1 AND seq = $2', [id, c]);
      if (r.rowCount === 0) throw new StoreError('EXPUNGEISSUED', 'message was expunged');
      const base = c * BLOB_CHUNK_SIZE;
      const piece = r.rows[0]!.data.subarray(Math.max(0, start - base), Math.min(BLOB_CHUNK_SIZE, end - base));
      pending.push(piece);
      pendingLen += piece.length;
      while (pendingLen >= step) {
        const all = pending.length === 1 ? pending[0]! : Buffer.concat(pending);
        yield all.subarray(0, step);
        const rest = all.subarray(step);
        pending = rest.length ? [rest] : [];
        pendingLen = rest.length;
      }
    }
    if (pendingLen > 0) yield pending.length === 1 ? pending[0]! : Buffer.concat(pending);
  }
}
