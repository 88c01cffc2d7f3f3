// OAUTHBEARER (RFC 7628) and XOAUTH2 (Google's and Microsoft's predecessor)
// as SASL state machines over a BearerValidator (oauth.ts).
//
// OAUTHBEARER client response (RFC 7628 §3.1):
//   gs2-header %x01 *( key "=" value %x01 ) %x01     e.g. "n,a=alice,\x01auth=Bearer T\x01\x01"
// On failure the server sends a JSON error challenge (§3.2.2) and the client
// must answer with a single %x01, after which the server fails (§3.2.3).
// XOAUTH2: "user=" name %x01 "auth=Bearer " token %x01 %x01; on failure a
// JSON challenge, an empty answer, then the failure.

import type { BearerValidator } from './authenticator.js';
import { MAX_SASL_RESPONSE_BYTES, type SaslMechanism, type SaslStep } from './sasl.js';

/** Longest bearer token accepted (a JWT with many claims is a few KiB). */
export const MAX_BEARER_TOKEN_BYTES = 6144;

const utf8 = new TextDecoder('utf-8', { fatal: true });

function decode(b: Buffer): string | null {
  try {
    return utf8.decode(b);
  } catch {
    return null;
  }
}

/** RFC 6750 §2.1 b64token, after "Bearer " (scheme case-insensitive, RFC 7235 §2.1). */
function bearerToken(auth: string): string | null {
  const m = /^bearer +([A-Za-z0-9\-._~+/]+=*)$/i.exec(auth);
  if (!m || m[1]!.length > MAX_BEARER_TOKEN_BYTES) return null;
  return m[1]!;
}

abstract class BearerMechanism implements SaslMechanism {
  abstract readonly name: string;
  protected state: 'start' | 'waiting' | 'errored' | 'finished' = 'start';
  private pending: { reason: string; authcid: string } | null = null;

  constructor(protected readonly validator: BearerValidator) {}

  protected abstract parse(msg: string): { user: string | null; token: string } | string;
  protected abstract errorChallenge(status: string): Buffer;
  protected abstract isErrorAck(resp: Buffer): boolean;

  async step(resp: Buffer | null): Promise<SaslStep> {
    if (this.state === 'finished') return this.fail('exchange already finished');
    if (this.state === 'errored') {
      this.state = 'finished';
      const f = this.pending!;
      const acked = resp !== null && this.isErrorAck(resp);
      return { type: 'fail', authcid: f.authcid, reason: acked ? f.reason : f.reason + ' (error challenge not acknowledged)' };
    }
    if (resp === null) {
      // Client-first: no initial response → empty challenge.
      if (this.state === 'waiting') return this.fail('missing response');
      this.state = 'waiting';
      return { type: 'challenge', data: Buffer.alloc(0) };
    }
    if (resp.length > MAX_SASL_RESPONSE_BYTES) return this.fail('response too long');
    const msg = decode(resp);
    if (msg === null) return this.fail('response is not UTF-8');
    const parsed = this.parse(msg);
    if (typeof parsed === 'string') return this.fail(parsed);
    const v = await this.validator.validate(parsed.token, parsed.user);
    if (!v.ok) {
      // RFC 7628 §3.2.2: the error goes out as a challenge; the client's %x01 ends the exchange.
      this.state = 'errored';
      this.pending = { reason: `token rejected: ${v.reason}`, authcid: parsed.user ?? '' };
      return { type: 'challenge', data: this.errorChallenge(v.status) };
    }
    this.state = 'finished';
    return { type: 'verified', authcid: v.user, authzid: '', method: 'token:' + v.issuer };
  }

  protected fail(reason: string): SaslStep {
    this.state = 'finished';
    return { type: 'fail', reason };
  }
}

export class OAuthBearerMechanism extends BearerMechanism {
  readonly name = 'OAUTHBEARER';

  protected parse(msg: string): { user: string | null; token: string } | string {
    // gs2-header: channel binding is not supported by OAUTHBEARER (RFC 7628 §3.1: "n" or "y" only).
    const c1 = msg.indexOf(',');
    const c2 = c1 < 0 ? -1 : msg.indexOf(',', c1 + 1);
    if (c1 < 0 || c2 < 0) return 'malformed gs2-header';
    const flag = msg.slice(0, c1);
    if (flag !== 'n' && flag !== 'y') return 'channel binding is not supported with OAUTHBEARER';
    const az = msg.slice(c1 + 1, c2);
    let user: string | null = null;
    if (az !== '') {
      if (!az.startsWith('a=')) return 'malformed authzid';
      user = az.slice(2).replaceAll('=2C', ',').replaceAll('=3D', '=');
    }
    const rest = msg.slice(c2 + 1);
    if (!rest.startsWith('\x01') || !rest.endsWith('\x01\x01')) return 'malformed OAUTHBEARER message';
    let token: string | null = null;
    for (const kv of rest.slice(1, -2).split('\x01')) {
      const eq = kv.indexOf('=');
      if (eq <= 0) return 'malformed key/value pair';
      if (kv.slice(0, eq) === 'auth') token = bearerToken(kv.slice(eq + 1));
    }
    if (token === null) return 'missing or malformed auth=Bearer';
    return { user, token };
  }

  protected errorChallenge(status: string): Buffer {
    const body: Record<string, string> = { status };
    if (this.validator.scope) body.scope = this.validator.scope;
    if (this.validator.configurationUrl) body['openid-configuration'] = this.validator.configurationUrl;
    return Buffer.from(JSON.stringify(body), 'utf8');
  }

  protected isErrorAck(resp: Buffer): boolean {
    return resp.length === 1 && resp[0] === 0x01;
  }
}

export class XOAuth2Mechanism extends BearerMechanism {
  readonly name = 'XOAUTH2';

  protected parse(msg: string): { user: string | null; token: string } | string {
    if (!msg.endsWith('\x01\x01')) return 'malformed XOAUTH2 message';
    let user: string | null = null;
    let token: string | null = null;
    for (const kv of msg.slice(0, -2).split('\x01')) {
      const eq = kv.indexOf('=');
      if (eq <= 0) return 'malformed key/value pair';
      const k = kv.slice(0, eq);
      if (k === 'user') user = kv.slice(eq + 1);
      else if (k === 'auth') token = bearerToken(kv.slice(eq + 1));
    }
    if (!user) return 'missing user';
    if (token === null) return 'missing or malformed auth=Bearer';
    return { user, token };
  }

  protected errorChallenge(status: string): Buffer {
    const body: Record<string, string> = { status: status === 'insufficient_scope' ? '403' : status === 'invalid_request' ? '400' : '401', schemes: 'bearer' };
    if (this.validator.scope) body.scope = this.validator.scope;
    return Buffer.from(JSON.stringify(body), 'utf8');
  }

  protected isErrorAck(resp: Buffer): boolean {
    return resp.length === 0;
  }
}
