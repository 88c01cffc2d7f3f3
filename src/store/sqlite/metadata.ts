// Message metadata rows (UID, flags, dates, sizes, modseqs) and the in-memory
// snapshots of every non-empty mailbox's metadata, so SELECT and FETCH of
// flags (a caching client's resync) read no rows: over 100k messages, and on
// the small shared mailboxes a busy server serves again and again (issue 11:
// the mixed load's FETCH 1:* on ~30 messages read and decoded every row). A
// small mailbox's snapshot is brought up to date synchronously, inside the
// caller's read transaction (one consistent view: refreshNow). A snapshot is
// brought up to date on every use from what changed since its modseq,
// whichever process wrote: rows with a greater modseq (flag changes and
// appends) and expunge tombstones; then it must agree with the mailbox row's
// message count and UIDNEXT, or it is read again whole.
import type Database from 'better-sqlite3';
import type { MessageMeta } from '../types.js';
import { decodeFlags } from './flags.js';
import type { MailboxRow } from './messages.js';
import { emailIdOf } from '../objectid.js';

/** [uid, sysflags, keywords, internal_date, size, modseq, internal_tz, save_date, blob_id] as returned by `.raw()`. */
export type MetaRow = [number, number, string, number, number, number, number, number | null, number];
export const META_COLS = 'uid, sysflags, keywords, internal_date, size, modseq, internal_tz, save_date, blob_id';


/** The server's zone at instant `ms`, minutes east of UTC (LMTP delivery's and a zone-less source's INTERNALDATE zone). */
export function localZoneAt(ms: number): number {
  return 0 - new Date(ms).getTimezoneOffset(); // never -0
}

export function meta(r: MetaRow): MessageMeta {
  return {
    uid: r[0],
    flags: decodeFlags(r[1], r[2]),
    internalDate: r[3],
    internalTz: r[6],
    saveDate: r[7],
    emailId: emailIdOf(r[8]),
    size: r[4],
    modseq: r[5],
  };
}

/** Mailboxes with at least this many messages have their metadata kept in memory (every non-empty one). */
const SNAPSHOT_MIN = 1;
/**
 * Below this many messages a mailbox is "small": its snapshot is refreshed synchronously in the
 * caller's read transaction (no paging needed), and a read of fewer than SMALL_READ messages may
 * read its rows instead of refreshing a stale snapshot (one row costs less than a catch-up).
 */
export const SNAPSHOT_SMALL = 1_000;
/** See SNAPSHOT_SMALL. */
export const SMALL_READ = 16;
/** Messages whose metadata is kept across all snapshots (about 120 bytes each; flag arrays are shared). */
const SNAPSHOT_MAX_MESSAGES = 1_000_000;
/** What a snapshot counts against SNAPSHOT_MAX_MESSAGES beyond its messages (its objects and arrays), so many small ones are bounded too. */
const SNAPSHOT_OVERHEAD = 64;
/** Rows a snapshot's columns hold room for at first (grown by doubling; a small mailbox's stays small). */
const COLUMNS_MIN = 16;
/**
 * Rows read per statement while a snapshot is built or brought up to date: a millisecond or two
 * of the event loop (STYLE.md habit 14), then other connections get a turn. A 100k-message mailbox's
 * first SELECT read all its rows in one statement and held the loop 0.4-4 s on a loaded machine.
 */
const SNAPSHOT_PAGE = 1_000;
/** Rounds of catching up one refresh may take before it gives up on a mailbox that never stops changing (then the caller reads it again). */
const SNAPSHOT_MAX_ROUNDS = 50;

/** A big mailbox's metadata in memory. */
export interface Snapshot {
  uidValidity: number;
  uidNext: number;
  modseq: number;
  /** Ascending. */
  uids: number[];
  /** rows.at(i) is the message with uids[i]. */
  rows: MetaColumns;
}

/**
 * A snapshot's metadata as columns: numbers in typed arrays, flags as references to the shared frozen
 * arrays of decodeFlags, no object per message. As 100k MessageMeta objects (~14 MB: the object, its
 * boxed dates, its EMAILID string) every major garbage collection of the process walked them: +20 ms
 * per collection on a loaded machine, on the event loop. Objects are made when asked for.
 */
export class MetaColumns {
  length = 0;
  private flags: (readonly string[])[] = [];
  private num = new Float64Array(0);
  /** Numbers per row in `num`: internal date, size, modseq, zone, save date (NaN: none), blob id. */
  private static readonly W = 6;

  private grow(n: number): void {
    const W = MetaColumns.W;
    if (n * W <= this.num.length) return;
    const next = new Float64Array(Math.max(n, 2 * this.num.length / W, COLUMNS_MIN) * W);
    next.set(this.num.subarray(0, this.length * W));
    this.num = next;
  }

  /** Row `i` from a database row. */
  set(i: number, r: MetaRow): void {
    const W = MetaColumns.W;
    this.flags[i] = decodeFlags(r[1], r[2]);
    const o = i * W;
    this.num[o] = r[3];
    this.num[o + 1] = r[4];
    this.num[o + 2] = r[5];
    this.num[o + 3] = r[6];
    this.num[o + 4] = r[7] ?? NaN;
    this.num[o + 5] = r[8];
  }

  push(r: MetaRow): void {
    this.grow(this.length + 1);
    this.set(this.length++, r);
  }

  /** Row `from` copied to row `to` (to <= from: compaction). */
  move(from: number, to: number): void {
    const W = MetaColumns.W;
    this.flags[to] = this.flags[from]!;
    this.num.copyWithin(to * W, from * W, from * W + W);
  }

  truncate(n: number): void {
    this.length = n;
    this.flags.length = n;
  }

  /** The metadata of row `i` as a new object (the caller may keep it; its flags array is shared and frozen). */
  at(uid: number, i: number): MessageMeta {
    const o = i * MetaColumns.W;
    const n = this.num;
    const save = n[o + 4]!;
    return { uid, flags: this.flags[i] as MessageMeta['flags'], internalDate: n[o]!, internalTz: n[o + 3]!, saveDate: Number.isNaN(save) ? null : save, emailId: emailIdOf(n[o + 5]!), size: n[o + 1]!, modseq: n[o + 2]! };
  }
}

/** Objects made per turn of the event loop when a whole snapshot is listed (listMessages). */
const LIST_SLICE = 5_000;

/** Every message of the snapshot as objects, ascending by UID, a slice per turn of the event loop. */
export async function allMetas(s: Snapshot): Promise<MessageMeta[]> {
  const out = new Array<MessageMeta>(s.uids.length);
  for (let i = 0; i < s.uids.length; i++) {
    if (i > 0 && i % LIST_SLICE === 0) await tick();
    out[i] = s.rows.at(s.uids[i]!, i);
  }
  return out;
}

/** What snapshots are read from (the store's statements); every call is one statement, so each sees one commit. */
export interface SnapshotSource {
  /** The mailbox row as it is now, or undefined when it is gone. */
  mailbox(mailboxId: number): MailboxRow | undefined;
  /** Up to `limit` messages with a UID above `afterUid`, ascending by UID (the primary key). */
  page(mailboxId: number, afterUid: number, limit: number): MetaRow[];
  /** Up to `limit` messages whose (modseq, uid) is above (`afterModseq`, `afterUid`), in that order (the modseq index). */
  changedPage(mailboxId: number, afterModseq: number, afterUid: number, limit: number): MetaRow[];
  /** UIDs expunged with a greater modseq (tombstones). */
  expungedSince(mailboxId: number, modseq: number): number[];
}

/** The store's statements a snapshot reads. */
export function snapshotSource(q: (sql: string) => Database.Statement, mailbox: (id: number) => MailboxRow | undefined): SnapshotSource {
  return {
    mailbox,
    page: (id, after, limit) => q(`SELECT ${META_COLS} FROM messages WHERE mailbox_id = ? AND uid > ? ORDER BY uid LIMIT ?`).raw().all(id, after, limit) as MetaRow[],
    // The modseq index holds the primary key too: (mailbox_id, modseq, uid), so a page is a range of it.
    changedPage: (id, modseq, uid, limit) =>
      q(`SELECT ${META_COLS} FROM messages INDEXED BY messages_modseq WHERE mailbox_id = ? AND (modseq, uid) > (?, ?) ORDER BY modseq, uid LIMIT ?`).raw().all(id, modseq, uid, limit) as MetaRow[],
    expungedSince: (id, modseq) => q('SELECT uid FROM expunged WHERE mailbox_id = ? AND modseq > ?').pluck().all(id, modseq) as number[],
  };
}

const tick = () => new Promise<void>((r) => setImmediate(r));

/**
 * The snapshots of one store. A snapshot is built, or brought up to date, in pages of SNAPSHOT_PAGE
 * rows with the event loop free between them; meanwhile it is private to that refresh and every
 * reader of the mailbox waits for the refresh to end (so no reader sees half of one). Writers are
 * not held: whatever commits during a refresh has a greater modseq than the round that missed it,
 * and the next round reads it (rows by (modseq, uid), expunges from their tombstones), until a round
 * starts with nothing new: the snapshot then equals the mailbox at that moment. Nothing is lost or
 * counted twice: rows are placed by UID, and a row read twice replaces itself.
 */
export class Snapshots {
  private readonly byMailbox = new Map<number, Snapshot>();
  /** What each kept snapshot was counted as (messages + SNAPSHOT_OVERHEAD) when last kept, and their sum. */
  private readonly counted = new Map<number, number>();
  private total = 0;
  /** Refreshes running, by mailbox: readers of that mailbox wait for them. */
  private readonly refreshing = new Map<number, Promise<Snapshot | null>>();

  constructor(private readonly source: SnapshotSource) {}

  /**
   * The mailbox's snapshot when it needs no refresh (null: the mailbox is empty or gone), read in this
   * turn; undefined when refreshNow() or get() must build or refresh it first. Callers must not change
   * what they get.
   */
  current(mailboxId: number): Snapshot | null | undefined {
    if (this.refreshing.has(mailboxId)) return undefined;
    const mb = this.source.mailbox(mailboxId);
    if (!mb || mb.msg_count < SNAPSHOT_MIN) {
      this.forget(mailboxId);
      return null;
    }
    const s = this.byMailbox.get(mailboxId);
    if (s && s.uidValidity === mb.uid_validity && s.modseq === mb.highest_modseq && s.uidNext === mb.uid_next) {
      this.keep(mailboxId, s);
      return s;
    }
    return undefined;
  }

  /** Whether the mailbox is small (SNAPSHOT_SMALL): its snapshot is refreshed with refreshNow. */
  isSmall(mailboxId: number): boolean {
    const mb = this.source.mailbox(mailboxId);
    return !mb || mb.msg_count < SNAPSHOT_SMALL;
  }

  /**
   * A small mailbox's snapshot brought up to date now, synchronously (undefined: the mailbox is not
   * small, or a paged refresh is running: use get()). The caller runs it inside one read
   * transaction, so every statement sees the same commit and one round makes the snapshot equal
   * to the mailbox; should it not agree with the mailbox row's counters all the same, it is read
   * whole once more, and failing that, the caller reads rows (null).
   */
  refreshNow(mailboxId: number): Snapshot | null | undefined {
    if (this.refreshing.has(mailboxId)) return undefined;
    const mb = this.source.mailbox(mailboxId);
    if (!mb || mb.msg_count < SNAPSHOT_MIN) {
      this.forget(mailboxId);
      return null;
    }
    if (mb.msg_count >= SNAPSHOT_SMALL) return undefined;
    let s = this.byMailbox.get(mailboxId) ?? null;
    this.forget(mailboxId);
    if (s && (s.uidValidity !== mb.uid_validity || s.modseq < mb.tombstone_floor)) s = null;
    for (let attempt = 0; attempt < 2; attempt++) {
      if (s && !(s.modseq === mb.highest_modseq && s.uidNext === mb.uid_next) && !this.catchUpPage(mailboxId, s, mb)) s = null;
      s ??= this.buildPage(mailboxId, mb);
      if (s && s.modseq === mb.highest_modseq && s.uidNext === mb.uid_next && s.uids.length === mb.msg_count && (s.uids.length === 0 || s.uids[s.uids.length - 1]! < mb.uid_next)) {
        this.keep(mailboxId, s);
        return s;
      }
      s = null;
    }
    return null;
  }

  private forget(mailboxId: number): void {
    if (!this.byMailbox.delete(mailboxId)) return;
    this.total -= this.counted.get(mailboxId) ?? 0;
    this.counted.delete(mailboxId);
  }

  /** The current metadata of the mailbox, or null when it is small (or gone). Callers must not change what they get. */
  get(mailboxId: number): Promise<Snapshot | null> {
    const now = this.current(mailboxId);
    if (now !== undefined) return Promise.resolve(now);
    const running = this.refreshing.get(mailboxId);
    if (running) return running;
    const p = this.refresh(mailboxId, this.byMailbox.get(mailboxId) ?? null).finally(() => this.refreshing.delete(mailboxId));
    this.refreshing.set(mailboxId, p);
    return p;
  }

  /** Drops every snapshot (the next use reads its mailbox again). */
  clear(): void {
    this.byMailbox.clear();
    this.counted.clear();
    this.total = 0;
  }

  /** Messages (plus SNAPSHOT_OVERHEAD each) counted over the kept snapshots (tests). */
  get counting(): number {
    return this.total;
  }

  /** Keeps `s` as the most recently used snapshot, dropping the least recently used past SNAPSHOT_MAX_MESSAGES. */
  private keep(mailboxId: number, s: Snapshot): void {
    this.forget(mailboxId);
    const n = s.uids.length + SNAPSHOT_OVERHEAD;
    this.byMailbox.set(mailboxId, s);
    this.counted.set(mailboxId, n);
    this.total += n;
    for (const id of this.byMailbox.keys()) {
      if (this.total <= SNAPSHOT_MAX_MESSAGES || id === mailboxId) break;
      this.forget(id);
    }
  }

  /** A small mailbox read whole in one statement (null: it grew past one page meanwhile). */
  private buildPage(mailboxId: number, mb: MailboxRow): Snapshot | null {
    const rows = this.source.page(mailboxId, 0, SNAPSHOT_PAGE);
    if (rows.length >= SNAPSHOT_PAGE) return null;
    const uids: number[] = [];
    const cols = new MetaColumns();
    for (const row of rows) {
      uids.push(row[0]);
      cols.push(row);
    }
    return { uidValidity: mb.uid_validity, uidNext: mb.uid_next, modseq: mb.highest_modseq, uids, rows: cols };
  }

  /** catchUp in one statement of changes (false: more than a page changed, or an append cannot be placed). */
  private catchUpPage(mailboxId: number, s: Snapshot, mb: MailboxRow): boolean {
    const rows = this.source.changedPage(mailboxId, s.modseq, Number.MAX_SAFE_INTEGER, SNAPSHOT_PAGE);
    if (rows.length >= SNAPSHOT_PAGE) return false;
    this.dropExpunged(mailboxId, s);
    const added = new Map<number, MetaRow>();
    this.apply(s, rows, added);
    return this.finish(s, added, mb);
  }

  /** Removes the messages expunged since `s.modseq` (from their tombstones). */
  private dropExpunged(mailboxId: number, s: Snapshot): void {
    const gone = this.source.expungedSince(mailboxId, s.modseq);
    if (!gone.length) return;
    const drop = new Set(gone);
    let w = 0;
    for (let r = 0; r < s.uids.length; r++) {
      if (drop.has(s.uids[r]!)) continue;
      s.uids[w] = s.uids[r]!;
      s.rows.move(r, w++);
    }
    s.uids.length = w;
    s.rows.truncate(w);
  }

  /** Replaces the rows of known messages in place; collects new ones in `added` (placed by finish()). */
  private apply(s: Snapshot, rows: readonly MetaRow[], added: Map<number, MetaRow>): void {
    for (const row of rows) {
      const i = indexOfUid(s.uids, row[0]);
      if (i >= 0) s.rows.set(i, row);
      else added.set(row[0], row);
    }
  }

  /** Appends the new messages (above every known UID) and makes `s` as of `mb`; false when they cannot be placed. */
  private finish(s: Snapshot, added: Map<number, MetaRow>, mb: MailboxRow): boolean {
    if (added.size) {
      const fresh = [...added.keys()].sort((a, b) => a - b);
      if (s.uids.length && fresh[0]! <= s.uids[s.uids.length - 1]!) return false; // a UID below the last one appeared: not an append this can place
      for (const u of fresh) {
        s.uids.push(u);
        s.rows.push(added.get(u)!);
      }
    }
    s.modseq = mb.highest_modseq;
    s.uidNext = mb.uid_next;
    return true;
  }

  /** Builds the snapshot, or brings `old` up to date, in pages; see the class comment. */
  private async refresh(mailboxId: number, old: Snapshot | null): Promise<Snapshot | null> {
    this.forget(mailboxId); // private until done
    let s = old;
    for (let round = 0; round < SNAPSHOT_MAX_ROUNDS; round++) {
      // The mailbox row and the tombstones below are read in one turn: the round's starting point.
      const mb = this.source.mailbox(mailboxId);
      if (!mb || mb.msg_count < SNAPSHOT_MIN) return null;
      if (s && (s.uidValidity !== mb.uid_validity || s.modseq < mb.tombstone_floor)) s = null; // another mailbox, or tombstones gone
      if (s && s.modseq === mb.highest_modseq && s.uidNext === mb.uid_next) {
        // Nothing committed since the round before: it must agree with the mailbox's counters.
        if (s.uids.length === mb.msg_count && (s.uids.length === 0 || s.uids[s.uids.length - 1]! < mb.uid_next)) {
          this.keep(mailboxId, s);
          return s;
        }
        s = null;
        continue;
      }
      const ok = s ? await this.catchUp(mailboxId, s, mb) : ((s = await this.build(mailboxId, mb)), true);
      if (!ok) s = null;
    }
    // Changes never stopped: the caller reads without a snapshot this time (its own statement sees one commit).
    return null;
  }

  /** Every message of the mailbox in UID order, a page per turn; the result is as of `mb` plus whatever committed during the pages. */
  private async build(mailboxId: number, mb: MailboxRow): Promise<Snapshot> {
    const uids: number[] = [];
    const cols = new MetaColumns();
    for (let after = 0; ;) {
      const rows = this.source.page(mailboxId, after, SNAPSHOT_PAGE);
      // Built by push: packed arrays (no holes) are copied fast by slice().
      for (const row of rows) {
        uids.push(row[0]);
        cols.push(row);
      }
      if (rows.length < SNAPSHOT_PAGE) break;
      after = rows[rows.length - 1]![0];
      await tick();
    }
    // Rows read after `mb` was may be newer than it (a later round reads them again, by modseq).
    return { uidValidity: mb.uid_validity, uidNext: mb.uid_next, modseq: mb.highest_modseq, uids, rows: cols };
  }

  /** Applies what changed since `s.modseq` up to `mb` (and maybe more); false when the result cannot be placed (read it whole again). */
  private async catchUp(mailboxId: number, s: Snapshot, mb: MailboxRow): Promise<boolean> {
    this.dropExpunged(mailboxId, s);
    // Changed and new messages in modseq order; new ones are placed once all are read (their UIDs ascend, above every known one).
    const added = new Map<number, MetaRow>();
    let turn = false;
    for (let at: [number, number] = [s.modseq, Number.MAX_SAFE_INTEGER]; ;) {
      if (turn) await tick();
      turn = true;
      const rows = this.source.changedPage(mailboxId, at[0], at[1], SNAPSHOT_PAGE);
      this.apply(s, rows, added);
      if (rows.length < SNAPSHOT_PAGE) return this.finish(s, added, mb);
      const last = rows[rows.length - 1]!;
      at = [last[5], last[0]];
    }
  }
}

/** First position whose UID is >= `uid`. */
function lowerBound(uids: readonly number[], uid: number): number {
  let lo = 0;
  let hi = uids.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (uids[mid]! < uid) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Position of `uid` in ascending `uids`, or -1. */
function indexOfUid(uids: readonly number[], uid: number): number {
  const i = lowerBound(uids, uid);
  return uids[i] === uid ? i : -1;
}

/** The metadata of the requested UIDs that exist, ascending by UID (as the SQL path returns them). */
export function metasOf(s: Snapshot, uids: readonly number[]): MessageMeta[] {
  let ascending = true;
  for (let i = 1; i < uids.length && ascending; i++) ascending = uids[i]! > uids[i - 1]!;
  const want = ascending ? uids : [...new Set(uids)].sort((a, b) => a - b);
  const out: MessageMeta[] = [];
  if (want.length === 0) return out;
  if (want.length <= 64) {
    // A few messages: looked up one by one.
    for (const u of want) {
      const i = indexOfUid(s.uids, u);
      if (i >= 0) out.push(s.rows.at(u, i));
    }
    return out;
  }
  // Walk from the first requested UID: a dense range ("1:*", a page) is a straight copy.
  let i = lowerBound(s.uids, want[0]!);
  for (const u of want) {
    while (i < s.uids.length && s.uids[i]! < u) i++;
    if (i >= s.uids.length) break;
    if (s.uids[i] === u) out.push(s.rows.at(u, i));
  }
  return out;
}
