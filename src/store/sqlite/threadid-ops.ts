// The SQLite store's THREADID layer (RFC 8474 §5.2; the rules are in
// threadids.ts): THREADIDs for FETCH, assigned durably before they are first
// reported when a body has none yet, and the background pass that gives
// bodies stored before schema V_THREAD_IDS theirs.
import { UrlAuthKeyOps } from './urlauth-keys.js';
import { storeThreadKeys } from './threading.js';
import { assignThreadId, THREAD_ID_BACKFILL_BATCH } from './threadids.js';
import { threadIdOf } from '../objectid.js';

/** Pause between backfill batches (the serving thread stays free between them). */
const THREAD_ID_BACKFILL_PAUSE_MS = 20;
/** meta key set once every body stored before V_THREAD_IDS has been looked at. */
const FILLED_KEY = 'thread_ids_filled';

/** THREADID reads and the backfill of bodies stored before V_THREAD_IDS; a layer between the URLAUTH keys and bulk import. */
export abstract class ThreadIdOps extends UrlAuthKeyOps {
  private threadIdTimer: NodeJS.Timeout | null = null;
  /** Next sort_keys blob id the backfill looks at. */
  private threadIdCursor = 0;

  /**
   * RFC 8474 §5.2: the THREADIDs of these messages, by UID; a body without one yet (stored before
   * V_THREAD_IDS, not backfilled) is given it now, durably, before it is reported. Messages whose body has
   * no thread index row at all (stored before the sort keys, not backfilled) are left out (NIL).
   */
  threadIds(mailboxId: number, uids: readonly number[]): Promise<Map<number, string>> {
    return this.run(async () => {
      const out = new Map<number, string>();
      if (uids.length === 0) return out;
      const rows = this.q(
        `SELECT m.uid, m.blob_id, t.thread_id, t.blob_id IS NOT NULL FROM messages m LEFT JOIN thread_keys t ON t.blob_id = m.blob_id
         WHERE m.mailbox_id = ? AND m.uid IN (SELECT value FROM json_each(?))`,
      ).raw().all(mailboxId, JSON.stringify(uids)) as [number, number, number | null, number][];
      const missing: [number, number][] = [];
      for (const [uid, blob, thread, keyed] of rows) {
        if (thread !== null) out.set(uid, threadIdOf(thread));
        else if (keyed) missing.push([uid, blob]);
      }
      if (missing.length > 0) {
        await this.write(() => {
          const mb = this.mailboxById(mailboxId);
          if (!mb) return;
          for (const [uid, blob] of missing) {
            const t = assignThreadId((sql) => this.q(sql), mb.user_id, blob);
            if (t !== null) out.set(uid, threadIdOf(t));
          }
        });
      }
      return out;
    });
  }

  /**
   * One backfill batch: the next `max` bodies with sort keys (blob id order) get a thread index row if
   * they lack one (a store upgraded from before V_THREAD_INDEX) and a thread id. Returns how many were
   * looked at (1 while the sort keys' backfill is still running); 0 once every body was (remembered in
   * meta, so later starts skip the pass).
   */
  fillPendingThreadIds(max = THREAD_ID_BACKFILL_BATCH): Promise<number> {
    return this.run(async () => {
      if (this.qp(`SELECT value FROM meta WHERE key = '${FILLED_KEY}'`).get() === 1) return 0;
      // Bodies stored before the sort keys get their thread index row from the sort keys' backfill
      // (sorting.ts), which runs beside this one: wait for it, so that the pass sees them all.
      if (this.q('SELECT 1 FROM messages INDEXED BY messages_sort_pending WHERE sort_date IS NULL LIMIT 1').get() !== undefined) return 1;
      const rows = this.q(
        `SELECT k.blob_id, k.subject, k.reply, k.sent, k.msgid, k.refs, k.irt, t.blob_id IS NOT NULL, t.thread_id FROM sort_keys k
         LEFT JOIN thread_keys t ON t.blob_id = k.blob_id WHERE k.blob_id > ? ORDER BY k.blob_id LIMIT ?`,
      ).raw().all(this.threadIdCursor, max) as [number, string, number, number | null, string | null, string, string | null, number, number | null][];
      await this.write(() => {
        const q = (sql: string) => this.q(sql);
        for (const [id, subject, reply, sent, msgid, refs, irt, keyed, thread] of rows) {
          if (thread !== null) continue;
          if (!keyed) storeThreadKeys(q, id, { subject, isReply: reply === 1, date: sent, messageId: msgid, references: refs, inReplyTo: irt });
          const owner = q('SELECT mb.user_id FROM messages m JOIN mailboxes mb ON mb.id = m.mailbox_id WHERE m.blob_id = ? LIMIT 1').pluck().get(id) as number | undefined;
          if (owner === undefined) q('UPDATE thread_keys SET thread_id = ? WHERE blob_id = ?').run(id, id);
          else assignThreadId(q, owner, id);
        }
        if (rows.length < max) q(`INSERT OR REPLACE INTO meta (key, value) VALUES ('${FILLED_KEY}', 1)`).run();
      });
      if (rows.length > 0) this.threadIdCursor = rows[rows.length - 1]![0];
      return rows.length;
    });
  }

  /** Runs the backfill a batch at a time until every body was looked at. */
  protected startThreadIdBackfill(onError: (err: unknown) => void): void {
    if (this.threadIdTimer) return;
    const step = () => {
      this.fillPendingThreadIds().then(
        (n) => {
          this.threadIdTimer = n > 0 ? setTimeout(step, THREAD_ID_BACKFILL_PAUSE_MS) : null;
          this.threadIdTimer?.unref();
        },
        (err) => {
          this.threadIdTimer = null;
          if ((err as { kind?: string })?.kind !== 'UNAVAILABLE') onError(err);
        },
      );
    };
    this.threadIdTimer = setTimeout(step, 0);
    this.threadIdTimer.unref();
  }

  protected stopThreadIdBackfill(): void {
    if (this.threadIdTimer) clearTimeout(this.threadIdTimer);
    this.threadIdTimer = null;
  }
}
