// Message metadata rows (UID, flags, dates, sizes, modseqs) and the in-memory
// snapshots of big mailboxes' metadata, so SELECT, FETCH of flags (a caching
// client's resync) and SEARCH over 100k messages read no rows. A snapshot is
// brought up to date on every use from what changed since its modseq,
// whichever process wrote: rows with a greater modseq (flag changes and
// appends) and expunge tombstones; then it must agree with the mailbox row's
// message count and UIDNEXT, or it is read again whole.
import type { MessageMeta } from '../types.js';
import { decodeFlags } from './flags.js';
import type { MailboxRow } from './messages.js';

/** [uid, sysflags, keywords, internal_date, size, modseq, internal_tz, save_date, blob_id] as returned by `.raw()`. */
export type MetaRow = [number, number, string, number, number, number, number, number | null, number];
export const META_COLS = 'uid, sysflags, keywords, internal_date, size, modseq, internal_tz, save_date, blob_id';

/** RFC 8474 EMAILID of a stored body: blob ids are never reused, and every copy shares its body's. */
export function emailIdOf(blobId: number): string {
  return `M${blobId}`;
}

/** The blob id named by an EMAILID, or null when it names none of ours. */
export function blobIdOfEmailId(id: string): number | null {
  if (!/^M[1-9][0-9]{0,15}$/.test(id)) return null;
  const n = Number(id.slice(1));
  return Number.isSafeInteger(n) ? n : null;
}

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

/** Mailboxes with at least this many messages have their metadata kept in memory; smaller ones are cheap to read. */
const SNAPSHOT_MIN = 1_000;
/** Messages whose metadata is kept across all snapshots (about 120 bytes each; flag arrays are shared). */
const SNAPSHOT_MAX_MESSAGES = 1_000_000;

/** A big mailbox's metadata in memory. */
export interface Snapshot {
  uidValidity: number;
  uidNext: number;
  modseq: number;
  /** Ascending. */
  uids: number[];
  /** metas[i] is the message with uids[i]. */
  metas: MessageMeta[];
}

/** What snapshots are read from (the store's statements). */
export interface SnapshotSource {
  /** Every message of the mailbox, ascending by UID. */
  all(mailboxId: number): MetaRow[];
  /** Messages whose modseq is greater, ascending by UID. */
  changedSince(mailboxId: number, modseq: number): MetaRow[];
  /** UIDs expunged with a greater modseq (tombstones). */
  expungedSince(mailboxId: number, modseq: number): number[];
}

export class Snapshots {
  private readonly byMailbox = new Map<number, Snapshot>();

  constructor(private readonly source: SnapshotSource) {}

  /** The current metadata of `mb` (read just now), or null when it is small. Callers must not change what they get. */
  get(mb: MailboxRow): Snapshot | null {
    let s = this.byMailbox.get(mb.id);
    this.byMailbox.delete(mb.id); // re-inserted below when kept: most recently used last
    if (mb.msg_count < SNAPSHOT_MIN) return null;
    if (s && (s.uidValidity !== mb.uid_validity || ((s.modseq !== mb.highest_modseq || s.uidNext !== mb.uid_next) && !this.catchUp(s, mb)))) {
      s = undefined;
    }
    if (!s) {
      // Built by push: packed arrays (no holes) are copied fast by slice().
      const uids: number[] = [];
      const metas: MessageMeta[] = [];
      for (const row of this.source.all(mb.id)) {
        uids.push(row[0]);
        metas.push(meta(row));
      }
      s = { uidValidity: mb.uid_validity, uidNext: mb.uid_next, modseq: mb.highest_modseq, uids, metas };
    }
    this.byMailbox.set(mb.id, s);
    let total = 0;
    for (const x of this.byMailbox.values()) total += x.uids.length;
    for (const [id, x] of this.byMailbox) {
      if (total <= SNAPSHOT_MAX_MESSAGES || id === mb.id) break;
      this.byMailbox.delete(id);
      total -= x.uids.length;
    }
    return s;
  }

  /** Applies the changes since `s.modseq`; false when the result does not add up (read it again). */
  private catchUp(s: Snapshot, mb: MailboxRow): boolean {
    if (s.modseq < mb.tombstone_floor) return false; // tombstones of some expunges are gone
    const gone = this.source.expungedSince(mb.id, s.modseq);
    const changed = this.source.changedSince(mb.id, s.modseq);
    if (gone.length + changed.length > s.uids.length / 4) return false; // reading it whole is as cheap
    if (gone.length) {
      const drop = new Set(gone);
      let w = 0;
      for (let r = 0; r < s.uids.length; r++) {
        if (drop.has(s.uids[r]!)) continue;
        s.uids[w] = s.uids[r]!;
        s.metas[w++] = s.metas[r]!;
      }
      s.uids.length = w;
      s.metas.length = w;
    }
    for (const row of changed) {
      const uid = row[0];
      const i = indexOfUid(s.uids, uid);
      if (i >= 0) s.metas[i] = meta(row);
      else if (s.uids.length === 0 || uid > s.uids[s.uids.length - 1]!) {
        s.uids.push(uid);
        s.metas.push(meta(row));
      } else return false; // a UID below the last one appeared: not an append this can place
    }
    s.modseq = mb.highest_modseq;
    s.uidNext = mb.uid_next;
    return s.uids.length === mb.msg_count && (s.uids.length === 0 || s.uids[s.uids.length - 1]! < mb.uid_next);
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
      if (i >= 0) out.push(s.metas[i]!);
    }
    return out;
  }
  // Walk from the first requested UID: a dense range ("1:*", a page) is a straight copy.
  let i = lowerBound(s.uids, want[0]!);
  for (const u of want) {
    while (i < s.uids.length && s.uids[i]! < u) i++;
    if (i >= s.uids.length) break;
    if (s.uids[i] === u) out.push(s.metas[i]!);
  }
  return out;
}
