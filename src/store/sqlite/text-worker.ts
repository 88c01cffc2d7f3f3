// The full-text indexer's thread (see fulltext.ts). APPEND commits a body
// with blobs.fts = 0 and wakes this worker, which reads the body file, works
// out its search text and puts it into the index on its own connection, so
// the tokenizing (the costly part: ~0.3 ms per typical message) runs on
// another core and never delays an APPEND's OK or another connection.
// Until a body is indexed, SEARCH BODY/TEXT reads it: answers never depend
// on how far the worker has got.
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { readFileSync } from 'node:fs';
import { BlobFiles } from './blobs.js';
import { FTS_PENDING, indexBodyText } from './fulltext.js';
import { searchTextOfMessage, type SearchText } from '../structure.js';

export interface TextWorkerData {
  dataDir: string;
  dbFile: string;
}

/** Bodies looked up per round. */
const ROUND = 64;
/** A transaction ends after this much text (UTF-16 units), so the write lock is held only a few milliseconds. */
const TX_TEXT = 256 * 1024;
/** With nothing to do, look again this often for bodies written by other processes (quire import). */
const IDLE_POLL_MS = 5_000;
/** The connection waits this long for the write lock held by the server. */
const BUSY_TIMEOUT_MS = 10_000;

const port = parentPort!;
const { dataDir, dbFile } = workerData as TextWorkerData;
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

let stopping = false;
let wake: (() => void) | null = null;
let kicked = false;
port.on('message', (m: 'kick' | 'stop') => {
  if (m === 'stop') stopping = true;
  else kicked = true;
  wake?.();
});

function commit(batch: [number, SearchText | null][]): void {
  if (batch.length === 0) return;
  db.transaction(() => {
    // Re-checked under the lock: the body may be gone (expunged) or indexed by another process.
    const state = prepare('SELECT fts FROM blobs WHERE id = ?').pluck();
    for (const [id, text] of batch) if (state.get(id) === FTS_PENDING) indexBodyText(prepare, id, text);
  }).immediate();
  batch.length = 0;
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
function round(): boolean {
  const ids = prepare(`SELECT id FROM blobs WHERE fts = ${FTS_PENDING} ORDER BY id LIMIT ?`).pluck().all(ROUND) as number[];
  if (ids.length === 0) return false;
  const batch: [number, SearchText | null][] = [];
  let chars = 0;
  for (const id of ids) {
    if (stopping) break;
    let text: SearchText | null = null;
    try {
      text = searchTextOfMessage(readFileSync(blobs.pathOf(id)));
    } catch {
      text = null; // unreadable: marked skipped; SEARCH reads it (and `quire doctor` reports the file)
    }
    batch.push([id, text]);
    chars += text ? text.body.length + text.header.length : 0;
    if (chars >= TX_TEXT) {
      commit(batch);
      chars = 0;
    }
  }
  commit(batch);
  return true;
}

async function main(): Promise<void> {
  while (!stopping) {
    kicked = false;
    let worked: boolean;
    try {
      worked = round();
    } catch (err) {
      port.postMessage({ error: String((err as Error)?.stack ?? err) });
      await sleep(RETRY_MS);
      continue;
    }
    if (worked) await new Promise((r) => setImmediate(r)); // let 'stop' arrive
    else if (!kicked && !stopping) await sleep(IDLE_POLL_MS);
  }
}

main()
  .catch((err: unknown) => port.postMessage({ error: String((err as Error)?.stack ?? err) }))
  .finally(() => {
    db.close();
    process.exit(0); // ends this thread only; the message port would keep it alive
  });
