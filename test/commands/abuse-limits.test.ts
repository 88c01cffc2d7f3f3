// Issue 10 items 5 (the invalid-command counter) and 11 (mailboxes per user),
// over a real socket against a real SQLite store.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';
import net from 'node:net';
import { RawClient } from '../helpers/imap.js';
import { accounts, ok, listLines } from '../helpers/accounts.js';

const LIMIT = 12; // a fresh user has 6 mailboxes (INBOX and the special-use ones)
let srv: TestServer;
before(async () => {
  srv = await startTestServer({ storeOptions: { maxMailboxesPerUser: LIMIT }, tweak: (o) => { o.limits.maxBadCommands = 5; } });
});
after(async () => { await srv.stop(); });
const { connect } = accounts(() => srv, 'abuse');

test('the invalid-command counter counts consecutive errors: occasional mistakes over a long session are fine', async () => {
  const c = await connect();
  for (let i = 0; i < 20; i++) {
    assert.match((await c.command('FETCH')).tagged, /^t\d+ BAD /); // 20 mistakes in all, never 5 in a row
    if (i % 3 === 2) ok(await c.command('NOOP'));
  }
  ok(await c.command('NOOP'));
  assert.equal(c.closed, false);
  // Five in a row still end the connection.
  for (let i = 0; i < 5; i++) assert.match((await c.command('FETCH')).tagged, /^t\d+ BAD /);
  for (let i = 0; i < 100 && !c.closed; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(c.closed, true, 'BYE after five invalid commands in a row');
  await c.close();
});

test('mailboxes per user: CREATE beyond the limit is NO [LIMIT], also for superiors and RENAME into new levels', async () => {
  const c = await connect();
  for (let i = 0; i < LIMIT - 6; i++) ok(await c.command(`CREATE box${i}`));
  const r = await c.command('CREATE onetoomany');
  assert.match(r.tagged, /^t\d+ NO \[LIMIT\] /, r.tagged);
  assert.match((await c.command('CREATE new/level')).tagged, /^t\d+ NO \[LIMIT\] /);
  ok(await c.command('DELETE box1'));
  // One slot left: "deep" fits, "deep/er" does not; the refused CREATE leaves no superior behind.
  assert.match((await c.command('CREATE deep/er')).tagged, /^t\d+ NO \[LIMIT\] /);
  assert.deepEqual(await listLines(c, '"" "deep*"'), []);
  ok(await c.command('CREATE box1'));
  // RENAME into a new hierarchy would create the superior "fresh": refused.
  assert.match((await c.command('RENAME box0 fresh/box0')).tagged, /^t\d+ NO \[LIMIT\] /);
  ok(await c.command('RENAME box0 renamed')); // a plain rename does not add a mailbox
  assert.equal((await listLines(c, '"" "*"')).length, LIMIT);
  ok(await c.command('DELETE renamed'));
  ok(await c.command('CREATE again'));
  await c.close();
});

test('before login: an ID of the size RFC 2971 allows is answered (30 pairs, 30-octet fields, 1024-octet values)', async () => {
  const c = await RawClient.connect(srv.port);
  const pairs = Array.from({ length: 30 }, (_, i) => `"${`field${i}`.padEnd(30, '-')}" "${'v'.repeat(1024)}"`).join(' ');
  const r = await c.command(`ID (${pairs})`);
  assert.match(r.tagged, /^t\d+ OK /, r.raw.slice(0, 200));
  assert.match(r.untagged[0] ?? '', /^\* ID \("name" /);
  // 31 pairs is more than RFC 2971 §3.3 allows.
  const more = `${pairs} "extra" "x"`;
  assert.match((await c.command(`ID (${more})`)).tagged, /^t\d+ BAD /);
  ok(await c.command('NOOP'));
  await c.close();
});

test('an over-long tag is answered with an untagged BAD that does not echo it', async () => {
  const sock = net.connect(srv.port, '127.0.0.1');
  let got = '';
  sock.on('data', (d) => { got += d.toString('latin1'); });
  await new Promise((r) => sock.once('connect', r));
  sock.write(`${'T'.repeat(5_000)} NOOP\r\nok1 NOOP\r\n`);
  for (let i = 0; i < 200 && !got.includes('ok1 OK'); i++) await new Promise((r) => setTimeout(r, 10));
  sock.destroy();
  assert.match(got, /\r\n\* BAD \[PARSE\] /);
  assert.ok(!got.includes('T'.repeat(65)), 'the tag is not reflected');
  assert.match(got, /ok1 OK/);
});
