// The selected-mailbox view: the client's idea of the mailbox. Sequence
// numbers exist only here (STYLE.md habit 9): seq = index in `uids` + 1.
//
// Changes committed by anyone (this session included) arrive from the store's
// change feed and are queued; they reach the client only when `flush` is
// called at a point where RFC 9051 §7.5.1 / RFC 2180 §4 allow it:
//  - EXISTS and FETCH (FLAGS) may be sent during any command;
//  - EXPUNGE must not be sent while answering FETCH, STORE or SEARCH (the
//    non-UID forms), nor when no command is in progress (RFC 9051 §7.5.1).

import type { Change, MessageMeta } from '../store/types.js';
import { formatSequenceSet } from '../wire/index.js';

/** The system flags, in the order of the FLAGS response (RFC 9051 §2.3.2). */
export const SYSTEM_FLAGS: readonly string[] = ['\\Answered', '\\Flagged', '\\Deleted', '\\Seen', '\\Draft'];

/** Distinct notices (SelectedView.notices) queued at most. */
const MAX_NOTICES = 8;

/** Own-change marks kept at most; a mark whose change never arrives must not pile up. */
const MAX_OWN_MODSEQS = 10_000;

/**
 * Queued updates (not yet announced appended messages plus UIDs with a flag
 * change) one selected session may hold. Coalescing already bounds them by
 * the mailbox's size; this bounds that too: 500,000 is five times the
 * 100k-message mailbox we size for, ~60 MB at worst. Past it the session
 * ends with `* BYE [LIMIT]` (the client reconnects and resynchronises).
 */
export const MAX_PENDING_UPDATES = 500_000;

/**
 * A SEARCH or SORT with RETURN (UPDATE) (RFC 5267 §4.3): the results the
 * client has been told, kept in step by ADDTO / REMOVEFROM. Its contents
 * are managed by src/commands/context.ts; it lives with the view because
 * updates stop when the mailbox is no longer selected.
 */
export interface UpdateContext {
  tag: string;
  /** Numbers are UIDs (UID SEARCH / UID SORT) or sequence numbers. */
  uid: boolean;
  /** A SORT context (positions matter) or a SEARCH one (mailbox order, position 0). */
  sorted: boolean;
  /** UIDs the client has been told, in the requested order. */
  told: number[];
  /** The newest result from the store, not yet compared with `told`; null when none is pending. */
  fresh: number[] | null;
  /** What to re-run (opaque here). */
  query: unknown;
}

export class SelectedView {
  /** Searches and sorts whose results the client asked to have kept up to date (RFC 5267 §4.3), by tag. */
  readonly contexts = new Map<string, UpdateContext>();
  /** Client-visible UIDs, ascending. Index + 1 is the sequence number. */
  uids: number[];
  /** UIDs expunged by a committed change but not yet announced to the client. */
  readonly expungedPending = new Set<number>();
  /** Messages this session sees as \Recent (RFC 3501 §2.3.2; rev1 only). */
  readonly recent = new Set<number>();
  /**
   * Queued changes, coalesced as they arrive so that a session that sends no
   * command holds O(messages in the mailbox), never O(changes): appended
   * messages not yet announced (ascending UID), the newest flags of each UID
   * (one entry however often it changed), and the expunged UIDs
   * (`expungedPending`). What the client is finally told is the same: RFC 9051
   * §7.5.2 FETCH reports the current flags, not each step to them.
   */
  private readonly pendingAppends = new Map<number, MessageMeta>();
  /** Newest flags per UID, with the modseq of the change that brought them (own changes are told by STORE/FETCH). */
  private readonly pendingFlags = new Map<number, { meta: MessageMeta; changeModseq: number }>();
  /** Highest UID appended by a queued change (appends at or below it are already queued or in the view). */
  private pendingMaxUid: number;
  /** Highest modseq of queued changes that raise HIGHESTMODSEQ whatever their messages (appends, expunges, foreign flags). */
  private pendingModseq = 0;
  /** Set when more than `maxPending` entries are queued: the connection ends the session (docs/limits.md). */
  overflowed = false;
  /** Queued entries allowed (appends + flag updates); see MAX_PENDING_UPDATES. */
  maxPending = MAX_PENDING_UPDATES;
  /** Modseqs of flag changes this session made itself and already reported. */
  private readonly ownModseqs = new Set<number>();
  /** Highest UID known to the view (appends at or below it are already in it). */
  private maxUid: number;
  /** Latest flags of messages whose change is queued for a FETCH response. */
  highestModseq: number;
  /** Lowest modseq of an expunge not yet announced (Infinity when none): HIGHESTMODSEQ told to the client stays below it. */
  private pendingExpungeModseq = Infinity;
  /** Keywords the client has been told about (lower case -> spelling), for FLAGS / PERMANENTFLAGS updates. */
  private readonly keywords = new Map<string, string>();
  /** Frozen flag lists of the store whose keywords are all in `keywords` (see keywordResponses). */
  private readonly checkedFlagLists = new WeakSet<readonly string[]>();
  /** The last of them (neighbouring messages mostly share one). */
  private lastChecked: readonly string[] | null = null;

  constructor(
    readonly mailboxId: number,
    public mailboxName: string,
    readonly readOnly: boolean,
    readonly uidValidity: number,
    /** The mailbox's UIDs, ascending (the view takes ownership of the array). */
    uids: number[],
    highestModseq: number,
    /** Keywords announced by SELECT's FLAGS response, in its order. */
    keywords: readonly string[] = [],
  ) {
    this.uids = uids;
    this.maxUid = this.uids.length ? this.uids[this.uids.length - 1] : 0;
    this.pendingMaxUid = this.maxUid;
    this.highestModseq = highestModseq;
    this.noteKeywords(keywords);
  }

  /** Record keywords in `flags`; true if one was new to the client. */
  private noteKeywords(flags: readonly string[]): boolean {
    let added = false;
    for (const f of flags) {
      if (f.startsWith('\\')) continue;
      const k = f.toLowerCase();
      if (!this.keywords.has(k)) {
        this.keywords.set(k, f);
        added = true;
      }
    }
    return added;
  }

  /**
   * RFC 9051 §7.3.5 / RFC 3501 §7.2.6: the FLAGS response is sent again when the
   * set of defined flags changes; PERMANENTFLAGS with it (as SELECT sent it).
   */
  private flagsResponses(): string[] {
    const flags = [...SYSTEM_FLAGS, ...this.keywords.values()].join(' ');
    return [`FLAGS (${flags})`, `OK [PERMANENTFLAGS (${this.readOnly ? '' : `${flags} \\*`})] Flags permitted`];
  }

  /**
   * Before a FETCH response shows `flags` (read from the store, possibly ahead
   * of the queued change that brought a new keyword): the untagged FLAGS and
   * PERMANENTFLAGS responses to send first when a keyword is new to the
   * client (RFC 9051 §7.5.2 FLAGS: a keyword in FETCH is one FLAGS defined), or
   * null. Shared frozen flag lists of the store are checked once.
   */
  keywordResponses(flags: readonly string[]): string[] | null {
    if (flags.length === 0 || flags === this.lastChecked) return null;
    const frozen = Object.isFrozen(flags);
    if (frozen && this.checkedFlagLists.has(flags)) {
      this.lastChecked = flags;
      return null;
    }
    const added = this.noteKeywords(flags);
    if (frozen) {
      this.checkedFlagLists.add(flags);
      this.lastChecked = flags;
    }
    return added ? this.flagsResponses() : null;
  }

  get exists(): number {
    return this.uids.length;
  }

  /** Sequence number of `uid`, or 0 if it is not in the view. Binary search. */
  seqOf(uid: number): number {
    const a = this.uids;
    let lo = 0;
    let hi = a.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const v = a[mid];
      if (v === uid) return mid + 1;
      if (v < uid) lo = mid + 1;
      else hi = mid - 1;
    }
    return 0;
  }

  uidOf(seq: number): number {
    return this.uids[seq - 1] ?? 0;
  }

  /** Index of the first UID >= uid (lower bound). */
  lowerBound(uid: number): number {
    const a = this.uids;
    let lo = 0;
    let hi = a.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (a[mid] < uid) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Queued entries (appended messages not yet announced plus UIDs with a flag update): what MAX_PENDING_UPDATES bounds. */
  get pendingEntries(): number {
    return this.pendingAppends.size + this.pendingFlags.size;
  }

  /** Record a change from the feed (called for changes of this mailbox only). */
  enqueue(change: Change): void {
    if (change.kind === 'append') {
      for (const m of change.messages) {
        if (m.uid <= this.pendingMaxUid) continue;
        this.pendingAppends.set(m.uid, m);
        this.pendingMaxUid = m.uid;
      }
      if (change.modseq > this.pendingModseq) this.pendingModseq = change.modseq;
    } else if (change.kind === 'flags') {
      for (const m of change.messages) {
        // Only messages the client knows or will be told of; flags of others are never shown.
        if (this.expungedPending.has(m.uid) || (this.seqOf(m.uid) === 0 && !this.pendingAppends.has(m.uid))) {
          // Not a change of ours (STORE and FETCH touch live messages of the view): it still counts for HIGHESTMODSEQ.
          if (change.modseq > this.pendingModseq) this.pendingModseq = change.modseq;
          continue;
        }
        const had = this.pendingFlags.get(m.uid);
        // A reader of other processes' commits may bring an older state after a newer one: keep the newest.
        if (had && had.meta.modseq > m.modseq) continue;
        this.pendingFlags.set(m.uid, { meta: m, changeModseq: change.modseq });
      }
    } else if (change.kind === 'expunge') {
      // Known at once, announced later: commands that run before the EXPUNGE may
      // be sent (FETCH, STORE, COPY) must not treat these messages as live
      // (RFC 2180 §4.1, §4.4; RFC 9051 §7.1 EXPUNGEISSUED).
      for (const uid of change.uids) {
        this.pendingFlags.delete(uid);
        if (this.pendingAppends.delete(uid)) {
          // Appended and expunged between two flushes: the client never learnt
          // of it, so it gets neither EXISTS nor EXPUNGE for it (RFC 9051 §7.5.1:
          // EXPUNGE names a message the client knows; Dovecot sends nothing).
          this.recent.delete(uid);
          continue;
        }
        if (this.seqOf(uid) === 0) continue;
        this.expungedPending.add(uid);
        this.pendingExpungeModseq = Math.min(this.pendingExpungeModseq, change.modseq);
      }
      if (change.modseq > this.pendingModseq) this.pendingModseq = change.modseq;
    } else {
      return;
    }
    if (this.pendingEntries > this.maxPending) this.overflowed = true;
  }

  /** Remember that this session already told its client about the flag change with `modseq`. */
  markOwn(modseq: number): void {
    if (this.ownModseqs.size >= MAX_OWN_MODSEQS) this.ownModseqs.clear();
    this.ownModseqs.add(modseq);
  }

  /**
   * Untagged lines about the mailbox that carry no message data, sent first at
   * the next flush (RFC 4467 §6.3: `OK [URLMECH ...]` after another session's
   * RESETKEY). Bounded: the same notice is kept once.
   */
  readonly notices: string[] = [];

  /** Queues a notice for the next flush (once: repeating it tells nothing new). */
  notice(line: string): void {
    if (!this.notices.includes(line) && this.notices.length < MAX_NOTICES) this.notices.push(line);
  }

  get hasPending(): boolean {
    return this.notices.length > 0 || this.pendingAppends.size > 0 || this.pendingFlags.size > 0 || this.expungedPending.size > 0 || this.pendingModseq > this.highestModseq;
  }

  /**
   * Turn queued changes into untagged responses. With `allowExpunge` false the
   * expunges stay pending and the messages stay in the view (their sequence
   * numbers keep meaning what the client thinks).
   * `vanished` selects `VANISHED` (RFC 7162 §3.2.10) instead of EXPUNGE.
   */
  flush(allowExpunge: boolean, opts: { vanished?: boolean; recentEnabled?: boolean; flagsOf?: (m: MessageMeta) => string; condstore?: boolean; uidOnly?: boolean } = {}): string[] {
    const out: string[] = this.notices.splice(0);
    let keywordsChanged = false;
    // Messages added to the view by this flush: the client has not been told about them yet.
    let fresh = 0;
    for (const m of this.pendingAppends.values()) {
      if (m.uid <= this.maxUid) continue;
      if (this.noteKeywords(m.flags)) keywordsChanged = true;
      this.uids.push(m.uid);
      this.maxUid = m.uid;
      fresh++;
    }
    this.pendingAppends.clear();
    if (this.pendingModseq > this.highestModseq) this.highestModseq = this.pendingModseq;
    const flagLines: MessageMeta[] = [];
    let ownSeen: number[] | null = null;
    for (const [uid, e] of this.pendingFlags) {
      if (this.noteKeywords(e.meta.flags)) keywordsChanged = true;
      // This session's own STORE / FETCH already told the client (and its modseq stays out of HIGHESTMODSEQ: see store.ts changedOnly).
      if (this.ownModseqs.has(e.changeModseq)) {
        (ownSeen ??= []).push(e.changeModseq);
        continue;
      }
      if (e.changeModseq > this.highestModseq) this.highestModseq = e.changeModseq;
      if (this.expungedPending.has(uid) || this.seqOf(uid) === 0) continue;
      flagLines.push(e.meta);
    }
    this.pendingFlags.clear();
    if (ownSeen) for (const m of ownSeen) this.ownModseqs.delete(m);
    if (allowExpunge && this.expungedPending.size > 0) {
      const gone = [...this.expungedPending].sort((a, b) => a - b);
      this.expungedPending.clear();
      this.pendingExpungeModseq = Infinity;
      if (opts.vanished) {
        out.push(`VANISHED ${formatSequenceSet(gone)}`);
        const goneSet = new Set(gone);
        this.uids = this.uids.filter((u) => !goneSet.has(u));
      } else {
        // Highest sequence number first, so each number is valid when sent.
        for (let i = gone.length - 1; i >= 0; i--) {
          const seq = this.seqOf(gone[i]);
          if (seq === 0) continue;
          this.uids.splice(seq - 1, 1);
          out.push(`${seq} EXPUNGE`);
        }
      }
      for (const u of gone) this.recent.delete(u);
    }
    if (keywordsChanged) out.push(...this.flagsResponses());
    // EXISTS after the EXPUNGEs: it counts what is left plus the new messages
    // (RFC 9051 §7.4.1); only when new messages were added.
    const existsChanged = fresh > 0;
    if (existsChanged) {
      out.push(`${this.uids.length} EXISTS`);
      if (opts.recentEnabled) out.push(`${this.recent.size} RECENT`);
    }
    if (flagLines.length > 0) {
      flagLines.sort((a, b) => a.uid - b.uid);
      for (const m of flagLines) {
        const seq = this.seqOf(m.uid);
        if (seq === 0) continue;
        const flags = opts.flagsOf ? opts.flagsOf(m) : `(${m.flags.join(' ')})`;
        // RFC 9586 §3: with UIDONLY the response is UIDFETCH, numbered by UID.
        out.push(`${opts.uidOnly ? `${m.uid} UIDFETCH` : `${seq} FETCH`} (UID ${m.uid} FLAGS ${flags}${opts.condstore ? ` MODSEQ (${m.modseq})` : ''})`);
      }
    }
    if (existsChanged && opts.condstore) {
      // New messages come with no MODSEQ of their own: tell the new HIGHESTMODSEQ
      // (RFC 7162 §3.1.2.1 response code; §6: a client MUST use it), as Dovecot
      // does, or a resyncing client takes them for changed messages next time.
      // Never past an expunge not yet announced (RFC 7162 §3.2).
      const safe = this.expungedPending.size ? Math.min(this.highestModseq, this.pendingExpungeModseq - 1) : this.highestModseq;
      out.push(`OK [HIGHESTMODSEQ ${safe}] Highest mailbox mod-sequence`);
    }
    return out;
  }
}
