// OAuth 2.0 bearer token validation for OAUTHBEARER / XOAUTH2 (oauth-mech.ts):
// JWT access tokens (RFC 7519, JWS RFC 7515, JWK RFC 7517, the access-token
// profile RFC 9068) checked against configured issuers, or opaque tokens
// checked by token introspection (RFC 7662).
//
// JWT checks, in order: the header's alg is on the issuer's allow-list (never
// "none" nor an HMAC: the keys are public); iss names a configured issuer;
// the key (by kid, else the only key of a matching type) is in the issuer's
// JWKS; the signature verifies (node:crypto); aud contains the configured
// audience; exp is in the future and nbf/iat not in the future, each with a
// small clock skew. The user name is a configured claim (default "email",
// then "preferred_username", then "sub").
//
// JWKS come from a file (re-read when its mtime changes) or an http(s) URL,
// cached for `refreshMs` and re-fetched early (at most once per
// JWKS_MIN_REFETCH_MS) when a token names an unknown kid, so a key rotation at
// the provider is picked up without a restart.

import { createHash, createPublicKey, verify as cryptoVerify, constants, type KeyObject, type JsonWebKey } from 'node:crypto';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { BearerValidator } from './authenticator.js';

/** Largest JWKS or introspection reply read (bytes). */
export const MAX_OAUTH_DOCUMENT_BYTES = 256 * 1024;
/** Time allowed for a JWKS or introspection request. */
export const OAUTH_HTTP_TIMEOUT_MS = 5000;
/** Default JWKS cache lifetime. */
export const DEFAULT_JWKS_REFRESH_MS = 10 * 60_000;
/** An unknown kid triggers a re-fetch at most this often (a flood of forged kids must not flood the provider). */
export const JWKS_MIN_REFETCH_MS = 30_000;
/** Default clock skew allowed on exp / nbf / iat (seconds). */
export const DEFAULT_CLOCK_SKEW_S = 60;
/** Introspection results are remembered this long at most (and never past the token's exp). */
export const INTROSPECTION_CACHE_MS = 60_000;
/** Most introspection results remembered. */
export const INTROSPECTION_CACHE_SIZE = 10_000;
/** Signature algorithms we can verify (RFC 7518 §3.1, RFC 8037); HMAC and "none" are never accepted. */
export const SUPPORTED_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;
const DEFAULT_ALGORITHMS = ['RS256', 'ES256'];
const MAX_TOKEN_PART = 16 * 1024;

export interface IssuerConfig {
  /** The "iss" value, exactly. */
  issuer: string;
  /** Required "aud" value(s): the token must name at least one. */
  audience: string | string[];
  /** JWKS location: a file path or an http(s) URL. */
  jwks: string;
  /** Allowed "alg" values (default RS256, ES256). */
  algorithms?: string[];
  /** Claim holding the user name (default: email, preferred_username, sub, first present). */
  userClaim?: string;
  /** Allowed clock skew in seconds (default 60). */
  clockSkewSeconds?: number;
  /** JWKS cache lifetime (ms). */
  refreshMs?: number;
  /** PEM CA certificate(s) for an https JWKS URL with a private CA. */
  ca?: string;
}

export interface IntrospectionConfig {
  /** RFC 7662 endpoint. */
  url: string;
  clientId: string;
  clientSecret: string;
  /** Field of the reply holding the user name (default "username", then "sub"). */
  userField?: string;
  /** Required audience in the reply's "aud", when set. */
  audience?: string;
  ca?: string;
}

export interface OAuthConfig {
  issuers?: IssuerConfig[];
  introspection?: IntrospectionConfig;
  /** Sent in the RFC 7628 §3.2.2 error challenge. */
  scope?: string;
  configurationUrl?: string;
}

type Result = Awaited<ReturnType<BearerValidator['validate']>>;
const reject = (reason: string, status: 'invalid_token' | 'invalid_request' | 'insufficient_scope' = 'invalid_token'): Result => ({ ok: false, reason, status });

/** GET/POST with a timeout and a size cap; resolves the body, rejects on HTTP errors. */
function request(url: string, opts: { method?: string; headers?: Record<string, string>; body?: string; ca?: string } = {}): Promise<string> {
  return new Promise((resolve, rejectP) => {
    const u = new URL(url);
    const lib = u.protocol === 'https:' ? https : u.protocol === 'http:' ? http : null;
    if (!lib) return rejectP(new Error(`unsupported URL scheme ${u.protocol}`));
    const req = lib.request(u, { method: opts.method ?? 'GET', headers: opts.headers, timeout: OAUTH_HTTP_TIMEOUT_MS, ...(opts.ca ? { ca: opts.ca } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_OAUTH_DOCUMENT_BYTES) {
          req.destroy(new Error('reply too large'));
          return;
        }
        chunks.push(c);
      });
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        if ((res.statusCode ?? 0) >= 300) rejectP(new Error(`HTTP ${res.statusCode} from ${u.origin}`));
        else resolve(body);
      });
      res.on('error', rejectP);
    });
    req.on('timeout', () => req.destroy(new Error(`timeout after ${OAUTH_HTTP_TIMEOUT_MS} ms`)));
    req.on('error', rejectP);
    req.end(opts.body);
  });
}

interface Key {
  kid: string | undefined;
  kty: string;
  alg: string | undefined;
  key: KeyObject;
}

class Jwks {
  private keys: Key[] = [];
  private fetchedAt = 0;
  private lastAttempt = 0;
  private mtime = 0;
  private loading: Promise<void> | null = null;

  constructor(
    private readonly source: string,
    private readonly refreshMs: number,
    private readonly ca: string | undefined,
    private readonly now: () => number,
  ) {}

  private get isUrl(): boolean {
    return /^https?:\/\//i.test(this.source);
  }

  private async load(): Promise<void> {
    this.lastAttempt = this.now();
    let text: string;
    if (this.isUrl) text = await request(this.source, { ca: this.ca });
    else {
      const st = await fs.stat(this.source);
      if (st.mtimeMs === this.mtime && this.keys.length > 0) {
        this.fetchedAt = this.now();
        return;
      }
      if (st.size > MAX_OAUTH_DOCUMENT_BYTES) throw new Error('JWKS file too large');
      text = await fs.readFile(this.source, 'utf8');
      this.mtime = st.mtimeMs;
    }
    const doc = JSON.parse(text) as { keys?: unknown };
    if (!Array.isArray(doc.keys)) throw new Error('JWKS has no "keys" array');
    const keys: Key[] = [];
    for (const k of doc.keys as (JsonWebKey & { kid?: string; use?: string; alg?: string })[]) {
      if (typeof k !== 'object' || k === null || (k.use !== undefined && k.use !== 'sig')) continue;
      if (k.kty !== 'RSA' && k.kty !== 'EC' && k.kty !== 'OKP') continue;
      try {
        keys.push({ kid: k.kid, kty: k.kty, alg: k.alg, key: createPublicKey({ key: k, format: 'jwk' }) });
      } catch {
        /* a key we cannot use: skip it, keep the others */
      }
    }
    this.keys = keys;
    this.fetchedAt = this.now();
  }

  private refresh(): Promise<void> {
    this.loading ??= this.load().finally(() => {
      this.loading = null;
    });
    return this.loading;
  }

  async find(kid: string | undefined, kty: string): Promise<Key | null> {
    if (this.now() - this.fetchedAt > this.refreshMs) await this.refresh();
    let k = this.pick(kid, kty);
    if (!k && this.now() - this.lastAttempt > JWKS_MIN_REFETCH_MS) {
      // A key rotation: the provider may publish a new kid before we refresh.
      await this.refresh();
      k = this.pick(kid, kty);
    }
    return k;
  }

  private pick(kid: string | undefined, kty: string): Key | null {
    if (kid !== undefined) return this.keys.find((k) => k.kid === kid && k.kty === kty) ?? null;
    const same = this.keys.filter((k) => k.kty === kty);
    return same.length === 1 ? same[0]! : null;
  }
}

function b64urlJson(part: string): Record<string, unknown> | null {
  if (part.length > MAX_TOKEN_PART || !/^[A-Za-z0-9_-]*$/.test(part)) return null;
  try {
    const v = JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** node:crypto verify parameters per JWS alg (RFC 7518 §3). */
function algParams(alg: string): { hash: string | null; kty: string; pss?: boolean; ec?: boolean } | null {
  const m = /^(RS|PS|ES)(256|384|512)$/.exec(alg);
  if (m) return { hash: 'sha' + m[2], kty: m[1] === 'ES' ? 'EC' : 'RSA', pss: m[1] === 'PS', ec: m[1] === 'ES' };
  if (alg === 'EdDSA') return { hash: null, kty: 'OKP' };
  return null;
}

function userFrom(claims: Record<string, unknown>, names: string[]): string | null {
  for (const n of names) {
    const v = claims[n];
    if (typeof v === 'string' && v.length > 0 && v.length <= 255) return v;
  }
  return null;
}

export class OAuthValidator implements BearerValidator {
  private readonly issuers: { cfg: IssuerConfig; jwks: Jwks; algorithms: Set<string> }[];
  private readonly introspection: IntrospectionConfig | null;
  private readonly introspected = new Map<string, { result: Result; until: number }>();
  readonly scope?: string;
  readonly configurationUrl?: string;

  constructor(
    cfg: OAuthConfig,
    private readonly now: () => number = Date.now,
  ) {
    this.issuers = (cfg.issuers ?? []).map((i) => {
      const algorithms = new Set(i.algorithms ?? DEFAULT_ALGORITHMS);
      for (const a of algorithms) {
        if (!(SUPPORTED_ALGORITHMS as readonly string[]).includes(a)) throw new Error(`oauth issuer ${i.issuer}: algorithm ${a} is not supported (allowed: ${SUPPORTED_ALGORITHMS.join(', ')})`);
      }
      return { cfg: i, jwks: new Jwks(i.jwks, i.refreshMs ?? DEFAULT_JWKS_REFRESH_MS, i.ca, now), algorithms };
    });
    this.introspection = cfg.introspection ?? null;
    if (cfg.scope !== undefined) this.scope = cfg.scope;
    if (cfg.configurationUrl !== undefined) this.configurationUrl = cfg.configurationUrl;
  }

  async validate(token: string, claimedUser: string | null): Promise<Result> {
    const parts = token.split('.');
    let r: Result;
    if (parts.length === 3 && this.issuers.length > 0) r = await this.validateJwt(parts as [string, string, string]);
    else if (this.introspection) r = await this.introspect(token);
    else r = reject('not a JWT and no introspection endpoint configured');
    // The client-supplied name (XOAUTH2 user=, OAUTHBEARER a=) must be the token's user.
    if (r.ok && claimedUser !== null && claimedUser !== '' && claimedUser.toLowerCase() !== r.user.toLowerCase()) {
      return reject(`token was issued for another user than ${claimedUser.slice(0, 64)}`);
    }
    return r;
  }

  private async validateJwt([h, p, s]: [string, string, string]): Promise<Result> {
    const header = b64urlJson(h);
    const claims = b64urlJson(p);
    if (!header || !claims || !/^[A-Za-z0-9_-]+$/.test(s)) return reject('malformed JWT');
    const alg = typeof header.alg === 'string' ? header.alg : '';
    const iss = typeof claims.iss === 'string' ? claims.iss : '';
    const issuer = this.issuers.find((i) => i.cfg.issuer === iss);
    if (!issuer) return reject('unknown issuer');
    if (!issuer.algorithms.has(alg)) return reject(`algorithm ${alg.slice(0, 16) || 'none'} not allowed`);
    const params = algParams(alg)!;
    if (header.crit !== undefined) return reject('unsupported critical header');
    const kid = typeof header.kid === 'string' ? header.kid : undefined;
    let key: Key | null;
    try {
      key = await issuer.jwks.find(kid, params.kty);
    } catch (e) {
      return reject(`JWKS unavailable: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (!key) return reject('no matching key in the JWKS');
    if (key.alg !== undefined && key.alg !== alg) return reject('key is for another algorithm');
    const data = Buffer.from(`${h}.${p}`, 'ascii');
    const sig = Buffer.from(s, 'base64url');
    let good = false;
    try {
      if (params.pss) good = cryptoVerify(params.hash, data, { key: key.key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }, sig);
      else if (params.ec) good = cryptoVerify(params.hash, data, { key: key.key, dsaEncoding: 'ieee-p1363' }, sig);
      else good = cryptoVerify(params.hash, data, key.key, sig);
    } catch {
      good = false;
    }
    if (!good) return reject('bad signature');
    const skew = issuer.cfg.clockSkewSeconds ?? DEFAULT_CLOCK_SKEW_S;
    const nowS = this.now() / 1000;
    if (typeof claims.exp !== 'number') return reject('token has no exp');
    if (claims.exp + skew < nowS) return reject('token expired');
    if (typeof claims.nbf === 'number' && claims.nbf - skew > nowS) return reject('token not yet valid');
    if (typeof claims.iat === 'number' && claims.iat - skew > nowS) return reject('token issued in the future');
    const want = Array.isArray(issuer.cfg.audience) ? issuer.cfg.audience : [issuer.cfg.audience];
    const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (!aud.some((a) => typeof a === 'string' && want.includes(a))) return reject('token is for another audience');
    const user = userFrom(claims, issuer.cfg.userClaim ? [issuer.cfg.userClaim] : ['email', 'preferred_username', 'sub']);
    if (!user) return reject('token names no user');
    return { ok: true, user, issuer: iss };
  }

  private async introspect(token: string): Promise<Result> {
    const cfg = this.introspection!;
    const key = createHash('sha256').update(token).digest('base64');
    const hit = this.introspected.get(key);
    if (hit && hit.until > this.now()) return hit.result;
    let reply: Record<string, unknown>;
    try {
      const body = new URLSearchParams({ token, token_type_hint: 'access_token' }).toString();
      const auth = Buffer.from(`${encodeURIComponent(cfg.clientId)}:${encodeURIComponent(cfg.clientSecret)}`).toString('base64');
      const text = await request(cfg.url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', authorization: `Basic ${auth}` },
        body,
        ca: cfg.ca,
      });
      reply = JSON.parse(text) as Record<string, unknown>;
    } catch (e) {
      // Not cached: the endpoint being down says nothing about the token.
      return reject(`introspection failed: ${e instanceof Error ? e.message : String(e)}`);
    }
    let result: Result;
    const nowS = this.now() / 1000;
    // RFC 7662 §2.2: "active" is the only required member.
    if (reply.active !== true) result = reject('token is not active');
    else if (typeof reply.exp === 'number' && reply.exp < nowS) result = reject('token expired');
    else if (cfg.audience && !(Array.isArray(reply.aud) ? reply.aud : [reply.aud]).includes(cfg.audience)) result = reject('token is for another audience');
    else {
      const user = userFrom(reply, cfg.userField ? [cfg.userField] : ['username', 'sub']);
      result = user ? { ok: true, user, issuer: typeof reply.iss === 'string' ? reply.iss : new URL(cfg.url).origin } : reject('introspection names no user');
    }
    let until = this.now() + INTROSPECTION_CACHE_MS;
    if (typeof reply.exp === 'number') until = Math.min(until, reply.exp * 1000);
    this.introspected.delete(key);
    this.introspected.set(key, { result, until });
    while (this.introspected.size > INTROSPECTION_CACHE_SIZE) this.introspected.delete(this.introspected.keys().next().value as string);
    return result;
  }
}
