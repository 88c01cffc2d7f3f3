// POP3 over real sockets on the same store as IMAP: states, authentication
// policy, STLS, SASL, the maildrop snapshot, UPDATE as an expunge that IMAP
// sessions are pushed, locks, LOGIN-DELAY, ALPN and hostile input.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import { provisionUser } from '../../src/cli/users.js';
import { RawClient } from '../helpers/imap.js';
import { Pop3Client, startPop3TestServer, type Pop3TestServer } from './helpers.js';
import { uidlOf } from '../../src/pop3/maildrop.js';
import type { Pop3Options } from '../../src/pop3/options.js';

let srv: Pop3TestServer;
let n = 0;

before(async () => {
  srv = await startPop3TestServer();
});
after(async () => {
  await srv?.stop();
  assert.deepEqual(srv.pop3Errors, [], 'no unexpected POP3 errors');
});

const msg = (i: number, extra = '') => Buffer.from(`From: sender${i}@example.com\r\nTo: user@example.com\r\nSubject: message ${i}\r\nMessage-ID: <m${i}@example.com>\r\n\r\nBody of ${i}\r\n${extra}`);

/** A fresh user with `count` messages in INBOX (password "pw"). */
async function user(count: number, s: Pop3TestServer = srv): Promise<{ name: string; inbox: number; uidValidity: number }> {
  const name = `p3user${++n}`;
  const u = await provisionUser(s.store, name, 'pw');
  const mb = (await s.store.getMailbox(u.id, 'INBOX'))!;
  if (count > 0) await s.store.appendMessages(mb.id, Array.from({ length: count }, (_, i) => ({ data: msg(i + 1), flags: [] })));
  return { name, inbox: mb.id, uidValidity: mb.uidValidity };
}

async function pop(name: string, s: Pop3TestServer = srv): Promise<Pop3Client> {
  const c = await Pop3Client.connect(s.pop3Port);
  assert.match(await c.line(), /^\+OK /);
  assert.match(await c.login(name, 'pw'), /^\+OK /);
  return c;
}

test('greeting, CAPA in AUTHORIZATION and TRANSACTION (RFC 2449 §5), commands only in their state', async () => {
  const u = await user(1);
  const c = await Pop3Client.connect(srv.pop3Port);
  assert.match(await c.line(), /^\+OK Quire POP3 ready/);
  const capa = await c.cmdMulti('CAPA');
  assert.equal(capa.status.slice(0, 3), '+OK');
  for (const cap of ['TOP', 'UIDL', 'RESP-CODES', 'AUTH-RESP-CODE', 'PIPELINING', 'STLS', 'USER', 'SASL PLAIN', 'UTF8 USER']) assert.ok(capa.lines.includes(cap), `${cap} in ${capa.lines.join(',')}`);
  assert.ok(!capa.lines.some((l) => l.startsWith('EXPIRE') || l.startsWith('LOGIN-DELAY')), 'not configured, not advertised');
  for (const cmd of ['STAT', 'LIST', 'RETR 1', 'DELE 1', 'UIDL', 'TOP 1 1', 'RSET', 'NOOP']) assert.match(await c.cmd(cmd), /^-ERR /, cmd);
  assert.match(await c.cmd('PASS pw'), /^-ERR /, 'PASS without USER');
  assert.match(await c.login(u.name, 'pw'), /^\+OK /);
  const capa2 = await c.cmdMulti('CAPA');
  assert.ok(capa2.lines.includes('UIDL') && !capa2.lines.includes('USER') && !capa2.lines.includes('STLS'));
  for (const cmd of ['USER x', 'PASS x', 'AUTH PLAIN', 'STLS', 'UTF8']) assert.match(await c.cmd(cmd), /^-ERR /, cmd);
  assert.match(await c.cmd('QUIT'), /^\+OK/);
  await c.waitClosed();
});

test('STAT, LIST, UIDL, RETR byte for byte (stuffed, CRLF), TOP, DELE, RSET (RFC 1939 §5, §7)', async () => {
  const u = await user(0);
  const body = Buffer.from('From: a@example.com\r\nSubject: dots\r\n\r\n.leading dot\r\n..two\r\n.\r\nlast line\r\n');
  await srv.store.appendMessages(u.inbox, [{ data: body, flags: [] }, { data: msg(2), flags: [] }]);
  const c = await pop(u.name);
  const size2 = msg(2).length;
  assert.equal(await c.cmd('STAT'), `+OK 2 ${body.length + size2}`);
  const list = await c.cmdMulti('LIST');
  assert.deepEqual(list.lines, [`1 ${body.length}`, `2 ${size2}`]);
  assert.equal(await c.cmd('LIST 2'), `+OK 2 ${size2}`);
  const uidl = await c.cmdMulti('UIDL');
  assert.deepEqual(uidl.lines, [`1 ${uidlOf(u.uidValidity, 1)}`, `2 ${uidlOf(u.uidValidity, 2)}`]);
  assert.equal(await c.cmd('UIDL 1'), `+OK 1 ${uidlOf(u.uidValidity, 1)}`);
  assert.equal(await c.cmd('RETR 1'), `+OK ${body.length} octets`);
  assert.equal((await c.multilineRaw()).toString('latin1'), 'From: a@example.com\r\nSubject: dots\r\n\r\n..leading dot\r\n...two\r\n..\r\nlast line\r\n.\r\n');
  assert.equal(await c.cmd('TOP 1 1'), '+OK');
  assert.equal((await c.multilineRaw()).toString('latin1'), 'From: a@example.com\r\nSubject: dots\r\n\r\n..leading dot\r\n.\r\n');
  assert.match(await c.cmd('TOP 1 99999999999999999999'), /^\+OK/, 'a huge line count is the whole message');
  assert.equal((await c.multiline()).length, 7);
  assert.match(await c.cmd('DELE 1'), /^\+OK/);
  assert.match(await c.cmd('DELE 1'), /^-ERR /, 'already deleted');
  assert.match(await c.cmd('RETR 1'), /^-ERR /);
  assert.match(await c.cmd('LIST 1'), /^-ERR /);
  assert.equal(await c.cmd('STAT'), `+OK 1 ${size2}`);
  assert.deepEqual((await c.cmdMulti('LIST')).lines, [`2 ${size2}`], 'deleted messages are not listed; numbers do not change');
  assert.match(await c.cmd('RSET'), /^\+OK/);
  assert.equal(await c.cmd('STAT'), `+OK 2 ${body.length + size2}`);
  for (const bad of ['RETR 0', 'RETR 3', 'RETR -1', 'RETR abc', 'RETR 99999999999999999999', 'LIST 1 2', 'TOP 1', 'TOP 1 -1', 'TOP 1 x', 'DELE', 'RETR']) assert.match(await c.cmd(bad), /^-ERR /, bad);
  assert.match(await c.cmd('QUIT'), /^\+OK/);
  assert.deepEqual(await srv.store.listUids(u.inbox), [1, 2], 'RSET undid the deletion');
});

test('DELE is applied at QUIT as an expunge that an IDLE IMAP session is pushed; RETR sets \\Seen at QUIT', async () => {
  const u = await user(4);
  const imap = await RawClient.connect(srv.port, { login: [u.name, 'pw'] });
  await imap.command('SELECT INBOX');
  imap.write('i1 IDLE\r\n');
  assert.match(await imap.readLine(), /^\+ /);
  const c = await pop(u.name);
  assert.match(await c.cmd('DELE 1'), /^\+OK/);
  assert.match(await c.cmd('DELE 3'), /^\+OK/);
  assert.match(await c.cmd('RETR 2'), /^\+OK/);
  await c.multiline();
  // Nothing reaches the store before QUIT (RFC 1939 §6): IMAP still has all four, unflagged.
  assert.deepEqual(await srv.store.listUids(u.inbox), [1, 2, 3, 4]);
  assert.match(await c.cmd('QUIT'), /^\+OK .*2 messages deleted/);
  await c.waitClosed();
  let expunges = 0;
  const pushed = await imap.readUntil((l) => / EXPUNGE$/.test(l) && ++expunges === 2);
  assert.deepEqual(pushed.filter((l) => / EXPUNGE$/.test(l)).sort(), ['* 1 EXPUNGE', '* 3 EXPUNGE'], pushed.join('\n'));
  imap.write('DONE\r\n');
  await imap.readUntil((l) => l.startsWith('i1 '));
  const f = await imap.command('FETCH 1:* (UID FLAGS)');
  assert.deepEqual(f.untagged, ['* 1 FETCH (UID 2 FLAGS (\\Seen \\Recent))', '* 2 FETCH (UID 4 FLAGS (\\Recent))']);
  await imap.close();
});

test('a session that ends without QUIT (dropped connection, autologout) changes nothing', async () => {
  const u = await user(2);
  const c = await pop(u.name);
  assert.match(await c.cmd('DELE 1'), /^\+OK/);
  assert.match(await c.cmd('RETR 2'), /^\+OK/);
  await c.multiline();
  c.close();
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(await srv.store.listUids(u.inbox), [1, 2]);
  const metas = await srv.store.listMessages(u.inbox);
  assert.deepEqual(metas.map((m) => m.flags), [[], []]);
});

test('the maildrop is a snapshot: mail arriving during the session is not shown; mail IMAP expunged meanwhile answers -ERR', async () => {
  const u = await user(3);
  const c = await pop(u.name);
  assert.match(await c.cmd('STAT'), /^\+OK 3 /);
  await srv.store.appendMessages(u.inbox, [{ data: msg(9), flags: [] }]);
  assert.match(await c.cmd('STAT'), /^\+OK 3 /);
  assert.match(await c.cmd('LIST 4'), /^-ERR /);
  // IMAP expunges message 2 while the POP3 session holds it.
  const imap = await RawClient.connect(srv.port, { login: [u.name, 'pw'] });
  await imap.command('SELECT INBOX');
  await imap.command('UID STORE 2 +FLAGS (\\Deleted)');
  await imap.command('EXPUNGE');
  assert.match(await c.cmd('RETR 2'), /^-ERR /);
  assert.match(await c.cmd('TOP 2 0'), /^-ERR /);
  assert.match(await c.cmd('RETR 3'), /^\+OK /, 'the session goes on');
  await c.multiline();
  assert.match(await c.cmd('DELE 2'), /^\+OK/, 'DELE of a message already gone is harmless');
  assert.match(await c.cmd('QUIT'), /^\+OK/);
  assert.deepEqual(await srv.store.listUids(u.inbox), [1, 3, 4]);
  const d = await pop(u.name);
  assert.match(await d.cmd('STAT'), /^\+OK 3 /, 'the next session sees the new message');
  await d.cmd('QUIT');
  await imap.close();
});

test('two POP3 sessions without a lock (the default, as Dovecot): the second sees -ERR for what the first deleted', async () => {
  const u = await user(2);
  const a = await pop(u.name);
  const b = await pop(u.name);
  assert.match(await a.cmd('DELE 1'), /^\+OK/);
  assert.match(await a.cmd('QUIT'), /^\+OK/);
  await a.waitClosed();
  assert.match(await b.cmd('RETR 1'), /^-ERR /);
  assert.match(await b.cmd('RETR 2'), /^\+OK/);
  await b.multiline();
  assert.match(await b.cmd('QUIT'), /^\+OK/);
});

async function withServer(tweak: (o: Pop3Options) => void, fn: (s: Pop3TestServer) => Promise<void>): Promise<void> {
  const s = await startPop3TestServer({ tweak });
  try {
    await fn(s);
  } finally {
    await s.stop();
  }
}

test('lockSession: a second session gets -ERR [IN-USE] (RFC 2449 §8.1.2) until the first ends', async () => {
  await withServer((o) => (o.lockSession = true), async (s) => {
    const u = await user(1, s);
    const a = await pop(u.name, s);
    const b = await Pop3Client.connect(s.pop3Port);
    await b.line();
    assert.match(await b.login(u.name, 'pw'), /^-ERR \[IN-USE\] /);
    await b.waitClosed();
    await a.cmd('QUIT');
    await a.waitClosed();
    const c = await pop(u.name, s);
    await c.cmd('QUIT');
  });
});

test('LOGIN-DELAY advertised and enforced (RFC 2449 §6.5, §8.1.1); EXPIRE advertised as configured', async () => {
  await withServer((o) => {
    o.loginDelaySeconds = 600;
    o.expire = 'NEVER';
  }, async (s) => {
    const u = await user(0, s);
    const a = await Pop3Client.connect(s.pop3Port);
    await a.line();
    const capa = await a.cmdMulti('CAPA');
    assert.ok(capa.lines.includes('LOGIN-DELAY 600') && capa.lines.includes('EXPIRE NEVER'), capa.lines.join(','));
    assert.match(await a.login(u.name, 'pw'), /^\+OK/);
    await a.cmd('QUIT');
    const b = await Pop3Client.connect(s.pop3Port);
    await b.line();
    assert.match(await b.login(u.name, 'pw'), /^-ERR \[LOGIN-DELAY\] /);
    b.close();
  });
});

test('plaintext policy as IMAP: without TLS no USER/SASL in CAPA and -ERR [AUTH]; after STLS both work; pipelined plaintext after STLS is discarded', async () => {
  await withServer((o) => (o.plaintextAuth = 'never'), async (s) => {
    const u = await user(1, s);
    const c = await Pop3Client.connect(s.pop3Port);
    await c.line();
    const capa = await c.cmdMulti('CAPA');
    assert.ok(capa.lines.includes('STLS'));
    assert.ok(!capa.lines.includes('USER') && !capa.lines.some((l) => l.startsWith('SASL')), capa.lines.join(','));
    assert.match(await c.cmd(`USER ${u.name}`), /^-ERR \[AUTH\] /);
    assert.match(await c.cmd('AUTH PLAIN ' + Buffer.from(`\0${u.name}\0pw`).toString('base64')), /^-ERR \[AUTH\] /);
    // STLS with a command pipelined behind it in the clear: that command must not run.
    c.send(`STLS\r\nUSER ${u.name}\r\n`);
    assert.match(await c.line(), /^\+OK/);
    c.socket.removeAllListeners('data');
    c.socket.removeAllListeners('close');
    const secure = tls.connect({ socket: c.socket, rejectUnauthorized: false });
    await new Promise<void>((r, j) => { secure.once('secureConnect', () => r()); secure.once('error', j); });
    (c as unknown as { socket: tls.TLSSocket }).socket = secure;
    (c as unknown as { attach(s: tls.TLSSocket): void }).attach(secure);
    const capa2 = await c.cmdMulti('CAPA');
    assert.ok(capa2.lines.includes('USER') && !capa2.lines.includes('STLS'));
    assert.match(await c.cmd('PASS pw'), /^-ERR /, 'the USER sent before the handshake was discarded');
    assert.match(await c.cmd('STLS'), /^-ERR /, 'no second STLS');
    assert.match(await c.login(u.name, 'pw'), /^\+OK/);
    await c.cmd('QUIT');
  });
});

test('AUTH (RFC 5034): PLAIN with and without initial response, "*" cancels, bad base64, mechanism list, [AUTH] on failure', async () => {
  const u = await user(1);
  const c = await Pop3Client.connect(srv.pop3sPort, { tls: true });
  await c.line();
  assert.deepEqual((await c.cmdMulti('AUTH')).lines, ['PLAIN']);
  assert.match(await c.cmd('AUTH FOO'), /^-ERR /);
  assert.match(await c.cmd('AUTH PLAIN !!!'), /^-ERR /);
  assert.equal(await c.cmd('AUTH PLAIN'), '+ ', 'RFC 5034 §4: an empty challenge is "+ "');
  assert.match(await c.cmd('*'), /^-ERR /);
  assert.match(await c.cmd('AUTH PLAIN ' + Buffer.from(`\0${u.name}\0wrong`).toString('base64')), /^-ERR \[AUTH\] /);
  assert.equal(await c.cmd('AUTH PLAIN'), '+ ');
  assert.match(await c.cmd(Buffer.from(`\0${u.name}\0pw`).toString('base64')), /^\+OK /);
  assert.match(await c.cmd('STAT'), /^\+OK 1 /);
  await c.cmd('QUIT');
  const d = await Pop3Client.connect(srv.pop3sPort, { tls: true });
  await d.line();
  assert.match(await d.cmd('AUTH PLAIN ' + Buffer.from(`\0${u.name}\0pw`).toString('base64')), /^\+OK /);
  await d.cmd('QUIT');
});

test('ALPN (RFC 7301): "pop3" is negotiated; a client offering only another protocol is refused', async () => {
  const ok = tls.connect({ host: '127.0.0.1', port: srv.pop3sPort, rejectUnauthorized: false, ALPNProtocols: ['pop3'] });
  await new Promise<void>((r, j) => { ok.once('secureConnect', () => r()); ok.once('error', j); });
  assert.equal(ok.alpnProtocol, 'pop3');
  ok.destroy();
  const bad = tls.connect({ host: '127.0.0.1', port: srv.pop3sPort, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
  const err = await new Promise<Error | null>((r) => { bad.once('secureConnect', () => r(null)); bad.once('error', r); });
  assert.ok(err, 'handshake refused');
  bad.destroy();
});

test('PIPELINING: many commands in one write get their answers in order', async () => {
  const u = await user(20);
  const c = await Pop3Client.connect(srv.pop3Port);
  await c.line();
  let batch = `USER ${u.name}\r\nPASS pw\r\n`;
  for (let i = 1; i <= 20; i++) batch += `RETR ${i}\r\nDELE ${i}\r\n`;
  batch += 'QUIT\r\n';
  c.send(batch);
  assert.match(await c.line(), /^\+OK/);
  assert.match(await c.line(), /^\+OK/);
  for (let i = 1; i <= 20; i++) {
    assert.match(await c.line(), /^\+OK \d+ octets/);
    const lines = await c.multiline();
    assert.ok(lines.includes(`Subject: message ${i}`), lines.join('|'));
    assert.match(await c.line(), /^\+OK Marked/);
  }
  assert.match(await c.line(), /^\+OK .*20 messages deleted/);
  assert.deepEqual(await srv.store.listUids(u.inbox), []);
});

test('hostile input: long lines, garbage before login, huge numbers; each gets -ERR or a clean close, never a crash', async () => {
  const u = await user(1);
  const c = await Pop3Client.connect(srv.pop3Port);
  await c.line();
  assert.match(await c.cmd('X'.repeat(5000)), /^-ERR /);
  assert.match(await c.cmd('NOOPX'), /^-ERR /);
  assert.match(await c.cmd('CAPA'), /^\+OK/, 'still talking after a long line');
  await c.multiline();
  assert.match(await c.login(u.name, 'pw'), /^\+OK/);
  for (const x of ['LIST 4294967296', 'UIDL ' + '9'.repeat(200), 'DELE 1 1', '\u00ff\u00fe', 'RETR 1 2', 'LIST ' + 'x'.repeat(300)]) assert.match(await c.cmd(x), /^-ERR /, x);
  assert.match(await c.cmd('RETR 0000000001'), /^\+OK/);
  await c.multiline();
  assert.match(await c.cmd('TOP 1 00000000000000000001'), /^\+OK/);
  await c.multiline();
  c.close();
  // Garbage before login: a few tries, then a clean close.
  const g = await Pop3Client.connect(srv.pop3Port);
  await g.line();
  g.send('GET / HTTP/1.1\r\nHost: x\r\nAccept: */*\r\nUser-Agent: y\r\nZ: z\r\n\r\n');
  await g.waitClosed();
  assert.ok(g.closed);
  // An endless line without LF is dropped as it comes; the server stays responsive.
  const e = await Pop3Client.connect(srv.pop3Port);
  await e.line();
  for (let i = 0; i < 50; i++) e.send(Buffer.alloc(64 * 1024, 0x41));
  const other = await Pop3Client.connect(srv.pop3Port);
  assert.match(await other.line(), /^\+OK/);
  assert.match(await other.cmd('CAPA'), /^\+OK/);
  other.close();
  e.close();
});

test('a slow reader of a large RETR is served with backpressure and gets every byte; others are not stalled', async () => {
  const u = await user(0);
  const line = 'x'.repeat(998) + '\r\n';
  const big = Buffer.from('Subject: big\r\n\r\n' + line.repeat(20_000)); // 20 MB
  await srv.store.appendMessages(u.inbox, [{ data: big, flags: [] }]);
  const c = await pop(u.name);
  c.socket.pause();
  c.send('RETR 1\r\n');
  await new Promise((r) => setTimeout(r, 300));
  const t0 = Date.now();
  const other = await Pop3Client.connect(srv.pop3Port);
  assert.match(await other.line(), /^\+OK/);
  assert.ok(Date.now() - t0 < 2000, 'another client is served while the slow one holds a large response');
  other.close();
  c.socket.resume();
  assert.equal(await c.line(), `+OK ${big.length} octets`);
  const raw = await c.multilineRaw();
  assert.equal(raw.length, big.length + 3);
  assert.ok(raw.subarray(0, big.length).equals(big));
  await c.cmd('QUIT');
});

test('idle before login is closed after the pre-auth timeout; markSeen=retr sets \\Seen at once', async () => {
  await withServer((o) => {
    o.preAuthTimeoutMs = 1000;
    o.markSeen = 'retr';
  }, async (s) => {
    const c = await Pop3Client.connect(s.pop3Port);
    await c.line();
    assert.match(await c.line(), /^-ERR /);
    await c.waitClosed();
    const u = await user(1, s);
    const d = await pop(u.name, s);
    assert.match(await d.cmd('RETR 1'), /^\+OK/);
    await d.multiline();
    // The flag is stored once the message has been sent, before the next command is handled: a NOOP's
    // answer says RETR is done (right after the body, a busy store may not have it yet). No QUIT: at once.
    assert.match(await d.cmd('NOOP'), /^\+OK/);
    assert.deepEqual((await s.store.listMessages(u.inbox))[0]!.flags, ['\\Seen']);
    d.close();
  });
});
