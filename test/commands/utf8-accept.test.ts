// UTF8=ACCEPT (RFC 6855) over real sockets: ENABLE, UTF-8 quoted strings and
// mailbox names, APPEND UTF8 (~{n}), SEARCH without CHARSET, and the RFC 6857 downgrade of
// ENVELOPE / BODYSTRUCTURE that such sessions see (a second session each time).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient } from '../helpers/imap.js';
import { decodeEncodedWords } from '../../src/mime/index.js';

let ts: TestServer;
before(async () => {
  ts = await startTestServer({ users: [['alice', 'secret-a'], ['carol', 'secret-c'], ['dave', 'secret-d']] });
});
after(async () => {
  await ts.stop();
});

const login = (user = 'alice') => RawClient.connect(ts.port, { login: [user, `secret-${user[0]}`] });

async function enabled(user = 'alice'): Promise<RawClient> {
  const c = await login(user);
  const r = await c.command('ENABLE UTF8=ACCEPT');
  assert.match(r.tagged, / OK /);
  return c;
}

/** APPEND mailbox UTF8 (~{n+}) with LITERAL+. */
function appendUtf8(c: RawClient, mailbox: string, msg: Buffer, extra = ''): ReturnType<RawClient['command']> {
  return c.command(Buffer.concat([Buffer.from(`APPEND ${mailbox} ${extra}UTF8 (~{${msg.length}+}\r\n`, 'utf8'), msg, Buffer.from(')')]));
}

const UTF8_MSG = Buffer.from(
  [
    'From: Jörg Müller <jörg@münchen.example>',
    'To: "Ünal" <unal@example.org>, 山田 <yamada@例え.jp>',
    'Subject: Grüße aus München',
    'Message-ID: <utf8.1@example.org>',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
    '',
    'Grüße!',
    '',
  ].join('\r\n'),
  'utf8',
);

test('CAPABILITY lists UTF8=ACCEPT after login; ENABLE UTF8=ACCEPT answers ENABLED once', async () => {
  const c = await login();
  const cap = await c.command('CAPABILITY');
  assert.match(cap.untagged[0]!, / UTF8=ACCEPT( |$)/);
  assert.doesNotMatch(cap.untagged[0]!, /UTF8=ONLY/);
  const r = await c.command('ENABLE UTF8=ACCEPT');
  assert.deepEqual(r.untagged, ['* ENABLED UTF8=ACCEPT']);
  assert.deepEqual((await c.command('ENABLE UTF8=ACCEPT')).untagged, ['* ENABLED']);
  // RFC 6855 §3: valid only in the authenticated state.
  assert.match((await c.command('SELECT INBOX')).tagged, / OK /);
  assert.match((await c.command('ENABLE UTF8=ACCEPT')).tagged, / BAD /);
  await c.close();
});

test('after ENABLE: UTF-8 quoted mailbox names in CREATE / LIST / STATUS / SELECT; a legacy session sees modified UTF-7', async () => {
  const legacy = await login('carol');
  // Before ENABLE, 8-bit in a quoted name is not modified UTF-7: NO (as before, and as Dovecot).
  assert.match((await legacy.command('CREATE "Entwürfe"')).tagged, /^t\d+ NO /);
  const c = await enabled('carol');
  assert.match((await c.command('CREATE "Entwürfe/Größe"')).tagged, / OK /);
  const list = await c.command('LIST "" "Entw*"');
  assert.deepEqual(list.untagged.filter((l) => l.startsWith('* LIST')).sort(), ['* LIST (\\HasChildren) "/" "Entwürfe"', '* LIST (\\HasNoChildren) "/" "Entwürfe/Größe"']);
  assert.deepEqual((await c.command('LIST "" "Entwürfe/%"')).untagged, ['* LIST (\\HasNoChildren) "/" "Entwürfe/Größe"']);
  assert.deepEqual((await c.command('LIST "Entwürfe/" "Gr*"')).untagged, ['* LIST (\\HasNoChildren) "/" "Entwürfe/Größe"']);
  const st = await c.command('STATUS "Entwürfe/Größe" (MESSAGES UIDNEXT)');
  assert.match(st.untagged[0]!, /^\* STATUS "Entwürfe\/Größe" \(MESSAGES 0 UIDNEXT 1\)$/);
  // The legacy session: the same mailboxes in modified UTF-7, and it can use that form.
  const l2 = await legacy.command('LIST "" "Entw*"');
  assert.deepEqual(l2.untagged.filter((l) => l.startsWith('* LIST')).sort(), ['* LIST (\\HasChildren) "/" Entw&APw-rfe', '* LIST (\\HasNoChildren) "/" Entw&APw-rfe/Gr&APYA3w-e']);
  assert.match((await legacy.command('SELECT Entw&APw-rfe/Gr&APYA3w-e')).tagged, / OK /);
  // APPEND into the UTF-8 name from the enabled session; the legacy session, selected there, sees it.
  assert.match((await appendUtf8(c, '"Entwürfe/Größe"', UTF8_MSG)).tagged, / OK \[APPENDUID \d+ 1\]/);
  const noop = await legacy.command('NOOP');
  assert.ok(noop.untagged.includes('* 1 EXISTS'), noop.raw);
  const sel = await c.command('SELECT "Entwürfe/Größe"');
  assert.match(sel.tagged, / OK \[READ-WRITE\]/);
  assert.ok(sel.untagged.includes('* 1 EXISTS'));
  // With ENABLE, mailbox names are UTF-8: "&" is an ordinary character, not modified UTF-7.
  assert.match((await c.command('CREATE "R&D"')).tagged, / OK /);
  assert.ok((await legacy.command('LIST "" "R*"')).untagged.includes('* LIST (\\HasNoChildren) "/" R&-D'));
  await c.close();
  await legacy.close();
});

test('after ENABLE: quoted strings that are not UTF-8 get BAD (RFC 6855 §3); SEARCH with CHARSET gets BAD', async () => {
  const c = await enabled();
  const bad = Buffer.concat([Buffer.from('CREATE "bad'), Buffer.from([0xc3, 0x28]), Buffer.from('"')]);
  assert.match((await c.command(bad)).tagged, /^t\d+ BAD /);
  const trunc = Buffer.concat([Buffer.from('STATUS "x'), Buffer.from([0xe2, 0x82]), Buffer.from('" (MESSAGES)')]);
  assert.match((await c.command(trunc)).tagged, /^t\d+ BAD /);
  assert.match((await c.command('SELECT INBOX')).tagged, / OK /);
  assert.match((await c.command('SEARCH CHARSET UTF-8 ALL')).tagged, /^t\d+ BAD .*CHARSET/);
  assert.match((await c.command('UID SEARCH CHARSET US-ASCII SUBJECT x')).tagged, /^t\d+ BAD /);
  assert.match((await c.command('SEARCH ALL')).tagged, / OK /);
  // A session that did not enable it keeps CHARSET (RFC 9051 §6.4.4).
  const legacy = await login();
  await legacy.command('SELECT INBOX');
  assert.match((await legacy.command('SEARCH CHARSET UTF-8 ALL')).tagged, / OK /);
  await c.close();
  await legacy.close();
});

test('APPEND UTF8 (~{n}): stored exactly, served as UTF-8 to the enabled session, found by SEARCH without CHARSET', async () => {
  const c = await enabled('dave');
  const r = await appendUtf8(c, 'INBOX', UTF8_MSG, '(\\Seen) "03-Dec-2026 10:00:00 +0530" ');
  assert.match(r.tagged, / OK \[APPENDUID \d+ 1\]/);
  // Synchronizing literal8 inside the UTF8 list.
  c.write(Buffer.from(`t90 APPEND INBOX UTF8 (~{${UTF8_MSG.length}}\r\n`));
  assert.match(await c.readLine(), /^\+ /);
  c.write(Buffer.concat([UTF8_MSG, Buffer.from(')\r\n')]));
  assert.match((await c.collect('t90')).tagged, / OK \[APPENDUID \d+ 2\]/);
  // Malformed forms.
  assert.match((await c.command(Buffer.concat([Buffer.from(`APPEND INBOX UTF8 {${UTF8_MSG.length}+}\r\n`), UTF8_MSG]))).tagged, / BAD /);
  assert.match((await c.command(Buffer.concat([Buffer.from(`APPEND INBOX UTF8 ({${UTF8_MSG.length}+}\r\n`), UTF8_MSG, Buffer.from(')')]))).tagged, / BAD /);
  assert.match((await c.command('SELECT INBOX')).tagged, / OK /);
  const f = await c.command('FETCH 1 (BODY.PEEK[] INTERNALDATE ENVELOPE)');
  const line = f.untagged.join('\r\n');
  assert.ok(line.includes(UTF8_MSG.toString('utf8')), 'BODY[] is the appended bytes');
  assert.match(line, /INTERNALDATE " 3-Dec-2026 10:00:00 \+0530"/);
  assert.ok(line.includes('Grüße aus München') && line.includes('Jörg Müller') && line.includes('münchen.example'), line);
  // RFC 6855 §3: no CHARSET, the strings are UTF-8 (quoted and literal).
  assert.deepEqual((await c.command('SEARCH SUBJECT "grüße"')).untagged, ['* SEARCH 1 2']);
  assert.deepEqual((await c.command('SEARCH FROM "jörg"')).untagged, ['* SEARCH 1 2']);
  assert.deepEqual((await c.command('SEARCH TO "山田"')).untagged, ['* SEARCH 1 2']);
  assert.deepEqual((await c.command('SEARCH BODY "Grüße!"')).untagged, ['* SEARCH 1 2']);
  assert.deepEqual((await c.command('SEARCH SUBJECT "grüsse"')).untagged, ['* SEARCH']);
  // A legacy session finds them with CHARSET UTF-8 and a literal.
  const legacy = await login('dave');
  await legacy.command('SELECT INBOX');
  const word = Buffer.from('Grüße', 'utf8');
  assert.deepEqual((await legacy.command(Buffer.concat([Buffer.from(`SEARCH CHARSET UTF-8 SUBJECT {${word.length}+}\r\n`), word]))).untagged, ['* SEARCH 1 2']);
  await c.close();
  await legacy.close();
});

test('a session that did not enable UTF8=ACCEPT: UTF8 data gets BAD; plain 8-bit header APPEND is still taken (documented deviation)', async () => {
  const legacy = await login();
  assert.match((await appendUtf8(legacy, 'INBOX', UTF8_MSG)).tagged, /^t\d+ BAD .*UTF8=ACCEPT/);
  // RFC 6855 §4 says NO here; Quire keeps taking legacy clients' 8-bit mail (src/commands/utf8.ts, docs/rfc.md).
  assert.match((await legacy.append('INBOX', UTF8_MSG)).tagged, / OK /);
  const rev2 = await login();
  assert.match((await rev2.command('ENABLE IMAP4rev2')).tagged, / OK /);
  assert.match((await rev2.append('INBOX', UTF8_MSG)).tagged, / OK /);
  // The UTF8 extension is UTF8=ACCEPT's, not IMAP4rev2's.
  assert.match((await appendUtf8(rev2, 'INBOX', UTF8_MSG)).tagged, / BAD /);
  await legacy.close();
  await rev2.close();
});

const GLOBAL_MSG = Buffer.from(
  [
    'From: Sender <sender@example.com>',
    'To: ñandú@例え.jp',
    'Subject: Fwd: Grüße',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="b"',
    '',
    '--b',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Description: Größe',
    '',
    'see attached',
    '--b',
    'Content-Type: message/global',
    '',
    'From: 田中 <tanaka@例え.jp>',
    'Subject: こんにちは',
    '',
    'body',
    '--b--',
    '',
  ].join('\r\n'),
  'utf8',
);

test('RFC 6857 downgrade: a legacy session gets 7-bit ENVELOPE and BODYSTRUCTURE (message/global too); an enabled one UTF-8', async () => {
  const c = await enabled('carol');
  assert.match((await c.command('CREATE global')).tagged, / OK /);
  assert.match((await appendUtf8(c, 'global', GLOBAL_MSG)).tagged, / OK /);
  assert.match((await appendUtf8(c, 'global', UTF8_MSG)).tagged, / OK /);
  await c.command('SELECT global');
  const legacy = await login('carol');
  await legacy.command('SELECT global');

  const env1 = (await legacy.command('FETCH 2 ENVELOPE')).untagged[0]!;
  assert.ok(!/[^\x00-\x7f]/.test(env1), `7-bit: ${env1}`);
  // Subject: the non-ASCII run encoded, "aus" and the rest decode back to the original.
  const subj = /ENVELOPE \((?:NIL|"[^"]*") "([^"]*)"/.exec(env1)![1]!;
  assert.equal(decodeEncodedWords(subj), 'Grüße aus München');
  // Local part "jörg" cannot be 7-bit: the address is an empty group named after it.
  const groups = [...env1.matchAll(/\(NIL NIL "(=\?UTF-8\?B\?[^"]+)" NIL\)\(NIL NIL NIL NIL\)/g)].map((m) => decodeEncodedWords(m[1]!));
  // (From, and Sender and Reply-To, which default to From.)
  assert.deepEqual(groups, Array(3).fill('Jörg Müller <jörg@münchen.example>'));
  // To: "Ünal" keeps its address with an encoded name; 山田 <yamada@例え.jp> keeps the local part, A-label domain.
  assert.match(env1, /\("=\?UTF-8\?B\?w5xuYWw=\?=" NIL "unal" "example.org"\)/);
  assert.match(env1, /NIL "yamada" "xn--r8jz45g.jp"\)/);

  const env2 = (await c.command('FETCH 2 ENVELOPE')).untagged.join('\r\n');
  assert.ok(env2.includes('Grüße aus München') && env2.includes('jörg') && env2.includes('例え.jp'), env2);

  const bs = (await legacy.command('FETCH 1 BODYSTRUCTURE')).untagged[0]!;
  assert.ok(!/[^\x00-\x7f]/.test(bs), `7-bit: ${bs}`);
  assert.match(bs, /"message" "global"/);
  const enc = [...bs.matchAll(/"(=\?UTF-8\?B\?[^"]+)"/g)].map((m) => decodeEncodedWords(m[1]!));
  assert.ok(enc.includes('Größe'), `Content-Description encoded: ${enc}`);
  assert.ok(enc.includes('こんにちは') && enc.includes('田中'), `embedded envelope encoded: ${enc}`);
  const bsUtf8 = (await c.command('FETCH 1 BODYSTRUCTURE')).untagged.join('\r\n');
  assert.ok(bsUtf8.includes('こんにちは') && bsUtf8.includes('Größe'), bsUtf8);
  // BODY[] is the stored bytes for both (no surrogate message, RFC 6855 §7).
  const raw = (await legacy.command('FETCH 1 BODY.PEEK[]')).untagged.join('\r\n');
  assert.ok(raw.includes(GLOBAL_MSG.toString('utf8')));
  // A 7-bit message is sent the same way to both.
  assert.match((await c.append('global', 'Subject: plain\r\nFrom: a@b.example\r\n\r\nx\r\n')).tagged, / OK /);
  await legacy.command('NOOP');
  const a = (await legacy.command('FETCH 3 (ENVELOPE BODYSTRUCTURE)')).untagged[0];
  await c.command('NOOP');
  const b = (await c.command('FETCH 3 (ENVELOPE BODYSTRUCTURE)')).untagged[0];
  assert.equal(a, b);
  await c.close();
  await legacy.close();
});

test("Python imaplib's framing (UTF8 ( inside a {n} literal) is taken off in a UTF8=ACCEPT session only", async () => {
  const c = await enabled('dave');
  await c.command('CREATE framing');
  const framed = Buffer.concat([Buffer.from('UTF8 ('), UTF8_MSG, Buffer.from(')')]);
  assert.match((await c.append('framing', framed)).tagged, / OK /);
  const legacy = await login('dave');
  assert.match((await legacy.append('framing', framed)).tagged, / OK /);
  await c.command('SELECT framing');
  const sizes = (await c.command('FETCH 1:2 RFC822.SIZE')).untagged;
  assert.deepEqual(sizes, [`* 1 FETCH (RFC822.SIZE ${UTF8_MSG.length})`, `* 2 FETCH (RFC822.SIZE ${framed.length})`]);
  await c.close();
  await legacy.close();
});


test('with IMAP4rev2: both can be enabled (RFC 9051 §6.3.1); rev2 alone gets UTF-8 ENVELOPE and keeps CHARSET', async () => {
  const both = await login('dave');
  assert.deepEqual((await both.command('ENABLE IMAP4rev2 UTF8=ACCEPT')).untagged, ['* ENABLED IMAP4rev2 UTF8=ACCEPT']);
  await both.command('SELECT INBOX');
  assert.match((await both.command('SEARCH CHARSET UTF-8 ALL')).tagged, / BAD /);
  assert.match((await both.command('SEARCH SUBJECT "grüße"')).untagged[0]!, /^\* ESEARCH .*ALL 1:2/);
  const rev2 = await login('dave');
  await rev2.command('ENABLE IMAP4rev2');
  await rev2.command('SELECT INBOX');
  assert.match((await rev2.command('SEARCH CHARSET UTF-8 SUBJECT "grüße"')).untagged[0]!, /^\* ESEARCH .*ALL 1:2/);
  const env = (await rev2.command('FETCH 1 ENVELOPE')).untagged.join('\r\n');
  assert.ok(env.includes('Grüße aus München') && env.includes('münchen.example'), env);
  await both.close();
  await rev2.close();
});
