// CREATE-SPECIAL-USE (RFC 6154 §3): CREATE name (USE (attr)) assigns the
// special use, seen by LIST RETURN (SPECIAL-USE) on another connection; a use
// that cannot be assigned creates nothing and answers NO [USEATTR].
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { accounts, ok, listLines as list } from '../helpers/accounts.js';

let srv: TestServer;
before(async () => { srv = await startTestServer(); });
after(async () => { await srv.stop(); });

const { freshUser, connect } = accounts(() => srv, 'csu');

test('CAPABILITY advertises CREATE-SPECIAL-USE beside SPECIAL-USE after login', async () => {
  const c = await connect();
  const caps = (await c.command('CAPABILITY')).untagged.join(' ');
  assert.match(caps, / SPECIAL-USE /);
  assert.match(caps, / CREATE-SPECIAL-USE( |$)/);
  await c.close();
});

test('CREATE with USE assigns the special use; a second session lists it', async () => {
  const user = await freshUser();
  const a = await connect(user);
  const b = await connect(user);
  ok(await a.command('CREATE Drafts2 (USE (\\Drafts))'));
  ok(await a.command('CREATE "Old Mail" (use (\\archive))'));
  ok(await a.command('CREATE Plain (USE ())'));
  assert.deepEqual(await list(b, '"" "Drafts2" RETURN (SPECIAL-USE)'), ['* LIST (\\HasNoChildren \\Drafts) "/" Drafts2']);
  assert.deepEqual(await list(b, '"" "Old Mail" RETURN (SPECIAL-USE)'), ['* LIST (\\HasNoChildren \\Archive) "/" "Old Mail"']);
  assert.deepEqual(await list(b, '"" "Plain" RETURN (SPECIAL-USE)'), ['* LIST (\\HasNoChildren) "/" Plain']);
  // Superiors created on the way carry no special use.
  ok(await a.command('CREATE p/Junk2 (USE (\\Junk))'));
  assert.deepEqual(await list(b, '"" "p*" RETURN (SPECIAL-USE)'), ['* LIST (\\HasChildren) "/" p', '* LIST (\\HasNoChildren \\Junk) "/" p/Junk2']);
  await a.close();
  await b.close();
});

test('uses that cannot be assigned: NO [USEATTR] and no mailbox; malformed parameters: BAD', async () => {
  const c = await connect();
  // RFC 6154 §5.3's example: \All is a virtual view this store does not build.
  assert.match((await c.command('CREATE Everything (USE (\\All))')).tagged, /^t\d+ NO \[USEATTR\] \\All not supported$/);
  assert.match((await c.command('CREATE Two (USE (\\Drafts \\Sent))')).tagged, /^t\d+ NO \[USEATTR\] /);
  assert.match((await c.command('CREATE Odd (USE (\\Whatever))')).tagged, /^t\d+ NO \[USEATTR\] /);
  assert.deepEqual(await list(c, '"" "Everything"'), []);
  assert.deepEqual(await list(c, '"" "Two"'), []);
  assert.deepEqual(await list(c, '"" "Odd"'), []);
  assert.match((await c.command('CREATE X (FOO (\\Drafts))')).tagged, /^t\d+ BAD /);
  assert.match((await c.command('CREATE X (USE)')).tagged, /^t\d+ BAD /);
  assert.match((await c.command('CREATE X (USE \\Drafts)')).tagged, /^t\d+ BAD /);
  assert.match((await c.command('CREATE X (USE (Drafts))')).tagged, /^t\d+ BAD /);
  assert.deepEqual(await list(c, '"" "X"'), []);
  await c.close();
});
