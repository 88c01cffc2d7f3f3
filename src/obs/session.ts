// What one connection reports to the log and the metrics: a line when it
// opens, one per authentication, one when it closes; command latencies.
// Protocol code calls these few methods; the formats live here, in one place
// (docs/logging.md documents them; contrib/fail2ban matches "auth failed").
//
// Never logged: passwords, SASL responses, message contents, command
// arguments. The user name attempted is logged (it is what an admin needs to
// tell a brute force from a typo); the logger quotes it, so it cannot forge
// fields or lines.

import { EventEmitter } from 'node:events';
import type { Logger } from '../server/options.js';
import { processMetrics, type Metrics, type Protocol } from './metrics.js';

/** Process-wide session events for the composition root: 'login' (user name) after each successful authentication. */
export const sessionEvents = new EventEmitter();
sessionEvents.setMaxListeners(0);

/** Longest user name written to a log line (a client can send up to the line limit). */
export const MAX_LOGGED_USER_CHARS = 128;

/** A logger that adds `fields` to every record (a pino child when the logger has one). */
export function childLogger(log: Logger, fields: Record<string, unknown>): Logger {
  const c = (log as { child?: (f: Record<string, unknown>) => Logger }).child;
  if (typeof c === 'function') return c.call(log, fields);
  return {
    debug: (m, f) => log.debug(m, { ...fields, ...f }),
    info: (m, f) => log.info(m, { ...fields, ...f }),
    warn: (m, f) => log.warn(m, { ...fields, ...f }),
    error: (m, f) => log.error(m, { ...fields, ...f }),
  };
}

export interface Endpoint {
  remoteAddress?: string;
  remotePort?: number;
  localAddress?: string;
  localPort?: number;
}

export interface TlsInfo {
  version: string | null;
  cipher: string | null;
}

export interface ClosedInfo {
  bytesIn: number;
  bytesOut: number;
  commands: number;
  user: string | null;
  tls: TlsInfo | null;
  reason: string;
}

/** Why an authentication failed, from the tagged reply's response code (RFC 5530). */
export function authFailureReason(code: string | undefined): string {
  switch (code) {
    case 'AUTHENTICATIONFAILED':
      return 'invalid-credentials';
    case 'PRIVACYREQUIRED':
      return 'tls-required';
    case 'LIMIT':
      return 'limit';
    case 'CANNOT':
      return 'unsupported-mechanism';
    case 'UNAVAILABLE':
      return 'unavailable';
    case 'CLIENTBUG':
    case 'PARSE':
      return 'bad-command';
    default:
      return code ? code.toLowerCase() : 'cancelled';
  }
}

/** An address as admins and fail2ban expect it: IPv4-mapped IPv6 (`::ffff:192.0.2.1`, from a `::` listener) as plain IPv4. */
export function displayAddress(a: string | undefined): string {
  if (!a) return 'unknown';
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

function clipUser(u: string): string {
  return u.length > MAX_LOGGED_USER_CHARS ? u.slice(0, MAX_LOGGED_USER_CHARS) + '…' : u;
}

export class ConnectionObserver {
  readonly log: Logger;
  private readonly metrics: Metrics;
  private readonly opened = Date.now();
  private closedOnce = false;

  constructor(
    base: Logger,
    readonly sessionId: string,
    readonly protocol: Protocol,
    private readonly ep: Endpoint,
    tls: boolean,
  ) {
    this.log = childLogger(base, { session: sessionId });
    this.metrics = processMetrics();
    this.metrics.connectionsOpened.inc({ protocol, tls: tls ? 'implicit' : 'none' });
  }

  get since(): Date {
    return new Date(this.opened);
  }

  /** `connection opened`: who connected where (docs/logging.md). */
  connectionOpened(tls: boolean): void {
    this.log.info('connection opened', {
      protocol: this.protocol,
      remote: displayAddress(this.ep.remoteAddress),
      remotePort: this.ep.remotePort,
      local: displayAddress(this.ep.localAddress),
      localPort: this.ep.localPort,
      tls: tls ? 'implicit' : 'none',
    });
  }

  /** `tls established`: after the handshake (implicit TLS or STARTTLS). */
  tlsEstablished(how: 'implicit' | 'starttls', info: TlsInfo): void {
    this.log.debug('tls established', { how, tlsVersion: info.version, cipher: info.cipher });
  }

  /**
   * One authentication attempt's outcome. The field order of `auth failed`
   * is stable (fail2ban's filter anchors on it): protocol, remote, then the rest.
   */
  auth(ok: boolean, f: { mechanism: string; user: string | null; reason?: string; remote: string }): void {
    const result = ok ? 'success' : 'failure';
    this.metrics.logins.inc({ protocol: this.protocol, mechanism: f.mechanism, result });
    const user = f.user === null ? '-' : clipUser(f.user);
    const remote = displayAddress(f.remote);
    if (ok) {
      this.log.info('auth succeeded', { protocol: this.protocol, remote, mechanism: f.mechanism, user });
      if (f.user !== null) sessionEvents.emit('login', f.user);
    }
    // Field order is part of the format: everything before `user` is server-made.
    else this.log.warn('auth failed', { protocol: this.protocol, remote, mechanism: f.mechanism, reason: f.reason ?? 'invalid-credentials', user });
  }

  /** A command finished: its latency by name and status. */
  commandDone(name: string, status: string, seconds: number): void {
    this.metrics.commands.observe({ command: this.metrics.commandLabel(name), status }, seconds);
  }

  /** An unexpected error answered with SERVERBUG: counted (the dispatcher logs it with its log id). */
  internalError(): void {
    this.metrics.internalErrors.inc({ protocol: this.protocol });
  }

  /** `connection closed`: duration, bytes, commands, TLS parameters, user, reason (docs/logging.md). */
  connectionClosed(c: ClosedInfo): void {
    if (this.closedOnce) return;
    this.closedOnce = true;
    this.log.info('connection closed', {
      protocol: this.protocol,
      remote: displayAddress(this.ep.remoteAddress),
      user: c.user === null ? '-' : clipUser(c.user),
      durationMs: Date.now() - this.opened,
      bytesIn: c.bytesIn,
      bytesOut: c.bytesOut,
      commands: c.commands,
      tlsVersion: c.tls?.version ?? '-',
      cipher: c.tls?.cipher ?? '-',
      reason: c.reason,
    });
  }
}
