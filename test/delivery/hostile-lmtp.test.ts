// Issue 10 item 6 over a real socket: 8-bit addresses without the SMTPUTF8 parameter are
// refused with the RFC 6531 / RFC 3463 codes and never echoed; Delivered-To
// is written as Dovecot's LMTP writes it (one recipient: after Return-Path).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { LmtpClient, dataOf, startTestLmtp } from './helpers.js';
import type { RunningLmtp } from '../../src/delivery/server.js';

let ts: TestServer;
let lmtp: RunningLmtp;
let port: number;
before(async () => {
  ts = await startTestServer();
  ({ lmtp, port } = await startTestLmtp(ts.store));
});
after(async () => {
  await lmtp.close();
  await ts.stop();
});

async function session(): Promise<LmtpClient> {
  const c = await LmtpClient.connect(port);
  await c.line();
  c.send('LHLO client.test\r\n');
  const caps = await c.reply();
  assert.ok(caps.some((l) => /^250[- ]SMTPUTF8$/.test(l)), 'SMTPUTF8 is offered (RFC 6531); these tests send no SMTPUTF8 parameter');
  return c;
}

const raw = (s: string, bytes: number[], rest: string) => Buffer.concat([Buffer.from(s, 'latin1'), Buffer.from(bytes), Buffer.from(rest, 'latin1')]);

test('MAIL FROM / RCPT TO with 8-bit addresses: 553 5.6.7 for UTF-8, 501 5.1.x for other bytes, no echo', async () => {
  const c = await session();
  c.send(raw('MAIL FROM:<', [0xe2, 0x82], '@x>\r\n')); // truncated UTF-8
  assert.match(await c.line(), /^501 5\.1\.7 /);
  c.send(raw('MAIL FROM:<', [0xff, 0xfe], '@x>\r\n'));
  assert.match(await c.line(), /^501 5\.1\.7 /);
  c.send(Buffer.from('MAIL FROM:<café@x.org>\r\n', 'utf8'));
  assert.match(await c.line(), /^553 5\.6\.7 /);
  assert.match(await c.cmd('MAIL FROM:<sender@x.org>'), /^250 /);
  c.send(Buffer.from('RCPT TO:<alicé@x>\r\n', 'utf8'));
  const r1 = await c.line();
  assert.match(r1, /^553 5\.6\.7 /);
  c.send(raw('RCPT TO:<', [0xff], 'alice@x>\r\n'));
  const r2 = await c.line();
  assert.match(r2, /^501 5\.1\.3 /);
  for (const r of [r1, r2]) assert.ok(!/[^\x20-\x7e]/.test(r) && !r.includes('alic'), `no echo, no mojibake: ${JSON.stringify(r)}`);
  assert.match(await c.cmd('RCPT TO:<alice>'), /^250 2\.1\.5 <alice> /);
  c.close();
});

test('Delivered-To: after Return-Path with one recipient, absent with several (as Dovecot)', async () => {
  const c = await session();
  const body = 'Subject: dt\r\nFrom: a@b\r\n\r\nhello\r\n';
  assert.match(await c.cmd('MAIL FROM:<s@x.org>'), /^250 /);
  assert.match(await c.cmd('RCPT TO:<alice+work@quire.test>'), /^250 /);
  assert.match(await c.cmd('DATA'), /^354 /);
  c.send(dataOf(body));
  assert.match(await c.line(), /^250 /);
  assert.match(await c.cmd('MAIL FROM:<s@x.org>'), /^250 /);
  assert.match(await c.cmd('RCPT TO:<alice>'), /^250 /);
  assert.match(await c.cmd('RCPT TO:<bob>'), /^250 /);
  assert.match(await c.cmd('DATA'), /^354 /);
  c.send(dataOf(body));
  assert.equal((await c.reply()).length, 1);
  assert.match(await c.line(), /^250 /);
  c.close();

  const text = async (user: string, mailbox: string) => {
    const u = (await ts.store.getUser(user))!;
    const mb = (await ts.store.getMailbox(u.id, mailbox))!;
    const out: string[] = [];
    for (const m of await ts.store.listMessages(mb.id)) {
      const b = (await ts.store.openMessage(mb.id, m.uid))!;
      out.push((await b.read(0, b.size)).toString('latin1'));
    }
    return out;
  };
  const work = await text('alice', 'work').catch(() => [] as string[]);
  const inboxA = await text('alice', 'INBOX');
  const single = work[0] ?? inboxA[0]!;
  assert.match(single, /^Return-Path: <s@x\.org>\r\nDelivered-To: alice\+work@quire\.test\r\nReceived: /);
  const multi = inboxA.at(-1)!;
  assert.match(multi, /^Return-Path: <s@x\.org>\r\nReceived: /);
  assert.ok(!/^Delivered-To:/m.test(multi));
  assert.ok(!/^Delivered-To:/m.test((await text('bob', 'INBOX')).at(-1)!));
});
