// User provisioning shared by `quire serve` (first start) and `quire user add`:
// create the user and the default mailboxes, all subscribed.

import { randomBytes } from 'node:crypto';
import { hashPassword } from '../auth/password.js';
import { storeScramVerifier } from '../auth/userdb/builtin.js';
import { StoreError, type MailStore, type SpecialUse, type UserInfo } from '../store/types.js';

/** Mailboxes every new user gets (RFC 6154 special-use attributes where one applies). */
export const DEFAULT_MAILBOXES: readonly { name: string; specialUse: SpecialUse | null }[] = [
  { name: 'INBOX', specialUse: null },
  { name: 'Drafts', specialUse: '\\Drafts' },
  { name: 'Sent', specialUse: '\\Sent' },
  { name: 'Junk', specialUse: '\\Junk' },
  { name: 'Trash', specialUse: '\\Trash' },
  { name: 'Archive', specialUse: '\\Archive' },
];

/** Longest user name in bytes (RFC 4616 asks servers to accept at least 255 octets; we accept exactly that). */
export const MAX_USER_NAME_BYTES = 255;
/** Bytes of randomness in a generated password: 144 bits, 24 base64url characters. */
export const GENERATED_PASSWORD_BYTES = 18;
/** Longest password accepted from the CLI; IMAP LOGIN must be able to carry it within the pre-auth line limit. */
export const MAX_PASSWORD_BYTES = 1024;

/** Returns an error message if `name` cannot be a user name, else null. */
export function checkUserName(name: string): string | null {
  if (name.length === 0) return 'user name must not be empty';
  if (Buffer.byteLength(name, 'utf8') > MAX_USER_NAME_BYTES) return `user name must be at most ${MAX_USER_NAME_BYTES} bytes`;
  // NUL separates SASL PLAIN fields; whitespace and controls make LOGIN quoting and logs ambiguous.
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x20\x7f\u0085\u00a0\u2028\u2029]/.test(name)) return 'user name must not contain spaces or control characters';
  if (/\p{Cs}/u.test(name)) return 'user name is not valid Unicode'; // lone surrogate
  return null;
}

/** Returns an error message if `password` is unusable, else null. */
export function checkPassword(password: string, minLength = 1): string | null {
  if (password.length === 0) return 'password must not be empty';
  // Counted in characters (code points), as a user counts them; auth.minPasswordLength (ops).
  if ([...password].length < minLength) return `password must be at least ${minLength} characters (auth.minPasswordLength)`;
  if (Buffer.byteLength(password, 'utf8') > MAX_PASSWORD_BYTES) return `password must be at most ${MAX_PASSWORD_BYTES} bytes`;
  // NUL cannot be carried by SASL PLAIN; CR/LF cannot be carried by LOGIN.
  if (/[\0\r\n]/.test(password)) return 'password must not contain NUL, CR or LF';
  return null;
}

/** A strong random password, safe to type and to quote in IMAP (letters, digits, "-" and "_"). */
export function generatePassword(): string {
  return randomBytes(GENERATED_PASSWORD_BYTES).toString('base64url');
}

/** Creates any missing default mailbox and subscribes to all of them; idempotent. */
export async function ensureDefaultMailboxes(store: MailStore, userId: number): Promise<void> {
  for (const mb of DEFAULT_MAILBOXES) {
    const existing = await store.getMailbox(userId, mb.name);
    if (!existing) {
      try {
        await store.createMailbox(userId, mb.name, mb.specialUse);
      } catch (err) {
        // A backend may create INBOX together with the user.
        if (!(err instanceof StoreError && err.kind === 'ALREADYEXISTS')) throw err;
      }
    }
    await store.setSubscribed(userId, mb.name, true);
  }
}

/**
 * Creates a user with the given password plus the default mailboxes.
 * Throws StoreError ALREADYEXISTS if the name is taken, Error for an invalid name or password.
 * If creating the mailboxes fails, the half-made user is removed again.
 */
export async function provisionUser(store: MailStore, name: string, password: string): Promise<UserInfo> {
  const bad = checkUserName(name) ?? checkPassword(password);
  if (bad) throw new Error(bad);
  if (await store.getUser(name)) throw new StoreError('ALREADYEXISTS', `user ${name} already exists`);
  const user = await store.createUser(name, await hashPassword(password));
  try {
    await storeScramVerifier(store, user.id, password);
    await ensureDefaultMailboxes(store, user.id);
  } catch (err) {
    await store.deleteUser(user.id).catch(() => {});
    throw err;
  }
  return user;
}

/** Password hash of users whose password lives in an external user database: it matches no password. */
export const EXTERNAL_PASSWORD_HASH = '!external';

/**
 * The local user holding the mail of an account from an external user
 * database (passwd-file, LDAP, SQL), created at its first login with the
 * default mailboxes. Idempotent.
 */
export async function provisionExternalUser(store: MailStore, name: string): Promise<UserInfo> {
  const bad = checkUserName(name);
  if (bad) throw new Error(bad);
  const existing = await store.getUser(name);
  if (existing) return existing;
  let user: UserInfo;
  try {
    user = await store.createUser(name, EXTERNAL_PASSWORD_HASH);
  } catch (err) {
    // Another worker created it first.
    if (err instanceof StoreError && err.kind === 'ALREADYEXISTS') return (await store.getUser(name))!;
    throw err;
  }
  await ensureDefaultMailboxes(store, user.id);
  return user;
}

/** Sets a new password for an existing user; NONEXISTENT if there is no such user. */
export async function changePassword(store: MailStore, name: string, password: string): Promise<UserInfo> {
  const bad = checkPassword(password);
  if (bad) throw new Error(bad);
  const user = await store.getUser(name);
  if (!user) throw new StoreError('NONEXISTENT', `no such user: ${name}`);
  await store.setPasswordHash(user.id, await hashPassword(password));
  // The SCRAM verifier follows the password (RFC 5802 §5.1); a stale one would keep the old password working.
  await storeScramVerifier(store, user.id, password);
  return user;
}

/** Deletes a user with all mail; NONEXISTENT if there is no such user. */
export async function removeUser(store: MailStore, name: string): Promise<UserInfo> {
  const user = await store.getUser(name);
  if (!user) throw new StoreError('NONEXISTENT', `no such user: ${name}`);
  await store.deleteUser(user.id);
  return user;
}

/** Name for the first user created by `quire serve`: the OS login name if it is a usable user name, else "quire". */
export function firstUserName(osUser: string | undefined): string {
  const candidate = (osUser ?? '').toLowerCase();
  if (candidate && candidate !== 'root' && /^[a-z0-9._-]{1,64}$/.test(candidate)) return candidate;
  return 'quire';
}
