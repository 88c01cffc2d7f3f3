// Rows of the SQLite store as the contract's types, the checks of names
// that every writer shares, the change-bus hint of a commit, and the one
// mapping from anything thrown below the contract to StoreError.
import { OVERQUOTA_MARK } from './addresses.js';
import { StoreError, type MailboxInfo, type SpecialUse, type UserInfo } from '../types.js';

/** Longest mailbox name in bytes (RFC 9051 leaves it to the server; keeps LIST output sane). */
export const MAX_MAILBOX_NAME_BYTES = 1024;

export interface UserRow {
  id: number;
  name: string;
  password_hash: string;
  created_at: number;
}

export const MAILBOX_SELECT = `SELECT m.id, m.user_id, m.name, m.uid_validity, m.uid_next, m.highest_modseq, m.special_use, m.object_id,
  EXISTS (SELECT 1 FROM subscriptions s WHERE s.user_id = m.user_id AND s.name = m.name) AS subscribed
  FROM mailboxes m`;

export interface MailboxInfoRow {
  id: number;
  user_id: number;
  name: string;
  uid_validity: number;
  uid_next: number;
  highest_modseq: number;
  special_use: string | null;
  object_id: string;
  subscribed: number;
}

export function mailboxInfo(r: MailboxInfoRow): MailboxInfo {
  return {
    id: r.id,
    userId: r.user_id,
    name: r.name,
    uidValidity: r.uid_validity,
    uidNext: r.uid_next,
    highestModseq: r.highest_modseq,
    specialUse: r.special_use as SpecialUse | null,
    subscribed: r.subscribed !== 0,
    objectId: r.object_id,
  };
}


export function userInfo(r: UserRow): UserInfo {
  return { id: r.id, name: r.name, passwordHash: r.password_hash, createdAt: new Date(r.created_at) };
}

/**
 * Names every writer (IMAP, LMTP, the CLI, import) may create: no empty, "."
 * or ".." hierarchy level and no control character, so that no name can mean
 * a path when it is exported to files (issue 10 item 4). Names stored before
 * this rule stay usable; only new names are checked.
 */
export function checkMailboxName(name: string): void {
  if (name.length === 0) throw new StoreError('CANNOT', 'empty mailbox name');
  if (Buffer.byteLength(name) > MAX_MAILBOX_NAME_BYTES) throw new StoreError('LIMIT', 'mailbox name too long');
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f-\x9f]/.test(name)) throw new StoreError('CANNOT', 'mailbox name contains control characters');
  for (const level of name.split('/')) {
    if (level === '' || level === '.' || level === '..') throw new StoreError('CANNOT', `mailbox name has an empty, "." or ".." level`);
  }
}


/** Maps anything thrown below the contract to the closed StoreError set. */
export function toStoreError(err: unknown): StoreError {
  if (err instanceof StoreError) return err;
  const code = (err as { code?: unknown })?.code;
  const message = err instanceof Error ? err.message : String(err);
  if (message === OVERQUOTA_MARK) return new StoreError('OVERQUOTA', 'quota exceeded'); // the per-user quota trigger (addresses.ts)
  let kind: 'UNAVAILABLE' | 'CORRUPT' | 'OVERQUOTA' = 'UNAVAILABLE';
  if (code === 'SQLITE_CORRUPT' || code === 'SQLITE_NOTADB') kind = 'CORRUPT';
  else if (code === 'EDQUOT') kind = 'OVERQUOTA'; // a filesystem quota; a full disk stays UNAVAILABLE
  const e = new StoreError(kind, message);
  (e as { cause?: unknown }).cause = err;
  return e;
}

/** Mailbox rows kept between commits; beyond this many the cache starts again (a bound, not a working set). */
const MAILBOX_ROWS_CACHED = 4096;

/**
 * Mailbox rows as read outside transactions (every store call looks its
 * mailbox up first: `SELECT * FROM mailboxes` was ~2.4% of the serving
 * thread under the mixed load), kept while nobody has committed since:
 * `version` is SQLite's data_version (moves when another connection
 * commits: a worker, the CLI, the indexing thread), `writes` the caller's
 * count of its own transactions (which do not move data_version).
 */
export class MailboxRowCache<R> {
  private readonly rows = new Map<number, R>();
  private version = -1;
  private writes = -1;

  get(id: number, version: number, writes: number, read: () => R | undefined): R | undefined {
    if (version !== this.version || writes !== this.writes) {
      this.rows.clear();
      this.version = version;
      this.writes = writes;
    }
    let row = this.rows.get(id);
    if (row === undefined) {
      row = read();
      if (row !== undefined) {
        if (this.rows.size >= MAILBOX_ROWS_CACHED) this.rows.clear();
        this.rows.set(id, row);
      }
    }
    return row;
  }
}
