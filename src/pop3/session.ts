// One POP3 connection (RFC 1939): the AUTHORIZATION, TRANSACTION and UPDATE
// states, the maildrop snapshot, and the writer for single-line and
// multi-line responses. Commands (commands.ts) run strictly one after
// another in arrival order, so pipelined commands (RFC 2449 §6.6) get their
// responses in order; a client that sends faster than it reads is slowed by
// TCP (we stop reading past POP3_MAX_PIPELINE_BACKLOG and stop handling
// commands while its output does not drain).
//
// The session never sees a socket: the server hands it a Pop3Io.

import { randomBytes } from 'node:crypto';
import { LineDecoder, MultilineEncoder, splitCommand } from './codec.js';
import { COMMANDS } from './commands.js';
import {
  POP3_IDLE_TIMEOUT_MS,
  POP3_MAX_COMMANDS_PER_CONNECTION,
  POP3_MAX_LINE_LENGTH,
  POP3_MAX_PIPELINE_BACKLOG,
  POP3_OUTPUT_STALL_TIMEOUT_MS,
  POP3_PREFETCH_BYTES,
  POP3_PREFETCH_MESSAGES,
  POP3_PREFETCH_REFILL,
  POP3_PRE_AUTH_MAX_BAD,
  POP3_WHOLE_READ_MAX,
  POP3_STREAM_CHUNK,
  POP3_UPDATE_BATCH,
  POP3_CORK_BYTES,
} from './limits.js';
import { Maildrop, type DropMessage } from './maildrop.js';
import type { Pop3Options } from './options.js';
import { saslMechanisms } from './sasl.js';
import type { LeasedBytes, MailStore, MessageBody, UserInfo } from '../store/types.js';
import type { Authenticator } from '../auth/authenticator.js';

export type Pop3State = 'authorization' | 'transaction' | 'update' | 'closed';

/** What the session needs from its connection (a socket in production). */
export interface Pop3Io {
  write(data: string | Buffer): void;
  /** Several pieces in one system call where possible (no copy into one buffer); `written` runs once nothing references them any more. */
  writeParts(parts: Buffer[], written?: () => void): void;
  /** True while written data waits for the client to read it. */
  readonly congested: boolean;
  /** Holds writes until uncork(), which hands them to the kernel in one system call (responses to pipelined commands). */
  cork(): void;
  uncork(): void;
  /** Bytes written and not yet handed to the kernel. */
  readonly queuedBytes: number;
  /** Resolves true once the output drained, false when the connection closed or `timeoutMs` passed. */
  waitDrain(timeoutMs: number): Promise<boolean>;
  end(): void;
  pause(): void;
  resume(): void;
  /** After the STLS +OK went out: upgrade the connection (RFC 2595 §4); resolves false if the handshake failed. */
  startTls(): Promise<boolean>;
  readonly remoteAddress: string;
  readonly secure: boolean;
}

/** Server-wide state shared by the sessions of one listener set (server.ts). */
export interface Pop3Hooks {
  /** Counts a user's session; false when the per-user limit is reached. */
  attachUser(session: Pop3Session, userId: number): boolean;
  /**
   * RFC 1939 §8 maildrop lock (only with lockSession); false when another
   * session holds it (a promise across cluster workers or nodes); rejects
   * when the lock cannot be asked for. A lock lost later calls session.lockLost().
   */
  lock(session: Pop3Session, userId: number): boolean | Promise<boolean>;
  /** Gives the session's lock back (the UPDATE state, before QUIT's +OK); resolves once another session can take it. */
  unlock(session: Pop3Session): Promise<void>;
  /** Seconds the user still has to wait under LOGIN-DELAY (0: may log in); records the login when 0. */
  loginDelayLeft(userId: number): number;
  onClose(session: Pop3Session): void;
}

let counter = 0;
/** A wait for a body read at least this long counts in the logout log's readWaits. */
const READ_WAIT_COUNTED_MS = 0.1;

export class Pop3Session {
  readonly id = `p${++counter}-${randomBytes(3).toString('hex')}`;
  state: Pop3State = 'authorization';
  user: UserInfo | null = null;
  /** The name given by USER, waiting for PASS (RFC 1939 §7). */
  pendingUser: string | null = null;
  drop: Maildrop | null = null;
  /** RFC 6856: the client enabled UTF8. */
  utf8 = false;
  private readonly decoder = new LineDecoder(POP3_MAX_LINE_LENGTH);
  private busy = false;
  private paused = false;
  private bad = 0;
  private commands = 0;
  private timer: NodeJS.Timeout | null = null;
  private lineWaiter: ((line: Buffer | null) => void) | null = null;
  private idleWaiters: (() => void)[] = [];
  private stats = { retr: 0, retrBytes: 0, top: 0, dele: 0 };
  /**
   * Where a download's time went, logged at logout: waiting for body reads
   * that were not ready when a RETR wanted them (the store's side), and for
   * the socket to drain (the client's or the network's side), in ms.
   */
  private readonly waits = { readWaitMs: 0, pieceWaitMs: 0, readWaits: 0, drainWaitMs: 0, since: 0 };
  /** Output is corked (pump: responses to pipelined commands). */
  private corked = false;
  /** Ends the change-feed subscription taken at login. */
  private unsubscribe: (() => void) | null = null;
  /** Read-ahead of pipelined RETRs: message number -> its bytes (null: expunged). */
  private readonly prefetched = new Map<number, Promise<LeasedBytes | null>>();
  private prefetchedBytes = 0;
  /** The last RETR's message number (sequential downloads are read ahead). */
  private lastRetr = 0;

  constructor(
    readonly io: Pop3Io,
    readonly store: MailStore,
    readonly auth: Authenticator,
    readonly opts: Pop3Options,
    private readonly hooks: Pop3Hooks,
  ) {}

  get secure(): boolean {
    return this.io.secure;
  }

  greet(): void {
    this.resetTimer();
    this.reply(`+OK ${this.opts.serverName} POP3 ready.`);
  }

  // ---- input

  /** Bytes received from the client. */
  receive(chunk: Buffer): void {
    if (this.state === 'closed') return;
    this.decoder.push(chunk);
    this.resetTimer();
    if (this.decoder.pending > POP3_MAX_PIPELINE_BACKLOG && !this.paused) {
      this.paused = true;
      this.io.pause();
    }
    if (this.lineWaiter) {
      const ev = this.decoder.next();
      if (ev) {
        const w = this.lineWaiter;
        this.lineWaiter = null;
        w(ev.type === 'line' ? ev.line : null);
      }
      return;
    }
    void this.pump();
  }

  private async pump(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    // Responses to commands pipelined together (RFC 2449 §6.6) leave together, up to POP3_CORK_BYTES
    // per system call, instead of one write per response.
    const uncork = () => this.uncork();
    try {
      while (this.state !== 'closed') {
        // A client that pipelines but does not read gets no more work done until it does.
        if (this.io.congested) {
          uncork();
          if (!(await this.timedDrain())) {
            this.close();
            break;
          }
        }
        const ev = this.decoder.next();
        if (!ev) break;
        if (ev.type === 'too-long') {
          this.fail('Line too long');
          continue;
        }
        if (this.decoder.hasLine && !this.corked) {
          this.corked = true;
          this.io.cork();
        }
        await this.handle(ev.line);
        if (this.corked && (!this.decoder.hasLine || this.io.queuedBytes >= POP3_CORK_BYTES)) uncork();
      }
    } catch (err) {
      this.opts.log.error('POP3 session failed', { id: this.id, error: err instanceof Error ? err.stack : String(err) });
      if (this.state !== 'closed') this.reply('-ERR [SYS/TEMP] Internal error');
      this.close();
    } finally {
      uncork();
      this.busy = false;
      if (this.paused && this.decoder.pending < POP3_MAX_PIPELINE_BACKLOG / 2 && this.state !== 'closed') {
        this.paused = false;
        this.io.resume();
      }
      if (this.state === 'closed' || this.decoder.pending === 0) for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  private async handle(line: Buffer): Promise<void> {
    if (++this.commands > POP3_MAX_COMMANDS_PER_CONNECTION) {
      this.reply('-ERR [SYS/PERM] Too many commands on this connection');
      this.close();
      return;
    }
    const cmd = splitCommand(line);
    const def = COMMANDS.get(cmd.name);
    if (!def) return this.fail(`Unknown command: ${printable(cmd.name)}`);
    // A known command in the wrong state is -ERR (RFC 1939 §3) but not counted as garbage.
    if (!def.states.includes(this.state as 'authorization' | 'transaction')) return this.reply(`-ERR ${def.name} is not valid in the ${this.state.toUpperCase()} state`);
    await def.run(this, cmd);
  }

  /**
   * Reads one line for a SASL exchange (RFC 5034 §4) with its own larger
   * limit; null when the connection closed or the line was too long.
   */
  readLine(maxLength: number): Promise<Buffer | null> {
    this.decoder.setLimit(maxLength);
    const restore = (l: Buffer | null) => {
      this.decoder.setLimit(POP3_MAX_LINE_LENGTH);
      return l;
    };
    const ev = this.decoder.next();
    if (ev) return Promise.resolve(restore(ev.type === 'line' ? ev.line : null));
    if (this.state === 'closed') return Promise.resolve(restore(null));
    // The client answers what we sent: it must have it.
    this.uncork();
    if (this.paused) {
      this.paused = false;
      this.io.resume();
    }
    return new Promise((resolve) => {
      this.lineWaiter = (l) => resolve(restore(l));
    });
  }

  // ---- output

  reply(line: string): void {
    if (this.state !== 'closed') this.io.write(`${line}\r\n`);
  }

  /** -ERR for a command that was not understood or not allowed here; too many end the connection. */
  fail(text: string): void {
    this.reply(`-ERR ${text}`);
    this.bad++;
    const max = this.state === 'authorization' ? Math.min(POP3_PRE_AUTH_MAX_BAD, this.opts.limits.maxBadCommands) : this.opts.limits.maxBadCommands;
    if (this.bad >= max) {
      this.reply('-ERR Too many invalid commands, closing connection');
      this.close();
    }
  }

  /** A multi-line response (RFC 1939 §3) from text lines, written in batches that respect backpressure. */
  async multiline(first: string, lines: Iterable<string>): Promise<void> {
    let batch = `${first}\r\n`;
    let n = 0;
    for (const l of lines) {
      batch += l.startsWith('.') ? `.${l}\r\n` : `${l}\r\n`;
      if (++n % 1000 === 0) {
        this.io.write(batch);
        batch = '';
        if (!(await this.drained())) return;
      }
    }
    this.io.write(batch + '.\r\n');
  }

  /**
   * Sends message `m` as a multi-line response (RETR, TOP), starting from
   * `head`: its first bytes as stored (the whole body when small or read
   * ahead), or null for a store without range reads, whose large bodies are
   * streamed through MessageBody. The status line, the message and the
   * terminator of a small message leave in one writev, as views of the
   * store's (lent) memory; a large one goes in POP3_STREAM_CHUNK pieces, the
   * next read while the last is written, with backpressure. False when the
   * connection went away.
   */
  async sendMessage(first: string, m: DropMessage, head: LeasedBytes | null, bodyLines?: number): Promise<boolean> {
    const drop = this.drop!;
    const enc = new MultilineEncoder(bodyLines);
    const stored = drop.storedSize(m);
    // No bare LF to turn into CRLF (RFC 1939 §11 sizes count them): only dots to stuff.
    const clean = stored === m.size;
    const parts: Buffer[] = [Buffer.from(`${first}\r\n`)];
    if (head === null) return this.sendStreamed(parts, enc, drop.body(m));
    let cur: LeasedBytes = head;
    let pos = head.bytes.length;
    for (;;) {
      const last = pos >= stored || enc.finished;
      // The next piece is read while this one is written.
      const next = last ? null : drop.read(m, pos, Math.min(stored, pos + POP3_STREAM_CHUNK));
      next?.catch(() => undefined);
      enc.pushParts(cur.bytes, parts, clean);
      if (last || enc.finished) parts.push(enc.end());
      this.io.writeParts(parts, cur.release);
      if (last || enc.finished) {
        next?.then((l) => l?.release(), () => undefined);
        return true;
      }
      parts.length = 0;
      if (!(await this.drained())) {
        next!.then((l) => l?.release(), () => undefined);
        return false;
      }
      const got = await this.timedRead(next!, true);
      if (!got) throw new Error('message body went away while it was sent');
      cur = got;
      pos += got.bytes.length;
      if (got.bytes.length === 0) throw new Error('message body is shorter than recorded');
    }
  }

  /** A large body from a store without range reads (MessageBody.stream). */
  private async sendStreamed(parts: Buffer[], enc: MultilineEncoder, body: MessageBody): Promise<boolean> {
    for await (const chunk of body.stream(0, body.size, POP3_STREAM_CHUNK)) {
      enc.pushParts(chunk, parts);
      this.io.writeParts(parts);
      parts.length = 0;
      if (enc.finished) break;
      if (!(await this.drained())) return false;
    }
    this.io.write(enc.end());
    return true;
  }

  /**
   * The bytes of message `m` if a read-ahead has them (consumed), and starts
   * read-ahead for the RETRs pipelined behind the current command, within
   * POP3_PREFETCH_MESSAGES / POP3_PREFETCH_BYTES.
   */
  takePrefetched(n: number): Promise<LeasedBytes | null> | undefined {
    const p = this.prefetched.get(n);
    if (p) this.forget(n, false);
    const sequential = n === this.lastRetr + 1;
    this.lastRetr = n;
    // Read ahead of a sequential download that went past: never asked for, dropped.
    if (sequential) for (const k of [...this.prefetched.keys()]) if (k < n) this.forget(k);
    this.readAhead(sequential ? n : 0);
    return p;
  }

  /** Drops read-ahead of message `n`; its bytes go back to the store unless `taken` by the RETR. */
  private forget(n: number, release = true): void {
    const p = this.prefetched.get(n);
    this.prefetched.delete(n);
    if (release) p?.then((l) => l?.release(), () => undefined);
    const m = this.drop?.at(n);
    if (m) this.prefetchedBytes -= m.size;
  }

  /**
   * Reads ahead the RETRs pipelined behind the current one and, when the
   * client downloads in order (`after`: the message just asked for, after
   * its predecessor), the messages that follow it: fewer, larger batches
   * for the body-reading thread, started before they are asked for.
   */
  private readAhead(after = 0): void {
    const drop = this.drop;
    if (!drop || this.state !== 'transaction') return;
    // In bursts: until POP3_PREFETCH_REFILL places are free, the buffered commands are not parsed again.
    if (POP3_PREFETCH_MESSAGES - this.prefetched.size < POP3_PREFETCH_REFILL) return;
    const batch: DropMessage[] = [];
    const take = (m: DropMessage | null): boolean => {
      if (this.prefetched.size + batch.length >= POP3_PREFETCH_MESSAGES || (m && this.prefetchedBytes + m.size > POP3_PREFETCH_BYTES)) return false;
      if (!m || m.deleted || m.gone || this.prefetched.has(m.n) || batch.includes(m) || m.size > POP3_WHOLE_READ_MAX) return true;
      this.prefetchedBytes += m.size;
      batch.push(m);
      return true;
    };
    for (const line of this.decoder.peekLines(POP3_PREFETCH_MESSAGES)) {
      const cmd = splitCommand(line);
      if (cmd.name !== 'RETR' || cmd.args.length !== 1 || !/^[0-9]{1,10}$/.test(cmd.args[0]!)) continue;
      if (!take(drop.at(Number(cmd.args[0])))) break;
    }
    if (after > 0) for (let k = after + 1; k <= drop.messages.length && take(drop.at(k)); k++);
    // The login snapshot located every body: the file reads run in parallel, with no store lookup.
    for (const m of batch) {
      const p = drop.read(m, 0, drop.storedSize(m));
      // A failed read-ahead is retried by the RETR itself; never an unhandled rejection.
      p.catch(() => undefined);
      this.prefetched.set(m.n, p);
    }
  }

  /** Waits for the socket to drain, counted in drainWaitMs. */
  private async timedDrain(): Promise<boolean> {
    const t = performance.now();
    try {
      return await this.io.waitDrain(POP3_OUTPUT_STALL_TIMEOUT_MS);
    } finally {
      this.waits.drainWaitMs += performance.now() - t;
    }
  }

  /** Waits for a body read (`p`), counted in readWaitMs (pieceWaitMs too for a later piece of a large message). */
  async timedRead<T>(p: Promise<T>, piece = false): Promise<T> {
    const t = performance.now();
    try {
      return await p;
    } finally {
      const ms = performance.now() - t;
      this.waits.readWaitMs += ms;
      // Reads that were not there yet (an await of a settled read costs microseconds).
      if (ms >= READ_WAIT_COUNTED_MS) this.waits.readWaits++;
      if (piece) this.waits.pieceWaitMs += ms;
    }
  }

  /** Hands corked responses to the kernel (before any wait for the client to read: corked bytes never drain). */
  private uncork(): void {
    if (!this.corked) return;
    this.corked = false;
    this.io.uncork();
  }

  private async drained(): Promise<boolean> {
    if (this.state === 'closed') return false;
    if (!this.io.congested) return true;
    this.uncork();
    if (!this.io.congested) return true;
    const ok = await this.timedDrain();
    if (!ok) this.close();
    return ok && (this.state as Pop3State) !== 'closed';
  }

  // ---- authorization

  /** USER/PASS and SASL may be used here (the same policy as IMAP's LOGINDISABLED, RFC 9051 §6.2.3). */
  plaintextAllowed(): boolean {
    if (this.io.secure) return true;
    const mode = this.opts.plaintextAuth;
    if (mode === 'always') return true;
    if (mode === 'never') return false;
    const a = this.io.remoteAddress;
    return a === '::1' || a.startsWith('127.') || a.startsWith('::ffff:127.');
  }

  /** The CAPA list (RFC 2449 §5) for the current state. */
  capabilities(): string[] {
    const caps = ['TOP', 'UIDL', 'RESP-CODES', 'AUTH-RESP-CODE', 'PIPELINING'];
    if (this.state === 'authorization') {
      // RFC 6856 §2: UTF8, with USER: user names and passwords may be UTF-8.
      caps.push('UTF8 USER');
      if (!this.io.secure) caps.push('STLS');
      if (this.plaintextAllowed()) {
        caps.push('USER');
        const mechs = saslMechanisms();
        if (mechs.length > 0) caps.push(`SASL ${mechs.join(' ')}`);
      }
    }
    if (this.opts.expire !== null) caps.push(`EXPIRE ${this.opts.expire}`);
    if (this.opts.loginDelaySeconds > 0) caps.push(`LOGIN-DELAY ${this.opts.loginDelaySeconds}`);
    caps.push('IMPLEMENTATION Quire');
    return caps;
  }

  /** Failed credentials: RFC 3206 §4 [AUTH] (the authenticator has already waited its delay). */
  authFailed(): void {
    this.pendingUser = null;
    this.fail('[AUTH] Authentication failed');
  }

  /**
   * Credentials were accepted: open the maildrop and enter TRANSACTION
   * (RFC 1939 §4). Answers the command itself.
   */
  async enterTransaction(info: UserInfo): Promise<void> {
    this.pendingUser = null;
    const wait = this.hooks.loginDelayLeft(info.id);
    if (wait > 0) {
      // RFC 2449 §8.1.1.
      this.reply(`-ERR [LOGIN-DELAY] Wait ${wait} more seconds before logging in again`);
      return;
    }
    if (!this.hooks.attachUser(this, info.id)) {
      this.reply('-ERR [SYS/TEMP] Too many connections for this user');
      return;
    }
    this.user = info;
    if (this.opts.lockSession) {
      let locked: boolean;
      try {
        locked = await this.hooks.lock(this, info.id);
      } catch (err) {
        this.opts.log.warn('POP3 maildrop lock not available', { id: this.id, user: info.name, error: String(err) });
        this.reply('-ERR [SYS/TEMP] Maildrop lock is not available, try again later');
        this.close();
        return;
      }
      if (!locked) {
        // RFC 2449 §8.1.2, RFC 1939 §8.
        this.reply('-ERR [IN-USE] Maildrop is locked by another POP3 session');
        this.close();
        return;
      }
    }
    if ((this.state as Pop3State) === 'closed') return;
    let drop: Maildrop;
    try {
      const mb = await this.store.getMailbox(info.id, this.opts.mailbox);
      if (!mb) {
        this.reply(`-ERR [SYS/PERM] No maildrop (mailbox ${printable(this.opts.mailbox)} does not exist)`);
        this.close();
        return;
      }
      if ((this.state as Pop3State) === 'closed') return;
      // Messages IMAP (or another POP3 session) expunges from now on answer -ERR (RFC 1939 §8; as Dovecot).
      const gone: number[] = [];
      this.unsubscribe = this.store.feed.subscribe(info.id, (c) => {
        if (c.kind !== 'expunge' || c.mailboxId !== mb.id) return;
        if (this.drop) this.drop.expunged(c.uids);
        else gone.push(...c.uids);
      });
      // One snapshot: sizes in CRLF form and body locations, so RETR needs no store lookup.
      drop = new Maildrop(mb.id, mb.uidValidity, await this.store.openMaildrop(mb.id));
      drop.expunged(gone);
    } catch (err) {
      this.opts.log.warn('POP3 maildrop could not be opened', { id: this.id, user: info.name, error: String(err) });
      this.reply('-ERR [SYS/TEMP] Maildrop is not available, try again later');
      this.close();
      return;
    }
    // The client may have gone while the maildrop was read.
    if ((this.state as Pop3State) === 'closed') return;
    this.drop = drop;
    this.state = 'transaction';
    this.waits.since = performance.now();
    this.resetTimer();
    this.opts.log.info('POP3 login', { id: this.id, user: info.name, messages: drop.count, remote: this.io.remoteAddress });
    this.reply(`+OK Logged in, ${drop.count} messages (${drop.size} octets)`);
  }

  // ---- update (RFC 1939 §6)

  /**
   * QUIT in TRANSACTION: expunge the DELE'd messages through the store (so
   * IMAP sessions are told at once, by the change feed) and set \Seen on the
   * RETR'd ones when so configured. Answers +OK or "-ERR some deleted
   * messages not removed" and closes.
   */
  async update(): Promise<void> {
    const drop = this.drop!;
    this.state = 'update';
    let failed = false;
    const deleted = drop.deletedUids();
    try {
      for (let i = 0; i < deleted.length; i += POP3_UPDATE_BATCH) {
        const batch = deleted.slice(i, i + POP3_UPDATE_BATCH);
        // The store expunges messages flagged \Deleted; only ours are named, so an
        // IMAP user's own \Deleted marks elsewhere are left for their EXPUNGE.
        await this.store.storeFlags(drop.mailboxId, batch, 'add', ['\\Deleted']);
        await this.store.expunge(drop.mailboxId, batch);
      }
      if (this.opts.markSeen === 'quit') {
        const seen = drop.newlySeenUids();
        for (let i = 0; i < seen.length; i += POP3_UPDATE_BATCH) await this.store.storeFlags(drop.mailboxId, seen.slice(i, i + POP3_UPDATE_BATCH), 'add', ['\\Seen']);
      }
    } catch (err) {
      failed = true;
      this.opts.log.warn('POP3 update failed', { id: this.id, error: String(err) });
    }
    const w = this.waits;
    this.opts.log.info('POP3 logout', {
      id: this.id,
      user: this.user?.name,
      ...this.stats,
      deleted: deleted.length,
      kept: drop.count,
      sessionMs: Math.round(performance.now() - w.since),
      readWaitMs: Math.round(w.readWaitMs * 10) / 10,
      pieceWaitMs: Math.round(w.pieceWaitMs * 10) / 10,
      readWaits: w.readWaits,
      drainWaitMs: Math.round(w.drainWaitMs * 10) / 10,
    });
    // RFC 1939 §6: the lock goes with the UPDATE state, before the +OK, so the client may log in again at once.
    await this.hooks.unlock(this).catch((err: unknown) => this.opts.log.warn('POP3 maildrop lock release failed', { id: this.id, error: String(err) }));
    if (failed) this.reply('-ERR [SYS/TEMP] Some deleted messages were not removed');
    else this.reply(deleted.length > 0 ? `+OK Logging out, ${deleted.length} messages deleted` : '+OK Logging out');
    this.close();
  }

  count(kind: 'retr' | 'top' | 'dele', bytes = 0): void {
    this.stats[kind]++;
    if (kind === 'retr') this.stats.retrBytes += bytes;
  }

  // ---- STLS (RFC 2595 §4)

  async startTls(): Promise<void> {
    this.reply('+OK Begin TLS negotiation');
    this.uncork();
    // Anything pipelined after STLS is discarded: it was sent in the clear.
    this.decoder.discard();
    const ok = await this.io.startTls();
    if (!ok) this.close();
    this.resetTimer();
  }

  // ---- lifetime

  private resetTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.state === 'closed') return;
    const ms = this.state === 'authorization' ? this.opts.preAuthTimeoutMs : POP3_IDLE_TIMEOUT_MS;
    this.timer = setTimeout(() => {
      // RFC 1939 §3: an autologout ends the session without entering UPDATE.
      if (this.state === 'update') return;
      this.reply('-ERR Autologout; idle for too long');
      this.close();
    }, ms);
    this.timer.unref();
  }

  /** Resolves when no command is being handled (for shutdown: an UPDATE in progress completes first). */
  whenIdle(): Promise<void> {
    return this.busy ? new Promise((r) => this.idleWaiters.push(r)) : Promise.resolve();
  }

  /** Server shutdown: the session ends without UPDATE (RFC 1939 §6: only QUIT commits). */
  shutdown(): void {
    this.reply('-ERR [SYS/TEMP] Server shutting down');
    this.close();
  }

  /**
   * The maildrop lock was lost (its database connection went away): another
   * node may now open the maildrop, so this session ends without UPDATE. A
   * session in UPDATE finishes (its expunge names exact UIDs); one between
   * commands is told -ERR [SYS/TEMP] (RFC 3206 §4); one in the middle of a
   * multi-line response is cut off (an -ERR line would read as message text).
   */
  lockLost(): void {
    if (this.state !== 'transaction') return;
    this.opts.log.warn('POP3 maildrop lock lost', { id: this.id, user: this.user?.name });
    if (!this.busy) this.reply('-ERR [SYS/TEMP] Maildrop lock lost, try again later');
    this.close();
  }

  /** Ends the session without UPDATE. */
  close(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const w = this.lineWaiter;
    this.lineWaiter = null;
    w?.(null);
    this.unsubscribe?.();
    this.unsubscribe = null;
    for (const n of [...this.prefetched.keys()]) this.forget(n);
    this.io.end();
    this.hooks.onClose(this);
  }
}

/** Client text echoed in a response: printable ASCII only, shortened (RFC 2449 §4: 512-octet response lines). */
export function printable(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[^\x20-\x7e]/g, '?').slice(0, 40);
}
