// Connection caps, deadlines and TLS hardening (issue 10 items 2, 3, 10, 11),
// over real sockets against a real server: handshakes that never finish,
// the absolute login deadline, the pre-auth caps overall and per address,
// the per-user and per-user-address session caps, and ALPN.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient } from '../helpers/imap.js';
import type { Logger } from '../../src/server/options.js';

/** A logger that keeps what the server logs at info and above. */
function recorder(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const keep = (lvl: string) => (m: string, f?: Record<string, unknown>) => lines.push(`${lvl} ${m} ${JSON.stringify(f ?? {})}`);
  return { lines, log: { debug() {}, info: keep('info'), warn: keep('warn'), error: keep('error') } };
}

function rawConnect(port: number, localAddress?: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1', ...(localAddress ? { localAddress } : {}) }, () => resolve(s));
    s.once('error', reject);
  });
}

/** Resolves with the time (ms) until the server closed `s`, or rejects after `limitMs`. */
function closedWithin(s: net.Socket, limitMs: number): Promise<number> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    if (s.destroyed) return resolve(0);
    const t = setTimeout(() => reject(new Error(`socket still open after ${limitMs} ms`)), limitMs);
    s.on('error', () => {});
    s.once('close', () => {
      clearTimeout(t);
      resolve(Date.now() - t0);
    });
    s.resume();
  });
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The first bytes a real TLS client sends: a ClientHello record. */
async function clientHello(): Promise<Buffer> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const got = new Promise<Buffer>((resolve) => srv.once('connection', (s) => s.once('data', (d: Buffer) => { resolve(d); s.destroy(); })));
  const c = tls.connect({ port: (srv.address() as net.AddressInfo).port, host: '127.0.0.1', rejectUnauthorized: false });
  c.on('error', () => {});
  const hello = await got;
  c.destroy();
  srv.close();
  return hello;
}

test('TLS handshakes that never finish are closed after timeouts.tlsHandshakeMs, counted, and logged at info', async () => {
  const rec = recorder();
  const srv = await startTestServer({ tweak: (o) => { o.timeouts.tlsHandshakeMs = 400; o.log = rec.log; } });
  try {
    // Silent: TCP connected, nothing sent.
    const silent = await rawConnect(srv.tlsPort);
    await until(() => srv.server.connectionCount() === 1);
    assert.equal(srv.server.preAuthCount(), 1, 'a socket in its handshake counts as unauthenticated');
    const ms = await closedWithin(silent, 5000);
    assert.ok(ms >= 200, `closed after the deadline, not at once (${ms} ms)`);
    // Half a ClientHello.
    const hello = await clientHello();
    const half = await rawConnect(srv.tlsPort);
    half.write(hello.subarray(0, Math.floor(hello.length / 2)));
    await closedWithin(half, 5000);
    await until(() => srv.server.connectionCount() === 0);
    assert.ok(rec.lines.some((l) => l.startsWith('info TLS handshake timed out')), rec.lines.join('\n'));
    // Garbage instead of a ClientHello: closed at once, logged at info too.
    const junk = await rawConnect(srv.tlsPort);
    junk.write('a1 LOGIN alice secret-a\r\n');
    await closedWithin(junk, 3000);
    assert.ok(rec.lines.some((l) => l.startsWith('info TLS handshake failed')), rec.lines.join('\n'));
    await until(() => srv.server.connectionCount() === 0);
  } finally {
    await srv.stop();
  }
});

test('sockets in a TLS handshake count against limits.maxConnections', async () => {
  const srv = await startTestServer({ tweak: (o) => { o.limits.maxConnections = 2; o.limits.maxPreAuthConnections = 2; o.timeouts.tlsHandshakeMs = 60_000; } });
  try {
    const a = await rawConnect(srv.tlsPort);
    const b = await rawConnect(srv.tlsPort);
    await until(() => srv.server.connectionCount() === 2);
    const c = await RawClient.connect(srv.port);
    assert.match(c.greeting, /^\* BYE \[UNAVAILABLE\]/);
    // And on the implicit-TLS port the refused socket is closed before any handshake.
    const d = await rawConnect(srv.tlsPort);
    await closedWithin(d, 3000);
    a.destroy();
    b.destroy();
    await until(() => srv.server.connectionCount() === 0);
    const e = await RawClient.connect(srv.tlsPort, { tls: true });
    assert.match(e.greeting, /^\* OK/);
    await e.close();
  } finally {
    await srv.stop();
  }
});

test('the login deadline is absolute: one byte every 100 ms does not extend it', async () => {
  const srv = await startTestServer({ tweak: (o) => { o.timeouts.preAuthDeadlineMs = 1200; o.timeouts.preAuthMs = 60_000; } });
  try {
    // The deadline runs from the server's accept, which comes after this moment and may come well before the
    // greeting has reached the client on a busy machine: measured from before the connect, never from after it.
    const t0 = Date.now();
    const c = await RawClient.connect(srv.port);
    const dribble = setInterval(() => { if (!c.closed) c.write('a1 NOOP\r\n'[(Date.now() / 100 | 0) % 9]!); }, 100);
    try {
      const lines = await c.readUntil((l) => l.startsWith('* BYE'), 8000);
      assert.match(lines.at(-1)!, /^\* BYE /);
      const ms = Date.now() - t0;
      assert.ok(ms >= 1150 && ms < 7000, `closed by the deadline (${ms} ms)`);
    } finally {
      clearInterval(dribble);
    }
    await until(() => c.closed);
    // A client that logs in in time is not cut by it.
    const d = await RawClient.connect(srv.port, { login: ['alice', 'secret-a'] });
    await new Promise((r) => setTimeout(r, 1600));
    assert.match((await d.command('NOOP')).tagged, /^t\d+ OK/);
    await d.close();
  } finally {
    await srv.stop();
  }
});

test('unauthenticated connections are capped per source address; other addresses and logged-in users are unaffected', async () => {
  const srv = await startTestServer({ tweak: (o) => { o.limits.maxPreAuthConnectionsPerAddress = 2; } });
  try {
    const a = await RawClient.connect(srv.port, { localAddress: '127.0.0.1' });
    const b = await RawClient.connect(srv.port, { localAddress: '127.0.0.1' });
    assert.match(a.greeting, /^\* OK/);
    const c = await RawClient.connect(srv.port, { localAddress: '127.0.0.1' });
    assert.match(c.greeting, /^\* BYE \[UNAVAILABLE\] Too many unauthenticated connections/);
    await until(() => c.closed);
    const other = await RawClient.connect(srv.port, { localAddress: '127.0.0.2' });
    assert.match(other.greeting, /^\* OK/);
    // A login leaves the pre-auth count: the address may open another.
    assert.match((await a.command('LOGIN alice secret-a')).tagged, /OK/);
    const d = await RawClient.connect(srv.port, { localAddress: '127.0.0.1' });
    assert.match(d.greeting, /^\* OK/);
    for (const x of [a, b, d, other]) await x.close();
  } finally {
    await srv.stop();
  }
});

test('unauthenticated connections overall stay below the global cap (limits.maxPreAuthConnections)', async () => {
  const srv = await startTestServer({ tweak: (o) => { o.limits.maxConnections = 3; o.limits.maxPreAuthConnections = 1; } });
  try {
    const user = await RawClient.connect(srv.port, { login: ['alice', 'secret-a'] });
    const hog = await RawClient.connect(srv.port, { localAddress: '127.0.0.2' });
    assert.match(hog.greeting, /^\* OK/);
    const refused = await RawClient.connect(srv.port, { localAddress: '127.0.0.3' });
    assert.match(refused.greeting, /^\* BYE \[UNAVAILABLE\] Too many connections waiting to log in/);
    assert.equal(srv.server.connectionCount(), 2, 'a slot for a logged-in user is still free');
    assert.match((await user.command('NOOP')).tagged, /OK/);
    await hog.close();
    await until(() => srv.server.preAuthCount() === 0);
    const bob = await RawClient.connect(srv.port, { login: ['bob', 'secret-b'] });
    assert.equal(srv.server.connectionCount(), 2);
    await bob.close();
    await user.close();
  } finally {
    await srv.stop();
  }
});

test('sessions per user and source address, and per user, are capped with NO [LIMIT] at LOGIN and AUTHENTICATE', async () => {
  const srv = await startTestServer({ tweak: (o) => { o.limits.maxConnectionsPerUserAddress = 2; o.limits.maxConnectionsPerUser = 3; } });
  try {
    const a1 = await RawClient.connect(srv.port, { login: ['alice', 'secret-a'], localAddress: '127.0.0.1' });
    const a2 = await RawClient.connect(srv.port, { login: ['alice', 'secret-a'], localAddress: '127.0.0.1' });
    const a3 = await RawClient.connect(srv.port, { localAddress: '127.0.0.1' });
    const r = await a3.command('LOGIN alice secret-a');
    assert.match(r.tagged, /^t\d+ NO \[LIMIT\] .*from your address/);
    // The refused login leaves a usable, unauthenticated connection.
    assert.match((await a3.command('SELECT INBOX')).tagged, /^t\d+ BAD/);
    const plain = Buffer.from('\0alice\0secret-a').toString('base64');
    assert.match((await a3.command(`AUTHENTICATE PLAIN ${plain}`)).tagged, /^t\d+ NO \[LIMIT\]/);
    assert.match((await a3.command('LOGIN bob secret-b')).tagged, /^t\d+ OK/);
    // Another address: allowed up to the per-user cap.
    const b1 = await RawClient.connect(srv.port, { login: ['alice', 'secret-a'], localAddress: '127.0.0.2' });
    const c1 = await RawClient.connect(srv.port, { localAddress: '127.0.0.3' });
    assert.match((await c1.command('LOGIN alice secret-a')).tagged, /^t\d+ NO \[LIMIT\] Too many connections for this user$/);
    // A logout frees the slot.
    await a1.command('LOGOUT');
    await until(() => srv.server.connectionCount() === 4);
    assert.match((await c1.command('LOGIN alice secret-a')).tagged, /^t\d+ OK/);
    for (const x of [a2, a3, b1, c1]) await x.close();
  } finally {
    await srv.stop();
  }
});

/** A TLS client offering `alpn`: resolves with the negotiated protocol and greeting, or the handshake error code. */
function tlsTry(port: number, alpn: string[] | undefined): Promise<{ ok: true; alpn: string | false; greeting: string } | { ok: false; code: string }> {
  return new Promise((resolve) => {
    const s = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', rejectUnauthorized: false, ...(alpn ? { ALPNProtocols: alpn } : {}) });
    s.once('secureConnect', () => s.once('data', (d: Buffer) => { resolve({ ok: true, alpn: s.alpnProtocol ?? false, greeting: d.toString() }); s.destroy(); }));
    s.once('error', (e: NodeJS.ErrnoException) => resolve({ ok: false, code: e.code ?? e.message }));
  });
}

test('ALPN: imap accepted, only-other protocols refused with no_application_protocol, none accepted (implicit TLS and STARTTLS)', async () => {
  const srv = await startTestServer();
  try {
    const http = await tlsTry(srv.tlsPort, ['http/1.1']);
    assert.deepEqual(http, { ok: false, code: 'ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL' });
    const imap = await tlsTry(srv.tlsPort, ['h2', 'imap']);
    assert.ok(imap.ok && imap.alpn === 'imap' && imap.greeting.startsWith('* OK'), JSON.stringify(imap));
    const none = await tlsTry(srv.tlsPort, undefined);
    assert.ok(none.ok && none.alpn === false && none.greeting.startsWith('* OK'), JSON.stringify(none));
    await until(() => srv.server.connectionCount() === 0);

    // STARTTLS: the same rules on the upgraded socket.
    const starttls = async (alpn: string[] | undefined) => {
      const c = await RawClient.connect(srv.port);
      assert.match((await c.command('STARTTLS')).tagged, /OK/);
      const raw = c.socket;
      raw.removeAllListeners('data');
      return new Promise<string>((resolve) => {
        const s = tls.connect({ socket: raw, servername: 'localhost', rejectUnauthorized: false, ...(alpn ? { ALPNProtocols: alpn } : {}) }, () => {
          s.write('a CAPABILITY\r\n');
          s.once('data', (d: Buffer) => { resolve(`ok ${s.alpnProtocol} ${d.toString().split('\r\n')[0]}`); s.destroy(); });
        });
        s.once('error', (e: NodeJS.ErrnoException) => resolve(`error ${e.code}`));
      });
    };
    assert.equal(await starttls(['http/1.1']), 'error ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL');
    assert.match(await starttls(['imap']), /^ok imap \* CAPABILITY /);
    assert.match(await starttls(undefined), /^ok false \* CAPABILITY /);
    await until(() => srv.server.connectionCount() === 0);
  } finally {
    await srv.stop();
  }
});

test('a STARTTLS handshake that never finishes is closed after timeouts.tlsHandshakeMs', async () => {
  const srv: TestServer = await startTestServer({ tweak: (o) => { o.timeouts.tlsHandshakeMs = 400; } });
  try {
    const c = await RawClient.connect(srv.port);
    assert.match((await c.command('STARTTLS')).tagged, /OK/);
    const ms = await closedWithin(c.socket, 5000);
    assert.ok(ms >= 200, `closed after the deadline (${ms} ms)`);
    await until(() => srv.server.connectionCount() === 0);
  } finally {
    await srv.stop();
  }
});
