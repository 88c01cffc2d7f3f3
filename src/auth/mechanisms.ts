// The SASL mechanism registry (RFC 4422): which mechanisms a connection is
// offered and how an exchange runs, for every protocol alike. IMAP's
// AUTHENTICATE and POP3's AUTH (RFC 5034) only move base64 lines: they ask
// mechanismsFor(facts) what to advertise and startExchange() to run one;
// a new mechanism is a new entry here and needs no protocol change.

import type { Authenticator, LoginResult } from './authenticator.js';
import type { ConnectionFacts } from './facts.js';
import { PlainMechanism, type SaslMechanism, type SaslStep } from './sasl.js';
import { ScramMechanism } from './scram.js';
import { OAuthBearerMechanism, XOAuth2Mechanism } from './oauth-mech.js';

export interface MechanismDescriptor {
  /** Upper-case IANA name (AUTH=<name>). */
  readonly name: string;
  /** Whether to offer the mechanism on a connection with these facts. */
  offered(facts: ConnectionFacts, auth: Authenticator): boolean;
  /** A fresh exchange; `offered` is the list advertised on this connection (downgrade checks). */
  create(facts: ConnectionFacts, auth: Authenticator, offered: readonly string[]): SaslMechanism;
}

const scramPlus = (f: ConnectionFacts) => f.secure && (f.channelBinding?.types.length ?? 0) > 0;

/** In order of preference (clients that pick "the first they know" get the strongest). */
const REGISTRY: MechanismDescriptor[] = [
  {
    name: 'SCRAM-SHA-256-PLUS',
    offered: (f, a) => f.plaintextAllowed && a.offersScram && scramPlus(f),
    create: (f, a, offered) => new ScramMechanism(a, f, true, offered.includes('SCRAM-SHA-256-PLUS')),
  },
  {
    name: 'SCRAM-SHA-256',
    offered: (f, a) => f.plaintextAllowed && a.offersScram,
    create: (f, a, offered) => new ScramMechanism(a, f, false, offered.includes('SCRAM-SHA-256-PLUS')),
  },
  {
    name: 'OAUTHBEARER',
    offered: (f, a) => f.plaintextAllowed && a.bearer !== null,
    create: (_f, a) => new OAuthBearerMechanism(a.bearer!),
  },
  {
    name: 'XOAUTH2',
    offered: (f, a) => f.plaintextAllowed && a.bearer !== null,
    create: (_f, a) => new XOAuth2Mechanism(a.bearer!),
  },
  {
    name: 'PLAIN',
    offered: (f) => f.plaintextAllowed,
    create: () => new PlainMechanism(),
  },
];

/** Adds a mechanism (before the others when `first`); for extensions and tests. */
export function registerMechanism(d: MechanismDescriptor, first = false): void {
  const i = REGISTRY.findIndex((m) => m.name === d.name);
  if (i >= 0) REGISTRY.splice(i, 1);
  if (first) REGISTRY.unshift(d);
  else REGISTRY.push(d);
}

/** The mechanism names to advertise on a connection, most preferred first. */
export function mechanismsFor(facts: ConnectionFacts, auth: Authenticator): string[] {
  return REGISTRY.filter((m) => auth.mechanismEnabled(m.name) && m.offered(facts, auth)).map((m) => m.name);
}

/** One step of an exchange as the protocol sees it. */
export type ExchangeStep =
  | { type: 'challenge'; data: Buffer }
  | { type: 'success'; login: LoginResult }
  | { type: 'failure'; reason: string };

/**
 * Runs a mechanism against the authenticator: password results are checked
 * (with the cache and failure delays), proofs the mechanism verified get
 * authorization and logging, every failure is charged the same delay as a
 * wrong PLAIN password.
 */
export class SaslExchange {
  private finished = false;

  constructor(
    readonly mechanism: SaslMechanism,
    private readonly facts: ConnectionFacts,
    private readonly auth: Authenticator,
  ) {}

  async step(response: Buffer | null): Promise<ExchangeStep> {
    if (this.finished) return { type: 'failure', reason: 'exchange already finished' };
    const s: SaslStep = await this.mechanism.step(response);
    const name = this.mechanism.name;
    const remote = this.facts.remoteAddress;
    if (s.type === 'challenge') return s;
    this.finished = true;
    if (s.type === 'fail') {
      await this.auth.fail(s.authcid ?? '', remote, name, s.reason);
      return { type: 'failure', reason: s.reason };
    }
    const login =
      s.type === 'done'
        ? await this.auth.passwordLogin(s.authcid, s.authzid, s.password, remote, name)
        : await this.auth.verifiedLogin(s.authcid, s.authzid, remote, name, s.method);
    return login ? { type: 'success', login } : { type: 'failure', reason: 'authentication failed' };
  }
}

/** An exchange for `name` if it is offered on this connection, else null. */
export function startExchange(name: string, facts: ConnectionFacts, auth: Authenticator): SaslExchange | null {
  const offered = mechanismsFor(facts, auth);
  const upper = name.toUpperCase();
  if (!offered.includes(upper)) return null;
  const d = REGISTRY.find((m) => m.name === upper)!;
  return new SaslExchange(d.create(facts, auth, offered), facts, auth);
}
