// The PostgreSQL store's THREADID layer (RFC 8474 §5.2; rules in
// threadids.ts): THREADIDs for FETCH, assigned durably before they are first
// reported when a body has none yet (stored before migration v4-thread-ids),
// and a background pass over such bodies, a batch per user transaction.
import { PgUrlAuthKeyOps } from './urlauth-keys.js';
import { assignThreadIds, PG_THREAD_ID_BACKFILL_BATCH } from './threadids.js';
import { threadIdOf } from '../objectid.js';

export abstract class PgThreadIdOps extends PgUrlAuthKeyOps {
  /** RFC 8474 §5.2: the THREADIDs of these messages by UID ("T" and the thread number). */
  threadIds(mailboxId: number, uids: readonly number[]): Promise<Map<number, string>> {
    return this.run(async () => {
      const out = new Map<number, string>();
      const clean = uids.filter((u) => Number.isSafeInteger(u) && u > 0);
      if (clean.length === 0) return out;
      const r = await this.db.query<{ uid: number; blob_id: number; thread_id: number | null }>(
        'SELECT m.uid, m.blob_id, b.thread_id FROM messages m JOIN blobs b ON b.id = m.blob_id WHERE m.mailbox_id = $1 AND m.uid = ANY($2::bigint[])',
        [mailboxId, clean],
      );
      const missing: { uid: number; blob: number }[] = [];
      for (const row of r.rows) {
        if (row.thread_id !== null) out.set(Number(row.uid), threadIdOf(row.thread_id));
        else missing.push({ uid: Number(row.uid), blob: Number(row.blob_id) });
      }
      if (missing.length > 0) {
        const userId = await this.ownerOf(mailboxId);
        const got = await this.write(userId, (tx) => assignThreadIds(tx, userId, missing.map((m) => m.blob)));
        for (const m of missing) {
          const t = got.get(m.blob);
          if (t !== undefined) out.set(m.uid, threadIdOf(t));
        }
      }
      return out;
    });
  }

  /** One background batch: up to `max` bodies without a thread id, oldest first, each in its owner's write. Returns how many. */
  fillPendingThreadIds(max = PG_THREAD_ID_BACKFILL_BATCH): Promise<number> {
    return this.run(async () => {
      const r = await this.db.query<{ id: number; user_id: number | null }>(
        `SELECT b.id, (SELECT mb.user_id FROM messages m JOIN mailboxes mb ON mb.id = m.mailbox_id WHERE m.blob_id = b.id LIMIT 1) AS user_id
         FROM blobs b WHERE b.thread_id IS NULL ORDER BY b.id LIMIT $1`,
        [max],
      );
      const byUser = new Map<number, number[]>();
      const orphans: number[] = [];
      for (const row of r.rows) {
        if (row.user_id === null) orphans.push(Number(row.id));
        else byUser.set(Number(row.user_id), [...(byUser.get(Number(row.user_id)) ?? []), Number(row.id)]);
      }
      for (const [userId, ids] of byUser) await this.write(userId, (tx) => assignThreadIds(tx, userId, ids));
      // A body no message uses any more (its removal pending) founds a thread of its own.
      if (orphans.length > 0) await this.db.query('UPDATE blobs SET thread_id = id WHERE id = ANY($1::bigint[]) AND thread_id IS NULL', [orphans]);
      return r.rows.length;
    });
  }
}
