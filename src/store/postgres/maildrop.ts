// MailStore.openMaildrop for the PostgreSQL store: POP3's snapshot at login
// (RFC 1939 §4), as the SQLite store's (src/store/sqlite/maildrop.ts): one
// pass over the mailbox's message rows joined with their bodies' bare-LF
// counts (schema v3-pop3-urlauth), read in UID ranges with a turn for the
// event loop between them (STYLE.md habit 14). Bodies stored before the
// counts existed are counted from their bytes once (a few at a time) and the
// counts kept, so the next login reads none. RETR then reads the body by its
// blob id, with no further lookup of the message row; a body expunged since
// has lost its chunks and reads as gone (EXPUNGEISSUED / null).
import { StoreError, type MaildropSnapshot } from '../types.js';
import { countBareLf } from '../structure.js';
import { FLAG_SEEN } from './schema.js';
import { PgBody, MAX_UID } from './messages.js';
import { PgSortOps } from './sorting.js';

/** Rows per query (then the event loop gets a turn), as the SQLite store's MAILDROP_CHUNK. */
export const PG_MAILDROP_CHUNK = 5000;
/** Bodies stored before bare-LF counts that are counted at once (reads in flight). */
const COUNT_CONCURRENCY = 4;

interface Row {
  uid: number;
  blob_id: number;
  size: number;
  sysflags: number;
  bare_lf: number | null;
}

export abstract class PgMaildropOps extends PgSortOps {
  openMaildrop(mailboxId: number): Promise<MaildropSnapshot> {
    return this.run(async () => {
      await this.existing(this.db, mailboxId);
      const uids: number[] = [];
      const blobIds: number[] = [];
      const stored: number[] = [];
      const sizes: number[] = [];
      const seen: boolean[] = [];
      const unknown: number[] = [];
      for (let after = 0; after < MAX_UID; ) {
        const r = await this.db.query<Row>(
          `SELECT m.uid, m.blob_id, m.size, m.sysflags, b.bare_lf FROM messages m JOIN blobs b ON b.id = m.blob_id
           WHERE m.mailbox_id = $1 AND m.uid > $2 ORDER BY m.uid LIMIT ${PG_MAILDROP_CHUNK}`,
          [mailboxId, after],
        );
        for (const x of r.rows) {
          if (x.bare_lf === null) unknown.push(uids.length);
          uids.push(x.uid);
          blobIds.push(x.blob_id);
          stored.push(x.size);
          sizes.push(x.size + (x.bare_lf ?? 0));
          seen.push((x.sysflags & FLAG_SEEN) !== 0);
        }
        if (r.rows.length < PG_MAILDROP_CHUNK) break;
        after = r.rows[r.rows.length - 1]!.uid;
        await new Promise((res) => setImmediate(res));
      }
      const body = (i: number) => new PgBody(this.blobs, blobIds[i]!, stored[i]!, null, null);
      const readWhole = async (i: number): Promise<Buffer | null> => {
        try {
          return await body(i).read(0, stored[i]!);
        } catch (err) {
          if (err instanceof StoreError && err.kind === 'EXPUNGEISSUED') return null;
          throw err;
        }
      };
      if (unknown.length > 0) {
        const counted: [number, number][] = [];
        let next = 0;
        const worker = async (): Promise<void> => {
          while (next < unknown.length) {
            const i = unknown[next++]!;
            // A body expunged meanwhile stays uncounted: RETR answers -ERR for it anyway.
            const bytes = await readWhole(i).catch(() => null);
            if (!bytes) continue;
            const n = countBareLf(bytes);
            sizes[i] = stored[i]! + n;
            counted.push([blobIds[i]!, n]);
          }
        };
        await Promise.all(Array.from({ length: Math.min(COUNT_CONCURRENCY, unknown.length) }, worker));
        // Kept for the next login (one statement, outside any user's lock: it only fills in a fact of an immutable body).
        if (counted.length > 0) {
          await this.db
            .query('UPDATE blobs b SET bare_lf = c.n FROM unnest($1::bigint[], $2::bigint[]) AS c(id, n) WHERE b.id = c.id AND b.bare_lf IS NULL', [counted.map((c) => c[0]), counted.map((c) => c[1])])
            .catch(() => undefined);
        }
      }
      return { uids, sizes, seen, body, readWhole };
    });
  }
}
