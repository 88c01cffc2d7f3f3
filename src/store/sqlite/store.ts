// The SQLite implementation of MailStore: the connection, its transactions and
// change publishing, and the worker threads (threads.ts). Users, mailboxes and
// subscriptions live in mailboxes.ts, message operations in messages.ts; all
// share this class's plumbing:
// `write` runs one IMMEDIATE transaction and publishes the change records it
// collected only after the commit, in order (STYLE habit 10).
//
// Design choices worth knowing:
// - User names are case-insensitive (ASCII); mailbox names are exact, the
//   caller normalises INBOX.
// - UIDVALIDITY comes from one counter for the whole database:
//   max(now in seconds, last + 1), so a recreated mailbox always gets a
//   greater value than any earlier one of the same name.
// - RENAME keeps a mailbox's UIDVALIDITY (RFC 9051 §6.3.6 lets ids survive a
//   rename) unless the new name carried an equal or greater UIDVALIDITY
//   before; then the mailbox gets a fresh one. Renaming INBOX moves its
//   messages into a new mailbox with a new UIDVALIDITY.
// - RENAME and CREATE do not create missing parents; the caller does.

import Database from 'better-sqlite3';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { StoreError, type Change, type ChangeFeed, type ChangeHint } from '../types.js';
import { ForeignWatcher, type WatchedRow } from './foreign.js';
import { WalSync } from './durability.js';
import type { TextWorkerData } from './text-worker.js';
import { FTS_PENDING, attachFullText, ftsFileOf, openFullText, prepareFullTextFile } from './fulltext.js';
import { searchStatements } from './search.js';
import type { PackedRows, SearchReply, SearchRequest, SearchWorkerData } from './search-worker.js';
import type { ThreadAnswer, ThreadQuery } from './threading.js';
import type { CompiledFilter } from './search.js';
import type { SortKeep } from './sort-cache.js';
import { LocalChangeFeed } from '../feed.js';
import { BlobFiles, THREAD_READ_MAX, isOwnerDead, newOwner, releaseOwner } from './blobs.js';
import { BODY_CACHE_BYTES, BODY_CACHE_ENTRY_BYTES, BodyCache } from './body-cache.js';
import { migrate } from './schema.js';
import { type MailboxRow } from './messages.js';
import { OVERQUOTA_MARK } from './addresses.js';
import { UrlAuthKeyOps } from './urlauth-keys.js';
import { MailboxOps } from './mailboxes.js';
import { THREAD_STOP_MS, besideThis, numbersOfArray, startThread, stopThread, type Thread } from './threads.js';
import type { WriteGate } from './gate.js';
import { LocalWriteGate } from './gate.js';
export { LocalWriteGate, type WriteGate } from './gate.js';
import { MailboxRowCache, toStoreError } from './rows.js';
import { hintOf } from '../hint.js';
export { MAX_MAILBOX_NAME_BYTES, toStoreError } from './rows.js';
import { runDoctor, type DoctorReport } from './doctor.js';

export interface SqliteStoreOptions {
  dataDir: string;
  /**
   * FULL (default): acknowledged mail survives power loss (a group-committed
   * fdatasync of the WAL, off the event loop: durability.ts). NORMAL:
   * survives a process crash only.
   */
  synchronous?: 'FULL' | 'NORMAL';
  /**
   * With synchronous FULL, which acknowledged writes wait for the WAL sync
   * (docs/config.md "Durability"). "mail" (default, like Dovecot's
   * `mail_fsync = optimized`): everything that creates or moves mail and
   * every structural change; flag changes and expunges answer after COMMIT
   * and are synced within MAX_UNSYNCED_MS (durability.ts). "all": every write.
   */
  durability?: SqliteDurability;
  /** Longest an unsynced lazy commit waits for its sync (default MAX_UNSYNCED_MS; tests widen it to observe the window). */
  maxUnsyncedMs?: number;
  feed?: ChangeFeed;
  /** How long a write waits for another process's lock, in ms. */
  busyTimeoutMs?: number;
  /** The database file, when not <dataDir>/quire.sqlite3 (a private copy for a read-only data directory: src/cli/ops-readonly.ts). */
  dbFile?: string;
  /** Most mailboxes one user may have (DEFAULT_MAX_MAILBOXES_PER_USER); INBOX is always allowed. */
  maxMailboxesPerUser?: number;
  /**
   * Serialises the write transactions of every connection that shares it
   * (this process's, its indexing thread's, and with a cluster gate every
   * worker's), granted in FIFO order and awaited asynchronously, so no
   * writer sleeps on the event loop in SQLite's busy handler. Default: one
   * gate for this process.
   */
  writeGate?: WriteGate;
  /** Called once the changes of a commit are durable and published here (the change bus relays it to other workers). */
  onCommit?: (hint: ChangeHint) => void;
  /**
   * Follow other connections' commits (ForeignWatcher) and publish them on
   * the feed (default true). A process without sessions (the cluster's
   * primary) turns it off.
   */
  followOthers?: boolean;
  /**
   * Bytes of recently appended and read message bodies kept in memory
   * (body-cache.ts; default BODY_CACHE_BYTES, 8 MiB); 0 turns the cache off.
   */
  bodyCacheBytes?: number;
  /** Longest body the cache keeps (default BODY_CACHE_ENTRY_BYTES, 256 KiB). */
  bodyCacheEntryBytes?: number;
}



export const DB_FILE = 'quire.sqlite3';
export type SqliteDurability = 'mail' | 'all';
/** Change kinds a lazy write may publish before they are durable (flag changes, expunges). */
const LAZY_KINDS: ReadonlySet<Change['kind']> = new Set(['flags', 'expunge']);

/** A byte limit of the options: a non-negative integer, or the default when absent. */
function byteLimit(v: number | undefined, fallback: number, name: string): number {
  if (v === undefined) return fallback;
  if (!Number.isSafeInteger(v) || v < 0) throw new StoreError('CANNOT', `${name} must be a non-negative integer`);
  return v;
}
/** The index backlog is counted up to this many bodies (a scrape stays a few ms even on a huge backlog). */
const INDEX_BACKLOG_COUNT_CAP = 1_000_000;
/** Waiting this long for a lock held by another process (e.g. the admin CLI) before failing UNAVAILABLE. */
const DEFAULT_BUSY_TIMEOUT_MS = 5000;
/** Bytes of the database file SQLite reads through mmap (address space, not memory: the pages are the page cache's). */
const MMAP_BYTES = 1024 * 1024 * 1024;
/** First and longest pause between attempts at the write lock held by a process outside the gate (ms). */
const BUSY_RETRY_FIRST_MS = 1;
const BUSY_RETRY_MAX_MS = 50;
/** Mailboxes named by hints caught up one by one in a turn; beyond this, one look at all of them is cheaper. */
const MAX_WOKEN_MAILBOXES = 256;
/** Blob ids reserved per round trip; one extra commit per this many stored bodies. */
const BLOB_ID_BLOCK = 1024;
/** SQLite's default: a commit that grows the WAL past this many pages checkpoints it. */
const DEFAULT_WAL_AUTOCHECKPOINT = 1000;
/** The full-text indexing thread's module, beside this one (TypeScript when run from source). */
const TEXT_WORKER = besideThis('text-worker');
/** The search thread's module (search-worker.ts). */
const SEARCH_WORKER = besideThis('search-worker');

export class SqliteMailStore extends MailboxOps {
  private closed = false;
  private readonly inflight = new Set<Promise<unknown>>();
  private blobNext = 0;
  private blobEnd = 0;
  private readonly foreign: ForeignWatcher;
  /** Group commit of durable writes (null with synchronous NORMAL). */
  private readonly walSync: WalSync | null;
  private readonly gate: WriteGate;
  /** Committed changes not yet published, in commit order, each waiting for its WAL sync. */
  private readonly unpublished: { sync: number; changes: Change[]; relay: boolean }[] = [];
  /** Durability "mail": lazy writes (flags, expunges) answer after COMMIT (see write()). */
  private readonly lazyWrites: boolean;
  /** Inside a write transaction: foreign changes caught up while reading a mailbox row (published before the transaction's own). */
  private txForeign: Change[] | null = null;
  /** Mailboxes named by change-bus hints with the highest modseq hinted, caught up at the next turn (null: a full poll is due). */
  private woken: Map<number, number> | null = new Map();
  private wakeScheduled = false;

  private constructor(
    db: Database.Database,
    blobs: BlobFiles,
    feed: ChangeFeed,
    private readonly owner: string,
    synchronous: 'FULL' | 'NORMAL',
    private readonly busyTimeoutMs: number,
    gate: WriteGate | undefined,
    private readonly onCommit: ((hint: ChangeHint) => void) | undefined,
    durability: SqliteDurability,
    maxUnsyncedMs: number | undefined,
  ) {
    super(db, blobs, feed);
    this.foreign = new ForeignWatcher(db);
    this.gate = gate ?? new LocalWriteGate();
    this.walSync = synchronous === 'FULL' ? new WalSync(`${db.name}-wal`, (n) => this.publishUpTo(n), maxUnsyncedMs) : null;
    this.lazyWrites = this.walSync !== null && durability === 'mail';
  }

  /** WAL syncs performed so far (group commit: fewer than durable commits under concurrency). */
  walSyncCount(): number {
    return this.walSync?.syncs ?? 0;
  }

  /** True when every lazy commit (durability "mail") of this connection is on stable storage. */
  walCovered(): boolean {
    return this.walSync?.covered() ?? true;
  }

  protected override lazyDurability(): boolean {
    return this.lazyWrites;
  }

  /**
   * Before purgeTrash unlinks the files of the blobs it just read from
   * blob_trash: the commits that put them there may not be durable yet
   * (lazy expunges under "mail"; under "all" too, another session's or
   * another worker's expunge that committed after the sync this purge's own
   * expunge waited for), and a power loss would bring back rows whose files
   * are gone. A sync started after that read covers them (WAL order).
   * `lazily` (after a lazy expunge): the lazy commits' own sync (soon()), so
   * an expunge costs no extra sync; otherwise (someone waits: EXPUNGE under
   * "all", DELETE, close) one starts now, shared with any other waiter's.
   * Without group commit (synchronous other than FULL) there is nothing to
   * wait for: either every COMMIT is durable or none is promised.
   */
  protected override async trashDurable(lazily: boolean): Promise<void> {
    const ws = this.walSync;
    if (!ws) return;
    await (lazily && this.lazyWrites ? ws.wait(ws.soon()) : ws.barrier());
  }

  static async open(opts: SqliteStoreOptions): Promise<SqliteMailStore> {
    const synchronous = opts.synchronous ?? 'FULL';
    const cacheBytes = byteLimit(opts.bodyCacheBytes, BODY_CACHE_BYTES, 'bodyCacheBytes');
    const entryBytes = Math.min(byteLimit(opts.bodyCacheEntryBytes, BODY_CACHE_ENTRY_BYTES, 'bodyCacheEntryBytes'), THREAD_READ_MAX);
    await fs.mkdir(opts.dataDir, { recursive: true });
    const owner = newOwner();
    const blobs = new BlobFiles(opts.dataDir, synchronous === 'FULL', owner, new BodyCache(cacheBytes, Math.min(entryBytes, cacheBytes)));
    await blobs.init();
    let db: Database.Database | undefined;
    try {
      const busyTimeoutMs = opts.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
      db = new Database(opts.dbFile ?? path.join(opts.dataDir, DB_FILE));
      db.pragma(`busy_timeout = ${busyTimeoutMs}`);
      db.pragma('journal_mode = WAL');
      // Commits never sync on this thread: durable ones wait for WalSync's group commit (durability.ts).
      db.pragma('synchronous = NORMAL');
      db.pragma('foreign_keys = ON');
      // Database pages read through a memory map, not a pread() each: with several workers every
      // commit of another invalidates this connection's page cache, and the pages are read again.
      db.pragma(`mmap_size = ${MMAP_BYTES}`);
      migrate(db);
      const hasFts = prepareFullTextFile(db);
      const referenced = db.prepare('SELECT 1 FROM blobs WHERE id = ? AND refcount > 0');
      blobs.isReferenced = (id) => referenced.get(id) !== undefined;
      const store = new SqliteMailStore(db, blobs, opts.feed ?? new LocalChangeFeed(), owner, synchronous, busyTimeoutMs, opts.writeGate, opts.onCommit, opts.durability ?? 'mail', opts.maxUnsyncedMs);
      if (opts.maxMailboxesPerUser !== undefined) store.maxMailboxesPerUser = opts.maxMailboxesPerUser;
      store.ftsFile = hasFts;
      await store.recover();
      // From now on a locked database never puts this thread to sleep: write() retries asynchronously
      // (readers never wait for a lock in WAL mode).
      db.pragma('busy_timeout = 0');
      if (opts.followOthers !== false) store.foreign.start(() => store.wake(null));
      else store.ignoreOthers = true;
      return store;
    } catch (err) {
      db?.close();
      releaseOwner(owner);
      throw toStoreError(err);
    }
  }

  /** The full-text index file exists (prepareFullTextFile). */
  private ftsFile = false;

  protected override hasFullTextFile(): boolean {
    return this.ftsFile;
  }

  /** Writes the full-text index file (indexPendingText: tests, an idle store); opened when first needed. */
  private ftsWriter: Database.Database | null = null;

  protected override fullTextWriter(): Database.Database {
    return (this.ftsWriter ??= openFullText(ftsFileOf(this.db.name)).db);
  }

  /** Full-text searches run here when no search thread runs: a read-only connection with the index file attached. */
  private ftsReader: { db: Database.Database; statement: (sql: string) => Database.Statement } | null | undefined;

  protected override fullTextReader(): ((sql: string) => Database.Statement) | null {
    if (this.ftsReader === undefined) {
      const db = new Database(this.db.name, { readonly: true, fileMustExist: true });
      if (attachFullText(db, ftsFileOf(this.db.name))) this.ftsReader = { db, statement: searchStatements(db) };
      else {
        db.close();
        this.ftsReader = null;
      }
    }
    return this.ftsReader?.statement ?? null;
  }

  /** Removes what a crashed writer left behind: temp files, files of uncommitted blobs, unlinked-but-unreferenced blobs. */
  private async recover(): Promise<void> {
    await this.blobs.cleanTmp();
    const rows = this.q('SELECT start, end, owner FROM blob_reservations').all() as {
      start: number;
      end: number;
      owner: string;
    }[];
    const hasBlob = this.qp('SELECT 1 FROM blobs WHERE id = ?');
    for (const r of rows) {
      if (!isOwnerDead(r.owner)) continue;
      await this.blobs.cleanRange(r.start, r.end, (id) => hasBlob.get(id) !== undefined);
      this.q('DELETE FROM blob_reservations WHERE start = ?').run(r.start);
    }
    await this.purgeTrash();
  }

  // ---- plumbing

  protected override async run<T>(fn: () => T | Promise<T>): Promise<T> {
    if (this.closed) throw new StoreError('UNAVAILABLE', 'store is closed');
    const p = (async () => {
      try {
        return await fn();
      } catch (err) {
        throw toStoreError(err);
      }
    })();
    this.inflight.add(p);
    try {
      return await p;
    } finally {
      this.inflight.delete(p);
    }
  }

  /**
   * Runs a read-only store call's `fn` (synchronous) in one deferred read
   * transaction, committed before anything else runs. Outside a
   * transaction every SQLite statement is a read transaction of its own, and
   * each costs system calls (WAL read-mark lock and unlock on the -shm file,
   * a stat of the database: three per statement, ~3 µs, measured): a store
   * call's statements now share one (issue 11; BENCHMARKS.md "Where the CPU
   * goes").
   */
  protected override read<T>(fn: () => T | Promise<T>): Promise<T> {
    return this.run(() => this.inReadSnapshot(fn));
  }

  /** `fn` must not start a write transaction synchronously (writes start after the write gate's await). */
  private inReadSnapshot<T>(fn: () => T | Promise<T>): T | Promise<T> {
    if (this.db.inTransaction) return fn();
    const begin = (this.beginRead ??= this.db.prepare('BEGIN DEFERRED'));
    const commit = (this.commitRead ??= this.db.prepare('COMMIT'));
    begin.run();
    this.inRead = true;
    try {
      return fn();
    } finally {
      this.inRead = false;
      // Read-only: COMMIT just ends the snapshot. fn may have ended it already (an error inside SQLite).
      if (this.db.inTransaction) commit.run();
    }
  }

  /** True while a read snapshot's `fn` runs (see mailboxById). */
  private inRead = false;

  private beginRead: Database.Statement | null = null;
  private commitRead: Database.Statement | null = null;

  /**
   * Runs `fn` in one IMMEDIATE transaction, holding the write gate; resolves
   * once the commit is durable (group commit, durability.ts), after its
   * change records were published, in commit order (STYLE habit 10).
   * `lazy` (flag changes, expunges) with durability "mail": resolves after
   * the COMMIT instead, with the changes published, and the WAL sync starts
   * within MAX_UNSYNCED_MS (see lazyDone for when it still waits).
   */
  protected override async write<T>(fn: (emit: (c: Change) => void) => T, lazy = false): Promise<T> {
    const changes: Change[] = [];
    const foreign: Change[] = [];
    let result: T;
    try {
      result = await this.transact(() => {
        changes.length = 0;
        this.txForeign = foreign;
        this.txCaught.clear();
        try {
          return fn((c) => changes.push(c));
        } finally {
          this.txForeign = null;
          this.txCaught.clear();
        }
      });
    } catch (err) {
      // Another writer's changes seen before the failure are still news to this process's sessions.
      if (foreign.length) this.enqueue(foreign, false);
      throw err;
    }
    for (const c of changes) this.foreign.noteLocal(c);
    const all = foreign.length ? foreign.concat(changes) : changes;
    const sync = lazy && this.lazyWrites ? this.lazyDone(all, foreign, changes.length > 0) : this.enqueue(all);
    if (sync > 0) await this.walSync!.wait(sync);
    return result;
  }

  /**
   * After a lazy write's COMMIT: publishes its records at once unless that
   * would show something not yet durable that must not be lost; returns the
   * sync to wait for (0: none).
   * - Another writer's changes caught up inside the transaction (a message
   *   another worker appended and is still syncing): if any is not a flag
   *   change or an expunge, the write waits for a sync like a durable one,
   *   since a message shown before it is durable could vanish on power loss
   *   and its UID be given again (UIDs are never reused).
   * - This process's own commits still waiting for their sync: the records
   *   stay behind them (commit order) and are published with them.
   * A lazy write's change-bus hint therefore names a modseq below which
   * every change other than flags and expunges is durable (foreign.ts
   * pollMailboxes relies on that).
   */
  private lazyDone(all: Change[], foreign: readonly Change[], wrote: boolean): number {
    const ws = this.walSync!;
    if (foreign.some((c) => !LAZY_KINDS.has(c.kind))) return this.enqueue(all);
    if (wrote) ws.soon();
    const last = this.unpublished[this.unpublished.length - 1];
    if (last) {
      if (all.length) this.unpublished.push({ sync: last.sync, changes: all, relay: true });
      return last.sync;
    }
    this.publish(all, true);
    return 0;
  }

  /** A transaction whose loss on power failure is harmless: no WAL sync awaited, nothing published. */
  protected override relaxed<T>(fn: () => T): Promise<T> {
    return this.transact(fn);
  }

  /**
   * One IMMEDIATE transaction under the write gate. A lock held by a
   * process outside the gate (the admin CLI) is retried with growing pauses
   * that leave the event loop free, up to busyTimeoutMs, then UNAVAILABLE.
   */
  private async transact<T>(fn: () => T): Promise<T> {
    const release = await this.gate.acquire();
    try {
      const deadline = performance.now() + this.busyTimeoutMs;
      for (let pause = BUSY_RETRY_FIRST_MS; ; pause = Math.min(pause * 2, BUSY_RETRY_MAX_MS)) {
        try {
          return this.db.transaction(fn).immediate();
        } catch (err) {
          if ((err as { code?: unknown })?.code !== 'SQLITE_BUSY' || performance.now() >= deadline) throw err;
        }
        await new Promise((r) => setTimeout(r, pause));
      }
    } finally {
      this.writes++;
      release();
    }
  }

  /**
   * Queues committed changes for publication after the next WAL sync (at
   * once without group commit); returns the sync to wait for, 0 for none.
   */
  private enqueue(changes: Change[], relay = true): number {
    if (!this.walSync) {
      this.publish(changes, relay);
      return 0;
    }
    const sync = this.walSync.next();
    if (changes.length) this.unpublished.push({ sync, changes, relay });
    return sync;
  }

  /** Publishes the queued changes made durable by sync `n` (runs before that sync's waiters resume). */
  private publishUpTo(n: number): void {
    while (this.unpublished.length && this.unpublished[0]!.sync <= n) {
      const b = this.unpublished.shift()!;
      this.publish(b.changes, b.relay);
    }
    if (this.unpublished.length === 0 && this.wakeDeferred) {
      this.wakeDeferred = false;
      this.scheduleWake();
    }
  }

  private publish(changes: Change[], relay: boolean): void {
    // The hint first (the changes are durable already): other workers start catching up while this
    // one writes to its own sessions, instead of after (an IDLE push to 500 local sessions is ~10 ms of
    // socket writes).
    if (relay && this.onCommit) {
      const hint = hintOf(changes);
      if (hint) {
        try {
          this.onCommit(hint);
        } catch {
          // a bus that cannot send: the receivers' periodic poll still finds the change
        }
      }
    }
    for (const c of changes) {
      this.feed.publish(c);
      if (c.kind === 'append') this.kickIndexer();
    }
  }

  private wakeDeferred = false;

  /**
   * Catches up with other connections' commits now (a change-bus hint: the
   * mailbox it names, or everything for null): the records come from the
   * database, never from the hint. Coalesced to one look per turn of the
   * event loop; deferred while this process's own commits await publication.
   */
  wake(hint: ChangeHint | null): void {
    if (hint?.kind === 'append') this.kickIndexer();
    if (this.ignoreOthers) return;
    if (hint === null || hint.kind === 'mailboxes') this.woken = null;
    else if (this.woken) this.woken.set(hint.mailboxId, Math.max(hint.modseq, this.woken.get(hint.mailboxId) ?? 0));
    if (this.woken && this.woken.size > MAX_WOKEN_MAILBOXES) this.woken = null;
    this.scheduleWake();
  }

  /** Without followOthers: hints only wake the indexing thread. */
  private ignoreOthers = false;

  private scheduleWake(): void {
    if (this.wakeScheduled || this.closed) return;
    this.wakeScheduled = true;
    setImmediate(() => {
      this.wakeScheduled = false;
      if (this.closed) return;
      if (this.unpublished.length) {
        this.wakeDeferred = true; // after them, so records stay in commit order
        return;
      }
      const upTo = this.woken;
      this.woken = new Map();
      const out: Change[] = [];
      try {
        if (upTo === null) this.foreign.poll(out);
        else this.foreign.pollMailboxes(upTo, out);
      } catch {
        // A closing database or an I/O error: the periodic poll tries again.
        this.woken = null;
      }
      if (out.length === 0) return;
      // What hints named is durable already (up to their modseqs); what a poll found (a CLI process's
      // commit, say) is published once a sync here has made it durable too.
      if (upTo === null) this.enqueue(out, false);
      else this.publish(out, false);
    });
  }

  /**
   * Inside a write transaction, the first read of a mailbox row (before the
   * transaction changes that mailbox) is the moment to publish another
   * writer's changes to it first.
   */
  private caughtUp(row: MailboxRow | undefined): MailboxRow | undefined {
    if (row && this.txForeign && !this.txCaught.has(row.id)) {
      this.txCaught.add(row.id);
      this.foreign.catchUp(row as WatchedRow, this.txForeign, true);
    }
    return row;
  }

  private readonly txCaught = new Set<number>();

  /** Mailbox rows read outside transactions, until anyone commits (rows.ts MailboxRowCache). */
  private readonly mailboxRows = new MailboxRowCache<MailboxRow>();
  /** Transactions this connection has run (committed or not): its own commits do not move data_version. */
  private writes = 0;
  private dataVersion: Database.Statement | null = null;

  protected override mailboxById(id: number): MailboxRow | undefined {
    // Inside a write transaction always read afresh, other writers' changes published first (caughtUp);
    // a read snapshot (inReadSnapshot) uses the cache like a lone read: data_version is the snapshot's.
    if (this.db.inTransaction && !this.inRead) return this.caughtUp(super.mailboxById(id));
    const version = (this.dataVersion ??= this.db.prepare('PRAGMA data_version').pluck()).get() as number;
    return this.mailboxRows.get(id, version, this.writes, () => super.mailboxById(id));
  }

  protected override mailboxByName(userId: number, name: string): MailboxRow | undefined {
    return this.caughtUp(super.mailboxByName(userId, name));
  }

  protected override async allocBlobIds(n: number): Promise<number[]> {
    // New bodies are about to be written and fsynced, then a durable commit will wait for a WAL sync:
    // lazy commits still unsynced (durability "mail") start their sync now, beside the body writes,
    // rather than leave their WAL pages to that commit's sync (measured: bench/durability-ab.ts).
    if (this.lazyWrites) this.walSync!.hurry();
    const ids: number[] = [];
    while (ids.length < n) {
      if (this.blobNext >= this.blobEnd) {
        const size = Math.max(BLOB_ID_BLOCK, n - ids.length);
        const start = await this.relaxed(() => {
          const s = this.qp("SELECT value FROM meta WHERE key = 'blob_next'").get() as number;
          this.q("UPDATE meta SET value = ? WHERE key = 'blob_next'").run(s + size);
          this.q('INSERT INTO blob_reservations (start, end, owner) VALUES (?, ?, ?)').run(s, s + size, this.owner);
          return s;
        });
        // The reservation commits without its own fsync: it becomes durable
        // with the first commit that references one of its ids (WAL order).
        this.blobNext = start;
        this.blobEnd = start + size;
      }
      ids.push(this.blobNext++);
    }
    return ids;
  }

  private indexer: Thread | null = null;

  /**
   * Starts the full-text indexing thread (text-worker.ts): bodies appended
   * from now on, and any stored before (schema v6) or by other processes,
   * are indexed off the event loop (that thread also keeps the WAL
   * checkpointed and the query planner's statistics fresh); and the search
   * thread (search-worker.ts). Called by `quire serve`; stopped by close().
   */
  startBackgroundWork(onError: (err: unknown) => void = () => {}, opts: { indexer?: boolean; search?: boolean } = {}): void {
    if (this.indexer || this.searcher || this.closed) return;
    if (opts.search !== false) this.startSearcher(onError);
    if (opts.indexer === false) {
      // Another process of this server indexes and checkpoints the WAL (off its event loop): never this connection's commits.
      this.db.pragma('wal_autocheckpoint = 0');
      return;
    }
    const data: TextWorkerData = { dataDir: path.dirname(this.blobs.blobDir), dbFile: this.db.name, ftsFile: ftsFileOf(this.db.name) };
    let held: (() => void) | null = null;
    let exited = false;
    const thread = startThread(
      TEXT_WORKER,
      data,
      onError,
      (m: { error?: string; lock?: boolean; unlock?: boolean }) => {
        if (m.error) onError(new Error(m.error));
        // The thread's transactions queue at the write gate like this thread's own (text-worker.ts gated()).
        if (m.lock) {
          void this.gate.acquire().then((release) => {
            if (exited) return release();
            held = release;
            thread.worker.postMessage('granted');
          });
        }
        if (m.unlock) {
          held?.();
          held = null;
        }
      },
      () => {
        exited = true;
        held?.();
        held = null;
        // Without the thread, this connection checkpoints the WAL again (or it would grow without bound).
        this.db.pragma(`wal_autocheckpoint = ${DEFAULT_WAL_AUTOCHECKPOINT}`);
        this.indexer = null;
        if (!this.closed) onError(new Error('full-text indexing thread stopped'));
      },
    );
    this.indexer = thread;
    // The thread checkpoints the WAL from now on (text-worker.ts checkpoint()): not the commits of this event loop.
    this.db.pragma('wal_autocheckpoint = 0');
    // Sort keys of bodies stored before schema V11 (sorting.ts): a writer, so only where the indexing runs.
    this.startSortBackfill(onError);
    this.startThreadIdBackfill(onError); // RFC 8474 §5.2 THREADIDs of bodies stored before V_THREAD_IDS
  }

  private searcher: Thread | null = null;
  private searchSeq = 0;
  private readonly searches = new Map<number, { resolve: (r: { uids: number[]; undecided: number[]; packed?: PackedRows; thread?: ThreadAnswer }) => void; reject: (e: unknown) => void }>();

  /** The search thread (search-worker.ts); searches fall back to this thread if it fails. */
  private startSearcher(onError: (err: unknown) => void): void {
    const data: SearchWorkerData = { dbFile: this.db.name, ftsFile: ftsFileOf(this.db.name) };
    const t = startThread(
      SEARCH_WORKER,
      data,
      onError,
      (m: SearchReply) => {
        const p = this.searches.get(m.id);
        if (!p) return;
        this.searches.delete(m.id);
        if (this.searches.size === 0) t.worker.unref();
        if ('error' in m) p.reject(Object.assign(new Error(m.error), { code: m.code }));
        else if ('packed' in m) p.resolve({ uids: [], undecided: [], packed: m.packed });
        else if ('thread' in m) p.resolve({ uids: [], undecided: [], thread: m.thread });
        else p.resolve({ uids: numbersOfArray(m.uids), undecided: numbersOfArray(m.undecided) });
      },
      () => {
        if (this.searcher === t) this.searcher = null;
        for (const p of this.searches.values()) p.reject(new StoreError('UNAVAILABLE', 'search thread stopped'));
        this.searches.clear();
      },
    );
    this.searcher = t;
  }

  protected override offloadSearch(mailboxId: number, filter: CompiledFilter): Promise<{ uids: number[]; undecided: number[] }> | null {
    const w = this.searcher?.worker;
    if (!w) return null;
    const id = ++this.searchSeq;
    return new Promise((resolve, reject) => {
      // Referenced while a reply is awaited, so the process waits for it.
      if (this.searches.size === 0) w.ref();
      this.searches.set(id, { resolve, reject });
      const req: SearchRequest = { id, mailboxId, filter };
      w.postMessage(req);
    });
  }

  protected override offloadUidQuery(sql: string, params: (string | number)[], keep?: SortKeep): Promise<number[]> | null {
    const w = this.searcher?.worker;
    if (!w) return null;
    const id = ++this.searchSeq;
    return new Promise<{ uids: number[] }>((resolve, reject) => {
      if (this.searches.size === 0) w.ref();
      this.searches.set(id, { resolve, reject });
      const req: SearchRequest = { id, query: { sql, params, keep } };
      w.postMessage(req);
    }).then((r) => r.uids);
  }

  protected override offloadRows(sql: string, params: (string | number)[], nums: number, texts: number): Promise<PackedRows> | null {
    const w = this.searcher?.worker;
    if (!w) return null;
    const id = ++this.searchSeq;
    return new Promise<{ packed?: PackedRows }>((resolve, reject) => {
      if (this.searches.size === 0) w.ref();
      this.searches.set(id, { resolve, reject });
      const req: SearchRequest = { id, rows: { sql, params, nums, texts } };
      w.postMessage(req);
    }).then((r) => r.packed!);
  }

  protected override offloadThread(req: ThreadQuery): Promise<ThreadAnswer> | null {
    const w = this.searcher?.worker;
    if (!w) return null;
    const id = ++this.searchSeq;
    return new Promise<{ thread?: ThreadAnswer }>((resolve, reject) => {
      if (this.searches.size === 0) w.ref();
      this.searches.set(id, { resolve, reject });
      const msg: SearchRequest = { id, thread: req };
      w.postMessage(msg);
    }).then((r) => r.thread!);
  }

  /** Wakes the indexing thread (after a commit that stored new bodies). */
  private kickIndexer(): void {
    this.indexer?.worker.postMessage('kick');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.foreign.stop();
    this.stopSortBackfill();
    this.stopThreadIdBackfill();
    // Calls already made finish (searches included) before the threads stop.
    await Promise.allSettled([...this.inflight]);
    if (this.searcher) await stopThread(this.searcher, THREAD_STOP_MS);
    // The indexing thread finishes the body in hand (at most one short transaction), then closes its connection.
    if (this.indexer) await stopThread(this.indexer, THREAD_STOP_MS);
    try {
      this.db.pragma(`busy_timeout = ${this.busyTimeoutMs}`);
      await this.purgeTrash();
      await this.blobs.close();
      this.q('DELETE FROM blob_reservations WHERE owner = ?').run(this.owner);
      // Orderly shutdown: the lazy commits (durability "mail") still unsynced are synced now.
      await this.walSync?.flush();
      this.db.pragma('wal_checkpoint(PASSIVE)');
    } finally {
      this.ftsWriter?.close();
      this.ftsReader?.db.close();
      this.db.close();
      releaseOwner(this.owner);
    }
  }

  /** Bodies waiting for the full-text index, counted up to INDEX_BACKLOG_COUNT_CAP over the partial index blobs_fts_pending. */
  indexBacklog(): Promise<number> {
    return this.run(() => this.q(`SELECT count(*) FROM (SELECT 1 FROM blobs WHERE fts = ${FTS_PENDING} LIMIT ${INDEX_BACKLOG_COUNT_CAP})`).pluck().get() as number);
  }

  /**
   * Consistency checks of this store (src/store/sqlite/doctor.ts); with
   * `repair`, fixes what can be fixed. SQLite-specific: not part of MailStore.
   */
  doctor(opts: { repair?: boolean } = {}): Promise<DoctorReport> {
    return this.run(async () => {
      // The doctor writes outside the gate (an admin command): it may wait for other processes' locks.
      this.db.pragma(`busy_timeout = ${this.busyTimeoutMs}`);
      try {
        const report = await runDoctor(this.db, this.blobs, opts).finally(() => this.writes++);
        if (opts.repair) await this.purgeTrash();
        return report;
      } finally {
        this.db.pragma('busy_timeout = 0');
      }
    });
  }
}
