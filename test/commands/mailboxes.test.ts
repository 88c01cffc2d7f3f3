// Behaviour over a real socket: CREATE, DELETE, RENAME, SUBSCRIBE,
// UNSUBSCRIBE, LSUB, NAMESPACE and mailbox-name encoding (RFC 9051 §6.3.4-
// §6.3.10, RFC 3501 §5.1.3 / §6.3.9, RFC 2342). Every test logs in as a
// fresh user so that the mailbox trees of tests never meet.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient, message } from '../helpers/imap.js';
import { accounts, ok, listLines as list, DEFAULT_LIST as DEFAULTS } from '../helpers/accounts.js';

let srv: TestServer;
before(async () => { srv = await startTestServer(); });
after(async () => { await srv.stop(); });

const { freshUser, connect } = accounts(() => srv, 'mbx');

// ---------------------------------------------------------------- CREATE

test('CREATE: superiors are created, a trailing separator is dropped', async () => {
  const c = await connect();
  ok(await c.command('CREATE a/b/c/'));
  assert.deepEqual(await list(c, '"" "a*"'), [
    '* LIST (\\HasChildren) "/" a',
    '* LIST (\\HasChildren) "/" a/b',
    '* LIST (\\HasNoChildren) "/" a/b/c',
  ]);
  // RFC 9051 §6.3.4: "CREATE foo/" creates foo (the separator only announces children).
  ok(await c.command('CREATE solo/'));
  assert.deepEqual(await list(c, '"" "solo*"'), ['* LIST (\\HasNoChildren) "/" solo']);
  // The superiors are ordinary mailboxes: they can be selected.
  ok(await c.command('SELECT a/b'));
  await c.close();
});

test('CREATE: existing names and any spelling of INBOX are NO [ALREADYEXISTS]', async () => {
  const c = await connect();
  ok(await c.command('CREATE x/y'));
  assert.equal((await c.command('CREATE x/y')).tagged, 't3 NO [ALREADYEXISTS] Mailbox already exists');
  assert.equal((await c.command('CREATE x/y/')).tagged, 't4 NO [ALREADYEXISTS] Mailbox already exists');
  assert.equal((await c.command('CREATE x')).tagged, 't5 NO [ALREADYEXISTS] Mailbox already exists');
  assert.equal((await c.command('CREATE INBOX')).tagged, 't6 NO [ALREADYEXISTS] INBOX always exists');
  assert.equal((await c.command('CREATE inbox')).tagged, 't7 NO [ALREADYEXISTS] INBOX always exists');
  assert.equal((await c.command('CREATE "InBoX/"')).tagged, 't8 NO [ALREADYEXISTS] INBOX always exists');
  // INBOX in any case is INBOX as the first level of a hierarchical name too (RFC 9051 §5.1).
  ok(await c.command('CREATE inbox/Sub'));
  assert.deepEqual(await list(c, '"" "INBOX*"'), ['* LIST (\\HasChildren) "/" INBOX', '* LIST (\\HasNoChildren) "/" INBOX/Sub']);
  assert.equal((await c.command('CREATE Inbox/Sub')).tagged, 't11 NO [ALREADYEXISTS] Mailbox already exists');
  // Other names are case-sensitive (RFC 9051 §5.1 leaves it to the server).
  ok(await c.command('CREATE X/Y'));
  await c.close();
});

test('CREATE: invalid names are NO [CANNOT] and create nothing, not even superiors', async () => {
  const c = await connect();
  const cases: [string | Buffer, string][] = [
    ['CREATE "a//b"', 'Mailbox name has an empty hierarchy level'],
    ['CREATE "/lead"', 'Mailbox name has an empty hierarchy level'],
    ['CREATE "/"', 'Mailbox name has an empty hierarchy level'],
    // "." and ".." levels would be paths once exported to files (issue 10 item 4; Dovecot refuses them too).
    ['CREATE "."', 'Mailbox name has a "." or ".." hierarchy level'],
    ['CREATE ".."', 'Mailbox name has a "." or ".." hierarchy level'],
    ['CREATE "p/../../escaped"', 'Mailbox name has a "." or ".." hierarchy level'],
    ['CREATE "p/./x"', 'Mailbox name has a "." or ".." hierarchy level'],
    ['CREATE "p/.."', 'Mailbox name has a "." or ".." hierarchy level'],
    [Buffer.from('CREATE {5+}\r\np/a\nb'), 'Mailbox name contains control characters'],
    ['CREATE ""', 'Empty mailbox name'],
    ['CREATE "p/wild*"', 'Mailbox name contains wildcard characters'],
    ['CREATE "p/100%"', 'Mailbox name contains wildcard characters'],
    [Buffer.from('CREATE {5+}\r\np/a\x01b'), 'Mailbox name contains control characters'],
    [Buffer.from('CREATE {5+}\r\np/a\x7fb'), 'Mailbox name contains control characters'],
    [`CREATE {1025+}\r\np/${'x'.repeat(1023)}`, 'Mailbox name too long'],
    [`CREATE "${Array.from({ length: 33 }, (_, i) => `d${i}`).join('/')}"`, 'Mailbox hierarchy too deep'],
  ];
  for (const [cmd, text] of cases) {
    const r = await c.command(cmd);
    assert.match(r.tagged, /^t\d+ NO \[CANNOT\] /, `${String(cmd).slice(0, 40)}: ${r.tagged}`);
    assert.ok(r.tagged.endsWith(text), r.tagged);
  }
  assert.deepEqual(await list(c, '"" "*"'), DEFAULTS, 'no superior "p" or "d0" was left behind');
  // The limits are inclusive: 1024 bytes and 32 levels are fine.
  ok(await c.command(`CREATE {1024+}\r\nq/${'x'.repeat(1022)}`));
  ok(await c.command(`CREATE "${Array.from({ length: 32 }, (_, i) => `d${i}`).join('/')}"`));
  await c.close();
});

test('CREATE: missing or extra arguments are BAD', async () => {
  const c = await connect();
  assert.match((await c.command('CREATE')).tagged, /^t2 BAD /);
  assert.match((await c.command('CREATE a b')).tagged, /^t3 BAD /);
  assert.match((await c.command('CREATE (a)')).tagged, /^t4 BAD /);
  await c.close();
});

// ---------------------------------------------------------------- DELETE

test('DELETE: INBOX is refused, a missing name is NONEXISTENT, a parent is HASCHILDREN', async () => {
  const c = await connect();
  assert.equal((await c.command('DELETE INBOX')).tagged, 't2 NO [CANNOT] INBOX cannot be deleted');
  assert.equal((await c.command('DELETE inbox')).tagged, 't3 NO [CANNOT] INBOX cannot be deleted');
  assert.equal((await c.command('DELETE nosuch')).tagged, 't4 NO [NONEXISTENT] Mailbox does not exist');
  ok(await c.command('CREATE p/q'));
  // RFC 9051 §6.3.5: a server that does not delete names with inferiors SHOULD say NO [HASCHILDREN].
  assert.equal((await c.command('DELETE p')).tagged, 't6 NO [HASCHILDREN] Mailbox has children; delete them first');
  ok(await c.command('DELETE p/q'));
  assert.deepEqual(await list(c, '"" "p*"'), ['* LIST (\\HasNoChildren) "/" p']);
  ok(await c.command('DELETE p'));
  assert.deepEqual(await list(c, '"" "p*"'), []);
  assert.equal((await c.command('DELETE p')).tagged, 't11 NO [NONEXISTENT] Mailbox does not exist');
  await c.close();
});

test('DELETE: a re-created name gets a new UIDVALIDITY and never reuses UIDs', async () => {
  const c = await connect();
  ok(await c.command('CREATE Box'));
  ok(await c.append('Box', message(1)));
  ok(await c.append('Box', message(2)));
  const before = (await c.command('STATUS Box (UIDVALIDITY UIDNEXT)')).untagged[0];
  const m = /UIDVALIDITY (\d+) UIDNEXT (\d+)/.exec(before)!;
  assert.equal(m[2], '3');
  ok(await c.command('DELETE Box'));
  assert.equal((await c.command('STATUS Box (MESSAGES)')).tagged, 't7 NO [NONEXISTENT] Mailbox does not exist');
  ok(await c.command('CREATE Box'));
  const after = (await c.command('STATUS Box (MESSAGES UIDVALIDITY UIDNEXT)')).untagged[0];
  const m2 = /MESSAGES (\d+) UIDVALIDITY (\d+) UIDNEXT (\d+)/.exec(after)!;
  assert.equal(m2[1], '0', 'the messages went with the old mailbox');
  // RFC 9051 §6.3.5: either the UIDs continue or UIDVALIDITY changes; here UIDVALIDITY grows.
  assert.ok(Number(m2[2]) > Number(m[1]), `${after} vs ${before}`);
  const r = ok(await c.append('Box', message(3)));
  assert.match(r.tagged, new RegExp(`APPENDUID ${m2[2]} \\d+\\]`));
  await c.close();
});

test('DELETE of the selected mailbox leaves the session authenticated; another session is told', async () => {
  const login = await freshUser();
  const a = await connect(login);
  const b = await connect(login);
  ok(await a.command('CREATE Doomed'));
  ok(await a.command('CREATE Doomed2'));
  ok(await a.append('Doomed', message(1)));
  ok(await a.command('SELECT Doomed'));
  // rev1: no [CLOSED] code (RFC 9051 §7.1 defines it for IMAP4rev2 clients).
  assert.deepEqual(ok(await a.command('DELETE Doomed')).untagged, []);
  assert.equal((await a.command('FETCH 1 FLAGS')).tagged, 't7 BAD [CLIENTBUG] No mailbox selected');
  ok(await a.command('NOOP'));

  // A second session that has the deleted mailbox selected cannot go on using it.
  ok(await b.command('SELECT Doomed2'));
  ok(await a.command('DELETE Doomed2'));
  // The server ends that session (RFC 2180 §3 leaves the choice to the server).
  const lines = await b.readUntil((l) => l.startsWith('* BYE'), 2000).catch(() => [] as string[]);
  assert.deepEqual(lines, ['* BYE Selected mailbox was deleted']);
  await a.close();
  await b.close();
});

test('DELETE of the selected mailbox under IMAP4rev2 sends OK [CLOSED]', async () => {
  const c = await connect();
  ok(await c.command('ENABLE IMAP4rev2'));
  ok(await c.command('CREATE Doomed'));
  ok(await c.command('SELECT Doomed'));
  const r = ok(await c.command('DELETE Doomed'));
  assert.deepEqual(r.untagged, ['* OK [CLOSED] Mailbox closed']);
  assert.match((await c.command('CLOSE')).tagged, /^t6 BAD /);
  await c.close();
});

test('DELETE keeps subscriptions of the deleted name (RFC 9051 §6.3.7: never removed unilaterally)', async () => {
  const c = await connect();
  ok(await c.command('CREATE Gone'));
  ok(await c.command('SUBSCRIBE Gone'));
  ok(await c.command('DELETE Gone'));
  assert.deepEqual(await list(c, '(SUBSCRIBED) "" "Gone"'), ['* LIST (\\NonExistent \\Subscribed) "/" Gone']);
  await c.close();
});

// ---------------------------------------------------------------- RENAME

test('RENAME: children follow, superiors of the new name are created', async () => {
  const c = await connect();
  ok(await c.command('CREATE foo/bar/baz'));
  ok(await c.command('CREATE foo/qux'));
  ok(await c.append('foo/bar', message(1)));
  ok(await c.command('RENAME foo/bar new/deep/name'));
  assert.deepEqual(await list(c, '"" "*"'), [
    ...DEFAULTS,
    '* LIST (\\HasChildren) "/" foo',
    '* LIST (\\HasNoChildren) "/" foo/qux',
    '* LIST (\\HasChildren) "/" new',
    '* LIST (\\HasChildren) "/" new/deep',
    '* LIST (\\HasChildren) "/" new/deep/name',
    '* LIST (\\HasNoChildren) "/" new/deep/name/baz',
  ]);
  assert.deepEqual((await c.command('STATUS new/deep/name (MESSAGES)')).untagged, ['* STATUS new/deep/name (MESSAGES 1)']);
  // Renaming a top level moves the whole tree.
  ok(await c.command('RENAME foo zap'));
  assert.deepEqual(await list(c, '"" "zap*"'), ['* LIST (\\HasChildren) "/" zap', '* LIST (\\HasNoChildren) "/" zap/qux']);
  await c.close();
});

test('RENAME: errors (missing source, existing target, own child, bad names)', async () => {
  const c = await connect();
  ok(await c.command('CREATE src/kid'));
  assert.equal((await c.command('RENAME nosuch x')).tagged, 't3 NO [NONEXISTENT] Mailbox does not exist');
  assert.equal((await c.command('RENAME src Sent')).tagged, 't4 NO [ALREADYEXISTS] Destination mailbox already exists');
  assert.equal((await c.command('RENAME src src')).tagged, 't5 NO [ALREADYEXISTS] Source and destination are the same');
  assert.equal((await c.command('RENAME src inbox')).tagged, 't6 NO [ALREADYEXISTS] Destination mailbox already exists');
  assert.equal((await c.command('RENAME src src/kid/deeper')).tagged, 't7 NO [CANNOT] Cannot move a mailbox into itself');
  assert.equal((await c.command('RENAME src "a//b"')).tagged, 't8 NO [CANNOT] Mailbox name has an empty hierarchy level');
  assert.equal((await c.command('RENAME src "a*"')).tagged, 't9 NO [CANNOT] Mailbox name contains wildcard characters');
  assert.match((await c.command('RENAME src')).tagged, /^t10 BAD /);
  assert.match((await c.command('RENAME src "../../escaped"')).tagged, /^t\d+ NO \[CANNOT\] Mailbox name has a "\." or "\.\." hierarchy level$/);
  assert.match((await c.command('RENAME src "x/./y"')).tagged, /^t\d+ NO \[CANNOT\] /);
  assert.match((await c.command('RENAME INBOX "x/.."')).tagged, /^t\d+ NO \[CANNOT\] /);
  // A rename whose children would exceed the depth limit is refused as a whole.
  const deep = Array.from({ length: 32 }, (_, i) => `d${i}`).join('/');
  assert.match((await c.command(`RENAME src "${deep}"`)).tagged, /^t14 NO \[CANNOT\] /);
  assert.deepEqual(await list(c, '"" "*"'), [
    ...DEFAULTS,
    '* LIST (\\HasChildren) "/" src',
    '* LIST (\\HasNoChildren) "/" src/kid',
  ], 'nothing changed, no superiors left behind');
  await c.close();
});

test('RENAME INBOX moves its messages to the new name and leaves INBOX empty', async () => {
  const c = await connect();
  ok(await c.command('CREATE INBOX/child'));
  ok(await c.append('INBOX', message(1)));
  ok(await c.append('INBOX', message(2)));
  const uidnext = (await c.command('STATUS INBOX (UIDNEXT UIDVALIDITY)')).untagged[0];
  ok(await c.command('RENAME inbox Old/Inbox'));
  assert.deepEqual((await c.command('STATUS Old/Inbox (MESSAGES UNSEEN)')).untagged, ['* STATUS Old/Inbox (MESSAGES 2 UNSEEN 2)']);
  // INBOX stays with its children and UIDVALIDITY; UIDs are not reused.
  assert.deepEqual((await c.command('STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY)')).untagged, [uidnext.replace('(', '(MESSAGES 0 ')]);
  assert.deepEqual(await list(c, '"" "INBOX*"'), ['* LIST (\\HasChildren) "/" INBOX', '* LIST (\\HasNoChildren) "/" INBOX/child']);
  // RFC 9051 §6.3.6: inferiors of INBOX are unaffected, and INBOX may be renamed below itself.
  ok(await c.command('RENAME INBOX INBOX/older'));
  assert.deepEqual(await list(c, '"" "INBOX/*"'), ['* LIST (\\HasNoChildren) "/" INBOX/child', '* LIST (\\HasNoChildren) "/" INBOX/older']);
  assert.equal((await c.command('RENAME INBOX Old/Inbox')).tagged, 't12 NO [ALREADYEXISTS] Destination mailbox already exists');
  await c.close();
});

test('RENAME INBOX while another session has INBOX selected: it sees the messages expunged', async () => {
  const login = await freshUser();
  const a = await connect(login);
  const b = await connect(login);
  ok(await a.append('INBOX', message(1)));
  ok(await a.append('INBOX', message(2)));
  ok(await b.command('SELECT INBOX'));
  ok(await a.command('RENAME INBOX Moved'));
  assert.deepEqual(ok(await b.command('NOOP')).untagged, ['* 2 EXPUNGE', '* 1 EXPUNGE']);
  await a.close();
  await b.close();
});

test('RENAME: subscriptions follow the mailbox and its children', async () => {
  const c = await connect();
  ok(await c.command('CREATE s/t'));
  ok(await c.command('SUBSCRIBE s'));
  ok(await c.command('SUBSCRIBE s/t'));
  ok(await c.command('RENAME s u'));
  // Dovecot 2.3 leaves subscriptions behind on RENAME; RFC 9051 §6.3.6 allows either, we move them.
  assert.deepEqual(ok(await c.command('LSUB "" "*"')).untagged, [
    '* LSUB () "/" INBOX',
    '* LSUB () "/" Archive',
    '* LSUB () "/" Drafts',
    '* LSUB () "/" Junk',
    '* LSUB () "/" Sent',
    '* LSUB () "/" Trash',
    '* LSUB () "/" u',
    '* LSUB () "/" u/t',
  ]);
  await c.close();
});

test('RENAME of the selected mailbox: both sessions keep working under the new name', async () => {
  const login = await freshUser();
  const a = await connect(login);
  const b = await connect(login);
  ok(await a.command('CREATE Proj'));
  ok(await a.append('Proj', message(1)));
  ok(await a.command('SELECT Proj'));
  ok(await b.command('SELECT Proj'));
  ok(await a.command('RENAME Proj Done'));
  // The second session's view follows the mailbox, not the name: new mail arrives there.
  ok(await a.append('Done', message(2)));
  const noop = ok(await b.command('NOOP'));
  assert.deepEqual(noop.untagged, ['* 2 EXISTS', '* 0 RECENT']);
  assert.deepEqual(ok(await b.command('UID FETCH 1:* FLAGS')).untagged, ['* 1 FETCH (UID 1 FLAGS ())', '* 2 FETCH (UID 2 FLAGS ())']);
  assert.equal((await b.command('STATUS Proj (MESSAGES)')).tagged, 't5 NO [NONEXISTENT] Mailbox does not exist');
  ok(await a.command('CLOSE'));
  await a.close();
  await b.close();
});

// ------------------------------------------------- SUBSCRIBE, UNSUBSCRIBE, LSUB

test('SUBSCRIBE / UNSUBSCRIBE and LSUB with \\Noselect parents for "%"', async () => {
  const c = await connect();
  ok(await c.command('CREATE news/comp/mail'));
  ok(await c.command('SUBSCRIBE news/comp/mail'));
  ok(await c.command('SUBSCRIBE news/comp/mail'), 'subscribing twice is fine');
  assert.equal((await c.command('SUBSCRIBE nosuch')).tagged, 't5 NO [NONEXISTENT] Mailbox does not exist');
  ok(await c.command('UNSUBSCRIBE nosuch'), 'unsubscribing an unknown name is fine (Dovecot agrees)');
  ok(await c.command('UNSUBSCRIBE Junk'));
  ok(await c.command('UNSUBSCRIBE Trash'));
  assert.deepEqual(ok(await c.command('LSUB "" "*"')).untagged, [
    '* LSUB () "/" INBOX',
    '* LSUB () "/" Archive',
    '* LSUB () "/" Drafts',
    '* LSUB () "/" Sent',
    '* LSUB () "/" news/comp/mail',
  ]);
  // RFC 3501 §6.3.9: "%" matching an unsubscribed superior of a subscribed name returns it \Noselect
  // (Dovecot answers the same two lines).
  assert.deepEqual(ok(await c.command('LSUB "" "news/%"')).untagged, ['* LSUB (\\Noselect) "/" news/comp']);
  assert.deepEqual(ok(await c.command('LSUB "news/" "%"')).untagged, ['* LSUB (\\Noselect) "/" news/comp']);
  assert.deepEqual(ok(await c.command('LSUB "" "n%"')).untagged, ['* LSUB (\\Noselect) "/" news']);
  assert.deepEqual(ok(await c.command('LSUB "" "news/*"')).untagged, ['* LSUB () "/" news/comp/mail']);
  ok(await c.command('SUBSCRIBE news'));
  assert.deepEqual(ok(await c.command('LSUB "" "n%"')).untagged, ['* LSUB () "/" news']);
  ok(await c.command('UNSUBSCRIBE news/comp/mail'));
  assert.deepEqual(ok(await c.command('LSUB "" "news/%"')).untagged, []);
  assert.match((await c.command('SUBSCRIBE')).tagged, /^t\d+ BAD /);
  assert.match((await c.command('LSUB ""')).tagged, /^t\d+ BAD /);
  await c.close();
});

test('LSUB: INBOX matches case-insensitively', async () => {
  const c = await connect();
  assert.deepEqual(ok(await c.command('LSUB "" inbox')).untagged, ['* LSUB () "/" INBOX']);
  await c.close();
});

// ---------------------------------------------------------------- NAMESPACE

test('NAMESPACE: one personal namespace with an empty prefix', async () => {
  const c = await connect();
  const r = ok(await c.command('NAMESPACE'));
  assert.deepEqual(r.untagged, ['* NAMESPACE (("" "/")) NIL NIL']);
  assert.match((await c.command('NAMESPACE x')).tagged, /^t3 BAD /);
  await c.close();
});

// ---------------------------------------------------------- mailbox names

test('non-ASCII names: modified UTF-7 for IMAP4rev1, UTF-8 after ENABLE IMAP4rev2', async () => {
  const login = await freshUser();
  const v1 = await connect(login);
  ok(await v1.command('CREATE "Entw&APw-rfe"'));
  ok(await v1.command('CREATE "Tom &- Jerry"'));
  ok(await v1.command('CREATE "&ZeVnLIqe-/&U,BTFw-"')); // 日本語/台北
  assert.deepEqual(await list(v1, '"" "*"'), [
    '* LIST (\\HasNoChildren) "/" INBOX',
    '* LIST (\\HasNoChildren \\Archive) "/" Archive',
    '* LIST (\\HasNoChildren \\Drafts) "/" Drafts',
    '* LIST (\\HasNoChildren) "/" Entw&APw-rfe',
    '* LIST (\\HasNoChildren \\Junk) "/" Junk',
    '* LIST (\\HasNoChildren \\Sent) "/" Sent',
    '* LIST (\\HasNoChildren) "/" "Tom &- Jerry"',
    '* LIST (\\HasNoChildren \\Trash) "/" Trash',
    '* LIST (\\HasChildren) "/" &ZeVnLIqe-',
    '* LIST (\\HasNoChildren) "/" &ZeVnLIqe-/&U,BTFw-',
  ]);
  assert.deepEqual(ok(await v1.command('STATUS "Entw&APw-rfe" (MESSAGES)')).untagged, ['* STATUS Entw&APw-rfe (MESSAGES 0)']);
  assert.deepEqual(await list(v1, '"" "Entw&APw-*"'), ['* LIST (\\HasNoChildren) "/" Entw&APw-rfe']);

  const v2 = await connect(login);
  assert.deepEqual(ok(await v2.command('ENABLE IMAP4rev2')).untagged, ['* ENABLED IMAP4rev2']);
  assert.deepEqual(await list(v2, '"" "*"'), [
    '* LIST (\\HasNoChildren) "/" INBOX',
    '* LIST (\\HasNoChildren \\Archive) "/" Archive',
    '* LIST (\\HasNoChildren \\Drafts) "/" Drafts',
    '* LIST (\\HasNoChildren) "/" "Entwürfe"',
    '* LIST (\\HasNoChildren \\Junk) "/" Junk',
    '* LIST (\\HasNoChildren \\Sent) "/" Sent',
    '* LIST (\\HasNoChildren) "/" "Tom & Jerry"',
    '* LIST (\\HasNoChildren \\Trash) "/" Trash',
    '* LIST (\\HasChildren) "/" "日本語"',
    '* LIST (\\HasNoChildren) "/" "日本語/台北"',
  ]);
  // In UTF-8 mode "&" is an ordinary character: this is a different mailbox.
  ok(await v2.command('CREATE "Entw&APw-rfe"'));
  ok(await v2.command('CREATE "Grüße"'));
  assert.deepEqual(ok(await v2.command('SELECT "Entwürfe"')).untagged.at(-1), '* LIST () "/" "Entwürfe"');
  assert.deepEqual(await list(v1, '"" "Entw*"'), [
    '* LIST (\\HasNoChildren) "/" Entw&-APw-rfe',
    '* LIST (\\HasNoChildren) "/" Entw&APw-rfe',
  ]);
  assert.deepEqual(await list(v1, '"" "Gr*"'), ['* LIST (\\HasNoChildren) "/" Gr&APwA3w-e']);
  ok(await v1.command('RENAME "Gr&APwA3w-e" "Gr&APw-sse"'));
  assert.deepEqual(await list(v2, '"" "Gr*"'), ['* LIST (\\HasNoChildren) "/" "Grüsse"']);
  await v1.close();
  await v2.close();
});

test('invalid modified UTF-7 from an IMAP4rev1 client is NO; LIST and LSUB match nothing', async () => {
  const c = await connect();
  // RFC 9051 §6.3.x: a well-formed name that cannot name a mailbox is a NO; Dovecot answers
  // NO "Mailbox name is not valid mUTF-7" to each of these and OK with no match to LIST/LSUB.
  for (const name of ['"Bad&Jjo"', '"&AGE-"', '"&APw"', '"&U,B!-"', '"a&Jjo-&AKM-"', '"&2D0-"']) {
    const r = await c.command(`CREATE ${name}`);
    assert.match(r.tagged, /^t\d+ NO Mailbox name is not valid modified UTF-7$/, `${name}: ${r.tagged}`);
  }
  for (const cmd of ['SELECT "&AGE-"', 'EXAMINE "&AGE-"', 'STATUS "&AGE-" (MESSAGES)', 'DELETE "&AGE-"', 'RENAME INBOX "&AGE-"', 'RENAME "&AGE-" x',
    'SUBSCRIBE "&AGE-"', 'UNSUBSCRIBE "&AGE-"', 'APPEND "&AGE-" {3+}\r\nabc', 'COPY 1 "&AGE-"']) {
    if (cmd.startsWith('COPY')) ok(await c.command('SELECT INBOX'));
    assert.match((await c.command(cmd)).tagged, /^t\d+ NO /, cmd);
  }
  assert.deepEqual(await list(c, '"" "&AGE-*"'), []);
  assert.deepEqual(await list(c, '"&AGE-" "*"'), []);
  assert.deepEqual(ok(await c.command('LSUB "" "&AGE-*"')).untagged, []);
  // 8-bit names are not modified UTF-7 either (Dovecot: NO "Mailbox name is not valid mUTF-7").
  assert.match((await c.command('CREATE "Entwürfe"')).tagged, /^t\d+ NO Mailbox name is not valid modified UTF-7$/);
  assert.deepEqual(await list(c, '"" "Entwü*"'), []);
  assert.deepEqual(await list(c, '"" "*"'), DEFAULTS);
  await c.close();
});

test('a failed SELECT of an invalid name still closes the selected mailbox (RFC 9051 §6.3.2)', async () => {
  const c = await connect();
  ok(await c.command('SELECT INBOX'));
  const r = await c.command('SELECT "&AGE-"');
  assert.match(r.tagged, /^t\d+ NO /);
  assert.match((await c.command('FETCH 1 FLAGS')).tagged, /^t\d+ BAD \[CLIENTBUG\] No mailbox selected/);
  await c.close();
});

test('IMAP4rev2: names must be valid Net-Unicode (UTF-8, NFC, no controls)', async () => {
  const c = await connect();
  ok(await c.command('ENABLE IMAP4rev2'));
  // Invalid UTF-8 names no mailbox: NO (as for invalid modified UTF-7).
  const bin = Buffer.concat([Buffer.from('CREATE {4+}\r\nab'), Buffer.from([0xc3, 0x28])]);
  assert.match((await c.command(bin)).tagged, /^t3 NO Mailbox name is not valid UTF-8$/);
  // RFC 9051 §5.1: the server MUST prohibit 8-bit names that are not Net-Unicode (RFC 5198: NFC, no C1 controls).
  const decomposed = 'Entwu\u0308rfe';
  assert.match((await c.command(`CREATE "${decomposed}"`)).tagged, /^t4 NO \[CANNOT\] /);
  assert.match((await c.command(Buffer.from('CREATE {3+}\r\na\u0085', 'utf8'))).tagged, /^t5 NO \[CANNOT\] /);
  assert.deepEqual(await list(c, '"" "*"'), DEFAULTS);
  await c.close();
});

test('names that need quoting round-trip: quotes, backslashes, NIL, parentheses, braces', async () => {
  const c = await connect();
  await c.command('CREATE "a \\"q\\" b\\\\c"').then(ok);
  await c.command('CREATE NIL').then(ok);
  await c.command('CREATE "(paren)"').then(ok);
  await c.command('CREATE "x{3}"').then(ok);
  assert.deepEqual(await list(c, '"" "*"'), [
    '* LIST (\\HasNoChildren) "/" INBOX',
    '* LIST (\\HasNoChildren) "/" "(paren)"',
    '* LIST (\\HasNoChildren \\Archive) "/" Archive',
    '* LIST (\\HasNoChildren \\Drafts) "/" Drafts',
    '* LIST (\\HasNoChildren \\Junk) "/" Junk',
    '* LIST (\\HasNoChildren) "/" "NIL"', // an atom NIL would read as nil
    '* LIST (\\HasNoChildren \\Sent) "/" Sent',
    '* LIST (\\HasNoChildren \\Trash) "/" Trash',
    '* LIST (\\HasNoChildren) "/" "a \\"q\\" b\\\\c"',
    '* LIST (\\HasNoChildren) "/" "x{3}"',
  ]);
  assert.deepEqual(ok(await c.command('STATUS "a \\"q\\" b\\\\c" (MESSAGES)')).untagged, ['* STATUS "a \\"q\\" b\\\\c" (MESSAGES 0)']);
  ok(await c.command('RENAME "NIL" "sub/NIL"'));
  assert.deepEqual(await list(c, '"" "sub/*"'), ['* LIST (\\HasNoChildren) "/" sub/NIL']);
  await c.close();
});
