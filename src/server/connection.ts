// One client connection: socket -> decoder -> dispatcher -> socket, one
// command at a time in arrival order (pipelined commands wait their turn),
// with backpressure both ways, STARTTLS, timeouts and limits.
import net from 'node:net';
import tls from 'node:tls';
import { CommandDecoder, PRE_AUTH_DECODER_LIMITS, DEFAULT_DECODER_LIMITS, responseText } from '../wire/index.js';
import type { DecoderEvent, DecoderLimits } from '../wire/types.js';
import { Session } from '../session/session.js';
import { dispatch } from '../commands/dispatch.js';
import { capabilities } from '../commands/registry.js';
import { flagsOf } from '../commands/format.js';
import { ImapError, type CommandContext, type ConnectionControl, type Output } from '../commands/types.js';
import type { Change, MailStore } from '../store/types.js';
import type { Authenticator } from '../auth/authenticator.js';
import type { ServerOptions } from './options.js';
import { contextsPending, linesAfterFlush, linesBeforeFlush, refreshContexts } from '../commands/context.js';

/** Pause reading when this many unparsed bytes wait in the decoder. */
const READ_HIGH_WATER = 1024 * 1024;
/** Mailboxes whose \Recent claims are remembered in memory (cleared when full: the store still arbitrates). */
const MAX_RECENT_CLAIMS = 100_000;
/** Invalid commands tolerated before authentication: a real client sends none. */
const PRE_AUTH_MAX_BAD = 3;
/** Untagged responses queued for an idle client before it is disconnected as too slow. */
const MAX_PENDING_OUTPUT = 4 * 1024 * 1024;

export interface ConnectionHooks {
  onUserAttach(conn: Connection, userId: number): boolean;
  onClose(conn: Connection): void;
  secureContext: tls.SecureContext;
  /**
   * Per mailbox, the highest UID some session of this process has already
   * claimed as \Recent: the other sessions skip the store call (with 1,000
   * IDLE clients on a mailbox, one claim per delivery instead of 1,000).
   */
  recentClaims: Map<number, number>;
}

let nextId = 1;

export class Connection {
  readonly session: Session;
  private socket: net.Socket;
  private readonly decoder: CommandDecoder;
  private dataWaiter: (() => void) | null = null;
  private closed = false;
  private idling = false;
  private closeAfter = false;
  private tlsAfter = false;
  private badCount = 0;
  private commandCount = 0;
  private timer: NodeJS.Timeout | null = null;
  private keepalive: NodeJS.Timeout | null = null;
  private unsubscribe: (() => void) | null = null;
  /** \Recent claims in flight for appended messages (see onChange). */
  private claims: Promise<void> = Promise.resolve();
  private corked = false;
  private readonly ctxBase: Omit<CommandContext, 'tag' | 'name'>;

  constructor(
    socket: net.Socket,
    secure: boolean,
    private readonly tlsAvailable: boolean,
    private readonly store: MailStore,
    private readonly auth: Authenticator,
    private readonly opts: ServerOptions,
    private readonly hooks: ConnectionHooks,
  ) {
    this.socket = socket;
    const remote = socket.remoteAddress ?? 'unknown';
    this.session = new Session(`c${nextId++}`, remote, secure);
    this.decoder = new CommandDecoder(this.preAuthLimits());
    const out: Output = {
      untagged: (text) => this.untagged(text),
      raw: (data) => this.write(data),
      continuation: (text) => {
        this.write(`+ ${responseText(text)}\r\n`);
        this.uncork();
      },
      drain: () => this.drain(),
      readLine: () => this.readLine(),
    };
    const conn: ConnectionControl = {
      startTls: () => { this.tlsAfter = true; },
      tlsAvailable: this.tlsAvailable,
      closeAfterReply: () => { this.closeAfter = true; },
      setIdling: (on) => this.setIdling(on),
      authenticated: () => {
        this.decoder.setLimits(this.postAuthLimits());
        this.resetTimer();
      },
    };
    this.ctxBase = {
      session: this.session,
      store,
      auth,
      out,
      conn,
      limits: opts.limits,
      serverName: opts.serverName,
      admins: opts.admins ?? [],
      capabilities: () => this.capabilities(),
      plaintextAllowed: () => this.plaintextAllowed(),
      attachUser: () => this.attachUser(),
      flushUpdates: (allowExpunge) => this.flushUpdates(allowExpunge),
      settled: () => this.claims,
    };
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
    });
  }

  private plaintextAllowed(): boolean {
    if (this.session.secure) return true;
    const mode = this.opts.plaintextAuth;
    if (mode === 'always') return true;
    if (mode === 'never') return false;
    const a = this.session.remoteAddress;
    return a === '::1' || a.startsWith('127.') || a.startsWith('::ffff:127.');
  }

  private bind(socket: net.Socket): void {
    socket.on('data', (chunk: Buffer) => {
      this.decoder.push(chunk);
      if (this.decoder.bufferedBytes > READ_HIGH_WATER) socket.pause();
      this.resetTimer();
      this.wake();
    });
    socket.on('error', () => this.destroy());
    socket.on('close', () => this.destroy());
    socket.on('end', () => this.destroy());
  }

  start(): void {
    this.resetTimer();
    this.write(`* OK [CAPABILITY ${this.capabilities().join(' ')}] ${this.opts.serverName} ready\r\n`);
    void this.loop().catch((e) => {
      this.opts.log.error('connection loop failed', { id: this.session.id, error: e instanceof Error ? e.stack : String(e) });
      this.destroy();
    });
  }

  // ---- output

  private write(data: string | Buffer): void {
    if (this.closed) return;
    this.socket.write(data);
    if (this.idling && this.socket.writableLength > MAX_PENDING_OUTPUT) {
      this.opts.log.warn('client too slow; closing', { id: this.session.id });
      this.destroy();
    }
  }

  private untagged(text: string | (string | Buffer)[]): void {
    if (typeof text === 'string') this.write(`* ${text}\r\n`);
    else this.write(Buffer.concat([Buffer.from('* '), ...text.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : p)), Buffer.from('\r\n')]));
  }

  /**
   * While a command runs its output is corked: many small untagged responses
   * (a FETCH of 100k flags) leave in few large writes. The tagged reply, a
   * continuation request, IDLE and waiting for drain uncork.
   */
  private cork(): void {
    if (!this.corked && !this.closed) {
      this.socket.cork();
      this.corked = true;
    }
  }

  private uncork(): void {
    if (this.corked) {
      this.corked = false;
      this.socket.uncork();
    }
  }

  private async drain(): Promise<void> {
    const wasCorked = this.corked;
    this.uncork();
    await this.waitDrain();
    if (wasCorked) this.cork();
  }

  private waitDrain(): Promise<void> {
    if (this.closed || !this.socket.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
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

  private async nextEvent(): Promise<DecoderEvent | null> {
    for (;;) {
      if (this.closed) return null;
      const ev = this.decoder.next();
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
    while (!this.closed) {
      const ev = await this.nextEvent();
      if (!ev) return;
      if (ev.type === 'continue') {
        this.write('+ Ready for literal data\r\n');
        continue;
      }
      if (ev.type === 'line') continue; // not expected outside IDLE/AUTHENTICATE
      if (ev.type === 'error') {
        const code = ev.code;
        if (ev.fatal) {
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
      if (this.socket.writableNeedDrain) await this.waitDrain();
      if (this.closed) return;
      this.cork();
      const res = await dispatch(ctx, ev.args, this.opts.log);
      if (this.closed) return;
      if (res.status === 'BAD') {
        this.badCount++;
        if (this.tooManyBad()) {
          this.write(`${res.tagged}\r\n* BYE Too many invalid commands\r\n`);
          this.destroy();
          return;
        }
      }
      if (this.tlsAfter) {
        this.tlsAfter = false;
        this.uncork();
        this.upgrade(res.tagged);
        continue;
      }
      this.write(`${res.tagged}\r\n`);
      this.uncork();
      if (this.closeAfter) {
        this.socket.end();
        this.closed = true;
        this.cleanup();
        return;
      }
    }
  }

  /** Garbage before authentication gets a clean BYE quickly (STYLE.md habit 15). */
  private tooManyBad(): boolean {
    const limit = this.session.state === 'notauth' ? Math.min(PRE_AUTH_MAX_BAD, this.opts.limits.maxBadCommands) : this.opts.limits.maxBadCommands;
    return this.badCount >= limit;
  }

  // ---- STARTTLS (RFC 9051 §6.2.1)

  private upgrade(taggedOk: string): void {
    const raw = this.socket;
    raw.removeAllListeners('data');
    raw.removeAllListeners('end');
    raw.removeAllListeners('close');
    raw.removeAllListeners('error');
    raw.pause();
    // Anything the client pipelined after STARTTLS is discarded (RFC 9051 §11.1).
    this.decoder.discardBuffered();
    raw.write(`${taggedOk}\r\n`);
    const secure = new tls.TLSSocket(raw, { isServer: true, secureContext: this.hooks.secureContext });
    this.socket = secure;
    this.session.secure = true;
    this.bind(secure);
    secure.on('secure', () => this.resetTimer());
  }

  // ---- mailbox updates

  private attachUser(): void {
    const userId = this.session.user!.id;
    if (!this.hooks.onUserAttach(this, userId)) {
      this.write('* BYE [LIMIT] Too many connections for this user\r\n');
      this.destroy();
      return;
    }
    this.unsubscribe = this.store.feed.subscribe(userId, (c) => this.onChange(c));
  }

  private onChange(c: Change): void {
    const s = this.session;
    if ('mailboxId' in c && s.pendingSelect && s.pendingSelect.mailboxId === c.mailboxId) {
      s.pendingSelect.changes.push(c);
      return;
    }
    const view = s.selected;
    if (!view || !('mailboxId' in c) || c.mailboxId !== view.mailboxId) return;
    if (c.kind === 'append' || c.kind === 'flags' || c.kind === 'expunge') {
      view.enqueue(c);
      // RFC 5267 §4.3: searches kept up to date run again (their differences go out with the next flush).
      if (view.contexts.size > 0) this.queueContextRefresh();
      if (c.kind === 'append' && s.recentEnabled && !view.readOnly && this.claimFirst(view.mailboxId, c.messages)) {
        // RFC 3501 §2.3.2: a new message is \Recent in exactly one session: the
        // first to claim it. The claim completes before the EXISTS is flushed.
        const claim = this.store.claimRecent(view.mailboxId).then(
          (first) => {
            for (const m of c.messages) if (m.uid >= first) view.recent.add(m.uid);
          },
          () => undefined,
        );
        this.claims = this.claims.then(() => claim);
        if (this.idling) void claim.then(() => { if (this.idling) this.flushUpdates(true); });
        return;
      }
      if (this.idling) this.flushUpdates(true);
    } else if (c.kind === 'mailbox-rename') {
      view.mailboxName = c.name;
    } else if (c.kind === 'mailbox-delete') {
      // The selected mailbox is gone: nothing the client believes about it holds (RFC 2180 §3).
      this.write('* BYE Selected mailbox was deleted\r\n');
      this.destroy();
    }
  }

  /** True when no session of this process has claimed these new messages yet (and marks them as claimed). */
  private claimFirst(mailboxId: number, messages: readonly { uid: number }[]): boolean {
    let max = 0;
    for (const m of messages) if (m.uid > max) max = m.uid;
    const claims = this.hooks.recentClaims;
    if ((claims.get(mailboxId) ?? 0) >= max) return false;
    if (claims.size >= MAX_RECENT_CLAIMS) claims.clear();
    claims.set(mailboxId, max);
    return true;
  }

  /** One re-run of the update contexts after the claims in flight (coalesced: one queued at a time). */
  private contextRefreshQueued = false;
  private queueContextRefresh(): void {
    if (this.contextRefreshQueued) return;
    this.contextRefreshQueued = true;
    this.claims = this.claims.then(async () => {
      this.contextRefreshQueued = false;
      await refreshContexts(this.store, this.session).catch(() => undefined);
      if (this.idling) this.flushUpdates(true);
    });
  }

  private flushUpdates(allowExpunge: boolean): void {
    const view = this.session.selected;
    if (!view || (!view.hasPending && (view.contexts.size === 0 || !contextsPending(view)))) return;
    // RFC 5267 §4.3.4: REMOVEFROM for expunged messages before the EXPUNGE; §4.3.3: ADDTO after the EXISTS.
    const before = view.contexts.size > 0 ? linesBeforeFlush(view) : [];
    const flushed = view.flush(allowExpunge, {
      recentEnabled: this.session.recentEnabled,
      flagsOf: (m) => flagsOf(this.session, m),
      // RFC 7162 §3.2.4: MODSEQ in every FETCH once CONDSTORE is on;
      // §3.2.10.2: VANISHED instead of EXPUNGE once QRESYNC is enabled.
      condstore: this.session.condstore,
      vanished: this.session.qresync,
    });
    const lines = view.contexts.size > 0 ? [...before, ...flushed, ...linesAfterFlush(view)] : flushed;
    // One write (one system call) for the lot: an IDLE push to many clients costs one per client.
    if (lines.length === 1) this.write(`* ${lines[0]}\r\n`);
    else if (lines.length > 1) this.write(lines.map((l) => `* ${l}\r\n`).join(''));
  }

  private setIdling(on: boolean): void {
    this.idling = on;
    if (on) this.uncork();
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
      this.write('* BYE Autologout; idle for too long\r\n');
      this.destroy();
    }, ms);
    this.timer.unref();
  }

  private cleanup(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.keepalive) clearInterval(this.keepalive);
    this.timer = null;
    this.keepalive = null;
    this.unsubscribe?.();
    this.unsubscribe = null;
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

  /** Bytes written to this client and not yet handed to the kernel. */
  get outputBytes(): number {
    return this.closed ? 0 : this.socket.writableLength;
  }

  /** Server shutdown: say goodbye. */
  shutdown(): void {
    this.write('* BYE Server shutting down\r\n');
    this.destroy();
  }
}
