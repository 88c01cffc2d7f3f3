// Certificate reload over real sockets and real files: a certificate
// replaced on disk is served by the next handshake (implicit TLS and
// STARTTLS) while an existing session keeps going on the old one; a broken
// replacement is refused and the working certificate stays in use.
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { test } from 'node:test';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { Authenticator } from '../../src/auth/authenticator.js';
import { startServer } from '../../src/server/index.js';
import { loadConfig, toServerOptions } from '../../src/cli/config.js';
import { loadOrCreateTls } from '../../src/cli/tls.js';
import { provisionUser } from '../../src/cli/users.js';
import { createLogger } from '../../src/obs/log.js';
import { serverReloader, startServeOps } from '../../src/cli/ops-serve.js';
import { RawClient } from '../helpers/imap.js';
import { until } from './helpers.js';

function fingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false }, () => {
      resolve(s.getPeerX509Certificate()!.fingerprint256);
      s.destroy();
    });
    s.once('error', reject);
  });
}

test('a certificate replaced on disk is used by the next handshake; live sessions stay; a broken one is refused', { timeout: 60_000 }, async () => {
  const a = await loadOrCreateTls({ dataDir: mkdtempSync(join(tmpdir(), 'quire-certa-')), tls: { cert: null, key: null } });
  const b = await loadOrCreateTls({ dataDir: mkdtempSync(join(tmpdir(), 'quire-certb-')), tls: { cert: null, key: null } });
  assert.notEqual(a.fingerprint256, b.fingerprint256);
  const data = mkdtempSync(join(tmpdir(), 'quire-reload-'));
  const certFile = join(data, 'cert.pem');
  const keyFile = join(data, 'key.pem');
  copyFileSync(a.certPath, certFile);
  copyFileSync(a.keyPath, keyFile);

  const lines: string[] = [];
  const log = createLogger({ level: 'info', write: (l) => lines.push(l) });
  const flags = { data, tlsCert: certFile, tlsKey: keyFile, imapPort: '0', imapsPort: '0', adminPort: 'off', lmtpPort: 'off' };
  const config = loadConfig({ env: {}, flags });
  const t = await loadOrCreateTls(config);
  const store = await openSqliteStore({ dataDir: data, synchronous: 'NORMAL' });
  await provisionUser(store, 'alice', 'secret-a');
  const server = await startServer(store, new Authenticator(store, { baseDelayMs: 10, maxDelayMs: 20 }), { ...toServerOptions(config, t, log), reload: serverReloader(flags, log) });
  const ops = await startServeOps({ config, log, servers: [server], tlsFiles: [certFile, keyFile], ready: () => true, certPollMs: 100 });
  const tlsPort = server.addresses.imaps[0]!.port;
  const port = server.addresses.imap[0]!.port;
  try {
    assert.equal(await fingerprint(tlsPort), a.fingerprint256);
    const live = await RawClient.connect(tlsPort, { tls: true, login: ['alice', 'secret-a'] });
    await live.command('SELECT INBOX');

    // A renewal: key and certificate rewritten in place, one after the other.
    writeFileSync(keyFile, b.key);
    writeFileSync(certFile, b.cert);
    await until(() => lines.some((l) => / INFO reloaded trigger="certificate files changed"/.test(l)), 'a reload after the files changed');
    assert.equal(await fingerprint(tlsPort), b.fingerprint256, 'implicit TLS: new handshakes get the new certificate');
    const st = await RawClient.connect(port);
    await st.startTls();
    assert.equal((st.socket as tls.TLSSocket).getPeerX509Certificate()!.fingerprint256, b.fingerprint256, 'STARTTLS gets the new certificate');
    await st.close();
    // The session from before still works, on its old certificate.
    assert.match((await live.command('NOOP')).tagged, /OK/);
    assert.equal((live.socket as tls.TLSSocket).getPeerX509Certificate()!.fingerprint256, a.fingerprint256);

    // A broken certificate is refused; the working one stays.
    writeFileSync(certFile, 'not a certificate\n');
    assert.equal(await ops.reload('test'), false);
    assert.ok(lines.some((l) => / ERROR reload failed; the previous configuration and certificate stay in use trigger=test error=/.test(l)), lines.join('\n'));
    assert.equal(await fingerprint(tlsPort), b.fingerprint256);
    assert.match((await live.command('NOOP')).tagged, /OK/);
    await live.close();
  } finally {
    await ops.close();
    await server.close();
    await store.close();
  }
});

test('reload applies config-derived options to the running server', { timeout: 30_000 }, async () => {
  const data = mkdtempSync(join(tmpdir(), 'quire-reload2-'));
  const log = createLogger({ level: 'warn', write: () => {} });
  const flags: Record<string, unknown> = { data, imapPort: '0', imapsPort: 'off', adminPort: 'off', lmtpPort: 'off' };
  const config = loadConfig({ env: {}, flags });
  const t = await loadOrCreateTls(config);
  const store = await openSqliteStore({ dataDir: data, synchronous: 'NORMAL' });
  await provisionUser(store, 'alice', 'secret-a');
  const server = await startServer(store, new Authenticator(store, { baseDelayMs: 10, maxDelayMs: 20 }), { ...toServerOptions(config, t, log), reload: serverReloader(flags, log) });
  const port = server.addresses.imap[0]!.port;
  try {
    const before = await RawClient.connect(port);
    assert.match((await before.command('LOGIN alice secret-a')).tagged, /OK/, 'loopback plaintext login allowed by default');
    await before.close();
    // The admin forbids plaintext logins in the config file and reloads.
    writeFileSync(join(data, 'quire.json'), JSON.stringify({ plaintextAuth: 'never' }));
    await server.reload!();
    const after = await RawClient.connect(port);
    assert.match((await after.command('LOGIN alice secret-a')).tagged, /NO \[PRIVACYREQUIRED\]/);
    await after.close();
  } finally {
    await server.close();
    await store.close();
  }
});
