// Credential check shared by LOGIN and AUTHENTICATE, with a delay after
// failures that grows per remote address and per user name (STYLE.md habit 15:
// "delay after failed authentication").
//
// Design notes:
// - The delay is max(address counter, user counter): spraying many names from
//   one address and trying one name from many addresses are both slowed.
// - Unknown users cost a dummy scrypt computation so response time does not
//   reveal whether a name exists; failures for unknown names are counted like
//   any other.
// - Counters forget a key after FAILURE_WINDOW_MS without failures. A success
//   resets the user name's counter, and the address's counter only when that
//   address failed against no other name (a typo being corrected); otherwise a
//   known valid account could be used to wash away a spraying address's count.
// - Memory is bounded: at most MAX_TRACKED_KEYS counters, least recently
//   touched evicted first (a Map keeps insertion order; touching re-inserts).

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import { StoreError, type MailStore, type UserInfo } from '../store/types.js';
import { verifyDummy } from './password.js';
import { SCRAM_SALT_BYTES, type ScramCredentialSource, type ScramCredentials, type ScramHash } from './scram.js';
import type { Account, UserDb, UserEntry } from './userdb/types.js';
import { BuiltinUserDb } from './userdb/builtin.js';

/** First failure delay: long enough to make online guessing slow, short enough that a typo is no ordeal. */
export const DEFAULT_BASE_DELAY_MS = 1000;
/** Cap of the doubling delay: clients time out commands after roughly 30-60 s, stay well below. */
export const DEFAULT_MAX_DELAY_MS = 15_000;
/** A key's failures are forgotten after this long without a new failure. */
export const FAILURE_WINDOW_MS = 15 * 60_000;
/** Most counters held in memory (addresses + user names); about 100 bytes each. */
export const MAX_TRACKED_KEYS = 10_000;
/** User names longer than this are truncated for counting (the store rejects them anyway). */
const MAX_KEY_NAME_LENGTH = 256;

/** Structurally the server's Logger (src/server/options.ts), which auth may not import. */
export interface AuthLogger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** Validates OAuth 2.0 bearer tokens (oauth.ts); resolves the user name the token was issued for. */
export interface BearerValidator {
  validate(token: string, claimedUser: string | null): Promise<{ ok: true; user: string; issuer: string } | { ok: false; reason: string; status: 'invalid_token' | 'invalid_request' | 'insufficient_scope' }>;
  /** RFC 7628 §3.2.2 openid-configuration URL for the error challenge, when known. */
  readonly configurationUrl?: string;
  /** Scope advertised in the error challenge. */
  readonly scope?: string;
}

export interface AuthenticatorOptions {
  baseDelayMs?: number;
  maxDelayMs?: number;
  windowMs?: number;
  maxTrackedKeys?: number;
  /** Clock, for tests. */
  now?: () => number;
  /** Where accounts live (default: the store's own user table). */
  userdb?: UserDb;
  /** Auth events: every success and failure with user, mechanism, address and reason. */
  log?: AuthLogger;
  /** Accounts allowed to log in as any user (master users), by name, case-insensitive. */
  masterUsers?: readonly string[];
  /** Separator of "target*master" login names (Dovecot's auth_master_user_separator). */
  masterSeparator?: string;
  /** Failures of one user name within windowMs after which even the right password is refused until the window passes (0: off). */
  lockoutThreshold?: number;
  /** How long a verified password is remembered (ms; 0 disables the cache). */
  cacheMs?: number;
  /** Creates the local store user holding an external account's mail (first login). */
  provision?: (account: Account) => Promise<UserInfo>;
  /** OAUTHBEARER / XOAUTH2 token validation; the mechanisms are offered only when set. */
  bearer?: BearerValidator;
  /** SASL mechanisms an admin allows (upper-case names); default all that are usable. */
  mechanisms?: readonly string[];
}

/** Who logged in, how (for the session and the log). */
export interface LoginResult {
  /** The user whose mail the session opens (the target of a master login). */
  user: UserInfo;
  /** The identity whose secret was checked. */
  authcid: string;
  /** Set for a master-user login: the master's name. */
  master: string | null;
  /** '' for the account password, 'app:NAME' for an application password, 'scram', 'token:ISSUER'. */
  credential: string;
  mechanism: string;
  /** The password check was answered from the verified-password cache. */
  cached: boolean;
}

interface Counter {
  failures: number;
  last: number;
  /** Distinct user names that failed from this address in the window (address counters only, capped). */
  names?: Set<string>;
}

const MAX_NAMES_PER_ADDRESS = 8;

/**
 * Normalises a remote address to the unit we count by: IPv4-mapped IPv6 is
 * taken as IPv4, and an IPv6 address counts by its /64 (one host usually owns
 * a whole /64, so counting single addresses would be trivially evaded).
 */
export function addressKey(remoteAddress: string): string {
  let a = remoteAddress.trim().toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (mapped) a = mapped[1]!;
  if (isIPv4(a)) return a;
  const zone = a.indexOf('%');
  if (zone >= 0) a = a.slice(0, zone);
  if (isIPv6(a)) {
    const groups = expandIPv6(a);
    if (groups) return groups.slice(0, 4).join(':') + '::/64';
  }
  return a;
}

function expandIPv6(a: string): string[] | null {
  const halves = a.split('::');
  if (halves.length > 2) return null;
  const toGroups = (s: string): string[] | null => {
    if (s === '') return [];
    const out: string[] = [];
    for (const g of s.split(':')) {
      if (g.includes('.')) {
        // Embedded IPv4 in the last 32 bits.
        const o = g.split('.').map(Number);
        if (o.length !== 4) return null;
        out.push(((o[0]! << 8) | o[1]!).toString(16), ((o[2]! << 8) | o[3]!).toString(16));
      } else out.push(parseInt(g || '0', 16).toString(16));
    }
    return out;
  };
  const head = toGroups(halves[0]!);
  const tail = halves.length === 2 ? toGroups(halves[1]!) : [];
  if (!head || !tail) return null;
  const fill = halves.length === 2 ? 8 - head.length - tail.length : 0;
  if (fill < 0) return null;
  const groups = [...head, ...Array<string>(fill).fill('0'), ...tail];
  return groups.length === 8 ? groups : null;
}

function nameKey(name: string): string {
  // Case-insensitive so that "Alice" and "alice" share a counter (the store looks names up case-insensitively).
  return name.slice(0, MAX_KEY_NAME_LENGTH).toLowerCase();
}

/**
 * The verified-password cache: after a successful password check, the
 * account's key (user database + name) maps to an HMAC of the password under
 * a per-process random key (never the password), the entry's fingerprint
 * (the stored hash it was checked against) and the time. A later login with
 * the same password within VERIFIED_CACHE_MS skips the memory-hard hash (phones
 * reconnect constantly). Every login still reads the user's entry from the
 * database, so a changed password, a revoked application password or a
 * deleted user (on any worker, or through the CLI) changes or removes the
 * fingerprint and the entry is not used: nothing needs broadcasting between
 * workers. Databases that cannot give a fingerprint (LDAP bind) are cached
 * for the TTL only: a password changed in the directory stops the old one at
 * the latest VERIFIED_CACHE_MS later.
 */
export const VERIFIED_CACHE_MS = 10 * 60_000;
/** Most remembered logins (least recently used dropped). */
export const VERIFIED_CACHE_SIZE = 10_000;
/** Default separator of master-user logins ("alice*admin"). */
export const DEFAULT_MASTER_SEPARATOR = '*';

interface Verified {
  fingerprint: string | null;
  /** HMAC of the password under a per-process key (the password itself is never kept). */
  mac: Buffer;
  credential: string;
  at: number;
}

export class Authenticator implements ScramCredentialSource {
  private readonly verified = new Map<string, Verified>();
  private readonly macKey = randomBytes(32);
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly windowMs: number;
  private readonly maxKeys: number;
  private readonly now: () => number;
  private readonly counters = new Map<string, Counter>();
  readonly userdb: UserDb;
  private readonly log: AuthLogger | null;
  private readonly masters: Set<string>;
  private readonly masterSeparator: string;
  private readonly lockoutThreshold: number;
  private readonly cacheMs: number;
  private readonly provision: ((account: Account) => Promise<UserInfo>) | null;
  readonly bearer: BearerValidator | null;
  private readonly enabled: Set<string> | null;

  constructor(
    private readonly store: MailStore,
    opts: AuthenticatorOptions = {},
  ) {
    this.baseDelayMs = opts.baseDelayMs ?? DEFAULT_BASE_DELAY_MS;
    this.maxDelayMs = Math.max(opts.maxDelayMs ?? DEFAULT_MAX_DELAY_MS, this.baseDelayMs);
    this.windowMs = opts.windowMs ?? FAILURE_WINDOW_MS;
    this.maxKeys = opts.maxTrackedKeys ?? MAX_TRACKED_KEYS;
    this.now = opts.now ?? Date.now;
    this.userdb = opts.userdb ?? new BuiltinUserDb(store);
    this.log = opts.log ?? null;
    this.masters = new Set((opts.masterUsers ?? []).map((n) => n.toLowerCase()));
    this.masterSeparator = opts.masterSeparator ?? DEFAULT_MASTER_SEPARATOR;
    this.lockoutThreshold = opts.lockoutThreshold ?? 0;
    this.cacheMs = opts.cacheMs ?? VERIFIED_CACHE_MS;
    this.provision = opts.provision ?? null;
    this.bearer = opts.bearer ?? null;
    this.enabled = opts.mechanisms ? new Set(opts.mechanisms.map((m) => m.toUpperCase())) : null;
  }

  /** Whether the admin allows mechanism `name` (mechanisms.ts asks before offering it). */
  mechanismEnabled(name: string): boolean {
    return this.enabled === null || this.enabled.has(name);
  }

  /** Whether SCRAM can be offered (the user database holds verifiers). */
  get offersScram(): boolean {
    return this.userdb.scram;
  }

  /**
   * Checks a user name and password (LOGIN, SASL PLAIN without authzid).
   * Resolves the user on success; on failure resolves null only after the
   * back-off delay.
   */
  async verify(name: string, password: string, remoteAddress: string): Promise<UserInfo | null> {
    return (await this.passwordLogin(name, '', password, remoteAddress, 'LOGIN'))?.user ?? null;
  }

  /**
   * A password login. `authzid` (SASL PLAIN) or a "target*master" name asks
   * for a master login; null after the failure delay.
   */
  async passwordLogin(name: string, authzid: string, password: string, remoteAddress: string, mechanism: string): Promise<LoginResult | null> {
    let authcid = name;
    let target = authzid;
    const sep = this.masters.size > 0 ? name.lastIndexOf(this.masterSeparator) : -1;
    if (sep > 0 && authzid === '') {
      // Dovecot's "user*master": the master's own password opens the user's mailbox.
      target = name.slice(0, sep);
      authcid = name.slice(sep + this.masterSeparator.length);
    }
    // A database failure rejects (the caller answers NO [UNAVAILABLE]); it is neither a success nor a counted failure.
    const plausible = authcid.length > 0 && authcid.length <= MAX_KEY_NAME_LENGTH && !authcid.includes('\0');
    if (plausible && this.lockedOut(authcid)) {
      await verifyDummy(password);
      return this.fail(authcid, remoteAddress, mechanism, 'account locked out after repeated failures');
    }
    const entry = plausible ? await this.findEntry(authcid) : null;
    let credential: string | null = null;
    let cached = false;
    if (entry) {
      const hit = this.recentlyVerified(authcid, entry, password);
      if (hit !== null) {
        credential = hit;
        cached = true;
      } else credential = await this.check(entry, authcid, password);
    } else await verifyDummy(password);
    if (!entry || credential === null) return this.fail(authcid, remoteAddress, mechanism, entry ? 'wrong password' : 'unknown user');
    if (!cached) {
      this.remember(authcid, entry, password, credential);
      await entry.afterPasswordLogin?.(password, credential).catch((e: unknown) =>
        this.log?.warn('auth: post-login credential update failed', { user: authcid, error: String(e) }),
      );
    }
    return this.complete(entry, authcid, target, remoteAddress, mechanism, credential, cached);
  }

  /**
   * A login whose proof the mechanism checked itself (SCRAM, bearer tokens):
   * applies authorization (master users), resets counters, logs.
   */
  async verifiedLogin(authcid: string, authzid: string, remoteAddress: string, mechanism: string, credential: string): Promise<LoginResult | null> {
    if (this.lockedOut(authcid)) return this.fail(authcid, remoteAddress, mechanism, 'account locked out after repeated failures');
    const entry = await this.findEntry(authcid);
    if (!entry) return this.fail(authcid, remoteAddress, mechanism, 'unknown user');
    return this.complete(entry, authcid, authzid, remoteAddress, mechanism, credential, false);
  }

  /** A failed exchange (bad proof, malformed message): logged, counted, answered after the delay. Resolves null. */
  async fail(authcid: string, remoteAddress: string, mechanism: string, reason: string): Promise<null> {
    const delay = this.recordFailure('a:' + addressKey(remoteAddress), 'u:' + nameKey(authcid));
    this.log?.info('credentials refused', { user: authcid.slice(0, MAX_KEY_NAME_LENGTH), mechanism, remote: remoteAddress, reason, delayMs: delay });
    if (delay > 0) await new Promise<void>((resolve) => setTimeout(resolve, delay));
    return null;
  }

  private async complete(
    entry: UserEntry,
    authcid: string,
    authzid: string,
    remoteAddress: string,
    mechanism: string,
    credential: string,
    cached: boolean,
  ): Promise<LoginResult | null> {
    let account = entry.account;
    let master: string | null = null;
    if (authzid !== '' && authzid.toLowerCase() !== authcid.toLowerCase() && authzid.toLowerCase() !== account.name.toLowerCase()) {
      // RFC 4422 §3.4.1: the authorization identity is checked against policy: only master users may act as others.
      if (!this.masters.has(authcid.toLowerCase()) && !this.masters.has(account.name.toLowerCase())) {
        return this.fail(authcid, remoteAddress, mechanism, `not allowed to log in as ${authzid.slice(0, MAX_KEY_NAME_LENGTH)}`);
      }
      const target = await this.findEntry(authzid);
      if (!target) return this.fail(authcid, remoteAddress, mechanism, `master login: no such user ${authzid.slice(0, MAX_KEY_NAME_LENGTH)}`);
      master = account.name;
      account = target.account;
    }
    const user = await this.localUser(account);
    if (!user) return this.fail(authcid, remoteAddress, mechanism, 'no local mailbox store for the account');
    this.counters.delete('u:' + nameKey(authcid));
    const addr = 'a:' + addressKey(remoteAddress);
    const uname = 'u:' + nameKey(authcid);
    const ac = this.get(addr);
    // A success from an address that failed only against this user is a typo being corrected.
    if (ac && (!ac.names || (ac.names.size <= 1 && ac.names.has(uname)))) this.counters.delete(addr);
    const fields: Record<string, unknown> = { user: user.name, mechanism, remote: remoteAddress, userdb: this.userdb.kind, cached };
    if (master) fields.master = master;
    if (credential.startsWith('app:')) fields.appPassword = credential.slice(4);
    else if (credential !== '') fields.credential = credential;
    // Distinct from the session's `auth succeeded` / `auth failed` records (src/obs/session.ts), which fail2ban counts once per attempt.
    this.log?.info(master ? 'credentials verified (master user)' : 'credentials verified', fields);
    return { user, authcid, master, credential, mechanism, cached };
  }

  /** A user database lookup; an unreachable database is UNAVAILABLE (NO [UNAVAILABLE], RFC 5530), never a counted failure. */
  private async findEntry(name: string): Promise<UserEntry | null> {
    try {
      return await this.userdb.find(name);
    } catch (e) {
      this.log?.warn('auth: user database unavailable', { userdb: this.userdb.kind, user: name.slice(0, MAX_KEY_NAME_LENGTH), error: e instanceof Error ? e.message : String(e) });
      throw new StoreError('UNAVAILABLE', `user database (${this.userdb.kind}) unavailable`);
    }
  }

  private async check(entry: UserEntry, name: string, password: string): Promise<string | null> {
    try {
      return await entry.checkPassword(password);
    } catch (e) {
      this.log?.warn('auth: user database unavailable', { userdb: this.userdb.kind, user: name.slice(0, MAX_KEY_NAME_LENGTH), error: e instanceof Error ? e.message : String(e) });
      throw new StoreError('UNAVAILABLE', `user database (${this.userdb.kind}) unavailable`);
    }
  }

  /**
   * The local user of an account the user database knows, created if needed
   * (LMTP delivery to an external account that has not logged in yet); null
   * for an unknown name. No password is involved and nothing is counted.
   */
  async localUserFor(name: string): Promise<UserInfo | null> {
    if (name.length === 0 || name.length > MAX_KEY_NAME_LENGTH) return null;
    const entry = await this.findEntry(name);
    return entry ? this.localUser(entry.account) : null;
  }

  /** The local store user for an account (created on first login for external databases; quota and aliases applied). */
  private async localUser(account: Account): Promise<UserInfo | null> {
    let user = await this.store.getUser(account.name);
    if (!user) {
      if (!this.provision) return null;
      user = await this.provision(account);
    }
    if (account.quota) {
      const q = await this.store.getQuota(user.id);
      const want = account.quota;
      if ((want.storage !== undefined && want.storage !== q.storageLimit) || (want.messages !== undefined && want.messages !== q.messageLimit)) {
        await this.store.setQuota(user.id, want);
      }
    }
    if (account.aliases && account.aliases.length > 0) {
      const have = new Set((await this.store.listAddresses(user.id)).map((a) => a.address.toLowerCase()));
      for (const a of account.aliases) {
        if (have.has(a.toLowerCase())) continue;
        await this.store.addAddress(user.id, a).catch((e: unknown) => this.log?.warn('auth: alias from user database not added', { user: user!.name, alias: a, error: String(e) }));
      }
    }
    return user;
  }

  // ---- SCRAM (ScramCredentialSource)

  async scramCredentials(authcid: string, hash: ScramHash): Promise<ScramCredentials | null> {
    if (hash !== 'sha256' || !this.userdb.scram || authcid.length > MAX_KEY_NAME_LENGTH) return null;
    const entry = await this.findEntry(authcid);
    return (await entry?.scram?.()) ?? null;
  }

  mockSalt(authcid: string): Buffer {
    return createHmac('sha256', this.macKey).update('scram-mock-salt\0' + nameKey(authcid)).digest().subarray(0, SCRAM_SALT_BYTES);
  }

  // ---- the verified-password cache

  private cacheKey(name: string): string {
    return this.userdb.kind + '\0' + nameKey(name);
  }

  private mac(password: string): Buffer {
    return createHmac('sha256', this.macKey).update(password, 'utf8').digest();
  }

  /** The credential that matched when this exact password was verified against the entry's current secret a short while ago. */
  private recentlyVerified(name: string, entry: UserEntry, password: string): string | null {
    if (this.cacheMs <= 0) return null;
    const v = this.verified.get(this.cacheKey(name));
    if (!v || v.fingerprint !== entry.fingerprint || this.now() - v.at > this.cacheMs) return null;
    return timingSafeEqual(v.mac, this.mac(password)) ? v.credential : null;
  }

  private remember(name: string, entry: UserEntry, password: string, credential: string): void {
    if (this.cacheMs <= 0) return;
    const key = this.cacheKey(name);
    this.verified.delete(key);
    this.verified.set(key, { fingerprint: entry.fingerprint, mac: this.mac(password), credential, at: this.now() });
    while (this.verified.size > VERIFIED_CACHE_SIZE) this.verified.delete(this.verified.keys().next().value as string);
  }

  /** Forgets cached verifications (all, or one name's): `quire user passwd/del` in this process, tests. */
  forget(name?: string): void {
    if (name === undefined) this.verified.clear();
    else this.verified.delete(this.cacheKey(name));
  }

  private lockedOut(name: string): boolean {
    if (this.lockoutThreshold <= 0) return false;
    return (this.get('u:' + nameKey(name))?.failures ?? 0) >= this.lockoutThreshold;
  }

  /** The delay the next failure from `remoteAddress` for `name` would get (for tests and logging). */
  pendingDelayMs(name: string, remoteAddress: string): number {
    const a = this.get('a:' + addressKey(remoteAddress))?.failures ?? 0;
    const u = this.get('u:' + nameKey(name))?.failures ?? 0;
    return this.delayFor(Math.max(a, u) + 1);
  }

  /** Number of counters held (for tests of the memory bound). */
  get trackedKeys(): number {
    return this.counters.size;
  }

  private delayFor(failures: number): number {
    if (failures <= 0) return 0;
    // base * 2^(n-1), capped; the exponent is capped first so it cannot overflow.
    return Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** Math.min(failures - 1, 30));
  }

  private get(key: string): Counter | undefined {
    const c = this.counters.get(key);
    if (c && this.now() - c.last > this.windowMs) {
      this.counters.delete(key);
      return undefined;
    }
    return c;
  }

  private bump(key: string, now: number): Counter {
    const c = this.get(key) ?? { failures: 0, last: now };
    c.failures++;
    c.last = now;
    // Re-insert: the Map's order is least-recently-touched first.
    this.counters.delete(key);
    this.counters.set(key, c);
    while (this.counters.size > this.maxKeys) {
      const oldest = this.counters.keys().next().value as string;
      this.counters.delete(oldest);
    }
    return c;
  }

  private recordFailure(addr: string, uname: string): number {
    const now = this.now();
    const a = this.bump(addr, now);
    if (!a.names) a.names = new Set();
    if (a.names.size < MAX_NAMES_PER_ADDRESS) a.names.add(uname);
    const u = this.bump(uname, now);
    return this.delayFor(Math.max(a.failures, u.failures));
  }
}
