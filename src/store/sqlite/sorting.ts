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
import { StoreError, type ChangeFeed, type SortKey, type SortRequest, type SortResult, type ThreadRequest, type ThreadRow } from '../types.js';
import type { BlobFiles } from './blobs.js';
import { AddressOps } from './addresses.js';
import { searchStatements } from './search.js';
import type { PackedRows } from './search-worker.js';
import { fillThreadRows, keepThreadAnswer, type ThreadAnswer, type ThreadKeepKey, type ThreadQuery } from './threading.js';
import type { ThreadForest } from '../threading.js';
import { partialWindow } from '../window.js';
import type { SortKeep } from './sort-cache.js';

/** Sorted UIDs read per statement when a sort runs on this thread (then the event loop gets a turn). */
const SORT_PAGE = 2_000;
/** Index entries a sort may walk on the event loop (a few milliseconds); longer walks go to the search thread. */
const MAIN_THREAD_SORT_ROWS = 5_000;
/** A restriction of at most this many UIDs is sorted by looking them up rather than by walking a key index. */
const SMALL_SET = 5_000;
/** THREAD rows read per statement (a few milliseconds each). */
const THREAD_PAGE = 1_000;
/** Bodies given their sort keys per transaction when filling in keys for rows stored before schema V11. */
const SORT_BACKFILL_BATCH = 200;
/** Rows put into the sort indexes per transaction when a mailbox grows large (nine index entries each: about 3 ms). */
const SORT_INDEX_BATCH = 100;
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

/** Each key's index (schema V11): (mailbox_id, key, uid). */
const INDEX: Record<SortKey, string> = {
  arrival: 'messages_sort_arrival',
  size: 'messages_sort_size',
  date: 'messages_sort_date',
  subject: 'messages_sort_subject',
  from: 'messages_sort_from',
  to: 'messages_sort_to',
  cc: 'messages_sort_cc',
  displayfrom: 'messages_sort_dfrom',
  displayto: 'messages_sort_dto',
};

const tick = () => new Promise<void>((r) => setImmediate(r));

/** Messages looked at per transaction when thread index rows are rebuilt. */
const THREAD_KEYS_BATCH = 500;

type ThreadDbRow = [number, number | null, number | null, string | null, string | null, string | null, string | null];

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
      const mb = this.mailboxById(mailboxId);
      if (!mb) throw new StoreError('NONEXISTENT', 'no such mailbox');
      await this.fillMailboxSortKeys(mailboxId);
      const indexed = await this.indexMailboxSort(mailboxId);
      const maxUid = Math.min(req.maxUid ?? MAX_UID, MAX_UID);
      const uids = req.uids ?? null;
      // The list's length: the mailbox's count less the messages the caller does not know yet (a short
      // primary-key range); with a restriction, the UIDs given (found by the caller's search just before).
      const total = uids
        ? uids.length
        : mb.msg_count - (this.qp('SELECT count(*) FROM messages WHERE mailbox_id = ? AND uid > ?').get(mailboxId, maxUid) as number);
      const { offset, want } = partialWindow(req.range, total);
      if (want === 0 || req.criteria.length === 0) return { uids: [], total };
      const order = req.criteria.map((c) => `${COLUMN[c.key]}${c.reverse ? ' DESC' : ''}`).join(', ');
      // "+" keeps SQLite from walking a whole key index for rows it can take from the primary key.
      const plain = req.criteria.map((c) => `+${COLUMN[c.key]}${c.reverse ? ' DESC' : ''}`).join(', ');
      const params: (string | number)[] = [mailboxId];
      let sql: string;
      let walk: number;
      if (uids && uids.length <= SMALL_SET) {
        // A small set is looked up by UID and sorted.
        sql = `SELECT uid FROM messages WHERE mailbox_id = ? AND uid IN (SELECT value FROM json_each(?)) ORDER BY ${plain}, uid`;
        params.push(JSON.stringify(uids));
        walk = uids.length;
      } else {
        // Along the first key's index; "+uid" keeps the UID bound from steering SQLite to the primary key.
        // A mailbox below SORT_INDEX_MIN_MESSAGES is in no sort index: its rows, sorted.
        const restrict = uids ? ' AND uid IN (SELECT value FROM json_each(?))' : '';
        sql = indexed
          ? `SELECT uid FROM messages INDEXED BY ${INDEX[req.criteria[0]!.key]} WHERE mailbox_id = ? AND sort_ix = 1 AND +uid <= ?${restrict} ORDER BY ${order}, uid`
          : `SELECT uid FROM messages WHERE mailbox_id = ? AND uid <= ?${restrict} ORDER BY ${plain}, uid`;
        params.push(maxUid);
        if (uids) params.push(JSON.stringify(uids));
        walk = uids || !indexed ? total : offset + want;
      }
      if (walk > MAIN_THREAD_SORT_ROWS) {
        // A long walk goes to the search thread; this thread gets the answer as one array.
        // Over the whole mailbox the answer is kept there for the next time (sort-cache.ts).
        const off = this.offloadUidQuery(`${sql} LIMIT ? OFFSET ?`, [...params, want, offset], uids ? undefined : { mailboxId });
        if (off) return { uids: await off, total };
      }
      const page = this.sortStatement(`${sql} LIMIT ? OFFSET ?`).pluck();
      const out: number[] = [];
      for (let at = offset; out.length < want; at += SORT_PAGE) {
        if (at > offset) await tick();
        const got = page.all(...params, Math.min(SORT_PAGE, want - out.length), at) as number[];
        for (const u of got) out.push(u);
        if (got.length === 0) break;
      }
      return { uids: out, total };
    });
  }

  /** Runs a query of UIDs on the search thread, or null when none runs (store.ts). */
  protected offloadUidQuery(_sql: string, _params: (string | number)[], _keep?: SortKeep): Promise<number[]> | null {
    return null;
  }

  threadRows(mailboxId: number, uids: readonly number[] | null, maxUid = MAX_UID): Promise<ThreadRow[]> {
    return this.run(async () => {
      this.requireMailbox(mailboxId);
      await this.fillMailboxSortKeys(mailboxId);
      const indexed = await this.indexMailboxSort(mailboxId);
      const only = uids ? new Set(uids) : null;
      const out: ThreadRow[] = [];
      const add = (uid: number, date: number, reply: number, subject: string, msgid: string, refs: string, irt: string) => {
        if (only && !only.has(uid)) return;
        out.push({ uid, date, subject, isReply: reply === 1, messageId: msgid || null, references: refs ? refs.split(' ') : [], inReplyTo: irt || null });
      };
      // In sent-date order (the THREAD algorithms compare positions), along the date index.
      // (A mailbox below SORT_INDEX_MIN_MESSAGES is in no sort index: its rows are sorted.)
      const cols = `m.uid, m.sort_date, k.reply, m.sort_subject, k.msgid, k.refs, k.irt
         FROM messages m ${indexed ? 'INDEXED BY messages_sort_date ' : ''}JOIN sort_keys k ON k.blob_id = m.blob_id`;
      const inIndex = indexed ? ' AND m.sort_ix = 1' : '';
      const big = (this.mailboxById(mailboxId)?.msg_count ?? 0) > MAIN_THREAD_SORT_ROWS;
      const packed = big ? this.offloadRows(`SELECT ${cols} WHERE m.mailbox_id = ?${inIndex} AND +m.uid <= ? ORDER BY m.sort_date, m.uid`, [mailboxId, maxUid], 3, 4) : null;
      if (packed) {
        // The search thread read them; unpack here a slice at a time.
        const p = await packed;
        let at = 0;
        const next = () => {
          const nul = p.texts.indexOf('\u0000', at);
          const s = nul < 0 ? p.texts.slice(at) : p.texts.slice(at, nul);
          at = nul < 0 ? p.texts.length : nul + 1;
          return s;
        };
        for (let i = 0; i < p.count; i++) {
          if (i > 0 && i % THREAD_PAGE === 0) await tick();
          const n = p.nums;
          add(n[i * 3]!, n[i * 3 + 1]!, n[i * 3 + 2]!, next(), next(), next(), next());
        }
        return out;
      }
      // Here, in pages along the index (keyset: each page starts after the last row of the one before).
      const page = this.q(`SELECT ${cols} WHERE m.mailbox_id = ?${inIndex} AND (m.sort_date, m.uid) > (?, ?) AND +m.uid <= ? ORDER BY m.sort_date, m.uid LIMIT ?`).raw();
      for (let after: [number, number] = [-Number.MAX_VALUE, 0]; ;) {
        const rows = page.all(mailboxId, after[0], after[1], maxUid, THREAD_PAGE) as ThreadDbRow[];
        for (const [uid, date, reply, subject, msgid, refs, irt] of rows) add(uid, date ?? 0, reply ?? 0, subject ?? '', msgid ?? '', refs ?? '', irt ?? '');
        if (rows.length < THREAD_PAGE) break;
        const last = rows[rows.length - 1]!;
        after = [last[1] ?? 0, last[0]];
        await tick();
      }
      return out;
    });
  }

  /**
   * THREAD from the thread index, threaded on the search thread (threading.ts): null when no search
   * thread runs (the caller then threads threadRows, in slices, on its own thread).
   */
  threadForest(mailboxId: number, req: ThreadRequest): Promise<ThreadForest | null> {
    return this.run(async () => {
      this.requireMailbox(mailboxId);
      await this.fillMailboxSortKeys(mailboxId);
      const q: ThreadQuery = { mailboxId, maxUid: Math.min(req.maxUid ?? MAX_UID, MAX_UID), alg: req.algorithm, uids: req.uids ? Uint32Array.from(req.uids) : null };
      for (let attempt = 0; attempt < 2; attempt++) {
        const answer = this.offloadThread(q);
        if (!answer) return null;
        const a = await answer;
        if ('forest' in a) {
          this.threadAnswers[a.from ?? 'computed']++;
          if (a.keep) this.keepThreadAnswerLater(a.keep, a.forest);
          return a.forest;
        }
        // Messages without a thread index row (an index lost): given one from their sort keys, in batches.
        for (let after = 0; ;) {
          const r = await this.relaxed(() => fillThreadRows((sql) => this.q(sql), mailboxId, after, THREAD_KEYS_BATCH));
          if (r.seen < THREAD_KEYS_BATCH) break;
          after = r.lastUid;
          await tick();
        }
      }
      return null;
    });
  }

  /**
   * Where the whole-mailbox and restricted THREAD answers of the search thread came from, since the
   * store opened: computed (read and threaded), memory (the search thread's kept answers), kept (schema
   * V_THREAD_ANSWERS, e.g. the first THREAD of a mailbox after a restart). For tests and diagnostics.
   */
  readonly threadAnswers = { computed: 0, memory: 0, kept: 0, written: 0 };

  /**
   * Keeps a whole-mailbox answer on disk (threading.ts keepThreadAnswer) once the caller has it: one
   * relaxed (derived data, no fsync) write of at most THREAD_KEEP_MAX_BYTES on the writer path, after
   * the command's answer, so the THREAD never waits for it. A failure only means computing it again.
   */
  private keepThreadAnswerLater(k: ThreadKeepKey, f: ThreadForest): void {
    setImmediate(() => {
      this.run(() => this.relaxed(() => keepThreadAnswer((sql) => this.q(sql), k, f)))
        .then((wrote) => {
          if (wrote) this.threadAnswers.written++;
        })
        .catch(() => undefined);
    });
  }

  /** Threads on the search thread, or null when none runs (store.ts). */
  protected offloadThread(_req: ThreadQuery): Promise<ThreadAnswer> | null {
    return null;
  }

  /** Runs a query of packed rows on the search thread, or null when none runs (store.ts). */
  protected offloadRows(_sql: string, _params: (string | number)[], _nums: number, _texts: number): Promise<PackedRows> | null {
    return null;
  }

  private requireMailbox(mailboxId: number): void {
    if (!this.mailboxById(mailboxId)) throw new StoreError('NONEXISTENT', 'no such mailbox');
  }

  /**
   * Puts the rows of a mailbox that has grown to SORT_INDEX_MIN_MESSAGES into the sort indexes
   * (schema V_SORT_LARGE; its new rows go in as they come), in batches with the event loop free
   * between them: at most about that many rows, once per mailbox. True when all its rows are in
   * them; false for a smaller mailbox, which is sorted from its rows.
   */
  protected async indexMailboxSort(mailboxId: number): Promise<boolean> {
    const next = this.qp('SELECT uid FROM messages WHERE mailbox_id = ? AND uid > ? ORDER BY uid LIMIT ?');
    for (let after = 0; ; ) {
      // The mailbox row as the store caches it: re-read after each batch (a write ends the cache).
      const s = this.mailboxById(mailboxId)?.sort_indexed;
      if (s !== 1) return s === 2;
      // New rows (greater UIDs) come with sort_ix set: one pass in UID order finds every row left out.
      const uids = next.all(mailboxId, after, SORT_INDEX_BATCH) as number[];
      await this.relaxed(() => {
        if (uids.length > 0) {
          this.q('UPDATE messages SET sort_ix = 1 WHERE mailbox_id = ? AND uid BETWEEN ? AND ? AND sort_ix = 0').run(mailboxId, uids[0]!, uids[uids.length - 1]!);
        }
        if (uids.length < SORT_INDEX_BATCH) this.q('UPDATE mailboxes SET sort_indexed = 2 WHERE id = ? AND sort_indexed = 1').run(mailboxId);
      });
      if (uids.length > 0) after = uids[uids.length - 1]!;
      await tick();
    }
  }

  /** Gives every message of the mailbox its sort keys (rows stored before schema V11), in batches. */
  private async fillMailboxSortKeys(mailboxId: number): Promise<void> {
    // Through the partial index of rows without keys (normally empty): never a scan of the mailbox.
    const pending = this.qp('SELECT DISTINCT blob_id FROM messages INDEXED BY messages_sort_pending WHERE sort_date IS NULL AND mailbox_id = ? LIMIT ?');
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
    const found = new Set(keyed.map(([id]) => id));
    await this.relaxed(() => {
      for (const [id, k] of keyed) this.storeSortKeys(id, k);
      const upd = this.q(
        `UPDATE messages SET (sort_subject, sort_from, sort_to, sort_cc, sort_dfrom, sort_dto, sort_date) =
           (SELECT subject, addr_from, addr_to, addr_cc, disp_from, disp_to, coalesce(sent, messages.internal_date) FROM sort_keys WHERE blob_id = ?)
         WHERE blob_id = ? AND sort_date IS NULL`,
      );
      for (const [id] of keyed) upd.run(id, id);
      // A row whose body row vanished meanwhile sorts as a message without header fields.
      const orphan = this.q(`UPDATE messages SET sort_subject = '', sort_from = '', sort_to = '', sort_cc = '', sort_dfrom = '', sort_dto = '', sort_date = internal_date WHERE blob_id = ? AND sort_date IS NULL`);
      for (const id of blobIds) if (!found.has(id)) orphan.run(id);
    });
  }

  /** One background batch over the whole store; the number of bodies given keys (0 when none is left). */
  fillPendingSortKeys(max = SORT_BACKFILL_BATCH): Promise<number> {
    return this.run(async () => {
      const ids = this.qp('SELECT DISTINCT blob_id FROM messages INDEXED BY messages_sort_pending WHERE sort_date IS NULL LIMIT ?').all(max) as number[];
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
