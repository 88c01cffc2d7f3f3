// REPLACE and UID REPLACE (RFC 8508) over a real socket: the new message is
// appended and the old one expunged as one action (APPENDUID, then EXISTS and
// EXPUNGE), a second session sees both, errors leave both mailboxes as they
// were, and quota counts the net change (§3.4).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient, message } from '../helpers/imap.js';
import { accounts, ok } from '../helpers/accounts.js';

let srv: TestServer;
before(async () => { srv = await startTestServer(); });
after(async () => { await srv.stop(); });

const { freshUser, connect } = accounts(() => srv, 'rpl');

function replace(c: RawClient, cmd: string, body: string): ReturnType<RawClient['command']> {
  const data = Buffer.from(body);
  return c.command(Buffer.concat([Buffer.from(`${cmd} {${data.length}+}\r\n`), data]));
}

async function status(c: RawClient, mailbox: string, items: string): Promise<string> {
  return (await c.command(`STATUS ${mailbox} (${items})`)).untagged[0]!;
}

test('REPLACE in the selected mailbox: APPENDUID, EXISTS, EXPUNGE; the other session sees the swap', async () => {
  const user = await freshUser();
  const a = await connect(user);
  const b = await connect(user);
  ok(await a.command('CREATE D'));
  for (let i = 1; i <= 3; i++) ok(await a.append('D', message(i)));
  const v = /UIDVALIDITY (\d+)/.exec(await status(a, 'D', 'UIDVALIDITY'))![1];
  ok(await a.command('SELECT D (CONDSTORE)'));
  ok(await b.command('SELECT D'));
  const r = await replace(a, 'REPLACE 2 D (\\Seen \\Draft)', message(20, { subject: 'Draft v2' }));
  assert.equal(r.tagged.replace(/^t\d+ /, ''), 'OK REPLACE completed');
  // The APPENDUID comes first (RFC 8508 §3.2), then the mailbox updates; no STORE response (\Deleted) is ever sent.
  assert.equal(r.untagged[0], `* OK [APPENDUID ${v} 4] Replacement Message ready`);
  assert.ok(r.untagged.includes('* 2 EXPUNGE'), r.raw);
  assert.ok(r.untagged.includes('* 3 EXISTS'), r.raw);
  assert.ok(!r.raw.includes('\\Deleted'), r.raw);
  const f = await a.command('FETCH 1:* (UID FLAGS MODSEQ)');
  assert.deepEqual(f.untagged.map((l) => /UID (\d+)/.exec(l)![1]), ['1', '3', '4']);
  assert.match(f.untagged[2]!, /FLAGS \(\\Seen \\Draft( \\Recent)?\)/);
  // The expunge and the append each took a modseq, the append the later one.
  const m4 = Number(/MODSEQ \((\d+)\)/.exec(f.untagged[2]!)![1]);
  assert.equal(/HIGHESTMODSEQ (\d+)/.exec(await status(a, 'D', 'HIGHESTMODSEQ'))![1], String(m4));
  // The second session learns of both at its next command.
  const n = await b.command('NOOP');
  assert.ok(n.untagged.includes('* 2 EXPUNGE'), n.raw);
  assert.ok(n.untagged.some((l) => /^\* [34] EXISTS$/.test(l)), n.raw);
  const fb = await b.command('UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])');
  assert.match(fb.raw, /UID 4 .*Draft v2|Draft v2[\s\S]*UID 4|UID 4/);
  assert.equal(fb.untagged.filter((l) => /^\* \d+ FETCH/.test(l)).length, 3);
  await a.close();
  await b.close();
});

test('UID REPLACE into another mailbox (Drafts -> Sent after submission)', async () => {
  const user = await freshUser();
  const a = await connect(user);
  ok(await a.command('CREATE Dr'));
  ok(await a.command('CREATE Se'));
  ok(await a.append('Dr', message(1)));
  ok(await a.append('Dr', message(2)));
  ok(await a.command('SELECT Dr'));
  const v = /UIDVALIDITY (\d+)/.exec(await status(a, 'Se', 'UIDVALIDITY'))![1];
  const r = await replace(a, 'UID REPLACE 2 Se (\\Seen)', message(3, { subject: 'Sent copy' }));
  ok(r);
  assert.ok(r.untagged.includes(`* OK [APPENDUID ${v} 1] Replacement Message ready`), r.raw);
  assert.ok(r.untagged.includes('* 2 EXPUNGE'), r.raw);
  assert.equal(await status(a, 'Se', 'MESSAGES'), '* STATUS Se (MESSAGES 1)');
  assert.equal((await a.command('SEARCH ALL')).untagged[0], '* SEARCH 1');
  await a.close();
});

test('errors change nothing: missing target (TRYCREATE), bad number, unknown UID, EXAMINE, not selected', async () => {
  const user = await freshUser();
  const a = await connect(user);
  ok(await a.command('CREATE E'));
  ok(await a.append('E', message(1)));
  // Only in the selected state (RFC 8508 §3.5).
  assert.match((await replace(a, 'REPLACE 1 E', message(9))).tagged, /^t\d+ BAD /);
  ok(await a.command('SELECT E'));
  assert.match((await replace(a, 'REPLACE 1 Nowhere', message(9))).tagged, /^t\d+ NO \[TRYCREATE\] /);
  assert.match((await replace(a, 'REPLACE 5 E', message(9))).tagged, /^t\d+ BAD /);
  assert.match((await replace(a, 'REPLACE 1:2 E', message(9))).tagged, /^t\d+ BAD /);
  assert.match((await replace(a, 'UID REPLACE 77 E', message(9))).tagged, /^t\d+ NO /);
  assert.match((await a.command('REPLACE 1 E "not a literal"')).tagged, /^t\d+ BAD /);
  ok(await a.command('EXAMINE E'));
  assert.match((await replace(a, 'REPLACE 1 E', message(9))).tagged, /^t\d+ NO /);
  ok(await a.command('SELECT E'));
  assert.equal((await a.command('UID SEARCH ALL')).untagged[0], '* SEARCH 1');
  assert.equal(await status(a, 'E', 'MESSAGES'), '* STATUS E (MESSAGES 1)');
  await a.close();
});

test('REPLACE of a message another session expunged meanwhile: NO [EXPUNGEISSUED], nothing appended', async () => {
  const user = await freshUser();
  const a = await connect(user);
  const b = await connect(user);
  ok(await a.command('CREATE X'));
  ok(await a.append('X', message(1)));
  ok(await a.append('X', message(2)));
  ok(await a.command('SELECT X'));
  ok(await b.command('SELECT X'));
  ok(await b.command('STORE 1 +FLAGS.SILENT (\\Deleted)'));
  ok(await b.command('EXPUNGE'));
  // a has not been told yet (no command since), so its sequence number 1 still names UID 1.
  const r = await replace(a, 'REPLACE 1 X', message(3));
  assert.match(r.tagged, /^t\d+ NO \[EXPUNGEISSUED\] /, r.raw);
  assert.equal(await status(b, 'X', 'MESSAGES'), '* STATUS X (MESSAGES 1)');
  await a.close();
  await b.close();
});

test('quota counts the net change: replacing a message at the storage limit succeeds', async () => {
  const user = await freshUser();
  const a = await connect(user);
  ok(await a.command('CREATE Q'));
  const big = message(1, { body: 'x'.repeat(4000) });
  ok(await a.append('Q', big));
  const u = await srv.store.getUser(user[0]);
  // The store counts bytes: about 4,100 used, a limit of 6,000 leaves no room for a second copy.
  await srv.store.setQuota(u!.id, { storage: 6000 });
  assert.match((await a.append('Q', big)).tagged, /^t\d+ NO \[OVERQUOTA\] /);
  ok(await a.command('SELECT Q'));
  ok(await replace(a, 'REPLACE 1 Q', message(2, { body: 'y'.repeat(4000) })));
  assert.equal((await a.command('FETCH 1 (BODY.PEEK[TEXT]<0.3>)')).untagged[0], '* 1 FETCH (BODY[TEXT]<0> {3}\r\nyyy)');
  await a.close();
});
