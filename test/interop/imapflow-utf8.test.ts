// imapflow as a real UTF8=ACCEPT client (it ENABLEs UTF8=ACCEPT whenever the
// server offers it): UTF-8 mailbox names, APPEND of a message with UTF-8
// headers, SEARCH without CHARSET (imapflow adds CHARSET only when UTF8=ACCEPT
// is not enabled), FETCH ENVELOPE decoded by imapflow; a legacy raw session
// on the same mailbox sees the message arrive and gets the 7-bit ENVELOPE.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ImapFlow } from 'imapflow';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient } from '../helpers/imap.js';

let ts: TestServer;
before(async () => {
  ts = await startTestServer();
});
after(async () => {
  await ts.stop();
});

const MSG = Buffer.from(
  'From: Jörg Müller <jörg@münchen.example>\r\nTo: 山田 <yamada@例え.jp>\r\nSubject: Grüße aus München\r\nMessage-ID: <flow.1@example.org>\r\n' +
    'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGrüße!\r\n',
  'utf8',
);

test('imapflow: UTF8=ACCEPT enabled; UTF-8 names, APPEND, SEARCH, ENVELOPE; a legacy session beside it', async () => {
  const c = new ImapFlow({ host: '127.0.0.1', port: ts.port, secure: false, doSTARTTLS: false, auth: { user: 'alice', pass: 'secret-a' }, logger: false });
  await c.connect();
  try {
    assert.ok(c.enabled.has('UTF8=ACCEPT'), [...c.enabled].join(' '));
    await c.mailboxCreate(['Entwürfe', '日本']);
    const names = (await c.list()).map((b) => b.path);
    assert.ok(names.includes('Entwürfe/日本'), names.join(', '));

    const legacy = await RawClient.connect(ts.port, { login: ['alice', 'secret-a'] });
    assert.match((await legacy.command('SELECT Entw&APw-rfe/&ZeVnLA-')).tagged, / OK /);

    const res = await c.append('Entwürfe/日本', MSG, ['\\Seen'], new Date('2026-12-03T10:00:00Z'));
    assert.equal(res && res.uid, 1);
    assert.ok((await legacy.command('NOOP')).untagged.includes('* 1 EXISTS'));

    const st = await c.status('Entwürfe/日本', { messages: true });
    assert.equal(st.messages, 1);
    const lock = await c.getMailboxLock('Entwürfe/日本');
    try {
      assert.deepEqual(await c.search({ subject: 'grüße' }), [1]);
      assert.deepEqual(await c.search({ from: 'jörg' }), [1]);
      assert.deepEqual(await c.search({ subject: 'grüsse' }), []);
      const m = await c.fetchOne('1', { envelope: true, source: true });
      assert.ok(m && m.envelope, 'fetched');
      assert.equal(m.envelope!.subject, 'Grüße aus München');
      assert.equal(m.envelope!.from?.[0]?.address, 'jörg@münchen.example');
      assert.equal(m.envelope!.from?.[0]?.name, 'Jörg Müller');
      assert.equal(m.envelope!.to?.[0]?.address, 'yamada@例え.jp');
      assert.ok(m.source!.equals(MSG), 'BODY[] is the appended bytes');
    } finally {
      lock.release();
    }
    const env = (await legacy.command('FETCH 1 ENVELOPE')).untagged[0]!;
    assert.ok(!/[^\x00-\x7f]/.test(env), env);
    assert.match(env, /"yamada" "xn--r8jz45g\.jp"/);
    await legacy.close();
  } finally {
    await c.logout().catch(() => c.close());
  }
});
