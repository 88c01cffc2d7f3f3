// One client connection: socket -> decoder -> dispatcher -> socket, one
// command at a time in arrival order (pipelined commands wait their turn),
// with backpressure both ways, STARTTLS, timeouts and limits.
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { CommandDecoder, PRE_AUTH_DECODER_LIMITS, DEFAULT_DECODER_LIMITS, responseText } from '../wire/index.js';
import type { DecoderEvent, DecoderLimits } from '../wire/types.js';
import { Session } from '../session/session.js';
import { dispatch } from '../commands/dispatch.js';
import { capabilities, COMMANDS } from '../commands/registry.js';
import { ImapError, no, type CommandContext, type ConnectionControl, type Output } from '../commands/types.js';
import type { MailStore } from '../store/types.js';
import type { Authenticator } from '../auth/authenticator.js';
import { tlsChannelBinding, type ConnectionFacts } from '../auth/facts.js';
import { mechanismsFor } from '../auth/mechanisms.js';
import type { ServerOptions } from './options.js';
import { DeflateStream, type CompressViolation } from './compress.js';
import { newSessionId } from '../obs/log.js';
import { authFailureReason, ConnectionObserver, type Endpoint, type TlsInfo } from '../obs/session.js';
import type { Token } from '../wire/types.js';
import type { Refusal } from './admission.js';
import { serverHandshake } from './tls.js';
import { pushNotifications } from '../commands/notify-push.js';
import { INPROGRESS_INTERVAL_MS, ProgressReporter } from './progress.js';
import { PushQueue } from './push.js';
import { ConnectionOutput } from './output.js';
import { MailboxUpdates } from './updates.js';

/** The response code of a tagged line we wrote (`tag NO [CODE] text`). */
const TAGGED_CODE = /^\S+ (?:OK|NO|BAD) \[([A-Z0-9.-]+)/;
/** Pause reading when this many unparsed bytes wait in the decoder. */
const READ_HIGH_WATER = 1024 * 1024;
/** Invalid commands tolerated before authentication: a real client sends none. */
const PRE_AUTH_MAX_BAD = 3;
/**
 * Least a literal must bring per timeouts.literalProgressMs window (or its rest, when less is left):
 * without it one byte per idle period keeps a 60 MB literal (and its connection) open for ever. 256 KiB
 * per 30 s is ~8.5 KiB/s, below any link a 60 MB upload would be attempted over.
 */
const LITERAL_MIN_BYTES_PER_WINDOW = 256 * 1024;
/**
 * Longest stretch one connection's pipelined commands run before other connections get a turn: with
 * its commands already buffered, a connection's loop never waits for I/O, and a flood of 20,000
 * pipelined NOOPs and FETCHes delayed another user's NOOP ~380 ms (test/server/eventloop.test.ts).
 */
const PIPELINE_SLICE_MS = 5;
/** Untagged responses queued for an idle client before it is disconnected as too slow. */
const MAX_PENDING_OUTPUT = 4 * 1024 * 1024;

export interface ConnectionHooks {
  /** Counts the session for its user (src/server/admission.ts); returns the cap that refuses it, or null. */
  /** A promise when another process decides (a cluster worker: src/server/admission.ts ClusterAdmission). */
  onUserAttach(conn: Connection, userId: number): Refusal | null | Promise<Refusal | null>;
  onClose(conn: Connection): void;
  secureContext: tls.SecureContext;
  /** ALPN identifiers offered after STARTTLS (RFC 7301). */
  alpn: readonly string[];
  /**
   * Per mailbox, the highest UID some session of this process has already
   * claimed as \Recent: the other sessions skip the store call (with 1,000
   * IDLE clients on a mailbox, one claim per delivery instead of 1,000).
   */
  recentClaims: Map<number, number>;
}

/** SASL mechanism names used as metric labels; anything else is counted as "other". */
const KNOWN_MECHANISMS = new Set(['LOGIN', 'PLAIN', 'XOAUTH2', 'OAUTHBEARER', 'SCRAM-SHA-1', 'SCRAM-SHA-256', 'CRAM-MD5', 'EXTERNAL', 'ANONYMOUS']);

export class Connection {
  readonly session: Session;
  /** The transport as the loop sees it: TCP, TLS, or the DEFLATE layer over either (RFC 4978). */
  private socket: Duplex;
  /** Removes the loop's listeners from the current socket (STARTTLS, COMPRESS). */
  private unbind: () => void = () => undefined;
  private compressAfter = false;
  private compressed = false;
  private readonly decoder: CommandDecoder;
  private dataWaiter: (() => void) | null = null;
  private closed = false;
  private idling = false;
  private closeAfter = false;
  private tlsAfter = false;
  private badCount = 0;
  private commandCount = 0;
  private timer: NodeJS.Timeout | null = null;
  /** The absolute pre-authentication deadline: not reset by input, cleared by a successful login. */
  private deadline: NodeJS.Timeout | null = null;
  /** Watches a literal's progress (see LITERAL_MIN_BYTES_PER_WINDOW); null when no literal is being received. */
  private literalTimer: NodeJS.Timeout | null = null;
  private literalPendingAtWindow = 0;
  private keepalive: NodeJS.Timeout | null = null;
  private unsubscribe: (() => void) | null = null;
  /** The selected mailbox's updates: change routing, \Recent claims, flushes (updates.ts). */
  private readonly updates: MailboxUpdates;
  /** The command in progress (null between commands); NOTIFY pushes (push.ts); INPROGRESS (progress.ts). */
  private command: string | null = null;
  private readonly pushes: PushQueue;
  private readonly progress: ProgressReporter;
  /** Responses gathered while a command runs, one socket write per command or burst (output.ts). */
  private readonly output: ConnectionOutput;
  private readonly ctxBase: Omit<CommandContext, 'tag' | 'name'>;
  /** Logs and metrics of this connection (src/obs/session.ts). */
  readonly obs: ConnectionObserver;
  private readonly rawSocket: net.Socket;
  private tlsInfo: TlsInfo | null = null;
  /** The user name of the last credential check (for the auth log line; never the password). */
  private authUser: string | null = null;
  /** Why the connection ended, for the `connection closed` line. */
  private closeReason = 'client closed';

  constructor(
    socket: net.Socket,
    secure: boolean,
    private readonly tlsAvailable: boolean,
    private readonly store: MailStore,
    private readonly auth: Authenticator,
    private readonly opts: ServerOptions,
    private readonly hooks: ConnectionHooks,
    /** The client as a PROXY header named it (src/server/proxy-protocol.ts); default: the socket's peer. */
    peer: Endpoint = socket,
  ) {
    this.socket = socket;
    this.session = new Session(newSessionId(), peer.remoteAddress ?? 'unknown', secure);
    this.rawSocket = socket;
    this.obs = new ConnectionObserver(opts.log, this.session.id, 'imap', peer, secure);
    if (socket instanceof tls.TLSSocket) this.tlsInfo = tlsInfoOf(socket);
    // The authenticator as commands see it: the same one, with the attempted user name noted for the log.
    const observedAuth = new Proxy(auth, {
      get: (target, prop) => {
        if (prop === 'verify') {
          return (name: string, password: string, remoteAddress: string) => {
            this.authUser = name;
            return target.verify(name, password, remoteAddress);
          };
        }
        const v = Reflect.get(target, prop) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    this.decoder = new CommandDecoder(this.preAuthLimits());
    this.output = new ConnectionOutput(() => this.socket, () => this.closed);
    const out: Output = {
      untagged: (text) => {
        this.output.untagged(text);
        this.checkSlow();
      },
      raw: (data) => this.write(data),
      continuation: (text) => {
        this.write(`+ ${responseText(text)}\r\n`);
        this.uncork();
      },
      drain: () => this.output.drain(),
      readLine: () => this.readLine(),
    };
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    const conn: ConnectionControl = {
      startTls: () => { this.tlsAfter = true; },
      tlsAvailable: this.tlsAvailable,
      startCompress: () => { this.compressAfter = true; },
      get compressed() { return self.compressed; },
      closeAfterReply: () => { this.closeAfter = true; },
      setIdling: (on) => this.setIdling(on),
      authenticated: () => {
        this.decoder.setLimits(this.postAuthLimits());
        this.clearDeadline();
        this.resetTimer();
      },
    };
    this.ctxBase = {
      session: this.session,
      store,
      auth: observedAuth,
      out,
      conn,
      limits: opts.limits,
      serverName: opts.serverName,
      admins: opts.admins ?? [],
      urlauthSubmitters: opts.urlauthSubmitters ?? [],
      capabilities: () => this.capabilities(),
      plaintextAllowed: () => this.plaintextAllowed(),
      authFacts: () => this.authFacts(),
      attachUser: () => this.attachUser(),
      flushUpdates: (allowExpunge) => this.flushUpdates(allowExpunge),
      settled: () => this.updates.claims,
    };
    this.updates = new MailboxUpdates({
      session: this.session,
      store,
      recentClaims: hooks.recentClaims,
      log: opts.log,
      sessionLog: this.obs.log,
      command: () => this.command,
      idling: () => this.idling,
      write: (data) => this.write(data),
      close: (bye, reason) => {
        if (reason !== undefined) this.closeReason = reason;
        this.write(bye);
        this.destroy();
      },
      pushRequest: () => this.pushes.request(),
      context: (name) => ({ ...this.ctxBase, tag: '*', name }),
    });
    const pushCtx: CommandContext = { ...this.ctxBase, tag: '*', name: 'NOTIFY' };
    this.pushes = new PushQueue(
      () => !this.closed && (this.command === null || this.idling),
      () => pushNotifications(pushCtx, { idling: this.idling, flushSelected: (allow) => this.flushUpdates(allow) }),
      (e) => this.obs.log.error('notify push failed', { error: e instanceof Error ? e.stack : String(e) }),
    );
    // Whole lines between a command's own (progress.ts), out of the gathered output at once.
    this.progress = new ProgressReporter(opts.inProgressMs ?? INPROGRESS_INTERVAL_MS, (line) => {
      this.write(`* ${line}\r\n`);
      if (this.output.corked) (this.uncork(), this.cork());
    });
    this.bind(socket);
  }

  private preAuthLimits(): DecoderLimits {
    // LITERAL+ is advertised, so non-synchronizing literals may be as large as any literal (RFC 7888 §4).
    return { ...PRE_AUTH_DECODER_LIMITS, maxLineLength: this.opts.limits.preAuthLineLength, maxNonSyncLiteral: PRE_AUTH_DECODER_LIMITS.maxLiteralSize };
  }

  private postAuthLimits(): DecoderLimits {
    const l = this.opts.limits;
    return {
      ...DEFAULT_DECODER_LIMITS,
      maxLineLength: l.lineLength,
      maxLiteralSize: l.maxMessageSize,
      maxNonSyncLiteral: l.maxMessageSize,
      maxCommandSize: l.maxCommandSize,
      maxDepth: l.maxDepth,
      maxTokens: l.maxTokens,
    };
  }

  private capabilities(): string[] {
    return capabilities({
      authenticated: this.session.state !== 'notauth',
      secure: this.session.secure,
      tlsAvailable: this.tlsAvailable,
      plaintextAllowed: this.plaintextAllowed(),
      maxMessageSize: this.opts.limits.maxMessageSize,
      mechanisms: this.session.state === 'notauth' ? mechanismsFor(this.authFacts(), this.auth) : [],
      compressed: this.compressed,
    });
  }

  /** For SASL (src/auth): TLS state and channel binding of this connection. */
  private authFacts(): ConnectionFacts {
    const facts: ConnectionFacts = { remoteAddress: this.session.remoteAddress, secure: this.session.secure, plaintextAllowed: this.plaintextAllowed() };
    if (this.socket instanceof tls.TLSSocket) facts.channelBinding = tlsChannelBinding(this.socket);
    return facts;
  }

  private plaintextAllowed(): boolean {
    if (this.session.secure) return true;
    const mode = this.opts.plaintextAuth;
    if (mode === 'always') return true;
    if (mode === 'never') return false;
    const a = this.session.remoteAddress;
    return a === '::1' || a.startsWith('127.') || a.startsWith('::ffff:127.');
  }

  private bind(socket: Duplex): void {
    const onData = (chunk: Buffer) => {
      this.decoder.push(chunk);
      if (this.decoder.bufferedBytes > READ_HIGH_WATER) socket.pause();
      this.resetTimer();
      this.watchLiteral();
      this.wake();
    };
    const onEnd = () => this.destroy();
    socket.on('data', onData);
    socket.on('error', onEnd);
    socket.on('close', onEnd);
    socket.on('end', onEnd);
    this.unbind = () => {
      socket.off('data', onData);
      socket.off('error', onEnd);
      socket.off('close', onEnd);
      socket.off('end', onEnd);
    };
  }

  start(): void {
    this.obs.connectionOpened(this.session.secure);
    if (this.tlsInfo) this.obs.tlsEstablished('implicit', this.tlsInfo);
    this.resetTimer();
    // One byte every few seconds resets the idle timer forever; this one is not reset (cf. Dovecot's login timeout).
    this.deadline = setTimeout(() => {
      this.opts.log.info('login deadline passed; closing', { id: this.session.id, address: this.session.remoteAddress });
      this.write('* BYE Login took too long\r\n');
      this.destroy();
    }, this.opts.timeouts.preAuthDeadlineMs);
    this.deadline.unref();
    this.write(`* OK [CAPABILITY ${this.capabilities().join(' ')}] ${this.opts.serverName} ready\r\n`);
    void this.loop().catch((e) => {
      this.obs.log.error('connection loop failed', { error: e instanceof Error ? e.stack : String(e) });
      this.closeReason = 'internal error';
      this.destroy();
    });
  }

  // ---- output

  private write(data: string | Buffer): void {
    if (this.closed) return;
    this.output.write(data);
    this.checkSlow();
  }

  /** An idle client that does not read what is pushed to it is disconnected, not buffered for without bound. */
  private checkSlow(): void {
    if (!this.closed && !this.output.corked && this.idling && this.outputBytes > MAX_PENDING_OUTPUT) {
      this.obs.log.warn('client too slow; closing');
      this.closeReason = 'too slow';
      this.destroy();
    }
  }

  private cork(): void {
    this.output.cork();
  }

  private uncork(): void {
    this.output.uncork();
  }

  // ---- input

  private wake(): void {
    const w = this.dataWaiter;
    this.dataWaiter = null;
    w?.();
  }

  private waitForData(): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.socket.isPaused() && this.decoder.bufferedBytes < READ_HIGH_WATER / 2) this.socket.resume();
    return new Promise((resolve) => { this.dataWaiter = resolve; });
  }

  /** A decoder event taken by commandWaiting() and not yet handled. */
  private peeked: DecoderEvent | null = null;

  /** True when the client's next command is complete in the decoder already (it is kept for the loop). */
  private commandWaiting(): boolean {
    this.peeked ??= this.decoder.next();
    return this.peeked?.type === 'command';
  }

  private async nextEvent(): Promise<DecoderEvent | null> {
    for (;;) {
      if (this.closed) return null;
      const ev = this.peeked ?? this.decoder.next();
      this.peeked = null;
      if (ev) return ev;
      await this.waitForData();
    }
  }

  private async readLine(): Promise<Buffer> {
    this.uncork();
    this.decoder.expectLine();
    const ev = await this.nextEvent();
    // The client went away mid-command (e.g. during IDLE): not a server error.
    if (!ev) throw new ImapError('BAD', 'Connection closed');
    if (ev.type === 'line') return ev.line;
    if (ev.type === 'error') {
      if (ev.fatal) this.destroy();
      throw new ImapError('BAD', ev.message, ev.code);
    }
    throw new Error('unexpected decoder event');
  }

  private async loop(): Promise<void> {
    let slice = performance.now();
    while (!this.closed) {
      if (performance.now() - slice > PIPELINE_SLICE_MS) {
        await new Promise((r) => setImmediate(r));
        slice = performance.now();
      }
      const ev = await this.nextEvent();
      if (!ev) return;
      if (ev.type === 'continue') {
        this.write('+ Ready for literal data\r\n');
        this.watchLiteral();
        continue;
      }
      if (ev.type === 'line') continue; // not expected outside IDLE/AUTHENTICATE
      if (ev.type === 'error') {
        const code = ev.code;
        if (ev.fatal) {
          this.closeReason = 'protocol error';
          this.write(`* BYE [${code}] ${responseText(ev.message)}\r\n`);
          this.destroy();
          return;
        }
        this.badCount++;
        if (ev.tag) this.write(`${ev.tag} BAD [${code}] ${responseText(ev.message)}\r\n`);
        else this.write(`* BAD [${code}] ${responseText(ev.message)}\r\n`);
        if (this.tooManyBad()) {
          this.write('* BYE Too many invalid commands\r\n');
          this.destroy();
          return;
        }
        continue;
      }
      this.commandCount++;
      const max = this.opts.limits.maxCommandsPerConnection;
      if (max > 0 && this.commandCount > max) {
        this.write('* BYE [LIMIT] Too many commands on this connection\r\n');
        this.destroy();
        return;
      }
      const ctx: CommandContext = { ...this.ctxBase, tag: ev.tag, name: ev.name };
      // A client that pipelines commands but does not read the answers gets no
      // more work done until it does: output memory stays bounded.
      if (this.socket.writableNeedDrain) await this.output.waitDrain();
      await this.pushes.settled();
      if (this.closed) return;
      this.cork();
      const started = process.hrtime.bigint();
      this.command = ev.name;
      this.progress.start(ev.tag, ev.name);
      const res = await dispatch(ctx, ev.args, this.obs.log).finally(() => this.progress.stop());
      await this.pushes.settled(); // one started during IDLE ends before the tagged reply
      this.command = null;
      this.observe(ev.name, ev.args, res, started);
      if (this.closed) return;
      if (res.status === 'BAD') {
        this.badCount++;
        if (this.tooManyBad()) {
          this.write(`${res.tagged}\r\n* BYE Too many invalid commands\r\n`);
          this.destroy();
          return;
        }
      } else {
        // Consecutive errors count, not a lifetime total: a long session with an
        // occasional mistake is never cut off; a client that only sends garbage is.
        this.badCount = 0;
      }
      if (this.tlsAfter) {
        this.tlsAfter = false;
        this.uncork();
        this.upgrade(res.tagged);
        continue;
      }
      if (this.compressAfter) {
        this.compressAfter = false;
        this.uncork();
        this.startCompression(res.tagged);
        continue;
      }
      this.write(`${res.tagged}\r\n`);
      // A burst of pipelined commands is answered in one write: the output stays gathered while the
      // next command is already here (within the slice); anything else uncorks (output.ts).
      if (this.closeAfter || performance.now() - slice > PIPELINE_SLICE_MS || !this.commandWaiting()) this.uncork();
      this.pushes.kick();
      if (this.closeAfter) {
        this.closeReason = 'logout';
        this.socket.end();
        this.closed = true;
        this.cleanup();
        return;
      }
    }
  }

  /** Metrics and the auth log line for one finished command (src/obs/session.ts). */
  private observe(name: string, args: Token[], res: { tagged: string; status: string }, started: bigint): void {
    // Label values from the registry only: a client cannot mint series with made-up command names.
    this.obs.commandDone(COMMANDS.has(name) ? name : 'UNKNOWN', res.status, Number(process.hrtime.bigint() - started) / 1e9);
    // Our own tagged line: `tag STATUS [CODE] text`. Only a failure's code is used (SERVERBUG is a NO; a
    // failed login's reason), so an OK, most commands, is not matched at all.
    const code = res.status === 'OK' ? undefined : TAGGED_CODE.exec(res.tagged)?.[1];
    if (code === 'SERVERBUG') this.obs.internalError();
    if (name !== 'LOGIN' && name !== 'AUTHENTICATE') return;
    let mechanism = 'LOGIN';
    if (name === 'AUTHENTICATE') {
      const a = args[0];
      const m = a?.kind === 'atom' ? a.value.toUpperCase() : '';
      mechanism = KNOWN_MECHANISMS.has(m) ? m : 'other';
    }
    const ok = res.status === 'OK' && this.session.user !== null;
    this.obs.auth(ok, {
      mechanism,
      user: ok ? this.session.user!.name : this.authUser,
      reason: ok ? undefined : authFailureReason(code),
      remote: this.session.remoteAddress,
    });
    this.authUser = null;
  }

  /** Garbage before authentication gets a clean BYE quickly (STYLE.md habit 15). */
  private tooManyBad(): boolean {
    const limit = this.session.state === 'notauth' ? Math.min(PRE_AUTH_MAX_BAD, this.opts.limits.maxBadCommands) : this.opts.limits.maxBadCommands;
    return this.badCount >= limit;
  }

  // ---- STARTTLS (RFC 9051 §6.2.1)

  private upgrade(taggedOk: string): void {
    // STARTTLS comes before login and COMPRESS after it: the socket is still the TCP one here.
    const raw = this.socket as net.Socket;
    raw.removeAllListeners('data');
    raw.removeAllListeners('end');
    raw.removeAllListeners('close');
    raw.removeAllListeners('error');
    raw.pause();
    // Anything the client pipelined after STARTTLS is discarded (RFC 9051 §11.1).
    this.decoder.discardBuffered();
    raw.write(`${taggedOk}\r\n`);
    // The handshake has its own deadline (and the pre-auth deadline still runs); failure closes the connection.
    void serverHandshake(raw, {
      secureContext: this.hooks.secureContext,
      alpn: this.hooks.alpn,
      timeoutMs: this.opts.timeouts.tlsHandshakeMs,
      onFailure: (reason, err) => {
        this.opts.log.info(`STARTTLS: ${reason}`, { id: this.session.id, address: this.session.remoteAddress, error: err?.message });
        this.destroy();
      },
    }).then((secure) => {
      if (!secure || this.closed) return;
      this.socket = secure;
      this.session.secure = true;
      this.bind(secure);
      this.tlsInfo = tlsInfoOf(secure);
      this.obs.tlsEstablished('starttls', this.tlsInfo);
      this.resetTimer();
    });
  }

  // ---- COMPRESS=DEFLATE (RFC 4978 §3)

  private startCompression(taggedOk: string): void {
    const t = this.socket;
    this.unbind();
    t.pause();
    // The client MUST NOT send anything before it has seen the OK (RFC 4978 §3):
    // bytes it pipelined are neither plain commands nor known to be compressed.
    this.decoder.discardBuffered();
    // "the server MUST compress starting immediately after the CRLF which ends the tagged OK".
    t.write(`${taggedOk}\r\n`);
    const z = new DeflateStream(t, (why) => this.compressionFailed(why));
    this.socket = z;
    this.compressed = true;
    this.bind(z);
    this.obs.log.debug('compression started', { mechanism: 'DEFLATE' });
  }

  /** A decompression bomb or a corrupt stream: BYE (compressed, the client's decoder is fine) and close; other connections are unaffected. */
  private compressionFailed(why: CompressViolation): void {
    this.closeReason = why;
    this.obs.log.warn('compressed input rejected; closing', { reason: why });
    this.write(why === 'decompression limit' ? '* BYE [LIMIT] Compressed input expands too much\r\n' : '* BYE Invalid compressed data\r\n');
    this.destroy();
  }

  // ---- mailbox updates

  /**
   * Throws NO [LIMIT] when a per-user cap refuses the session: the login fails, the connection stays
   * usable. RFC 5530 LIMIT is "an implementation limit of some kind"; Dovecot answers the same case
   * `NO [UNAVAILABLE] Maximum number of connections from user+IP exceeded` and disconnects. Either
   * keeps clients from taking it for a wrong password (AUTHENTICATIONFAILED) and asking for another.
   */
  private attachUser(): void | Promise<void> {
    const userId = this.session.user!.id;
    const refused = this.hooks.onUserAttach(this, userId);
    if (refused instanceof Promise) return refused.then((r) => this.attached(userId, r));
    this.attached(userId, refused);
  }

  private attached(userId: number, refused: Refusal | null): void {
    if (refused === 'maxConnectionsPerUserAddress') throw no('Too many connections for this user from your address', 'LIMIT');
    if (refused) throw no('Too many connections for this user', 'LIMIT');
    // Closed while the answer was on its way: nothing to subscribe for (its slot went back at close).
    if (this.closed) throw no('Connection closed', 'UNAVAILABLE');
    this.unsubscribe = this.store.feed.subscribe(userId, (c) => this.updates.onChange(c));
  }

  private flushUpdates(allowExpunge: boolean): void | Promise<void> {
    return this.updates.flush(allowExpunge);
  }

  private setIdling(on: boolean): void {
    this.idling = on;
    if (on) this.uncork();
    if (on) this.pushes.kick(); // RFC 5465 §4: IDLE sends what NOTIFY asked for
    if (this.keepalive) clearInterval(this.keepalive);
    this.keepalive = null;
    if (on && this.opts.idleKeepaliveMs > 0) {
      // RFC 9051 §6.3.13: an untagged OK now and then keeps NAT state alive.
      this.keepalive = setInterval(() => this.write('* OK Still here\r\n'), this.opts.idleKeepaliveMs);
      this.keepalive.unref();
    }
  }

  // ---- lifetime

  private resetTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    const ms = this.session.state === 'notauth' ? this.opts.timeouts.preAuthMs : this.opts.timeouts.authenticatedMs;
    this.timer = setTimeout(() => {
      this.closeReason = 'idle timeout';
      this.write('* BYE Autologout; idle for too long\r\n');
      this.destroy();
    }, ms);
    this.timer.unref();
  }

  /** Starts the literal progress window when a literal is being received and none runs. */
  private watchLiteral(): void {
    if (this.literalTimer || this.closed) return;
    const pending = this.decoder.literalPending;
    if (pending <= 0) return;
    this.literalPendingAtWindow = pending;
    this.literalTimer = setTimeout(() => {
      this.literalTimer = null;
      const now = this.decoder.literalPending;
      if (now <= 0) return;
      const got = this.literalPendingAtWindow - now;
      if (got < Math.min(LITERAL_MIN_BYTES_PER_WINDOW, this.literalPendingAtWindow)) {
        this.opts.log.info('literal data too slow; closing', { id: this.session.id, address: this.session.remoteAddress, bytes: got, windowMs: this.opts.timeouts.literalProgressMs });
        this.write('* BYE Literal data arriving too slowly\r\n');
        this.destroy();
        return;
      }
      this.watchLiteral();
    }, this.opts.timeouts.literalProgressMs);
    this.literalTimer.unref();
  }

  private clearDeadline(): void {
    if (this.deadline) clearTimeout(this.deadline);
    this.deadline = null;
  }

  private cleanup(): void {
    this.clearDeadline();
    if (this.literalTimer) clearTimeout(this.literalTimer);
    this.literalTimer = null;
    if (this.timer) clearTimeout(this.timer);
    if (this.keepalive) clearInterval(this.keepalive);
    this.timer = null;
    this.keepalive = null;
    this.progress.stop();
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.obs.connectionClosed({
      bytesIn: this.rawSocket.bytesRead,
      bytesOut: this.rawSocket.bytesWritten,
      commands: this.commandCount,
      user: this.session.user?.name ?? null,
      tls: this.tlsInfo,
      reason: this.closeReason,
    });
    this.hooks.onClose(this);
    this.wake();
  }

  destroy(): void {
    if (this.closed) return;
    this.uncork();
    this.closed = true;
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1000).unref();
    this.cleanup();
  }

  /** What `quire who` and the connection gauge show of this connection. */
  info(): { session: string; user: string | null; remote: string; protocol: 'imap'; state: string; since: Date; mailbox: string | null; tls: boolean; pendingUpdates: number } {
    return {
      session: this.session.id,
      user: this.session.user?.name ?? null,
      remote: this.session.remoteAddress,
      protocol: 'imap',
      state: this.idling ? 'idle' : this.session.state,
      since: this.obs.since,
      mailbox: this.session.selected?.mailboxName ?? null,
      tls: this.session.secure,
      pendingUpdates: this.session.selected?.pendingEntries ?? 0,
    };
  }

  /** Ends the connection on an admin's request (`quire kick`, `quire user del`). */
  kick(reason: string): void {
    if (this.closed) return;
    this.closeReason = reason;
    this.write(`* BYE ${responseText(reason)}\r\n`);
    this.destroy();
  }

  /** Bytes written to this client and not yet handed to the kernel. */
  get outputBytes(): number {
    if (this.closed) return 0;
    // With COMPRESS, bytes inside the compressor and the TLS/TCP layer below it count, too.
    const below = this.socket instanceof DeflateStream ? this.socket.queuedBytes : 0;
    return this.socket.writableLength + below + this.output.gathered;
  }

  /** Server shutdown: say goodbye. */
  shutdown(): void {
    this.closeReason = 'server shutdown';
    this.write('* BYE Server shutting down\r\n');
    this.destroy();
  }
}

function tlsInfoOf(s: tls.TLSSocket): TlsInfo {
  return { version: s.getProtocol() ?? null, cipher: s.getCipher()?.name ?? null };
}
