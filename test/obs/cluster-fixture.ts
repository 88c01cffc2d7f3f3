// A two-worker node:cluster Quire for test/obs/cluster.test.ts, shaped like
// the process model of coord.md: the primary serves no sessions and runs
// startPrimaryOps (admin listener merging the workers' metrics, control
// socket asking the workers, SIGHUP forwarded); each worker runs the server
// and startServeOps. Prints "ready <imapPort> <adminPort>" when both listen.
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
  const ops = await startPrimaryOps(config, log, () => listening === 2);
  cluster.on('message', (_w, m: { type?: string; port?: number }) => {
    if (m?.type !== 'test:listening') return;
    listening++;
    port = m.port!;
    if (listening === 2) process.stdout.write(`ready ${port} ${ops.admin!.address.port}\n`);
  });
  cluster.fork();
  cluster.fork();
  process.on('SIGTERM', () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.kill('SIGTERM');
    void ops.close().then(() => setTimeout(() => process.exit(0), 200));
  });
} else {
  const store = await openSqliteStore({ dataDir: data, synchronous: 'NORMAL' });
  const tls = await loadOrCreateTls(config, log);
  const server = await startServer(store, new Authenticator(store, { baseDelayMs: 10, maxDelayMs: 20 }), { ...toServerOptions(config, tls, log), reload: serverReloader(flags, log) });
  await startServeOps({ config, log, servers: [server], tlsFiles: [tls.certPath, tls.keyPath], ready: () => true });
  process.on('SIGTERM', () => void server.close().then(() => store.close()).then(() => process.exit(0)));
  process.send!({ type: 'test:listening', port: server.addresses.imap[0]!.port });
}
