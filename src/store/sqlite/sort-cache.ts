// Whole-mailbox SORT answers kept on the search thread, as threading.ts keeps
// THREAD's: the sort keys of a message come from its body and never change,
// so a mailbox holding the same messages (same UIDVALIDITY, UIDNEXT and
// count: see threading.ts cacheKey) sorts the same way whatever happened to
// its flags. A webmail lists the same folder in the same order again and
// again; a 100k-message SORT then costs a copy instead of an index walk.
import type Database from 'better-sqlite3';

/** Sorted answers kept (most recently used), each 4 bytes per message. */
const SORT_CACHE_ENTRIES = 8;
const cache = new Map<string, Uint32Array>();

type Prepare = (sql: string) => Database.Statement;

/** What a kept answer may be reused for: a query over the whole of one mailbox (no restriction to some UIDs). */
export interface SortKeep {
  mailboxId: number;
}

/** The UIDs `sql` answers (first column), kept or read, in one read transaction with the mailbox row that identifies them. */
export function keptSort(statement: Prepare, sql: string, params: (string | number)[], keep: SortKeep): Uint32Array {
  statement('BEGIN').run();
  try {
    const mb = statement('SELECT uid_validity, uid_next, msg_count FROM mailboxes WHERE id = ?').raw().get(keep.mailboxId) as [number, number, number] | undefined;
    const key = mb ? `${keep.mailboxId}/${mb[0]}/${mb[1]}/${mb[2]}|${sql}|${params.join(',')}` : null;
    const hit = key ? cache.get(key) : undefined;
    if (key && hit) {
      cache.delete(key);
      cache.set(key, hit);
      return hit.slice(); // a copy: the answer's buffer is handed over to the serving thread
    }
    const uids = Uint32Array.from(statement(sql).pluck().all(...params) as number[]);
    if (key) {
      cache.set(key, uids.slice());
      if (cache.size > SORT_CACHE_ENTRIES) cache.delete(cache.keys().next().value as string);
    }
    return uids;
  } finally {
    statement('COMMIT').run();
  }
}
