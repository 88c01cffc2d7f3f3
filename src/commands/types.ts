// The shape of a command module (STYLE.md habit 6) and what a handler may
// touch while it runs. Handlers never write the tagged reply: they return a
// result or throw an ImapError; the dispatcher writes exactly one tagged line.

import type { Token } from '../wire/types.js';
import type { MailStore } from '../store/types.js';
import type { Session, SessionState } from '../session/session.js';
import type { ServerLimits } from '../server/options.js';
import type { Authenticator } from '../auth/authenticator.js';
import type { ConnectionFacts } from '../auth/facts.js';

/** RFC 5530 response codes plus the RFC 9051 / extension codes we emit. Never invent codes. */
export type ResponseCode =
  | 'ALERT'
  | 'ALREADYEXISTS'
  | 'AUTHENTICATIONFAILED'
  | 'AUTHORIZATIONFAILED'
  | 'CANNOT'
  | 'CLIENTBUG'
  | 'CLOSED'
  | 'CONTACTADMIN'
  | 'CORRUPTION'
  | 'EXPIRED'
  | 'EXPUNGEISSUED'
  | 'INUSE'
  | 'LIMIT'
  | 'NONEXISTENT'
  | 'NOPERM'
  | 'OVERQUOTA'
  | 'PARSE'
  | 'PRIVACYREQUIRED'
  | 'SERVERBUG'
  | 'TOOBIG'
  | 'TRYCREATE'
  | 'UNAVAILABLE'
  | 'UNKNOWN-CTE'
  | 'BADCHARSET'
  | 'NOTSAVED'
  | 'NOUPDATE'
  | 'HASCHILDREN'
  | 'USEATTR' // RFC 6154 §6
  | 'COMPRESSIONACTIVE' // RFC 4978 §3
  | 'BADEVENT' // RFC 5465 §3.1
  | 'NOTIFICATIONOVERFLOW'; // RFC 5465 §5.8

export class ImapError extends Error {
  constructor(
    readonly status: 'NO' | 'BAD',
    message: string,
    /** Response code text without brackets, e.g. "TRYCREATE" or "BADCHARSET (UTF-8)". */
    readonly code?: string,
  ) {
    super(message);
    this.name = 'ImapError';
  }
}

/** A syntax error in the arguments: tagged BAD (RFC 9051 §7.1.5). */
export function bad(message: string, code?: ResponseCode): ImapError {
  return new ImapError('BAD', message, code);
}

/** A well-formed command that cannot be carried out: tagged NO (RFC 9051 §7.1.2). */
export function no(message: string, code?: string): ImapError {
  return new ImapError('NO', message, code);
}

export interface CommandResult {
  /** Response code for the tagged OK, e.g. "APPENDUID 38505 3955" or "READ-WRITE". */
  code?: string;
  text?: string;
  /** A tagged NO that still follows untagged data (e.g. FETCH with expunged messages). */
  status?: 'OK' | 'NO';
}

/** What a handler can do with the connection. */
export interface Output {
  /** Write an untagged response: `text` without "* " and CRLF. Pieces may include literal bytes. */
  untagged(text: string | (string | Buffer)[]): void;
  /** Write raw bytes (already framed). */
  raw(data: string | Buffer): void;
  /** A command continuation request (RFC 9051 §7.5). */
  continuation(text: string): void;
  /** Resolves once the socket has drained below its high-water mark (stream big responses with it). */
  drain(): Promise<void>;
  /** Read one raw line from the client (AUTHENTICATE responses, IDLE DONE); rejects if the connection closes. */
  readLine(): Promise<Buffer>;
}

export interface ConnectionControl {
  /** Upgrade to TLS right after the tagged reply (STARTTLS). */
  startTls(): void;
  /** Whether TLS is available/active on this connection. */
  readonly tlsAvailable: boolean;
  /** Switch both directions to DEFLATE right after the tagged reply (COMPRESS, RFC 4978 §3). */
  startCompress(): void;
  /** COMPRESS=DEFLATE is active on this connection. */
  readonly compressed: boolean;
  /** Close after the tagged reply (LOGOUT). */
  closeAfterReply(): void;
  /** While a command is waiting (IDLE), push pending mailbox updates immediately. */
  setIdling(on: boolean): void;
  /** Apply a new line-length limit (after authentication). */
  authenticated(): void;
}

export interface CommandContext {
  tag: string;
  /** Upper-cased command name, e.g. "UID FETCH". */
  name: string;
  session: Session;
  store: MailStore;
  auth: Authenticator;
  out: Output;
  conn: ConnectionControl;
  limits: ServerLimits;
  serverName: string;
  /** User names allowed to administer others (config `admins`; SETQUOTA). */
  admins: readonly string[];
  /** User names that act as message submission entities (config `urlauthSubmitters`; URLFETCH of submit+ URLs, RFC 4467 §3). */
  urlauthSubmitters: readonly string[];
  /** The capability list for the current state (RFC 9051 §7.2.2). */
  capabilities(): string[];
  /** Whether LOGIN/AUTHENTICATE are allowed on this connection right now (LOGINDISABLED otherwise). */
  plaintextAllowed(): boolean;
  /** What SASL mechanisms need to know about the connection (TLS, channel binding). */
  authFacts(): ConnectionFacts;
  /** Subscribe the session to its user's change feed (after login). */
  /** May wait for another process (the per-user caps of a cluster are the primary's). */
  attachUser(): void | Promise<void>;
  /** Send pending mailbox updates now (EXPUNGE only if allowed); a promise while search contexts' FETCHes are written (RFC 5465 §7). */
  flushUpdates(allowExpunge: boolean): void | Promise<void>;
  /** Resolves when bookkeeping for queued updates (\Recent claims) is done; await before flushing. */
  settled(): Promise<void>;
}

export interface CommandSpec<A = unknown> {
  /** Upper-case command name; UID forms are separate registrations named "UID FETCH" etc. */
  name: string;
  /** States in which the command is valid; elsewhere the dispatcher answers BAD. */
  states: readonly SessionState[];
  /** RFC sections implemented, for the reader and docs/rfc.md. */
  rfc: string;
  /**
   * Whether pending EXPUNGE responses may be sent while this command runs
   * (false for FETCH, STORE, SEARCH and friends: RFC 9051 §7.5.1).
   */
  expungeAllowed?: boolean;
  /** Pure: turn the tokens after the command name into typed arguments, or throw bad(...). */
  parse(args: Token[], session: Session): A;
  run(ctx: CommandContext, args: A): Promise<CommandResult | void>;
}

export function defineCommand<A>(spec: CommandSpec<A>): CommandSpec<A> {
  return spec;
}
