// The full-text indexer's thread (see fulltext.ts). APPEND commits a body
// with blobs.fts = 0 and wakes this worker, which reads the body file, works
// out its search text and puts it into the index file on its own connection,
// so the tokenizing (the costly part: ~0.3 ms per typical message) runs on
// another core and never delays an APPEND's OK or another connection. Its
// transactions on the index file hold that file's lock, not the store's; in
// the store it only marks the batch handled (a few primary-key updates under
// the write gate) and checkpoints the WAL.
// Until a body is indexed, SEARCH BODY/TEXT reads it: answers never depend
// on how far the worker has got.
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { readFileSync } from 'node:fs';
import { BlobFiles } from './blobs.js';
import { markHandled, openFullText, pendingBodies, pendingText, pruneDeleted, storePendingTexts } from './fulltext.js';
import type { SearchText } from '../structure.js';

export interface TextWorkerData {
  dataDir: string;
  dbFile: string;
  /** The full-text index file (fulltext.ts ftsFileOf). */
  ftsFile: string;
}

/** Bodies looked up per round. */
const ROUND = 64;
/**
 * A batch ends after this much text (UTF-16 units, a handful of typical
 * messages) while the server is writing, so new bodies reach the index soon
 * and the thread leaves the cores to the server often.
 */
const TX_TEXT = 32 * 1024;
/** ...and this much while the server is not writing (fewer, larger transactions index a backlog faster). */
const TX_TEXT_QUIET = 96 * 1024;
/** After each batch the thread pauses this long (the server's threads share the cores). */
const MIN_PAUSE_MS = 2;
/** How often a step of pruning deleted bodies' index rows runs (PRUNE_BATCH bodies looked at). */
const PRUNE_EVERY_MS = 1_000;
/** While the server writes, the thread waits this long between rounds (see main()). */
const GATHER_MS = 100;
const SERVER_BUSY_MS = 1_000;
/** How often this thread checkpoints the WAL for the server (see checkpoint()). */
const CHECKPOINT_EVERY_MS = 1_000;
/** With nothing to do, look again this often for bodies written by other processes (quire import). */
const IDLE_POLL_MS = 5_000;
/** Rows ANALYZE samples per index: statistics good enough for the planner in milliseconds, at any size. */
const ANALYSIS_LIMIT = 1000;
/** How often the planner's statistics are refreshed (mailboxes grow). */
const OPTIMIZE_EVERY_MS = 60 * 60 * 1000;
/** The connection waits this long for the write lock held by the server. */
const BUSY_TIMEOUT_MS = 10_000;

const port = parentPort!;
const { dataDir, dbFile, ftsFile } = workerData as TextWorkerData;
const blobs = new BlobFiles(dataDir, false, 'text-worker');
const db = new Database(dbFile);
db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
// Losing index work on power failure only means doing it again.
db.pragma('synchronous = NORMAL');
const stmts = new Map<string, Database.Statement>();
const prepare = (sql: string): Database.Statement => {
  let s = stmts.get(sql);
  if (!s) stmts.set(sql, (s = db.prepare(sql)));
  return s;
};
/** The index file, on a connection of its own (its write transactions lock only that file). */
const fts = openFullText(ftsFile).db;
const ftsStmts = new Map<string, Database.Statement>();
const ftsPrepare = (sql: string): Database.Statement => {
  let s = ftsStmts.get(sql);
  if (!s) ftsStmts.set(sql, (s = fts.prepare(sql)));
  return s;
};

let stopping = false;
let wake: (() => void) | null = null;
let kicked = false;
/** When the server last told of a commit: while it is writing, this thread yields the lock more (see commit()). */
let lastKick = -Infinity;
/** Resolves the wait for the write gate (the parent's 'granted'). */
let granted: (() => void) | null = null;
port.on('message', (m: 'kick' | 'stop' | 'granted') => {
  if (m === 'granted') {
    granted?.();
    granted = null;
    return;
  }
  if (m === 'stop') stopping = true;
  else {
    kicked = true;
    lastKick = performance.now();
  }
  wake?.();
});

/**
 * Runs `fn` (a write) holding the server's write gate (store.ts WriteGate):
 * asked of the parent thread, so the server's writers queue with this
 * thread in FIFO order instead of finding the lock taken.
 */
async function gated<T>(fn: () => T): Promise<T> {
  await new Promise<void>((r) => {
    granted = r;
    port.postMessage({ lock: true });
  });
  try {
    return fn();
  } finally {
    port.postMessage({ unlock: true });
  }
}

/**
 * Commits `batch`: the texts into the index file (its own lock: no server
 * writer waits for this, however long), then the marks into the store under
 * the write gate (microseconds); then pauses (see MIN_PAUSE_MS).
 */
async function commit(batch: [number, SearchText | null][]): Promise<void> {
  if (batch.length === 0) return;
  const handled = fts.transaction(() => storePendingTexts(ftsPrepare, batch)).immediate();
  batch.length = 0;
  await gated(() => db.transaction(() => markHandled(prepare, handled)).immediate());
  checkpoint();
  await new Promise((r) => setTimeout(r, MIN_PAUSE_MS));
}

/** Where the pruning of deleted bodies' index rows goes on (fulltext.ts pruneDeleted). */
let pruneAfter = 0;
let lastPrune = -Infinity;

/** A step of pruning the index rows of deleted bodies, every PRUNE_EVERY_MS (only the index file is written). */
function prune(): void {
  const now = performance.now();
  if (now - lastPrune < PRUNE_EVERY_MS) return;
  lastPrune = now;
  try {
    pruneAfter = pruneDeleted(prepare, fts, pruneAfter);
  } catch {
    // SQLITE_BUSY on the index file (quire doctor --repair): next time
  }
}

let lastCheckpoint = 0;

/**
 * The server's connection leaves WAL checkpoints to this thread while it runs
 * (a checkpoint copies pages and syncs the database file: milliseconds to
 * seconds the event loop should not spend). PASSIVE never waits for readers
 * or writers; a busy database only defers it to the next call.
 */
function checkpoint(): void {
  const now = performance.now();
  if (now - lastCheckpoint < CHECKPOINT_EVERY_MS) return;
  lastCheckpoint = now;
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
    fts.pragma('wal_checkpoint(PASSIVE)');
  } catch {
    // SQLITE_BUSY: the next call does it
  }
}

/** Wait after an error (say the lock was held too long) before trying again. */
const RETRY_MS = 5_000;

function sleep(ms: number): Promise<void> {
  return new Promise<void>((r) => {
    wake = r;
    setTimeout(r, ms);
  }).finally(() => {
    wake = null;
  });
}

/** One round: indexes up to ROUND pending bodies; false when none was pending. */
async function round(): Promise<boolean> {
  const ids = pendingBodies(prepare, ROUND);
  if (ids.length === 0) return false;
  const batch: [number, SearchText | null][] = [];
  let chars = 0;
  for (const id of ids) {
    if (stopping) break;
    const text = pendingText(() => readFileSync(blobs.pathOf(id)));
    batch.push([id, text]);
    chars += text ? text.body.length + text.header.length : 0;
    if (chars >= (performance.now() - lastKick < SERVER_BUSY_MS ? TX_TEXT : TX_TEXT_QUIET)) {
      await commit(batch);
      chars = 0;
    }
  }
  await commit(batch);
  return true;
}

let lastOptimize = -Infinity;

/**
 * SQLite's planner picks the partial flag indexes (schema v8) over the
 * primary key only when it has statistics; PRAGMA optimize gathers them for
 * tables that changed much since (SQLite's recommended upkeep: about a second
 * on a 100k-message database, spent here rather than on the server's event
 * loop; the server's connection reads the new statistics by itself). Skipped
 * quietly when the database is busy: the next run catches up.
 */
async function refreshPlannerStats(): Promise<void> {
  const now = performance.now();
  if (now - lastOptimize < OPTIMIZE_EVERY_MS) return;
  lastOptimize = now;
  try {
    db.pragma(`analysis_limit = ${ANALYSIS_LIMIT}`);
    await gated(() => db.pragma('optimize = 0x10002'));
  } catch {
    // e.g. SQLITE_BUSY from a long writer
  }
}

async function main(): Promise<void> {
  while (!stopping) {
    await refreshPlannerStats();
    kicked = false;
    let worked: boolean;
    try {
      worked = await round();
    } catch (err) {
      port.postMessage({ error: String((err as Error)?.stack ?? err) });
      await sleep(RETRY_MS);
      continue;
    }
    prune();
    if (!worked) {
      checkpoint();
      if (!kicked && !stopping) await sleep(IDLE_POLL_MS);
    }
    // While the server is writing, gather what arrives for a moment: one
    // transaction for a burst of deliveries instead of one per message, and
    // fewer times the server finds the lock taken.
    if (!stopping && performance.now() - lastKick < SERVER_BUSY_MS) await new Promise((r) => setTimeout(r, GATHER_MS));
  }
}

main()
  .catch((err: unknown) => port.postMessage({ error: String((err as Error)?.stack ?? err) }))
  .finally(() => {
    fts.close();
    db.close();
    process.exit(0); // ends this thread only; the message port would keep it alive
  });
