// RFC 8474 §5.2 THREADID in the PostgreSQL store, by the SQLite store's rules
// (src/store/sqlite/threadids.ts): blobs.thread_id is fixed when the body is
// stored, in the user's write transaction (serialised with the user's other
// writers on every node): the thread of its nearest reference one of the
// user's bodies already named (thread_links), else of a body that named its
// Message-ID, else a new thread numbered by its own blob id. Links and thread
// ids are never changed, so two threads a later message names stay two.
// Bodies stored before migration v4-thread-ids get theirs when first FETCHed
// (before the THREADID is reported) or by the background pass.
import type { Queryable } from './blobs.js';

/** Bodies given a thread id per background batch. */
export const PG_THREAD_ID_BACKFILL_BATCH = 200;

/** Gives each of these bodies of `userId` its thread unless it has one; returns blob id -> thread number. */
export async function assignThreadIds(tx: Queryable, userId: number, blobIds: readonly number[]): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  if (blobIds.length === 0) return out;
  const r = await tx.query<{ id: number; msgid: string | null; refs: string | null; irt: string | null; thread_id: number | null }>(
    'SELECT id, msgid, refs, irt, thread_id FROM blobs WHERE id = ANY($1::bigint[]) ORDER BY id',
    [[...new Set(blobIds)]],
  );
  for (const b of r.rows) {
    if (b.thread_id !== null) {
      out.set(Number(b.id), Number(b.thread_id));
      continue;
    }
    // RFC 5256 §4 step 1.A: the References ids, or the In-Reply-To id without any (as the thread index).
    const named = b.refs ? b.refs.split(' ').filter(Boolean) : b.irt ? [b.irt] : [];
    const order = [...named].reverse();
    if (b.msgid) order.push(b.msgid);
    let thread: number | null = null;
    if (order.length > 0) {
      const links = await tx.query<{ msgid: string; thread_id: number }>('SELECT msgid, thread_id FROM thread_links WHERE user_id = $1 AND msgid = ANY($2::text[])', [userId, order]);
      const by = new Map(links.rows.map((l) => [l.msgid, Number(l.thread_id)]));
      for (const id of order) {
        thread = by.get(id) ?? null;
        if (thread !== null) break;
      }
    }
    thread ??= Number(b.id);
    const link = b.msgid ? [b.msgid, ...named] : named;
    if (link.length > 0) {
      await tx.query('INSERT INTO thread_links (user_id, msgid, thread_id) SELECT $1, unnest($2::text[]), $3 ON CONFLICT DO NOTHING', [userId, link, thread]);
    }
    await tx.query('UPDATE blobs SET thread_id = $2 WHERE id = $1', [b.id, thread]);
    out.set(Number(b.id), thread);
  }
  return out;
}
