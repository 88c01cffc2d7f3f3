// What the composition root (src/cli) hands to the POP3 listener. Like the
// IMAP server and LMTP, POP3 never reads files, the environment or the
// command line itself.

import type { ListenAddress, Logger } from '../server/options.js';
import type { ProxyProtocolOptions } from '../server/proxy-protocol.js';
import type { MaildropLocks } from './lock.js';

export interface Pop3Limits {
  /** Simultaneous POP3 connections (counted apart from IMAP's). */
  maxConnections: number;
  /** Simultaneous POP3 sessions per user. */
  maxConnectionsPerUser: number;
  /** Invalid or unknown commands tolerated after login before the connection is closed. */
  maxBadCommands: number;
}

export interface Pop3Options {
  /** Plain listeners offering STLS (RFC 2595 §4). */
  pop3: ListenAddress[];
  /** Implicit-TLS listeners (RFC 8314). */
  pop3s: ListenAddress[];
  tls: { key: string | Buffer; cert: string | Buffer };
  /**
   * Where USER/PASS and AUTH may be used without TLS; the same policy as IMAP's
   * LOGINDISABLED: when refused, CAPA lists neither USER nor SASL and both get -ERR [AUTH].
   */
  plaintextAuth: 'never' | 'loopback' | 'always';
  limits: Pop3Limits;
  /** Idle time allowed before authentication (ms); after it the RFC 1939 §3 ten minutes apply. */
  preAuthTimeoutMs: number;
  /** The mailbox POP3 serves as the maildrop (RFC 1939 §1); "INBOX" by default. */
  mailbox: string;
  /**
   * When a RETR'd message gets \Seen: 'quit' (in the UPDATE state, with the
   * deletions, as Dovecot does), 'retr' (at once), 'never'.
   */
  markSeen: 'quit' | 'retr' | 'never';
  /**
   * RFC 1939 §8 exclusive maildrop lock: a second POP3 session of the same
   * user gets -ERR [IN-USE] while one is in the TRANSACTION state (Dovecot's
   * pop3_lock_session). Off by default, as in Dovecot. Held where `locks`
   * says: this process, or the cluster primary (all workers of one server).
   */
  lockSession: boolean;
  /** Where the locks are held (lock.ts); absent: in this process. */
  locks?: MaildropLocks;
  /** RFC 2449 §6.5 LOGIN-DELAY in seconds: advertised and enforced when above 0. */
  loginDelaySeconds: number;
  /** RFC 2449 §6.7 EXPIRE argument ("NEVER" or days) to advertise, or null for none. */
  expire: string | null;
  /** Name in the greeting. */
  serverName: string;
  /** PROXY protocol (src/server/proxy-protocol.ts) on the plain and implicit-TLS listeners; absent: off. */
  proxyProtocol?: { pop3?: ProxyProtocolOptions; pop3s?: ProxyProtocolOptions };
  log: Logger;
}
