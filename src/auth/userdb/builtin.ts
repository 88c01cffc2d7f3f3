// The built-in user table (the store's users + credentials tables): scrypt
// password hashes (password.ts), SCRAM-SHA-256 verifiers and named
// application passwords.

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { MailStore, UserInfo } from '../../store/types.js';
import { verifyPassword } from '../password.js';
import { decodeScramCredentials, deriveScramCredentials, encodeScramCredentials, type ScramCredentials } from '../scram.js';
import type { UserDb, UserEntry } from './types.js';

/** Store credential kinds. */
export const SCRAM_KIND = 'scram-sha-256';
export const APP_PASSWORD_KIND = 'app';
/** Most application passwords per user (each is checked on a failed account-password login). */
export const MAX_APP_PASSWORDS = 20;
/** Application passwords are generated: 144 random bits, 24 base64url characters (no KDF needed at that entropy). */
const APP_PASSWORD_BYTES = 18;
/** Longest application password name. */
export const MAX_APP_PASSWORD_NAME = 64;

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** Stored form of a generated application password: its SHA-256, base64. */
function appSecret(password: string): string {
  return 'sha256$' + sha256(password).toString('base64');
}

/** Stores the SCRAM verifier for `password` (on `user passwd` and after a password login without one). */
export async function storeScramVerifier(store: MailStore, userId: number, password: string): Promise<void> {
  const creds = await deriveScramCredentials(password);
  await store.setCredential(userId, SCRAM_KIND, '', encodeScramCredentials(creds));
}

/** Creates a named application password and returns it (shown once; only its hash is kept). */
export async function addAppPassword(store: MailStore, user: UserInfo, name: string): Promise<string> {
  if (name.length === 0 || name.length > MAX_APP_PASSWORD_NAME || !/^[\p{L}\p{N}._ -]+$/u.test(name)) {
    throw new Error(`application password name must be 1-${MAX_APP_PASSWORD_NAME} letters, digits, ".", "_", "-" or spaces`);
  }
  const existing = await store.listCredentials(user.id, APP_PASSWORD_KIND);
  if (existing.some((c) => c.name === name)) throw new Error(`application password ${name} exists (revoke it first)`);
  if (existing.length >= MAX_APP_PASSWORDS) throw new Error(`at most ${MAX_APP_PASSWORDS} application passwords per user`);
  const password = randomBytes(APP_PASSWORD_BYTES).toString('base64url');
  await store.setCredential(user.id, APP_PASSWORD_KIND, name, appSecret(password));
  return password;
}

export class BuiltinUserDb implements UserDb {
  readonly kind = 'builtin';
  readonly scram = true;

  constructor(private readonly store: MailStore) {}

  async find(name: string): Promise<UserEntry | null> {
    const user = await this.store.getUser(name);
    if (!user) return null;
    const apps = await this.store.listCredentials(user.id, APP_PASSWORD_KIND);
    const store = this.store;
    // The fingerprint covers the password hash and every application password: revoking one invalidates cached logins.
    const fp = createHash('sha256').update(user.passwordHash);
    for (const a of apps) fp.update('\0' + a.name + '\0' + a.secret);
    return {
      account: { name: user.name },
      fingerprint: fp.digest('base64'),
      async checkPassword(password: string): Promise<string | null> {
        if (apps.length > 0) {
          const got = Buffer.from(appSecret(password));
          for (const a of apps) {
            const want = Buffer.from(a.secret);
            if (want.length === got.length && timingSafeEqual(want, got)) return 'app:' + a.name;
          }
        }
        return (await verifyPassword(password, user.passwordHash)) ? '' : null;
      },
      async scram(): Promise<ScramCredentials | null> {
        const [c] = await store.listCredentials(user.id, SCRAM_KIND);
        return c ? decodeScramCredentials(c.secret) : null;
      },
      async afterPasswordLogin(password: string, credential: string): Promise<void> {
        if (credential === '') {
          const [c] = await store.listCredentials(user.id, SCRAM_KIND);
          if (!c || !decodeScramCredentials(c.secret)) await storeScramVerifier(store, user.id, password);
        } else if (credential.startsWith('app:')) {
          await store.touchCredential(user.id, APP_PASSWORD_KIND, credential.slice(4), new Date());
        }
      },
    };
  }
}
