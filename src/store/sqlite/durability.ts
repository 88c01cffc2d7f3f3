// Group commit: durable commits without an fsync on the serving thread.
//
// The store's connection runs with synchronous=NORMAL in WAL mode, so COMMIT
// only writes the transaction's frames into the -wal file (page cache, no
// sync). Durability then comes from WalSync: an fdatasync() of the -wal file
// through callbacks on raw descriptors, i.e. on libuv's threadpool, off the event loop.
// Whoever needs a commit durable (APPEND's OK, LMTP's 250, every other
// acknowledged write) awaits `barrier()` after its COMMIT; concurrent writers
// share syncs: a sync already in flight serves only the commits that finished
// before it started, later ones join the next (one at a time).
//
// Why this is as durable as synchronous=FULL (SQLite's "Write-Ahead Logging"
// and "PRAGMA synchronous" documentation):
// - In WAL mode FULL differs from NORMAL by exactly one thing: "an additional
//   sync operation of the WAL file happens after each transaction commit".
//   A commit is its frames in the WAL, the last one marked as a commit frame;
//   once those bytes are on stable storage, recovery replays it. We do that
//   same sync, just later and shared, and acknowledge only after it.
// - fdatasync() acts on the file (inode), not on the descriptor: it flushes
//   the pages SQLite wrote through its own descriptor, and the WAL's size
//   (metadata needed to read the data back), header included.
// - Checkpoints: with NORMAL "the WAL file is synchronized before each
//   checkpoint and the database file is synchronized after each completed
//   checkpoint". A commit checkpointed before our sync ran is therefore
//   already durable in the database file.
// - WAL restart: a writer rewrites the WAL from its start (new salts) only
//   after a checkpoint has copied every frame into the database file (and
//   synced it: previous point). So a commit whose frames are overwritten
//   before our sync is durable in the database file; the frames written
//   after the restart are the ones our sync then flushes. The header of a
//   restarted WAL is synced by SQLite itself under NORMAL ("the WAL file
//   header is synchronized when a WAL file begins to be reused").
// - The WAL file is deleted only when the last connection closes (after a
//   full checkpoint), so it may not exist: then there is nothing to sync.
//   It is opened afresh for every sync, so a recreated WAL is never missed.
// The checkpointing connection (text-worker.ts) must itself run with
// synchronous NORMAL or FULL (never OFF) for the checkpoint syncs above.
//
// Lazy commits (sqlite.durability = "mail", like Dovecot's `mail_fsync =
// optimized`: "fsync whenever necessary to avoid losing important data",
// https://doc.dovecot.org/2.3/settings/core/#core_setting-mail_fsync and the
// wiki's MailLocation/LocalDisk "Fsyncing"): a flag change or an expunge
// answers after its COMMIT and calls soon(), which starts a sync within
// MAX_UNSYNCED_MS unless one starts earlier for another reason. The WAL is one
// ordered log, so any later sync (a durable write's barrier(), a flush())
// covers every earlier lazy commit too; covered() tells whether one is still
// unsynced.
import { close as closeCb, fdatasync as fdatasyncCb, open as openCb } from 'node:fs';

/**
 * Longest time a lazy commit (soon()) stays unsynced before its sync starts:
 * the window a power loss can undo acknowledged flag changes and expunges in
 * (plus one fdatasync). Short enough to bound the loss, long enough that a
 * busy server's lazy commits share one sync instead of one each.
 */
export const MAX_UNSYNCED_MS = 20;

export class WalSync {
  /** Syncs started so far; sync number n serves every commit finished before it started. */
  private started = 0;
  private done = 0;
  private running = false;
  /** The highest sync number someone waits for. */
  private wanted = 0;
  private readonly waiters: { n: number; resolve: () => void; reject: (e: unknown) => void }[] = [];
  /** Syncs performed (for tests and metrics). */
  syncs = 0;
  /** Syncs that failed (the lazy commits they were to cover stay unsynced until a later sync succeeds). */
  failures = 0;
  /** Lazy commits noted (soon()) so far. */
  private lazy = 0;
  /** `lazy` when the running (or last) sync started: the lazy commits it covers. */
  private lazyAtStart = 0;
  /** Lazy commits covered by a completed sync. */
  private lazySynced = 0;
  /** The pending MAX_UNSYNCED_MS timer of soon(), if any. */
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly walPath: string,
    /** Runs after each sync completes, before its waiters resume (the store publishes changes made durable there). */
    private readonly onSynced: (n: number, err: unknown) => void = () => {},
    /** The bound of soon() (MAX_UNSYNCED_MS; tests widen it to watch the window). */
    private readonly maxUnsyncedMs = MAX_UNSYNCED_MS,
  ) {}

  /** The number of the first sync that will start after now (it covers every commit finished so far). */
  next(): number {
    const n = this.started + 1;
    if (n > this.wanted) this.wanted = n;
    if (!this.running) this.start();
    return n;
  }

  /** Resolves once sync `n` has completed (see next()). */
  wait(n: number): Promise<void> {
    if (this.done >= n) return Promise.resolve();
    return new Promise((resolve, reject) => this.waiters.push({ n, resolve, reject }));
  }

  /** Resolves once every commit finished before this call is on stable storage. */
  barrier(): Promise<void> {
    return this.wait(this.next());
  }

  /**
   * Notes a lazy commit (just finished): a sync that covers it starts within
   * MAX_UNSYNCED_MS, or earlier when someone else needs one (a sync running
   * now started before this commit, so it is the next one either way).
   * Returns the number of that sync.
   */
  soon(): number {
    this.lazy++;
    this.arm();
    return this.started + 1;
  }

  /** Starts a sync for the lazy commits not yet covered by a started one, MAX_UNSYNCED_MS from now. */
  private arm(): void {
    this.timer ??= setTimeout(() => {
      this.timer = null;
      if (this.lazy !== this.lazyAtStart || !this.covered()) this.next();
    }, this.maxUnsyncedMs);
  }

  /**
   * Starts now the sync soon() promised, if a lazy commit is not yet covered
   * by a started one (a sync running already covers what came before it).
   */
  hurry(): void {
    if (this.lazy !== this.lazyAtStart) this.next();
  }

  /** True when no lazy commit is waiting for its sync (every commit noted so far is on stable storage). */
  covered(): boolean {
    return this.lazySynced === this.lazy;
  }

  /** Resolves once every commit finished before this call is on stable storage (at once if covered()). */
  flush(): Promise<void> {
    return this.covered() ? Promise.resolve() : this.barrier();
  }

  private start(): void {
    this.running = true;
    if (this.timer) {
      clearTimeout(this.timer); // this sync covers the lazy commits the timer was for
      this.timer = null;
    }
    this.lazyAtStart = this.lazy;
    const n = ++this.started;
    void this.sync().then(
      () => this.finish(n, null),
      (err: unknown) => this.finish(n, err),
    );
  }

  /**
   * open, fdatasync, close of the -wal file on raw descriptors with callbacks:
   * the same three thread-pool trips as through a FileHandle, without its
   * promise and close-tracking machinery on the event loop (issue 11).
   */
  private sync(): Promise<void> {
    return new Promise((resolve, reject) => {
      openCb(this.walPath, 'r+', (err, fd) => {
        if (err) {
          if (err.code === 'ENOENT') return resolve(); // no WAL: everything is in the synced database file
          return reject(err);
        }
        fdatasyncCb(fd, (syncErr) => {
          if (!syncErr) this.syncs++;
          closeCb(fd, (closeErr) => {
            if (syncErr || closeErr) reject(syncErr ?? closeErr);
            else resolve();
          });
        });
      });
    });
  }

  private finish(n: number, err: unknown): void {
    this.done = n;
    this.running = false;
    if (err) this.failures++;
    else this.lazySynced = this.lazyAtStart;
    try {
      this.onSynced(n, err);
    } finally {
      const still: typeof this.waiters = [];
      for (const w of this.waiters.splice(0)) {
        if (w.n > n) still.push(w);
        else if (err) w.reject(err);
        else w.resolve();
      }
      this.waiters.push(...still);
      if (this.wanted > this.done) this.start();
      else if (!this.covered()) this.arm(); // a failed sync: try again for the lazy commits it was to cover
    }
  }
}
