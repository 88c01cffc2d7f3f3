// A PostgreSQL user database: one parameterised query ($1 = the login name)
// returning the account's row. Columns (by name; only `password` is required):
//   password        "{SCHEME}value" (schemes.ts), or a value in defaultScheme
//   name            the canonical user name (default: the login name)
//   quota_storage   bytes, NULL = unlimited      (column absent: leave as is)
//   quota_messages  messages, NULL = unlimited
//   aliases         text[] or a comma-separated string of delivery addresses
//   nologin         boolean: the account may not log in
// e.g. SELECT name, password, quota_storage FROM mail_users WHERE lower(name) = lower($1) AND active
//
// The pool (pg.Pool) holds at most poolSize connections; each query has a
// statement timeout. More than one row for a name is refused (and logged).

import pg from 'pg';
import { DerivedVerifiers, storedPasswordEntry } from './stored.js';
import type { Account, UserDb, UserEntry } from './types.js';

export const DEFAULT_SQL_POOL_SIZE = 4;
export const DEFAULT_SQL_TIMEOUT_MS = 5000;
const MAX_SQL_NAME = 255;

export interface SqlOptions {
  connectionString: string;
  query: string;
  defaultScheme?: string;
  poolSize?: number;
  timeoutMs?: number;
  warn?: (msg: string, fields?: Record<string, unknown>) => void;
}

function num(v: unknown): number | null | undefined {
  if (v === undefined) return undefined;
  if (v === null) return null;
  const n = typeof v === 'string' ? Number(v) : typeof v === 'number' ? v : NaN;
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

export class SqlUserDb implements UserDb {
  readonly kind = 'sql';
  readonly scram = true;
  private readonly pool: pg.Pool;
  private readonly derived = new DerivedVerifiers();
  private readonly warn: (msg: string, fields?: Record<string, unknown>) => void;

  constructor(private readonly o: SqlOptions) {
    if (!o.query.includes('$1')) throw new Error('sql userdb: the query must use $1 for the user name');
    const timeout = o.timeoutMs ?? DEFAULT_SQL_TIMEOUT_MS;
    this.pool = new pg.Pool({
      connectionString: o.connectionString,
      max: o.poolSize ?? DEFAULT_SQL_POOL_SIZE,
      connectionTimeoutMillis: timeout,
      statement_timeout: timeout,
      query_timeout: timeout,
      idleTimeoutMillis: 60_000,
    });
    this.warn = o.warn ?? (() => {});
    // An idle client's error (server restart) must not crash the process; the pool replaces it.
    this.pool.on('error', (e) => this.warn('sql userdb: idle connection failed', { error: e.message }));
  }

  async find(name: string): Promise<UserEntry | null> {
    if (name.length === 0 || name.length > MAX_SQL_NAME) return null;
    const r = await this.pool.query(this.o.query, [name]);
    if (r.rows.length === 0) return null;
    if (r.rows.length > 1) {
      this.warn('sql userdb: the query returned several rows for one name; refusing', { user: name });
      return null;
    }
    const row = r.rows[0] as Record<string, unknown>;
    if (typeof row.password !== 'string') {
      this.warn('sql userdb: the query returned no text "password" column', { user: name });
      return null;
    }
    const account: Account = { name: typeof row.name === 'string' && row.name ? row.name : name };
    const storage = num(row.quota_storage);
    const messages = num(row.quota_messages);
    if (storage !== undefined || messages !== undefined) {
      account.quota = {};
      if (storage !== undefined) account.quota.storage = storage;
      if (messages !== undefined) account.quota.messages = messages;
    }
    const aliases = Array.isArray(row.aliases) ? row.aliases.map(String) : typeof row.aliases === 'string' ? row.aliases.split(',').map((a) => a.trim()) : [];
    if (aliases.filter(Boolean).length > 0) account.aliases = aliases.filter(Boolean);
    return storedPasswordEntry(account, row.password, {
      defaultScheme: this.o.defaultScheme ?? 'CRYPT',
      nologin: row.nologin === true,
      derived: this.derived,
      warn: this.warn,
      source: 'sql userdb',
    });
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
