// TCP and TLS listeners (RFC 8314 implicit TLS, RFC 9051 §6.2.1 STARTTLS).
// The store and authenticator arrive by injection from src/cli.
import net from 'node:net';
import tls from 'node:tls';
import { Connection } from './connection.js';
import type { MailStore } from '../store/types.js';
import type { Authenticator } from '../auth/authenticator.js';
import type { ListenAddress, ServerOptions } from './options.js';
import { processMetrics } from '../obs/metrics.js';

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
}

export interface RunningServer {
  close(): Promise<void>;
  addresses: { imap: ListenAddress[]; imaps: ListenAddress[] };
  /** Live connection count (for metrics and tests). */
  connectionCount(): number;
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

/** Time allowed for the TLS handshake on the implicit-TLS port. */
const TLS_HANDSHAKE_MS = 30_000;

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

export async function startServer(store: MailStore, auth: Authenticator, opts: ServerOptions): Promise<RunningServer> {
  const secureContext = tls.createSecureContext({ key: opts.tls.key, cert: opts.tls.cert, minVersion: 'TLSv1.2' });
  const tlsServers: tls.Server[] = [];
  const connections = new Set<Connection>();
  const perUser = new Map<number, number>();
  const userOf = new Map<Connection, number>();
  const hooks = {
    secureContext,
    recentClaims: new Map<number, number>(),
    onUserAttach(conn: Connection, userId: number): boolean {
      const n = perUser.get(userId) ?? 0;
      if (n >= opts.limits.maxConnectionsPerUser) return false;
      perUser.set(userId, n + 1);
      userOf.set(conn, userId);
      return true;
    },
    onClose(conn: Connection) {
      connections.delete(conn);
      const u = userOf.get(conn);
      if (u !== undefined) {
        userOf.delete(conn);
        const n = (perUser.get(u) ?? 1) - 1;
        if (n <= 0) perUser.delete(u);
        else perUser.set(u, n);
      }
    },
  };

  const accept = (socket: net.Socket, secure: boolean) => {
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 60_000);
    if (connections.size >= opts.limits.maxConnections) {
      socket.end('* BYE [UNAVAILABLE] Too many connections\r\n');
      return;
    }
    const conn = new Connection(socket, secure, true, store, auth, opts, hooks);
    connections.add(conn);
    conn.start();
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
      const s = tls.createServer({ key: opts.tls.key, cert: opts.tls.cert, handshakeTimeout: TLS_HANDSHAKE_MS, minVersion: 'TLSv1.2' }, (sock) => accept(sock, true));
      s.on('tlsClientError', (err) => opts.log.debug('TLS handshake failed', { error: err.message }));
      servers.push(s);
      tlsServers.push(s);
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
      const ctx = tls.createSecureContext({ key: next.tls.key, cert: next.tls.cert, minVersion: 'TLSv1.2' });
      for (const s of tlsServers) s.setSecureContext({ key: next.tls.key, cert: next.tls.cert, minVersion: 'TLSv1.2' });
      hooks.secureContext = ctx;
      opts.tls = next.tls;
      // Live connections read these through the shared options object: new values apply from their next check.
      Object.assign(opts.limits, next.limits);
      Object.assign(opts.timeouts, next.timeouts);
      opts.plaintextAuth = next.plaintextAuth;
      opts.idleKeepaliveMs = next.idleKeepaliveMs;
      opts.serverName = next.serverName;
      opts.admins = next.admins;
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
    connectionCount: () => connections.size,
    bufferedOutputBytes: () => [...connections].reduce((n, c) => n + c.outputBytes, 0),
    async close() {
      unregister();
      await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))).concat(
        [...connections].map(async (c) => c.shutdown()),
      ));
    },
  };
}
