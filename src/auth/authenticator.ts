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
import type { MailStore, UserInfo } from '../store/types.js';
import { verifyDummy, verifyPassword } from './password.js';

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

export interface AuthenticatorOptions {
  baseDelayMs?: number;
  maxDelayMs?: number;
  windowMs?: number;
  maxTrackedKeys?: number;
  /** Clock, for tests. */
  now?: () => number;
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
 * How long a successful login is remembered, so a client that reconnects
 * (phones do, constantly) is not charged a memory-hard hash every time.
 */
export const VERIFIED_CACHE_MS = 10 * 60_000;
/** Most remembered logins (least recently used dropped). */
export const VERIFIED_CACHE_SIZE = 10_000;

interface Verified {
  /** The stored hash the password was checked against: a password change invalidates the entry. */
  storedHash: string;
  /** HMAC of the password under a per-process key (the password itself is never kept). */
  mac: Buffer;
  at: number;
}

export class Authenticator {
  private readonly verified = new Map<number, Verified>();
  private readonly macKey = randomBytes(32);
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly windowMs: number;
  private readonly maxKeys: number;
  private readonly now: () => number;
  private readonly counters = new Map<string, Counter>();

  constructor(
    private readonly store: MailStore,
    opts: AuthenticatorOptions = {},
  ) {
    this.baseDelayMs = opts.baseDelayMs ?? DEFAULT_BASE_DELAY_MS;
    this.maxDelayMs = Math.max(opts.maxDelayMs ?? DEFAULT_MAX_DELAY_MS, this.baseDelayMs);
    this.windowMs = opts.windowMs ?? FAILURE_WINDOW_MS;
    this.maxKeys = opts.maxTrackedKeys ?? MAX_TRACKED_KEYS;
    this.now = opts.now ?? Date.now;
  }

  /**
   * Checks a user name and password. Resolves the user on success; on failure
   * resolves null only after the back-off delay.
   */
  async verify(name: string, password: string, remoteAddress: string): Promise<UserInfo | null> {
    // A store failure rejects (the caller answers NO [UNAVAILABLE]); it is neither a success nor a counted failure.
    const plausible = name.length > 0 && name.length <= MAX_KEY_NAME_LENGTH && !name.includes('\0');
    const user = plausible ? await this.store.getUser(name) : null;
    const ok = user
      ? this.recentlyVerified(user, password) || (await verifyPassword(password, user.passwordHash))
      : await verifyDummy(password);
    const addr = 'a:' + addressKey(remoteAddress);
    const uname = 'u:' + nameKey(name);
    if (ok && user) {
      this.remember(user, password);
      this.counters.delete(uname);
      const ac = this.get(addr);
      // A success from an address that failed only against this user is a typo being corrected.
      if (ac && (!ac.names || (ac.names.size <= 1 && ac.names.has(uname)))) this.counters.delete(addr);
      return user;
    }
    const delay = this.recordFailure(addr, uname);
    if (delay > 0) await new Promise<void>((resolve) => setTimeout(resolve, delay));
    return null;
  }

  private mac(password: string): Buffer {
    return createHmac('sha256', this.macKey).update(password, 'utf8').digest();
  }

  /** True when this exact password was verified against the user's current hash a short while ago. */
  private recentlyVerified(user: UserInfo, password: string): boolean {
    const v = this.verified.get(user.id);
    if (!v || v.storedHash !== user.passwordHash || this.now() - v.at > VERIFIED_CACHE_MS) return false;
    return timingSafeEqual(v.mac, this.mac(password));
  }

  private remember(user: UserInfo, password: string): void {
    const prev = this.verified.get(user.id);
    const at = prev && prev.storedHash === user.passwordHash && this.now() - prev.at <= VERIFIED_CACHE_MS ? prev.at : this.now();
    this.verified.delete(user.id);
    this.verified.set(user.id, { storedHash: user.passwordHash, mac: this.mac(password), at });
    while (this.verified.size > VERIFIED_CACHE_SIZE) this.verified.delete(this.verified.keys().next().value as number);
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
