// CATENATE and URLFETCH with big messages (URLFETCH answers above 256 KiB
// stream from the message file), a CATENATE command fed one byte at a time
// with synchronizing literals, and percent-encoded UTF-8 mailbox names in
// URLs (RFC 5092 §3) from a modified-UTF-7 (IMAP4rev1) session.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient } from '../helpers/imap.js';

let srv: TestServer;
const alice = ['alice', 'secret-a'] as [string, string];
before(async () => { srv = await startTestServer(); });
after(async () => { await srv.stop(); });

function bigMessage(bytes: number): Buffer {
  const head = 'Subject: big\r\nContent-Type: text/plain\r\n\r\n';
  const line = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-_.!\r\n';
  let body = '';
  for (let i = 0; body.length < bytes; i++) body += `${String(i).padStart(8, '0')} ${line}`;
  return Buffer.from(head + body, 'latin1');
}

async function stored(mailbox: string, uid: number): Promise<Buffer> {
  const mb = (await srv.store.getMailbox(1, mailbox))!;
  const b = (await srv.store.openMessage(mb.id, uid))!;
  return b.read(0, b.size);
}

test('a 3 MiB message: CATENATE of it whole and a PARTIAL window, URLFETCH of it streamed, byte for byte', async () => {
  const c = await RawClient.connect(srv.port, { login: alice });
  await c.command('CREATE Big');
  const msg = bigMessage(3 * 1024 * 1024);
  assert.match((await c.command(Buffer.concat([Buffer.from(`APPEND Big {${msg.length}+}\r\n`), msg]), 'a')).tagged, /^a OK /);
  const r = await c.command(`APPEND Big CATENATE (TEXT {5+}\r\nX\r\n\r\n URL "/Big/;UID=1" URL "/Big/;UID=1/;SECTION=TEXT/;PARTIAL=1000.2000000")`, 'c');
  assert.match(r.tagged, /^c OK \[APPENDUID \d+ 2\] /);
  const text = msg.subarray(msg.indexOf('\r\n\r\n') + 4);
  assert.ok((await stored('Big', 2)).equals(Buffer.concat([Buffer.from('X\r\n\r\n'), msg, text.subarray(1000, 2_001_000)])));
  const g = await c.command('GENURLAUTH "imap://alice@h/Big/;UID=1;URLAUTH=authuser" INTERNAL', 'g');
  const url = /^\* GENURLAUTH (\S+)$/.exec(g.untagged[0]!)![1]!;
  const f = await c.command(`URLFETCH ${url}`, 'f');
  assert.match(f.tagged, /^f OK /);
  const want = `* URLFETCH ${url} {${msg.length}}\r\n${msg.toString('latin1')}`;
  assert.equal(f.untagged[0]!.length, want.length);
  assert.ok(f.untagged[0] === want);
  assert.deepEqual(srv.errors, []);
  await c.close();
});

test('CATENATE with synchronizing literals fed one byte at a time', async () => {
  const c = await RawClient.connect(srv.port, { login: alice });
  await c.command('CREATE Slow');
  await c.command('APPEND Slow {20+}\r\nSubject: s\r\n\r\nslow\r\n');
  await c.close();
  const sock = net.connect({ port: srv.port, host: '127.0.0.1' });
  let got = '';
  sock.on('data', (d) => { got += d.toString('latin1'); });
  const waitFor = async (s: string, from = 0) => {
    const t0 = Date.now();
    while (got.indexOf(s, from) < 0) {
      if (Date.now() - t0 > 10_000) throw new Error(`timeout waiting for ${s}: ${got}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  const send = async (s: string) => {
    for (const ch of s) {
      sock.write(ch);
      await new Promise((r) => setImmediate(r));
    }
  };
  await waitFor('* OK');
  await send('l LOGIN alice secret-a\r\n');
  await waitFor('l OK');
  // Each synchronizing literal waits for its continuation request (RFC 9051 §7.5).
  let at = got.length;
  await send('x APPEND Slow CATENATE (TEXT {3}\r\n');
  await waitFor('\r\n+ ', at - 2);
  at = got.length;
  await send('ab\n URL "/Slow/;UID=1/;SECTION=TEXT" TEXT {2}\r\n');
  await waitFor('\r\n+ ', at - 2);
  await send('!!)\r\n');
  await waitFor('x OK');
  assert.match(got, /x OK \[APPENDUID \d+ 2\] /);
  sock.destroy();
  assert.equal((await stored('Slow', 2)).toString('latin1'), 'ab\nslow\r\n!!');
});

test('UTF-8 mailbox names are percent-encoded in URLs; a modified-UTF-7 session names the same mailbox', async () => {
  const c = await RawClient.connect(srv.port, { login: alice });
  // "Ünï Sent" in modified UTF-7 (RFC 3501 §5.1.3) for this IMAP4rev1 session.
  assert.match((await c.command('CREATE "&ANw-n&AO8- Sent"', 'u')).tagged, /^u OK /);
  await c.command('APPEND "&ANw-n&AO8- Sent" {20+}\r\nSubject: u\r\n\r\nutf8\r\n');
  const r = await c.command('APPEND INBOX CATENATE (URL "/%C3%9Cn%C3%AF%20Sent/;UID=1/;SECTION=TEXT")', 'v');
  assert.match(r.tagged, /^v OK /);
  const uid = Number(/APPENDUID \d+ (\d+)/.exec(r.tagged)![1]);
  assert.ok((await stored('INBOX', uid)).equals(Buffer.from('utf8\r\n')));
  const g = await c.command('GENURLAUTH "imap://alice@h/%C3%9Cn%C3%AF%20Sent/;UID=1/;SECTION=TEXT;URLAUTH=authuser" INTERNAL', 'g');
  assert.match(g.tagged, /^g OK /);
  const url = /^\* GENURLAUTH (\S+)$/.exec(g.untagged[0]!)![1]!;
  const b = await RawClient.connect(srv.port, { login: ['bob', 'secret-b'] });
  assert.deepEqual((await b.command(`URLFETCH ${url}`)).untagged, [`* URLFETCH ${url} {6}\r\nutf8\r\n`]);
  await b.close();
  await c.close();
});
