// NOTIFY (RFC 5465) over real sockets: one session sets NOTIFY, another
// appends, stores, expunges, creates, renames, deletes, subscribes and sets
// metadata in selected and unselected mailboxes; the first sees the
// notifications without sending a command (or during IDLE).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient, message } from '../helpers/imap.js';

let srv: TestServer;
const login = ['alice', 'secret-a'] as [string, string];
before(async () => { srv = await startTestServer(); });
after(async () => { await srv.stop(); });

let n = 0;
const unique = (p: string) => `${p}${++n}`;

async function client(): Promise<RawClient> {
  const c = await RawClient.connect(srv.port, { login });
  await c.command('ENABLE IMAP4rev2');
  return c;
}

/** Lines that arrive within `ms` without a command (none expected: resolves with what came). */
async function quiet(c: RawClient, ms = 300): Promise<string[]> {
  const got: string[] = [];
  try {
    for (;;) got.push(await c.readLine(ms));
  } catch {
    return got;
  }
}

const ok = (r: { tagged: string }) => assert.match(r.tagged, /^\S+ OK/, r.tagged);

test('NOTIFY is advertised; syntax errors are BAD, unsupported events NO [BADEVENT], NONE is OK', async () => {
  const a = await client();
  assert.match((await a.command('CAPABILITY')).untagged[0]!, / NOTIFY( |$)/);
  const bads = [
    'NOTIFY',
    'NOTIFY SET',
    'NOTIFY BOGUS',
    'NOTIFY NONE extra',
    'NOTIFY SET (selected (MessageNew))', // §5: MessageNew without MessageExpunge
    'NOTIFY SET (selected (MessageExpunge))',
    'NOTIFY SET (personal (FlagChange))', // §5: FlagChange needs both
    'NOTIFY SET (selected (MailboxName))', // §6.1: only message events for SELECTED
    'NOTIFY SET (selected (MessageNew MessageExpunge)) (selected-delayed (MessageNew MessageExpunge))', // §6.1: one of them
    'NOTIFY SET (personal (MessageNew (UID) MessageExpunge))', // §8: fetch-att only for SELECTED
    'NOTIFY SET (nowhere (MessageNew MessageExpunge))',
    'NOTIFY SET (subtree (MessageNew MessageExpunge))',
    'NOTIFY SET (personal)',
    'NOTIFY SET (personal ())',
    'NOTIFY SET (selected (MessageNew (NOSUCHATT) MessageExpunge))',
  ];
  for (const c of bads) assert.match((await a.command(c)).tagged, /^\S+ BAD /, c);
  // §3.1: an unsupported event is NO (not BAD) with BADEVENT listing every supported event.
  for (const ev of ['AnnotationChange', 'FooBar']) {
    const r = await a.command(`NOTIFY SET (personal (MessageNew MessageExpunge ${ev}))`);
    assert.equal(r.tagged.replace(/^\S+ /, ''), `NO [BADEVENT (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange MailboxMetadataChange ServerMetadataChange)] Unsupported event ${ev}`);
  }
  ok(await a.command('NOTIFY NONE'));
  ok(await a.command('notify set (Personal NONE)'));
  // Names that cannot exist are ignored (§3.1), not errors.
  ok(await a.command('NOTIFY SET (mailboxes (nosuchbox "another one") (MessageNew MessageExpunge))'));
  await a.close();
});

test('SELECTED: EXISTS, FETCH with the MessageNew attributes, FLAGS and EXPUNGE arrive between commands', async () => {
  const box = unique('NotifySel');
  const a = await client();
  ok(await a.command(`CREATE ${box}`));
  await a.append(box, message(1));
  ok(await a.command(`SELECT ${box}`));
  ok(await a.command('NOTIFY SET (selected (MessageNew (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)]) MessageExpunge FlagChange))'));
  const b = await client();
  ok(await b.command(`SELECT ${box}`));
  await b.append(box, message(2, { subject: 'pushed' }));
  // No command from a: the notifications come on their own (§3.1).
  assert.deepEqual(await a.readUntil((l) => l.startsWith('* 2 FETCH'), 2000), [
    '* 2 EXISTS',
    '* 2 FETCH (UID 2 BODY[HEADER.FIELDS (SUBJECT)] {19}\r\nSubject: pushed\r\n\r\n)',
  ]);
  ok(await b.command('STORE 1 +FLAGS.SILENT (\\Flagged)'));
  assert.deepEqual(await a.readUntil((l) => l.startsWith('* 1 FETCH'), 2000), ['* 1 FETCH (UID 1 FLAGS (\\Flagged))']);
  ok(await b.command('STORE 1 +FLAGS.SILENT (\\Deleted)'));
  await a.readUntil((l) => l.startsWith('* 1 FETCH'), 2000);
  ok(await b.command('EXPUNGE'));
  // SELECTED (not -DELAYED): EXPUNGE is sent at once (§5.3, §6.1.1).
  assert.deepEqual(await a.readUntil((l) => l.endsWith('EXPUNGE'), 2000), ['* 1 EXPUNGE']);
  // §5.2: no FETCH for a message this client appended itself; the EXISTS still comes.
  const own = await a.append(box, message(3));
  ok(own);
  assert.ok(own.untagged.includes('* 2 EXISTS'), own.raw);
  assert.deepEqual(await quiet(a), []);
  assert.deepEqual((await a.command('UID FETCH 1:* (UID)')).untagged, ['* 1 FETCH (UID 2)', '* 2 FETCH (UID 3)']);
  await a.close();
  await b.close();
});

test('SELECTED-DELAYED: EXPUNGE waits for a command that allows it; IDLE gets it at once', async () => {
  const box = unique('NotifyDelayed');
  const a = await client();
  ok(await a.command(`CREATE ${box}`));
  for (let i = 1; i <= 3; i++) await a.append(box, message(i));
  ok(await a.command(`SELECT ${box}`));
  ok(await a.command('NOTIFY SET (selected-delayed (MessageNew MessageExpunge FlagChange))'));
  const b = await client();
  ok(await b.command(`SELECT ${box}`));
  ok(await b.command('STORE 1 +FLAGS.SILENT (\\Deleted)'));
  assert.deepEqual(await a.readUntil((l) => l.startsWith('* 1 FETCH'), 2000), ['* 1 FETCH (UID 1 FLAGS (\\Deleted))']);
  ok(await b.command('EXPUNGE'));
  assert.deepEqual(await quiet(a), []);
  // FETCH may not carry EXPUNGE (RFC 9051 §7.5.1); NOOP does.
  const f = await a.command('FETCH 2 (UID)');
  assert.deepEqual(f.untagged, ['* 2 FETCH (UID 2)']);
  assert.deepEqual((await a.command('NOOP')).untagged, ['* 1 EXPUNGE']);
  a.write('i1 IDLE\r\n');
  assert.match(await a.readLine(), /^\+ /);
  ok(await b.command('STORE 1 +FLAGS.SILENT (\\Deleted)'));
  ok(await b.command('EXPUNGE'));
  assert.deepEqual(await a.readUntil((l) => l.endsWith('EXPUNGE'), 2000), ['* 1 FETCH (UID 2 FLAGS (\\Deleted))', '* 1 EXPUNGE']);
  a.write('DONE\r\n');
  assert.equal(await a.readLine(), 'i1 OK IDLE terminated');
  await a.close();
  await b.close();
});

test('without NOTIFY, or after NOTIFY NONE, nothing is sent between commands', async () => {
  const box = unique('NotifyNone');
  const a = await client();
  ok(await a.command(`CREATE ${box}`));
  ok(await a.command(`SELECT ${box}`));
  const b = await client();
  await b.append(box, message(1));
  assert.deepEqual(await quiet(a), []);
  ok(await a.command('NOTIFY SET (selected (MessageNew MessageExpunge))'));
  ok(await a.command('NOTIFY NONE'));
  await b.append(box, message(2));
  assert.deepEqual(await quiet(a), []);
  assert.deepEqual((await a.command('NOOP')).untagged, ['* 2 EXISTS']);
  await a.close();
  await b.close();
});

test('unselected mailboxes: STATUS for new, expunged and flagged messages; NOTIFY SET STATUS answers first', async () => {
  const box = unique('NotifyOther');
  const a = await client();
  ok(await a.command(`CREATE ${box}`));
  await a.append(box, message(1));
  const set = await a.command(`NOTIFY SET STATUS (selected (MessageNew MessageExpunge)) (mailboxes ${box} (MessageNew MessageExpunge FlagChange))`);
  ok(set);
  // §3.1: MESSAGES, UIDNEXT and UIDVALIDITY for MessageNew; UNSEEN for FlagChange without CONDSTORE (our choice, §5.1).
  assert.equal(set.untagged.length, 1);
  assert.match(set.untagged[0]!, new RegExp(`^\\* STATUS ${box} \\(MESSAGES 1 UIDNEXT 2 UIDVALIDITY \\d+ UNSEEN 1\\)$`));
  const b = await client();
  await b.append(box, message(2));
  // §5.2 MESSAGES and UIDNEXT; UNSEEN because FlagChange is asked for (§5.1 MAY, as Dovecot).
  assert.deepEqual(await a.readUntil((l) => l.startsWith('* STATUS'), 2000), [`* STATUS ${box} (MESSAGES 2 UIDNEXT 3 UNSEEN 2)`]);
  ok(await b.command(`SELECT ${box}`));
  ok(await b.command('STORE 1:2 +FLAGS.SILENT (\\Seen)'));
  assert.deepEqual(await a.readUntil((l) => l.startsWith('* STATUS'), 2000), [`* STATUS ${box} (UNSEEN 0)`]);
  // A flag change that leaves UNSEEN alone tells nothing without CONDSTORE (§5.1).
  ok(await b.command('STORE 1 +FLAGS.SILENT (\\Deleted)'));
  assert.deepEqual(await quiet(a), []);
  ok(await b.command('EXPUNGE'));
  assert.deepEqual(await a.readUntil((l) => l.startsWith('* STATUS'), 2000), [`* STATUS ${box} (MESSAGES 1 UIDNEXT 3 UNSEEN 0)`]);
  // With CONDSTORE on: HIGHESTMODSEQ (and UIDVALIDITY for flag changes), §5.1, §5.2.
  ok(await a.command('ENABLE CONDSTORE'));
  ok(await b.command('STORE 1 -FLAGS.SILENT (\\Seen)'));
  assert.match((await a.readUntil((l) => l.startsWith('* STATUS'), 2000))[0]!, new RegExp(`^\\* STATUS ${box} \\(UIDVALIDITY \\d+ UNSEEN 1 HIGHESTMODSEQ \\d+\\)$`));
  // Mailboxes not named are not reported.
  const other = unique('NotifyUnwatched');
  ok(await b.command(`CREATE ${other}`));
  await b.append(other, message(1));
  assert.deepEqual(await quiet(a), []);
  await a.close();
  await b.close();
});

test('the selected mailbox follows the SELECTED group only, even when another group names it', async () => {
  const box = unique('NotifyOverride');
  const a = await client();
  ok(await a.command(`CREATE ${box}`));
  ok(await a.command(`SELECT ${box}`));
  ok(await a.command('NOTIFY SET (personal (MessageNew MessageExpunge))'));
  const b = await client();
  await b.append(box, message(1));
  // §3.1: no SELECTED group = no message events for the selected mailbox (no STATUS for it either).
  assert.deepEqual(await quiet(a), []);
  assert.deepEqual((await a.command('NOOP')).untagged, ['* 1 EXISTS']);
  await a.close();
  await b.close();
});

test('MailboxName: LIST for created (and the parent), renamed (OLDNAME) and deleted mailboxes; own changes are not told', async () => {
  const top = unique('NotifyNames');
  const a = await client();
  ok(await a.command(`CREATE ${top}`));
  ok(await a.command(`NOTIFY SET (subtree ${top} (MailboxName))`));
  const b = await client();
  ok(await b.command(`CREATE ${top}/kid`));
  // §5.4: the new mailbox and its parent (whose children changed).
  assert.deepEqual(await a.readUntil((l) => l.endsWith(`"/" ${top}`), 2000), [
    `* LIST (\\HasNoChildren) "/" ${top}/kid`,
    `* LIST (\\HasChildren) "/" ${top}`,
  ]);
  ok(await b.command(`RENAME ${top}/kid ${top}/other`));
  assert.deepEqual(await a.readUntil((l) => l.startsWith('* LIST'), 2000), [`* LIST (\\HasNoChildren) "/" ${top}/other ("OLDNAME" (${top}/kid))`]);
  ok(await b.command(`DELETE ${top}/other`));
  assert.deepEqual(await a.readUntil((l) => l.startsWith('* LIST'), 2000), [`* LIST (\\NonExistent) "/" ${top}/other`]);
  assert.deepEqual(await a.readUntil((l) => l.startsWith('* LIST'), 2000), [`* LIST (\\HasNoChildren) "/" ${top}`]);
  // Outside the subtree: nothing.
  ok(await b.command(`CREATE ${top}x`));
  assert.deepEqual(await quiet(a), []);
  // §5: the client's own CREATE is not notified.
  const own = await a.command(`CREATE ${top}/mine`);
  assert.deepEqual(own.untagged, []);
  assert.deepEqual(await quiet(a), []);
  await a.close();
  await b.close();
});

test('SubscriptionChange: LIST with \\Subscribed exactly when subscribed; SUBSCRIBED follows the list', async () => {
  const box = unique('NotifySubs');
  const a = await client();
  ok(await a.command(`CREATE ${box}`));
  ok(await a.command('NOTIFY SET (personal (SubscriptionChange)) (subscribed (MessageNew MessageExpunge))'));
  const b = await client();
  ok(await b.command(`SUBSCRIBE ${box}`));
  assert.deepEqual(await a.readUntil((l) => l.startsWith('* LIST'), 2000), [`* LIST (\\HasNoChildren \\Subscribed) "/" ${box}`]);
  // §6.4: the subscription list is re-evaluated: the newly subscribed mailbox is watched now.
  await b.append(box, message(1));
  assert.deepEqual(await a.readUntil((l) => l.startsWith('* STATUS'), 2000), [`* STATUS ${box} (MESSAGES 1 UIDNEXT 2)`]);
  ok(await b.command(`UNSUBSCRIBE ${box}`));
  assert.deepEqual(await a.readUntil((l) => l.startsWith('* LIST'), 2000), [`* LIST (\\HasNoChildren) "/" ${box}`]);
  await b.append(box, message(2));
  assert.deepEqual(await quiet(a), []);
  await a.close();
  await b.close();
});

test('MailboxMetadataChange and ServerMetadataChange: METADATA naming the changed entries', async () => {
  const box = unique('NotifyMeta');
  const a = await client();
  ok(await a.command(`CREATE ${box}`));
  ok(await a.command(`NOTIFY SET (mailboxes ${box} (MailboxMetadataChange ServerMetadataChange))`));
  const b = await client();
  ok(await b.command(`SETMETADATA ${box} (/private/comment "hello" /shared/comment "x")`));
  assert.deepEqual(await a.readUntil((l) => l.startsWith('* METADATA'), 2000), [`* METADATA ${box} /private/comment /shared/comment`]);
  ok(await b.command(`SETMETADATA ${box} (/private/comment NIL)`));
  assert.deepEqual(await a.readUntil((l) => l.startsWith('* METADATA'), 2000), [`* METADATA ${box} /private/comment`]);
  ok(await b.command('SETMETADATA "" (/private/vendor/x "1")'));
  assert.deepEqual(await a.readUntil((l) => l.startsWith('* METADATA'), 2000), ['* METADATA "" /private/vendor/x']);
  // The client's own SETMETADATA is not notified (§5).
  assert.deepEqual((await a.command(`SETMETADATA ${box} (/private/comment "mine")`)).untagged, []);
  assert.deepEqual(await quiet(a), []);
  await a.close();
  await b.close();
});

test('IDLE sends the same events as NOTIFY asked for (RFC 5465 §4)', async () => {
  const box = unique('NotifyIdle');
  const other = unique('NotifyIdleOther');
  const a = await client();
  ok(await a.command(`CREATE ${box}`));
  ok(await a.command(`CREATE ${other}`));
  ok(await a.command(`SELECT ${box}`));
  ok(await a.command(`NOTIFY SET (selected (MessageNew (UID FLAGS) MessageExpunge)) (mailboxes ${other} (MessageNew MessageExpunge))`));
  a.write('i1 IDLE\r\n');
  assert.match(await a.readLine(), /^\+ /);
  const b = await client();
  await b.append(other, message(1));
  assert.deepEqual(await a.readUntil((l) => l.startsWith('* STATUS'), 2000), [`* STATUS ${other} (MESSAGES 1 UIDNEXT 2)`]);
  await b.append(box, message(1));
  assert.deepEqual(await a.readUntil((l) => l.includes('FETCH'), 2000), ['* 1 EXISTS', '* 1 FETCH (UID 1 FLAGS ())']);
  a.write('DONE\r\n');
  assert.equal(await a.readLine(), 'i1 OK IDLE terminated');
  await a.close();
  await b.close();
});

test('IDLE with NOTIFY but no SELECTED group sends nothing of the selected mailbox until DONE (§4)', async () => {
  const box = unique('NotifyIdleQuiet');
  const other = unique('NotifyIdleQuietOther');
  const a = await client();
  ok(await a.command(`CREATE ${box}`));
  ok(await a.command(`CREATE ${other}`));
  ok(await a.command(`SELECT ${box}`));
  ok(await a.command(`NOTIFY SET (mailboxes ${other} (MessageNew MessageExpunge))`));
  a.write('i1 IDLE\r\n');
  assert.match(await a.readLine(), /^\+ /);
  const b = await client();
  await b.append(box, message(1));
  await b.append(other, message(1));
  // Only the watched mailbox's STATUS, not the selected mailbox's EXISTS.
  assert.deepEqual(await a.readUntil((l) => l.startsWith('* STATUS'), 2000), [`* STATUS ${other} (MESSAGES 1 UIDNEXT 2)`]);
  assert.deepEqual(await quiet(a), []);
  a.write('DONE\r\n');
  // The command's end still brings the mailbox up to date (RFC 9051 §7.4.1).
  assert.deepEqual(await a.readUntil((l) => l.startsWith('i1 '), 2000), ['* 1 EXISTS', 'i1 OK IDLE terminated']);
  await a.close();
  await b.close();
});

test('NOTIFICATIONOVERFLOW when a client does not read: the state is bounded, then NOTIFY NONE holds', async () => {
  const box = unique('NotifyFlood');
  const a = await client();
  ok(await a.command(`CREATE ${box}`));
  ok(await a.command(`SELECT ${box}`));
  ok(await a.command('NOTIFY SET (selected (MessageNew (BODY.PEEK[]) MessageExpunge)) (personal (SubscriptionChange))'));
  a.socket.pause(); // stops reading
  const b = await client();
  // Enough message bytes pushed to fill the socket buffers, so the pushes wait for the client.
  const big = message(1, { body: 'x'.repeat(2 * 1024 * 1024) });
  for (let i = 0; i < 4; i++) await b.append(box, big);
  const userId = (await srv.store.getUser('alice'))!.id;
  for (let i = 0; i < 1100; i++) await srv.store.setSubscribed(userId, `${box}-flood-${i}`, true);
  a.socket.resume();
  const lines = await a.readUntil((l) => l.startsWith('* OK [NOTIFICATIONOVERFLOW]'), 20_000);
  assert.equal(lines.filter((l) => l.startsWith('* LIST')).length, 0);
  // Behaves as NOTIFY NONE (§5.8): nothing more between commands.
  ok(await b.command(`SUBSCRIBE ${box}`));
  await b.append(box, message(9));
  assert.deepEqual(await quiet(a), []);
  ok(await a.command('NOOP'));
  await a.close();
  await b.close();
});
