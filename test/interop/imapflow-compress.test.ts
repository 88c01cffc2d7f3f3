// imapflow with COMPRESS=DEFLATE (its default when the server offers it;
// `disableCompression: false` says so explicitly): the server's log shows
// compression started for each session, and the bytes on the wire are far
// fewer than the mail moved, so the stream really was deflated (over STARTTLS:
// imapflow upgrades when offered, so this is compression inside TLS).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ImapFlow } from 'imapflow';
import { startTestServer, type TestServer } from '../helpers/server.js';
import type { Logger } from '../../src/server/options.js';

let srv: TestServer;
const records: { msg: string; fields: Record<string, unknown> }[] = [];

before(async () => {
  srv = await startTestServer({
    users: [['flow', 'flow-pass']],
    tweak: (o) => {
      const base = o.log;
      const capture = (level: keyof Logger) => (msg: string, fields?: Record<string, unknown>) => {
        records.push({ msg, fields: fields ?? {} });
        if (level === 'error') base.error(msg, fields);
      };
      o.log = { debug: capture('debug'), info: capture('info'), warn: capture('warn'), error: capture('error') };
    },
  });
});
after(async () => { await srv?.stop(); });

function client(): ImapFlow {
  return new ImapFlow({ host: '127.0.0.1', port: srv.port, secure: false, tls: { ca: [srv.cert], servername: 'localhost' }, auth: { user: 'flow', pass: 'flow-pass' }, logger: false, disableCompression: false, disableAutoIdle: true });
}

function message(i: number, bodyLines: number): Buffer {
  const body = Array.from({ length: bodyLines }, (_, j) => `Message ${i} line ${j}: the quick brown fox jumps over the lazy dog`).join('\r\n');
  return Buffer.from(`From: a@example.com\r\nTo: flow@example.com\r\nSubject: m${i}\r\nMessage-ID: <m${i}@example.com>\r\n\r\n${body}\r\n`);
}

test('imapflow negotiates COMPRESS=DEFLATE: append, fetch byte-exact, IDLE push', async () => {
  const c = client();
  await c.connect();
  await c.mailboxCreate('Flow');
  const sent: Buffer[] = [];
  for (let i = 0; i < 20; i++) {
    const m = message(i, i === 0 ? 20_000 : 50);
    sent.push(m);
    await c.append('Flow', m);
  }
  await c.mailboxOpen('Flow');
  let n = 0;
  for await (const m of c.fetch('1:*', { uid: true, source: true })) {
    assert.ok(m.source!.equals(sent[n]!), `message ${n} byte-exact`);
    n++;
  }
  assert.equal(n, 20);

  // IDLE on the compressed session; a second compressed session appends.
  const d = client();
  await d.connect();
  const exists = new Promise<number>((resolve) => c.on('exists', (e: { count: number }) => resolve(e.count)));
  const idle = c.idle();
  await new Promise((r) => setTimeout(r, 200));
  await d.append('Flow', message(99, 3));
  let timer: NodeJS.Timeout | undefined;
  const count = await Promise.race([exists, new Promise<number>((_, rej) => { timer = setTimeout(() => rej(new Error('no IDLE push')), 10_000); })]);
  clearTimeout(timer);
  assert.equal(count, 21);
  await d.logout();
  await c.logout();
  await idle.catch(() => undefined);

  await new Promise((r) => setTimeout(r, 200));
  const started = records.filter((r) => r.msg === 'compression started');
  assert.equal(started.length, 2, 'both imapflow sessions sent COMPRESS DEFLATE');
  const closed = records.filter((r) => r.msg === 'connection closed').map((r) => r.fields);
  const total = sent.reduce((a, b) => a + b.length, 0);
  const biggestIn = Math.max(...closed.map((f) => Number(f.bytesIn)));
  const biggestOut = Math.max(...closed.map((f) => Number(f.bytesOut)));
  // The mail went up once and came down once; deflated it is a fraction of that on the wire.
  assert.ok(biggestIn < total / 4, `uploaded ${biggestIn} bytes for ${total} bytes of mail`);
  assert.ok(biggestOut < total / 4, `downloaded ${biggestOut} bytes for ${total} bytes of mail`);
});
