// POP3 listeners: plain with STLS (RFC 2595 §4) and implicit TLS (RFC 8314),
// over the same store and authenticator as IMAP, with the same TLS floor,
// connection limits and brute-force delays. ALPN (RFC 7301): we offer only
// "pop3", so a client that offers ALPN but not "pop3" is refused (the
// no_application_protocol alert); clients that offer no ALPN are accepted.
// (When src/server gains a shared TLS helper, these options move there.)

import net from 'node:net';
import tls from 'node:tls';
import type { Authenticator } from '../auth/authenticator.js';
import type { MailStore } from '../store/types.js';
import type { ListenAddress } from '../server/options.js';
import { POP3_LOGIN_DELAY_TRACKED, POP3_TLS_HANDSHAKE_MS } from './limits.js';
import type { Pop3Options } from './options.js';
import { Pop3Session, type Pop3Hooks, type Pop3Io } from './session.js';
import { LocalMaildropLocks } from './lock.js';
import { proxyGate, socketPeer, type PeerEndpoint } from '../server/proxy-protocol.js';
import { serverHandshake } from '../server/tls.js';

/** RFC 7301 ALPN identifier of POP3 (IANA registry). */
export const POP3_ALPN = 'pop3';
/** Oldest TLS version offered, as for IMAP (RFC 8996). */
const TLS_MIN_VERSION: tls.SecureVersion = 'TLSv1.2';
/** How long shutdown lets an UPDATE in progress finish before closing its connection. */
const SHUTDOWN_GRACE_MS = 5000;

export interface RunningPop3 {
  addresses: { pop3: ListenAddress[]; pop3s: ListenAddress[] };
  connectionCount(): number;
  close(): Promise<void>;
}

function listen(server: net.Server, addr: ListenAddress): Promise<ListenAddress> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(addr.port, addr.host, () => {
      server.off('error', reject);
      resolve({ host: addr.host, port: (server.address() as net.AddressInfo).port });
    });
  });
}

/** A session's view of its socket, which STLS swaps for a TLS socket. */
class SocketIo implements Pop3Io {
  session!: Pop3Session;
  private closed = false;

  constructor(
    private socket: net.Socket,
    public secure: boolean,
    private readonly secureContext: tls.SecureContext,
    private readonly log: Pop3Options['log'],
    private readonly onGone: () => void,
    /** The client as the PROXY header named it, else the socket's peer. */
    private readonly peer: string,
  ) {}

  get remoteAddress(): string {
    return this.peer;
  }

  bind(): void {
    const s = this.socket;
    s.on('data', (d: Buffer) => this.session.receive(d));
    s.on('error', (err) => this.log.debug('POP3 socket error', { error: err.message }));
    s.on('close', () => this.gone());
    s.on('end', () => this.gone());
  }

  private gone(): void {
    if (this.closed) return;
    this.closed = true;
    this.onGone();
  }

  write(data: string | Buffer): void {
    if (!this.closed && !this.socket.destroyed) this.socket.write(data);
  }

  writeParts(parts: Buffer[], written?: () => void): void {
    if (this.closed || this.socket.destroyed) return written?.();
    const s = this.socket;
    s.cork();
    const last = parts.length - 1;
    // The callback of the last piece runs once all were handed to the kernel, or failed (socket destroyed).
    for (let i = 0; i < last; i++) if (parts[i]!.length > 0) s.write(parts[i]!);
    if (last >= 0) s.write(parts[last]!, written && (() => written()));
    else written?.();
    s.uncork();
  }

  cork(): void {
    if (!this.closed && !this.socket.destroyed) this.socket.cork();
  }

  uncork(): void {
    if (!this.socket.destroyed) this.socket.uncork();
  }

  get queuedBytes(): number {
    return this.closed ? 0 : this.socket.writableLength;
  }

  get congested(): boolean {
    return !this.closed && this.socket.writableNeedDrain;
  }

  waitDrain(timeoutMs: number): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    if (!this.socket.writableNeedDrain) return Promise.resolve(true);
    return new Promise((resolve) => {
      const s = this.socket;
      const done = (ok: boolean) => {
        clearTimeout(timer);
        s.off('drain', onDrain);
        s.off('close', onClose);
        resolve(ok && !this.closed);
      };
      const onDrain = () => done(true);
      const onClose = () => done(false);
      const timer = setTimeout(() => done(false), timeoutMs);
      timer.unref();
      s.on('drain', onDrain);
      s.on('close', onClose);
    });
  }

  end(): void {
    this.closed = true;
    const s = this.socket;
    s.end();
    // A client that never reads its last response must not hold the socket.
    setTimeout(() => s.destroy(), 1000).unref();
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  startTls(): Promise<boolean> {
    const raw = this.socket;
    // The +OK must reach the client before the handshake (a pipelined STLS was answered corked).
    while (raw.writableCorked > 0) raw.uncork();
    raw.removeAllListeners('data');
    raw.removeAllListeners('end');
    raw.removeAllListeners('close');
    raw.removeAllListeners('error');
    return new Promise((resolve) => {
      const secure = new tls.TLSSocket(raw, { isServer: true, secureContext: this.secureContext, ALPNProtocols: [POP3_ALPN] });
      let settled = false;
      const finish = (ok: boolean, why?: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (!ok) {
          this.log.debug('POP3 STLS handshake failed', { reason: why });
          secure.destroy();
          raw.destroy();
          this.gone();
        }
        resolve(ok);
      };
      const timer = setTimeout(() => finish(false, 'timeout'), POP3_TLS_HANDSHAKE_MS);
      timer.unref();
      secure.once('secure', () => {
        this.socket = secure;
        this.secure = true;
        this.bind();
        finish(true);
      });
      secure.on('error', (err) => finish(false, err.message));
      raw.once('close', () => finish(false, 'closed'));
    });
  }
}

export async function startPop3(store: MailStore, auth: Authenticator, opts: Pop3Options): Promise<RunningPop3> {
  const secureContext = tls.createSecureContext({ key: opts.tls.key, cert: opts.tls.cert, minVersion: TLS_MIN_VERSION });
  const sessions = new Set<Pop3Session>();
  const perUser = new Map<number, number>();
  const userOf = new Map<Pop3Session, number>();
  // RFC 1939 §8 locks: the store's (PostgreSQL: across nodes), this process's, or the cluster primary's (lock.ts).
  const locks = opts.locks ?? new LocalMaildropLocks();
  const lockedBy = new Map<Pop3Session, number>();
  const lastLogin = new Map<number, number>();

  const hooks: Pop3Hooks = {
    attachUser(session, userId) {
      const n = perUser.get(userId) ?? 0;
      if (n >= opts.limits.maxConnectionsPerUser) return false;
      perUser.set(userId, n + 1);
      userOf.set(session, userId);
      return true;
    },
    lock(session, userId) {
      // Released at close whatever the answer: a grant that arrives after the session went is undone too.
      lockedBy.set(session, userId);
      return locks.acquire(userId, session.id, () => session.lockLost());
    },
    async unlock(session) {
      const locked = lockedBy.get(session);
      if (locked === undefined) return;
      lockedBy.delete(session);
      await locks.release(locked, session.id);
    },
    loginDelayLeft(userId) {
      const delay = opts.loginDelaySeconds * 1000;
      if (delay <= 0) return 0;
      const now = Date.now();
      const last = lastLogin.get(userId);
      if (last !== undefined && now - last < delay) return Math.ceil((delay - (now - last)) / 1000);
      lastLogin.delete(userId);
      lastLogin.set(userId, now);
      while (lastLogin.size > POP3_LOGIN_DELAY_TRACKED) lastLogin.delete(lastLogin.keys().next().value as number);
      return 0;
    },
    onClose(session) {
      sessions.delete(session);
      const locked = lockedBy.get(session);
      if (locked !== undefined) {
        lockedBy.delete(session);
        void Promise.resolve(locks.release(locked, session.id)).catch((err: unknown) => opts.log.warn('POP3 maildrop lock release failed', { id: session.id, error: String(err) }));
      }
      const u = userOf.get(session);
      if (u === undefined) return;
      userOf.delete(session);
      const n = (perUser.get(u) ?? 1) - 1;
      if (n <= 0) perUser.delete(u);
      else perUser.set(u, n);
    },
  };

  const open = (socket: net.Socket, secure: boolean, peer: PeerEndpoint) => {
    let session: Pop3Session | null = null;
    const io = new SocketIo(socket, secure, secureContext, opts.log, () => session?.close(), peer.remoteAddress);
    session = new Pop3Session(io, store, auth, opts, hooks);
    io.session = session;
    sessions.add(session);
    io.bind();
    // A socket that came through the PROXY gate was paused there, its bytes after the header put back.
    socket.resume();
    session.greet();
  };

  // PROXY protocol first (src/server/proxy-protocol.ts), then the cap, then (POP3S) the TLS handshake.
  const gates = { pop3: proxyGate(opts.proxyProtocol?.pop3, opts.log, 'pop3'), pop3s: proxyGate(opts.proxyProtocol?.pop3s, opts.log, 'pop3s') };
  const admitted = (socket: net.Socket, implicitTls: boolean, peer: PeerEndpoint) => {
    if (sessions.size >= opts.limits.maxConnections) {
      if (implicitTls) socket.destroy();
      else socket.end('-ERR [SYS/TEMP] Too many connections, try again later\r\n');
      return;
    }
    if (!implicitTls) {
      open(socket, false, peer);
      return;
    }
    void serverHandshake(socket, {
      secureContext,
      alpn: [POP3_ALPN],
      timeoutMs: POP3_TLS_HANDSHAKE_MS,
      onFailure: (reason, err) => opts.log.debug('POP3 TLS handshake failed', { reason, error: err?.message }),
    }).then((t) => {
      if (t && !t.destroyed) open(t, true, peer);
    });
  };
  const accept = (socket: net.Socket, implicitTls: boolean) => {
    socket.on('error', () => {});
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 60_000);
    const gate = implicitTls ? gates.pop3s : gates.pop3;
    if (gate) gate.accept(socket, (peer) => admitted(socket, implicitTls, peer));
    else admitted(socket, implicitTls, socketPeer(socket));
  };

  const servers: net.Server[] = [];
  const pop3: ListenAddress[] = [];
  const pop3s: ListenAddress[] = [];
  try {
    for (const addr of opts.pop3) {
      const s = net.createServer((sock) => accept(sock, false));
      servers.push(s);
      pop3.push(await listen(s, addr));
    }
    for (const addr of opts.pop3s) {
      // A plain TCP server and src/server/tls.ts's handshake, as for IMAPS: a PROXY header precedes the ClientHello.
      const s = net.createServer((sock) => accept(sock, true));
      servers.push(s);
      pop3s.push(await listen(s, addr));
    }
  } catch (err) {
    for (const s of servers) s.close();
    throw err;
  }
  for (const s of servers) s.on('error', (err) => opts.log.error('POP3 listener error', { error: err.message }));

  return {
    addresses: { pop3, pop3s },
    connectionCount: () => sessions.size,
    async close() {
      const closing = servers.map((s) => new Promise<void>((r) => s.close(() => r())));
      gates.pop3?.destroyPending();
      gates.pop3s?.destroyPending();
      await Promise.all(
        [...sessions].map(async (session) => {
          // An UPDATE in progress (expunging DELE'd messages) finishes and answers first.
          await Promise.race([session.whenIdle(), new Promise((r) => setTimeout(r, SHUTDOWN_GRACE_MS).unref())]);
          session.shutdown();
        }),
      );
      await Promise.all(closing);
    },
  };
}

/** What `quire serve` calls: starts the listeners when any is configured (options null: POP3 off). */
export async function startPop3IfConfigured(store: MailStore, auth: Authenticator, opts: Pop3Options | null): Promise<RunningPop3 | null> {
  return opts ? startPop3(store, auth, opts) : null;
}

/** Lines for the start-up banner of `quire serve`. */
export function pop3Banner(p: RunningPop3 | null): string[] {
  const fmt = (a: ListenAddress) => (a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`);
  return [...(p?.addresses.pop3 ?? []).map((a) => `  POP3 (STLS):       ${fmt(a)}`), ...(p?.addresses.pop3s ?? []).map((a) => `  POP3S (TLS):       ${fmt(a)}`)];
}
