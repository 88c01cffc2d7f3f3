// A two-worker node:cluster Quire for test/obs/cluster.test.ts, shaped like
// the process model of coord.md: the primary serves no sessions and runs
// startPrimaryOps (admin listener merging the workers' metrics, control
// socket asking the workers, SIGHUP forwarded); each worker runs the server
// and startServeOps. Prints "ready <imapPort> <adminPort>" when both listen.
// SIGUSR2 to the primary blocks worker 1's event loop; like the real process
// model, the primary starts a new worker when one exits ("respawned" then).
import cluster from 'node:cluster';
import { loadConfig, toServerOptions } from '../../src/cli/config.js';
import { createLogger } from '../../src/obs/log.js';
import { serverReloader, startPrimaryOps, startServeOps } from '../../src/cli/ops-serve.js';
import { loadOrCreateTls } from '../../src/cli/tls.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { provisionUser } from '../../src/cli/users.js';
import { Authenticator } from '../../src/auth/authenticator.js';
import { startServer } from '../../src/server/index.js';

const data = process.argv[2]!;
const flags = { data, imapPort: process.argv[3]!, imapsPort: 'off', lmtpPort: 'off', adminPort: '0' };
const config = loadConfig({ env: {}, flags });
const log = createLogger({ level: 'info' });

if (cluster.isPrimary) {
  const store = await openSqliteStore({ dataDir: data, synchronous: 'NORMAL' });
  await provisionUser(store, 'alice', 'secret-a');
  await store.close();
  await loadOrCreateTls(config, log);
  let listening = 0;
  let port = 0;
  const ops = await startPrimaryOps(config, log, () => listening >= 2, { blockedMs: 1500 });
  let stopping = false;
  cluster.on('exit', () => {
    if (!stopping) cluster.fork();
  });
  process.on('SIGUSR2', () => cluster.workers?.[1]?.send({ type: 'test:block' }));
  cluster.on('message', (_w, m: { type?: string; port?: number }) => {
    if (m?.type !== 'test:listening') return;
    listening++;
    port = m.port!;
    if (listening === 2) process.stdout.write(`ready ${port} ${ops.admin!.address.port}\n`);
    if (listening > 2) process.stdout.write('respawned\n');
  });
  cluster.fork();
  cluster.fork();
  process.on('SIGTERM', () => {
    stopping = true;
    for (const w of Object.values(cluster.workers ?? {})) w?.kill('SIGTERM');
    void ops.close().then(() => setTimeout(() => process.exit(0), 200));
  });
} else {
  const store = await openSqliteStore({ dataDir: data, synchronous: 'NORMAL' });
  const tls = await loadOrCreateTls(config, log);
  const server = await startServer(store, new Authenticator(store, { baseDelayMs: 10, maxDelayMs: 20 }), { ...toServerOptions(config, tls, log), reload: serverReloader(flags, log) });
  await startServeOps({ config, log, servers: [server], tlsFiles: [tls.certPath, tls.keyPath], ready: () => true, heartbeatMs: 200 });
  process.on('message', (m: { type?: string }) => {
    if (m?.type !== 'test:block') return;
    const until = Date.now() + 60_000;
    while (Date.now() < until) {
      // a hung event loop
    }
  });
  process.on('SIGTERM', () => void server.close().then(() => store.close()).then(() => process.exit(0)));
  process.send!({ type: 'test:listening', port: server.addresses.imap[0]!.port });
}
