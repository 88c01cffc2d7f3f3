// The maildrop as one POP3 session sees it (RFC 1939 §4-§6): a snapshot of
// the mailbox taken when the session enters the TRANSACTION state. Message
// numbers are 1-based indexes into it and never change during the session;
// messages that arrive later are not part of it (RFC 1939 §8 and Dovecot:
// a session works on the maildrop as it was at login). DELE only marks here;
// the store is changed in the UPDATE state (see session.ts).
//
// UIDL (RFC 1939 §7 "unique-id listing"): eight lower-case hex digits of the
// IMAP UID followed by eight of the mailbox's UIDVALIDITY, e.g. UID 1 in a
// mailbox with UIDVALIDITY 0x6b113d9d is "000000016b113d9d". It is stable
// forever (UIDs are never reused within a UIDVALIDITY, RFC 9051 §2.3.1.1),
// 16 characters (RFC 1939 allows 1 to 70 of 0x21-0x7E), and it is exactly what
// Dovecot sends with pop3_uidl_format = %08Xu%08Xv: a maildrop migrated from
// Dovecot with its UIDs and UIDVALIDITY (`quire import maildir` keeps both)
// keeps its UIDLs, so clients that "leave mail on the server" download nothing twice.

import type { LeasedBytes, MaildropSnapshot, MessageBody } from '../store/types.js';

const noRelease = () => {};

export interface DropMessage {
  /** Message number (RFC 1939 §3), 1-based. */
  n: number;
  uid: number;
  /** Octets as RFC 1939 §11 counts them: the CRLF form RETR sends (bare LFs count two), stuffing not counted. */
  size: number;
  deleted: boolean;
  /** RETR'd in this session (for \Seen in the UPDATE state). */
  retrieved: boolean;
  seen: boolean;
  /** Expunged by another session since the snapshot (the change feed said so): RETR and TOP answer -ERR. */
  gone: boolean;
}

const hex8 = (n: number) => (n >>> 0).toString(16).padStart(8, '0');

/** The UIDL of a message (see the head of this file). */
export function uidlOf(uidValidity: number, uid: number): string {
  return hex8(uid) + hex8(uidValidity);
}

export class Maildrop {
  readonly messages: DropMessage[];
  private liveCount: number;
  private liveSize: number;

  private readonly byUid = new Map<number, DropMessage>();

  constructor(
    readonly mailboxId: number,
    readonly uidValidity: number,
    private readonly snapshot: MaildropSnapshot,
  ) {
    const { uids, sizes, seen } = snapshot;
    this.messages = new Array<DropMessage>(uids.length);
    let total = 0;
    for (let i = 0; i < uids.length; i++) {
      const m: DropMessage = { n: i + 1, uid: uids[i]!, size: sizes[i]!, deleted: false, retrieved: false, seen: seen[i]!, gone: false };
      this.messages[i] = m;
      this.byUid.set(m.uid, m);
      total += m.size;
    }
    this.liveCount = this.messages.length;
    this.liveSize = total;
  }

  /** The body of `m` as the snapshot located it (no store lookup). */
  body(m: DropMessage): MessageBody {
    return this.snapshot.body(m.n - 1);
  }

  /** Octets of `m` as stored (its CRLF size, `m.size`, is larger by the bare LFs it has). */
  storedSize(m: DropMessage): number {
    return this.snapshot.body(m.n - 1).size;
  }

  /** The store can lend byte ranges (reads into reused memory, and large bodies in pieces). */
  get ranged(): boolean {
    return this.snapshot.readLeased !== undefined;
  }

  /**
   * Bytes [start, end) of `m` as stored, or null when it was expunged (its
   * file is gone). release() them once written: the store may lend reused
   * memory. Without range reads in the store, only the whole body (start 0,
   * end its stored size) can be asked for.
   */
  read(m: DropMessage, start: number, end: number): Promise<LeasedBytes | null> {
    const s = this.snapshot;
    if (s.readLeased) return s.readLeased(m.n - 1, start, end);
    return s.readWhole(m.n - 1).then((bytes) => (bytes ? { bytes: start === 0 && end >= bytes.length ? bytes : bytes.subarray(start, end), release: noRelease } : null));
  }

  /** Another session expunged these UIDs (RFC 1939 §8 leaves it open; Dovecot answers -ERR for them). */
  expunged(uids: readonly number[]): void {
    for (const u of uids) {
      const m = this.byUid.get(u);
      if (m) m.gone = true;
    }
  }

  /** Messages not marked deleted (STAT, RFC 1939 §5). */
  get count(): number {
    return this.liveCount;
  }

  /** Their total size in octets. */
  get size(): number {
    return this.liveSize;
  }

  /** Message `n` (1-based) if it exists in the snapshot, marked deleted or not. */
  at(n: number): DropMessage | null {
    return n >= 1 && n <= this.messages.length ? this.messages[n - 1]! : null;
  }

  uidl(m: DropMessage): string {
    return uidlOf(this.uidValidity, m.uid);
  }

  markDeleted(m: DropMessage): void {
    if (m.deleted) return;
    m.deleted = true;
    this.liveCount--;
    this.liveSize -= m.size;
  }

  /** RSET (RFC 1939 §5): unmark every deletion. */
  reset(): void {
    for (const m of this.messages) m.deleted = false;
    this.liveCount = this.messages.length;
    this.liveSize = this.messages.reduce((n, m) => n + m.size, 0);
  }

  deletedUids(): number[] {
    return this.messages.filter((m) => m.deleted).map((m) => m.uid);
  }

  /** Messages RETR'd and kept that are not yet \Seen. */
  newlySeenUids(): number[] {
    return this.messages.filter((m) => m.retrieved && !m.deleted && !m.seen).map((m) => m.uid);
  }
}
