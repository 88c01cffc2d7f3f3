// LMTP listeners: TCP (loopback by default) and an optional Unix domain
// socket. The store arrives by injection from src/cli.

import net from 'node:net';
import { chmod, lstat, unlink } from 'node:fs/promises';
import type { MailStore } from '../store/types.js';
import type { ListenAddress } from '../server/options.js';
import type { LmtpOptions } from './options.js';
import { LmtpSession } from './session.js';
import { newSessionId } from '../obs/log.js';
import { processMetrics } from '../obs/metrics.js';
import { childLogger } from '../obs/session.js';
import { proxyGate, socketPeer, type PeerEndpoint } from '../server/proxy-protocol.js';

/** Permissions of the Unix socket: owner and group (put the MTA's user in Quire's group). */
export const LMTP_SOCKET_MODE = 0o660;

/** How long shutdown waits for deliveries in progress before closing their connections. */
const SHUTDOWN_GRACE_MS = 5000;

export interface RunningLmtp {
  addresses: { tcp: ListenAddress[]; socket: string | null };
  connectionCount(): number;
  close(): Promise<void>;
}

function listenTcp(server: net.Server, addr: ListenAddress): Promise<ListenAddress> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(addr.port, addr.host, () => {
      server.off('error', reject);
      resolve({ host: addr.host, port: (server.address() as net.AddressInfo).port });
    });
  });
}

/** Removes a stale socket file left by a previous run; refuses if another process still listens on it. */
async function clearStaleSocket(path: string): Promise<void> {
  const st = await lstat(path).catch(() => null);
  if (!st) return;
  if (!st.isSocket()) throw new Error(`${path} exists and is not a socket`);
  const alive = await new Promise<boolean>((resolve) => {
    const c = net.connect(path);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
  if (alive) throw new Error(`${path} is in use by another process`);
  await unlink(path);
}

function listenUnix(server: net.Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    // exclusive: under node:cluster the worker owns the socket itself (only one worker listens on it, see src/cli/serve.ts).
    server.listen({ path, exclusive: true }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

export async function startLmtp(store: MailStore, opts: LmtpOptions): Promise<RunningLmtp> {
  const sessions = new Map<net.Socket, LmtpSession>();

  // PROXY protocol on the TCP listeners only (src/server/proxy-protocol.ts): a Unix socket's peer is local by construction.
  const gate = proxyGate(opts.proxyProtocol, opts.log, 'lmtp');
  const acceptTcp = (socket: net.Socket): void => {
    if (gate) gate.accept(socket, (peer) => accept(socket, peer));
    else accept(socket, socketPeer(socket));
  };
  const accept = (socket: net.Socket, peer: PeerEndpoint | null = null): void => {
    if (sessions.size >= opts.limits.maxConnections) {
      socket.end('421 4.3.2 Too many connections, try again later\r\n');
      return;
    }
    socket.setNoDelay(true);
    const remote = peer?.remoteAddress ?? 'local';
    const log = childLogger(opts.log, { session: newSessionId() });
    log.info('connection opened', { protocol: 'lmtp', remote, remotePort: peer?.remotePort });
    processMetrics().connectionsOpened.inc({ protocol: 'lmtp', tls: 'none' });
    const opened = Date.now();
    const session = new LmtpSession(
      {
        write: (d) => {
          if (!socket.destroyed) socket.write(d);
        },
        end: () => socket.end(),
        pause: () => socket.pause(),
        resume: () => socket.resume(),
        remoteAddress: remote,
      },
      store,
      { ...opts, log },
    );
    sessions.set(socket, session);
    socket.setTimeout(opts.timeoutMs);
    socket.on('timeout', () => session.close('421 4.4.2 Timeout, closing connection'));
    socket.on('data', (d: Buffer) => session.receive(d));
    socket.on('error', (err) => opts.log.debug('LMTP socket error', { error: err.message }));
    socket.on('close', () => {
      log.info('connection closed', { protocol: 'lmtp', remote, durationMs: Date.now() - opened, bytesIn: socket.bytesRead, bytesOut: socket.bytesWritten });
      sessions.delete(socket);
      session.close();
    });
    // A socket that came through the PROXY gate was paused there, its bytes after the header put back.
    socket.resume();
    session.greet();
  };

  const servers: net.Server[] = [];
  const tcp: ListenAddress[] = [];
  let socketPath: string | null = null;
  try {
    for (const addr of opts.tcp) {
      const s = net.createServer(acceptTcp);
      servers.push(s);
      tcp.push(await listenTcp(s, addr));
    }
    if (opts.socket) {
      await clearStaleSocket(opts.socket);
      const s = net.createServer((sock) => accept(sock));
      servers.push(s);
      await listenUnix(s, opts.socket);
      socketPath = opts.socket;
      await chmod(opts.socket, LMTP_SOCKET_MODE);
    }
  } catch (err) {
    for (const s of servers) s.close();
    throw err;
  }
  for (const s of servers) s.on('error', (err) => opts.log.error('LMTP listener error', { error: err.message }));
  const unregister = processMetrics().addConnectionSource('lmtp', () => [['open', sessions.size]]);

  return {
    addresses: { tcp, socket: socketPath },
    connectionCount: () => sessions.size,
    async close() {
      unregister();
      const closing = servers.map((s) => new Promise<void>((r) => s.close(() => r())));
      gate?.destroyPending();
      // A delivery in progress finishes and gets its replies first, so the MTA does not retry a stored message.
      await Promise.all(
        [...sessions].map(async ([sock, session]) => {
          await Promise.race([session.whenIdle(), new Promise((r) => setTimeout(r, SHUTDOWN_GRACE_MS).unref())]);
          session.close('421 4.3.2 Server shutting down');
          sock.destroySoon();
        }),
      );
      await Promise.all(closing);
    },
  };
}
