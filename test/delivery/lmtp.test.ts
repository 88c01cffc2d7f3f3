// LMTP (RFC 2033) through a real socket: per-recipient verdicts, replies
// after the final dot, pipelining, limits, sub-addressing, aliases, quota,
// and delivery seen by IMAP clients (also one in IDLE).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient, message } from '../helpers/imap.js';
import { LmtpClient, dataOf, startTestLmtp } from './helpers.js';
import { startLmtp } from '../../src/delivery/server.js';
import { lmtpOptions } from './helpers.js';
import type { LmtpOptions } from '../../src/delivery/options.js';

async function setup(tweak?: (o: LmtpOptions) => void) {
  const ts = await startTestServer();
  const { lmtp, port } = await startTestLmtp(ts.store, tweak);
  return {
    ts,
    port,
    async stop() {
      await lmtp.close();
      await ts.stop();
    },
  };
}

async function inbox(ts: TestServer, user: string, mailbox = 'INBOX'): Promise<Buffer[]> {
  const u = (await ts.store.getUser(user))!;
  const mb = (await ts.store.getMailbox(u.id, mailbox))!;
  const out: Buffer[] = [];
  for (const m of await ts.store.listMessages(mb.id)) {
    const body = (await ts.store.openMessage(mb.id, m.uid))!;
    out.push(await body.read(0, body.size));
  }
  return out;
}

/** The message as delivered, without the trace fields Quire prepends. */
function withoutTrace(b: Buffer): string {
  const s = b.toString('latin1');
  assert.match(s, /^Return-Path: <[^>]*>\r\n(?:Delivered-To: [^\r]*\r\n)?Received: from /);
  return s.replace(/^Return-Path: [^\r]*\r\n(?:Delivered-To: [^\r]*\r\n)?Received: [^\r]*\r\n(?:\t[^\r]*\r\n)*/, '');
}

test('greeting, LHLO capabilities, HELO/EHLO refused (RFC 2033 §4.1)', async () => {
  const s = await setup();
  try {
    const c = await LmtpClient.connect(s.port);
    assert.match(await c.line(), /^220 quire\.test /);
    assert.match(await c.cmd('HELO x'), /^500 5\.5\.1/);
    assert.match(await c.cmd('EHLO x'), /^500 5\.5\.1/);
    assert.match(await c.cmd('MAIL FROM:<a@b>'), /^503 5\.5\.1/);
    c.send('LHLO client.test\r\n');
    const caps = await c.reply();
    assert.deepEqual(caps, ['250-quire.test', '250-PIPELINING', '250-ENHANCEDSTATUSCODES', '250-8BITMIME', '250-SMTPUTF8', `250 SIZE ${1 << 20}`]);
    assert.match(await c.cmd('NOOP'), /^250 2\.0\.0/);
    assert.match(await c.cmd('VRFY alice'), /^252 /);
    assert.match(await c.cmd('FROB'), /^500 5\.5\.1/);
    assert.match(await c.cmd('QUIT'), /^221 2\.0\.0/);
    await c.waitClosed();
  } finally {
    await s.stop();
  }
});

test('per-recipient verdicts; one reply per accepted RCPT after the dot, in order; bytes stored exactly', async () => {
  const s = await setup();
  try {
    const c = await LmtpClient.connect(s.port);
    await c.line();
    await c.reply(c.send('LHLO client.test\r\n') as never);
    assert.match(await c.cmd('MAIL FROM:<sender@example.org> BODY=8BITMIME SIZE=100'), /^250 2\.1\.0/);
    assert.match(await c.cmd('RCPT TO:<alice@example.com>'), /^250 2\.1\.5/);
    assert.match(await c.cmd('RCPT TO:<nobody@example.com>'), /^550 5\.1\.1 <nobody@example\.com>/);
    assert.match(await c.cmd('RCPT TO:<BOB@example.com>'), /^250 2\.1\.5/);
    assert.match(await c.cmd('RCPT TO:<alice@example.com>'), /^250 2\.1\.5/);
    assert.match(await c.cmd('DATA'), /^354 /);
    const msg = 'From: s@example.org\r\nSubject: caf\xe9 8bit\r\n\r\n.starts with a dot\r\n..two dots\r\nbare\n.\nlf\r\n';
    c.send(Buffer.from(dataOf(msg), 'latin1'));
    assert.match(await c.line(), /^250 2\.0\.0 <alice@example\.com>/);
    assert.match(await c.line(), /^250 2\.0\.0 <BOB@example\.com>/);
    assert.match(await c.line(), /^250 2\.0\.0 <alice@example\.com>/);
    const a = await inbox(s.ts, 'alice');
    assert.equal(a.length, 1, 'the same mailbox named twice gets the message once');
    assert.equal(withoutTrace(a[0]!), msg);
    assert.match(a[0]!.toString('latin1'), /^Return-Path: <sender@example\.org>\r\n/);
    assert.equal(withoutTrace((await inbox(s.ts, 'bob'))[0]!), msg);
    // The transaction is over: DATA needs a new MAIL.
    assert.match(await c.cmd('DATA'), /^503 /);
    c.close();
  } finally {
    await s.stop();
  }
});

test('PIPELINING: a whole session in one write gets every reply in order', async () => {
  const s = await setup();
  try {
    const c = await LmtpClient.connect(s.port);
    await c.line();
    c.send(
      'LHLO p\r\nMAIL FROM:<>\r\nRCPT TO:<alice@x>\r\nRCPT TO:<ghost@x>\r\nRCPT TO:<bob@x>\r\nDATA\r\n' +
        dataOf(message(1)) +
        'RSET\r\nMAIL FROM:<a@b>\r\nRCPT TO:<bob@x>\r\nRSET\r\nDATA\r\nQUIT\r\n',
    );
    const replies: string[] = [];
    for (let i = 0; i < 13; i++) replies.push(await c.line());
    assert.deepEqual(
      replies.map((r) => r.slice(0, 3)),
      ['250', '250', '250', '550', '250', '354', '250', '250', '250', '250', '250', '250', '503'].slice(0, 13),
    );
    assert.match(await c.line(), /^221/);
    assert.equal((await inbox(s.ts, 'bob')).length, 1);
    c.close();
  } finally {
    await s.stop();
  }
});

test('limits: SIZE at MAIL, too-big data, long lines, recipient count, errors before 421', async () => {
  const s = await setup((o) => {
    o.limits.maxMessageSize = 1000;
    o.limits.maxRecipients = 2;
    o.limits.lineLength = 512;
    o.limits.maxBadCommands = 5;
  });
  try {
    const c = await LmtpClient.connect(s.port);
    await c.line();
    await c.reply(c.send('LHLO x\r\n') as never);
    assert.match(await c.cmd('MAIL FROM:<a@b> SIZE=1001'), /^552 5\.3\.4/);
    assert.match(await c.cmd('MAIL FROM:<a@b> FOO=1'), /^555 5\.5\.4/);
    assert.match(await c.cmd('MAIL FROM:<a@b>'), /^250/);
    assert.match(await c.cmd('RCPT TO:<alice@x>'), /^250/);
    assert.match(await c.cmd('RCPT TO:<bob@x>'), /^250/);
    assert.match(await c.cmd('RCPT TO:<alice@y>'), /^452 4\.5\.3/);
    assert.match(await c.cmd('DATA'), /^354/);
    c.send(dataOf(`Subject: big\r\n\r\n${'x'.repeat(2000)}\r\n`));
    assert.match(await c.line(), /^552 5\.3\.4 <alice@x>/);
    assert.match(await c.line(), /^552 5\.3\.4 <bob@x>/);
    assert.equal((await inbox(s.ts, 'alice')).length, 0);
    assert.match(await c.cmd('X'.repeat(600)), /^500 5\.5\.2/);
    assert.match(await c.cmd('NOOP'), /^250/, 'the connection goes on after a long line');
    // Five errors so far (552 at MAIL is not a syntax error): 555, 500 → three more close it.
    assert.match(await c.cmd('BAD1'), /^500/);
    assert.match(await c.cmd('BAD2'), /^500/);
    c.send('BAD3\r\n');
    assert.match(await c.line(), /^500/);
    assert.match(await c.line(), /^421 4\.7\.0/);
    await c.waitClosed();
  } finally {
    await s.stop();
  }
});

test('user+folder@domain delivers into an existing folder, else INBOX; "inbox" mode ignores the detail', async () => {
  const s = await setup();
  try {
    const c = await LmtpClient.connect(s.port);
    await c.line();
    await c.reply(c.send('LHLO x\r\n') as never);
    for (const [rcpt, n] of [['alice+Archive@example.com', 1], ['alice+nosuch@example.com', 2], ['alice+archive@example.com', 3]] as const) {
      await c.cmd('MAIL FROM:<a@b>');
      assert.match(await c.cmd(`RCPT TO:<${rcpt}>`), /^250/);
      await c.cmd('DATA');
      c.send(dataOf(message(n)));
      assert.match(await c.line(), /^250/);
    }
    assert.equal((await inbox(s.ts, 'alice', 'Archive')).length, 2, 'exact and case-insensitive folder match');
    assert.equal((await inbox(s.ts, 'alice')).length, 1);
    c.close();
  } finally {
    await s.stop();
  }
  const t = await setup((o) => (o.subaddress = 'inbox'));
  try {
    const c = await LmtpClient.connect(t.port);
    await c.line();
    c.send(`LHLO x\r\nMAIL FROM:<>\r\nRCPT TO:<alice+Archive@x>\r\nDATA\r\n${dataOf(message(1))}`);
    for (let i = 0; i < 4; i++) await c.reply();
    assert.match(await c.line(), /^250 2\.0\.0/);
    assert.equal((await inbox(t.ts, 'alice')).length, 1);
    c.close();
  } finally {
    await t.stop();
  }
});

test('aliases, extra addresses and a catch-all resolve to their owner', async () => {
  const s = await setup();
  try {
    const alice = (await s.ts.store.getUser('alice'))!;
    const bob = (await s.ts.store.getUser('bob'))!;
    await s.ts.store.addAddress(alice.id, 'Postmaster@Example.COM');
    await s.ts.store.addAddress(bob.id, '@catchall.test');
    const c = await LmtpClient.connect(s.port);
    await c.line();
    await c.reply(c.send('LHLO x\r\n') as never);
    await c.cmd('MAIL FROM:<>');
    assert.match(await c.cmd('RCPT TO:<postmaster@example.com>'), /^250/);
    assert.match(await c.cmd('RCPT TO:<anything@catchall.test>'), /^250/);
    assert.match(await c.cmd('RCPT TO:<alice@catchall.test>'), /^250/, 'a real user wins over the catch-all');
    assert.match(await c.cmd('RCPT TO:<postmaster@other.test>'), /^550 5\.1\.1/);
    await c.cmd('DATA');
    c.send(dataOf(message(1)));
    for (let i = 0; i < 3; i++) assert.match(await c.line(), /^250/);
    assert.equal((await inbox(s.ts, 'alice')).length, 1);
    assert.equal((await inbox(s.ts, 'bob')).length, 1);
    c.close();
  } finally {
    await s.stop();
  }
});

test('over quota: RCPT refused with 452 4.2.2 (temporary) or 552 5.2.2 (permanent); quota hit at DATA per recipient', async () => {
  for (const mode of ['temporary', 'permanent'] as const) {
    const s = await setup((o) => (o.overQuota = mode));
    try {
      const alice = (await s.ts.store.getUser('alice'))!;
      const bob = (await s.ts.store.getUser('bob'))!;
      await s.ts.store.setQuota(alice.id, { messages: 0 });
      await s.ts.store.setQuota(bob.id, { storage: 300 });
      const c = await LmtpClient.connect(s.port);
      await c.line();
      await c.reply(c.send('LHLO x\r\n') as never);
      await c.cmd('MAIL FROM:<>');
      const code = mode === 'temporary' ? /^452 4\.2\.2 <alice@x>/ : /^552 5\.2\.2 <alice@x>/;
      assert.match(await c.cmd('RCPT TO:<alice@x>'), code);
      assert.match(await c.cmd('RCPT TO:<bob@x>'), /^250/, 'bob has room yet');
      await c.cmd('DATA');
      c.send(dataOf(`Subject: q\r\n\r\n${'z'.repeat(400)}\r\n`));
      assert.match(await c.line(), mode === 'temporary' ? /^452 4\.2\.2 <bob@x>/ : /^552 5\.2\.2 <bob@x>/);
      assert.equal((await inbox(s.ts, 'bob')).length, 0);
      c.close();
    } finally {
      await s.stop();
    }
  }
});

test('delivery is visible to IMAP and pushed to a client in IDLE', async () => {
  const s = await setup();
  try {
    const idle = await RawClient.connect(s.ts.port, { login: ['alice', 'secret-a'] });
    await idle.command('SELECT INBOX');
    idle.write('i1 IDLE\r\n');
    assert.match(await idle.readLine(), /^\+ /);
    const c = await LmtpClient.connect(s.port);
    await c.line();
    c.send(`LHLO x\r\nMAIL FROM:<s@x>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n`);
    for (let i = 0; i < 4; i++) await c.reply();
    c.send(dataOf(message(7, { subject: 'pushed' })));
    assert.match(await c.line(), /^250 2\.0\.0/);
    const lines = await idle.readUntil((l) => /^\* 1 EXISTS/.test(l));
    assert.ok(lines.length >= 1);
    idle.write('DONE\r\n');
    await idle.collect('i1');
    const other = await RawClient.connect(s.ts.port, { login: ['alice', 'secret-a'] });
    await other.command('SELECT INBOX');
    const f = await other.command('UID FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT RETURN-PATH)])');
    assert.match(f.raw, /Subject: pushed/);
    assert.match(f.raw, /Return-Path: <s@x>/);
    await other.close();
    await idle.close();
    c.close();
  } finally {
    await s.stop();
  }
});

test('connection limit and inactivity timeout answer 421', async () => {
  const s = await setup((o) => {
    o.limits.maxConnections = 1;
    o.timeoutMs = 300;
  });
  try {
    const a = await LmtpClient.connect(s.port);
    assert.match(await a.line(), /^220/);
    const b = await LmtpClient.connect(s.port);
    assert.match(await b.line(), /^421 4\.3\.2/);
    assert.match(await a.line(), /^421 4\.4\.2/);
    await a.waitClosed();
  } finally {
    await s.stop();
  }
});

test('Unix socket listener: created with mode 0660, stale file replaced, removed on close', async () => {
  const ts = await startTestServer();
  const dir = await mkdtemp(path.join(tmpdir(), 'quire-lmtp-'));
  const sock = path.join(dir, 'lmtp.sock');
  try {
    const first = await startLmtp(ts.store, lmtpOptions((o) => ((o.tcp = []), (o.socket = sock))));
    assert.equal((await stat(sock)).mode & 0o777, 0o660);
    await assert.rejects(startLmtp(ts.store, lmtpOptions((o) => ((o.tcp = []), (o.socket = sock)))), /in use/);
    const c = await LmtpClient.connect(sock);
    assert.match(await c.line(), /^220/);
    c.close();
    await first.close();
    await assert.rejects(stat(sock));
  } finally {
    await ts.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
