// One table from storage failures to RFC 5530 response codes (STYLE.md habit 8).
// Anything unexpected becomes NO [SERVERBUG] with a log id the admin can grep.

import { randomBytes } from 'node:crypto';
import type { StoreErrorKind } from '../store/types.js';
import { ImapError } from './types.js';

const STORE_CODES: Record<StoreErrorKind, string> = {
  NONEXISTENT: 'NONEXISTENT',
  ALREADYEXISTS: 'ALREADYEXISTS',
  TRYCREATE: 'TRYCREATE',
  OVERQUOTA: 'OVERQUOTA',
  TOOBIG: 'TOOBIG',
  LIMIT: 'LIMIT',
  INUSE: 'INUSE',
  EXPUNGEISSUED: 'EXPUNGEISSUED',
  CANNOT: 'CANNOT',
  NOPERM: 'NOPERM',
  UNAVAILABLE: 'UNAVAILABLE',
  CORRUPT: 'CORRUPTION',
};

interface StoreErrorLike {
  name: string;
  kind: StoreErrorKind;
  message: string;
}

function isStoreError(e: unknown): e is StoreErrorLike {
  return e instanceof Error && e.name === 'StoreError' && typeof (e as StoreErrorLike).kind === 'string';
}

/** Turn any thrown value into the ImapError to answer with; `logId` is set for unexpected errors. */
export function toImapError(e: unknown): { error: ImapError; unexpected: boolean; logId?: string } {
  if (e instanceof ImapError) return { error: e, unexpected: false };
  // A damaged store (a body file missing while referenced, SQLite corruption) is the admin's problem:
  // logged with a log id and answered SERVERBUG, like any unexpected error (ops).
  if (isStoreError(e) && e.kind !== 'CORRUPT') {
    const code = STORE_CODES[e.kind] ?? 'SERVERBUG';
    return { error: new ImapError('NO', e.message, code), unexpected: false };
  }
  const logId = randomBytes(6).toString('hex');
  return { error: new ImapError('NO', `Internal error, log id ${logId}`, 'SERVERBUG'), unexpected: true, logId };
}
