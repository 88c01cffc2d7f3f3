// Behaviour over a real socket: greeting, CAPABILITY, LOGIN, STARTTLS, state checks.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient } from '../helpers/imap.js';

let srv: TestServer;
before(async () => { srv = await startTestServer(); });
after(async () => { await srv.stop(); });

test('greeting advertises IMAP4rev1 and IMAP4rev2 and STARTTLS', async () => {
  const c = await RawClient.connect(srv.port);
  assert.match(c.greeting, /^\* OK \[CAPABILITY [^\]]*IMAP4rev1 IMAP4rev2[^\]]*STARTTLS/);
  const r = await c.command('CAPABILITY');
  assert.match(r.untagged[0], /^\* CAPABILITY .*AUTH=PLAIN/);
  assert.doesNotMatch(r.untagged[0], /UIDPLUS/, 'post-auth capabilities are not shown before login');
  await c.close();
});

test('LOGIN: wrong password is NO [AUTHENTICATIONFAILED], right one OK with CAPABILITY', async () => {
  const c = await RawClient.connect(srv.port);
  const bad = await c.command('LOGIN alice wrong');
  assert.match(bad.tagged, /^t1 NO \[AUTHENTICATIONFAILED\]/);
  const ok = await c.command('LOGIN alice secret-a');
  assert.match(ok.tagged, /^t2 OK \[CAPABILITY [^\]]*UIDPLUS/);
  const again = await c.command('LOGIN alice secret-a');
  assert.match(again.tagged, /^t3 BAD/);
  await c.close();
});

test('commands in the wrong state get BAD', async () => {
  const c = await RawClient.connect(srv.port);
  assert.match((await c.command('SELECT INBOX')).tagged, /^t1 BAD/);
  assert.match((await c.command('FETCH 1 FLAGS')).tagged, /^t2 BAD/);
  await c.command('LOGIN alice secret-a');
  assert.match((await c.command('FETCH 1 FLAGS')).tagged, /^t4 BAD .*No mailbox selected/);
  assert.match((await c.command('ENABLE IMAP4rev2')).untagged[0], /^\* ENABLED IMAP4rev2/);
  await c.close();
});

test('STARTTLS discards pipelined plaintext and upgrades', async () => {
  const c = await RawClient.connect(srv.port);
  // Inject a LOGIN in the same packet as STARTTLS: it must never run.
  c.write('s1 STARTTLS\r\ns2 LOGIN alice secret-a\r\n');
  const r = await c.collect('s1');
  assert.match(r.tagged, /^s1 OK/);
  const tlsLib = await import('node:tls');
  const raw = c.socket;
  raw.removeAllListeners('data');
  const s = await new Promise<import('node:tls').TLSSocket>((resolve, reject) => {
    const t = tlsLib.connect({ socket: raw, servername: 'localhost', rejectUnauthorized: false }, () => resolve(t));
    t.once('error', reject);
  });
  let got = '';
  s.on('data', (d) => { got += d.toString(); });
  s.write('s3 CAPABILITY\r\n');
  await new Promise((r) => setTimeout(r, 300));
  assert.doesNotMatch(got, /s2/, 'the injected command was not executed');
  assert.match(got, /\* CAPABILITY .*AUTH=PLAIN/);
  assert.doesNotMatch(got, /STARTTLS/, 'no STARTTLS after TLS is active');
  s.destroy();
});

test('plaintext LOGIN is refused off loopback policy (never)', async () => {
  const strict = await startTestServer({ tweak: (o) => { o.plaintextAuth = 'never'; } });
  try {
    const c = await RawClient.connect(strict.port);
    assert.match(c.greeting, /LOGINDISABLED/);
    assert.doesNotMatch(c.greeting, /AUTH=PLAIN/);
    assert.match((await c.command('LOGIN alice secret-a')).tagged, /^t1 NO \[PRIVACYREQUIRED\]/);
    await c.startTls();
    const caps = await c.command('CAPABILITY');
    assert.match(caps.untagged[0], /AUTH=PLAIN/);
    assert.match((await c.command('LOGIN alice secret-a')).tagged, /^t\d+ OK/);
    await c.close();
  } finally {
    await strict.stop();
  }
});

test('AUTHENTICATE PLAIN with SASL-IR and with a continuation', async () => {
  const c = await RawClient.connect(srv.port);
  const ir = Buffer.from('\0alice\0secret-a').toString('base64');
  assert.match((await c.command(`AUTHENTICATE PLAIN ${ir}`)).tagged, /^t1 OK/);
  await c.close();
  const d = await RawClient.connect(srv.port);
  d.write('a1 AUTHENTICATE PLAIN\r\n');
  assert.equal(await d.readLine(), '+ ');
  d.write(Buffer.from('\0bob\0secret-b').toString('base64') + '\r\n');
  assert.match((await d.collect('a1')).tagged, /^a1 OK/);
  await d.close();
  const e = await RawClient.connect(srv.port);
  e.write('a1 AUTHENTICATE PLAIN\r\n');
  await e.readLine();
  e.write('*\r\n');
  assert.match((await e.collect('a1')).tagged, /^a1 BAD/);
  await e.close();
});

test('garbage before login gets BYE', async () => {
  const c = await RawClient.connect(srv.port);
  c.write('\x16\x03\x01garbage\r\n\x00\x01\r\nnot a command\r\n');
  const lines = await c.readUntil((l) => l.startsWith('* BYE'));
  assert.ok(lines.some((l) => l.startsWith('* BAD')));
  await c.close();
});

test('ID, NOOP, LOGOUT', async () => {
  const c = await RawClient.connect(srv.port);
  const id = await c.command('ID ("name" "test")');
  assert.match(id.untagged[0], /^\* ID \("name" "Quire"/);
  assert.match((await c.command('NOOP')).tagged, /^t2 OK/);
  const bye = await c.command('LOGOUT');
  assert.match(bye.untagged[0], /^\* BYE/);
  assert.match(bye.tagged, /^t3 OK/);
  await c.close();
});
