// The storage contract. It speaks user ids, mailbox ids and UIDs only: no
// sequence numbers, no protocol syntax. Every method is asynchronous so that
// the embedded SQLite backend and a later PostgreSQL backend are
// interchangeable. Protocol code imports only the *types* from here.

import type { MimePart } from '../mime/index.js';
import type { ThreadAlgorithmName, ThreadForest } from './threading.js';

/** A closed set of storage failures; src/commands maps them to RFC 5530 codes in one table. */
export type StoreErrorKind =
  | 'NONEXISTENT' // mailbox / user does not exist
  | 'ALREADYEXISTS' // mailbox / user already exists
  | 'TRYCREATE' // target mailbox of APPEND/COPY/MOVE does not exist
  | 'OVERQUOTA'
  | 'TOOBIG'
  | 'LIMIT'
  | 'INUSE'
  | 'EXPUNGEISSUED'
  | 'CANNOT' // operation not allowed (e.g. delete INBOX, rename to own child)
  | 'NOPERM'
  | 'UNAVAILABLE'
  | 'CORRUPT';

export class StoreError extends Error {
  constructor(
    readonly kind: StoreErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'StoreError';
  }
}

export interface UserInfo {
  id: number;
  name: string;
  /** Encoded password hash (see src/auth/password.ts); opaque to the store. */
  passwordHash: string;
  createdAt: Date;
}

/** A stored credential; `secret` is opaque to the store (an encoding from src/auth). */
export interface CredentialInfo {
  userId: number;
  kind: string;
  name: string;
  secret: string;
  createdAt: Date;
  lastUsed: Date | null;
}

/** RFC 6154 special-use attributes. */
export type SpecialUse = '\\All' | '\\Archive' | '\\Drafts' | '\\Flagged' | '\\Junk' | '\\Sent' | '\\Trash';

export interface MailboxInfo {
  id: number;
  userId: number;
  /** Full hierarchical name in UTF-8 with "/" as separator; INBOX is always exactly "INBOX". */
  name: string;
  uidValidity: number;
  uidNext: number;
  highestModseq: number;
  specialUse: SpecialUse | null;
  subscribed: boolean;
  /** RFC 8474 MAILBOXID: stable across RENAME, never given to another mailbox. */
  objectId: string;
}

export interface MailboxStatus {
  messages: number;
  unseen: number;
  deleted: number;
  /** Sum of RFC822.SIZE of all messages (RFC 8438 STATUS=SIZE). */
  size: number;
  uidNext: number;
  uidValidity: number;
  highestModseq: number;
  /** Messages with UID above the mailbox's recent mark (RFC 3501 \Recent, rev1 only). */
  recent: number;
}

/**
 * Flags as the store keeps them: system flags spelled canonically
 * ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"), keywords as
 * first seen in the mailbox (flag names compare case-insensitively, RFC 9051 §2.3.2).
 * "\\Recent" is never stored: it is a session property.
 */
export type Flag = string;

export interface MessageMeta {
  uid: number;
  flags: Flag[];
  /** INTERNALDATE: ms since epoch. */
  internalDate: number;
  /** INTERNALDATE's zone, minutes east of UTC (RFC 9051 §2.3.3); absent = +0000. */
  internalTz?: number;
  /** RFC 8514 save date, ms since epoch; null/absent = unknown (stored before the store kept it). */
  saveDate?: number | null;
  /** RFC 8474 EMAILID: the same for every copy of one stored body; absent = unknown. */
  emailId?: string;
  /** RFC 8474 THREADID, filled in only where asked for (MailStore.threadIds); absent = NIL. */
  threadId?: string;
  /** RFC822.SIZE in bytes. */
  size: number;
  modseq: number;
}

/**
 * The SEARCH index of one message (computed at APPEND): every From, To, Cc,
 * Bcc and Subject field RFC 2047-decoded, lower-cased and joined by "\n"
 * ("" when the message has no such field; null when the value was too long
 * to index, so the searcher must read the message), and the Date header's
 * calendar day (days since the epoch) or null.
 */
export interface HeaderIndex {
  from: string | null;
  to: string | null;
  cc: string | null;
  bcc: string | null;
  subject: string | null;
  sentDay: number | null;
}

/** A stored message body; bytes are read on demand so large messages stream. */
/**
 * MailStore.maildropLocks: one holder per user at a time, wherever it runs. A
 * holder is named by a string unique in this process.
 */
export interface UserLocks {
  /**
   * True when `holder` now holds `userId`'s lock (or already did), false when
   * another holder (here or on another node) does; rejects when the lock
   * service cannot be reached. `onLost` runs if the lock is lost while held
   * (its connection to the database went away): the holder must stop.
   */
  acquire(userId: number, holder: string, onLost: () => void): Promise<boolean>;
  /** Gives the lock back if `holder` has it (idempotent); resolves once others can take it. */
  release(userId: number, holder: string): Promise<void>;
  /** Ends the service (every lock is released). */
  close(): Promise<void>;
}

/** MailStore.openMaildrop: parallel arrays, index i = message i + 1 of the maildrop. */
export interface MaildropSnapshot {
  readonly uids: readonly number[];
  /** Octets with CRLF line ends (RFC 1939 §11): the stored size plus the bare LFs it has. */
  readonly sizes: readonly number[];
  readonly seen: readonly boolean[];
  /**
   * The body of message `i` (0-based), without a store lookup. Reading a body
   * expunged since fails with EXPUNGEISSUED once its file is gone.
   */
  body(i: number): MessageBody;
  /** The whole body of message `i` in one read (for small ones), or null when it was expunged and its file is gone. */
  readWhole(i: number): Promise<Buffer | null>;
  /**
   * Optional: bytes [start, end) of message `i`'s stored body in memory the
   * store lends (reused after release(), so a download allocates nothing per
   * message); null when it was expunged and its file is gone. The caller
   * calls release() exactly once, when nothing references the bytes any more.
   */
  readLeased?(i: number, start: number, end: number): Promise<LeasedBytes | null>;
}

/** Bytes lent by the store (MaildropSnapshot.readLeased). */
export interface LeasedBytes {
  readonly bytes: Buffer;
  release(): void;
}

/** MailStore.getMessagesWithBodies: a message's metadata and its body. */
export interface MessageWithBody {
  meta: MessageMeta;
  body: MessageBody;
}

export interface MessageBody {
  size: number;
  /**
   * The MIME part tree with byte offsets (src/mime), computed once when the
   * message was stored; null when the store has none (the reader parses then).
   */
  structure: MimePart | null;
  /** The bytes before the body of the top-level message ([0, structure.headerEnd)), when the store keeps them; else null. */
  header: Buffer | null;
  /** Read bytes [start, end) (end clamped to size). */
  read(start: number, end: number): Promise<Buffer>;
  /** Stream bytes [start, end) in chunks of at most `chunkSize`. */
  stream(start?: number, end?: number, chunkSize?: number): AsyncIterable<Buffer>;
}

export interface AppendInput {
  data: Buffer;
  flags: Flag[];
  /** ms since epoch; defaults to now. */
  internalDate?: number;
  /** The zone of internalDate, minutes east of UTC; defaults to the server's local zone at that instant. */
  internalTz?: number;
}

export interface AppendResult {
  uidValidity: number;
  uids: number[];
}

export type FlagOp = 'add' | 'remove' | 'set';

export interface StoreFlagsResult {
  /** Messages whose flags actually changed, with their new flags and modseq. */
  changed: MessageMeta[];
  /** UIDs refused because their modseq was above UNCHANGEDSINCE (RFC 7162). */
  modified: number[];
}

export interface CopyResult {
  uidValidity: number;
  /** Source UIDs (ascending) and the destination UIDs given to them, pairwise. */
  sourceUids: number[];
  destUids: number[];
}

/**
 * A SEARCH program over metadata only (flags, sizes, internal dates, UIDs,
 * mod-sequences: RFC 9051 §6.4.4, RFC 7162 §3.1.5), which a backend answers
 * from its index without reading messages. src/search builds it; keys that
 * need message content never appear here.
 */
export type MetaFilter =
  | { k: 'all' }
  | { k: 'none' }
  | { k: 'flag'; flag: Flag; present: boolean }
  /** Ascending, non-overlapping UID ranges. */
  | { k: 'uids'; ranges: { start: number; end: number }[] }
  | { k: 'larger' | 'smaller'; n: number }
  /** INTERNALDATE (ms) at most (`le`) or at least (`ge`) `ms` (RFC 5032 OLDER / YOUNGER). */
  | { k: 'arrived'; op: 'le' | 'ge'; ms: number }
  /** INTERNALDATE compared by calendar day (days since the epoch, UTC). */
  | { k: 'before' | 'on' | 'since'; day: number }
  /**
   * RFC 8514 SAVEDBEFORE/SAVEDON/SAVEDSINCE: save date (the internal date for
   * messages without one) against [start, end), the instants where the
   * asked day begins and ends in the server's zone.
   */
  | { k: 'savedbefore' | 'savedon' | 'savedsince'; start: number; end: number }
  /** RFC 8474 SEARCH EMAILID. */
  | { k: 'emailid'; id: string }
  /** RFC 8474 SEARCH THREADID (a store without threadIds matches nothing, §5.2). */
  | { k: 'threadid'; id: string }
  | { k: 'modseq'; modseq: number }
  /** Substring of the decoded, lower-cased field (see HeaderIndex); `value` is lower-cased and not empty. */
  | { k: 'header'; field: 'from' | 'to' | 'cc' | 'bcc' | 'subject'; value: string }
  /** The Date header's calendar day (see HeaderIndex.sentDay); no Date header never matches. */
  | { k: 'sentbefore' | 'senton' | 'sentsince'; day: number }
  /**
   * SEARCH BODY (scope body) or TEXT (scope text): `value` lower-cased. A
   * store may only rule a message out with it (its text index proves the
   * needle absent); every other message is undecided (read by the caller),
   * never matched, since the index cannot see substrings exactly.
   */
  | { k: 'content'; scope: 'body' | 'text'; value: string }
  | { k: 'not'; f: MetaFilter }
  | { k: 'or'; a: MetaFilter; b: MetaFilter }
  | { k: 'and'; fs: MetaFilter[] };

/**
 * Change records, published after the commit, in commit order, to every
 * subscriber of the user. `modseq` is the mailbox's modseq after the change.
 */
export type Change =
  | { kind: 'append'; userId: number; mailboxId: number; modseq: number; messages: MessageMeta[] }
  | { kind: 'flags'; userId: number; mailboxId: number; modseq: number; messages: MessageMeta[] }
  | { kind: 'expunge'; userId: number; mailboxId: number; modseq: number; uids: number[] }
  | { kind: 'mailbox-create'; userId: number; mailboxId: number; name: string }
  | { kind: 'mailbox-delete'; userId: number; mailboxId: number; name: string }
  | { kind: 'mailbox-rename'; userId: number; mailboxId: number; oldName: string; name: string }
  | { kind: 'subscription'; userId: number; name: string; subscribed: boolean }
  /** RFC 5464 annotations set or removed (entries lower-cased); mailboxId null = the server's (RFC 5465 §5.6, §5.7). */
  | { kind: 'annotation'; userId: number; mailboxId: number | null; entries: string[] }
  /** RFC 4467 §6.3 RESETKEY: the mailbox's access keys were replaced (mailboxId null: every key of the user removed). */
  | { kind: 'urlauth-key'; userId: number; mailboxId: number | null };

export type ChangeListener = (change: Change) => void;

/**
 * A wake-up hint sent between the workers of a server (and later between
 * nodes) after a commit: where to look, never what changed. Receivers catch
 * up from the database (src/bus). 'mailboxes': mailboxes were created,
 * renamed or deleted, or several changed: look at all of the user's.
 */
export interface ChangeHint {
  userId: number;
  mailboxId: number;
  modseq: number;
  kind: 'append' | 'messages' | 'mailboxes';
}

/** The change feed: an interface so a multi-node store can carry it between processes. */
export interface ChangeFeed {
  /** Receive every change of `userId` committed from now on; returns an unsubscribe function. */
  subscribe(userId: number, listener: ChangeListener): () => void;
  publish(change: Change): void;
}

export interface MailStore {
  readonly feed: ChangeFeed;

  /**
   * Starts a long-running server's upkeep (e.g. indexing bodies stored before an index existed); stopped by close().
   * With `indexer: false` another process of the same server does the indexing (and the SQLite WAL checkpoints).
   */
  startBackgroundWork?(onError: (err: unknown) => void, opts?: { indexer?: boolean; search?: boolean }): void;
  /** Bodies stored but not yet in the full-text index (for metrics; capped by the backend). */
  indexBacklog?(): Promise<number>;

  // ---- users
  createUser(name: string, passwordHash: string): Promise<UserInfo>;
  getUser(name: string): Promise<UserInfo | null>;
  getUserById(id: number): Promise<UserInfo | null>;
  setPasswordHash(userId: number, passwordHash: string): Promise<void>;
  /** Deletes the user with all mailboxes and messages. */
  deleteUser(userId: number): Promise<void>;
  listUsers(): Promise<UserInfo[]>;
  countUsers(): Promise<number>;

  // ---- credentials besides the password hash (src/auth: SCRAM verifiers, application passwords)
  /** The user's credentials of `kind`, sorted by name. */
  listCredentials(userId: number, kind: string): Promise<CredentialInfo[]>;
  /** Creates or replaces the credential (userId, kind, name). NONEXISTENT for an unknown user. */
  setCredential(userId: number, kind: string, name: string, secret: string): Promise<void>;
  /** Removes it; false if there was none. `name` undefined removes every credential of `kind`. */
  deleteCredential(userId: number, kind: string, name?: string): Promise<boolean>;
  /** Records a use (application passwords: `quire user app-password list` shows it). */
  touchCredential(userId: number, kind: string, name: string, at: Date): Promise<void>;

  // ---- mailboxes. Names are full UTF-8 paths with "/"; callers normalise INBOX.
  listMailboxes(userId: number): Promise<MailboxInfo[]>;
  getMailbox(userId: number, name: string): Promise<MailboxInfo | null>;
  getMailboxById(mailboxId: number): Promise<MailboxInfo | null>;
  /** Creates the mailbox (not its missing parents; the caller does that). ALREADYEXISTS if present. */
  createMailbox(userId: number, name: string, specialUse?: SpecialUse | null): Promise<MailboxInfo>;
  /** Deletes the mailbox and its messages. NONEXISTENT; CANNOT for INBOX. */
  deleteMailbox(userId: number, name: string): Promise<void>;
  /**
   * Renames the mailbox and every mailbox below it (RFC 9051 §6.3.6).
   * Renaming INBOX moves all its messages to a new mailbox `to` and leaves INBOX empty.
   */
  renameMailbox(userId: number, from: string, to: string): Promise<void>;
  setSubscribed(userId: number, name: string, subscribed: boolean): Promise<void>;
  /** Subscribed names, including names of mailboxes that no longer exist. */
  listSubscriptions(userId: number): Promise<string[]>;
  mailboxStatus(mailboxId: number): Promise<MailboxStatus>;
  /**
   * Marks every message currently in the mailbox as no longer recent and
   * returns the UID from which messages are recent for the caller
   * (RFC 3501 §2.3.2: one session sees a message as \Recent).
   */
  claimRecent(mailboxId: number): Promise<number>;

  // ---- messages
  /** Appends atomically (all or none, RFC 3502) and resolves only once durable. TRYCREATE if the mailbox is gone. */
  appendMessages(mailboxId: number, items: AppendInput[]): Promise<AppendResult>;
  /** All messages of the mailbox in ascending UID order. */
  listMessages(mailboxId: number): Promise<MessageMeta[]>;
  /** Total RFC822.SIZE of the messages flagged \Deleted (RFC 9208 STATUS DELETED-STORAGE). */
  deletedSize(mailboxId: number): Promise<number>;
  /**
   * UIDs of the messages matching a filter, ascending. `undecided` lists the
   * messages the index cannot judge (a header key on a message stored
   * without a header index, or with a value too long to index): the caller
   * evaluates those by reading them. Without header keys it is always empty.
   */
  searchMeta(mailboxId: number, filter: MetaFilter): Promise<{ uids: number[]; undecided: number[] }>;
  /** Just the UIDs of the mailbox, ascending (what SELECT needs; cheap at 100k messages). */
  listUids(mailboxId: number): Promise<number[]>;
  /** The lowest UID without \Seen, or 0 when every message is seen (RFC 3501 OK [UNSEEN n]). */
  firstUnseenUid(mailboxId: number): Promise<number>;
  /** Metadata of the given UIDs that still exist, ascending. */
  getMessages(mailboxId: number, uids: number[]): Promise<MessageMeta[]>;
  /** The body of one message, or null if it was expunged. */
  openMessage(mailboxId: number, uid: number): Promise<MessageBody | null>;
  /** openMessage for several UIDs in one round trip; results in the order of `uids`. */
  openMessages(mailboxId: number, uids: number[]): Promise<(MessageBody | null)[]>;
  /**
   * Optional: getMessages and openMessages in one round trip (one read snapshot
   * where the backend has them): the UIDs that still exist, ascending, each
   * with its metadata and body. FETCH with body items uses it when present
   * (issue 11: one store call per FETCH instead of two or more).
   */
  getMessagesWithBodies?(mailboxId: number, uids: number[]): Promise<MessageWithBody[]>;
  /**
   * A POP3 maildrop at login (RFC 1939 §4): every message in ascending UID
   * order with its size in the CRLF form POP3 sends (RFC 1939 §11) and its
   * body, from one snapshot, so that RETR needs no further store lookup.
   */
  openMaildrop(mailboxId: number): Promise<MaildropSnapshot>;
  /**
   * Optional: exclusive per-user locks that hold across every process and
   * node serving this store (POP3's RFC 1939 §8 maildrop lock). Absent: the
   * store has no such service and the server excludes sessions itself (one
   * process, or the `quire serve` primary for its workers).
   */
  maildropLocks?(): UserLocks;
  storeFlags(mailboxId: number, uids: number[], op: FlagOp, flags: Flag[], unchangedSince?: number): Promise<StoreFlagsResult>;
  /** Copies the UIDs that exist, ascending, into `destMailboxId` (TRYCREATE if it is gone). */
  copyMessages(sourceMailboxId: number, uids: number[], destMailboxId: number): Promise<CopyResult>;
  /**
   * REPLACE (RFC 8508 §3.4): removes `uid` from the source mailbox and appends
   * `item` to the destination atomically (quota counts the net change); fails
   * with EXPUNGEISSUED, appending nothing, when that message is already gone.
   */
  replaceMessage(sourceMailboxId: number, uid: number, destMailboxId: number, item: AppendInput): Promise<AppendResult>;
  /** Atomic copy + expunge (RFC 6851). */
  moveMessages(sourceMailboxId: number, uids: number[], destMailboxId: number): Promise<CopyResult>;
  /** Expunges messages flagged \Deleted (restricted to `uids` when given); returns the expunged UIDs ascending. */
  expunge(mailboxId: number, uids?: number[]): Promise<number[]>;
  /** Keywords defined in the mailbox (for the FLAGS / PERMANENTFLAGS responses). */
  listKeywords(mailboxId: number): Promise<string[]>;
  /** The SEARCH header index of every message of the mailbox, by UID (null for messages stored without one). */
  headerIndex(mailboxId: number): Promise<Map<number, HeaderIndex | null>>;
  /**
   * RFC 8474 §5.2 THREADIDs of these messages by UID (a message left out answers NIL). Fixed when a
   * message is delivered and never changed; a store without it answers NIL for every message.
   */
  threadIds?(mailboxId: number, uids: readonly number[]): Promise<Map<number, string>>;
  /** Messages whose modseq is above `modseq`, ascending by UID (RFC 7162 CHANGEDSINCE). */
  listChangedSince(mailboxId: number, modseq: number): Promise<MessageMeta[]>;
  /**
   * UIDs expunged with a modseq above `modseq`, ascending (RFC 7162 §3.2.10
   * VANISHED (EARLIER)). `complete` is false when tombstones that old were
   * already pruned (see EXPUNGE_TOMBSTONES_KEPT); the caller must then fall
   * back to comparing UID sets.
   */
  expungedSince(mailboxId: number, modseq: number): Promise<{ uids: number[]; complete: boolean }>;

  close(): Promise<void>;
}

// ---- addresses, quota, import (appended; merged into MailStore above by declaration merging)

/** An address owned by a user: "local@domain", or "@domain" for the domain's catch-all. */
export interface AddressInfo {
  address: string;
  userId: number;
}

/**
 * Per-user limits and usage (RFC 9208: one quota root per user, "" covering
 * all of the user's mailboxes). Storage is counted in bytes as the sum of
 * RFC822.SIZE (a copy counts again, as RFC 9208 §5.1 describes); null limit
 * = unlimited.
 */
export interface QuotaInfo {
  storageLimit: number | null;
  messageLimit: number | null;
  storageUsed: number;
  messagesUsed: number;
}

/** A message imported with the UID it had elsewhere (Maildir dovecot-uidlist, IMAP migration). */
export interface ImportInput extends AppendInput {
  uid: number;
}

export interface ImportOptions {
  /** Give the mailbox this UIDVALIDITY; allowed only while the mailbox holds no message (else CANNOT). */
  uidValidity?: number;
  /** Raise UIDNEXT to at least this value after the import. */
  uidNext?: number;
}

export interface MailStore {
  // ---- addresses and aliases (LMTP recipient resolution)
  /** Gives `address` to the user. ALREADYEXISTS if anyone owns it; NONEXISTENT for an unknown user; CANNOT if malformed. */
  addAddress(userId: number, address: string): Promise<AddressInfo>;
  /** NONEXISTENT if nobody owns it. */
  removeAddress(address: string): Promise<void>;
  /** All addresses (of one user when given), sorted. */
  listAddresses(userId?: number): Promise<AddressInfo[]>;
  /** The owner of exactly this address (case-insensitive), or null. Pass "@domain" for the catch-all. */
  findAddress(address: string): Promise<AddressInfo | null>;

  // ---- quota: enforced inside appendMessages / copyMessages / importMessages with StoreError('OVERQUOTA');
  // a MOVE between a user's own mailboxes never fails for quota (usage does not change).
  getQuota(userId: number): Promise<QuotaInfo>;
  /** Sets the given limits (null = unlimited, undefined = unchanged). NONEXISTENT for an unknown user. */
  setQuota(userId: number, limits: { storage?: number | null; messages?: number | null }): Promise<QuotaInfo>;

  // ---- import with given UIDs
  /**
   * Appends messages under the UIDs given (strictly ascending, each at least
   * the mailbox's UIDNEXT, else CANNOT), atomically and durably like
   * appendMessages, publishing the same 'append' change.
   */
  importMessages(mailboxId: number, items: ImportInput[], opts?: ImportOptions): Promise<AppendResult>;
}

// ---- SORT and THREAD (RFC 5256, RFC 5957): keys computed once when a message is stored

/** RFC 5256 §3 sort keys and RFC 5957 §3 DISPLAYFROM / DISPLAYTO. */
export type SortKey = 'arrival' | 'cc' | 'date' | 'from' | 'size' | 'subject' | 'to' | 'displayfrom' | 'displayto';

export interface SortCriterion {
  key: SortKey;
  reverse: boolean;
}

export interface SortRequest {
  /** In priority order; ties are broken by UID (= sequence order, RFC 5256 §3). */
  criteria: SortCriterion[];
  /** Only these UIDs (ascending); null or absent = every message. */
  uids?: readonly number[] | null;
  /** Only UIDs up to this one (the session's view: later appends are not announced yet). */
  maxUid?: number;
  /**
   * Only this window of the sorted list (RFC 9394 PARTIAL): positions
   * `first`..`last` counted from 1, or from the end when negative (-1 is the
   * last message); absent = the whole list.
   */
  range?: { first: number; last: number };
}

export interface SortResult {
  /** The sorted UIDs (the requested window of them). */
  uids: number[];
  /** How many messages the whole sorted list has. */
  total: number;
}

/** What THREAD needs of one message (keys as sortkeys.ts computed them). */
export interface ThreadRow {
  uid: number;
  /** Sent date (ms), or INTERNALDATE without one (RFC 5256 §2.2). */
  date: number;
  /** Casemapped base subject (RFC 5256 §2.1). */
  subject: string;
  /** The subject carried a reply/forward marker (RFC 5256 §4 step 5). */
  isReply: boolean;
  messageId: string | null;
  /** References ids, oldest first. */
  references: string[];
  inReplyTo: string | null;
}

/** THREAD answered by the store from a thread index (RFC 5256 §4; src/store/threading.ts). */
export interface ThreadRequest {
  algorithm: ThreadAlgorithmName;
  /** Only these UIDs (ascending: a search's result); null or absent = every message up to `maxUid`. */
  uids?: readonly number[] | null;
  /** Only UIDs up to this one (the session's view). */
  maxUid?: number;
}

export interface MailStore {
  /**
   * The threads of the mailbox's messages from the store's thread index, computed off the serving
   * thread, or null when it cannot now. Optional: a backend without it is threaded from threadRows by
   * src/search/thread.ts, which gives the same answer.
   */
  threadForest?(mailboxId: number, req: ThreadRequest): Promise<ThreadForest | null>;
  /** The mailbox's messages sorted (RFC 5256 §3): by stored keys, so a window of a 100k-message mailbox is an index range. */
  sortMessages(mailboxId: number, req: SortRequest): Promise<SortResult>;
  /** THREAD input of the given UIDs (null = all up to `maxUid`), in sent-date order (date, then UID: RFC 5256 §2.2). */
  threadRows(mailboxId: number, uids: readonly number[] | null, maxUid?: number): Promise<ThreadRow[]>;
}

// ---- annotations (RFC 5464 METADATA; appended, merged into MailStore by declaration merging)

/** One annotation: `entry` is the lower-cased full name ("/private/comment"); `mailboxId` null = server. */
export interface Annotation {
  entry: string;
  value: Buffer;
}

export interface MailStore {
  /**
   * The user's annotations on a mailbox (null = the server) named `entries`
   * (lower-cased) and, by `depth`, their children (1) or all descendants
   * ('infinity'), sorted by entry. NONEXISTENT for an unknown mailbox.
   */
  getAnnotations(userId: number, mailboxId: number | null, entries: string[], depth: 0 | 1 | 'infinity'): Promise<Annotation[]>;
  /**
   * Sets (value) or removes (null) entries atomically: all or none. LIMIT
   * when the mailbox (or server) would hold more than `maxEntries`
   * annotations of this user, or the user more than `maxPerUser`.
   * NONEXISTENT for an unknown mailbox. Annotations follow RENAME (they
   * belong to the mailbox) and go with DELETE.
   */
  setAnnotations(
    userId: number,
    mailboxId: number | null,
    items: { entry: string; value: Buffer | null }[],
    limits: { maxEntries: number; maxPerUser: number },
  ): Promise<void>;
  /** RFC 6154 §4 /private/specialuse: sets the mailbox's special use (null = none). NONEXISTENT. */
  setSpecialUse(mailboxId: number, use: SpecialUse | null): Promise<void>;
}

// ---- URLAUTH mailbox access keys (RFC 4467 §2.4; appended, merged into MailStore by declaration merging)

export interface MailStore {
  /**
   * The user's access key of the mailbox for URLAUTH mechanism `mech`
   * ("INTERNAL"); with `create`, one is generated when there is none (RFC 4467
   * §6.3 GENURLAUTH), else null is returned. NONEXISTENT for a mailbox that
   * is not the user's.
   */
  urlAuthKey(userId: number, mailboxId: number, mech: string, create: boolean): Promise<Buffer | null>;
  /**
   * RESETKEY (RFC 4467 §6.3): a new key for the mailbox (revoking every URL
   * authorized with the old one), or with `mailboxId` null every key of the
   * user removed. NONEXISTENT for a mailbox that is not the user's.
   */
  resetUrlAuthKeys(userId: number, mailboxId: number | null, mech: string): Promise<void>;
}

// ---- store-to-store copy (`quire migrate`, issue 13 item 6; appended, merged into MailStore by declaration merging)
// A copy that clients cannot tell from the original: the same UIDVALIDITY,
// UIDs, MODSEQs, HIGHESTMODSEQ, QRESYNC tombstones, EMAILIDs and MAILBOXID,
// so a CONDSTORE/QRESYNC client re-selecting with its cached state gets no resync.

/** A mailbox's state apart from its messages, as exportMailbox reads it and bulkImport writes it. */
export interface MailboxState {
  uidValidity: number;
  uidNext: number;
  highestModseq: number;
  /** RFC 8474 MAILBOXID. */
  objectId: string;
  /** RFC 7162 QRESYNC tombstones: expunged UIDs (ascending) with the modseq of their expunge. */
  expunged: { uid: number; modseq: number }[];
  /** Highest modseq whose tombstones were pruned (a resync from before it is answered without VANISHED (EARLIER) precision). */
  tombstoneFloor: number;
}

/** One message as the copy carries it: everything MessageMeta says, and the body. */
export interface BulkMessage {
  uid: number;
  modseq: number;
  flags: Flag[];
  internalDate: number;
  /** Minutes east of UTC. */
  internalTz: number;
  /** RFC 8514 save date; null = unknown (the target answers the internal date, as the source did). */
  saveDate: number | null;
  /**
   * RFC 8474 EMAILID in the source. Messages of one bulkImport call or of
   * earlier calls into the same store that carry the same EMAILID share one
   * body in the target, and the target reports this EMAILID for them when it
   * can represent it (else one of its own, the same for all of them).
   */
  emailId?: string;
  data: Buffer;
}

export interface BulkImportBatch {
  /** Messages with UIDs strictly ascending and above every UID the mailbox holds or held (else CANNOT). */
  messages: BulkMessage[];
  /**
   * The mailbox's state, applied in the same transaction as the messages: UIDVALIDITY and MAILBOXID
   * may change only while the mailbox holds no message (else CANNOT); UIDNEXT and HIGHESTMODSEQ only grow;
   * tombstones are added (a UID the mailbox holds is CANNOT).
   */
  state?: Partial<MailboxState>;
}

export interface MailStore {
  /** The mailbox's state for a copy to another store. NONEXISTENT for an unknown mailbox. */
  exportMailbox(mailboxId: number): Promise<MailboxState>;
  /**
   * Writes one batch of a store-to-store copy atomically and durably,
   * preserving UIDs, MODSEQs, flags, dates and EMAILIDs (quota is not
   * enforced: the source already held the mail). Publishes an 'append'
   * change for the messages.
   */
  bulkImport(mailboxId: number, batch: BulkImportBatch): Promise<void>;
  /** Every credential of the user, of every kind, sorted by kind and name (listCredentials needs the kind). */
  exportCredentials(userId: number): Promise<CredentialInfo[]>;
}
