// SASL mechanisms (RFC 4422) as small state machines, independent of IMAP
// syntax. The AUTHENTICATE command (RFC 9051 §6.2.2, SASL-IR RFC 4959) owns the
// continuation lines, "*" cancellation and "=" for an empty initial response;
// it base64-decodes with decodeSaslBase64() and feeds the bytes to step().
//
// Protocol shape:
//   - AUTHENTICATE PLAIN            → step(null)        → challenge "" (client sends its response)
//   - AUTHENTICATE PLAIN <b64>      → step(bytes)       → done | fail
//   - AUTHENTICATE PLAIN =          → step(empty bytes) → fail for PLAIN (an empty message has no NULs)
// A mechanism that has finished answers every further step with fail.

/** Longest client response a mechanism accepts (bytes), on top of the command layer's line limit. */
export const MAX_SASL_RESPONSE_BYTES = 8192;

export type SaslStep =
  | { type: 'challenge'; data: Buffer }
  /** Credentials to check; the mechanism itself never sees the user store. */
  | { type: 'done'; authcid: string; password: string; authzid: string }
  /**
   * The mechanism proved the identity itself (SCRAM proof, bearer token).
   * `method` names what was verified, for the log.
   */
  | { type: 'verified'; authcid: string; authzid: string; method: string }
  /** `authcid`, when known, is charged the failure delay like a wrong password. */
  | { type: 'fail'; reason: string; authcid?: string };

export interface SaslMechanism {
  /** Upper-case IANA name, as advertised in AUTH=<name>. */
  readonly name: string;
  /**
   * Feed the next client response: null when the client has sent nothing yet
   * (no initial response), otherwise the decoded bytes (possibly empty).
   */
  step(clientResponse: Buffer | null): SaslStep | Promise<SaslStep>;
}

/** Mechanisms that need nothing but a password check (see mechanisms.ts for the full registry). */
export const SASL_MECHANISMS: readonly string[] = ['PLAIN'];

/** A password mechanism instance for `name` (case-insensitive), or null. */
export function createMechanism(name: string): SaslMechanism | null {
  switch (name.toUpperCase()) {
    case 'PLAIN':
      return new PlainMechanism();
    default:
      return null;
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function decodeUtf8(b: Buffer): string | null {
  try {
    return utf8.decode(b);
  } catch {
    return null;
  }
}

/**
 * RFC 4616 PLAIN: message = [authzid] NUL authcid NUL passwd, all UTF-8.
 * An authzid other than authcid asks to act as another user: the
 * authenticator allows it only for master users (RFC 4616 §2 lets the
 * server refuse any other identity).
 */
export class PlainMechanism implements SaslMechanism {
  readonly name = 'PLAIN';
  private state: 'start' | 'waiting' | 'finished' = 'start';

  step(clientResponse: Buffer | null): SaslStep {
    if (this.state === 'finished') return this.fail('exchange already finished');
    if (clientResponse === null) {
      if (this.state === 'waiting') return this.fail('missing response');
      // RFC 4616 §2: the mechanism is client-first; with no initial response the server sends an empty challenge.
      this.state = 'waiting';
      return { type: 'challenge', data: Buffer.alloc(0) };
    }
    this.state = 'finished';
    return this.parse(clientResponse);
  }

  private fail(reason: string): SaslStep {
    this.state = 'finished';
    return { type: 'fail', reason };
  }

  private parse(msg: Buffer): SaslStep {
    if (msg.length > MAX_SASL_RESPONSE_BYTES) return this.fail('response too long');
    const first = msg.indexOf(0);
    const second = first < 0 ? -1 : msg.indexOf(0, first + 1);
    if (first < 0 || second < 0) return this.fail('malformed PLAIN message: expected authzid NUL authcid NUL passwd');
    if (msg.indexOf(0, second + 1) >= 0) return this.fail('malformed PLAIN message: too many NUL separators');
    const authzid = decodeUtf8(msg.subarray(0, first));
    const authcid = decodeUtf8(msg.subarray(first + 1, second));
    const password = decodeUtf8(msg.subarray(second + 1));
    if (authzid === null || authcid === null || password === null) return this.fail('PLAIN message is not valid UTF-8');
    // RFC 4616 §2: authcid and passwd are 1*SAFE.
    if (authcid.length === 0) return this.fail('empty authentication identity');
    if (password.length === 0) return this.fail('empty password');
    return { type: 'done', authcid, password, authzid };
  }
}

const STRICT_B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Strict base64 (RFC 4648 §4, with padding, no whitespace, canonical trailing
 * bits) as RFC 9051 §6.2.2 requires for SASL exchanges. An empty string is an
 * empty response. Returns null for anything else, including "=" and "*",
 * which the command layer handles before calling this.
 */
export function decodeSaslBase64(line: string): Buffer | null {
  if (!STRICT_B64.test(line)) return null;
  const buf = Buffer.from(line, 'base64');
  if (buf.toString('base64') !== line) return null;
  return buf;
}

/** Base64 for a server challenge ("" for an empty challenge; the command layer writes "+ " then this). */
export function encodeSaslBase64(data: Buffer): string {
  return data.toString('base64');
}
