// SCRAM-SHA-256 and SCRAM-SHA-256-PLUS, server side (RFC 5802, RFC 7677),
// with channel binding (RFC 5929 tls-server-end-point / tls-unique, RFC 9266
// tls-exporter) and SASLprep (RFC 4013 via @mongodb-js/saslprep).
//
// Exchange (RFC 5802 §3, §5):
//   C: gs2-header client-first-message-bare     n,,n=user,r=cnonce
//   S: server-first-message                     r=cnonce+snonce,s=salt,i=4096
//   C: client-final-message                     c=biws,r=cnonce+snonce,p=proof
//   S: server-final-message                     v=signature
// IMAP and POP3 cannot carry "additional data with success" (RFC 9051
// §6.2.2, RFC 5034 §4), so the server-final message goes out as a last
// challenge and the client answers it with an empty response.
//
// The server keeps only StoredKey = H(ClientKey) and ServerKey per user
// (RFC 5802 §5.1 and §9): a stolen database does not give the password, nor
// the ability to log in with SCRAM.

import { createHash, createHmac, pbkdf2 as pbkdf2Cb, randomBytes, timingSafeEqual } from 'node:crypto';
import saslprep from '@mongodb-js/saslprep';
import type { ConnectionFacts } from './facts.js';
import { MAX_SASL_RESPONSE_BYTES, type SaslMechanism, type SaslStep } from './sasl.js';

/** RFC 7677 §4: at least 4096 iterations; every client login pays them (clients cache SaltedPassword rarely). */
export const SCRAM_ITERATIONS = 4096;
/** Bounds on a stored or configured iteration count (a corrupt value must not stall a client or us). */
export const SCRAM_MIN_ITERATIONS = 4096;
export const SCRAM_MAX_ITERATIONS = 1_000_000;
/** Salt length in bytes. */
export const SCRAM_SALT_BYTES = 16;
/** Server nonce: 18 random bytes, 24 base64 characters. */
const SERVER_NONCE_BYTES = 18;
/** Longest client nonce we accept (RFC 5802 does not bound it; 256 printable characters is ample). */
const MAX_CLIENT_NONCE = 256;

/** What the server stores per user and hash (RFC 5802 §5.1). */
export interface ScramCredentials {
  salt: Buffer;
  iterations: number;
  storedKey: Buffer;
  serverKey: Buffer;
}

export type ScramHash = 'sha256';

const HASH_BYTES: Record<ScramHash, number> = { sha256: 32 };

/** RFC 5802 §2.2 Normalize(): SASLprep; a string it refuses (unassigned code points) is used as is. */
export function scramNormalize(s: string): string {
  try {
    return saslprep(s);
  } catch {
    return s;
  }
}

function pbkdf2(password: Buffer, salt: Buffer, iterations: number, hash: ScramHash): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    pbkdf2Cb(password, salt, iterations, HASH_BYTES[hash], hash, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

const hmac = (hash: ScramHash, key: Buffer, data: string | Buffer) => createHmac(hash, key).update(data).digest();
const h = (hash: ScramHash, data: Buffer) => createHash(hash).update(data).digest();

/** Derives the stored verifier from a password (RFC 5802 §3). */
export async function deriveScramCredentials(
  password: string,
  opts: { hash?: ScramHash; salt?: Buffer; iterations?: number } = {},
): Promise<ScramCredentials> {
  const hash = opts.hash ?? 'sha256';
  const salt = opts.salt ?? randomBytes(SCRAM_SALT_BYTES);
  const iterations = opts.iterations ?? SCRAM_ITERATIONS;
  const salted = await pbkdf2(Buffer.from(scramNormalize(password), 'utf8'), salt, iterations, hash);
  const clientKey = hmac(hash, salted, 'Client Key');
  return { salt, iterations, storedKey: h(hash, clientKey), serverKey: hmac(hash, salted, 'Server Key') };
}

/**
 * Text form kept in the store: `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`
 * (base64), the layout PostgreSQL and Dovecot's doveadm also print.
 */
export function encodeScramCredentials(c: ScramCredentials, mech = 'SCRAM-SHA-256'): string {
  return `${mech}$${c.iterations}:${c.salt.toString('base64')}$${c.storedKey.toString('base64')}:${c.serverKey.toString('base64')}`;
}

const ENCODED = /^(SCRAM-SHA-256)\$(\d{1,7}):([A-Za-z0-9+/=]{4,128})\$([A-Za-z0-9+/=]{4,128}):([A-Za-z0-9+/=]{4,128})$/;

/** Parses encodeScramCredentials() output; null when malformed or out of bounds. */
export function decodeScramCredentials(s: string): ScramCredentials | null {
  const m = ENCODED.exec(s);
  if (!m) return null;
  const iterations = Number(m[2]);
  if (iterations < SCRAM_MIN_ITERATIONS || iterations > SCRAM_MAX_ITERATIONS) return null;
  const salt = Buffer.from(m[3]!, 'base64');
  const storedKey = Buffer.from(m[4]!, 'base64');
  const serverKey = Buffer.from(m[5]!, 'base64');
  if (storedKey.length !== 32 || serverKey.length !== 32 || salt.length < 8) return null;
  return { salt, iterations, storedKey, serverKey };
}

/** Where a SCRAM exchange gets a user's verifier from (the authenticator, over the user database). */
export interface ScramCredentialSource {
  /** null: unknown user, or a user for whom the database holds no verifier. */
  scramCredentials(authcid: string, hash: ScramHash): Promise<ScramCredentials | null>;
  /**
   * A stable fake verifier for unknown users, so the server-first message
   * does not reveal whether a name exists (RFC 5802 §9 "mock" salt).
   */
  mockSalt(authcid: string): Buffer;
}

/** RFC 5802 §7 saslname: "=2C" is ",", "=3D" is "="; any other "=" is an error. */
function decodeSaslname(s: string): string | null {
  if (s.length === 0) return null;
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '=') {
      const e = s.slice(i + 1, i + 3);
      if (e === '2C') out += ',';
      else if (e === '3D') out += '=';
      else return null;
      i += 2;
    } else if (c === ',') return null;
    else out += c;
  }
  return out;
}

/** RFC 5802 §7 printable: %x21-2B / %x2D-7E (no comma). */
function isPrintableNonce(s: string): boolean {
  if (s.length === 0 || s.length > MAX_CLIENT_NONCE) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x21 || c > 0x7e || c === 0x2c) return false;
  }
  return true;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

interface FirstState {
  gs2Header: string;
  cbName: string | null;
  authcid: string;
  authzid: string;
  clientFirstBare: string;
  serverFirst: string;
  nonce: string;
  creds: ScramCredentials | null;
}

/**
 * One SCRAM exchange. `plus` selects the -PLUS variant (channel binding
 * required). `plusOffered` says whether -PLUS was advertised on this
 * connection: a client that could bind but believes we cannot ("y" flag)
 * is then the victim of a downgrade and fails (RFC 5802 §6).
 */
export class ScramMechanism implements SaslMechanism {
  readonly name: string;
  private state: 'start' | 'first' | 'final' | 'finished' = 'start';
  private first: FirstState | null = null;
  private result: SaslStep | null = null;

  constructor(
    private readonly source: ScramCredentialSource,
    private readonly facts: ConnectionFacts,
    private readonly plus: boolean,
    private readonly plusOffered: boolean,
    private readonly hash: ScramHash = 'sha256',
    private readonly nonceSource: () => string = () => randomBytes(SERVER_NONCE_BYTES).toString('base64'),
  ) {
    this.name = plus ? 'SCRAM-SHA-256-PLUS' : 'SCRAM-SHA-256';
  }

  async step(resp: Buffer | null): Promise<SaslStep> {
    switch (this.state) {
      case 'start':
        if (resp === null) {
          // RFC 5802 §5: client-first; no initial response → empty challenge.
          this.state = 'first';
          return { type: 'challenge', data: Buffer.alloc(0) };
        }
        this.state = 'first';
        return this.clientFirst(resp);
      case 'first':
        if (this.first === null) {
          if (resp === null) return this.fail('missing client-first-message');
          return this.clientFirst(resp);
        }
        if (resp === null) return this.fail('missing client-final-message');
        return this.clientFinal(resp);
      case 'final':
        // The client acknowledges server-final with an empty response.
        this.state = 'finished';
        if (resp === null || resp.length !== 0) return this.fail('expected an empty response after server-final-message');
        return this.result!;
      default:
        return this.fail('exchange already finished');
    }
  }

  private fail(reason: string, authcid?: string): SaslStep {
    this.state = 'finished';
    return authcid !== undefined ? { type: 'fail', reason, authcid } : { type: 'fail', reason };
  }

  private async clientFirst(resp: Buffer): Promise<SaslStep> {
    if (resp.length > MAX_SASL_RESPONSE_BYTES) return this.fail('response too long');
    let msg: string;
    try {
      msg = utf8.decode(resp);
    } catch {
      return this.fail('client-first-message is not UTF-8');
    }
    // gs2-header = gs2-cbind-flag "," [ authzid ] ","  (RFC 5802 §7)
    const c1 = msg.indexOf(',');
    const c2 = c1 < 0 ? -1 : msg.indexOf(',', c1 + 1);
    if (c1 < 0 || c2 < 0) return this.fail('malformed gs2-header');
    const flag = msg.slice(0, c1);
    const authzField = msg.slice(c1 + 1, c2);
    const bare = msg.slice(c2 + 1);
    let cbName: string | null = null;
    if (flag === 'n') {
      if (this.plus) return this.fail('SCRAM-SHA-256-PLUS requires channel binding');
    } else if (flag === 'y') {
      if (this.plus) return this.fail('SCRAM-SHA-256-PLUS requires channel binding');
      // RFC 5802 §6: the client can bind but thinks we cannot; we offered -PLUS, so someone removed it.
      if (this.plusOffered) return this.fail('channel binding downgrade detected (gs2 flag "y" while -PLUS was offered)');
    } else if (flag.startsWith('p=')) {
      cbName = flag.slice(2);
      // RFC 5802 §7 has the client name the -PLUS mechanism with "p=". Cyrus libsasl 2.1.28 (imtest,
      // its other users) sends AUTHENTICATE SCRAM-SHA-256 with "p=" all the same; we still verify the
      // binding, which protects at least as much as -PLUS would, so we accept it rather than fail.
      if (!/^[A-Za-z0-9.-]{1,64}$/.test(cbName)) return this.fail('malformed channel binding name');
      const cb = this.facts.channelBinding;
      if (!cb || !cb.types.includes(cbName)) return this.fail(`channel binding ${cbName} is not available on this connection`);
    } else return this.fail('malformed gs2-cbind-flag');
    let authzid = '';
    if (authzField !== '') {
      if (!authzField.startsWith('a=')) return this.fail('malformed authzid');
      const a = decodeSaslname(authzField.slice(2));
      if (a === null) return this.fail('malformed authzid');
      authzid = a;
    }
    // client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
    const parts = bare.split(',');
    if (parts[0]?.startsWith('m=')) return this.fail('mandatory extension not supported');
    if (parts.length < 2 || !parts[0]!.startsWith('n=') || !parts[1]!.startsWith('r=')) return this.fail('malformed client-first-message-bare');
    const rawUser = decodeSaslname(parts[0]!.slice(2));
    if (rawUser === null) return this.fail('malformed username');
    let authcid: string;
    try {
      authcid = saslprep(rawUser);
    } catch {
      return this.fail('user name refused by SASLprep', rawUser);
    }
    const cnonce = parts[1]!.slice(2);
    if (!isPrintableNonce(cnonce)) return this.fail('malformed client nonce', authcid);
    const creds = await this.source.scramCredentials(authcid, this.hash);
    const salt = creds?.salt ?? this.source.mockSalt(authcid);
    const iterations = creds?.iterations ?? SCRAM_ITERATIONS;
    const nonce = cnonce + this.nonceSource();
    const serverFirst = `r=${nonce},s=${salt.toString('base64')},i=${iterations}`;
    this.first = { gs2Header: msg.slice(0, c2 + 1), cbName, authcid, authzid, clientFirstBare: bare, serverFirst, nonce, creds };
    return { type: 'challenge', data: Buffer.from(serverFirst, 'utf8') };
  }

  private clientFinal(resp: Buffer): SaslStep {
    const f = this.first!;
    if (resp.length > MAX_SASL_RESPONSE_BYTES) return this.fail('response too long', f.authcid);
    const msg = resp.toString('latin1');
    // client-final-message = channel-binding "," nonce ["," extensions] "," proof
    const pIdx = msg.lastIndexOf(',p=');
    if (pIdx < 0) return this.fail('malformed client-final-message', f.authcid);
    const withoutProof = msg.slice(0, pIdx);
    const fields = withoutProof.split(',');
    if (fields.length < 2 || !fields[0]!.startsWith('c=') || !fields[1]!.startsWith('r=')) {
      return this.fail('malformed client-final-message', f.authcid);
    }
    const cbGot = Buffer.from(fields[0]!.slice(2), 'base64');
    let cbData: Buffer = Buffer.alloc(0);
    if (f.cbName !== null) {
      const d = this.facts.channelBinding?.data(f.cbName) ?? null;
      if (!d) return this.fail(`channel binding ${f.cbName} data unavailable`, f.authcid);
      cbData = d;
    }
    const cbWant = Buffer.concat([Buffer.from(f.gs2Header, 'utf8'), cbData]);
    if (cbGot.length !== cbWant.length || !timingSafeEqual(cbGot, cbWant)) return this.fail('channel binding mismatch', f.authcid);
    if (fields[1]!.slice(2) !== f.nonce) return this.fail('nonce mismatch', f.authcid);
    const proof = Buffer.from(msg.slice(pIdx + 3), 'base64');
    if (!f.creds) return this.fail('unknown user or no SCRAM verifier', f.authcid);
    const { storedKey, serverKey } = f.creds;
    if (proof.length !== storedKey.length) return this.fail('malformed proof', f.authcid);
    const authMessage = `${f.clientFirstBare},${f.serverFirst},${withoutProof}`;
    const clientSignature = hmac(this.hash, storedKey, authMessage);
    const clientKey = Buffer.alloc(proof.length);
    for (let i = 0; i < proof.length; i++) clientKey[i] = proof[i]! ^ clientSignature[i]!;
    if (!timingSafeEqual(h(this.hash, clientKey), storedKey)) return this.fail('invalid proof', f.authcid);
    const serverSignature = hmac(this.hash, serverKey, authMessage);
    this.state = 'final';
    this.result = { type: 'verified', authcid: f.authcid, authzid: f.authzid, method: this.name };
    return { type: 'challenge', data: Buffer.from(`v=${serverSignature.toString('base64')}`, 'utf8') };
  }
}
