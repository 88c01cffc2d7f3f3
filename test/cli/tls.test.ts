import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadOrCreateTls } from '../../src/cli/tls.js';

test('self-signed certificate is generated once and reused', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'quire-tls-'));
  const first = await loadOrCreateTls({ dataDir, tls: { cert: null, key: null } });
  assert.equal(first.generated, true);
  assert.equal(first.selfSigned, true);
  assert.equal(first.certPath, join(dataDir, 'tls', 'cert.pem'));
  const x = new X509Certificate(first.cert);
  assert.match(x.subjectAltName ?? '', /DNS:localhost/);
  assert.match(x.subjectAltName ?? '', /IP Address:127\.0\.0\.1/);
  assert.ok(x.checkPrivateKey((await import('node:crypto')).createPrivateKey(first.key)));
  assert.equal(statSync(first.keyPath).mode & 0o777, 0o600);
  assert.ok(new Date(x.validTo).getTime() > Date.now() + 365 * 24 * 3600 * 1000);

  const second = await loadOrCreateTls({ dataDir, tls: { cert: null, key: null } });
  assert.equal(second.generated, false);
  assert.equal(second.cert, first.cert);
  assert.equal(second.fingerprint256, first.fingerprint256);
});

test('configured certificate files are read as they are', async () => {
  const src = mkdtempSync(join(tmpdir(), 'quire-tls-'));
  const gen = await loadOrCreateTls({ dataDir: src, tls: { cert: null, key: null } });
  const other = mkdtempSync(join(tmpdir(), 'quire-tls-'));
  const cert = join(other, 'my-cert.pem');
  const key = join(other, 'my-key.pem');
  writeFileSync(cert, gen.cert);
  writeFileSync(key, gen.key);
  const m = await loadOrCreateTls({ dataDir: other, tls: { cert, key } });
  assert.equal(m.selfSigned, false);
  assert.equal(m.cert, gen.cert);
  assert.equal(m.key, gen.key);
  await assert.rejects(loadOrCreateTls({ dataDir: other, tls: { cert: join(other, 'nope.pem'), key } }), /cannot read TLS/);
});

test('a lone cert.pem without key.pem is an error, not silently replaced', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'quire-tls-'));
  const gen = await loadOrCreateTls({ dataDir, tls: { cert: null, key: null } });
  const d2 = mkdtempSync(join(tmpdir(), 'quire-tls-'));
  const { mkdirSync } = await import('node:fs');
  mkdirSync(join(d2, 'tls'));
  writeFileSync(join(d2, 'tls', 'cert.pem'), gen.cert);
  await assert.rejects(loadOrCreateTls({ dataDir: d2, tls: { cert: null, key: null } }), /found only one/);
});
