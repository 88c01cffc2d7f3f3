// What the composition root (src/cli) hands to the LMTP listener. Like the
// IMAP server, delivery never reads files, the environment or the command line.

import type { ListenAddress, Logger } from '../server/options.js';
import type { ProxyProtocolOptions } from '../server/proxy-protocol.js';

export interface LmtpLimits {
  /** Longest command line in bytes (RFC 5321 §4.5.3.1.4 asks for at least 512 plus extension parameters). */
  lineLength: number;
  /** Recipients per transaction (RFC 5321 §4.5.3.1.8 asks for at least 100); beyond it RCPT gets 452 4.5.3. */
  maxRecipients: number;
  /** Largest message accepted (bytes); advertised as SIZE (RFC 1870). */
  maxMessageSize: number;
  /** Simultaneous LMTP connections; an MTA opens a few per destination. */
  maxConnections: number;
  /** Syntax errors and unknown commands tolerated before the connection is closed with 421. */
  maxBadCommands: number;
}

export interface LmtpOptions {
  /** TCP listeners (loopback by default: RFC 2033 §5 says LMTP SHOULD NOT cross wide area networks). */
  tcp: ListenAddress[];
  /** Path of a Unix domain socket listener, or null. */
  socket: string | null;
  /** Our host name in the greeting, LHLO reply and Received header. */
  hostname: string;
  limits: LmtpLimits;
  /** Inactivity allowed while waiting for a command or for data (ms); RFC 5321 §4.5.3.2.7 suggests 5 minutes. */
  timeoutMs: number;
  /** Reply for a recipient over quota: 'temporary' = 452 4.2.2 (the MTA retries), 'permanent' = 552 5.2.2 (it bounces). */
  overQuota: 'temporary' | 'permanent';
  /** 'folder': user+folder@domain delivers into "folder" when it exists (else INBOX); 'inbox': the detail is ignored. */
  subaddress: 'folder' | 'inbox';
  /** Separator of the detail part in a local part (user+detail). Empty string: no sub-addressing. */
  recipientDelimiter: string;
  /**
   * Accounts of an external user database (src/auth/userdb) that have no
   * local user yet (never logged in): resolves a name to its local user,
   * creating it, or null when the database does not know the name.
   */
  externalUser?: (name: string) => Promise<{ id: number; name: string } | null>;
  /** PROXY protocol (src/server/proxy-protocol.ts) on the TCP listeners (never on the Unix socket); absent: off. */
  proxyProtocol?: ProxyProtocolOptions;
  log: Logger;
}
