// Entry point of the embedded SQLite backend.

import type { ChangeFeed, MailStore } from '../types.js';
import { SqliteMailStore } from './store.js';

export { SqliteMailStore, DB_FILE } from './store.js';
export { MAX_KEYWORDS_PER_MAILBOX } from './flags.js';
export type { DoctorFinding, DoctorReport } from './doctor.js';

/**
 * Opens (creating if needed) the store in `dataDir`: `quire.sqlite3` plus
 * `blobs/` and `tmp/`. `synchronous` FULL (default) makes acknowledged mail
 * survive power loss; NORMAL only a crash of the process.
 */
export async function openSqliteStore(opts: {
  dataDir: string;
  synchronous?: 'FULL' | 'NORMAL';
  feed?: ChangeFeed;
  dbFile?: string;
  maxMailboxesPerUser?: number;
}): Promise<MailStore> {
  return SqliteMailStore.open(opts);
}
