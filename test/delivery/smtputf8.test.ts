// SMTPUTF8 in LMTP (RFC 6531) over a real socket: advertised at LHLO;
// `MAIL FROM:<...> SMTPUTF8` takes UTF-8 addresses and RCPT delivers to a
// UTF-8 local part that exists; trace fields are UTF-8 with "with UTF8LMTP"
// (§4.3); without the parameter 8-bit addresses are still refused
// (test/delivery/hostile-lmtp.test.ts); an IMAP session then reads the
// message as UTF-8 (UTF8=ACCEPT) or downgraded (a legacy session).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient } from '../helpers/imap.js';
import { LmtpClient, dataOf, startTestLmtp } from './helpers.js';
import type { RunningLmtp } from '../../src/delivery/server.js';
import { decodeEncodedWords } from '../../src/mime/index.js';

let ts: TestServer;
let lmtp: RunningLmtp;
let port: number;
before(async () => {
  ts = await startTestServer({ users: [['alice', 'secret-a'], ['ünal', 'secret-u'], ['用户', 'secret-y']] });
  ({ lmtp, port } = await startTestLmtp(ts.store));
});
after(async () => {
  await lmtp.close();
  await ts.stop();
});

/** A reply line as text (the client reads latin1; SMTPUTF8 replies may carry UTF-8). */
const utf8 = (line: string) => Buffer.from(line, 'latin1').toString('utf8');

async function session(): Promise<LmtpClient> {
  const c = await LmtpClient.connect(port);
  await c.line();
  c.send('LHLO client.test\r\n');
  const caps = await c.reply();
  assert.ok(caps.some((l) => /^250[- ]SMTPUTF8$/.test(l)), caps.join('|'));
  assert.ok(caps.some((l) => /^250[- ]8BITMIME$/.test(l)), 'RFC 6531 §3: SMTPUTF8 goes with 8BITMIME');
  return c;
}

async function inbox(user: string): Promise<string[]> {
  const u = (await ts.store.getUser(user))!;
  const mb = (await ts.store.getMailbox(u.id, 'INBOX'))!;
  const out: string[] = [];
  for (const m of await ts.store.listMessages(mb.id)) {
    const b = (await ts.store.openMessage(mb.id, m.uid))!;
    out.push((await b.read(0, b.size)).toString('utf8'));
  }
  return out;
}

const MSG = 'From: Jörg <jörg@münchen.example>\r\nTo: Ünal <ünal@quire.test>\r\nSubject: Grüße\r\n\r\nHallo\r\n';

test('MAIL FROM with SMTPUTF8: UTF-8 sender and recipients are taken and delivered to the UTF-8 local part', async () => {
  const c = await session();
  assert.match(await c.cmd('MAIL FROM:<jörg@münchen.example> SMTPUTF8 BODY=8BITMIME'), /^250 2\.1\.0 /);
  assert.equal(utf8(await c.cmd('RCPT TO:<ünal@quire.test>')), '250 2.1.5 <ünal@quire.test> Ok');
  assert.match(utf8(await c.cmd('RCPT TO:<用户>')), /^250 2\.1\.5 <用户> /);
  assert.match(utf8(await c.cmd('RCPT TO:<nobody-ü@quire.test>')), /^550 5\.1\.1 <nobody-ü@quire\.test> /);
  assert.match(await c.cmd('DATA'), /^354 /);
  c.send(dataOf(MSG));
  const replies = [utf8(await c.line()), utf8(await c.line())];
  assert.match(replies[0]!, /^250 2\.\d\.\d <ünal@quire\.test> /);
  assert.match(replies[1]!, /^250 2\.\d\.\d <用户> /);
  // The next transaction without SMTPUTF8 is ASCII-only again (the parameter is per transaction).
  assert.match(await c.cmd('MAIL FROM:<plain@example.org>'), /^250 /);
  assert.match(await c.cmd('RCPT TO:<ünal@quire.test>'), /^553 5\.6\.7 /);
  assert.match(await c.cmd('RSET'), /^250 /);
  c.close();

  const [got] = await inbox('ünal');
  assert.ok(got, 'delivered');
  assert.match(got, /^Return-Path: <jörg@münchen\.example>\r\n/);
  assert.match(got, /with UTF8LMTP id /);
  assert.ok(got.endsWith(MSG), 'the message follows the trace fields unchanged');
  assert.equal((await inbox('用户')).length, 1);
});

test('SMTPUTF8 parameter errors: a value, or bytes that are not UTF-8, are refused with 501', async () => {
  const c = await session();
  assert.match(await c.cmd('MAIL FROM:<a@b.example> SMTPUTF8=yes'), /^501 5\.5\.4 /);
  c.send(Buffer.concat([Buffer.from('MAIL FROM:<'), Buffer.from([0xff, 0xfe]), Buffer.from('@x> SMTPUTF8\r\n')]));
  assert.match(await c.line(), /^501 5\.1\.7 /);
  assert.match(await c.cmd('MAIL FROM:<a@b.example> SMTPUTF8'), /^250 /);
  c.send(Buffer.concat([Buffer.from('RCPT TO:<'), Buffer.from([0xc3, 0x28]), Buffer.from('@quire.test>\r\n')]));
  const r = await c.line();
  assert.match(r, /^501 5\.1\.3 /);
  assert.ok(!/[^\x20-\x7e]/.test(r), 'not echoed');
  // The empty reverse path is fine with SMTPUTF8 too.
  assert.match(await c.cmd('RSET'), /^250 /);
  assert.match(await c.cmd('MAIL FROM:<> SMTPUTF8'), /^250 /);
  c.close();
});

test('the delivered UTF-8 message: a UTF8=ACCEPT session reads it as UTF-8, a legacy one downgraded; IDLE sees it arrive', async () => {
  // 用户 logs in with AUTHENTICATE PLAIN (RFC 6855 §5: LOGIN is not extended for UTF-8 user names).
  const plain = Buffer.from('\0用户\0secret-y', 'utf8').toString('base64');
  const idler = await RawClient.connect(ts.port);
  assert.match((await idler.command(`AUTHENTICATE PLAIN ${plain}`)).tagged, / OK /);
  await idler.command('SELECT INBOX');
  idler.write('i1 IDLE\r\n');
  assert.match(await idler.readLine(), /^\+ /);
  const c = await session();
  assert.match(await c.cmd('MAIL FROM:<jörg@münchen.example> SMTPUTF8'), /^250 /);
  assert.match(await c.cmd('RCPT TO:<用户>'), /^250 /);
  assert.match(await c.cmd('DATA'), /^354 /);
  c.send(dataOf(MSG));
  assert.match(await c.line(), /^250 /);
  c.close();
  await idler.readUntil((l) => /^\* 2 EXISTS$/.test(l));
  idler.write('DONE\r\n');
  assert.match((await idler.collect('i1')).tagged, / OK /);
  // The idler did not enable UTF8=ACCEPT: the ENVELOPE is 7-bit.
  const legacy = (await idler.command('FETCH 2 ENVELOPE')).untagged[0]!;
  assert.ok(!/[^\x00-\x7f]/.test(legacy), legacy);
  assert.equal(decodeEncodedWords(/ENVELOPE \((?:NIL|"[^"]*") "([^"]*)"/.exec(legacy)![1]!), 'Grüße');
  const u = await RawClient.connect(ts.port);
  assert.match((await u.command(`AUTHENTICATE PLAIN ${plain}`)).tagged, / OK /);
  assert.match((await u.command('ENABLE UTF8=ACCEPT')).tagged, / OK /);
  await u.command('SELECT INBOX');
  const env = (await u.command('FETCH 2 ENVELOPE')).untagged.join('\r\n');
  assert.ok(env.includes('Grüße') && env.includes('jörg') && env.includes('münchen.example'), env);
  assert.deepEqual((await u.command('SEARCH FROM "jörg@münchen.example"')).untagged, ['* SEARCH 1 2']);
  await u.close();
  await idler.close();
});
