// TCP and TLS listeners (RFC 8314 implicit TLS, RFC 9051 §6.2.1 STARTTLS).
// The store and authenticator arrive by injection from src/cli.
import net from 'node:net';
import tls from 'node:tls';
import { Connection } from './connection.js';
import type { MailStore } from '../store/types.js';
import type { Authenticator } from '../auth/authenticator.js';
import type { ListenAddress, ServerOptions } from './options.js';

export interface RunningServer {
  close(): Promise<void>;
  addresses: { imap: ListenAddress[]; imaps: ListenAddress[] };
  /** Live connection count (for metrics and tests). */
  connectionCount(): number;
  /** Output queued for slow clients, summed over connections (for metrics and tests). */
  bufferedOutputBytes(): number;
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
      imaps.push(await listen(s, addr));
    }
  } catch (e) {
    for (const s of servers) s.close();
    throw e;
  }
  for (const s of servers) s.on('error', (err) => opts.log.error('listener error', { error: err.message }));

  return {
    addresses: { imap, imaps },
    connectionCount: () => connections.size,
    bufferedOutputBytes: () => [...connections].reduce((n, c) => n + c.outputBytes, 0),
    async close() {
      await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))).concat(
        [...connections].map(async (c) => c.shutdown()),
      ));
    },
  };
}
