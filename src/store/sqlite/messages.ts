// Message operations of the SQLite store: APPEND, STORE, COPY/MOVE, EXPUNGE
// (the FETCH-side reads are in reads.ts, the layer above). The base class of
// SqliteMailStore; the concrete class supplies the transaction plumbing.
//
// Modseq (RFC 7162): every change bumps the mailbox's highest_modseq once;
// the messages touched by that change carry the new value. Tombstones in
// `expunged` keep the modseq of each expunge for QRESYNC.

import type Database from 'better-sqlite3';
import {
  StoreError,
  type AppendInput,
  type AppendResult,
  type Change,
  type ChangeFeed,
  type CopyResult,
  type Flag,
  type FlagOp,
  type MessageMeta,
  type StoreFlagsResult,
} from '../types.js';
import type { BlobFiles } from './blobs.js';
import { FLAG_DELETED } from './schema.js';
import { describeMessage } from '../structure.js';
import { indexPendingBodies } from './fulltext.js';
import type { SortKeys } from '../../mime/index.js';
import { META_COLS, localZoneAt, meta, type MetaRow } from './metadata.js';
import { emailIdOf } from '../objectid.js';

/**
 * Expunged UIDs remembered per mailbox for QRESYNC (RFC 7162 §3.2.10). A
 * client that was offline across more expunges than this resynchronises by
 * comparing UID sets instead (still correct, just more bytes).
 */
export const EXPUNGE_TOMBSTONES_KEPT = 100_000;
/** Messages whose flags STORE changes per transaction (a few tens of milliseconds). */
const STORE_BATCH = 5_000;
/** Messages removed per transaction by EXPUNGE and DELETE (a few tens of milliseconds each). */
const REMOVE_BATCH = 500;
/**
 * Messages copied or moved per transaction. Each copied row costs about 14
 * index updates and 5 trigger statements (counts, quota, sort keys, thread
 * index): 0.1-0.4 ms, so a step holds the event loop 5-20 ms.
 */
const COPY_BATCH = 50;
/** Bodies put into the full-text index per background step (each file is read whole). */
const TEXT_INDEX_BATCH = 16;
/** Pruning runs once every this many modseqs, to keep expunge cheap. */
const TOMBSTONE_PRUNE_EVERY = 64;
import { MAX_KEYWORDS_PER_MAILBOX, decodeFlags, encodeKeywords, parseFlags, splitKeywords } from './flags.js';
import { storeThreadKeys } from './threading.js';
import { assignThreadId } from './threadids.js';

export interface MailboxRow {
  id: number;
  user_id: number;
  name: string;
  uid_validity: number;
  uid_next: number;
  highest_modseq: number;
  recent_uid: number;
  special_use: string | null;
  msg_count: number;
  unseen_count: number;
  deleted_count: number;
  total_size: number;
  tombstone_floor: number;
  /** Its rows in the sort indexes: 0 none, 1 new ones (older being put in), 2 all (schema V_SORT_LARGE). */
  sort_indexed: number;
}

/** Largest UID (RFC 9051 §2.3.1.1: nz-number is a 32-bit unsigned integer). */
const MAX_UID = 0xffffffff;

/** Deduplicated, ascending, valid UIDs as JSON for `json_each` (no giant IN lists). */
export function uidJson(uids: readonly number[]): string {
  const clean = [...new Set(uids.filter((u) => Number.isInteger(u) && u > 0 && u <= MAX_UID))];
  clean.sort((a, b) => a - b);
  return JSON.stringify(clean);
}

/** Keywords of one mailbox, loaded once per transaction; registers new ones (first-seen spelling). */
class KeywordTable {
  private map: Map<string, string> | undefined;
  constructor(
    private readonly ops: MessageOps,
    private readonly mailboxId: number,
  ) {}

  private load(): Map<string, string> {
    if (!this.map) {
      const rows = this.ops.q('SELECT lname, name FROM mailbox_keywords WHERE mailbox_id = ?').raw().all(this.mailboxId) as [
        string,
        string,
      ][];
      this.map = new Map(rows);
    }
    return this.map;
  }

  /** Canonical spellings of `keywords`, registering the unknown ones (LIMIT beyond the cap). */
  resolve(keywords: readonly string[]): string[] {
    const map = this.load();
    return keywords.map((k) => {
      const lower = k.toLowerCase();
      let name = map.get(lower);
      if (name === undefined) {
        if (map.size >= MAX_KEYWORDS_PER_MAILBOX) {
          throw new StoreError('LIMIT', `too many keywords in mailbox (at most ${MAX_KEYWORDS_PER_MAILBOX})`);
        }
        this.ops.q('INSERT INTO mailbox_keywords (mailbox_id, lname, name) VALUES (?, ?, ?)').run(this.mailboxId, lower, k);
        map.set(lower, k);
        name = k;
      }
      return name;
    });
  }
}

/**
 * A message row with its sort keys (schema V_SORT_LARGE): sort_ix (1: in the sort indexes, for a
 * mailbox whose sort_indexed is set), the parameters of the plain row, then sort_subject, sort_from,
 * sort_to, sort_cc, sort_dfrom, sort_dto and sort_date (the sent date, else INTERNALDATE: RFC 5256
 * §2.2). A NULL sort_date leaves the keys to the messages_sort_ai trigger.
 */
const INSERT_MESSAGE_SORTED = `INSERT INTO messages (sort_ix, mailbox_id, uid, blob_id, sysflags, keywords, internal_date, size, modseq, internal_tz, save_date,
   sort_subject, sort_from, sort_to, sort_cc, sort_dfrom, sort_dto, sort_date)
 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`;
/** A copied row: uid, blob_id, sysflags, keywords, internal_date, size, internal_tz, then the seven sort columns. */
type CopyRow = [number, number, number, string, number, number, number, string | null, string | null, string | null, string | null, string | null, string | null, number | null];

export abstract class MessageOps {
  private readonly stmts = new Map<string, Database.Statement>();
  private purging: Promise<void> = Promise.resolve();

  protected constructor(
    protected readonly db: Database.Database,
    protected readonly blobs: BlobFiles,
    readonly feed: ChangeFeed,
  ) {}

  protected abstract run<T>(fn: () => T | Promise<T>): Promise<T>;
  /** A read-only call: the statements of `fn`'s synchronous part share one read snapshot where the backend can (store.ts). */
  protected read<T>(fn: () => T | Promise<T>): Promise<T> {
    return this.run(fn);
  }
  /**
   * One write transaction; resolves once it is durable and its changes are
   * published. `lazy` (flag changes and expunges only): with durability
   * "mail" it may resolve after the commit, before the WAL sync (store.ts).
   */
  protected abstract write<T>(fn: (emit: (c: Change) => void) => T, lazy?: boolean): Promise<T>;
  /** Durability "mail": lazy writes answer before their sync, and expunged bodies are unlinked once durable (store.ts). */
  protected lazyDurability(): boolean {
    return false;
  }
  /**
   * Resolves once the commits that filled blob_trash (read just before) are
   * durable (store.ts); `lazily`: a sync within the lazy bound will do.
   */
  protected trashDurable(_lazily: boolean): Promise<void> {
    return Promise.resolve();
  }
  /** A write transaction whose loss on power failure is harmless (nothing to publish). */
  protected abstract relaxed<T>(fn: () => T): Promise<T>;
  protected abstract allocBlobIds(n: number): Promise<number[]>;

  /** A cached prepared statement. */
  q(sql: string): Database.Statement {
    let s = this.stmts.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.stmts.set(sql, s);
    }
    return s;
  }

  /** A cached prepared statement returning the first column only. */
  qp(sql: string): Database.Statement {
    const key = `pluck:${sql}`;
    let s = this.stmts.get(key);
    if (!s) {
      s = this.db.prepare(sql).pluck();
      this.stmts.set(key, s);
    }
    return s;
  }

  protected mailboxById(id: number): MailboxRow | undefined {
    return this.q('SELECT * FROM mailboxes WHERE id = ?').get(id) as MailboxRow | undefined;
  }

  protected mailboxByName(userId: number, name: string): MailboxRow | undefined {
    return this.q('SELECT * FROM mailboxes WHERE user_id = ? AND name = ?').get(userId, name) as MailboxRow | undefined;
  }

  protected existing(mailboxId: number, kind: 'NONEXISTENT' | 'TRYCREATE' = 'NONEXISTENT'): MailboxRow {
    const mb = this.mailboxById(mailboxId);
    if (!mb) throw new StoreError(kind, 'no such mailbox');
    return mb;
  }

  protected rowsFor(mailboxId: number, uids: readonly number[]): MetaRow[] {
    let min = Infinity;
    let max = 0;
    for (const u of uids) {
      if (u < min) min = u;
      if (u > max) max = u;
    }
    // Dense sets (the usual "1:*" or a page of a message list) are a range scan
    // of the primary key, filtered here; sparse ones go through json_each.
    if (uids.length > 0 && max - min + 1 <= uids.length * 4) {
      const rows = this.q(`SELECT ${META_COLS} FROM messages WHERE mailbox_id = ? AND uid BETWEEN ? AND ? ORDER BY uid`)
        .raw()
        .all(mailboxId, min, max) as MetaRow[];
      if (max - min + 1 === uids.length) return rows;
      const want = new Set(uids);
      return rows.filter((r) => want.has(r[0] as number));
    }
    return this.q(
      `SELECT ${META_COLS} FROM messages WHERE mailbox_id = ? AND uid IN (SELECT value FROM json_each(?)) ORDER BY uid`,
    )
      .raw()
      .all(mailboxId, uidJson(uids)) as MetaRow[];
  }

  /**
   * Unlinks the files of blobs no message references any more (after their
   * commit is durable); `lazily` (after a lazy expunge, nobody waiting): the
   * sync that makes them durable may be the lazy commits' own.
   */
  protected purgeTrash(lazily = false): Promise<void> {
    const next = this.purging.then(async () => {
      const ids = this.qp('SELECT id FROM blob_trash ORDER BY id').all() as number[];
      if (ids.length === 0) return;
      // An expunge undone by a power loss must find its body file still there.
      await this.trashDurable(lazily);
      await this.blobs.unlinkAll(ids);
      // Losing this delete on power failure only means unlinking again at the next open.
      await this.relaxed(() => {
        const del = this.q('DELETE FROM blob_trash WHERE id = ?');
        for (const id of ids) del.run(id);
      });
    });
    this.purging = next.catch(() => undefined);
    return next;
  }

  // ---- APPEND

  appendMessages(mailboxId: number, items: AppendInput[]): Promise<AppendResult> {
    return this.run(async () => {
      const parsed = items.map((it) => parseFlags(it.flags));
      const first = this.existing(mailboxId, 'TRYCREATE');
      if (items.length === 0) return { uidValidity: first.uid_validity, uids: [] };
      // Parsed before the transaction: the tree and index are kept with the body (schema V2, V5).
      const described = items.map((it) => describeMessage(it.data));
      const ids = await this.allocBlobIds(items.length);
      await this.blobs.writeAll(
        ids,
        items.map((it) => it.data),
      );
      try {
        return await this.write((emit) => this.appendInTx(mailboxId, items, ids, described, parsed, emit));
      } catch (err) {
        await this.blobs.unlinkAll(ids).catch(() => undefined);
        throw err;
      }
    });
  }

  /** The rows of an APPEND whose bodies are already written (ids, parsed trees and flags in item order). */
  private appendInTx(
    mailboxId: number,
    items: readonly AppendInput[],
    ids: readonly number[],
    described: readonly ReturnType<typeof describeMessage>[],
    parsed: readonly ReturnType<typeof parseFlags>[],
    emit: (c: Change) => void,
  ): AppendResult {
    const mb = this.existing(mailboxId, 'TRYCREATE');
    if (mb.uid_next + items.length - 1 > MAX_UID) throw new StoreError('LIMIT', 'mailbox UID space exhausted');
    const kw = new KeywordTable(this, mailboxId);
    const modseq = mb.highest_modseq + 1;
    const now = Date.now();
    const insMsg = this.q(INSERT_MESSAGE_SORTED);
    const metas: MessageMeta[] = [];
    items.forEach((it, i) => {
      this.insertBody(ids[i]!, it.data.length, described[i]!);
      const k = described[i]!.sort;
      const uid = mb.uid_next + i;
      const { sys, keywords } = parsed[i]!;
      const kwCol = encodeKeywords(kw.resolve(keywords));
      const date = it.internalDate ?? now;
      const tz = it.internalTz ?? localZoneAt(date);
      const size = it.data.length;
      // RFC 8514 §3: the save date is the time of saving, whatever INTERNALDATE was given.
      insMsg.run(mb.sort_indexed > 0 ? 1 : 0, mailboxId, uid, ids[i]!, sys, kwCol, date, size, modseq, tz, now, k.subject, k.from, k.to, k.cc, k.displayFrom, k.displayTo, k.date ?? date);
      metas.push({ uid, flags: decodeFlags(sys, kwCol), internalDate: date, internalTz: tz, saveDate: now, emailId: emailIdOf(ids[i]!), size, modseq });
    });
    // RFC 8474 §5.2: the THREADID is fixed at delivery (threadids.ts).
    for (const id of ids) assignThreadId((sql) => this.q(sql), mb.user_id, id);
    this.q('UPDATE mailboxes SET uid_next = ?, highest_modseq = ? WHERE id = ?').run(
      mb.uid_next + items.length,
      modseq,
      mailboxId,
    );
    emit({ kind: 'append', userId: mb.user_id, mailboxId, modseq, messages: metas });
    return { uidValidity: mb.uid_validity, uids: metas.map((m) => m.uid) };
  }

  /**
   * REPLACE (RFC 8508 §3.4): `uid` leaves the source mailbox and `item` is
   * appended to the destination in one transaction, the removal first so
   * that quota sees only the net change. A source message that is already
   * gone fails the whole command (EXPUNGEISSUED) and appends nothing.
   */
  replaceMessage(sourceMailboxId: number, uid: number, destMailboxId: number, item: AppendInput): Promise<AppendResult> {
    return this.run(async () => {
      const parsed = [parseFlags(item.flags)];
      this.existing(sourceMailboxId);
      this.existing(destMailboxId, 'TRYCREATE');
      const described = [describeMessage(item.data)];
      const ids = await this.allocBlobIds(1);
      await this.blobs.writeAll(ids, [item.data]);
      let result: AppendResult;
      try {
        result = await this.write((emit) => {
          const src = this.existing(sourceMailboxId);
          if (this.rowsFor(sourceMailboxId, [uid]).length === 0) throw new StoreError('EXPUNGEISSUED', 'the message to replace no longer exists');
          this.removeInTx(src, [uid], emit);
          return this.appendInTx(destMailboxId, [item], ids, described, parsed, emit);
        });
      } catch (err) {
        await this.blobs.unlinkAll(ids).catch(() => undefined);
        throw err;
      }
      await this.purgeTrash();
      return result;
    });
  }

  /** A connection that writes the full-text index file (indexPendingText). */
  protected abstract fullTextWriter(): Database.Database;

  // ---- STORE

  storeFlags(
    mailboxId: number,
    uids: number[],
    op: FlagOp,
    flags: Flag[],
    unchangedSince?: number,
  ): Promise<StoreFlagsResult> {
    return this.run(async () => {
      const { sys, keywords } = parseFlags(flags);
      // Big sets change in transactions of STORE_BATCH messages (each its own modseq and change
      // record), so a "mark all as read" on 100k messages never holds the event loop for long.
      const sorted = uids.length <= STORE_BATCH ? uids : [...new Set(uids)].sort((a, b) => a - b);
      const out: StoreFlagsResult = { changed: [], modified: [] };
      for (let i = 0; i < sorted.length || i === 0; i += STORE_BATCH) {
        if (i > 0) await new Promise((r) => setImmediate(r));
        const part = await this.storeChunk(mailboxId, sorted.length <= STORE_BATCH ? sorted : sorted.slice(i, i + STORE_BATCH), op, sys, keywords, unchangedSince);
        for (const m of part.changed) out.changed.push(m);
        for (const u of part.modified) out.modified.push(u);
      }
      return out;
    });
  }

  private storeChunk(mailboxId: number, uids: readonly number[], op: FlagOp, sys: number, keywords: string[], unchangedSince: number | undefined): Promise<StoreFlagsResult> {
    return this.write((emit) => {
      const mb = this.existing(mailboxId);
      const rows = uids.length === 0 ? [] : this.rowsFor(mailboxId, uids);
      const result: StoreFlagsResult = { changed: [], modified: [] };
      if (rows.length === 0) return result;
      // Removal only needs case-insensitive matching; add/set register keywords (RFC 9051 §2.3.2).
      const kwNames = op === 'remove' ? keywords : new KeywordTable(this, mailboxId).resolve(keywords);
      const kwLower = new Set(kwNames.map((k) => k.toLowerCase()));
      const modseq = mb.highest_modseq + 1;
      const pending: [number, number, string][] = [];
      for (const r of rows) {
        // RFC 7162 §3.2: messages changed since UNCHANGEDSINCE are refused and left alone.
        if (unchangedSince !== undefined && r[5] > unchangedSince) {
          result.modified.push(r[0]);
          continue;
        }
        const oldKws = splitKeywords(r[2]);
        let newSys: number;
        let newKws: string[];
        if (op === 'set') {
          newSys = sys;
          newKws = kwNames;
        } else if (op === 'add') {
          newSys = r[1] | sys;
          const have = new Set(oldKws.map((k) => k.toLowerCase()));
          newKws = [...oldKws, ...kwNames.filter((k) => !have.has(k.toLowerCase()))];
        } else {
          newSys = r[1] & ~sys;
          newKws = oldKws.filter((k) => !kwLower.has(k.toLowerCase()));
        }
        const kwCol = encodeKeywords(newKws);
        if (newSys === r[1] && kwCol === r[2]) continue;
        pending.push([r[0], newSys, kwCol]);
        result.changed.push({ ...meta(r), flags: decodeFlags(newSys, kwCol), modseq });
      }
      if (pending.length === 0) return result;
      const upd = this.q('UPDATE messages SET sysflags = ?, keywords = ?, modseq = ? WHERE mailbox_id = ? AND uid = ?');
      for (const [uid, s, k] of pending) upd.run(s, k, modseq, mailboxId, uid);
      this.q('UPDATE mailboxes SET highest_modseq = ? WHERE id = ?').run(modseq, mailboxId);
      emit({ kind: 'flags', userId: mb.user_id, mailboxId, modseq, messages: result.changed });
      return result;
    }, true);
  }

  // ---- COPY / MOVE / EXPUNGE

  copyMessages(sourceMailboxId: number, uids: number[], destMailboxId: number): Promise<CopyResult> {
    return this.run(async () => {
      const want = [...new Set(uids)].sort((a, b) => a - b);
      if (want.length <= COPY_BATCH) return this.write((emit) => this.copyInTx(sourceMailboxId, want, destMailboxId, emit).result);
      // In transactions of COPY_BATCH messages, so that copying 100k never holds the event loop; others
      // see the copies arrive in steps. RFC 9051 §6.4.7: an unsuccessful COPY restores the destination,
      // so a failure part way (OVERQUOTA from the quota trigger, the destination deleted, I/O) removes the
      // steps already committed before the error is answered.
      const total: CopyResult = { uidValidity: 0, sourceUids: [], destUids: [] };
      try {
        for (let i = 0; i < want.length; i += COPY_BATCH) {
          const part = want.slice(i, i + COPY_BATCH);
          const r = await this.write((emit) => this.copyInTx(sourceMailboxId, part, destMailboxId, emit).result);
          total.uidValidity = r.uidValidity;
          for (const u of r.sourceUids) total.sourceUids.push(u);
          for (const u of r.destUids) total.destUids.push(u);
          if (i + COPY_BATCH < want.length) await new Promise((res) => setImmediate(res));
        }
      } catch (e) {
        await this.undoCopies(destMailboxId, total.destUids);
        throw e;
      }
      return total;
    });
  }

  moveMessages(sourceMailboxId: number, uids: number[], destMailboxId: number): Promise<CopyResult> {
    return this.run(async () => {
      const want = [...new Set(uids)].sort((a, b) => a - b);
      if (want.length <= COPY_BATCH) return this.write((emit) => this.moveInTx(sourceMailboxId, want, destMailboxId, emit));
      // In transactions of COPY_BATCH messages, each moving its messages at once: RFC 6851 §3.3 asks
      // that every message be moved or unaffected, never in both mailboxes nor lost, which each step
      // keeps; a failure part way answers NO with the earlier steps moved (their EXPUNGEs tell the client).
      const total: CopyResult = { uidValidity: 0, sourceUids: [], destUids: [] };
      for (let i = 0; i < want.length; i += COPY_BATCH) {
        const part = want.slice(i, i + COPY_BATCH);
        const r = await this.write((emit) => this.moveInTx(sourceMailboxId, part, destMailboxId, emit));
        total.uidValidity = r.uidValidity;
        for (const u of r.sourceUids) total.sourceUids.push(u);
        for (const u of r.destUids) total.destUids.push(u);
        if (i + COPY_BATCH < want.length) await new Promise((res) => setImmediate(res));
      }
      return total;
    });
  }

  /** Removes the copies a failed COPY made in its earlier steps (RFC 9051 §6.4.7), in bounded transactions. */
  private async undoCopies(destMailboxId: number, destUids: readonly number[]): Promise<void> {
    for (let i = 0; i < destUids.length; i += REMOVE_BATCH) {
      const part = destUids.slice(i, i + REMOVE_BATCH);
      await this.write((emit) => {
        const mb = this.mailboxById(destMailboxId);
        if (mb) this.removeInTx(mb, part, emit);
      });
    }
    if (destUids.length > 0) await this.purgeTrash();
  }

  expunge(mailboxId: number, uids?: number[]): Promise<number[]> {
    return this.run(async () => {
      // In transactions of REMOVE_BATCH messages, each with its own modseq and
      // change record, so expunging 100k messages never holds the event loop
      // (or the write lock) for long. Others see the messages go in steps, as
      // RFC 9051 §7.5.1 allows (each EXPUNGE response stands on its own).
      // Even with nothing flagged \Deleted this goes through a write: its first read of the mailbox row
      // publishes what other workers committed to it (store.ts caughtUp), so a session's EXPUNGE ends
      // knowing of an expunge another worker's session made a moment before (the mixed load found it).
      const want = uids === undefined ? null : [...new Set(uids)].sort((a, b) => a - b);
      const all: number[] = [];
      let lastUid = 0;
      let cursor = 0;
      for (;;) {
        const gone = await this.write((emit) => {
          const mb = this.existing(mailboxId);
          let list: number[];
          if (want === null) {
            list = this.qp(
              `SELECT uid FROM messages WHERE mailbox_id = ? AND (sysflags & ${FLAG_DELETED}) != 0 AND uid > ? ORDER BY uid LIMIT ?`,
            ).all(mailboxId, lastUid, REMOVE_BATCH) as number[];
          } else {
            const part = want.slice(cursor, cursor + REMOVE_BATCH);
            cursor += part.length;
            list = part.length === 0 ? [] : this.rowsFor(mailboxId, part).filter((r) => r[1] & FLAG_DELETED).map((r) => r[0]);
          }
          if (list.length > 0) this.removeInTx(mb, list, emit);
          return list;
        }, true);
        for (const u of gone) all.push(u);
        if (gone.length) lastUid = gone[gone.length - 1]!;
        if (want === null ? gone.length < REMOVE_BATCH : cursor >= want.length) break;
        await new Promise((r) => setImmediate(r));
      }
      if (all.length > 0) {
        // Durability "mail": the files go once the expunge is durable (purgeTrash waits for it), after the answer.
        if (this.lazyDurability()) void this.purgeTrash(true).catch(() => undefined);
        else await this.purgeTrash();
      }
      return all;
    });
  }

  /**
   * Expunges every message of a mailbox in transactions of REMOVE_BATCH (so
   * sessions that have it selected see EXPUNGEs), before a DELETE removes
   * the mailbox itself in one short transaction.
   */
  protected async drainMailbox(mailboxId: number): Promise<void> {
    for (;;) {
      const n = await this.write((emit) => {
        const mb = this.mailboxById(mailboxId);
        if (!mb) return 0;
        const list = this.qp('SELECT uid FROM messages WHERE mailbox_id = ? ORDER BY uid LIMIT ?').all(mailboxId, REMOVE_BATCH) as number[];
        if (list.length > 0) this.removeInTx(mb, list, emit);
        return list.length;
      });
      if (n < REMOVE_BATCH) return;
      await new Promise((r) => setImmediate(r));
    }
  }

  /** Copies existing source UIDs (ascending) to new ascending UIDs in the destination, sharing bodies. */
  protected copyInTx(
    sourceMailboxId: number,
    uids: readonly number[],
    destMailboxId: number,
    emit: (c: Change) => void,
  ): { result: CopyResult; source: MailboxRow } {
    const src = this.existing(sourceMailboxId);
    const dest = this.existing(destMailboxId, 'TRYCREATE');
    const rows =
      uids.length === 0
        ? []
        : (this.q(
            `SELECT uid, blob_id, sysflags, keywords, internal_date, size, internal_tz,
                    sort_subject, sort_from, sort_to, sort_cc, sort_dfrom, sort_dto, sort_date FROM messages
             WHERE mailbox_id = ? AND uid IN (SELECT value FROM json_each(?)) ORDER BY uid`,
          )
            .raw()
            .all(sourceMailboxId, uidJson(uids)) as CopyRow[]);
    const result: CopyResult = { uidValidity: dest.uid_validity, sourceUids: [], destUids: [] };
    if (rows.length === 0) return { result, source: src };
    if (dest.uid_next + rows.length - 1 > MAX_UID) throw new StoreError('LIMIT', 'mailbox UID space exhausted');
    const kw = new KeywordTable(this, destMailboxId);
    const modseq = dest.highest_modseq + 1;
    // The copy's sort keys are the source row's (the same body and INTERNALDATE); a source row without them
    // (stored before schema V11, not yet backfilled: all NULL) leaves them to the messages_sort_ai trigger.
    const ins = this.q(INSERT_MESSAGE_SORTED);
    const metas: MessageMeta[] = [];
    // RFC 8514 §3: a copy (and a moved message) gets a new save date; INTERNALDATE and its zone travel (RFC 9051 §6.4.7).
    const now = Date.now();
    rows.forEach(([uid, blobId, sys, kwCol, date, size, tz, ...sortCols], i) => {
      const destUid = dest.uid_next + i;
      const destKw = kwCol === '' ? '' : encodeKeywords(kw.resolve(splitKeywords(kwCol)));
      ins.run(dest.sort_indexed > 0 ? 1 : 0, destMailboxId, destUid, blobId, sys, destKw, date, size, modseq, tz, now, ...sortCols);
      result.sourceUids.push(uid);
      result.destUids.push(destUid);
      metas.push({ uid: destUid, flags: decodeFlags(sys, destKw), internalDate: date, internalTz: tz, saveDate: now, emailId: emailIdOf(blobId), size, modseq });
    });
    this.q('UPDATE mailboxes SET uid_next = ?, highest_modseq = ? WHERE id = ?').run(
      dest.uid_next + rows.length,
      modseq,
      destMailboxId,
    );
    emit({ kind: 'append', userId: dest.user_id, mailboxId: destMailboxId, modseq, messages: metas });
    return { result, source: src };
  }

  /** RFC 6851: copy, then expunge the originals, in the caller's transaction. */
  protected moveInTx(sourceMailboxId: number, uids: readonly number[], destMailboxId: number, emit: (c: Change) => void): CopyResult {
    const { result } = this.copyInTx(sourceMailboxId, uids, destMailboxId, emit);
    if (result.sourceUids.length > 0) {
      // Re-read: a move within one mailbox has just changed its uid_next and modseq.
      this.removeInTx(this.existing(sourceMailboxId), result.sourceUids, emit);
    }
    return result;
  }

  /** Keeps the newest EXPUNGE_TOMBSTONES_KEPT tombstones of a mailbox and records the modseq below which history is gone. */
  private pruneTombstones(mailboxId: number): void {
    const cut = this.q('SELECT modseq FROM expunged WHERE mailbox_id = ? ORDER BY modseq DESC LIMIT 1 OFFSET ?')
      .pluck()
      .get(mailboxId, EXPUNGE_TOMBSTONES_KEPT) as number | undefined;
    if (cut === undefined) return;
    this.q('DELETE FROM expunged WHERE mailbox_id = ? AND modseq <= ?').run(mailboxId, cut);
    this.q('UPDATE mailboxes SET tombstone_floor = max(tombstone_floor, ?) WHERE id = ?').run(cut, mailboxId);
  }

  /** The row of a new body: size, MIME structure and SEARCH header index (inside the caller's transaction). */
  protected insertBody(id: number, size: number, d: ReturnType<typeof describeMessage>): void {
    const ix = d.index;
    this.q(
      `INSERT INTO blobs (id, size, structure, header, idx_from, idx_to, idx_cc, idx_bcc, idx_subject, idx_sent_day, indexed, bare_lf)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)`,
    ).run(id, size, d.structure, d.header, ix.from, ix.to, ix.cc, ix.bcc, ix.subject, ix.sentDay, d.bareLf);
    this.storeSortKeys(id, d.sort);
    // Full-text indexing happens after the commit, off this thread (text-worker.ts): blobs.fts stays 0 until then.
  }

  /** Keeps a body's SORT/THREAD keys (schema V11; sorting.ts reads them) and its thread index row (threading.ts). */
  protected storeSortKeys(id: number, k: SortKeys): void {
    this.q(
      `INSERT OR REPLACE INTO sort_keys (blob_id, subject, addr_from, addr_to, addr_cc, disp_from, disp_to, sent, reply, msgid, refs, irt)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(id, k.subject, k.from, k.to, k.cc, k.displayFrom, k.displayTo, k.date, k.isReply ? 1 : 0, k.messageId, k.references, k.inReplyTo);
    storeThreadKeys((sql) => this.q(sql), id, k);
  }

  /**
   * Puts up to `max` bodies not yet in the full-text index into it, on this
   * thread; returns how many were handled, 0 when none is left. A server
   * leaves this to its indexing thread (startBackgroundWork); `quire doctor
   * --repair` and tests call it. Losing a batch on power failure only means
   * indexing it again.
   */
  indexPendingText(max = TEXT_INDEX_BATCH): Promise<number> {
    return this.run(() => indexPendingBodies((sql) => this.q(sql), this.fullTextWriter(), (id) => this.blobs.pathOf(id), (fn) => this.relaxed(fn), max));
  }

  /** Deletes the given (existing, ascending) UIDs and leaves tombstones with one new modseq. */
  private removeInTx(mb: MailboxRow, uids: readonly number[], emit: (c: Change) => void): void {
    const modseq = mb.highest_modseq + 1;
    const del = this.q('DELETE FROM messages WHERE mailbox_id = ? AND uid = ?');
    const tomb = this.q('INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq) VALUES (?, ?, ?)');
    for (const uid of uids) {
      del.run(mb.id, uid);
      tomb.run(mb.id, uid, modseq);
    }
    this.q('UPDATE mailboxes SET highest_modseq = ? WHERE id = ?').run(modseq, mb.id);
    if (modseq % TOMBSTONE_PRUNE_EVERY === 0) this.pruneTombstones(mb.id);
    emit({ kind: 'expunge', userId: mb.user_id, mailboxId: mb.id, modseq, uids: [...uids] });
  }
}
