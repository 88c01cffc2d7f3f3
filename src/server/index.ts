// TCP and TLS listeners (RFC 8314 implicit TLS, RFC 9051 §6.2.1 STARTTLS).
// The store and authenticator arrive by injection from src/cli.
//
// Every accepted socket is counted (src/server/admission.ts) before anything
// else happens to it but a PROXY protocol header (src/server/proxy-protocol.ts,
// which names the address to count by, bounded on its own), a TLS handshake included, so that sockets stalled in a
// handshake count against the caps like any other; a handshake that fails or
// does not finish within timeouts.tlsHandshakeMs destroys its socket.
import net from 'node:net';
import { Connection } from './connection.js';
import { warmUpThreadAnswers } from '../commands/thread.js';
import { Admission, type AdmissionControl, type Refusal, type Ticket } from './admission.js';
import { ALPN, createServerContext, serverHandshake } from './tls.js';
import type { MailStore } from '../store/types.js';
import type { Authenticator } from '../auth/authenticator.js';
import type { ListenAddress, Logger, ServerOptions } from './options.js';
import { processMetrics } from '../obs/metrics.js';
import { proxyGate, socketPeer, type PeerEndpoint } from './proxy-protocol.js';

/** One live session as `quire who` shows it. */
export interface SessionInfo {
  session: string;
  user: string | null;
  remote: string;
  protocol: string;
  state: string;
  since: Date;
  mailbox: string | null;
  tls: boolean;
  /** Mailbox updates queued for the selected session and not yet sent (src/session/view.ts pendingEntries; tests, `quire who`). */
  pendingUpdates?: number;
}

export interface RunningServer {
  close(): Promise<void>;
  addresses: { imap: ListenAddress[]; imaps: ListenAddress[] };
  /** Live connection count, TLS handshakes in progress included (for metrics and tests). */
  connectionCount(): number;
  /** Live unauthenticated connections, TLS handshakes in progress included. */
  preAuthCount(): number;
  /** Output queued for slow clients, summed over connections (for metrics and tests). */
  bufferedOutputBytes(): number;
  /**
   * Re-reads the config-derived options and the TLS certificate through
   * ServerOptions.reload: new handshakes use the new certificate, live
   * connections keep theirs. Rejects (changing nothing) if the new material is invalid.
   */
  reload?(): Promise<void>;
  /** Live sessions (for `quire who`). */
  sessions?(): SessionInfo[];
  /** Ends every session of `user` (`quire kick`, `quire user del`); resolves to how many. */
  kick?(user: string, reason?: string): number;
}

/** The ALPN identifiers offered by the IMAP listeners (RFC 7301; IANA registers "imap"). */
export const IMAP_ALPN: readonly string[] = [ALPN.imap];

/** At most one log line per refusal reason in this interval, so that a flood of refused sockets cannot flood the log. */
const REFUSAL_LOG_INTERVAL_MS = 10_000;

/** What a refused socket on the plain port is told before it is closed (RFC 9051 §7.1.5: BYE as the greeting). */
const REFUSAL_TEXT: Record<Refusal, string> = {
  maxConnections: 'Too many connections, try again later',
  maxPreAuthConnections: 'Too many connections waiting to log in, try again later',
  maxPreAuthConnectionsPerAddress: 'Too many unauthenticated connections from your address',
  maxConnectionsPerUser: 'Too many connections for this user',
  maxConnectionsPerUserAddress: 'Too many connections for this user from your address',
};

function listen(server: net.Server, addr: ListenAddress): Promise<ListenAddress> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(addr.port, addr.host, () => {
      server.off('error', reject);
      const a = server.address() as net.AddressInfo;
      resolve({ host: addr.host, port: a.port });
    });
  });
}

/** Logs refusals at info, at most once per reason per interval, with the count refused since the last line. */
export function refusalLogger(log: Logger, what: string): (reason: string, fields: Record<string, unknown>) => void {
  const last = new Map<string, { at: number; suppressed: number }>();
  return (reason, fields) => {
    const now = Date.now();
    const l = last.get(reason);
    if (l && now - l.at < REFUSAL_LOG_INTERVAL_MS) {
      l.suppressed++;
      return;
    }
    last.set(reason, { at: now, suppressed: 0 });
    log.info(`${what} refused`, { limit: reason, ...fields, ...(l?.suppressed ? { refusedSinceLastLog: l.suppressed } : {}) });
  };
}

export async function startServer(store: MailStore, auth: Authenticator, opts: ServerOptions): Promise<RunningServer> {
  const secureContext = createServerContext(opts.tls);
  // The first THREAD after a start formats its answer with compiled code (commands/thread.ts).
  warmUpThreadAnswers();
  const connections = new Set<Connection>();
  // A cluster worker's counts are partly the primary's (src/server/admission.ts ClusterAdmission).
  const admission: AdmissionControl = opts.admission?.(() => opts.limits) ?? new Admission(() => opts.limits);
  const tickets = new Map<Connection, Ticket>();
  const refused = refusalLogger(opts.log, 'IMAP connection');
  /** Sockets in their implicit-TLS handshake: not Connections yet, but closed by close() all the same. */
  const handshaking = new Set<net.Socket>();
  const hooks = {
    secureContext,
    alpn: IMAP_ALPN,
    recentClaims: new Map<number, number>(),
    onUserAttach(conn: Connection, userId: number): Refusal | null | Promise<Refusal | null> {
      const note = (r: Refusal | null): Refusal | null => {
        if (r) refused(r, { user: userId, address: conn.session.remoteAddress });
        return r;
      };
      const r = tickets.get(conn)?.authenticate(userId) ?? null;
      return r instanceof Promise ? r.then(note) : note(r);
    },
    onClose(conn: Connection) {
      connections.delete(conn);
      tickets.get(conn)?.release();
      tickets.delete(conn);
    },
  };

  const open = (socket: net.Socket, secure: boolean, ticket: Ticket, peer: PeerEndpoint): void => {
    const conn = new Connection(socket, secure, true, store, auth, opts, hooks, peer);
    connections.add(conn);
    tickets.set(conn, ticket);
    conn.start();
    // A socket that came through the PROXY gate was paused there, its bytes after the header put back.
    socket.resume();
  };

  // PROXY protocol (src/server/proxy-protocol.ts): the header comes first, before admission and any TLS handshake.
  const gates = { imap: proxyGate(opts.proxyProtocol?.imap, opts.log, 'imap'), imaps: proxyGate(opts.proxyProtocol?.imaps, opts.log, 'imaps') };
  const accept = (socket: net.Socket, implicitTls: boolean): void => {
    // Whatever happens next, a reset from the peer must not become an unhandled 'error'.
    socket.on('error', () => {});
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 60_000);
    const gate = implicitTls ? gates.imaps : gates.imap;
    if (gate) gate.accept(socket, (peer) => admit(socket, implicitTls, peer));
    else admit(socket, implicitTls, socketPeer(socket));
  };

  const admit = (socket: net.Socket, implicitTls: boolean, peer: PeerEndpoint): void => {
    const ticket = admission.admit(peer.remoteAddress);
    if (!(ticket instanceof Promise)) return admitted(socket, implicitTls, peer, ticket);
    // Decided by the cluster's primary: a socket that closes (or a server that closes) meanwhile gives its slot back.
    handshaking.add(socket);
    void ticket.then((t) => {
      handshaking.delete(socket);
      if (socket.destroyed && typeof t !== 'string') t.release();
      else if (!socket.destroyed) admitted(socket, implicitTls, peer, t);
    });
  };

  const admitted = (socket: net.Socket, implicitTls: boolean, peer: PeerEndpoint, ticket: Ticket | Refusal): void => {
    if (typeof ticket === 'string') {
      refused(ticket, { address: peer.remoteAddress, port: socket.localPort });
      // On the implicit-TLS port nothing can be said before a handshake, and refusing must stay cheaper than one.
      if (implicitTls) socket.destroy();
      else {
        socket.end(`* BYE [UNAVAILABLE] ${REFUSAL_TEXT[ticket]}\r\n`);
        setTimeout(() => socket.destroy(), 1000).unref();
      }
      return;
    }
    if (!implicitTls) {
      open(socket, false, ticket, peer);
      return;
    }
    const remote = peer.remoteAddress;
    handshaking.add(socket);
    void serverHandshake(socket, {
      secureContext: hooks.secureContext,
      alpn: IMAP_ALPN,
      timeoutMs: opts.timeouts.tlsHandshakeMs,
      onFailure: (reason, err) => {
        ticket.release();
        opts.log.info(reason, { address: remote, error: err?.message });
      },
    }).then((tlsSocket) => {
      handshaking.delete(socket);
      if (!tlsSocket) return;
      if (tlsSocket.destroyed) ticket.release();
      else open(tlsSocket, true, ticket, peer);
    });
  };

  const servers: net.Server[] = [];
  const imap: ListenAddress[] = [];
  const imaps: ListenAddress[] = [];
  try {
    for (const addr of opts.imap) {
      const s = net.createServer((sock) => accept(sock, false));
      servers.push(s);
      imap.push(await listen(s, addr));
    }
    for (const addr of opts.imaps) {
      const s = net.createServer((sock) => accept(sock, true));
      servers.push(s);
      imaps.push(await listen(s, addr));
    }
  } catch (e) {
    for (const s of servers) s.close();
    throw e;
  }
  for (const s of servers) s.on('error', (err) => opts.log.error('listener error', { error: err.message }));
  const unregister = processMetrics().addConnectionSource('imap', () => {
    const byState = new Map<string, number>();
    for (const c of connections) {
      const st = c.info().state;
      byState.set(st, (byState.get(st) ?? 0) + 1);
    }
    return byState;
  });

  return {
    async reload() {
      if (!opts.reload) return;
      const next = await opts.reload();
      // Built before anything changes: a bad key/cert rejects here and the old one stays in use.
      // Implicit TLS and STARTTLS both take hooks.secureContext at each handshake.
      hooks.secureContext = createServerContext(next.tls);
      opts.tls = next.tls;
      // Live connections read these through the shared options object: new values apply from their next check.
      Object.assign(opts.limits, next.limits);
      Object.assign(opts.timeouts, next.timeouts);
      opts.plaintextAuth = next.plaintextAuth;
      opts.idleKeepaliveMs = next.idleKeepaliveMs;
      opts.serverName = next.serverName;
      opts.admins = next.admins;
      opts.urlauthSubmitters = next.urlauthSubmitters;
      const same = (a: ListenAddress[], b: ListenAddress[]) => a.length === b.length && a.every((x, i) => x.host === b[i]!.host && x.port === b[i]!.port);
      if (!same(next.imap, opts.imap) || !same(next.imaps, opts.imaps)) opts.log.warn('listener addresses changed in the configuration; they take effect after a restart');
    },
    sessions: () => [...connections].map((c) => c.info()),
    kick(user: string, reason = 'Disconnected by an administrator') {
      let n = 0;
      for (const c of [...connections]) {
        if (c.info().user === user) {
          c.kick(reason);
          n++;
        }
      }
      return n;
    },
    addresses: { imap, imaps },
    connectionCount: () => admission.connections,
    preAuthCount: () => admission.preAuthConnections,
    bufferedOutputBytes: () => [...connections].reduce((n, c) => n + c.outputBytes, 0),
    async close() {
      unregister();
      for (const s of handshaking) s.destroy();
      gates.imap?.destroyPending();
      gates.imaps?.destroyPending();
      await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))).concat(
        [...connections].map(async (c) => c.shutdown()),
      ));
    },
  };
}
