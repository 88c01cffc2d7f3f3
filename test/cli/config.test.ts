import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CONFIG_KEYS, ConfigError, DEFAULT_MAX_MESSAGE_SIZE, flagAttribute, loadConfig, toServerOptions } from '../../src/cli/config.js';
import { createLogger } from '../../src/cli/log.js';

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'quire-config-'));
}

test('built-in defaults', () => {
  const cwd = tmp();
  const c = loadConfig({ env: {}, cwd });
  assert.equal(c.dataDir, join(cwd, 'data'));
  assert.deepEqual(c.imap, { host: ['127.0.0.1'], port: 1143 });
  assert.deepEqual(c.imaps, { host: ['127.0.0.1'], port: 1993 });
  assert.deepEqual(c.tls, { cert: null, key: null });
  assert.equal(c.plaintextAuth, 'loopback');
  assert.equal(c.limits.preAuthLineLength, 8 * 1024);
  assert.equal(c.limits.lineLength, 64 * 1024);
  assert.equal(c.limits.maxMessageSize, 64 * 1024 * 1024);
  assert.equal(c.limits.maxBadCommands, 20);
  assert.equal(c.timeouts.preAuthMs, 60_000);
  assert.equal(c.timeouts.authenticatedMs, 30 * 60_000);
  assert.equal(c.idleKeepaliveMs, 120_000);
  assert.equal(c.sqlite.synchronous, 'FULL');
  assert.equal(c.configFile, null);
});

test('precedence: defaults < file < env < flags', () => {
  const cwd = tmp();
  const file = join(cwd, 'q.json');
  writeFileSync(file, JSON.stringify({ imap: { port: 2000, host: '0.0.0.0' }, imaps: { port: 2001 }, logLevel: 'debug', limits: { maxBadCommands: 5, maxMessageSize: '10MiB' } }));
  const only = loadConfig({ env: {}, cwd, flags: { config: file } });
  assert.equal(only.configFile, file);
  assert.deepEqual(only.imap, { host: ['0.0.0.0'], port: 2000 });
  assert.equal(only.imaps.port, 2001);
  assert.equal(only.logLevel, 'debug');
  assert.equal(only.limits.maxBadCommands, 5);
  assert.equal(only.limits.maxMessageSize, 10 * 1024 * 1024);
  assert.equal(only.limits.lineLength, 64 * 1024, 'untouched keys keep defaults');

  const env = { QUIRE_IMAP_PORT: '3000', QUIRE_IMAPS_PORT: '3001', QUIRE_MAX_BAD_COMMANDS: '7', QUIRE_PRE_AUTH_TIMEOUT: '30s' };
  const withEnv = loadConfig({ env, cwd, flags: { config: file } });
  assert.equal(withEnv.imap.port, 3000);
  assert.equal(withEnv.imaps.port, 3001);
  assert.equal(withEnv.limits.maxBadCommands, 7);
  assert.equal(withEnv.timeouts.preAuthMs, 30_000);
  assert.equal(withEnv.logLevel, 'debug', 'file value survives where env is silent');

  const withFlags = loadConfig({ env, cwd, flags: { config: file, imapPort: '4000', imapHost: '::1, 127.0.0.1' } });
  assert.equal(withFlags.imap.port, 4000);
  assert.deepEqual(withFlags.imap.host, ['::1', '127.0.0.1']);
  assert.equal(withFlags.imaps.port, 3001);
});

test('quire.json in the data directory is read; the data dir comes from flag or env', () => {
  const cwd = tmp();
  const data = join(cwd, 'mail');
  mkdirSync(data);
  writeFileSync(join(data, 'quire.json'), JSON.stringify({ imaps: { port: 'off' }, serverName: 'Test' }));
  const viaEnv = loadConfig({ env: { QUIRE_DATA: 'mail' }, cwd });
  assert.equal(viaEnv.dataDir, data);
  assert.equal(viaEnv.configFile, join(data, 'quire.json'));
  assert.equal(viaEnv.imaps.port, null);
  assert.equal(viaEnv.serverName, 'Test');
  const viaFlag = loadConfig({ env: { QUIRE_DATA: 'elsewhere' }, cwd, flags: { data: data } });
  assert.equal(viaFlag.configFile, join(data, 'quire.json'));
  // The data dir's own file may not move the data dir.
  writeFileSync(join(data, 'quire.json'), JSON.stringify({ dataDir: '/x' }));
  assert.throws(() => loadConfig({ env: {}, cwd, flags: { data } }), /dataDir.*cannot be set/);
});

test('relative paths in a config file resolve against the file; env/flags against cwd', () => {
  const cwd = tmp();
  mkdirSync(join(cwd, 'etc'));
  const file = join(cwd, 'etc', 'quire.json');
  writeFileSync(file, JSON.stringify({ dataDir: '../var', tls: { cert: 'c.pem', key: 'k.pem' } }));
  const c = loadConfig({ env: {}, cwd, flags: { config: file } });
  assert.equal(c.dataDir, join(cwd, 'var'));
  assert.equal(c.tls.cert, join(cwd, 'etc', 'c.pem'));
  const e = loadConfig({ env: { QUIRE_TLS_KEY: 'x.pem', QUIRE_TLS_CERT: 'y.pem' }, cwd });
  assert.equal(e.tls.key, join(cwd, 'x.pem'));
});

test('validation: unknown keys, bad ports, bad values, inconsistent settings', () => {
  const cwd = tmp();
  const file = join(cwd, 'q.json');
  const bad = (obj: unknown, re: RegExp) => {
    writeFileSync(file, typeof obj === 'string' ? obj : JSON.stringify(obj));
    assert.throws(() => loadConfig({ env: {}, cwd, flags: { config: file } }), (e: unknown) => e instanceof ConfigError && re.test(e.message));
  };
  bad({ imapPort: 1 }, /unknown key "imapPort"/);
  bad({ limits: { maxFoo: 1 } }, /unknown key "limits.maxFoo".*limits.lineLength/);
  bad({ imap: { port: 70000 } }, /imap.port: must be a port number 0-65535/);
  bad({ imap: { port: 12.5 } }, /imap.port/);
  bad({ imap: { port: '143x' } }, /imap.port/);
  bad({ plaintextAuth: 'sometimes' }, /plaintextAuth: must be one of never, loopback, always/);
  bad({ limits: { maxMessageSize: '5 parsecs' } }, /unknown unit/);
  bad({ limits: { preAuthLineLength: 10 } }, /between 1 KiB and 1 MiB/);
  bad({ tls: { cert: 'a.pem' } }, /tls.cert and tls.key must be set together/);
  bad({ imap: { port: 'off' }, imaps: { port: 'off' } }, /both listeners are disabled/);
  bad({ imap: { port: 5000 }, imaps: { port: 5000 } }, /both 5000/);
  bad({ limits: { maxCommandSize: '1MiB' } }, new RegExp(`maxCommandSize .* at least limits.maxMessageSize \\(${DEFAULT_MAX_MESSAGE_SIZE}\\)`));
  bad('{ not json', /not valid JSON/);
  bad('[1]', /JSON object/);
  assert.throws(() => loadConfig({ env: { QUIRE_IMAPS_PORT: '-1' }, cwd }), /QUIRE_IMAPS_PORT: must be a port/);
  assert.throws(() => loadConfig({ env: {}, cwd, flags: { imapPort: 'abc' } }), /option --imap-port: must be a port/);
  assert.throws(() => loadConfig({ env: {}, cwd, flags: { config: join(cwd, 'missing.json') } }), /does not exist/);
});

test('unknown QUIRE_* variables are reported as warnings; empty variables count as unset', () => {
  const warnings: string[] = [];
  const c = loadConfig({ env: { QUIRE_IMAP_PROT: '1', QUIRE_IMAP_PORT: '' }, cwd: tmp(), onWarning: (m) => warnings.push(m) });
  assert.equal(c.imap.port, 1143);
  assert.ok(warnings.some((w) => w.includes('QUIRE_IMAP_PROT')));
});

test('toServerOptions maps listeners and copies limits', () => {
  const c = loadConfig({ env: { QUIRE_IMAP_HOST: '127.0.0.1,::1', QUIRE_IMAPS_PORT: 'off' }, cwd: tmp() });
  const log = createLogger({ level: 'silent' });
  const o = toServerOptions(c, { key: 'K', cert: 'C' }, log);
  assert.deepEqual(o.imap, [
    { host: '127.0.0.1', port: 1143 },
    { host: '::1', port: 1143 },
  ]);
  assert.deepEqual(o.imaps, []);
  assert.deepEqual(o.tls, { key: 'K', cert: 'C' });
  assert.deepEqual(o.limits, c.limits);
  assert.equal(o.plaintextAuth, 'loopback');
  assert.equal(o.log, log);
});

test('docs/config.md documents every key, environment variable and flag', () => {
  const doc = readFileSync(new URL('../../docs/config.md', import.meta.url), 'utf8');
  for (const k of CONFIG_KEYS) {
    assert.ok(doc.includes(`\`${k.key}\``), `key ${k.key} missing from docs/config.md`);
    assert.ok(doc.includes(`\`${k.env}\``), `env ${k.env} missing from docs/config.md`);
    if (k.flag) assert.ok(doc.includes(`\`${k.flag}`), `flag ${k.flag} missing from docs/config.md`);
    assert.equal(flagAttribute('--imap-port'), 'imapPort');
  }
});

test('the example quire.json in docs/config.md is valid', () => {
  const doc = readFileSync(new URL('../../docs/config.md', import.meta.url), 'utf8');
  const json = /```json\n([\s\S]*?)```/.exec(doc)?.[1];
  assert.ok(json);
  const dir = tmp();
  writeFileSync(join(dir, 'quire.json'), json);
  const c = loadConfig({ env: {}, cwd: dir, flags: { config: join(dir, 'quire.json') } });
  assert.equal(c.imaps.port, 993);
  assert.equal(c.limits.maxMessageSize, 50 * 1024 * 1024);
  assert.equal(c.timeouts.authenticatedMs, 45 * 60_000);
});

// ---- hostile input (issue 10): connection caps and deadlines
test('connection caps and deadlines: defaults, environment, consistency', () => {
  const cwd = tmp();
  const c = loadConfig({ env: {}, cwd });
  assert.equal(c.limits.maxConnections, 10_000);
  assert.equal(c.limits.maxPreAuthConnections, 2000);
  assert.equal(c.limits.maxPreAuthConnectionsPerAddress, 100);
  assert.equal(c.limits.maxConnectionsPerUserAddress, 10);
  assert.equal(c.timeouts.preAuthDeadlineMs, 60_000);
  assert.equal(c.timeouts.tlsHandshakeMs, 10_000);
  const e = loadConfig({ env: { QUIRE_PRE_AUTH_DEADLINE: '90s', QUIRE_TLS_HANDSHAKE_TIMEOUT: '500ms', QUIRE_MAX_CONNECTIONS_PER_USER_ADDRESS: '3' }, cwd });
  assert.equal(e.timeouts.preAuthDeadlineMs, 90_000);
  assert.equal(e.timeouts.tlsHandshakeMs, 500);
  assert.equal(toServerOptions(e, { key: '', cert: '' }, createLogger({ level: 'silent' })).limits.maxConnectionsPerUserAddress, 3);
  assert.throws(() => loadConfig({ env: { QUIRE_MAX_PRE_AUTH_CONNECTIONS: '20000' }, cwd }), /maxPreAuthConnections \(20000\) must be at most limits.maxConnections/);
  assert.throws(() => loadConfig({ env: { QUIRE_MAX_CONNECTIONS_PER_USER_ADDRESS: '60' }, cwd }), /maxConnectionsPerUserAddress \(60\) must be at most limits.maxConnectionsPerUser/);
  const warnings: string[] = [];
  loadConfig({ env: { QUIRE_MAX_PRE_AUTH_CONNECTIONS: '10000' }, cwd, onWarning: (w) => warnings.push(w) });
  assert.ok(warnings.some((w) => /lock logged-in users out/.test(w)), warnings.join('\n'));
});

test('sqlite.bodyCacheBytes: 8 MiB by default, 0 turns the body cache off, negative refused', () => {
  const cwd = tmp();
  assert.equal(loadConfig({ env: {}, cwd }).sqlite.bodyCacheBytes, 8 * 1024 * 1024);
  assert.equal(loadConfig({ env: { QUIRE_SQLITE_BODY_CACHE_BYTES: '0' }, cwd }).sqlite.bodyCacheBytes, 0);
  assert.throws(() => loadConfig({ env: { QUIRE_SQLITE_BODY_CACHE_BYTES: '-1' }, cwd }));
});
