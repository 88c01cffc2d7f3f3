// Entry point of the embedded SQLite backend.

import type { MailStore } from '../types.js';
import { SqliteMailStore, type SqliteStoreOptions } from './store.js';

export { SqliteMailStore, DB_FILE, LocalWriteGate, type SqliteDurability, type SqliteStoreOptions, type WriteGate } from './store.js';
export { MAX_KEYWORDS_PER_MAILBOX } from './flags.js';
export type { DoctorFinding, DoctorReport } from './doctor.js';

/**
 * Opens (creating if needed) the store in `dataDir`: `quire.sqlite3` plus
 * `blobs/` and `tmp/`. `synchronous` FULL (default) makes acknowledged mail
 * survive power loss; NORMAL only a crash of the process.
 */
export async function openSqliteStore(opts: SqliteStoreOptions): Promise<MailStore & Pick<SqliteMailStore, 'wake'>> {
  return SqliteMailStore.open(opts);
}
