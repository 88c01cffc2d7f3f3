// An LDAP user database (RFC 4511) over ldapts: the password is checked by
// binding as the user (RFC 4513 §5.1.3 simple bind), either at a DN built
// from a template ("bind" mode) or at the DN a search with a service account
// found ("search-then-bind" mode).
//
// - Connections are pooled: `poolSize` service connections (searches) and
//   `poolSize` connections for user binds, each reused and reconnected on
//   failure; at most poolSize operations of each kind run at once, the rest
//   queue (bounded by MAX_LDAP_QUEUE, beyond which a login fails as
//   unavailable rather than piling up).
// - TLS: ldaps:// URLs, or startTls on ldap:// ones; `ca` for a private CA.
//   Without either, the password crosses the network in clear: a warning is
//   logged at start unless the server is on loopback.
// - Every operation has a timeout (timeoutMs, connectTimeoutMs).
// - An empty password is refused before any bind: to an LDAP server it is an
//   "unauthenticated bind", which succeeds (RFC 4513 §5.1.2).
// - The user name is escaped for filters (RFC 4515 §3) and DNs (RFC 4514 §2.4).
//
// SCRAM is not offered: a bind verifies the password on the directory server
// and never gives us a verifier (StoredKey/ServerKey), which SCRAM needs
// before the client proves anything. The directory could store
// {SCRAM-SHA-256} userPassword values, but reading them would need a
// service account with read access to passwords; Quire does not do that.
//
// The verified-password cache fingerprint is the entry's DN and
// modifyTimestamp (search-then-bind): a password change in the directory
// changes modifyTimestamp, so the cache drops the old password at once. In
// bind mode there is no search, and a cached password stays valid for the
// cache TTL (auth.cacheMs).

import { Client, InvalidCredentialsError, type Entry } from 'ldapts';
import type { UserDb, UserEntry, Account } from './types.js';

export const DEFAULT_LDAP_POOL_SIZE = 4;
export const DEFAULT_LDAP_TIMEOUT_MS = 5000;
/** Operations waiting for a pooled connection beyond which a login fails (UNAVAILABLE) instead of queueing. */
export const MAX_LDAP_QUEUE = 1000;
/** Longest user name sent to the directory. */
const MAX_LDAP_NAME = 255;

export interface LdapOptions {
  /** ldap:// or ldaps:// URLs, tried in order. */
  urls: string[];
  /** "uid=%u,ou=people,dc=example,dc=org": bind mode. */
  dnTemplate?: string;
  /** Service account for search-then-bind (and for attribute lookups). */
  bindDn?: string;
  bindPassword?: string;
  baseDn?: string;
  /** Search filter; %u is the escaped user name. Default (&(objectClass=*)(uid=%u)). */
  filter?: string;
  scope?: 'sub' | 'one' | 'base';
  /** Attribute with the user's canonical name (default uid). */
  nameAttribute?: string;
  quotaStorageAttribute?: string;
  quotaMessagesAttribute?: string;
  aliasAttribute?: string;
  startTls?: boolean;
  /** PEM CA certificate(s). */
  ca?: string;
  /** Verify the server certificate (default true). */
  rejectUnauthorized?: boolean;
  timeoutMs?: number;
  connectTimeoutMs?: number;
  poolSize?: number;
  warn?: (msg: string, fields?: Record<string, unknown>) => void;
}

/** RFC 4515 §3: escape a value for a search filter. */
export function escapeFilter(v: string): string {
  return v.replace(/[\\*()\0]/g, (c) => '\\' + c.charCodeAt(0).toString(16).padStart(2, '0'));
}

/** RFC 4514 §2.4: escape an attribute value for a DN. */
export function escapeDn(v: string): string {
  let out = v.replace(/[\\,+"<>;=\0]/g, (c) => (c === '\0' ? '\\00' : '\\' + c));
  if (out.startsWith(' ') || out.startsWith('#')) out = '\\' + out;
  if (out.endsWith(' ') && !out.endsWith('\\ ')) out = out.slice(0, -1) + '\\ ';
  return out;
}

class Pool {
  private idle: Client[] = [];
  private busy = 0;
  private waiters: ((c: Client) => void)[] = [];

  constructor(
    private readonly make: () => Client,
    private readonly size: number,
  ) {}

  async use<T>(fn: (c: Client) => Promise<T>): Promise<T> {
    const c = await this.acquire();
    let broken = false;
    try {
      return await fn(c);
    } catch (e) {
      // A protocol-level refusal leaves the connection usable; anything else (timeout, reset) does not.
      broken = !(e instanceof InvalidCredentialsError);
      throw e;
    } finally {
      this.release(c, broken);
    }
  }

  private acquire(): Promise<Client> {
    const c = this.idle.pop();
    if (c) {
      this.busy++;
      return Promise.resolve(c);
    }
    if (this.busy < this.size) {
      this.busy++;
      return Promise.resolve(this.make());
    }
    if (this.waiters.length >= MAX_LDAP_QUEUE) return Promise.reject(new Error('LDAP pool queue is full'));
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private release(c: Client, broken: boolean): void {
    let next = c;
    if (broken) {
      void c.unbind().catch(() => {});
      next = this.make();
    }
    const w = this.waiters.shift();
    if (w) w(next);
    else {
      this.busy--;
      this.idle.push(next);
    }
  }

  async close(): Promise<void> {
    const all = this.idle;
    this.idle = [];
    await Promise.all(all.map((c) => c.unbind().catch(() => {})));
  }
}

function first(e: Entry, attr: string | undefined): string | null {
  if (!attr) return null;
  const key = Object.keys(e).find((k) => k.toLowerCase() === attr.toLowerCase());
  const v = key ? e[key] : undefined;
  const one = Array.isArray(v) ? v[0] : v;
  return one === undefined ? null : Buffer.isBuffer(one) ? one.toString('utf8') : String(one);
}

function all(e: Entry, attr: string | undefined): string[] {
  if (!attr) return [];
  const key = Object.keys(e).find((k) => k.toLowerCase() === attr.toLowerCase());
  const v = key ? e[key] : undefined;
  const list = v === undefined ? [] : Array.isArray(v) ? v : [v];
  return list.map((x) => (Buffer.isBuffer(x) ? x.toString('utf8') : String(x)));
}

export class LdapUserDb implements UserDb {
  readonly kind = 'ldap';
  readonly scram = false;
  private readonly search: Pool;
  private readonly auth: Pool;
  private urlIndex = 0;
  /** The host each client connects to (certificate name for StartTLS). */
  private readonly hosts = new WeakMap<Client, string>();
  private readonly warn: (msg: string, fields?: Record<string, unknown>) => void;

  constructor(private readonly o: LdapOptions) {
    if (o.urls.length === 0) throw new Error('ldap: at least one URL is needed');
    if (!o.dnTemplate && !(o.baseDn && o.bindDn !== undefined)) throw new Error('ldap: set dnTemplate (bind mode) or baseDn and bindDn (search-then-bind)');
    if (o.dnTemplate && !o.dnTemplate.includes('%u')) throw new Error('ldap: dnTemplate must contain %u');
    this.warn = o.warn ?? (() => {});
    const size = o.poolSize ?? DEFAULT_LDAP_POOL_SIZE;
    this.search = new Pool(() => this.client(), size);
    this.auth = new Pool(() => this.client(), size);
    for (const u of o.urls) {
      const url = new URL(u);
      const loopback = url.hostname === '127.0.0.1' || url.hostname === '[::1]' || url.hostname === 'localhost';
      if (url.protocol === 'ldap:' && !o.startTls && !loopback) this.warn('ldap: passwords will cross the network unencrypted (use ldaps:// or startTls)', { url: u });
    }
  }

  private client(): Client {
    // Round-robin over the URLs: a dead server costs one connect timeout, then the next is used.
    const url = this.o.urls[this.urlIndex++ % this.o.urls.length]!;
    const u = new URL(url);
    const base = { url, timeout: this.o.timeoutMs ?? DEFAULT_LDAP_TIMEOUT_MS, connectTimeout: this.o.connectTimeoutMs ?? DEFAULT_LDAP_TIMEOUT_MS, strictDN: false };
    // ldapts speaks TLS from the first byte whenever tlsOptions are given: only for ldaps:// URLs.
    const c = u.protocol !== 'ldaps:' ? new Client(base) : new Client({ ...base, tlsOptions: this.tlsOptions(u.hostname) });
    this.hosts.set(c, u.hostname);
    return c;
  }

  private tlsOptions(host: string): Record<string, unknown> {
    // RFC 6066 §3: no SNI for an IP address.
    const ip = /^[\d.]+$|^\[/.test(host);
    return { ...(this.o.ca ? { ca: this.o.ca } : {}), rejectUnauthorized: this.o.rejectUnauthorized ?? true, ...(ip ? {} : { servername: host }) };
  }

  private async bindAs(c: Client, dn: string, password: string): Promise<void> {
    // A fresh or dropped connection is (re)upgraded before anything is sent on it.
    if (this.o.startTls && !c.isConnected) {
      await c.startTLS(this.tlsOptions(this.hosts.get(c) ?? ''));
    }
    await c.bind(dn, password);
  }

  private async lookup(name: string): Promise<{ dn: string; entry: Entry } | null> {
    const filter = (this.o.filter ?? '(&(objectClass=*)(uid=%u))').replaceAll('%u', escapeFilter(name));
    const attrs = ['modifyTimestamp', this.o.nameAttribute ?? 'uid', this.o.quotaStorageAttribute, this.o.quotaMessagesAttribute, this.o.aliasAttribute].filter((a): a is string => !!a);
    return this.search.use(async (c) => {
      await this.bindAs(c, this.o.bindDn ?? '', this.o.bindPassword ?? '');
      // sizeLimit 2: we only need to know whether the name is unique.
      const r = await c.search(this.o.baseDn!, { scope: this.o.scope ?? 'sub', filter, attributes: attrs, sizeLimit: 2 }).catch((e: unknown) => {
        if (e instanceof Error && e.name === 'SizeLimitExceededError') return { searchEntries: [{ dn: '' }, { dn: '' }] as Entry[], searchReferences: [] };
        throw e;
      });
      if (r.searchEntries.length > 1) {
        this.warn('ldap: user name matches several entries; refusing', { user: name });
        return null;
      }
      const e = r.searchEntries[0];
      return e ? { dn: e.dn, entry: e } : null;
    });
  }

  async find(name: string): Promise<UserEntry | null> {
    if (name.length === 0 || name.length > MAX_LDAP_NAME) return null;
    let dn: string;
    let account: Account = { name };
    let fingerprint: string | null = null;
    if (this.o.dnTemplate && !this.o.baseDn) {
      dn = this.o.dnTemplate.replaceAll('%u', escapeDn(name));
    } else {
      const found = await this.lookup(name);
      if (!found) return null;
      dn = found.dn;
      const e = found.entry;
      account = { name: first(e, this.o.nameAttribute ?? 'uid') ?? name };
      const storage = first(e, this.o.quotaStorageAttribute);
      const messages = first(e, this.o.quotaMessagesAttribute);
      if (storage !== null || messages !== null) {
        account.quota = {};
        if (storage !== null && /^\d+$/.test(storage)) account.quota.storage = Number(storage);
        if (messages !== null && /^\d+$/.test(messages)) account.quota.messages = Number(messages);
      }
      const aliases = all(e, this.o.aliasAttribute);
      if (aliases.length > 0) account.aliases = aliases;
      const ts = first(e, 'modifyTimestamp');
      fingerprint = ts ? `${dn}\0${ts}` : null;
    }
    const auth = this.auth;
    const bindAs = (c: Client, d: string, p: string) => this.bindAs(c, d, p);
    return {
      account,
      fingerprint,
      async checkPassword(password: string): Promise<string | null> {
        // RFC 4513 §5.1.2: a simple bind with an empty password is an unauthenticated bind and "succeeds".
        if (password.length === 0) return null;
        try {
          await auth.use((c) => bindAs(c, dn, password));
          return '';
        } catch (e) {
          if (e instanceof InvalidCredentialsError) return null;
          throw e;
        }
      },
    };
  }

  async close(): Promise<void> {
    await Promise.all([this.search.close(), this.auth.close()]);
  }
}
