// SORT and THREAD reads of the PostgreSQL store (RFC 5256, RFC 5957), over
// the keys computed once when a body is stored (src/mime sortKeysOf, kept in
// the blobs row). Keys compare as the SQLite store compares them: by code
// point (COLLATE "C"), ties broken by UID. The sort runs in PostgreSQL; this
// process receives only the window of UIDs asked for.
import { StoreError, type SortKey, type SortRequest, type SortResult, type ThreadRow } from '../types.js';
import { PgMessageOps, MAX_UID } from './messages.js';
import { partialWindow } from '../window.js';

/** The expression each key sorts by: a fixed table, never client text. */
const COLUMN: Record<SortKey, string> = {
  arrival: 'm.internal_date',
  size: 'm.size',
  date: 'coalesce(b.sort_sent, m.internal_date)',
  subject: 'b.sort_subject COLLATE "C"',
  from: 'b.sort_from COLLATE "C"',
  to: 'b.sort_to COLLATE "C"',
  cc: 'b.sort_cc COLLATE "C"',
  displayfrom: 'b.sort_dfrom COLLATE "C"',
  displayto: 'b.sort_dto COLLATE "C"',
};

/** THREAD rows read per statement. */
const THREAD_PAGE = 5_000;

export abstract class PgSortOps extends PgMessageOps {
  sortMessages(mailboxId: number, req: SortRequest): Promise<SortResult> {
    return this.run(async () => {
      const mb = await this.mailboxRow(this.db, mailboxId);
      if (!mb) throw new StoreError('NONEXISTENT', 'no such mailbox');
      const maxUid = Math.min(req.maxUid ?? MAX_UID, MAX_UID);
      const uids = req.uids ?? null;
      const total = uids
        ? uids.length
        : (await this.db.query<{ n: number }>('SELECT count(*) AS n FROM messages WHERE mailbox_id = $1 AND uid <= $2', [mailboxId, maxUid])).rows[0]!.n;
      const { offset, want } = partialWindow(req.range, total);
      if (want === 0 || req.criteria.length === 0) return { uids: [], total };
      // NULL keys sort first, as in SQLite (ascending) and last when reversed.
      const order = req.criteria.map((c) => `${COLUMN[c.key]}${c.reverse ? ' DESC NULLS LAST' : ' ASC NULLS FIRST'}`).join(', ');
      const params: unknown[] = [mailboxId, maxUid, want, offset];
      let restrict = '';
      if (uids) {
        params.push(uids);
        restrict = ' AND m.uid = ANY($5::bigint[])';
      }
      const rows = await this.db.query<{ uid: number }>(
        `SELECT m.uid FROM messages m JOIN blobs b ON b.id = m.blob_id WHERE m.mailbox_id = $1 AND m.uid <= $2${restrict}
         ORDER BY ${order}, m.uid LIMIT $3 OFFSET $4`,
        params,
      );
      return { uids: rows.rows.map((x) => x.uid), total };
    });
  }

  threadRows(mailboxId: number, uids: readonly number[] | null, maxUid = MAX_UID): Promise<ThreadRow[]> {
    return this.run(async () => {
      await this.existing(this.db, mailboxId);
      const only = uids ? new Set(uids) : null;
      const out: ThreadRow[] = [];
      // In sent-date order (the THREAD algorithms compare positions), keyset-paged.
      let after: [number, number] = [-Number.MAX_SAFE_INTEGER, 0];
      for (;;) {
        const r = await this.db.query<{ uid: number; d: number; reply: boolean; subject: string | null; msgid: string | null; refs: string | null; irt: string | null }>(
          `SELECT m.uid, coalesce(b.sort_sent, m.internal_date) AS d, b.sort_reply AS reply, b.sort_subject AS subject, b.msgid, b.refs, b.irt
           FROM messages m JOIN blobs b ON b.id = m.blob_id
           WHERE m.mailbox_id = $1 AND m.uid <= $2 AND (coalesce(b.sort_sent, m.internal_date), m.uid) > ($3, $4)
           ORDER BY 2, 1 LIMIT $5`,
          [mailboxId, maxUid, after[0], after[1], THREAD_PAGE],
        );
        for (const x of r.rows) {
          if (only && !only.has(x.uid)) continue;
          out.push({ uid: x.uid, date: x.d, subject: x.subject ?? '', isReply: x.reply, messageId: x.msgid || null, references: x.refs ? x.refs.split(' ') : [], inReplyTo: x.irt || null });
        }
        if (r.rows.length < THREAD_PAGE) break;
        const last = r.rows[r.rows.length - 1]!;
        after = [last.d, last.uid];
      }
      return out;
    });
  }
}
