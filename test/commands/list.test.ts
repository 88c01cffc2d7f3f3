// Behaviour over a real socket: LIST (RFC 9051 §6.3.9) with LIST-EXTENDED
// (RFC 5258), LIST-STATUS (RFC 5819), SPECIAL-USE (RFC 6154), CHILDREN
// (RFC 3348), and STATUS (RFC 9051 §6.3.11, RFC 8438 STATUS=SIZE). Every
// test logs in as a fresh user so that the mailbox trees of tests never meet.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient, message } from '../helpers/imap.js';
import { accounts, ok, listLines as list, DEFAULT_LIST as DEFAULTS } from '../helpers/accounts.js';

let srv: TestServer;
before(async () => { srv = await startTestServer(); });
after(async () => { await srv.stop(); });

const { freshUser, connect } = accounts(() => srv, 'lst');

async function setup(c: RawClient, ...cmds: string[]): Promise<void> {
  for (const cmd of cmds) ok(await c.command(cmd));
}

// ---------------------------------------------------------------- plain LIST

test('LIST "" "*": every mailbox, INBOX first, children and special-use attributes', async () => {
  const c = await connect();
  assert.deepEqual(await list(c, '"" "*"'), DEFAULTS);
  assert.deepEqual(await list(c, '"" *'), DEFAULTS, 'the pattern may be an atom');
  await setup(c, 'CREATE Fruit/Apple', 'CREATE Fruit/Banana', 'CREATE Tofu', 'CREATE Sent/2024');
  assert.deepEqual(await list(c, '"" "*"'), [
    '* LIST (\\HasNoChildren) "/" INBOX',
    '* LIST (\\HasNoChildren \\Archive) "/" Archive',
    '* LIST (\\HasNoChildren \\Drafts) "/" Drafts',
    '* LIST (\\HasChildren) "/" Fruit',
    '* LIST (\\HasNoChildren) "/" Fruit/Apple',
    '* LIST (\\HasNoChildren) "/" Fruit/Banana',
    '* LIST (\\HasNoChildren \\Junk) "/" Junk',
    '* LIST (\\HasChildren \\Sent) "/" Sent',
    '* LIST (\\HasNoChildren) "/" Sent/2024',
    '* LIST (\\HasNoChildren) "/" Tofu',
    '* LIST (\\HasNoChildren \\Trash) "/" Trash',
  ]);
  await c.close();
});

test('LIST: "%" stops at the separator, "*" does not; the reference is prefixed', async () => {
  const c = await connect();
  await setup(c, 'CREATE Fruit/Apple/Green', 'CREATE Fruit/Banana', 'CREATE Fruitcake');
  assert.deepEqual(await list(c, '"" "Fruit%"'), ['* LIST (\\HasChildren) "/" Fruit', '* LIST (\\HasNoChildren) "/" Fruitcake']);
  assert.deepEqual(await list(c, '"" "Fruit/%"'), ['* LIST (\\HasChildren) "/" Fruit/Apple', '* LIST (\\HasNoChildren) "/" Fruit/Banana']);
  assert.deepEqual(await list(c, '"" "Fruit/*"'), [
    '* LIST (\\HasChildren) "/" Fruit/Apple',
    '* LIST (\\HasNoChildren) "/" Fruit/Apple/Green',
    '* LIST (\\HasNoChildren) "/" Fruit/Banana',
  ]);
  assert.deepEqual(await list(c, '"" "%/%/%"'), ['* LIST (\\HasNoChildren) "/" Fruit/Apple/Green']);
  assert.deepEqual(await list(c, '"" "F*n"'), ['* LIST (\\HasNoChildren) "/" Fruit/Apple/Green']);
  // Reference and pattern are concatenated as they are (Dovecot: LIST "foo2" "%" lists "foo2" itself).
  assert.deepEqual(await list(c, '"Fruit/" "%"'), ['* LIST (\\HasChildren) "/" Fruit/Apple', '* LIST (\\HasNoChildren) "/" Fruit/Banana']);
  assert.deepEqual(await list(c, '"Fruit" "%"'), ['* LIST (\\HasChildren) "/" Fruit', '* LIST (\\HasNoChildren) "/" Fruitcake']);
  assert.deepEqual(await list(c, 'Fruit/Apple /*'), ['* LIST (\\HasNoChildren) "/" Fruit/Apple/Green']);
  // Names are case-sensitive except INBOX; regex characters in a pattern are literal.
  assert.deepEqual(await list(c, '"" "fruit*"'), []);
  assert.deepEqual(await list(c, '"" "Fruit.*"'), []);
  assert.deepEqual(await list(c, '"" "/*"'), [], 'Dovecot agrees: no name starts with the separator');
  assert.deepEqual(await list(c, '"" "nosuch"'), []);
  await c.close();
});

test('LIST: INBOX matches case-insensitively, also through wildcards (as in Dovecot)', async () => {
  const c = await connect();
  await setup(c, 'CREATE INBOX/Sub', 'CREATE Inboxes');
  assert.deepEqual(await list(c, '"" inbox'), ['* LIST (\\HasChildren) "/" INBOX']);
  assert.deepEqual(await list(c, '"" "InBox"'), ['* LIST (\\HasChildren) "/" INBOX']);
  assert.deepEqual(await list(c, '"" "inbox/%"'), ['* LIST (\\HasNoChildren) "/" INBOX/Sub']);
  assert.deepEqual(await list(c, '"inbox/" "*"'), ['* LIST (\\HasNoChildren) "/" INBOX/Sub']);
  assert.deepEqual(await list(c, '"" "inb%"'), ['* LIST (\\HasChildren) "/" INBOX']);
  assert.deepEqual(await list(c, '"" "*box"'), ['* LIST (\\HasChildren) "/" INBOX']);
  assert.deepEqual(await list(c, '"" "*box/sub"'), [], 'only the INBOX level is case-insensitive');
  assert.deepEqual(await list(c, '"" "*box/Sub"'), ['* LIST (\\HasNoChildren) "/" INBOX/Sub']);
  assert.deepEqual(await list(c, '"" "inbox%"'), ['* LIST (\\HasChildren) "/" INBOX'], '"Inboxes" is an ordinary, case-sensitive name');
  assert.deepEqual(await list(c, '"" "Inbox%"'), ['* LIST (\\HasChildren) "/" INBOX', '* LIST (\\HasNoChildren) "/" Inboxes']);
  await c.close();
});

test('LIST "" "": the hierarchy delimiter and root (also with a reference, as Dovecot answers)', async () => {
  const c = await connect();
  assert.deepEqual(await list(c, '"" ""'), ['* LIST (\\Noselect) "/" ""']);
  assert.deepEqual(await list(c, 'Sent ""'), ['* LIST (\\Noselect) "/" ""']);
  // With the extended syntax an empty pattern matches nothing (Dovecot: no untagged response either).
  assert.deepEqual(await list(c, '() "" ""'), []);
  await c.close();
});

test('LIST: \\HasChildren changes as children come and go; STATUS/SELECT still work on parents', async () => {
  const c = await connect();
  await setup(c, 'CREATE P/C');
  assert.deepEqual(await list(c, '"" P'), ['* LIST (\\HasChildren) "/" P']);
  await setup(c, 'DELETE P/C');
  assert.deepEqual(await list(c, '"" P'), ['* LIST (\\HasNoChildren) "/" P']);
  await c.close();
});

test('LIST: bad syntax is BAD', async () => {
  const c = await connect();
  const bads = [
    'LIST',
    'LIST ""',
    'LIST "" "*" extra',
    'LIST (FOO) "" "*"', // RFC 5258 §3.1: unknown selection option
    'LIST (RECURSIVEMATCH) "" "*"', // RFC 5258 §3.1: RECURSIVEMATCH alone
    'LIST (REMOTE RECURSIVEMATCH) "" "*"',
    'LIST "" "*" RETURN (FOO)',
    'LIST "" "*" RETURN', // Dovecot: BAD "Extra arguments"
    'LIST "" "*" RETURN CHILDREN',
    'LIST "" "*" RETURN (STATUS)', // Dovecot: BAD
    'LIST "" "*" RETURN (STATUS ())', // Dovecot: BAD "Empty status list"
    'LIST "" "*" RETURN (STATUS (MESSAGES BOGUS))',
    'LIST "" ()', // RFC 5258 ABNF: a pattern list has at least one pattern (Dovecot accepts it)
    'LIST "" "*" NOTRETURN (CHILDREN)',
    'LIST ("SUBSCRIBED") "" "*"',
  ];
  for (const cmd of bads) assert.match((await c.command(cmd)).tagged, /^t\d+ BAD /, cmd);
  assert.deepEqual(await list(c, '"" "INBOX" RETURN ()'), ['* LIST (\\HasNoChildren) "/" INBOX']);
  await c.close();
});

// ---------------------------------------------------------------- LIST-EXTENDED

test('LIST-EXTENDED: several patterns, each name once, in one sorted answer', async () => {
  const c = await connect();
  await setup(c, 'CREATE Sent/March', 'CREATE Sent/April');
  // RFC 5258 §5 example 7.
  assert.deepEqual(await list(c, '"" ("INBOX" "Drafts" "Sent/%")'), [
    '* LIST (\\HasNoChildren) "/" INBOX',
    '* LIST (\\HasNoChildren \\Drafts) "/" Drafts',
    '* LIST (\\HasNoChildren) "/" Sent/April',
    '* LIST (\\HasNoChildren) "/" Sent/March',
  ]);
  assert.deepEqual(await list(c, '"" ("S*" "Sent/*" "inbox")'), [
    '* LIST (\\HasNoChildren) "/" INBOX',
    '* LIST (\\HasChildren \\Sent) "/" Sent',
    '* LIST (\\HasNoChildren) "/" Sent/April',
    '* LIST (\\HasNoChildren) "/" Sent/March',
  ]);
  assert.deepEqual(await list(c, '() "" "%" RETURN (CHILDREN)'), [
    '* LIST (\\HasNoChildren) "/" INBOX',
    '* LIST (\\HasNoChildren \\Archive) "/" Archive',
    '* LIST (\\HasNoChildren \\Drafts) "/" Drafts',
    '* LIST (\\HasNoChildren \\Junk) "/" Junk',
    '* LIST (\\HasChildren \\Sent) "/" Sent',
    '* LIST (\\HasNoChildren \\Trash) "/" Trash',
  ]);
  // REMOTE selects nothing extra on a server without remote mailboxes.
  assert.deepEqual(await list(c, '(REMOTE) "" "Sent"'), ['* LIST (\\HasChildren \\Sent) "/" Sent']);
  await c.close();
});

test('LIST-EXTENDED: SUBSCRIBED selection and return option', async () => {
  const c = await connect();
  await setup(c, 'CREATE Fruit/Peach', 'CREATE Fruit/Pear', 'SUBSCRIBE Fruit/Peach', 'UNSUBSCRIBE Junk', 'UNSUBSCRIBE Trash', 'UNSUBSCRIBE Archive');
  // A subscribed name whose mailbox is gone is still listed, \NonExistent (RFC 5258 §3.3 rule 3).
  await setup(c, 'CREATE Gone', 'SUBSCRIBE Gone', 'DELETE Gone');
  assert.deepEqual(await list(c, '(SUBSCRIBED) "" "*"'), [
    '* LIST (\\HasNoChildren \\Subscribed) "/" INBOX',
    '* LIST (\\HasNoChildren \\Drafts \\Subscribed) "/" Drafts',
    '* LIST (\\HasNoChildren \\Subscribed) "/" Fruit/Peach',
    '* LIST (\\NonExistent \\Subscribed) "/" Gone',
    '* LIST (\\HasNoChildren \\Sent \\Subscribed) "/" Sent',
  ]);
  // Without RECURSIVEMATCH, "%" does not reach Fruit/Peach and Fruit itself is not subscribed.
  assert.deepEqual(await list(c, '(SUBSCRIBED) "" "F%"'), []);
  assert.deepEqual(await list(c, '"" "*" RETURN (SUBSCRIBED)'), [
    '* LIST (\\HasNoChildren \\Subscribed) "/" INBOX',
    '* LIST (\\HasNoChildren \\Archive) "/" Archive',
    '* LIST (\\HasNoChildren \\Drafts \\Subscribed) "/" Drafts',
    '* LIST (\\HasChildren) "/" Fruit',
    '* LIST (\\HasNoChildren \\Subscribed) "/" Fruit/Peach',
    '* LIST (\\HasNoChildren) "/" Fruit/Pear',
    '* LIST (\\HasNoChildren \\Junk) "/" Junk',
    '* LIST (\\HasNoChildren \\Sent \\Subscribed) "/" Sent',
    '* LIST (\\HasNoChildren \\Trash) "/" Trash',
  ]);
  // A plain LIST does not show \Subscribed.
  assert.deepEqual(await list(c, '"" "Fruit/Peach"'), ['* LIST (\\HasNoChildren) "/" Fruit/Peach']);
  await c.close();
});

test('LIST-EXTENDED: RECURSIVEMATCH and CHILDINFO (RFC 5258 §5 examples 8 and 9)', async () => {
  const c = await connect();
  await setup(c, 'UNSUBSCRIBE INBOX', 'UNSUBSCRIBE Drafts', 'UNSUBSCRIBE Sent', 'UNSUBSCRIBE Junk', 'UNSUBSCRIBE Trash', 'UNSUBSCRIBE Archive');
  // Example 8: only Foo/Baz is subscribed.
  await setup(c, 'CREATE Foo/Bar', 'CREATE Foo/Baz', 'CREATE Moo', 'SUBSCRIBE Foo/Baz');
  assert.deepEqual(await list(c, '(SUBSCRIBED) "" "%"'), []);
  assert.deepEqual(await list(c, '(SUBSCRIBED RECURSIVEMATCH) "" "%"'), ['* LIST (\\HasChildren) "/" Foo ("CHILDINFO" ("SUBSCRIBED"))']);
  // A1: Foo subscribed as well: it is returned for itself and still carries CHILDINFO.
  await setup(c, 'SUBSCRIBE Foo');
  assert.deepEqual(await list(c, '(SUBSCRIBED RECURSIVEMATCH) "" "%"'), [
    '* LIST (\\HasChildren \\Subscribed) "/" Foo ("CHILDINFO" ("SUBSCRIBED"))',
  ]);
  // C: Foo and Moo subscribed, no subscribed child: no CHILDINFO.
  await setup(c, 'UNSUBSCRIBE Foo/Baz', 'SUBSCRIBE Moo');
  assert.deepEqual(await list(c, '(SUBSCRIBED RECURSIVEMATCH) "" "%" RETURN (CHILDREN)'), [
    '* LIST (\\HasChildren \\Subscribed) "/" Foo',
    '* LIST (\\HasNoChildren \\Subscribed) "/" Moo',
  ]);
  await setup(c, 'UNSUBSCRIBE Foo', 'UNSUBSCRIBE Moo');

  // Example 9.
  await setup(c, 'CREATE foo2/bar1', 'CREATE foo2/bar2', 'CREATE baz2/bar2', 'CREATE baz2/bar22', 'CREATE baz2/bar222',
    'CREATE eps2/mamba', 'CREATE qux2/bar2');
  for (const n of ['foo2/bar1', 'foo2/bar2', 'baz2/bar2', 'baz2/bar22', 'baz2/bar222', 'eps2', 'eps2/mamba', 'qux2/bar2']) {
    ok(await c.command(`SUBSCRIBE ${n}`));
  }
  // baz2 and qux2 are left out: all their subscribed children are returned anyway
  // (RFC 5258 §3.3 rule 2B and the SHOULD in §3.5; Dovecot 2.3 answers the same set).
  assert.deepEqual(await list(c, '(RECURSIVEMATCH SUBSCRIBED) "" "*2"'), [
    '* LIST (\\HasNoChildren \\Subscribed) "/" baz2/bar2',
    '* LIST (\\HasNoChildren \\Subscribed) "/" baz2/bar22',
    '* LIST (\\HasNoChildren \\Subscribed) "/" baz2/bar222',
    '* LIST (\\HasChildren \\Subscribed) "/" eps2 ("CHILDINFO" ("SUBSCRIBED"))',
    '* LIST (\\HasChildren) "/" foo2 ("CHILDINFO" ("SUBSCRIBED"))',
    '* LIST (\\HasNoChildren \\Subscribed) "/" foo2/bar2',
    '* LIST (\\HasNoChildren \\Subscribed) "/" qux2/bar2',
  ]);
  // With "*" every subscribed child is returned: only eps2, itself subscribed, carries CHILDINFO.
  assert.deepEqual(await list(c, '(RECURSIVEMATCH SUBSCRIBED) "" "*"'), [
    '* LIST (\\HasNoChildren \\Subscribed) "/" baz2/bar2',
    '* LIST (\\HasNoChildren \\Subscribed) "/" baz2/bar22',
    '* LIST (\\HasNoChildren \\Subscribed) "/" baz2/bar222',
    '* LIST (\\HasChildren \\Subscribed) "/" eps2 ("CHILDINFO" ("SUBSCRIBED"))',
    '* LIST (\\HasNoChildren \\Subscribed) "/" eps2/mamba',
    '* LIST (\\HasNoChildren \\Subscribed) "/" foo2/bar1',
    '* LIST (\\HasNoChildren \\Subscribed) "/" foo2/bar2',
    '* LIST (\\HasNoChildren \\Subscribed) "/" qux2/bar2',
  ]);
  // Example 10: CHILDINFO does not imply \HasChildren; a subscribed child that no longer exists counts.
  await setup(c, 'CREATE foo', 'CREATE foo/bar', 'SUBSCRIBE foo/bar', 'DELETE foo/bar');
  assert.deepEqual(await list(c, '(SUBSCRIBED) "" "foo/*"'), ['* LIST (\\NonExistent \\Subscribed) "/" foo/bar']);
  assert.deepEqual(await list(c, '(SUBSCRIBED RECURSIVEMATCH) "" foo RETURN (CHILDREN)'), [
    '* LIST (\\HasNoChildren) "/" foo ("CHILDINFO" ("SUBSCRIBED"))',
  ]);
  await c.close();
});

test('SPECIAL-USE: attributes on plain LIST, the selection option, RECURSIVEMATCH', async () => {
  const c = await connect();
  await setup(c, 'CREATE Projects/Old', 'RENAME Archive Projects/Archive');
  // RFC 6154 §2: the attribute follows the mailbox when it is renamed.
  assert.deepEqual(await list(c, '(SPECIAL-USE) "" "*"'), [
    '* LIST (\\HasNoChildren \\Drafts) "/" Drafts',
    '* LIST (\\HasNoChildren \\Junk) "/" Junk',
    '* LIST (\\HasNoChildren \\Archive) "/" Projects/Archive',
    '* LIST (\\HasNoChildren \\Sent) "/" Sent',
    '* LIST (\\HasNoChildren \\Trash) "/" Trash',
  ]);
  assert.deepEqual(await list(c, '"" "%" RETURN (SPECIAL-USE)'), [
    '* LIST (\\HasNoChildren) "/" INBOX',
    '* LIST (\\HasNoChildren \\Drafts) "/" Drafts',
    '* LIST (\\HasNoChildren \\Junk) "/" Junk',
    '* LIST (\\HasChildren) "/" Projects',
    '* LIST (\\HasNoChildren \\Sent) "/" Sent',
    '* LIST (\\HasNoChildren \\Trash) "/" Trash',
  ]);
  assert.deepEqual(await list(c, '(SPECIAL-USE RECURSIVEMATCH) "" "P%"'), ['* LIST (\\HasChildren) "/" Projects ("CHILDINFO" ("SPECIAL-USE"))']);
  // Selection options combine (Dovecot: LIST (SUBSCRIBED SPECIAL-USE) lists the subscribed special-use
  // mailboxes). The subscription to Archive followed the RENAME.
  await setup(c, 'UNSUBSCRIBE Junk');
  assert.deepEqual(await list(c, '(SUBSCRIBED SPECIAL-USE) "" "*"'), [
    '* LIST (\\HasNoChildren \\Drafts \\Subscribed) "/" Drafts',
    '* LIST (\\HasNoChildren \\Archive \\Subscribed) "/" Projects/Archive',
    '* LIST (\\HasNoChildren \\Sent \\Subscribed) "/" Sent',
    '* LIST (\\HasNoChildren \\Trash \\Subscribed) "/" Trash',
  ]);
  await c.close();
});

test('LIST-STATUS: RETURN (STATUS ...) follows each selectable mailbox', async () => {
  const c = await connect();
  await setup(c, 'CREATE Work/Reports', 'SUBSCRIBE Work/Reports');
  ok(await c.append('INBOX', message(1)));
  ok(await c.append('Work/Reports', message(2), '(\\Seen)'));
  ok(await c.append('Work/Reports', message(3)));
  const inbox = (await c.command('STATUS INBOX (UIDVALIDITY)')).untagged[0].match(/UIDVALIDITY (\d+)/)![1];
  assert.deepEqual(await list(c, '"" "%" RETURN (CHILDREN STATUS (MESSAGES UNSEEN))'), [
    '* LIST (\\HasNoChildren) "/" INBOX',
    '* STATUS INBOX (MESSAGES 1 UNSEEN 1)',
    '* LIST (\\HasNoChildren \\Archive) "/" Archive',
    '* STATUS Archive (MESSAGES 0 UNSEEN 0)',
    '* LIST (\\HasNoChildren \\Drafts) "/" Drafts',
    '* STATUS Drafts (MESSAGES 0 UNSEEN 0)',
    '* LIST (\\HasNoChildren \\Junk) "/" Junk',
    '* STATUS Junk (MESSAGES 0 UNSEEN 0)',
    '* LIST (\\HasNoChildren \\Sent) "/" Sent',
    '* STATUS Sent (MESSAGES 0 UNSEEN 0)',
    '* LIST (\\HasNoChildren \\Trash) "/" Trash',
    '* STATUS Trash (MESSAGES 0 UNSEEN 0)',
    '* LIST (\\HasChildren) "/" Work',
    '* STATUS Work (MESSAGES 0 UNSEEN 0)',
  ]);
  const reports = ok(await c.command('STATUS Work/Reports (UIDNEXT UIDVALIDITY SIZE DELETED)')).untagged[0];
  assert.match(reports, new RegExp(`^\\* STATUS Work/Reports \\(UIDNEXT 3 UIDVALIDITY \\d+ SIZE ${message(2).length + message(3).length} DELETED 0\\)$`));
  assert.deepEqual(await list(c, '"" ("inbox" "Work/*") RETURN (STATUS (UIDNEXT UIDVALIDITY SIZE DELETED))'), [
    '* LIST (\\HasNoChildren) "/" INBOX',
    `* STATUS INBOX (UIDNEXT 2 UIDVALIDITY ${inbox} SIZE ${message(1).length} DELETED 0)`,
    '* LIST (\\HasNoChildren) "/" Work/Reports',
    reports,
  ]);
  // No STATUS for a name that is not a mailbox (RFC 5819 §2; Dovecot also answers only the LIST).
  await setup(c, 'CREATE Gone', 'SUBSCRIBE Gone', 'DELETE Gone');
  assert.deepEqual(await list(c, '(SUBSCRIBED) "" "G*" RETURN (STATUS (MESSAGES))'), ['* LIST (\\NonExistent \\Subscribed) "/" Gone']);
  assert.deepEqual(await list(c, '(SUBSCRIBED) "" "Work/*" RETURN (STATUS (MESSAGES))'), [
    '* LIST (\\HasNoChildren \\Subscribed) "/" Work/Reports',
    '* STATUS Work/Reports (MESSAGES 2)',
  ]);
  await c.close();
});

// ---------------------------------------------------------------- STATUS

test('STATUS: every item, in the order asked', async () => {
  const c = await connect();
  ok(await c.append('INBOX', message(1), '(\\Seen)'));
  ok(await c.append('INBOX', message(2), '(\\Deleted)'));
  ok(await c.append('INBOX', message(3)));
  const size = message(1).length + message(2).length + message(3).length;
  const st = ok(await c.command('STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE)')).untagged;
  assert.equal(st.length, 1);
  assert.match(st[0], new RegExp(`^\\* STATUS INBOX \\(MESSAGES 3 RECENT 3 UIDNEXT 4 UIDVALIDITY \\d+ UNSEEN 2 DELETED 1 SIZE ${size}\\)$`));
  assert.deepEqual(ok(await c.command('STATUS inbox (size messages)')).untagged, [`* STATUS INBOX (SIZE ${size} MESSAGES 3)`]);
  assert.deepEqual(ok(await c.command('STATUS INBOX (UNSEEN UNSEEN)')).untagged, ['* STATUS INBOX (UNSEEN 2)']);
  assert.deepEqual(ok(await c.command('STATUS Drafts (MESSAGES UIDNEXT SIZE)')).untagged, ['* STATUS Drafts (MESSAGES 0 UIDNEXT 1 SIZE 0)']);
  await c.close();
});

test('STATUS: errors', async () => {
  const c = await connect();
  assert.equal((await c.command('STATUS nosuch (MESSAGES)')).tagged, 't2 NO [NONEXISTENT] Mailbox does not exist');
  assert.match((await c.command('STATUS INBOX ()')).tagged, /^t3 BAD /);
  assert.match((await c.command('STATUS INBOX (BOGUS)')).tagged, /^t4 BAD /);
  assert.match((await c.command('STATUS INBOX MESSAGES')).tagged, /^t5 BAD /);
  assert.match((await c.command('STATUS INBOX')).tagged, /^t6 BAD /);
  assert.match((await c.command('STATUS INBOX (MESSAGES) x')).tagged, /^t7 BAD /);
  assert.match((await c.command('STATUS INBOX ((MESSAGES))')).tagged, /^t8 BAD /);
  await c.close();
});

test('STATUS: RECENT is counted until a session selects the mailbox', async () => {
  const login = await freshUser();
  const a = await connect(login);
  const b = await connect(login);
  ok(await a.append('Sent', message(1)));
  assert.deepEqual(ok(await b.command('STATUS Sent (RECENT)')).untagged, ['* STATUS Sent (RECENT 1)']);
  ok(await a.command('SELECT Sent'));
  assert.deepEqual(ok(await b.command('STATUS Sent (RECENT)')).untagged, ['* STATUS Sent (RECENT 0)']);
  ok(await a.command('EXAMINE Trash'));
  ok(await b.append('Trash', message(2)));
  // EXAMINE does not claim \Recent (RFC 3501 §6.3.2: it is read-only).
  ok(await a.command('EXAMINE Trash'));
  assert.deepEqual(ok(await b.command('STATUS Trash (RECENT)')).untagged, ['* STATUS Trash (RECENT 1)']);
  await a.close();
  await b.close();
});

test('STATUS: counts follow APPEND, STORE and EXPUNGE made by another connection', async () => {
  const login = await freshUser();
  const a = await connect(login);
  const b = await connect(login);
  await setup(a, 'CREATE Box');
  ok(await a.append('Box', message(1)));
  ok(await a.append('Box', message(2)));
  ok(await a.append('Box', message(3)));
  const sz = (n: number) => message(n).length;
  const q = 'STATUS Box (MESSAGES UIDNEXT UNSEEN DELETED SIZE)';
  assert.deepEqual(ok(await b.command(q)).untagged, [`* STATUS Box (MESSAGES 3 UIDNEXT 4 UNSEEN 3 DELETED 0 SIZE ${sz(1) + sz(2) + sz(3)})`]);
  ok(await a.command('SELECT Box'));
  ok(await a.command('STORE 1:2 +FLAGS.SILENT (\\Seen)'));
  ok(await a.command('STORE 2:3 +FLAGS.SILENT (\\Deleted)'));
  assert.deepEqual(ok(await b.command(q)).untagged, [`* STATUS Box (MESSAGES 3 UIDNEXT 4 UNSEEN 1 DELETED 2 SIZE ${sz(1) + sz(2) + sz(3)})`]);
  ok(await a.command('EXPUNGE'));
  assert.deepEqual(ok(await b.command(q)).untagged, [`* STATUS Box (MESSAGES 1 UIDNEXT 4 UNSEEN 0 DELETED 0 SIZE ${sz(1)})`]);
  ok(await a.command('STORE 1 -FLAGS.SILENT (\\Seen)'));
  ok(await a.append('Box', message(4)));
  assert.deepEqual(ok(await b.command(q)).untagged, [`* STATUS Box (MESSAGES 2 UIDNEXT 5 UNSEEN 2 DELETED 0 SIZE ${sz(1) + sz(4)})`]);
  // STATUS of the mailbox b itself has selected is allowed (RFC 9051 §6.3.11 only discourages it).
  ok(await b.command('SELECT Box'));
  assert.deepEqual(ok(await b.command('STATUS Box (MESSAGES)')).untagged, ['* STATUS Box (MESSAGES 2)']);
  await a.close();
  await b.close();
});

test('STATUS and LIST names under IMAP4rev2 are UTF-8', async () => {
  const c = await connect();
  await setup(c, 'ENABLE IMAP4rev2', 'CREATE "Entwürfe/Alt"');
  assert.deepEqual(ok(await c.command('STATUS "Entwürfe/Alt" (MESSAGES)')).untagged, ['* STATUS "Entwürfe/Alt" (MESSAGES 0)']);
  assert.deepEqual(await list(c, '"" "Entw%" RETURN (STATUS (MESSAGES))'), [
    '* LIST (\\HasChildren) "/" "Entwürfe"',
    '* STATUS "Entwürfe" (MESSAGES 0)',
  ]);
  // Under IMAP4rev2 a pattern is UTF-8, so "&" is literal.
  assert.deepEqual(await list(c, '"" "Entw&APw-*"'), []);
  await c.close();
});

// ---------------------------------------------------------------- hostile patterns (issue 10 item 1)

test('LIST/LSUB with backtracking-prone patterns answer at once; a second connection is not stalled', { timeout: 20_000 }, async () => {
  const c = await connect();
  const other = await connect();
  const long = 'abcdefghij'.repeat(3); // 30 characters: the old RegExp took 8 s for "%*%*%*%*%*x" here
  await setup(c, `CREATE ${long}`, `CREATE ${long}/${long}`, `SUBSCRIBE ${long}`);
  const t0 = Date.now();
  const pending = c.command(`LIST "" "${'%*'.repeat(40)}q"`);
  ok(await other.command('NOOP')); // answered while the hostile LIST runs (or after it, within ms)
  assert.deepEqual((ok(await pending)).untagged, []);
  assert.deepEqual(await list(c, `"" "${'%*'.repeat(40)}j"`), [`* LIST (\\HasChildren) "/" ${long}`, `* LIST (\\HasNoChildren) "/" ${long}/${long}`]);
  assert.deepEqual(ok(await c.command(`LSUB "" "${'%*'.repeat(40)}q"`)).untagged, []);
  assert.deepEqual(ok(await c.command(`LSUB "" "${'%'.repeat(40)}j"`)).untagged, [`* LSUB () "/" ${long}`]);
  assert.ok(Date.now() - t0 < 5_000, `took ${Date.now() - t0} ms`);
  await c.close();
  await other.close();
});

test('LIST: an over-long pattern matches nothing or gets NO [LIMIT]; regex syntax is literal', async () => {
  const c = await connect();
  // More literal characters than any name can have: no match (Dovecot answers OK too).
  assert.deepEqual(await list(c, `"" "${'a'.repeat(5000)}"`), []);
  // Long only through its wildcards: refused with a response code, not parsed into a huge automaton.
  const r = await c.command(`LIST "" "${'%a'.repeat(600)}"`);
  assert.match(r.tagged, /^\S+ NO \[LIMIT\] /);
  await setup(c, 'CREATE "a(b)+c"', 'CREATE "x[y]"');
  assert.deepEqual(await list(c, '"" "a(b)+%"'), ['* LIST (\\HasNoChildren) "/" "a(b)+c"']);
  assert.deepEqual(await list(c, '"" "x[y]"'), ['* LIST (\\HasNoChildren) "/" x[y]']);
  assert.deepEqual(await list(c, '"" "x[%"'), ['* LIST (\\HasNoChildren) "/" x[y]']);
  await c.close();
});
