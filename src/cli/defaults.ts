// The built-in defaults of the configuration (each with its reason) and the
// units they are written in. The table of settings is in config.ts, which
// re-exports everything here.
import type { LogFormat, LogLevel } from './log.js';

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;
export const SECOND = 1000;
export const MINUTE = 60 * SECOND;
export const HOUR = 60 * MINUTE;

// ---- defaults, each with its reason ------------------------------------------------------------

/** Where the store, the generated certificate and quire.json live. */
export const DEFAULT_DATA_DIR = './data';
/** Plain IMAP with STARTTLS. Loopback only by default: exposing a server is a decision. 1143 needs no privileges. */
export const DEFAULT_IMAP_HOST = '127.0.0.1';
export const DEFAULT_IMAP_PORT = 1143;
/** Implicit TLS (RFC 8314), the recommended way for clients to connect. */
export const DEFAULT_IMAPS_HOST = '127.0.0.1';
export const DEFAULT_IMAPS_PORT = 1993;
/** LOGIN/AUTHENTICATE without TLS only from loopback (RFC 9051 §6.2.3 LOGINDISABLED elsewhere). */
export const DEFAULT_PLAINTEXT_AUTH = 'loopback';
export const DEFAULT_LOG_LEVEL: LogLevel = 'info';
// ---- ops: log format and the HTTP admin listener (src/obs) ----
/** Human-readable lines by default; JSON for log shippers. */
export const DEFAULT_LOG_FORMAT: LogFormat = 'text';
/** Admin HTTP listener (metrics, health): loopback only, an unprivileged port near the IMAP ones. */
export const DEFAULT_ADMIN_HOST = '127.0.0.1';
export const DEFAULT_ADMIN_PORT = 9143;
/** Shortest password `quire user add/passwd` accepts (a generated one has 20 characters). */
export const DEFAULT_MIN_PASSWORD_LENGTH = 8;
// ---- end ops ----
export const DEFAULT_SERVER_NAME = 'Quire';

/** 8 KiB before login: LOGIN / AUTHENTICATE PLAIN with long names fit; nothing legitimate needs more. */
export const DEFAULT_PRE_AUTH_LINE_LENGTH = 8 * KiB;
/** 64 KiB after login: UID sets from caching clients (QRESYNC, long SEARCH results echoed back) need room. */
export const DEFAULT_LINE_LENGTH = 64 * KiB;
/** 64 MiB per message (APPENDLIMIT): above typical MTA limits (25-50 MiB) so any deliverable mail can be stored. */
export const DEFAULT_MAX_MESSAGE_SIZE = 64 * MiB;
/** 128 MiB per command including literals: room for a MULTIAPPEND of a couple of large messages. */
export const DEFAULT_MAX_COMMAND_SIZE = 128 * MiB;
/** Parenthesis nesting in SEARCH programs; real clients nest a handful, recursion must stay shallow. */
export const DEFAULT_MAX_DEPTH = 32;
/** Tokens in one command: big enough for long SEARCH/STORE keyword lists, small enough to bound parse work. */
export const DEFAULT_MAX_TOKENS = 10_000;
/** Commands per connection before BYE: unlimited, IDLE clients stay connected for days. */
export const DEFAULT_MAX_COMMANDS_PER_CONNECTION = 0;
/** Syntax errors tolerated per connection: a confused client gives up long before, a fuzzer or HTTP client does not. */
export const DEFAULT_MAX_BAD_COMMANDS = 20;
/** Simultaneous connections per user: Thunderbird opens 5 per account, several devices fit; a leaked password cannot exhaust the server. */
export const DEFAULT_MAX_CONNECTIONS_PER_USER = 50;
/**
 * Simultaneous connections overall, TLS handshakes and unauthenticated ones included: a connection
 * costs ~14 KiB of memory and one file descriptor, so 10,000 fit in ~140 MiB; `quire serve` warns at
 * start when RLIMIT_NOFILE is lower than this needs.
 */
export const DEFAULT_MAX_CONNECTIONS = 10_000;
// harden-app (issue 10 item 11): mailboxes per user; the store refuses more with NO [LIMIT].
export { DEFAULT_MAX_MAILBOXES_PER_USER } from '../store/limits.js';
/** Idle time before login: a client that connected but does not talk is dropped after a minute. */
export const DEFAULT_PRE_AUTH_TIMEOUT_MS = 60 * SECOND;
/** Idle time after login, IDLE included: RFC 9051 §5.4 requires at least 30 minutes. */
export const DEFAULT_AUTHENTICATED_TIMEOUT_MS = 30 * MINUTE;
/** Untagged keepalive during IDLE: shorter than common NAT/firewall idle timeouts (5 min). */
export const DEFAULT_IDLE_KEEPALIVE_MS = 2 * MINUTE;
// ---- hostile input (issue 10): pre-authentication caps and deadlines, TLS handshakes, per-user-address caps
/**
 * Unauthenticated connections overall: a fifth of the global cap, so sockets that never log in can hold at
 * most 2,000 slots and 8,000 stay for logged-in users. A login takes well under a second, so even a large
 * site's morning rush keeps only a few hundred connections in this state at once.
 */
export const DEFAULT_MAX_PRE_AUTH_CONNECTIONS = 2000;
/**
 * Unauthenticated connections from one address (IPv6: one /64): an office behind one NAT logging in at
 * once stays far below it; one host needs 20 addresses to fill the pre-auth share.
 */
export const DEFAULT_MAX_PRE_AUTH_CONNECTIONS_PER_ADDRESS = 100;
/** Sessions of one user from one address: Dovecot's mail_max_userip_connections default (10); Thunderbird opens up to 5. */
export const DEFAULT_MAX_CONNECTIONS_PER_USER_ADDRESS = 10;
/**
 * Absolute time from connect to successful login, not reset by input (an idle timer alone lets one byte
 * every few seconds hold a connection forever). 60 s, as the idle timer: Dovecot's login processes allow
 * 3 minutes; a client that prompts for a password while connected reconnects when it is cut.
 */
export const DEFAULT_PRE_AUTH_DEADLINE_MS = 60 * SECOND;
/** TLS handshake (implicit TLS and STARTTLS): a few round trips take well under a second; room for slow mobile links. */
export const DEFAULT_TLS_HANDSHAKE_MS = 10 * SECOND;
/** A literal must bring 256 KiB (or its rest) per window: 30 s tolerates a stalled mobile link, not a trickle. */
export const DEFAULT_LITERAL_PROGRESS_MS = 30 * SECOND;
/** Delay after the first failed login; doubles with each further failure. */
export const DEFAULT_AUTH_FAILURE_DELAY_MS = 1 * SECOND;
/** Cap of the failed-login delay. */
export const DEFAULT_AUTH_MAX_FAILURE_DELAY_MS = 15 * SECOND;
/** SQLite durability: FULL makes every acknowledged write wait for an fdatasync of the WAL (shared by concurrent commits: group commit), so an acknowledged APPEND survives power loss. */
export const DEFAULT_SQLITE_SYNCHRONOUS = 'FULL';
/**
 * Which acknowledged writes wait for that sync (docs/config.md "Durability"): "mail", like Dovecot's
 * `mail_fsync = optimized`, makes new and moved mail and structural changes wait, while flag changes and
 * expunges answer after their commit and are synced within 20 ms (store/sqlite/durability.ts MAX_UNSYNCED_MS);
 * "all" makes every write wait.
 */
export const DEFAULT_SQLITE_DURABILITY = 'mail';
/** LMTP (RFC 2033) for the MTA's final delivery: loopback only (RFC 2033 §5: not across wide area networks). */
export const DEFAULT_LMTP_HOST = '127.0.0.1';
/** 2424: unprivileged, memorable, clear of the usual mail ports (24 is LMTP's own but needs root). */
export const DEFAULT_LMTP_PORT = 2424;
/** 4 KiB per LMTP command line: RFC 5321 §4.5.3.1.4 asks for 512 plus room for extension parameters. */
export const DEFAULT_LMTP_LINE_LENGTH = 4 * KiB;
/** Recipients per LMTP transaction: RFC 5321 §4.5.3.1.8 asks for at least 100; MTAs send 50 or fewer per transaction. */
export const DEFAULT_LMTP_MAX_RECIPIENTS = 1000;
/** Simultaneous LMTP connections: an MTA opens a handful per destination; enough for a burst. */
export const DEFAULT_LMTP_MAX_CONNECTIONS = 100;
/** LMTP inactivity timeout: RFC 5321 §4.5.3.2.7 suggests 5 minutes for the server. */
export const DEFAULT_LMTP_TIMEOUT_MS = 5 * MINUTE;
/** Over-quota recipients get 452 4.2.2 so the MTA retries while the user makes room (its queue lifetime still bounds it). */
export const DEFAULT_LMTP_OVER_QUOTA = 'temporary';
/**
 * One serving process per core (0 = os.availableParallelism(), issue 11);
 * `--workers 1` is a single process, no cluster. Cluster mode is checked to
 * be one consistent server to its clients (test/server/workers-consistency.test.ts).
 */
export const DEFAULT_WORKERS = 0;
/** More workers than this only costs memory: each holds a SQLite connection, caches and two threads. */
export const MAX_WORKERS = 256;
/** user+folder@domain delivers into an existing "folder". */
export const DEFAULT_LMTP_SUBADDRESS = 'folder';
export const DEFAULT_LMTP_RECIPIENT_DELIMITER = '+';

// ---- POP3 (src/pop3): its own block, beside IMAP's
/** POP3 with STLS (RFC 2595): loopback, unprivileged (110 in production, by configuration). */
export const DEFAULT_POP3_HOST = '127.0.0.1';
export const DEFAULT_POP3_PORT = 1110;
/** POP3 over implicit TLS (RFC 8314; 995 in production). */
export const DEFAULT_POP3S_PORT = 1995;
/** The maildrop (RFC 1939 §1): INBOX, as every POP3 server over an IMAP store does. */
export const DEFAULT_POP3_MAILBOX = 'INBOX';
/** \Seen on RETR'd messages at QUIT (Dovecot's default; a dropped connection changes nothing). */
export const DEFAULT_POP3_MARK_SEEN = 'quit';
/** No exclusive maildrop lock (Dovecot's pop3_lock_session = no): sessions see each other's deletions as -ERR. */
export const DEFAULT_POP3_LOCK_SESSION = 'off';
/** No LOGIN-DELAY (RFC 2449 §6.5): clients poll as often as they like. */
export const DEFAULT_POP3_LOGIN_DELAY_MS = 0;
/** EXPIRE (RFC 2449 §6.7) not advertised: Quire never deletes mail by itself, but says so only when asked to. */
export const DEFAULT_POP3_EXPIRE = 'off';
