// The SASL exchange of AUTH (RFC 5034 §4) over src/auth's mechanisms, used
// generically: whatever createMechanism() offers and SASL_MECHANISMS lists
// is advertised and run here, so a mechanism added in src/auth reaches POP3
// without POP3 changes. The POP3 framing lives here: "+ " base64 challenges,
// "*" to cancel, "=" for an empty initial response, strict base64.

import { createMechanism, decodeSaslBase64, SASL_MECHANISMS, type SaslMechanism } from '../auth/sasl.js';
import { POP3_MAX_SASL_ROUNDS } from './limits.js';

export function saslMechanisms(): readonly string[] {
  return SASL_MECHANISMS;
}

export type SaslOutcome =
  | { type: 'password'; authcid: string; password: string }
  /** The mechanism proved the identity itself (e.g. SCRAM). */
  | { type: 'verified'; authcid: string }
  | { type: 'fail'; text: string; authcid?: string }
  | { type: 'cancelled' }
  | { type: 'bad'; text: string };

export interface SaslIo {
  /** Sends "+ <base64>" and reads the client's next line (null when the connection closed). */
  challenge(data: Buffer): Promise<Buffer | null>;
}

/** Parses the optional initial response of AUTH: "=" is empty, otherwise strict base64. */
export function initialResponse(arg: string | undefined): Buffer | null | 'invalid' {
  if (arg === undefined) return null;
  if (arg === '=') return Buffer.alloc(0);
  return decodeSaslBase64(arg) ?? 'invalid';
}

export function startMechanism(name: string): SaslMechanism | null {
  return SASL_MECHANISMS.includes(name.toUpperCase()) ? createMechanism(name) : null;
}

/** Runs a mechanism to its end. RFC 5034 §4: with no initial response the server sends an empty challenge first. */
export async function runSasl(m: SaslMechanism, initial: Buffer | null, io: SaslIo): Promise<SaslOutcome> {
  let response: Buffer | null = initial;
  for (let round = 0; round < POP3_MAX_SASL_ROUNDS; round++) {
    // A mechanism's step may be synchronous or not: await covers both.
    const step = (await m.step(response)) as { type: string; data?: Buffer; authcid?: string; password?: string; reason?: string };
    response = null;
    switch (step.type) {
      case 'challenge': {
        const line = await io.challenge(step.data ?? Buffer.alloc(0));
        if (line === null) return { type: 'cancelled' };
        const text = line.toString('latin1');
        // RFC 5034 §4: "*" cancels the exchange; the server answers -ERR.
        if (text === '*') return { type: 'cancelled' };
        response = text === '' ? Buffer.alloc(0) : decodeSaslBase64(text);
        if (!response) return { type: 'bad', text: 'Invalid base64 in SASL response' };
        continue;
      }
      case 'done':
        return { type: 'password', authcid: step.authcid ?? '', password: step.password ?? '' };
      case 'verified':
        return { type: 'verified', authcid: step.authcid ?? '' };
      default:
        return { type: 'fail', text: step.reason ?? 'Authentication failed', authcid: step.authcid };
    }
  }
  return { type: 'fail', text: 'Too many SASL rounds' };
}
