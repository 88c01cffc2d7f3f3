// What the composition root (src/cli) hands to the server. The server never
// reads files, the environment or the command line itself.
import type { AdmissionControl, AdmissionLimits } from './admission.js';
import type { ProxyPolicy } from './proxy-protocol.js';

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export interface ListenAddress {
  host: string;
  port: number;
}

export interface ServerLimits {
  /** Longest command line before authentication (bytes). Small: nothing legitimate needs more. */
  preAuthLineLength: number;
  /** Longest command line after authentication (bytes); long UID sets from caching clients need room. */
  lineLength: number;
  /** Largest message accepted by APPEND (bytes); advertised as APPENDLIMIT. */
  maxMessageSize: number;
  /** Largest total size of one command including literals (MULTIAPPEND). */
  maxCommandSize: number;
  /** Deepest parenthesised nesting in a command (SEARCH programs). */
  maxDepth: number;
  /** Most tokens in one command. */
  maxTokens: number;
  /** Most commands one connection may issue in its lifetime before BYE (0 = unlimited). */
  maxCommandsPerConnection: number;
  /** Most syntax errors tolerated before the connection is closed. */
  maxBadCommands: number;
  /** Most simultaneous connections per user. */
  maxConnectionsPerUser: number;
  /** Most simultaneous connections overall, TLS handshakes and unauthenticated ones included. */
  maxConnections: number;
  // ---- hostile-input caps (issue 10); see docs/limits.md and src/server/admission.ts
  /** Most simultaneous unauthenticated connections overall; below maxConnections so they never lock logged-in users out. */
  maxPreAuthConnections: number;
  /** Most simultaneous unauthenticated connections from one source address (IPv6: one /64). */
  maxPreAuthConnectionsPerAddress: number;
  /** Most simultaneous sessions of one user from one source address (Dovecot's mail_max_userip_connections). */
  maxConnectionsPerUserAddress: number;
}

export interface ServerTimeouts {
  /** Idle time allowed before authentication (ms). */
  preAuthMs: number;
  /** Idle time allowed after authentication, IDLE included (ms): RFC 9051 §5.4 asks for at least 30 minutes. */
  authenticatedMs: number;
  /** Absolute time allowed from connect to successful authentication, however busy the client is (ms). */
  preAuthDeadlineMs: number;
  /** Time allowed for a TLS handshake, implicit TLS or STARTTLS (ms). */
  tlsHandshakeMs: number;
  /** A literal being received must bring LITERAL_MIN_BYTES_PER_WINDOW (or its rest) within each window of this length (ms). */
  literalProgressMs: number;
}

export interface ServerOptions {
  /** Plain listeners offering STARTTLS (RFC 9051 §6.2.1). */
  imap: ListenAddress[];
  /** Implicit-TLS listeners (RFC 8314). */
  imaps: ListenAddress[];
  tls: { key: string | Buffer; cert: string | Buffer };
  /**
   * Where LOGIN / AUTHENTICATE may be used without TLS (RFC 9051 §6.2.3 LOGINDISABLED).
   * 'loopback' (default) allows it only for connections from 127.0.0.0/8 and ::1.
   */
  plaintextAuth: 'never' | 'loopback' | 'always';
  limits: ServerLimits;
  timeouts: ServerTimeouts;
  /** Interval of the untagged keepalive sent during IDLE (ms). */
  idleKeepaliveMs: number;
  /** Interval of RFC 9585 INPROGRESS responses during long commands (ms; default INPROGRESS_INTERVAL_MS, 0 = never). */
  inProgressMs?: number;
  /** Name shown in the greeting and ID response. */
  serverName: string;
  /** User names allowed to administer others (SETQUOTA, RFC 9208). */
  admins?: readonly string[];
  /** User names authorized as message submission entities: URLFETCH of "submit+" URLs (RFC 4467 §3). */
  urlauthSubmitters?: readonly string[];
  log: Logger;
  /** PROXY protocol per listener (src/server/proxy-protocol.ts); only `imap` and `imaps` are read here. */
  proxyProtocol?: ProxyPolicy;
  /**
   * Fresh options for RunningServer.reload() (src/cli re-reads the config and
   * the certificate files). Listener addresses are not changed by a reload.
   */
  reload?: () => Promise<ServerOptions>;
  /**
   * How sockets and logins are counted against the caps (src/server/admission.ts), given the live limits:
   * a cluster worker's ClusterAdmission; absent = this process's own Admission.
   */
  admission?: (limits: () => AdmissionLimits) => AdmissionControl;
}
