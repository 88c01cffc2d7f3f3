// The user database contract: where accounts and their secrets live. The
// built-in table (builtin.ts), a Dovecot-compatible passwd-file
// (passwd-file.ts), LDAP (ldap.ts) and a PostgreSQL query (sql.ts) implement
// it; the Authenticator puts policy (delays, cache, lockout, master users,
// logging) on top, and maps each account to a local store user for mail.

import type { ScramCredentials } from '../scram.js';

export interface Account {
  /** The database's spelling of the name; the local store user of the same name holds the mail. */
  name: string;
  /** Quota limits from the database (bytes / messages; null = unlimited; absent = leave as is). */
  quota?: { storage?: number | null; messages?: number | null };
  /** Delivery addresses from the database, given to the local user on login. */
  aliases?: readonly string[];
}

export interface UserEntry {
  account: Account;
  /**
   * Identifies the secret the password is checked against. A cached
   * verification is reused only while this is unchanged, so a password
   * change anywhere (another worker, the CLI, the file) takes effect at
   * once. null: the database cannot tell (LDAP bind): cached for the TTL only.
   */
  fingerprint: string | null;
  /**
   * Checks a password. Resolves null when wrong; otherwise the name of the
   * credential that matched: '' for the account password, 'app:NAME' for
   * an application password.
   */
  checkPassword(password: string): Promise<string | null>;
  /** The SCRAM verifier, when this database can hold one for the user (RFC 5802 §5.1). */
  scram?(): Promise<ScramCredentials | null>;
  /** Called after a successful password login: e.g. store a missing SCRAM verifier. */
  afterPasswordLogin?(password: string, credential: string): Promise<void>;
}

export interface UserDb {
  /** Short name for logs and the cache key ("builtin", "passwd-file", "ldap", "sql"). */
  readonly kind: string;
  /**
   * Whether SCRAM can be offered: the database can give a verifier
   * (StoredKey/ServerKey). An LDAP bind checks the password on the directory
   * server and never reveals a verifier, so SCRAM is not offered there.
   */
  readonly scram: boolean;
  /** Looks a user up by login name; null when unknown. Rejects when the database is unreachable. */
  find(name: string): Promise<UserEntry | null>;
  close?(): Promise<void>;
}
