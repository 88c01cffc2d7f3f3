// SORT and THREAD reads of the SQLite store (RFC 5256, RFC 5957), over the
// keys schema V11 keeps: each message row carries its sort keys, with one
// index (mailbox_id, key, uid) per key, so a sorted window (PARTIAL 1:50) is
// the first entries of an index range, and a whole sort reads the index in
// order. Big reads go in pages with a yield between them (STYLE.md habit 14).
// Bodies stored before V11 get their keys here, in bounded batches: before a
// SORT/THREAD of their mailbox, and in the background of a running server.
import { promises as fs } from 'node:fs';
import type Database from 'better-sqlite3';
import { Header, findHeaderEnd, sortKeysOf } from '../../mime/index.js';
import { StoreError, type ChangeFeed, type SortKey, type SortRequest, type SortResult, type ThreadRow } from '../types.js';
import type { BlobFiles } from './blobs.js';
import { AddressOps } from './addresses.js';
import { searchStatements } from './search.js';

/** Sorted UIDs read per statement of a whole sort (then the event loop gets a turn). */
const SORT_PAGE = 5_000;
/** THREAD rows read per statement. */
const THREAD_PAGE = 5_000;
/** Bodies given their sort keys per transaction when filling in keys for rows stored before schema V11. */
const SORT_BACKFILL_BATCH = 200;
/** Pause between background backfill batches (ms): the server's own work goes first. */
const SORT_BACKFILL_PAUSE_MS = 20;
/** Largest UID (RFC 9051 §2.3.1.1): "no upper bound". */
const MAX_UID = 0xffffffff;

/** The message column each key sorts by: a fixed table, never client text. */
const COLUMN: Record<SortKey, string> = {
  arrival: 'internal_date',
  size: 'size',
  date: 'sort_date',
  subject: 'sort_subject',
  from: 'sort_from',
  to: 'sort_to',
  cc: 'sort_cc',
  displayfrom: 'sort_dfrom',
  displayto: 'sort_dto',
};

const tick = () => new Promise<void>((r) => setImmediate(r));

type ThreadDbRow = [number, number | null, string | null, number | null, string | null, string | null, string | null];

export abstract class SortOps extends AddressOps {
  private sortStmts: ((sql: string) => Database.Statement) | null = null;
  private backfillTimer: NodeJS.Timeout | null = null;

  protected constructor(db: Database.Database, blobs: BlobFiles, feed: ChangeFeed) {
    super(db, blobs, feed);
  }

  /** Prepared SORT statements (their SQL differs per sort program; bounded cache). */
  private get sortStatement(): (sql: string) => Database.Statement {
    return (this.sortStmts ??= searchStatements(this.db));
  }

  sortMessages(mailboxId: number, req: SortRequest): Promise<SortResult> {
    return this.run(async () => {
      this.requireMailbox(mailboxId);
      await this.fillMailboxSortKeys(mailboxId);
      const order = req.criteria.map((c) => `${COLUMN[c.key]}${c.reverse ? ' DESC' : ''}`).join(', ');
      const restrict = req.uids ? ' AND uid IN (SELECT value FROM json_each(?))' : '';
      const where = `mailbox_id = ? AND uid <= ?${restrict}`;
      const params: (string | number)[] = [mailboxId, req.maxUid ?? MAX_UID];
      if (req.uids) params.push(JSON.stringify(req.uids));
      const total = this.sortStatement(`SELECT count(*) FROM messages WHERE ${where}`).pluck().get(...params) as number;
      let offset = 0;
      let want = total;
      const r = req.range;
      if (r && r.first > 0) {
        offset = r.first - 1;
        want = Math.max(0, Math.min(r.last, total) - offset);
      } else if (r) {
        // -a:-b (a <= b): from the b-th last to the a-th last message.
        offset = Math.max(0, total + r.last);
        want = Math.max(0, total + r.first + 1 - offset);
      }
      const page = this.sortStatement(`SELECT uid FROM messages WHERE ${where} ORDER BY ${order}${order ? ', ' : ''}uid LIMIT ? OFFSET ?`).pluck();
      const uids: number[] = [];
      for (let at = offset; uids.length < want; at += SORT_PAGE) {
        if (at > offset) await tick();
        const got = page.all(...params, Math.min(SORT_PAGE, want - uids.length), at) as number[];
        for (const u of got) uids.push(u);
        if (got.length === 0) break;
      }
      return { uids, total };
    });
  }

  threadRows(mailboxId: number, uids: readonly number[] | null, maxUid = MAX_UID): Promise<ThreadRow[]> {
    return this.run(async () => {
      this.requireMailbox(mailboxId);
      await this.fillMailboxSortKeys(mailboxId);
      const only = uids ? new Set(uids) : null;
      const page = this.q(
        `SELECT m.uid, m.sort_date, m.sort_subject, b.th_reply, b.th_msgid, b.th_refs, b.th_irt
         FROM messages m JOIN blobs b ON b.id = m.blob_id
         WHERE m.mailbox_id = ? AND m.uid > ? AND m.uid <= ? ORDER BY m.uid LIMIT ?`,
      ).raw();
      const out: ThreadRow[] = [];
      for (let after = 0; ;) {
        const rows = page.all(mailboxId, after, maxUid, THREAD_PAGE) as ThreadDbRow[];
        for (const [uid, date, subject, reply, msgid, refs, irt] of rows) {
          if (only && !only.has(uid)) continue;
          out.push({
            uid,
            date: date ?? 0,
            subject: subject ?? '',
            isReply: reply === 1,
            messageId: msgid,
            references: refs ? refs.split(' ') : [],
            inReplyTo: irt,
          });
        }
        if (rows.length < THREAD_PAGE) break;
        after = rows[rows.length - 1]![0];
        await tick();
      }
      return out;
    });
  }

  private requireMailbox(mailboxId: number): void {
    if (!this.mailboxById(mailboxId)) throw new StoreError('NONEXISTENT', 'no such mailbox');
  }

  /** Gives every message of the mailbox its sort keys (rows stored before schema V11), in batches. */
  private async fillMailboxSortKeys(mailboxId: number): Promise<void> {
    const pending = this.qp('SELECT DISTINCT blob_id FROM messages WHERE mailbox_id = ? AND sort_date IS NULL LIMIT ?');
    for (;;) {
      const ids = pending.all(mailboxId, SORT_BACKFILL_BATCH) as number[];
      if (ids.length === 0) return;
      await this.fillSortKeys(ids);
      await tick();
    }
  }

  /**
   * Computes and stores the keys of these bodies and of every message row
   * that references them. Keys are derived data: losing a batch on power
   * failure only means computing it again, so it commits without an fsync.
   */
  private async fillSortKeys(blobIds: readonly number[]): Promise<void> {
    const rows = this.q('SELECT id, header FROM blobs WHERE id IN (SELECT value FROM json_each(?))').raw().all(JSON.stringify(blobIds)) as [number, Buffer | null][];
    const keyed: [number, ReturnType<typeof sortKeysOf>][] = [];
    for (const [id, stored] of rows) {
      let raw = stored;
      if (!raw) {
        try {
          raw = await fs.readFile(this.blobs.pathOf(id));
        } catch {
          raw = Buffer.alloc(0); // the file is gone (doctor reports it): sort it as a message without header fields
        }
      }
      const end = findHeaderEnd(raw, 0, raw.length).fieldsEnd;
      keyed.push([id, sortKeysOf(Header.parse(raw, 0, end))]);
    }
    // Bodies whose row vanished meanwhile still get their message rows marked (with internal-date keys).
    const found = new Set(keyed.map(([id]) => id));
    this.relaxed(() => {
      for (const [id, k] of keyed) this.storeSortKeys(id, k);
      const upd = this.q(
        `UPDATE messages SET (sort_subject, sort_from, sort_to, sort_cc, sort_dfrom, sort_dto, sort_date) =
           (SELECT sk_subject, sk_from, sk_to, sk_cc, sk_dfrom, sk_dto, coalesce(sk_date, messages.internal_date) FROM blobs WHERE id = ?)
         WHERE blob_id = ?`,
      );
      for (const [id] of keyed) upd.run(id, id);
      const orphan = this.q(`UPDATE messages SET sort_subject = '', sort_from = '', sort_to = '', sort_cc = '', sort_dfrom = '', sort_dto = '', sort_date = internal_date WHERE blob_id = ? AND sort_date IS NULL`);
      for (const id of blobIds) if (!found.has(id)) orphan.run(id);
    });
  }

  /** One background batch over the whole store; the number of bodies given keys (0 when none is left). */
  fillPendingSortKeys(max = SORT_BACKFILL_BATCH): Promise<number> {
    return this.run(async () => {
      const ids = this.qp('SELECT id FROM blobs WHERE sort_keys = 0 ORDER BY id LIMIT ?').all(max) as number[];
      if (ids.length > 0) await this.fillSortKeys(ids);
      return ids.length;
    });
  }

  /** Fills in the keys of bodies stored before schema V11 in the background, a batch at a time, until none is left. */
  protected startSortBackfill(onError: (err: unknown) => void): void {
    if (this.backfillTimer) return;
    const step = () => {
      this.fillPendingSortKeys().then(
        (n) => {
          this.backfillTimer = n > 0 ? setTimeout(step, SORT_BACKFILL_PAUSE_MS) : null;
          this.backfillTimer?.unref();
        },
        (err) => {
          this.backfillTimer = null;
          if ((err as { kind?: string })?.kind !== 'UNAVAILABLE') onError(err);
        },
      );
    };
    this.backfillTimer = setTimeout(step, 0);
    this.backfillTimer.unref();
  }

  protected stopSortBackfill(): void {
    if (this.backfillTimer) clearTimeout(this.backfillTimer);
    this.backfillTimer = null;
  }
}
