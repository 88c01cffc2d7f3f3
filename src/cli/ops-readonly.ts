// Read-only data directories (a mounted backup, a snapshot, a directory
// owned by another user): the read-only admin commands (user list, mailbox
// list/stats, export, doctor without --repair) still work.
//
// SQLite cannot open a WAL database where it may not create its -shm file,
// so the database (with its -wal, which holds the latest commits) is copied
// to a private temporary directory and opened there; message bodies are read
// in place. The store handed to the command refuses every write with a
// message naming the directory and the reason, so nothing is ever written
// to the copy by mistake.

import { accessSync, constants, existsSync } from 'node:fs';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StoreError, type MailStore } from '../store/types.js';
import { describeFsError } from './ops-safety.js';

/** MailStore methods that only read (everything else is refused on a read-only data directory). */
const READ_METHODS = new Set([
  'getUser', 'getUserById', 'listUsers', 'countUsers', 'listMailboxes', 'getMailbox', 'getMailboxById', 'listSubscriptions', 'mailboxStatus',
  'listMessages', 'deletedSize', 'searchMeta', 'listUids', 'firstUnseenUid', 'getMessages', 'getMessagesWithBodies', 'openMessage', 'openMessages', 'listKeywords',
  'headerIndex', 'listChangedSince', 'expungedSince', 'listAddresses', 'findAddress', 'getQuota', 'close', 'doctor',
]);

/** Why the data directory cannot be written ("read-only file system (EROFS)", "permission denied (EACCES)"), or null if it can. */
export function readOnlyReason(dataDir: string, dbFile: string): string | null {
  for (const p of [dataDir, dbFile]) {
    try {
      accessSync(p, constants.W_OK);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'ENOENT') continue;
      return `${p}: ${describeFsError(e)}`;
    }
  }
  return null;
}

/** Opens the store of a read-only data directory through a private copy of its database; writes are refused. */
export async function openReadOnlyStore(
  dataDir: string,
  dbName: string,
  reason: string,
  open: (o: { dataDir: string; dbFile: string }) => Promise<MailStore>,
): Promise<MailStore> {
  const tmp = await mkdtemp(join(tmpdir(), 'quire-ro-'));
  const dbFile = join(tmp, dbName);
  try {
    await copyFile(join(dataDir, dbName), dbFile);
    if (existsSync(join(dataDir, `${dbName}-wal`))) await copyFile(join(dataDir, `${dbName}-wal`), `${dbFile}-wal`);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw new StoreError('UNAVAILABLE', `cannot read ${join(dataDir, dbName)}: ${describeFsError(err as NodeJS.ErrnoException)}`);
  }
  let store: MailStore;
  try {
    store = await open({ dataDir, dbFile });
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
  const refuse = (what: string) => {
    throw new StoreError('NOPERM', `the data directory is read-only (${reason}): ${what} needs to write; only reading commands work here`);
  };
  return new Proxy(store, {
    get(target, prop) {
      const v = Reflect.get(target, prop) as unknown;
      if (typeof v !== 'function' || typeof prop !== 'string') return v;
      if (prop === 'close') {
        return async () => {
          try {
            await target.close();
          } finally {
            await rm(tmp, { recursive: true, force: true });
          }
        };
      }
      if (prop === 'doctor') {
        return (opts?: { repair?: boolean }) => (opts?.repair ? refuse('doctor --repair') : (v as (o?: unknown) => unknown).call(target, opts));
      }
      if (!READ_METHODS.has(prop)) return () => refuse(prop);
      return (v as (...a: unknown[]) => unknown).bind(target);
    },
  });
}
