// RFC 9208 QUOTA through a real socket: GETQUOTA/GETQUOTAROOT/SETQUOTA,
// admin-only SETQUOTA, OVERQUOTA on APPEND and COPY, MOVE at the limit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer } from '../helpers/server.js';
import { RawClient, message } from '../helpers/imap.js';

test('QUOTA capabilities, roots and usage; SETQUOTA for admins only', async () => {
  const ts = await startTestServer({ tweak: (o) => (o.admins = ['alice']) });
  try {
    const a = await RawClient.connect(ts.port, { login: ['alice', 'secret-a'] });
    const b = await RawClient.connect(ts.port, { login: ['bob', 'secret-b'] });
    const caps = (await a.command('CAPABILITY')).untagged[0]!;
    for (const c of ['QUOTA', 'QUOTA=RES-STORAGE', 'QUOTA=RES-MESSAGE', 'QUOTASET']) assert.ok(caps.split(' ').includes(c), c);
    let r = await a.command('GETQUOTAROOT INBOX');
    assert.deepEqual(r.untagged, ['* QUOTAROOT INBOX ""', '* QUOTA "" ()']);
    assert.match(r.tagged, /OK/);
    r = await a.command('GETQUOTAROOT "Does not exist"');
    assert.equal(r.untagged[0], '* QUOTAROOT "Does not exist" ""');
    await a.append('INBOX', message(1, { body: 'x'.repeat(3000) }));
    r = await a.command('SETQUOTA "" (STORAGE 100 MESSAGE 5)');
    assert.deepEqual(r.untagged, ['* QUOTA "" (STORAGE 3 100 MESSAGE 1 5)']);
    r = await a.command('GETQUOTA ""');
    assert.deepEqual(r.untagged, ['* QUOTA "" (STORAGE 3 100 MESSAGE 1 5)']);
    // §4.1.3: limits not listed are discarded.
    r = await a.command('SETQUOTA "" (MESSAGE 10)');
    assert.deepEqual(r.untagged, ['* QUOTA "" (MESSAGE 1 10)']);
    // An admin sets another user's quota through #user/NAME.
    r = await a.command('SETQUOTA "#user/bob" (MESSAGE 2)');
    assert.deepEqual(r.untagged, ['* QUOTA "#user/bob" (MESSAGE 0 2)']);
    r = await b.command('GETQUOTA ""');
    assert.deepEqual(r.untagged, ['* QUOTA "" (MESSAGE 0 2)']);
    r = await b.command('SETQUOTA "" (MESSAGE 1000)');
    assert.match(r.tagged, /NO \[NOPERM\]/);
    r = await b.command('GETQUOTA "#user/alice"');
    assert.match(r.tagged, /NO \[NONEXISTENT\]/);
    r = await a.command('SETQUOTA "" (FROBS 1)');
    assert.match(r.tagged, /NO \[CANNOT\]/);
    r = await a.command('SETQUOTA "" (STORAGE)');
    assert.match(r.tagged, /BAD/);
    await a.close();
    await b.close();
  } finally {
    await ts.stop();
  }
});

test('OVERQUOTA on APPEND and COPY, MOVE at the limit still works, other session sees nothing new', async () => {
  const ts = await startTestServer();
  try {
    const bob = (await ts.store.getUser('bob'))!;
    await ts.store.setQuota(bob.id, { messages: 2 });
    const b = await RawClient.connect(ts.port, { login: ['bob', 'secret-b'] });
    const watcher = await RawClient.connect(ts.port, { login: ['bob', 'secret-b'] });
    await watcher.command('SELECT INBOX');
    assert.match((await b.append('INBOX', message(1))).tagged, /OK/);
    assert.match((await b.append('INBOX', message(2))).tagged, /OK/);
    assert.match((await b.append('INBOX', message(3))).tagged, /NO \[OVERQUOTA\]/);
    await b.command('SELECT INBOX');
    assert.match((await b.command('COPY 1:2 Archive')).tagged, /NO \[OVERQUOTA\]/);
    assert.match((await b.command('MOVE 1 Archive')).tagged, /OK/);
    assert.deepEqual((await b.command('GETQUOTA ""')).untagged, ['* QUOTA "" (MESSAGE 2 2)']);
    const n = await watcher.command('NOOP');
    assert.ok(n.untagged.some((l) => /^\* [12] EXISTS/.test(l)), n.raw);
    assert.ok(!n.untagged.some((l) => /^\* 3 EXISTS/.test(l)), n.raw);
    await b.close();
    await watcher.close();
  } finally {
    await ts.stop();
  }
});

test('STATUS DELETED-STORAGE counts the \\Deleted messages in KiB (RFC 9208 §4.1.4)', async () => {
  const srv2 = await startTestServer();
  try {
    const c = await RawClient.connect(srv2.port, { login: ['alice', 'secret-a'] });
    await c.command('CREATE Ds');
    const big = 'x'.repeat(3000);
    for (let i = 0; i < 3; i++) await c.append('Ds', `Subject: ${i}\r\n\r\n${big}\r\n`);
    await c.command('SELECT Ds');
    assert.match((await c.command('STATUS Ds (DELETED DELETED-STORAGE)')).untagged[0], /\(DELETED 0 DELETED-STORAGE 0\)$/);
    await c.command('STORE 1:2 +FLAGS (\\Deleted)');
    const size = 2 * Buffer.byteLength(`Subject: 0\r\n\r\n${big}\r\n`);
    const r = await c.command('LIST "" "Ds" RETURN (STATUS (DELETED DELETED-STORAGE))');
    assert.ok(r.untagged.includes(`* STATUS Ds (DELETED 2 DELETED-STORAGE ${Math.ceil(size / 1024)})`), r.raw);
    await c.close();
  } finally {
    await srv2.stop();
  }
});
