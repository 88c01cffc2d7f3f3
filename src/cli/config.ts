// The configuration model: every setting with its default, its JSON key, its
// environment variable and (for the common ones) its command-line flag, in one
// declarative table (CONFIG_KEYS). docs/config.md documents the same table;
// test/cli/config.test.ts checks that the two agree.
//
// Precedence, lowest to highest:
//   built-in defaults → config file → environment → command-line flags
// The config file is `--config FILE` (or QUIRE_CONFIG), otherwise
// `<dataDir>/quire.json` if it exists, where dataDir comes from the flag, the
// environment or the default. Relative paths inside a config file are
// resolved against the file's directory; those from the environment and flags
// against the working directory.

import { BODY_CACHE_BYTES } from '../store/sqlite/body-cache.js';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { hostname } from 'node:os';
import type { Logger, ServerLimits, ServerOptions, ServerTimeouts } from '../server/options.js';
import type { LmtpOptions } from '../delivery/options.js';
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from './log.js';
import { parseStoreConfig, type StoreConfig } from './store-open.js';
import { parseOAuthConfig, parseUserdbConfig, type AuthPolicyConfig, type UserdbConfig } from './auth-config.js';
import type { OAuthConfig } from '../auth/oauth.js';
import { DEFAULT_MASTER_SEPARATOR, VERIFIED_CACHE_MS } from '../auth/authenticator.js';
import type { Pop3Options } from '../pop3/options.js';
import { DEFAULT_PROXY_HEADER_TIMEOUT_MS, PROXY_LISTENERS, TrustedNetworks } from '../server/proxy-protocol.js';
import { proxyPolicy } from './proxy-config.js';

export * from './defaults.js';
import {
  DEFAULT_ADMIN_HOST, DEFAULT_ADMIN_PORT, DEFAULT_AUTHENTICATED_TIMEOUT_MS, DEFAULT_AUTH_FAILURE_DELAY_MS,
  DEFAULT_AUTH_MAX_FAILURE_DELAY_MS, DEFAULT_DATA_DIR, DEFAULT_IDLE_KEEPALIVE_MS, DEFAULT_IMAPS_HOST,
  DEFAULT_IMAPS_PORT, DEFAULT_IMAP_HOST, DEFAULT_IMAP_PORT, DEFAULT_LINE_LENGTH, DEFAULT_LITERAL_PROGRESS_MS,
  DEFAULT_LMTP_HOST, DEFAULT_LMTP_LINE_LENGTH, DEFAULT_LMTP_MAX_CONNECTIONS, DEFAULT_LMTP_MAX_RECIPIENTS,
  DEFAULT_LMTP_OVER_QUOTA, DEFAULT_LMTP_PORT, DEFAULT_LMTP_RECIPIENT_DELIMITER, DEFAULT_LMTP_SUBADDRESS,
  DEFAULT_LMTP_TIMEOUT_MS, DEFAULT_LOG_FORMAT, DEFAULT_LOG_LEVEL, DEFAULT_MAX_BAD_COMMANDS,
  DEFAULT_MAX_COMMANDS_PER_CONNECTION, DEFAULT_MAX_COMMAND_SIZE, DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_CONNECTIONS_PER_USER, DEFAULT_MAX_CONNECTIONS_PER_USER_ADDRESS, DEFAULT_MAX_DEPTH,
  DEFAULT_MAX_MAILBOXES_PER_USER, DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_MAX_PRE_AUTH_CONNECTIONS,
  DEFAULT_MAX_PRE_AUTH_CONNECTIONS_PER_ADDRESS, DEFAULT_MAX_TOKENS, DEFAULT_MIN_PASSWORD_LENGTH,
  DEFAULT_PLAINTEXT_AUTH, DEFAULT_POP3S_PORT, DEFAULT_POP3_EXPIRE, DEFAULT_POP3_HOST, DEFAULT_POP3_LOCK_SESSION,
  DEFAULT_POP3_LOGIN_DELAY_MS, DEFAULT_POP3_MAILBOX, DEFAULT_POP3_MARK_SEEN, DEFAULT_POP3_PORT,
  DEFAULT_PRE_AUTH_DEADLINE_MS, DEFAULT_PRE_AUTH_LINE_LENGTH, DEFAULT_PRE_AUTH_TIMEOUT_MS, DEFAULT_SERVER_NAME,
  DEFAULT_SQLITE_DURABILITY, DEFAULT_SQLITE_SYNCHRONOUS, DEFAULT_TLS_HANDSHAKE_MS, DEFAULT_WORKERS, GiB, HOUR, KiB, MAX_WORKERS, MINUTE, MiB,
  SECOND
} from './defaults.js';

// ---- the model ---------------------------------------------------------------------------------

export type PlaintextAuth = 'never' | 'loopback' | 'always';

export interface ListenerConfig {
  /** One or more addresses to bind; the same port on each. */
  host: string[];
  /** null = listener disabled; 0 = any free port (tests). */
  port: number | null;
}

export interface QuireConfig {
  /** Absolute path of the data directory. */
  dataDir: string;
  imap: ListenerConfig;
  imaps: ListenerConfig;
  /** Certificate and key files (absolute paths), or null to use a self-signed certificate in <dataDir>/tls. */
  tls: { cert: string | null; key: string | null };
  plaintextAuth: PlaintextAuth;
  logLevel: LogLevel;
  logFormat: LogFormat;
  /** HTTP admin listener; port null = off. */
  admin: { host: string; port: number | null };
  serverName: string;
  limits: ServerLimits;
  timeouts: ServerTimeouts;
  idleKeepaliveMs: number;
  auth: AuthPolicyConfig & { minPasswordLength: number };
  /** Where accounts live (src/cli/auth-config.ts; docs/config.md "Authentication"). */
  userdb: UserdbConfig;
  /** OAUTHBEARER / XOAUTH2 token validation, or null (mechanisms not offered). */
  oauth: OAuthConfig | null;
  /** Which store backend (src/cli/store-open.ts). */
  store: StoreConfig;
  sqlite: { synchronous: 'FULL' | 'NORMAL'; durability: 'mail' | 'all'; bodyCacheBytes: number };
  /** Mailbox limits enforced by the store for every writer (IMAP, CLI, import). */
  mailboxes: { maxPerUser: number };
  lmtp: {
    host: string[];
    /** null = TCP listener disabled. */
    port: number | null;
    /** Unix socket path, or null. */
    socket: string | null;
    lineLength: number;
    maxRecipients: number;
    maxConnections: number;
    timeoutMs: number;
    overQuota: 'temporary' | 'permanent';
    subaddress: 'folder' | 'inbox' | 'off';
    recipientDelimiter: string;
  };
  pop3: {
    host: string[];
    /** null = listener disabled. */
    port: number | null;
    tlsHost: string[];
    tlsPort: number | null;
    mailbox: string;
    markSeen: 'quit' | 'retr' | 'never';
    lockSession: 'off' | 'on';
    loginDelayMs: number;
    /** "off", "never" or a number of days. */
    expire: string;
  };
  /** User names allowed to administer others over IMAP (SETQUOTA, RFC 9208 §4.1.3). */
  admins: string[];
  /** User names acting as message submission entities: they may URLFETCH "submit+" URLs (RFC 4467 §3). */
  urlauthSubmitters: string[];
  /** PROXY protocol: trusted networks (empty: off), the listeners it applies to, the header deadline. */
  proxyProtocol: { from: string[]; listeners: string[]; timeoutMs: number };
  /** After SIGTERM: serve this long with /readyz 503 before closing the listeners. */
  shutdownDrainMs: number;
  /** Serving processes (0 = one per core). */
  workers: number;
  /** The config file that was read (absolute path), or null. Not a setting. */
  configFile: string | null;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

type Kind =
  | { t: 'path' }
  | { t: 'optpath' }
  | { t: 'string' }
  | { t: 'hosts' }
  | { t: 'names' }
  /** Networks as ADDR/PREFIX (or a bare address), comma-separated or an array (src/server/proxy-protocol.ts checks them). */
  | { t: 'cidrs' }
  | { t: 'port' }
  | { t: 'size'; min: number; max: number }
  | { t: 'duration'; min: number; max: number }
  | { t: 'int'; min: number; max: number }
  | { t: 'enum'; values: readonly string[] }
  /** A structured block (config file, or JSON text in the environment), checked by its own parser. */
  | { t: 'json'; parse: (raw: unknown, where: string, baseDir: string) => unknown; text?: boolean };

export interface ConfigKey {
  /** Dotted JSON path. */
  key: string;
  env: string;
  /** Long flag name without value, e.g. "--imap-port"; commander exposes it camel-cased. */
  flag?: string;
  kind: Kind;
  default: unknown;
  doc: string;
}

const size = (min: number, max: number): Kind => ({ t: 'size', min, max });
const duration = (min: number, max: number): Kind => ({ t: 'duration', min, max });
const int = (min: number, max: number): Kind => ({ t: 'int', min, max });

/** Largest sqlite.bodyCacheBytes accepted (per serving process). */
const MAX_BODY_CACHE_BYTES = 1024 * 1024 * 1024;

/** Every setting. Order is the order of docs/config.md. */
export const CONFIG_KEYS: readonly ConfigKey[] = [
  { key: 'dataDir', env: 'QUIRE_DATA', flag: '--data', kind: { t: 'path' }, default: DEFAULT_DATA_DIR, doc: 'Data directory: SQLite database, generated TLS certificate, optional quire.json.' },
  { key: 'imap.host', env: 'QUIRE_IMAP_HOST', flag: '--imap-host', kind: { t: 'hosts' }, default: [DEFAULT_IMAP_HOST], doc: 'Address(es) of the plain IMAP listener (STARTTLS offered); comma-separated or a JSON array.' },
  { key: 'imap.port', env: 'QUIRE_IMAP_PORT', flag: '--imap-port', kind: { t: 'port' }, default: DEFAULT_IMAP_PORT, doc: 'Port of the plain IMAP listener; "off" disables it, 0 picks a free port.' },
  { key: 'imaps.host', env: 'QUIRE_IMAPS_HOST', flag: '--imaps-host', kind: { t: 'hosts' }, default: [DEFAULT_IMAPS_HOST], doc: 'Address(es) of the implicit-TLS listener (RFC 8314).' },
  { key: 'imaps.port', env: 'QUIRE_IMAPS_PORT', flag: '--imaps-port', kind: { t: 'port' }, default: DEFAULT_IMAPS_PORT, doc: 'Port of the implicit-TLS listener; "off" disables it, 0 picks a free port.' },
  { key: 'tls.cert', env: 'QUIRE_TLS_CERT', flag: '--tls-cert', kind: { t: 'optpath' }, default: null, doc: 'PEM certificate chain file. Unset: a self-signed certificate is generated once in <dataDir>/tls/.' },
  { key: 'tls.key', env: 'QUIRE_TLS_KEY', flag: '--tls-key', kind: { t: 'optpath' }, default: null, doc: 'PEM private key file; required together with tls.cert.' },
  { key: 'plaintextAuth', env: 'QUIRE_PLAINTEXT_AUTH', flag: '--plaintext-auth', kind: { t: 'enum', values: ['never', 'loopback', 'always'] }, default: DEFAULT_PLAINTEXT_AUTH, doc: 'Where LOGIN/AUTHENTICATE are allowed without TLS: never, loopback (127.0.0.0/8, ::1) or always.' },
  { key: 'logLevel', env: 'QUIRE_LOG_LEVEL', flag: '--log-level', kind: { t: 'enum', values: LOG_LEVELS }, default: DEFAULT_LOG_LEVEL, doc: 'Least severe level logged to stderr: debug, info, warn, error or silent.' },
  { key: 'logFormat', env: 'QUIRE_LOG_FORMAT', flag: '--log-format', kind: { t: 'enum', values: LOG_FORMATS }, default: DEFAULT_LOG_FORMAT, doc: 'Log format on stderr: text (one human-readable line per record) or json (one JSON object per line). See docs/logging.md.' },
  { key: 'admin.host', env: 'QUIRE_ADMIN_HOST', flag: '--admin-host', kind: { t: 'string' }, default: DEFAULT_ADMIN_HOST, doc: 'Address of the HTTP admin listener (/metrics, /healthz, /readyz). It has no authentication: keep it on loopback or a management network.' },
  { key: 'admin.port', env: 'QUIRE_ADMIN_PORT', flag: '--admin-port', kind: { t: 'port' }, default: DEFAULT_ADMIN_PORT, doc: 'Port of the HTTP admin listener; "off" disables it, 0 picks a free port.' },
  { key: 'serverName', env: 'QUIRE_SERVER_NAME', kind: { t: 'string' }, default: DEFAULT_SERVER_NAME, doc: 'Name shown in the greeting and the ID response.' },
  { key: 'limits.preAuthLineLength', env: 'QUIRE_PRE_AUTH_LINE_LENGTH', kind: size(1 * KiB, 1 * MiB), default: DEFAULT_PRE_AUTH_LINE_LENGTH, doc: 'Longest command line before authentication.' },
  { key: 'limits.lineLength', env: 'QUIRE_LINE_LENGTH', kind: size(1 * KiB, 64 * MiB), default: DEFAULT_LINE_LENGTH, doc: 'Longest command line after authentication.' },
  { key: 'limits.maxMessageSize', env: 'QUIRE_MAX_MESSAGE_SIZE', kind: size(1 * KiB, 1 * GiB), default: DEFAULT_MAX_MESSAGE_SIZE, doc: 'Largest message accepted by APPEND; advertised as APPENDLIMIT.' },
  { key: 'limits.maxCommandSize', env: 'QUIRE_MAX_COMMAND_SIZE', kind: size(1 * KiB, 4 * GiB), default: DEFAULT_MAX_COMMAND_SIZE, doc: 'Largest command including all literals (MULTIAPPEND); at least maxMessageSize.' },
  { key: 'limits.maxDepth', env: 'QUIRE_MAX_DEPTH', kind: int(1, 1000), default: DEFAULT_MAX_DEPTH, doc: 'Deepest parenthesis nesting in a command.' },
  { key: 'limits.maxTokens', env: 'QUIRE_MAX_TOKENS', kind: int(16, 10_000_000), default: DEFAULT_MAX_TOKENS, doc: 'Most tokens in one command.' },
  { key: 'limits.maxCommandsPerConnection', env: 'QUIRE_MAX_COMMANDS_PER_CONNECTION', kind: int(0, Number.MAX_SAFE_INTEGER), default: DEFAULT_MAX_COMMANDS_PER_CONNECTION, doc: 'Commands per connection before BYE; 0 = unlimited.' },
  { key: 'limits.maxBadCommands', env: 'QUIRE_MAX_BAD_COMMANDS', kind: int(1, 1_000_000), default: DEFAULT_MAX_BAD_COMMANDS, doc: 'Syntax errors tolerated before the connection is closed.' },
  { key: 'limits.maxConnectionsPerUser', env: 'QUIRE_MAX_CONNECTIONS_PER_USER', kind: int(1, 1_000_000), default: DEFAULT_MAX_CONNECTIONS_PER_USER, doc: 'Simultaneous connections per user.' },
  { key: 'limits.maxConnections', env: 'QUIRE_MAX_CONNECTIONS', kind: int(1, 1_000_000), default: DEFAULT_MAX_CONNECTIONS, doc: 'Simultaneous connections overall.' },
  { key: 'mailboxes.maxPerUser', env: 'QUIRE_MAX_MAILBOXES_PER_USER', kind: int(10, 10_000_000), default: DEFAULT_MAX_MAILBOXES_PER_USER, doc: 'Most mailboxes one user may have; CREATE/RENAME beyond it get NO [LIMIT] (INBOX always exists).' },
  { key: 'timeouts.preAuthMs', env: 'QUIRE_PRE_AUTH_TIMEOUT', kind: duration(1 * SECOND, 1 * HOUR), default: DEFAULT_PRE_AUTH_TIMEOUT_MS, doc: 'Idle time allowed before authentication.' },
  { key: 'timeouts.authenticatedMs', env: 'QUIRE_AUTH_TIMEOUT', kind: duration(1 * SECOND, 7 * 24 * HOUR), default: DEFAULT_AUTHENTICATED_TIMEOUT_MS, doc: 'Idle time allowed after authentication, IDLE included (RFC 9051 §5.4: at least 30 min).' },
  { key: 'idleKeepaliveMs', env: 'QUIRE_IDLE_KEEPALIVE', kind: duration(1 * SECOND, 24 * HOUR), default: DEFAULT_IDLE_KEEPALIVE_MS, doc: 'Interval of the untagged keepalive sent during IDLE; below the authenticated timeout.' },
  // ---- hostile input (issue 10)
  { key: 'limits.maxPreAuthConnections', env: 'QUIRE_MAX_PRE_AUTH_CONNECTIONS', kind: int(1, 1_000_000), default: DEFAULT_MAX_PRE_AUTH_CONNECTIONS, doc: 'Simultaneous unauthenticated connections (TLS handshakes included); below limits.maxConnections so they cannot lock logged-in users out.' },
  { key: 'limits.maxPreAuthConnectionsPerAddress', env: 'QUIRE_MAX_PRE_AUTH_CONNECTIONS_PER_ADDRESS', kind: int(1, 1_000_000), default: DEFAULT_MAX_PRE_AUTH_CONNECTIONS_PER_ADDRESS, doc: 'Simultaneous unauthenticated connections from one address (IPv6: one /64); more get * BYE [UNAVAILABLE].' },
  { key: 'limits.maxConnectionsPerUserAddress', env: 'QUIRE_MAX_CONNECTIONS_PER_USER_ADDRESS', kind: int(1, 1_000_000), default: DEFAULT_MAX_CONNECTIONS_PER_USER_ADDRESS, doc: 'Simultaneous sessions of one user from one address (as Dovecot\'s mail_max_userip_connections); more get NO [LIMIT] at login.' },
  { key: 'timeouts.preAuthDeadlineMs', env: 'QUIRE_PRE_AUTH_DEADLINE', kind: duration(1 * SECOND, 1 * HOUR), default: DEFAULT_PRE_AUTH_DEADLINE_MS, doc: 'Time from connect to successful login, however active the client (not reset by input).' },
  { key: 'timeouts.tlsHandshakeMs', env: 'QUIRE_TLS_HANDSHAKE_TIMEOUT', kind: duration(100, 5 * MINUTE), default: DEFAULT_TLS_HANDSHAKE_MS, doc: 'Time allowed for a TLS handshake (implicit TLS and STARTTLS); then the socket is closed.' },
  { key: 'timeouts.literalProgressMs', env: 'QUIRE_LITERAL_PROGRESS_TIMEOUT', kind: duration(100, 1 * HOUR), default: DEFAULT_LITERAL_PROGRESS_MS, doc: 'A literal (APPEND data) must bring 256 KiB, or its rest, within each window of this length; else * BYE.' },
  { key: 'auth.failureDelayMs', env: 'QUIRE_AUTH_FAILURE_DELAY', kind: duration(0, 1 * MINUTE), default: DEFAULT_AUTH_FAILURE_DELAY_MS, doc: 'Delay before answering the first failed login; doubles per further failure (per address and per user name).' },
  { key: 'auth.minPasswordLength', env: 'QUIRE_MIN_PASSWORD_LENGTH', kind: int(1, 1024), default: DEFAULT_MIN_PASSWORD_LENGTH, doc: 'Shortest password `quire user add --password-stdin` and `quire user passwd --password-stdin` accept.' },
  { key: 'auth.maxFailureDelayMs', env: 'QUIRE_AUTH_MAX_FAILURE_DELAY', kind: duration(0, 10 * MINUTE), default: DEFAULT_AUTH_MAX_FAILURE_DELAY_MS, doc: 'Cap of the failed-login delay.' },
  // ---- authentication (issue 16; src/cli/auth-config.ts)
  { key: 'auth.mechanisms', env: 'QUIRE_AUTH_MECHANISMS', kind: { t: 'names' }, default: [], doc: 'SASL mechanisms to offer (e.g. SCRAM-SHA-256-PLUS,SCRAM-SHA-256,PLAIN). Empty: every mechanism that is usable.' },
  { key: 'auth.masterUsers', env: 'QUIRE_AUTH_MASTER_USERS', kind: { t: 'names' }, default: [], doc: 'Accounts that may log in as any user: "user*master" with the master\'s password, or SASL PLAIN with authzid=user. Logged as master logins.' },
  { key: 'auth.masterSeparator', env: 'QUIRE_AUTH_MASTER_SEPARATOR', kind: { t: 'string' }, default: DEFAULT_MASTER_SEPARATOR, doc: 'Separator of "user*master" login names.' },
  { key: 'auth.lockoutThreshold', env: 'QUIRE_AUTH_LOCKOUT_THRESHOLD', kind: int(0, 1_000_000), default: 0, doc: 'Failed logins of one user name (per worker, within 15 min) after which even the right password is refused until 15 min pass without failures. 0: no lockout.' },
  { key: 'auth.cacheMs', env: 'QUIRE_AUTH_CACHE', kind: duration(0, 24 * HOUR), default: VERIFIED_CACHE_MS, doc: 'How long a verified password is remembered (skips the slow hash on reconnects); 0 disables the cache.' },
  { key: 'userdb', env: 'QUIRE_USERDB', kind: { t: 'json', parse: parseUserdbConfig }, default: { driver: 'builtin' }, doc: 'User database: {"driver":"builtin"}, "passwd-file", "ldap" or "sql" with its settings (see "User databases" below).' },
  { key: 'oauth', env: 'QUIRE_OAUTH', kind: { t: 'json', parse: parseOAuthConfig }, default: null, doc: 'OAuth 2.0 bearer tokens for OAUTHBEARER/XOAUTH2: issuers (JWKS) and/or introspection (see "OAuth" below). Unset: not offered.' },
  // ---- the store (issue 13; src/cli/store-open.ts)
  { key: 'store', env: 'QUIRE_STORE', flag: '--store', kind: { t: 'json', parse: (raw) => parseStoreConfig(raw), text: true }, default: { kind: 'sqlite' }, doc: 'The store: "sqlite" (in the data directory) or a PostgreSQL URL postgres://USER@HOST:PORT/DB[?schema=NAME] shared by several nodes (also {"kind":"postgres","url":...,"poolSize":N,"blobs":{"kind":"fs","path":"/abs/path"}}; blobs, or ?blobs=/abs/path in the URL, keeps message bodies as files on a path every node mounts); with PostgreSQL the data directory keeps only certificates and locks.' },
  { key: 'sqlite.synchronous', env: 'QUIRE_SQLITE_SYNCHRONOUS', kind: { t: 'enum', values: ['FULL', 'NORMAL'] }, default: DEFAULT_SQLITE_SYNCHRONOUS, doc: 'Durability: FULL (acknowledged writes survive power loss: they wait for a group-committed fdatasync of the WAL, run off the event loop) or NORMAL (no sync; may lose the last commits on power loss).' },
  { key: 'sqlite.durability', env: 'QUIRE_SQLITE_DURABILITY', flag: '--sqlite-durability', kind: { t: 'enum', values: ['mail', 'all'] }, default: DEFAULT_SQLITE_DURABILITY, doc: 'With sqlite.synchronous FULL, which acknowledged writes wait for the WAL sync: mail (like Dovecot\'s mail_fsync = optimized: new, copied and moved mail and mailbox, subscription and quota changes wait; flag changes and expunges answer after their commit and are synced within 20 ms, so a power loss can undo the last 20 ms or so of them) or all (every write waits). See "Durability".' },
  { key: 'sqlite.bodyCacheBytes', env: 'QUIRE_SQLITE_BODY_CACHE_BYTES', kind: int(0, MAX_BODY_CACHE_BYTES), default: BODY_CACHE_BYTES, doc: 'Bytes of recently appended and read message bodies (each up to 256 KiB) each serving process keeps in memory, so a hot message is not read from its file on every FETCH; 0 turns the cache off.' },
  { key: 'lmtp.host', env: 'QUIRE_LMTP_HOST', flag: '--lmtp-host', kind: { t: 'hosts' }, default: [DEFAULT_LMTP_HOST], doc: 'Address(es) of the LMTP listener (RFC 2033) the MTA delivers to.' },
  { key: 'lmtp.port', env: 'QUIRE_LMTP_PORT', flag: '--lmtp-port', kind: { t: 'port' }, default: DEFAULT_LMTP_PORT, doc: 'Port of the LMTP listener; "off" disables it, 0 picks a free port.' },
  { key: 'lmtp.socket', env: 'QUIRE_LMTP_SOCKET', flag: '--lmtp-socket', kind: { t: 'optpath' }, default: null, doc: 'Unix socket for LMTP (mode 0660; a stale socket file is replaced). Unset: none.' },
  { key: 'lmtp.lineLength', env: 'QUIRE_LMTP_LINE_LENGTH', kind: size(512, 1 * MiB), default: DEFAULT_LMTP_LINE_LENGTH, doc: 'Longest LMTP command line. The message size limit is limits.maxMessageSize (advertised as SIZE).' },
  { key: 'lmtp.maxRecipients', env: 'QUIRE_LMTP_MAX_RECIPIENTS', kind: int(100, 1_000_000), default: DEFAULT_LMTP_MAX_RECIPIENTS, doc: 'Recipients per LMTP transaction; further RCPTs get 452 4.5.3 and the MTA sends them in another transaction.' },
  { key: 'lmtp.maxConnections', env: 'QUIRE_LMTP_MAX_CONNECTIONS', kind: int(1, 100_000), default: DEFAULT_LMTP_MAX_CONNECTIONS, doc: 'Simultaneous LMTP connections; more get 421 4.3.2.' },
  { key: 'lmtp.timeoutMs', env: 'QUIRE_LMTP_TIMEOUT', kind: duration(1 * SECOND, 1 * HOUR), default: DEFAULT_LMTP_TIMEOUT_MS, doc: 'LMTP inactivity timeout while waiting for a command or message data.' },
  { key: 'lmtp.overQuota', env: 'QUIRE_LMTP_OVER_QUOTA', kind: { t: 'enum', values: ['temporary', 'permanent'] }, default: DEFAULT_LMTP_OVER_QUOTA, doc: 'Reply for a recipient over quota: temporary (452 4.2.2, the MTA retries) or permanent (552 5.2.2, it bounces).' },
  { key: 'lmtp.subaddress', env: 'QUIRE_LMTP_SUBADDRESS', kind: { t: 'enum', values: ['folder', 'inbox', 'off'] }, default: DEFAULT_LMTP_SUBADDRESS, doc: 'user+detail@domain: folder (deliver into the existing folder "detail", else INBOX), inbox (always INBOX) or off (no sub-addressing).' },
  { key: 'lmtp.recipientDelimiter', env: 'QUIRE_LMTP_RECIPIENT_DELIMITER', kind: { t: 'string' }, default: DEFAULT_LMTP_RECIPIENT_DELIMITER, doc: 'Separator between user and detail in a sub-address.' },
  { key: 'pop3.host', env: 'QUIRE_POP3_HOST', flag: '--pop3-host', kind: { t: 'hosts' }, default: [DEFAULT_POP3_HOST], doc: 'Address(es) of the plain POP3 listener (STLS offered, RFC 2595).' },
  { key: 'pop3.port', env: 'QUIRE_POP3_PORT', flag: '--pop3-port', kind: { t: 'port' }, default: DEFAULT_POP3_PORT, doc: 'Port of the plain POP3 listener (110 in production); "off" disables it, 0 picks a free port.' },
  { key: 'pop3.tlsHost', env: 'QUIRE_POP3S_HOST', flag: '--pop3s-host', kind: { t: 'hosts' }, default: [DEFAULT_POP3_HOST], doc: 'Address(es) of the POP3 implicit-TLS listener (RFC 8314).' },
  { key: 'pop3.tlsPort', env: 'QUIRE_POP3S_PORT', flag: '--pop3s-port', kind: { t: 'port' }, default: DEFAULT_POP3S_PORT, doc: 'Port of the POP3 implicit-TLS listener (995 in production); "off" disables it, 0 picks a free port.' },
  { key: 'pop3.mailbox', env: 'QUIRE_POP3_MAILBOX', kind: { t: 'string' }, default: DEFAULT_POP3_MAILBOX, doc: 'The mailbox POP3 serves as the maildrop.' },
  { key: 'pop3.markSeen', env: 'QUIRE_POP3_MARK_SEEN', kind: { t: 'enum', values: ['quit', 'retr', 'never'] }, default: DEFAULT_POP3_MARK_SEEN, doc: 'When RETR\'d messages get \\Seen: quit (at QUIT, with the deletions), retr (at once) or never.' },
  { key: 'pop3.lockSession', env: 'QUIRE_POP3_LOCK_SESSION', kind: { t: 'enum', values: ['off', 'on'] }, default: DEFAULT_POP3_LOCK_SESSION, doc: 'on: one POP3 session per maildrop at a time (RFC 1939 §8; others get -ERR [IN-USE]); across the workers of one server (held by the primary) and, on the PostgreSQL store, across every node (advisory locks).' },
  { key: 'pop3.loginDelayMs', env: 'QUIRE_POP3_LOGIN_DELAY', kind: duration(0, 24 * HOUR), default: DEFAULT_POP3_LOGIN_DELAY_MS, doc: 'Least time between two POP3 logins of a user, advertised as LOGIN-DELAY (RFC 2449 §6.5, in whole seconds) and enforced with -ERR [LOGIN-DELAY]; 0 = none.' },
  { key: 'pop3.expire', env: 'QUIRE_POP3_EXPIRE', kind: { t: 'string' }, default: DEFAULT_POP3_EXPIRE, doc: 'EXPIRE to advertise (RFC 2449 §6.7): off (none), never, or a number of days the admin guarantees mail is kept.' },
  { key: 'admins', env: 'QUIRE_ADMINS', kind: { t: 'names' }, default: [], doc: 'User names allowed to change quotas over IMAP (SETQUOTA); comma-separated or a JSON array. Empty: nobody (use `quire user quota`).' },
  { key: 'urlauthSubmitters', env: 'QUIRE_URLAUTH_SUBMITTERS', kind: { t: 'names' }, default: [], doc: 'User names of message submission servers: they may URLFETCH URLs authorized for "submit+<user>" (RFC 4467, BURL); comma-separated or a JSON array. Empty: nobody.' },
  // ---- PROXY protocol (issue 13 item 5; src/server/proxy-protocol.ts)
  { key: 'proxyProtocol.from', env: 'QUIRE_PROXY_PROTOCOL_FROM', flag: '--proxy-protocol-from', kind: { t: 'cidrs' }, default: [], doc: 'Networks of the load balancers (HAProxy send-proxy / send-proxy-v2) allowed to send a PROXY protocol v1 or v2 header. Set: the listeners in proxyProtocol.listeners accept connections only from these networks, each starting with a header; others are closed. Empty: PROXY protocol off.' },
  { key: 'proxyProtocol.listeners', env: 'QUIRE_PROXY_PROTOCOL_LISTENERS', kind: { t: 'names' }, default: [...PROXY_LISTENERS], doc: 'The listeners that expect the PROXY protocol when proxyProtocol.from is set: any of imap, imaps, pop3, pop3s, lmtp (the LMTP Unix socket never).' },
  { key: 'proxyProtocol.timeoutMs', env: 'QUIRE_PROXY_PROTOCOL_TIMEOUT', kind: duration(100, 60 * SECOND), default: DEFAULT_PROXY_HEADER_TIMEOUT_MS, doc: 'Time allowed for the PROXY header to arrive; a slower connection is closed.' },
  { key: 'shutdownDrainMs', env: 'QUIRE_SHUTDOWN_DRAIN', kind: duration(0, 60 * SECOND), default: 0, doc: 'After SIGTERM, keep serving this long with /readyz answering 503 before closing the listeners, so that a load balancer\'s health check takes the node out first (a few check intervals); 0: close at once.' },
  // ---- process model (cores)
  { key: 'workers', env: 'QUIRE_WORKERS', flag: '--workers', kind: int(0, MAX_WORKERS), default: DEFAULT_WORKERS, doc: 'Serving processes sharing the listeners and the store; 0 (the default) = one per core (os.availableParallelism()); 1 = a single process, no cluster.' },
];

/** Environment variables that are not settings but are understood. */
export const OTHER_ENV = ['QUIRE_CONFIG', 'QUIRE_LOG_STACKS', 'QUIRE_WORKER_ID', 'QUIRE_DEBUG_WORKER_GREETING'] as const;

const SECTIONS = new Set(CONFIG_KEYS.filter((k) => k.key.includes('.')).map((k) => k.key.split('.')[0]!));
const BY_KEY = new Map(CONFIG_KEYS.map((k) => [k.key, k]));

// ---- value parsing -----------------------------------------------------------------------------

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: KiB, kb: KiB, kib: KiB, m: MiB, mb: MiB, mib: MiB, g: GiB, gb: GiB, gib: GiB };
const DURATION_UNITS: Record<string, number> = { '': 1, ms: 1, s: SECOND, m: MINUTE, min: MINUTE, h: HOUR };

function fmtBytes(n: number): string {
  if (n % GiB === 0) return `${n / GiB} GiB`;
  if (n % MiB === 0) return `${n / MiB} MiB`;
  if (n % KiB === 0) return `${n / KiB} KiB`;
  return `${n} bytes`;
}

function fmtMs(n: number): string {
  if (n % HOUR === 0 && n > 0) return `${n / HOUR} h`;
  if (n % MINUTE === 0 && n > 0) return `${n / MINUTE} min`;
  if (n % SECOND === 0 && n > 0) return `${n / SECOND} s`;
  return `${n} ms`;
}

/** Human description of a default, for docs and --help. */
export function describeDefault(k: ConfigKey): string {
  const d = k.default;
  if (d === null) return '(unset)';
  if (k.kind.t === 'json') return JSON.stringify(d);
  if (Array.isArray(d)) return d.join(',');
  if (k.kind.t === 'size') return `${d} (${fmtBytes(d as number)})`;
  if (k.kind.t === 'duration') return `${d} (${fmtMs(d as number)})`;
  return String(d);
}

function withUnit(raw: unknown, units: Record<string, number>, what: string): number | string {
  if (typeof raw === 'number') return Number.isSafeInteger(raw) ? raw : `must be a whole number of ${what}`;
  if (typeof raw !== 'string') return `must be a number or a string, got ${JSON.stringify(raw)}`;
  const m = /^(\d+)\s*([a-zA-Z]*)$/.exec(raw.trim()); // trimmed first: two \s* around an empty unit would backtrack quadratically
  if (!m) return `must be a whole number of ${what} optionally followed by a unit (${Object.keys(units).filter(Boolean).join(', ')}), got ${JSON.stringify(raw)}`;
  const unit = units[m[2]!.toLowerCase()];
  if (unit === undefined) return `unknown unit ${JSON.stringify(m[2])} (use ${Object.keys(units).filter(Boolean).join(', ')})`;
  const n = Number(m[1]) * unit;
  return Number.isSafeInteger(n) ? n : `value too large`;
}

/** Parses one value; returns the parsed value or throws ConfigError with `where` as context. */
function parseValue(def: ConfigKey, raw: unknown, where: string, baseDir: string): unknown {
  const fail = (msg: string): never => {
    throw new ConfigError(`${where}: ${msg}`);
  };
  const k = def.kind;
  switch (k.t) {
    case 'path':
    case 'optpath': {
      if (raw === null && k.t === 'optpath') return null;
      if (typeof raw !== 'string' || raw.length === 0) return fail(`must be a non-empty path${k.t === 'optpath' ? ' or null' : ''}`);
      return resolve(baseDir, raw);
    }
    case 'string':
      if (typeof raw !== 'string' || raw.trim() === '') return fail('must be a non-empty string');
      // eslint-disable-next-line no-control-regex
      if (/[\x00-\x1f\x7f]/.test(raw)) return fail('must not contain control characters');
      return raw;
    case 'hosts': {
      const list = typeof raw === 'string' ? raw.split(',').map((s) => s.trim()) : raw;
      if (!Array.isArray(list) || list.length === 0) return fail('must be a host name or address, a comma-separated list, or an array of them');
      for (const h of list) {
        if (typeof h !== 'string' || h === '' || /[\s,/]/.test(h)) return fail(`invalid host ${JSON.stringify(h)}`);
      }
      return [...new Set(list as string[])];
    }
    case 'cidrs': {
      const list = typeof raw === 'string' ? raw.split(',').map((x) => x.trim()).filter(Boolean) : raw;
      if (!Array.isArray(list) || list.some((x) => typeof x !== 'string')) return fail('must be a comma-separated list or an array of networks (ADDR/PREFIX)');
      try {
        return [...new TrustedNetworks(list as string[]).entries];
      } catch (e) {
        return fail((e as Error).message);
      }
    }
    case 'names': {
      const list = typeof raw === 'string' ? raw.split(',').map((s) => s.trim()).filter(Boolean) : raw;
      if (!Array.isArray(list)) return fail('must be a comma-separated list or an array of user names');
      for (const n of list) {
        if (typeof n !== 'string' || n === '' || /[\s,]/.test(n)) return fail(`invalid user name ${JSON.stringify(n)}`);
      }
      return [...new Set(list as string[])];
    }
    case 'port': {
      if (raw === null || raw === false || (typeof raw === 'string' && /^(off|false|none|disabled)$/i.test(raw.trim()))) return null;
      const n = typeof raw === 'string' && /^\s*\d+\s*$/.test(raw) ? Number(raw) : raw;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 65535) return fail(`must be a port number 0-65535 or "off", got ${JSON.stringify(raw)}`);
      return n;
    }
    case 'size':
    case 'duration':
    case 'int': {
      const units = k.t === 'size' ? SIZE_UNITS : k.t === 'duration' ? DURATION_UNITS : { '': 1 };
      const what = k.t === 'size' ? 'bytes' : k.t === 'duration' ? 'milliseconds' : 'units';
      const n = withUnit(raw, units, what);
      if (typeof n === 'string') return fail(n);
      const show = k.t === 'size' ? fmtBytes : k.t === 'duration' ? fmtMs : String;
      if (n < k.min || n > k.max) return fail(`must be between ${show(k.min)} and ${show(k.max)}, got ${show(n)}`);
      return n;
    }
    case 'json': {
      let v = raw;
      if (typeof raw === 'string') {
        try {
          v = JSON.parse(raw);
        } catch {
          // A key with `text` also takes a plain string (store: a postgres:// URL).
          if (!k.text) return fail('must be a JSON object');
        }
      }
      try {
        return k.parse(v, where, baseDir);
      } catch (e) {
        return fail(e instanceof Error ? e.message : String(e));
      }
    }
    case 'enum': {
      const v = typeof raw === 'string' ? raw.trim() : raw;
      const hit = k.values.find((x) => typeof v === 'string' && x.toLowerCase() === v.toLowerCase());
      if (hit === undefined) return fail(`must be one of ${k.values.join(', ')}, got ${JSON.stringify(raw)}`);
      return hit;
    }
  }
}

// ---- layers ------------------------------------------------------------------------------------

type Flat = Map<string, unknown>;

function defaults(): Flat {
  return new Map(CONFIG_KEYS.map((k) => [k.key, structuredClone(k.default)]));
}

function readFileLayer(file: string, forbidDataDir: boolean): Flat {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`config file ${file} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new ConfigError(`config file ${file}: must contain a JSON object`);
  const out: Flat = new Map();
  const baseDir = dirname(file);
  const walk = (obj: Record<string, unknown>, prefix: string): void => {
    for (const [name, value] of Object.entries(obj)) {
      const path = prefix ? `${prefix}.${name}` : name;
      const def = BY_KEY.get(path);
      if (def) {
        if (forbidDataDir && path === 'dataDir') {
          throw new ConfigError(`config file ${file}: "dataDir" cannot be set in the data directory's own quire.json (use --config, --data or QUIRE_DATA)`);
        }
        out.set(path, parseValue(def, value, `config file ${file}: ${path}`, baseDir));
      } else if (!prefix && SECTIONS.has(name) && typeof value === 'object' && value !== null && !Array.isArray(value)) {
        walk(value as Record<string, unknown>, name);
      } else {
        const known = CONFIG_KEYS.map((k) => k.key).filter((k) => (prefix ? k.startsWith(prefix + '.') : true));
        throw new ConfigError(`config file ${file}: unknown key "${path}" (known keys: ${known.join(', ')})`);
      }
    }
  };
  walk(json as Record<string, unknown>, '');
  return out;
}

function envLayer(env: NodeJS.ProcessEnv, cwd: string, warn: (msg: string) => void): Flat {
  const out: Flat = new Map();
  const known = new Set<string>([...CONFIG_KEYS.map((k) => k.env), ...OTHER_ENV]);
  for (const name of Object.keys(env)) {
    if (name.startsWith('QUIRE_') && !known.has(name)) warn(`ignoring unknown environment variable ${name}`);
  }
  for (const def of CONFIG_KEYS) {
    const v = env[def.env];
    if (v === undefined || v === '') continue;
    out.set(def.key, parseValue(def, v, `environment variable ${def.env}`, cwd));
  }
  return out;
}

/** Commander's attribute name for a long flag: "--imap-port" → "imapPort". */
export function flagAttribute(flag: string): string {
  return flag.replace(/^--/, '').replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

function flagLayer(flags: Record<string, unknown>, cwd: string): Flat {
  const out: Flat = new Map();
  for (const def of CONFIG_KEYS) {
    if (!def.flag) continue;
    const v = flags[flagAttribute(def.flag)];
    if (v === undefined) continue;
    out.set(def.key, parseValue(def, v, `option ${def.flag}`, cwd));
  }
  return out;
}

// ---- assembling --------------------------------------------------------------------------------

export interface LoadConfigOptions {
  /** Parsed command-line options (commander's opts()): dataDir via `data`, file via `config`, others camel-cased. */
  flags?: Record<string, unknown>;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Receives non-fatal remarks (unknown QUIRE_* variables, unusual values). */
  onWarning?: (msg: string) => void;
}

/** Name of the optional config file inside the data directory. */
export const DATA_DIR_CONFIG_FILE = 'quire.json';

/** Loads and validates the configuration. Throws ConfigError with a message fit for the user. */
export function loadConfig(opts: LoadConfigOptions = {}): QuireConfig {
  const flags = opts.flags ?? {};
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  const warn = opts.onWarning ?? (() => {});

  const envL = envLayer(env, cwd, warn);
  const flagL = flagLayer(flags, cwd);

  let configFile: string | null = null;
  let fileL: Flat = new Map();
  const explicit = typeof flags.config === 'string' ? flags.config : env.QUIRE_CONFIG || undefined;
  if (explicit !== undefined) {
    configFile = resolve(cwd, explicit);
    if (!existsSync(configFile)) throw new ConfigError(`config file ${configFile} does not exist`);
    fileL = readFileLayer(configFile, false);
  } else {
    const dataDir = (flagL.get('dataDir') ?? envL.get('dataDir') ?? resolve(cwd, DEFAULT_DATA_DIR)) as string;
    const candidate = join(dataDir, DATA_DIR_CONFIG_FILE);
    if (existsSync(candidate)) {
      configFile = candidate;
      fileL = readFileLayer(candidate, true);
    }
  }

  const merged = defaults();
  merged.set('dataDir', resolve(cwd, DEFAULT_DATA_DIR));
  for (const layer of [fileL, envL, flagL]) for (const [k, v] of layer) merged.set(k, v);

  const g = <T>(key: string): T => merged.get(key) as T;
  const config: QuireConfig = {
    dataDir: g('dataDir'),
    imap: { host: g('imap.host'), port: g('imap.port') },
    imaps: { host: g('imaps.host'), port: g('imaps.port') },
    tls: { cert: g('tls.cert'), key: g('tls.key') },
    plaintextAuth: g('plaintextAuth'),
    logLevel: g('logLevel'),
    logFormat: g('logFormat'),
    admin: { host: g('admin.host'), port: g('admin.port') },
    serverName: g('serverName'),
    limits: {
      preAuthLineLength: g('limits.preAuthLineLength'),
      lineLength: g('limits.lineLength'),
      maxMessageSize: g('limits.maxMessageSize'),
      maxCommandSize: g('limits.maxCommandSize'),
      maxDepth: g('limits.maxDepth'),
      maxTokens: g('limits.maxTokens'),
      maxCommandsPerConnection: g('limits.maxCommandsPerConnection'),
      maxBadCommands: g('limits.maxBadCommands'),
      maxConnectionsPerUser: g('limits.maxConnectionsPerUser'),
      maxConnections: g('limits.maxConnections'),
      maxPreAuthConnections: g('limits.maxPreAuthConnections'),
      maxPreAuthConnectionsPerAddress: g('limits.maxPreAuthConnectionsPerAddress'),
      maxConnectionsPerUserAddress: g('limits.maxConnectionsPerUserAddress'),
    },
    timeouts: {
      preAuthMs: g('timeouts.preAuthMs'),
      authenticatedMs: g('timeouts.authenticatedMs'),
      preAuthDeadlineMs: g('timeouts.preAuthDeadlineMs'),
      tlsHandshakeMs: g('timeouts.tlsHandshakeMs'),
      literalProgressMs: g('timeouts.literalProgressMs'),
    },
    mailboxes: { maxPerUser: g('mailboxes.maxPerUser') },
    idleKeepaliveMs: g('idleKeepaliveMs'),
    auth: {
      failureDelayMs: g('auth.failureDelayMs'),
      maxFailureDelayMs: g('auth.maxFailureDelayMs'),
      minPasswordLength: g('auth.minPasswordLength'),
      mechanisms: g('auth.mechanisms'),
      masterUsers: g('auth.masterUsers'),
      masterSeparator: g('auth.masterSeparator'),
      lockoutThreshold: g('auth.lockoutThreshold'),
      cacheMs: g('auth.cacheMs'),
    },
    userdb: g('userdb'),
    oauth: g('oauth'),
    store: g('store'),
    sqlite: { synchronous: g('sqlite.synchronous'), durability: g('sqlite.durability'), bodyCacheBytes: g('sqlite.bodyCacheBytes') },
    lmtp: {
      host: g('lmtp.host'),
      port: g('lmtp.port'),
      socket: g('lmtp.socket'),
      lineLength: g('lmtp.lineLength'),
      maxRecipients: g('lmtp.maxRecipients'),
      maxConnections: g('lmtp.maxConnections'),
      timeoutMs: g('lmtp.timeoutMs'),
      overQuota: g('lmtp.overQuota'),
      subaddress: g('lmtp.subaddress'),
      recipientDelimiter: g('lmtp.recipientDelimiter'),
    },
    pop3: {
      host: g('pop3.host'),
      port: g('pop3.port'),
      tlsHost: g('pop3.tlsHost'),
      tlsPort: g('pop3.tlsPort'),
      mailbox: g('pop3.mailbox'),
      markSeen: g('pop3.markSeen'),
      lockSession: g('pop3.lockSession'),
      loginDelayMs: g('pop3.loginDelayMs'),
      expire: g('pop3.expire'),
    },
    admins: g('admins'),
    urlauthSubmitters: g('urlauthSubmitters'),
    proxyProtocol: { from: g('proxyProtocol.from'), listeners: g('proxyProtocol.listeners'), timeoutMs: g('proxyProtocol.timeoutMs') },
    shutdownDrainMs: g('shutdownDrainMs'),
    workers: g('workers'),
    configFile,
  };
  validate(config, warn);
  return config;
}

function validate(c: QuireConfig, warn: (msg: string) => void): void {
  const errors: string[] = [];
  if (c.imap.port === null && c.imaps.port === null) errors.push('both listeners are disabled (imap.port and imaps.port are "off"); enable at least one');
  if (c.imap.port !== null && c.imaps.port !== null && c.imap.port !== 0 && c.imap.port === c.imaps.port) {
    const shared = c.imap.host.filter((h) => c.imaps.host.includes(h));
    if (shared.length > 0) errors.push(`imap.port and imaps.port are both ${c.imap.port} on ${shared.join(', ')}`);
  }
  for (const [name, l] of [['imap', c.imap], ['imaps', c.imaps]] as const) {
    if (c.lmtp.port !== null && c.lmtp.port !== 0 && l.port === c.lmtp.port && l.host.some((h) => c.lmtp.host.includes(h))) {
      errors.push(`lmtp.port and ${name}.port are both ${l.port} on the same host`);
    }
  }
  if (!/^(off|never|[0-9]{1,5})$/i.test(c.pop3.expire)) errors.push(`pop3.expire must be off, never or a number of days, got ${JSON.stringify(c.pop3.expire)}`);
  {
    // No two listeners on one port of one host, POP3's included.
    const all: [string, ListenerConfig][] = [['imap', c.imap], ['imaps', c.imaps], ['lmtp', { host: c.lmtp.host, port: c.lmtp.port }], ['pop3', { host: c.pop3.host, port: c.pop3.port }], ['pop3s', { host: c.pop3.tlsHost, port: c.pop3.tlsPort }]];
    for (let i = 0; i < all.length; i++) {
      for (let j = i + 1; j < all.length; j++) {
        const [an, a] = all[i]!;
        const [bn, b] = all[j]!;
        if (!an.startsWith('pop3') && !bn.startsWith('pop3')) continue; // checked above
        if (a.port !== null && a.port !== 0 && a.port === b.port && a.host.some((h) => b.host.includes(h))) errors.push(`${an} and ${bn} listeners are both on port ${a.port} of the same host`);
      }
    }
  }
  if ((c.tls.cert === null) !== (c.tls.key === null)) errors.push('tls.cert and tls.key must be set together (or neither, for a generated self-signed certificate)');
  if (c.limits.lineLength < c.limits.preAuthLineLength) errors.push(`limits.lineLength (${c.limits.lineLength}) must be at least limits.preAuthLineLength (${c.limits.preAuthLineLength})`);
  if (c.limits.maxCommandSize < c.limits.maxMessageSize) errors.push(`limits.maxCommandSize (${c.limits.maxCommandSize}) must be at least limits.maxMessageSize (${c.limits.maxMessageSize})`);
  if (c.auth.maxFailureDelayMs < c.auth.failureDelayMs) errors.push(`auth.maxFailureDelayMs (${c.auth.maxFailureDelayMs}) must be at least auth.failureDelayMs (${c.auth.failureDelayMs})`);
  if (c.idleKeepaliveMs >= c.timeouts.authenticatedMs) errors.push(`idleKeepaliveMs (${c.idleKeepaliveMs}) must be shorter than timeouts.authenticatedMs (${c.timeouts.authenticatedMs})`);
  if (c.limits.maxPreAuthConnections > c.limits.maxConnections) errors.push(`limits.maxPreAuthConnections (${c.limits.maxPreAuthConnections}) must be at most limits.maxConnections (${c.limits.maxConnections})`);
  if (c.limits.maxConnectionsPerUserAddress > c.limits.maxConnectionsPerUser) errors.push(`limits.maxConnectionsPerUserAddress (${c.limits.maxConnectionsPerUserAddress}) must be at most limits.maxConnectionsPerUser (${c.limits.maxConnectionsPerUser})`);
  for (const l of c.proxyProtocol.listeners) if (!(PROXY_LISTENERS as readonly string[]).includes(l)) errors.push(`proxyProtocol.listeners: unknown listener ${JSON.stringify(l)} (one of ${PROXY_LISTENERS.join(', ')})`);
  if (errors.length === 1) throw new ConfigError(errors[0]!);
  if (errors.length > 1) throw new ConfigError('invalid configuration:\n  - ' + errors.join('\n  - '));
  if (c.timeouts.authenticatedMs < 30 * MINUTE) warn('timeouts.authenticatedMs is below the 30 minutes RFC 9051 §5.4 asks for');
  if (c.limits.maxPreAuthConnections === c.limits.maxConnections) warn('limits.maxPreAuthConnections equals limits.maxConnections: connections that never log in can then lock logged-in users out');
  if (c.plaintextAuth === 'always') warn('plaintextAuth is "always": passwords may cross the network unencrypted');
}

/** The options handed to startServer(). */
export function toServerOptions(config: QuireConfig, tls: { key: string | Buffer; cert: string | Buffer }, log: Logger): ServerOptions {
  const listeners = (l: ListenerConfig) => (l.port === null ? [] : l.host.map((host) => ({ host, port: l.port as number })));
  return {
    imap: listeners(config.imap),
    imaps: listeners(config.imaps),
    tls: { key: tls.key, cert: tls.cert },
    plaintextAuth: config.plaintextAuth,
    limits: { ...config.limits },
    timeouts: { ...config.timeouts },
    idleKeepaliveMs: config.idleKeepaliveMs,
    serverName: config.serverName,
    admins: config.admins,
    urlauthSubmitters: config.urlauthSubmitters,
    proxyProtocol: proxyPolicy(config),
    log,
  };
}


/** The options handed to startLmtp(), or null when no LMTP listener is configured. */
export function toLmtpOptions(config: QuireConfig, log: Logger): LmtpOptions | null {
  const l = config.lmtp;
  const tcp = l.port === null ? [] : l.host.map((host) => ({ host, port: l.port as number }));
  if (tcp.length === 0 && l.socket === null) return null;
  return {
    tcp,
    socket: l.socket,
    hostname: hostname() || 'localhost',
    limits: {
      lineLength: l.lineLength,
      maxRecipients: l.maxRecipients,
      maxMessageSize: config.limits.maxMessageSize,
      maxConnections: l.maxConnections,
      maxBadCommands: config.limits.maxBadCommands,
    },
    timeoutMs: l.timeoutMs,
    overQuota: l.overQuota,
    subaddress: l.subaddress === 'off' ? 'inbox' : l.subaddress,
    recipientDelimiter: l.subaddress === 'off' ? '' : l.recipientDelimiter,
    proxyProtocol: proxyPolicy(config).lmtp,
    log,
  };
}

/** The options handed to startPop3() (src/pop3/server.ts), or null when both POP3 listeners are off. */
export function toPop3Options(config: QuireConfig, tls: { key: string | Buffer; cert: string | Buffer }, log: Logger): Pop3Options | null {
  const p = config.pop3;
  const pop3 = p.port === null ? [] : p.host.map((host) => ({ host, port: p.port as number }));
  const pop3s = p.tlsPort === null ? [] : p.tlsHost.map((host) => ({ host, port: p.tlsPort as number }));
  if (pop3.length === 0 && pop3s.length === 0) return null;
  const expire = p.expire.toLowerCase() === 'off' ? null : p.expire.toUpperCase();
  return {
    pop3,
    pop3s,
    tls: { key: tls.key, cert: tls.cert },
    plaintextAuth: config.plaintextAuth,
    limits: {
      maxConnections: config.limits.maxConnections,
      maxConnectionsPerUser: config.limits.maxConnectionsPerUser,
      maxBadCommands: config.limits.maxBadCommands,
    },
    preAuthTimeoutMs: config.timeouts.preAuthMs,
    mailbox: p.mailbox.toUpperCase() === 'INBOX' ? 'INBOX' : p.mailbox,
    markSeen: p.markSeen,
    lockSession: p.lockSession === 'on',
    loginDelaySeconds: Math.ceil(p.loginDelayMs / 1000),
    expire,
    serverName: config.serverName,
    proxyProtocol: proxyPolicy(config),
    log,
  };
}

/** The effective configuration as JSON a user could put in quire.json (for `quire config`). */
export function configToJson(config: QuireConfig): Record<string, unknown> {
  const { configFile: _ignored, ...rest } = config;
  return structuredClone(rest) as Record<string, unknown>;
}
