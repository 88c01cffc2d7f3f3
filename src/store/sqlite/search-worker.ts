// SEARCH's SQL on a thread of its own (see store.ts searchMeta): a scan of a
// 100k-message mailbox's header index or a full-text MATCH of a common word
// takes 50-300 ms, which on the server's event loop would hold every other
// connection. This thread reads through its own read-only connection (WAL:
// readers never wait for the writer) and sees every commit made before the
// request was sent.
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { runFilter, searchStatements, type CompiledFilter } from './search.js';
import { threadFromIndex, warmUp, type ThreadAnswer, type ThreadQuery } from './threading.js';
import { attachFullText } from './fulltext.js';
import { keptSort, type SortKeep } from './sort-cache.js';

export interface SearchWorkerData {
  dbFile: string;
  /** The full-text index file (fulltext.ts ftsFileOf). */
  ftsFile: string;
}

export type SearchRequest =
  | { id: number; mailboxId: number; filter: CompiledFilter }
  /** A read-only query whose first column is a UID (SORT, sorting.ts), answered in its order. */
  | { id: number; query: { sql: string; params: (string | number)[]; keep?: SortKeep } }
  /**
   * A read-only query of `nums` numeric columns followed by `texts` text columns (THREAD rows,
   * sorting.ts), answered packed: numbers in one Float64Array, row after row; texts joined by NUL
   * (NULL as ""), so the server's thread receives two values instead of 100k objects.
   */
  | { id: number; rows: { sql: string; params: (string | number)[]; nums: number; texts: number } }
  /** THREAD of a mailbox from its thread index (threading.ts), threaded here. */
  | { id: number; thread: ThreadQuery };

/** The packed answer to a `rows` request. */
export interface PackedRows {
  count: number;
  nums: Float64Array;
  texts: string;
}

export type SearchReply =
  | { id: number; uids: Uint32Array; undecided: Uint32Array }
  | { id: number; packed: PackedRows }
  | { id: number; thread: ThreadAnswer }
  | { id: number; error: string; code?: string };

/** The connection waits this long for a lock (readers rarely need one). */
const BUSY_TIMEOUT_MS = 10_000;

const port = parentPort!;
const db = new Database((workerData as SearchWorkerData).dbFile, { readonly: true, fileMustExist: true });
db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
// The full-text index's own file (fulltext.ts): compiled filters read it as `fts.`.
attachFullText(db, (workerData as SearchWorkerData).ftsFile);
const statement = searchStatements(db);
// The first THREAD a client asks for runs compiled code (threading.ts warmUp): done before any request is read.
warmUp();

port.on('message', (m: SearchRequest | 'stop') => {
  if (m === 'stop') {
    db.close();
    process.exit(0);
  }
  try {
    if ('thread' in m) {
      const answer = threadFromIndex(statement, m.thread);
      const reply: SearchReply = { id: m.id, thread: answer };
      port.postMessage(reply, 'forest' in answer ? [answer.forest.nodes.buffer as ArrayBuffer] : []);
      return;
    }
    if ('rows' in m) {
      const { sql, params, nums, texts } = m.rows;
      const all = statement(sql).raw().all(...params) as unknown[][];
      const packed: PackedRows = { count: all.length, nums: new Float64Array(all.length * nums), texts: '' };
      const parts: string[] = [];
      for (let i = 0; i < all.length; i++) {
        const r = all[i]!;
        for (let j = 0; j < nums; j++) packed.nums[i * nums + j] = Number(r[j] ?? 0);
        for (let j = 0; j < texts; j++) parts.push(String(r[nums + j] ?? ''));
      }
      packed.texts = parts.join('\u0000');
      const reply: SearchReply = { id: m.id, packed };
      port.postMessage(reply, [packed.nums.buffer as ArrayBuffer]);
      return;
    }
    if ('query' in m) {
      const q = m.query;
      const uids = q.keep ? keptSort(statement, q.sql, q.params, q.keep) : Uint32Array.from(statement(q.sql).pluck().all(...q.params) as number[]);
      const undecided = new Uint32Array(0);
      const reply: SearchReply = { id: m.id, uids, undecided };
      port.postMessage(reply, [uids.buffer as ArrayBuffer]);
      return;
    }
    const r = runFilter(statement, m.mailboxId, m.filter);
    const uids = Uint32Array.from(r.uids);
    const undecided = Uint32Array.from(r.undecided);
    const reply: SearchReply = { id: m.id, uids, undecided };
    port.postMessage(reply, [uids.buffer, undecided.buffer]);
  } catch (err) {
    const reply: SearchReply = { id: m.id, error: (err as Error)?.message ?? String(err), code: (err as { code?: string })?.code };
    port.postMessage(reply);
  }
});
