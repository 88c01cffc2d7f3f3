// SCRAM-SHA-256 and -PLUS through IMAP AUTHENTICATE over real sockets: what is
// advertised where, both channel bindings over TLS 1.3 (implicit TLS and
// STARTTLS), downgrade protection, failure delays, and verifiers for users
// created before SCRAM existed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient } from '../helpers/imap.js';
import { scramAuth } from '../helpers/scram-client.js';
import { hashPassword } from '../../src/auth/password.js';
import { changePassword, ensureDefaultMailboxes } from '../../src/cli/users.js';
import type { TLSSocket } from 'node:tls';

let srv: TestServer;
before(async () => { srv = await startTestServer(); });
after(async () => { await srv.stop(); });

const caps = (c: RawClient) => c.greeting;

test('SCRAM-SHA-256 is offered on the loopback plain port, -PLUS only over TLS', async () => {
  const plain = await RawClient.connect(srv.port);
  assert.match(caps(plain), /AUTH=SCRAM-SHA-256 /);
  assert.doesNotMatch(caps(plain), /SCRAM-SHA-256-PLUS/);
  await plain.startTls();
  const after = (await plain.command('CAPABILITY')).untagged[0]!;
  assert.match(after, /AUTH=SCRAM-SHA-256-PLUS AUTH=SCRAM-SHA-256 AUTH=PLAIN/);
  await plain.close();
  const t = await RawClient.connect(srv.tlsPort, { tls: true });
  assert.match(caps(t), /AUTH=SCRAM-SHA-256-PLUS/);
  await t.close();
  // Not offered where plaintext auth is refused (the session would still be readable).
  const never = await startTestServer({ tweak: (o) => { o.plaintextAuth = 'never'; } });
  try {
    const c = await RawClient.connect(never.port);
    assert.doesNotMatch(caps(c), /AUTH=/);
    assert.match((await c.command('AUTHENTICATE SCRAM-SHA-256')).tagged, /NO \[PRIVACYREQUIRED\]/);
    await c.close();
  } finally {
    await never.stop();
  }
});

test('SCRAM-SHA-256 logs in with and without SASL-IR, and the server proves it knows the verifier', async () => {
  for (const initial of [true, false]) {
    const c = await RawClient.connect(srv.port);
    const r = await scramAuth(c, 'alice', 'secret-a', { initial });
    assert.match(r.reply.tagged, /^t\d+ OK \[CAPABILITY /);
    assert.ok(r.serverVerified, 'server signature');
    assert.match((await c.command('SELECT INBOX')).tagged, /OK/);
    await c.close();
  }
});

test('SCRAM-SHA-256-PLUS with tls-exporter and tls-server-end-point over TLS 1.3, implicit TLS and STARTTLS', async () => {
  for (const cb of ['tls-exporter', 'tls-server-end-point']) {
    const t = await RawClient.connect(srv.tlsPort, { tls: true });
    assert.equal((t.socket as TLSSocket).getProtocol(), 'TLSv1.3');
    const r = await scramAuth(t, 'alice', 'secret-a', { gs2: 'p=' + cb });
    assert.match(r.reply.tagged, /OK/, cb);
    assert.ok(r.serverVerified);
    await t.close();
    const s = await RawClient.connect(srv.port);
    await s.startTls();
    assert.match((await scramAuth(s, 'bob', 'secret-b', { gs2: 'p=' + cb })).reply.tagged, /OK/, 'STARTTLS ' + cb);
    await s.close();
  }
});

test('channel binding: data of another connection, tls-unique on TLS 1.3, and a downgrade all fail', async () => {
  const other = await RawClient.connect(srv.tlsPort, { tls: true });
  const foreign = (other.socket as TLSSocket).exportKeyingMaterial(32, 'EXPORTER-Channel-Binding', Buffer.alloc(0));
  const t = await RawClient.connect(srv.tlsPort, { tls: true });
  assert.match((await scramAuth(t, 'alice', 'secret-a', { gs2: 'p=tls-exporter', cbData: foreign })).reply.tagged, /NO \[AUTHENTICATIONFAILED\]/, 'relayed exchange');
  assert.match((await scramAuth(t, 'alice', 'secret-a', { gs2: 'p=tls-unique' })).reply.tagged, /NO/, 'tls-unique is not defined for TLS 1.3');
  // The client can bind but was made to believe the server cannot (RFC 5802 §6).
  assert.match((await scramAuth(t, 'alice', 'secret-a', { gs2: 'y' })).reply.tagged, /NO \[AUTHENTICATIONFAILED\]/, 'downgrade');
  // Without TLS nothing was offered with -PLUS, so "y" is fine there.
  const p = await RawClient.connect(srv.port);
  assert.match((await scramAuth(p, 'alice', 'secret-a', { gs2: 'y' })).reply.tagged, /OK/);
  await Promise.all([other.close(), t.close(), p.close()]);
});

test('a wrong SCRAM password is charged the same growing delay as a wrong PLAIN password', async () => {
  const before = srv.auth.pendingDelayMs('carol-scram', '127.0.0.1');
  const c = await RawClient.connect(srv.port);
  const t0 = Date.now();
  const r = await scramAuth(c, 'bob', 'wrong');
  assert.match(r.reply.tagged, /NO \[AUTHENTICATIONFAILED\]/);
  assert.ok(Date.now() - t0 >= 15, 'answered after the failure delay');
  assert.ok(srv.auth.pendingDelayMs('bob', '127.0.0.1') > srv.auth.pendingDelayMs('nobody-else', '10.9.9.9'), 'bob\'s counter grew');
  assert.ok(before > 0);
  // A malformed exchange counts too.
  const t1 = Date.now();
  c.write('m1 AUTHENTICATE SCRAM-SHA-256 ' + Buffer.from('q,,n=bob,r=x').toString('base64') + '\r\n');
  assert.match((await c.collect('m1')).tagged, /NO/);
  assert.ok(Date.now() - t1 >= 15, 'a malformed exchange is answered after the delay too');
  await c.close();
});

test('a user from before SCRAM gets a verifier at the next password login; passwd replaces it', async () => {
  const u = await srv.store.createUser('legacy', await hashPassword('old-pass'));
  await ensureDefaultMailboxes(srv.store, u.id);
  let c = await RawClient.connect(srv.port);
  assert.match((await scramAuth(c, 'legacy', 'old-pass')).reply.tagged, /NO/, 'no verifier yet: SCRAM cannot succeed');
  assert.match((await c.command('LOGIN legacy old-pass')).tagged, /OK/);
  await c.close();
  c = await RawClient.connect(srv.port);
  assert.match((await scramAuth(c, 'legacy', 'old-pass')).reply.tagged, /OK/, 'verifier stored at the LOGIN');
  await c.close();
  await changePassword(srv.store, 'legacy', 'new-pass');
  c = await RawClient.connect(srv.port);
  assert.match((await scramAuth(c, 'legacy', 'old-pass')).reply.tagged, /NO/, 'the old password no longer works with SCRAM');
  assert.match((await scramAuth(c, 'legacy', 'new-pass')).reply.tagged, /OK/);
  await c.close();
});
