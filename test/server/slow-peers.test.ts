// Slow and stalled peers hold bounded memory and time (issue 10): a literal
// announced as 50 MB and trickled is cut by the literal progress window
// (the idle timer alone is reset by every byte); a client that pipelines
// big FETCHes and never reads holds only a bounded amount of queued output
// and is closed by the idle timeout, while other users are served.
// Pre-auth, mid-handshake and login-deadline cases: connection-limits.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startTestServer } from '../helpers/server.js';
import { RawClient, message } from '../helpers/imap.js';

test('a literal announced as 50 MB and trickled one byte at a time is cut by timeouts.literalProgressMs', async () => {
  const srv = await startTestServer({ tweak: (o) => { o.timeouts.literalProgressMs = 600; } });
  try {
    const c = await RawClient.connect(srv.port, { login: ['alice', 'secret-a'] });
    c.write('A1 APPEND INBOX {50000000}\r\n');
    assert.match(await c.readLine(), /^\+ /);
    const t0 = Date.now();
    const drip = setInterval(() => c.write('x'), 50);
    try {
      const lines = await c.readUntil((l) => l.startsWith('* BYE'), 10_000);
      assert.match(lines.at(-1)!, /^\* BYE .*too slowly/);
      assert.ok(Date.now() - t0 >= 500, 'not before the window ends');
    } finally {
      clearInterval(drip);
    }
    // A synchronizing literal announced and never sent is cut the same way.
    const d = await RawClient.connect(srv.port, { login: ['alice', 'secret-a'] });
    d.write('A1 APPEND INBOX {50000000}\r\n');
    assert.match(await d.readLine(), /^\+ /);
    assert.match((await d.readUntil((l) => l.startsWith('* BYE'), 10_000)).at(-1)!, /too slowly/);
    // A literal that arrives at a real pace is not affected, whatever its size.
    const e = await RawClient.connect(srv.port, { login: ['alice', 'secret-a'] });
    const big = Buffer.concat([Buffer.from(message(1)), Buffer.alloc(3 * 1024 * 1024, 'y')]);
    e.write(`A2 APPEND INBOX {${big.length}}\r\n`);
    assert.match(await e.readLine(), /^\+ /);
    for (let off = 0; off < big.length; off += 512 * 1024) {
      e.write(big.subarray(off, off + 512 * 1024));
      await new Promise((r) => setTimeout(r, 100));
    }
    e.write('\r\n');
    assert.match((await e.collect('A2')).tagged, /^A2 OK/);
    await e.close();
  } finally {
    await srv.stop();
  }
});

test('a client that pipelines big FETCHes and never reads holds bounded output, is closed by the idle timeout, and stalls nobody', async () => {
  const srv = await startTestServer({ tweak: (o) => { o.timeouts.authenticatedMs = 3000; o.idleKeepaliveMs = 1000; } });
  try {
    const user = (await srv.store.getUser('alice'))!;
    const inbox = (await srv.store.getMailbox(user.id, 'INBOX'))!;
    const body = 'z'.repeat(20_000);
    await srv.store.appendMessages(inbox.id, Array.from({ length: 400 }, (_, i) => ({ data: Buffer.from(message(i + 1, { body })), flags: [] })));
    // The reader that never reads: a small receive buffer, and no 'data' handler draining it.
    const sink = net.connect({ port: srv.port, host: '127.0.0.1' });
    sink.on('error', () => {});
    await new Promise<void>((r) => sink.once('connect', () => r()));
    sink.pause();
    sink.write('a LOGIN alice secret-a\r\nb SELECT INBOX\r\n' + Array.from({ length: 50 }, (_, i) => `f${i} FETCH 1:* (BODY[])\r\n`).join(''));
    const other = await RawClient.connect(srv.port, { login: ['bob', 'secret-b'] });
    let peak = 0;
    const t0 = Date.now();
    let closed = false;
    sink.once('close', () => { closed = true; });
    while (!closed && Date.now() - t0 < 15_000) {
      peak = Math.max(peak, srv.server.bufferedOutputBytes());
      const t = Date.now();
      assert.match((await other.command('NOOP')).tagged, /OK/);
      assert.ok(Date.now() - t < 5000, 'the other user is served');
      if (srv.server.connectionCount() === 1) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    // 400 messages × 20 KB × 50 FETCHes = 400 MB asked for; what waits in user space stays around one message plus the socket buffer.
    assert.ok(peak < 4 * 1024 * 1024, `queued output peaked at ${peak} bytes`);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(srv.server.connectionCount(), 1, 'the non-reading connection was closed by the idle timeout');
    sink.destroy();
    await other.close();
  } finally {
    await srv.stop();
  }
});
