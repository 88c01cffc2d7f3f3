// Password hashing with scrypt (RFC 7914), a memory-hard KDF built into Node.
//
// Encoding (PHC-like, self-describing so the cost can be raised later without
// invalidating stored hashes):
//
//   $scrypt$ln=15,r=8,p=1$<salt, base64 no padding>$<hash, base64 no padding>
//
// `ln` is log2(N). verifyPassword() reads every parameter from the encoding,
// bounded so that a tampered or hostile encoding cannot make us allocate
// gigabytes or spin for minutes.

import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { availableParallelism } from 'node:os';

/** log2(N): 2^15 iterations * r=8 → 32 MiB of memory per hash, ~50-100 ms on current hardware. */
export const SCRYPT_LOG_N = 15;
/** Block size; 8 is the value scrypt's authors recommend. */
export const SCRYPT_R = 8;
/** Parallelism; 1 keeps one hash on one core. */
export const SCRYPT_P = 1;
/** Random salt length in bytes (128 bits: no two users share a salt). */
export const SALT_BYTES = 16;
/** Derived key length in bytes. */
export const HASH_BYTES = 32;

/** Bounds accepted when reading an encoding (protect against hostile / corrupt values). */
const MIN_LOG_N = 10;
const MAX_LOG_N = 20;
const MAX_R = 32;
const MAX_P = 16;
const MIN_SALT_BYTES = 8;
const MAX_SALT_BYTES = 64;
const MIN_HASH_BYTES = 16;
const MAX_HASH_BYTES = 64;

interface ScryptParams {
  logN: number;
  r: number;
  p: number;
  salt: Buffer;
  hash: Buffer;
}

/**
 * Password hashes computed at once per process. Each takes ~32 MiB and a core
 * for tens of ms on libuv's pool: unbounded, a storm of 30 failed logins
 * starved the event loop (every session's) 200-400 ms on 2 cores. One fewer
 * than the cores keeps one for the event loop; the others wait their turn in
 * arrival order (logins are already delayed after failures).
 */
export const MAX_CONCURRENT_HASHES = Math.max(1, availableParallelism() - 1);
let hashing = 0;
const hashQueue: (() => void)[] = [];

async function hashTurn<T>(fn: () => Promise<T>): Promise<T> {
  if (hashing >= MAX_CONCURRENT_HASHES) await new Promise<void>((resolve) => hashQueue.push(resolve));
  else hashing++;
  try {
    return await fn();
  } finally {
    // The turn passes straight to the next waiter (the count stays), or is given back.
    const next = hashQueue.shift();
    if (next) next();
    else hashing--;
  }
}

function scrypt(password: Buffer, salt: Buffer, keylen: number, logN: number, r: number, p: number): Promise<Buffer> {
  const N = 2 ** logN;
  // scrypt needs about 128 * N * r bytes; maxmem must exceed it (Node's default is 32 MiB).
  const opts: ScryptOptions = { N, r, p, maxmem: 128 * N * r * 2 + 1024 * 1024 };
  return hashTurn(
    () =>
      new Promise((resolve, reject) => {
        scryptCb(password, salt, keylen, opts, (err, key) => (err ? reject(err) : resolve(key)));
      }),
  );
}

const B64_NOPAD = /^[A-Za-z0-9+/]+$/;

function decodeB64(s: string): Buffer | null {
  if (!B64_NOPAD.test(s) || s.length % 4 === 1) return null;
  const buf = Buffer.from(s, 'base64');
  // Reject non-canonical encodings (e.g. stray trailing bits).
  if (buf.toString('base64').replace(/=+$/, '') !== s) return null;
  return buf;
}

function encodeB64(b: Buffer): string {
  return b.toString('base64').replace(/=+$/, '');
}

/** Parses an encoded hash; null if it is not a well-formed scrypt encoding within bounds. */
function parseEncoding(encoded: string): ScryptParams | null {
  const parts = encoded.split('$');
  // ['', 'scrypt', 'ln=..,r=..,p=..', salt, hash]
  if (parts.length !== 5 || parts[0] !== '' || parts[1] !== 'scrypt') return null;
  const m = /^ln=(\d{1,2}),r=(\d{1,3}),p=(\d{1,3})$/.exec(parts[2]!);
  if (!m) return null;
  const logN = Number(m[1]);
  const r = Number(m[2]);
  const p = Number(m[3]);
  if (logN < MIN_LOG_N || logN > MAX_LOG_N || r < 1 || r > MAX_R || p < 1 || p > MAX_P) return null;
  const salt = decodeB64(parts[3]!);
  const hash = decodeB64(parts[4]!);
  if (!salt || salt.length < MIN_SALT_BYTES || salt.length > MAX_SALT_BYTES) return null;
  if (!hash || hash.length < MIN_HASH_BYTES || hash.length > MAX_HASH_BYTES) return null;
  return { logN, r, p, salt, hash };
}

/** Hashes a password with a fresh random salt and the current cost parameters. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const hash = await scrypt(Buffer.from(password, 'utf8'), salt, HASH_BYTES, SCRYPT_LOG_N, SCRYPT_R, SCRYPT_P);
  return `$scrypt$ln=${SCRYPT_LOG_N},r=${SCRYPT_R},p=${SCRYPT_P}$${encodeB64(salt)}$${encodeB64(hash)}`;
}

/**
 * True iff `password` matches `encoded`. A malformed encoding yields false
 * (after a dummy computation, so it costs about as much as a real check).
 */
export async function verifyPassword(password: string, encoded: string): Promise<boolean> {
  const params = parseEncoding(encoded);
  if (!params) {
    await verifyDummy(password);
    return false;
  }
  const actual = await scrypt(Buffer.from(password, 'utf8'), params.salt, params.hash.length, params.logN, params.r, params.p);
  return timingSafeEqual(actual, params.hash);
}

/** True if the encoding uses weaker parameters than the current ones (rehash on next successful login). */
export function needsRehash(encoded: string): boolean {
  const params = parseEncoding(encoded);
  if (!params) return true;
  return params.logN < SCRYPT_LOG_N || params.r < SCRYPT_R || params.hash.length < HASH_BYTES;
}

let dummySalt: Buffer | null = null;

/**
 * Spends the same work as verifying against a real hash and always resolves
 * false. Used for unknown users so response time does not reveal whether a
 * user name exists.
 */
export async function verifyDummy(password: string): Promise<false> {
  dummySalt ??= randomBytes(SALT_BYTES);
  const actual = await scrypt(Buffer.from(password, 'utf8'), dummySalt, HASH_BYTES, SCRYPT_LOG_N, SCRYPT_R, SCRYPT_P);
  // Compare anyway so the code path matches a real verification.
  timingSafeEqual(actual, Buffer.alloc(HASH_BYTES));
  return false;
}
