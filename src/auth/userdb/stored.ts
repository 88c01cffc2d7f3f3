// A UserEntry over a stored "{SCHEME}value" password (passwd-file, SQL):
// verification by scheme, and the SCRAM verifier where the value can give one.

import { createHash } from 'node:crypto';
import { deriveScramCredentials, type ScramCredentials } from '../scram.js';
import { isCleartextScheme, scramFromScheme, UnsupportedScheme, verifyScheme } from './schemes.js';
import type { Account, UserEntry } from './types.js';

/** Most SCRAM verifiers derived from cleartext entries kept per database (least recently derived dropped). */
export const MAX_DERIVED_VERIFIERS = 10_000;

export class DerivedVerifiers {
  private readonly map = new Map<string, { stored: string; creds: ScramCredentials }>();

  async get(key: string, stored: string, clear: string): Promise<ScramCredentials> {
    const d = this.map.get(key);
    if (d && d.stored === stored) return d.creds;
    const creds = await deriveScramCredentials(clear);
    this.map.delete(key);
    this.map.set(key, { stored, creds });
    while (this.map.size > MAX_DERIVED_VERIFIERS) this.map.delete(this.map.keys().next().value as string);
    return creds;
  }

  clear(): void {
    this.map.clear();
  }
}

export function storedPasswordEntry(
  account: Account,
  stored: string,
  opts: { defaultScheme: string; nologin?: boolean; derived: DerivedVerifiers; warn: (msg: string, fields?: Record<string, unknown>) => void; source: string },
): UserEntry {
  return {
    account,
    fingerprint: createHash('sha256').update(stored).digest('base64'),
    async checkPassword(password: string): Promise<string | null> {
      if (opts.nologin) return null;
      try {
        return (await verifyScheme(stored, password, opts.defaultScheme)) ? '' : null;
      } catch (e) {
        if (e instanceof UnsupportedScheme) {
          opts.warn(`${opts.source}: cannot verify this password scheme`, { user: account.name, reason: e.message });
          return null;
        }
        throw e;
      }
    },
    async scram(): Promise<ScramCredentials | null> {
      if (opts.nologin) return null;
      const direct = scramFromScheme(stored, opts.defaultScheme);
      if (direct) return direct;
      const clear = isCleartextScheme(stored, opts.defaultScheme);
      return clear === null ? null : opts.derived.get(account.name.toLowerCase(), stored, clear);
    },
  };
}
