// Behaviour over a real socket: SELECT / EXAMINE (RFC 9051 §6.3.2, §6.3.3;
// rev1: RFC 3501 §6.3.1, §6.3.2), ENABLE (RFC 5161, RFC 9051 §6.3.1),
// CLOSE (§6.4.1) and UNSELECT (§6.4.2, RFC 3691), with a second connection
// wherever the selected mailbox changes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient, message } from '../helpers/imap.js';
import { accounts, ok } from '../helpers/accounts.js';

let srv: TestServer;
before(async () => { srv = await startTestServer(); });
after(async () => { await srv.stop(); });

const { freshUser, connect } = accounts(() => srv, 'sel');

/** UIDVALIDITY of a mailbox, via STATUS. */
async function uidValidity(c: RawClient, mailbox: string): Promise<string> {
  return /UIDVALIDITY (\d+)/.exec(ok(await c.command(`STATUS ${mailbox} (UIDVALIDITY)`)).untagged[0])![1];
}

/** UIDVALIDITY and MAILBOXID (RFC 8474) of a mailbox, via one STATUS. */
async function ids(c: RawClient, mailbox: string): Promise<[string, string]> {
  const line = ok(await c.command(`STATUS ${mailbox} (UIDVALIDITY MAILBOXID)`)).untagged[0]!;
  return [/UIDVALIDITY (\d+)/.exec(line)![1]!, /MAILBOXID \(([^)]+)\)/.exec(line)![1]!];
}

const FLAGS = '\\Answered \\Flagged \\Deleted \\Seen \\Draft';

test('SELECT for an IMAP4rev1 client: RECENT and UNSEEN, no LIST', async () => {
  const c = await connect();
  ok(await c.append('INBOX', message(1), '(\\Seen)'));
  ok(await c.append('INBOX', message(2), '(\\Seen $Work)'));
  ok(await c.append('INBOX', message(3)));
  const [v, id] = await ids(c, 'INBOX');
  const r = await c.command('SELECT INBOX');
  assert.deepEqual(r.untagged, [
    '* 3 EXISTS',
    '* 3 RECENT',
    `* FLAGS (${FLAGS} $Work)`,
    `* OK [PERMANENTFLAGS (${FLAGS} $Work \\*)] Flags permitted`,
    '* OK [UNSEEN 3] First unseen',
    `* OK [UIDVALIDITY ${v}] UIDs valid`,
    '* OK [UIDNEXT 4] Predicted next UID',
    `* OK [MAILBOXID (${id})] Ok`,
    '* OK [URLMECH INTERNAL] URLAUTH mechanisms',
  ]);
  assert.equal(r.tagged, 't6 OK [READ-WRITE] SELECT completed');
  // \Recent went to the first session that selected; a reselect sees none (RFC 3501 §2.3.2).
  const again = await c.command('select inbox');
  // RFC 7162 §3.2.11: [CLOSED] goes to every client of a server that advertises CONDSTORE/QRESYNC.
  assert.equal(again.untagged[0], '* OK [CLOSED] Previous mailbox closed');
  assert.equal(again.untagged[2], '* 0 RECENT');
  assert.equal(again.tagged, 't7 OK [READ-WRITE] SELECT completed');
  // A mailbox where everything is seen has no UNSEEN code.
  const sent = await c.command('SELECT Sent');
  assert.deepEqual(sent.untagged.filter((l) => /UNSEEN|RECENT|EXISTS/.test(l)), ['* 0 EXISTS', '* 0 RECENT']);
  await c.close();
});

test('SELECT after ENABLE IMAP4rev2: no RECENT or UNSEEN, a LIST response, [CLOSED] on reselect', async () => {
  const c = await connect();
  ok(await c.append('INBOX', message(1)));
  const [v, id] = await ids(c, 'INBOX');
  assert.deepEqual(ok(await c.command('ENABLE IMAP4rev2')).untagged, ['* ENABLED IMAP4rev2']);
  const r = await c.command('SELECT inbox');
  assert.deepEqual(r.untagged, [
    '* 1 EXISTS',
    `* FLAGS (${FLAGS})`,
    `* OK [PERMANENTFLAGS (${FLAGS} \\*)] Flags permitted`,
    `* OK [UIDVALIDITY ${v}] UIDs valid`,
    '* OK [UIDNEXT 2] Predicted next UID',
    `* OK [MAILBOXID (${id})] Ok`,
    '* OK [URLMECH INTERNAL] URLAUTH mechanisms',
    '* LIST () "/" INBOX',
  ]);
  assert.equal(r.tagged, 't5 OK [READ-WRITE] SELECT completed');
  // RFC 9051 §7.1: OK [CLOSED] marks where the old mailbox's responses end.
  const sent = await c.command('EXAMINE Sent');
  assert.equal(sent.untagged[0], '* OK [CLOSED] Previous mailbox closed');
  assert.equal(sent.untagged.at(-1), '* LIST () "/" Sent');
  assert.equal(sent.tagged, 't6 OK [READ-ONLY] EXAMINE completed');
  // Reselecting the same mailbox closes it too.
  assert.equal((await c.command('EXAMINE Sent')).untagged[0], '* OK [CLOSED] Previous mailbox closed');
  await c.close();
});

test('EXAMINE is read-only: no \\Recent claimed, STORE / EXPUNGE / UID EXPUNGE refused', async () => {
  const login = await freshUser();
  const c = await connect(login);
  ok(await c.append('INBOX', message(1), '(\\Deleted)'));
  const r = await c.command('EXAMINE INBOX');
  // RFC 3501 §2.3.2: only a read-write session takes \\Recent away from later sessions; a read-only
  // one still reports the recent messages (Dovecot: "* 1 RECENT" and \\Recent in FETCH FLAGS).
  assert.deepEqual(r.untagged.slice(0, 5), [
    '* 1 EXISTS',
    '* 1 RECENT',
    `* FLAGS (${FLAGS})`,
    '* OK [PERMANENTFLAGS ()] Flags permitted',
    '* OK [UNSEEN 1] First unseen',
  ]);
  assert.equal(r.tagged, 't3 OK [READ-ONLY] EXAMINE completed');
  assert.equal((await c.command('STORE 1 +FLAGS (\\Seen)')).tagged, 't4 NO [CANNOT] Mailbox is read-only');
  assert.equal((await c.command('EXPUNGE')).tagged, 't5 NO [CANNOT] Mailbox is read-only');
  assert.equal((await c.command('UID EXPUNGE 1')).tagged, 't6 NO [CANNOT] Mailbox is read-only');
  assert.deepEqual(ok(await c.command('FETCH 1 FLAGS')).untagged, ['* 1 FETCH (FLAGS (\\Deleted \\Recent))']);
  // CLOSE after EXAMINE expunges nothing (RFC 9051 §6.4.1).
  assert.deepEqual(ok(await c.command('CLOSE')).untagged, []);
  assert.deepEqual(ok(await c.command('STATUS INBOX (MESSAGES DELETED RECENT)')).untagged, ['* STATUS INBOX (MESSAGES 1 DELETED 1 RECENT 1)']);
  // The message is still \Recent for the first session that SELECTs.
  const sel = await c.command('SELECT INBOX');
  assert.equal(sel.untagged[1], '* 1 RECENT');
  await c.close();
});

test('SELECT of a missing mailbox is NO [NONEXISTENT] and leaves no mailbox selected', async () => {
  const c = await connect();
  ok(await c.append('INBOX', message(1)));
  ok(await c.command('SELECT INBOX'));
  const r = await c.command('SELECT nosuch');
  assert.deepEqual(r.untagged, ['* OK [CLOSED] Previous mailbox closed'], 'the old mailbox is closed even though the new one does not exist');
  assert.equal(r.tagged, 't4 NO [NONEXISTENT] Mailbox does not exist');
  assert.equal((await c.command('FETCH 1 FLAGS')).tagged, 't5 BAD [CLIENTBUG] No mailbox selected');
  assert.match((await c.command('CLOSE')).tagged, /^t6 BAD /);
  // Under IMAP4rev2 the failed SELECT still reports that the old mailbox was closed.
  ok(await c.command('ENABLE IMAP4rev2'));
  ok(await c.command('SELECT INBOX'));
  const r2 = await c.command('EXAMINE "nosuch/deeper"');
  assert.deepEqual(r2.untagged, ['* OK [CLOSED] Previous mailbox closed']);
  assert.equal(r2.tagged, 't9 NO [NONEXISTENT] Mailbox does not exist');
  assert.equal((await c.command('FETCH 1 FLAGS')).tagged, 't10 BAD [CLIENTBUG] No mailbox selected');
  await c.close();
});

test('SELECT / EXAMINE: bad arguments are BAD, before login too', async () => {
  const pre = await RawClient.connect(srv.port);
  assert.match((await pre.command('SELECT INBOX')).tagged, /^t1 BAD /);
  await pre.close();
  const c = await connect();
  for (const cmd of ['SELECT', 'SELECT INBOX extra', 'EXAMINE', 'SELECT INBOX (NOSUCHPARAM)', 'SELECT INBOX (QRESYNC (1 1))', 'SELECT (INBOX)']) {
    assert.match((await c.command(cmd)).tagged, /^t\d+ BAD /, cmd);
  }
  await c.close();
});

test('CLOSE expunges \\Deleted silently; another session sees the EXPUNGEs', async () => {
  const login = await freshUser();
  const a = await connect(login);
  const b = await connect(login);
  for (let i = 1; i <= 4; i++) ok(await a.append('INBOX', message(i), i % 2 === 0 ? '(\\Deleted)' : ''));
  ok(await a.command('SELECT INBOX'));
  ok(await b.command('SELECT INBOX'));
  const r = await a.command('CLOSE');
  assert.deepEqual(r.untagged, [], 'no EXPUNGE responses to the closing session');
  assert.equal(r.tagged, 't7 OK CLOSE completed');
  assert.match((await a.command('FETCH 1 FLAGS')).tagged, /^t8 BAD /);
  assert.deepEqual(ok(await b.command('NOOP')).untagged, ['* 4 EXPUNGE', '* 2 EXPUNGE']);
  assert.deepEqual(ok(await b.command('FETCH 1:* (UID)')).untagged, ['* 1 FETCH (UID 1)', '* 2 FETCH (UID 3)']);
  assert.match((await a.command('CLOSE')).tagged, /^t9 BAD /, 'CLOSE needs a selected mailbox');
  await a.close();
  await b.close();
});

test('UNSELECT leaves \\Deleted messages alone', async () => {
  const c = await connect();
  ok(await c.append('INBOX', message(1), '(\\Deleted)'));
  ok(await c.command('SELECT INBOX'));
  const r = await c.command('UNSELECT');
  assert.deepEqual(r.untagged, []);
  assert.equal(r.tagged, 't4 OK UNSELECT completed');
  assert.deepEqual(ok(await c.command('STATUS INBOX (MESSAGES DELETED)')).untagged, ['* STATUS INBOX (MESSAGES 1 DELETED 1)']);
  assert.match((await c.command('UNSELECT')).tagged, /^t6 BAD /);
  assert.match((await c.command('UNSELECT')).tagged, /^t7 BAD /);
  ok(await c.command('SELECT INBOX'));
  assert.match((await c.command('UNSELECT now')).tagged, /^t9 BAD /);
  // Under IMAP4rev2 neither CLOSE nor UNSELECT sends [CLOSED] (only a SELECT that replaces a mailbox does).
  await c.close();
  const v2 = await connect();
  ok(await v2.command('ENABLE IMAP4rev2'));
  ok(await v2.command('SELECT INBOX'));
  assert.deepEqual(ok(await v2.command('UNSELECT')).untagged, []);
  ok(await v2.command('SELECT INBOX'));
  assert.deepEqual(ok(await v2.command('CLOSE')).untagged, []);
  await v2.close();
});

test('ENABLE: only IMAP4rev2 is enabled, once; unknown names are ignored; only before SELECT', async () => {
  const c = await connect();
  assert.deepEqual(ok(await c.command('ENABLE FOO imap4rev2 BAR')).untagged, ['* ENABLED IMAP4rev2']);
  // RFC 5161 §3.1: ENABLED lists only what this command newly enabled.
  assert.deepEqual(ok(await c.command('ENABLE IMAP4rev2')).untagged, ['* ENABLED']);
  assert.deepEqual(ok(await c.command('ENABLE X-NOT-A-THING')).untagged, ['* ENABLED'], 'unknown, so not enabled');
  assert.match((await c.command('ENABLE')).tagged, /^t5 BAD /);
  assert.match((await c.command('ENABLE "IMAP4rev2"')).tagged, /^t6 BAD /);
  ok(await c.command('SELECT INBOX'));
  assert.match((await c.command('ENABLE IMAP4rev2')).tagged, /^t8 BAD /);
  await c.close();
  const pre = await RawClient.connect(srv.port);
  assert.match((await pre.command('ENABLE IMAP4rev2')).tagged, /^t1 BAD /);
  await pre.close();
});

test('new mail while selected: the other session gets EXISTS (and RECENT for rev1) on its next command', async () => {
  const login = await freshUser();
  const a = await connect(login);
  const b = await connect(login);
  ok(await b.command('ENABLE IMAP4rev2'));
  ok(await a.command('SELECT Drafts'));
  ok(await b.command('SELECT Drafts'));
  ok(await a.append('Drafts', message(1)));
  assert.deepEqual(ok(await b.command('NOOP')).untagged, ['* 1 EXISTS']);
  ok(await b.append('Drafts', message(2)));
  const n = ok(await a.command('NOOP')).untagged;
  assert.equal(n[0], '* 2 EXISTS');
  assert.match(n[1] ?? '', /^\* \d RECENT$/, 'a rev1 client is told RECENT with EXISTS');
  await a.close();
  await b.close();
});
