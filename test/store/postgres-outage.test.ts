// PostgreSQL going away under a running IMAP server (issue 13 item 7): a
// TCP forwarder stands between the server and PostgreSQL, so the test can
// "restart" the database for this server alone (refuse and cut every
// connection, then accept again) without touching the shared one. While it
// is down, commands get NO [UNAVAILABLE] (RFC 5530) and the connection
// stays usable; once it is back, the same server (no restart) serves again
// and an IDLEing session gets pushes again (the LISTEN connection came back
// and caught up from the journal).
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient, message } from '../helpers/imap.js';
import { pgSkip } from '../helpers/pg.js';

const skip = await pgSkip();

/** A forwarder to 127.0.0.1:5432 that can be taken down (every socket cut) and brought back on the same port. */
class Forwarder {
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  port = 0;

  async up(): Promise<void> {
    if (this.server) return;
    const server = net.createServer((c) => {
      const u = net.connect(5432, '127.0.0.1');
      for (const s of [c, u]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      c.pipe(u);
      u.pipe(c);
      c.on('close', () => u.destroy());
      u.on('close', () => c.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', resolve);
    });
    this.port = (server.address() as net.AddressInfo).port;
    this.server = server;
  }

  async down(): Promise<void> {
    const s = this.server;
    this.server = null;
    for (const x of this.sockets) x.destroy();
    if (s) await new Promise((r) => s.close(r));
  }
}

describe('PostgreSQL outage under a running server', { skip }, () => {
  const fwd = new Forwarder();
  let srv: TestServer;
  before(async () => {
    await fwd.up();
    srv = await startTestServer({ store: 'postgres', pgUrl: `postgres://postgres@127.0.0.1:${fwd.port}/test` });
  });
  after(async () => {
    await fwd.up();
    await srv?.stop();
    await fwd.down();
  });

  test('NO [UNAVAILABLE] while the database is down; the same server recovers and IDLE pushes resume', async () => {
    const login = ['alice', 'secret-a'] as [string, string];
    const a = await RawClient.connect(srv.port, { login });
    const b = await RawClient.connect(srv.port, { login });
    await a.command('SELECT INBOX');
    assert.match((await b.append('INBOX', message(1))).tagged, /OK/);

    await fwd.down();
    const t0 = performance.now();
    const refused = await b.append('INBOX', message(2));
    assert.match(refused.tagged, /^\S+ NO \[UNAVAILABLE\]/, refused.raw);
    assert.ok(performance.now() - t0 < 10_000, 'the failure comes within the connect timeout');
    assert.match((await b.command('STATUS INBOX (MESSAGES)')).tagged, /^\S+ NO \[UNAVAILABLE\]/);
    assert.match((await b.command('NOOP')).tagged, /OK/, 'the session itself stays usable');

    await fwd.up();
    // The pool reconnects on the next call; the LISTEN connection within its backoff (at most 2 s).
    let ok = false;
    for (let i = 0; i < 50 && !ok; i++) {
      ok = /OK/.test((await b.command('STATUS INBOX (MESSAGES)')).tagged);
      if (!ok) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(ok, 'the store answers again without a server restart');
    await new Promise((r) => setTimeout(r, 2500));
    a.write('i1 IDLE\r\n');
    assert.match(await a.readLine(), /^\+ /);
    assert.match((await b.append('INBOX', message(3))).tagged, /OK/);
    // (message 1's EXISTS, held since a's last command, comes first.)
    assert.equal((await a.readUntil((l) => l === '* 2 EXISTS', 3000)).at(-1), '* 2 EXISTS');
    a.write('DONE\r\n');
    await a.readUntil((l) => l.startsWith('i1 OK'));
    await a.close();
    await b.close();
  });
});
