// Dovecot-compatible password schemes ("{SCHEME}encoded"), for passwd-file,
// LDAP userPassword and SQL user databases:
//   {SHA512-CRYPT} $6$ / {SHA256-CRYPT} $5$   SHA-crypt (Drepper, "Unix crypt
//                                             using SHA-256 and SHA-512", 2008)
//   {BLF-CRYPT} $2y$/$2b$/$2a$                bcrypt (bcryptjs, in worker threads: bcrypt-thread.ts)
//   {ARGON2ID} / {ARGON2I} $argon2id$...      Argon2 (RFC 9106; the `argon2` native module)
//   {SSHA512} {SSHA256} {SSHA}                base64(H(password + salt) + salt)
//   {SHA512} {SHA256} {SHA} ({SHA1})          base64(H(password))
//   {PLAIN} {CLEAR} {CLEARTEXT}               the password itself
//   {SCRAM-SHA-256}                           iterations,salt,StoredKey,ServerKey (usable for SCRAM too)
//   {CRYPT}                                   crypt(3): dispatched on the $id$ prefix ($6$, $5$, $2y$, $argon2...).
// Not supported (verification fails and the log says why): traditional DES
// crypt and MD5-crypt ($1$) — both are broken and Dovecot warns about them.

import { createHash, timingSafeEqual } from 'node:crypto';
import { createRequire } from 'node:module';
import { bcryptCompare } from './bcrypt-thread.js';
import { decodeScramCredentials, deriveScramCredentials, type ScramCredentials } from '../scram.js';

/** SHA-crypt bounds (the spec's): rounds 1000..999,999,999, default 5000; salt up to 16 characters. */
const SHACRYPT_DEFAULT_ROUNDS = 5000;
const SHACRYPT_MIN_ROUNDS = 1000;
/** Upper bound we accept from a stored hash: a hostile entry must not cost us minutes (the spec allows 999,999,999). */
export const SHACRYPT_MAX_ROUNDS = 1_000_000;
const SHACRYPT_SALT_MAX = 16;
/** bcrypt cost bound we accept (2^cost rounds). */
const BCRYPT_MAX_COST = 17;

const ITOA64 = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

// The byte order of the final encoding (spec, step 22).
const SHA512_ORDER = [
  [0, 21, 42], [22, 43, 1], [44, 2, 23], [3, 24, 45], [25, 46, 4], [47, 5, 26], [6, 27, 48], [28, 49, 7], [50, 8, 29], [9, 30, 51], [31, 52, 10],
  [53, 11, 32], [12, 33, 54], [34, 55, 13], [56, 14, 35], [15, 36, 57], [37, 58, 16], [59, 17, 38], [18, 39, 60], [40, 61, 19], [62, 20, 41],
];
const SHA256_ORDER = [[0, 10, 20], [21, 1, 11], [12, 22, 2], [3, 13, 23], [24, 4, 14], [15, 25, 5], [6, 16, 26], [27, 7, 17], [18, 28, 8], [9, 19, 29]];

function b64From24(b2: number, b1: number, b0: number, n: number): string {
  let w = (b2 << 16) | (b1 << 8) | b0;
  let out = '';
  for (let i = 0; i < n; i++) {
    out += ITOA64[w & 0x3f];
    w >>>= 6;
  }
  return out;
}

function repeatTo(src: Buffer, len: number): Buffer {
  const out = Buffer.alloc(len);
  for (let i = 0; i < len; i++) out[i] = src[i % src.length]!;
  return out;
}

/** Rounds of SHA-crypt computed between two yields to the event loop (about 2 ms of work). */
const SHACRYPT_ROUNDS_PER_SLICE = 1000;

/** SHA-crypt of `password` with the settings of `setting` ("$6$rounds=N$salt$..." or "$5$salt"); null if malformed. */
export function shaCrypt(password: string, setting: string): string | null {
  const it = shaCryptSteps(password, setting);
  for (;;) {
    const r = it.next();
    if (r.done) return r.value;
  }
}

/** The same, yielding to the event loop every SHACRYPT_ROUNDS_PER_SLICE rounds (a stored hash may ask for millions). */
export async function shaCryptAsync(password: string, setting: string): Promise<string | null> {
  const it = shaCryptSteps(password, setting);
  for (;;) {
    const r = it.next();
    if (r.done) return r.value;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

function* shaCryptSteps(password: string, setting: string): Generator<void, string | null> {
  const m = /^\$([56])\$(?:rounds=(\d+)\$)?([^$]*)/.exec(setting);
  if (!m) return null;
  const algo = m[1] === '6' ? 'sha512' : 'sha256';
  const hashLen = algo === 'sha512' ? 64 : 32;
  let rounds = SHACRYPT_DEFAULT_ROUNDS;
  if (m[2] !== undefined) {
    if (m[2].length > 10) return null;
    rounds = Math.max(SHACRYPT_MIN_ROUNDS, Number(m[2]));
    if (rounds > SHACRYPT_MAX_ROUNDS) return null;
  }
  const saltStr = m[3]!.slice(0, SHACRYPT_SALT_MAX);
  const pw = Buffer.from(password, 'utf8');
  const salt = Buffer.from(saltStr, 'utf8');
  const H = (...parts: Buffer[]) => {
    const h = createHash(algo);
    for (const p of parts) h.update(p);
    return h.digest();
  };
  // Steps 4-8: digest B.
  const B = H(pw, salt, pw);
  // Steps 1-3, 9-12: digest A.
  const a = createHash(algo).update(pw).update(salt);
  let n = pw.length;
  for (; n > hashLen; n -= hashLen) a.update(B);
  a.update(B.subarray(0, n));
  for (let len = pw.length; len > 0; len >>= 1) a.update(len & 1 ? B : pw);
  const A = a.digest();
  // Steps 13-16: P from DP.
  const dp = createHash(algo);
  for (let i = 0; i < pw.length; i++) dp.update(pw);
  const P = repeatTo(dp.digest(), pw.length);
  // Steps 17-20: S from DS.
  const ds = createHash(algo);
  for (let i = 0; i < 16 + A[0]!; i++) ds.update(salt);
  const S = repeatTo(ds.digest(), salt.length);
  // Step 21: the rounds.
  let C = A;
  for (let i = 0; i < rounds; i++) {
    const c = createHash(algo);
    c.update(i & 1 ? P : C);
    if (i % 3 !== 0) c.update(S);
    if (i % 7 !== 0) c.update(P);
    c.update(i & 1 ? C : P);
    C = c.digest();
    if (i % SHACRYPT_ROUNDS_PER_SLICE === SHACRYPT_ROUNDS_PER_SLICE - 1) yield;
  }
  // Step 22: the encoding.
  let enc = '';
  for (const [x, y, z] of algo === 'sha512' ? SHA512_ORDER : SHA256_ORDER) enc += b64From24(C[x!]!, C[y!]!, C[z!]!, 4);
  enc += algo === 'sha512' ? b64From24(0, 0, C[63]!, 2) : b64From24(0, C[31]!, C[30]!, 3);
  const roundsPart = m[2] !== undefined ? `rounds=${rounds}$` : '';
  return `$${m[1]}$${roundsPart}${saltStr}$${enc}`;
}

function safeEqual(a: string | Buffer, b: string | Buffer): boolean {
  const x = Buffer.isBuffer(a) ? a : Buffer.from(a, 'utf8');
  const y = Buffer.isBuffer(b) ? b : Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

const requireCjs = createRequire(import.meta.url);
let argon2: { verify(hash: string, pw: string): Promise<boolean> } | null | undefined;

function loadArgon2(): typeof argon2 {
  if (argon2 === undefined) {
    try {
      argon2 = requireCjs('argon2') as NonNullable<typeof argon2>;
    } catch {
      // A native module: a machine without its build cannot verify Argon2 hashes (docs/config.md says so).
      argon2 = null;
    }
  }
  return argon2;
}

/** Splits "{SCHEME}rest"; a value without a prefix has `fallback` as its scheme. */
export function splitScheme(stored: string, fallback: string): { scheme: string; value: string } {
  const m = /^\{([A-Za-z0-9.-]{1,32})\}/.exec(stored);
  if (!m) return { scheme: fallback.toUpperCase(), value: stored };
  return { scheme: m[1]!.toUpperCase(), value: stored.slice(m[0].length) };
}

export class UnsupportedScheme extends Error {}

function saltedDigest(algo: string, hashLen: number, value: string, password: string, salted: boolean): boolean {
  const raw = Buffer.from(value, 'base64');
  if (raw.length < hashLen || (!salted && raw.length !== hashLen)) return false;
  const digest = raw.subarray(0, hashLen);
  const salt = raw.subarray(hashLen);
  return safeEqual(createHash(algo).update(password, 'utf8').update(salt).digest(), digest);
}

/** crypt(3)-style values, by their $id$ prefix. */
async function verifyCrypt(value: string, password: string): Promise<boolean> {
  if (value.startsWith('$6$') || value.startsWith('$5$')) {
    const got = await shaCryptAsync(password, value);
    return got !== null && safeEqual(got, value);
  }
  const bc = /^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$/.exec(value);
  if (bc) {
    if (Number(bc[1]) > BCRYPT_MAX_COST) throw new UnsupportedScheme(`bcrypt cost ${bc[1]} above ${BCRYPT_MAX_COST}`);
    // bcryptjs knows $2a$/$2b$; $2y$ (PHP's and Dovecot's name) is the same algorithm.
    return bcryptCompare(password, value.replace(/^\$2y\$/, '$2b$'));
  }
  if (value.startsWith('$argon2')) {
    const a = loadArgon2();
    if (!a) throw new UnsupportedScheme('Argon2 needs the argon2 native module, which is not available');
    try {
      return await a.verify(value, password);
    } catch {
      return false;
    }
  }
  throw new UnsupportedScheme(value.startsWith('$1$') ? 'MD5-crypt is not supported' : 'DES crypt or an unknown crypt id is not supported');
}

/**
 * Checks `password` against a stored "{SCHEME}value". Rejects with
 * UnsupportedScheme for a scheme we do not implement (the caller logs it
 * and treats it as a failure).
 */
export async function verifyScheme(stored: string, password: string, defaultScheme = 'CRYPT'): Promise<boolean> {
  const { scheme, value } = splitScheme(stored, defaultScheme);
  switch (scheme) {
    case 'PLAIN':
    case 'CLEAR':
    case 'CLEARTEXT':
      return safeEqual(value, password);
    case 'SHA512-CRYPT':
    case 'SHA256-CRYPT':
    case 'BLF-CRYPT':
    case 'ARGON2ID':
    case 'ARGON2I':
    case 'CRYPT':
      return verifyCrypt(value, password);
    case 'SSHA512':
      return saltedDigest('sha512', 64, value, password, true);
    case 'SHA512':
      return saltedDigest('sha512', 64, value, password, false);
    case 'SSHA256':
      return saltedDigest('sha256', 32, value, password, true);
    case 'SHA256':
      return saltedDigest('sha256', 32, value, password, false);
    case 'SSHA':
      return saltedDigest('sha1', 20, value, password, true);
    case 'SHA':
    case 'SHA1':
      return saltedDigest('sha1', 20, value, password, false);
    case 'SCRAM-SHA-256': {
      const c = scramFromScheme(stored, defaultScheme);
      if (!c) return false;
      const d = await deriveScramCredentials(password, { salt: c.salt, iterations: c.iterations });
      return safeEqual(d.storedKey, c.storedKey);
    }
    default:
      throw new UnsupportedScheme(`password scheme {${scheme}} is not supported`);
  }
}

/**
 * The SCRAM-SHA-256 verifier a stored value can give: {SCRAM-SHA-256}
 * (Dovecot's "iterations,salt,StoredKey,ServerKey") directly; {PLAIN} by
 * deriving it (the caller caches it). Hashed schemes give none: SCRAM is
 * then impossible for that user.
 */
export function scramFromScheme(stored: string, defaultScheme = 'CRYPT'): ScramCredentials | null {
  const { scheme, value } = splitScheme(stored, defaultScheme);
  if (scheme !== 'SCRAM-SHA-256') return null;
  const p = value.split(',');
  if (p.length !== 4) return null;
  return decodeScramCredentials(`SCRAM-SHA-256$${p[0]}:${p[1]}$${p[2]}:${p[3]}`);
}

/** Whether the stored value is a cleartext password (SCRAM can derive a verifier from it). */
export function isCleartextScheme(stored: string, defaultScheme = 'CRYPT'): string | null {
  const { scheme, value } = splitScheme(stored, defaultScheme);
  return scheme === 'PLAIN' || scheme === 'CLEAR' || scheme === 'CLEARTEXT' ? value : null;
}
