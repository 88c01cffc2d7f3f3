// SEARCH's SQL on a thread of its own (see store.ts searchMeta): a scan of a
// 100k-message mailbox's header index or a full-text MATCH of a common word
// takes 50-300 ms, which on the server's event loop would hold every other
// connection. This thread reads through its own read-only connection (WAL:
// readers never wait for the writer) and sees every commit made before the
// request was sent.
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { runFilter, searchStatements, type CompiledFilter } from './search.js';

export interface SearchWorkerData {
  dbFile: string;
}

export interface SearchRequest {
  id: number;
  mailboxId: number;
  filter: CompiledFilter;
}

export type SearchReply = { id: number; uids: Uint32Array; undecided: Uint32Array } | { id: number; error: string; code?: string };

/** The connection waits this long for a lock (readers rarely need one). */
const BUSY_TIMEOUT_MS = 10_000;

const port = parentPort!;
const db = new Database((workerData as SearchWorkerData).dbFile, { readonly: true, fileMustExist: true });
db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
const statement = searchStatements(db);

port.on('message', (m: SearchRequest | 'stop') => {
  if (m === 'stop') {
    db.close();
    process.exit(0);
  }
  try {
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
