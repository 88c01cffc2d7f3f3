// URLAUTH (RFC 4467), URLAUTH=BINARY (RFC 5524) and URL-PARTIAL (RFC 5550)
// over real sockets: GENURLAUTH's accepted and refused forms, URLFETCH from
// other users' sessions under each access identifier (anonymous, authuser,
// user+, submit+ for a configured submission server), EXPIRE, RESETKEY of one
// mailbox and of all, a deleted mailbox's key, and the extended URLFETCH.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient } from '../helpers/imap.js';

let srv: TestServer;
const alice = ['alice', 'secret-a'] as [string, string];
const bob = ['bob', 'secret-b'] as [string, string];
const smtp = ['smtp', 'secret-s'] as [string, string];
before(async () => {
  srv = await startTestServer({
    users: [alice, bob, smtp],
    tweak: (o) => { o.urlauthSubmitters = ['smtp']; },
  });
});
after(async () => { await srv.stop(); });

const SOURCE =
  'From: a@example.com\r\nTo: b@example.com\r\nSubject: hi\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n' +
  '--XX\r\nContent-Type: text/plain\r\n\r\nhello\r\n--XX\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAECAw==\r\n--XX--\r\n';
const lit = (s: string) => `{${Buffer.byteLength(s)}+}\r\n${s}`;
const base = 'imap://alice@quire.test';

async function gen(c: RawClient, rump: string): Promise<string> {
  const r = await c.command(`GENURLAUTH "${rump}" INTERNAL`, 'g');
  assert.match(r.tagged, /^g OK /, `${rump}: ${r.tagged}`);
  assert.equal(r.untagged.length, 1);
  const m = /^\* GENURLAUTH (\S+)$/.exec(r.untagged[0]!);
  assert.ok(m, r.untagged[0]);
  const url = m[1]!.replace(/^"(.*)"$/, '$1');
  assert.ok(url.startsWith(`${rump}:internal:`), url);
  return url;
}

async function fetch1(c: RawClient, arg: string): Promise<string> {
  const r = await c.command(`URLFETCH ${arg}`, 'f');
  assert.match(r.tagged, /^f OK /);
  assert.equal(r.untagged.length, 1, r.untagged.join('\n'));
  return r.untagged[0]!;
}

test('GENURLAUTH signs the rump with the mailbox key (HMAC-SHA1, RFC 4467 §2.4.1); URLFETCH from other sessions per access identifier', async () => {
  const a = await RawClient.connect(srv.port, { login: alice });
  await a.command('CREATE Ua');
  const v = Number(/APPENDUID (\d+)/.exec((await a.command(`APPEND Ua ${lit(SOURCE)}`)).tagged)![1]);
  const anon = await gen(a, `${base}/Ua;UIDVALIDITY=${v}/;UID=1/;SECTION=1;urlauth=anonymous`);
  const key = (await srv.store.urlAuthKey(1, (await srv.store.getMailbox(1, 'Ua'))!.id, 'INTERNAL', false))!;
  const rump = anon.slice(0, anon.lastIndexOf(':internal:'));
  assert.equal(anon.slice(anon.lastIndexOf(':') + 1), createHmac('sha1', key).update(rump).digest('hex'));
  const auth = await gen(a, `${base}/Ua/;UID=1/;SECTION=2;urlauth=authuser`);
  const forBob = await gen(a, `${base}/Ua/;UID=1;urlauth=user+bob`);
  const submit = await gen(a, `${base}/Ua/;UID=1/;SECTION=1/;PARTIAL=1.3;urlauth=submit+alice`);

  const b = await RawClient.connect(srv.port, { login: bob });
  const s = await RawClient.connect(srv.port, { login: smtp });
  assert.equal(await fetch1(b, `"${anon}"`), `* URLFETCH ${anon} {5}\r\nhello`);
  assert.equal(await fetch1(b, `"${auth}"`), `* URLFETCH ${auth} {8}\r\nAAECAw==`);
  assert.equal(await fetch1(b, `"${forBob}"`), `* URLFETCH ${forBob} {${SOURCE.length}}\r\n${SOURCE}`);
  // user+bob is bob's only; submit+ needs a submission entity (RFC 4467 §3), which smtp is and bob is not.
  assert.equal(await fetch1(s, `"${forBob}"`), `* URLFETCH ${forBob} NIL`);
  assert.equal(await fetch1(b, `"${submit}"`), `* URLFETCH ${submit} NIL`);
  assert.equal(await fetch1(s, `"${submit}"`), `* URLFETCH ${submit} {3}\r\nell`);
  // Several URLs, one response each; a changed token or a rump edited after signing is NIL; the command stays OK.
  const tampered = anon.slice(0, -1) + (anon.endsWith('0') ? '1' : '0');
  const r = await b.command(`URLFETCH "${anon}" "${tampered}" "${anon.replace(';SECTION=1', ';SECTION=2')}" foo "${rump}"`, 'm');
  assert.match(r.tagged, /^m OK /);
  assert.deepEqual(r.untagged, [
    `* URLFETCH ${anon} {5}\r\nhello`,
    `* URLFETCH ${tampered} NIL`,
    `* URLFETCH ${anon.replace(';SECTION=1', ';SECTION=2')} NIL`,
    '* URLFETCH foo NIL',
    `* URLFETCH ${rump} NIL`,
  ]);
  // Upper-case token hex validates too (the token is hex, RFC 4467 §9 enc-urlauth).
  const upper = anon.slice(0, anon.lastIndexOf(':') + 1) + anon.slice(anon.lastIndexOf(':') + 1).toUpperCase();
  assert.equal(await fetch1(b, `"${upper}"`), `* URLFETCH ${upper} {5}\r\nhello`);
  // A part the message does not have: "" (RFC 4467 §7.4), NIL with BINARY or BODYPARTSTRUCTURE (as Dovecot answers).
  const none = await gen(a, `${base}/Ua/;UID=1/;SECTION=3;urlauth=anonymous`);
  assert.equal(await fetch1(b, `"${none}"`), `* URLFETCH ${none} {0}\r\n`);
  assert.equal(await fetch1(b, `("${none}" BINARY)`), `* URLFETCH ${none} NIL`);
  for (const c of [a, b, s]) await c.close();
});

test('GENURLAUTH refuses with BAD what RFC 4467 §6.3 requires; several pairs in one command', async () => {
  const a = await RawClient.connect(srv.port, { login: alice });
  await a.command('CREATE Ub');
  const v = Number(/APPENDUID (\d+)/.exec((await a.command(`APPEND Ub ${lit(SOURCE)}`)).tagged)![1]);
  const refused = [
    `"${base}/Ub/;UID=1/;SECTION=1" INTERNAL`, // no access identifier
    `"imap://quire.test/Ub/;UID=1;urlauth=anonymous" INTERNAL`, // no owner
    `"imap://bob@quire.test/Ub/;UID=1;urlauth=anonymous" INTERNAL`, // another user's key table
    `"${base}/Ub/;UID=1;urlauth=anonymous" XSAMPLE`,
    `"${base}/Ub/;UID=1;urlauth=anonymous:internal:0104904ff6b0ae01b82bf9707524019b55cb76f2b7" INTERNAL`,
    `"${base}/Ub/;UID=1;urlauth=user+" INTERNAL`,
    `"${base}/Ub/;UID=1;urlauth=fred" INTERNAL`,
    `"${base}/Ub/;UID=1;expire=2000-01-01T00:00:00Z;urlauth=anonymous" INTERNAL`,
    `"${base}/Nope/;UID=1;urlauth=anonymous" INTERNAL`,
    `"${base}/Ub;UIDVALIDITY=${v + 1}/;UID=1;urlauth=anonymous" INTERNAL`,
    `"${base}/Ub/;UID=9;urlauth=anonymous" INTERNAL`,
    `"${base}/Ub;urlauth=anonymous" INTERNAL`,
    `"/Ub/;UID=1;urlauth=anonymous" INTERNAL`,
    `"${base}/Ub/;UID=1;urlauth=anonymous"`,
    `"${base}/Ub/;UID=1;urlauth=anonymous" INTERNAL "${base}/Nope/;UID=1;urlauth=anonymous" INTERNAL`,
  ];
  for (const args of refused) assert.match((await a.command(`GENURLAUTH ${args}`, 'x')).tagged, /^x BAD /, args);
  const two = await a.command(`GENURLAUTH "${base}/Ub/;UID=1;urlauth=anonymous" INTERNAL "${base}/INBOX/;UID=1;urlauth=authuser" internal`, 'y');
  assert.match(two.tagged, /^y BAD /); // INBOX has no UID 1
  await a.command(`APPEND INBOX ${lit('Subject: x\r\n\r\ny\r\n')}`);
  const ok = await a.command(`GENURLAUTH "${base}/Ub/;UID=1;urlauth=anonymous" INTERNAL "${base}/inbox/;UID=1;urlauth=authuser" internal`, 'z');
  assert.match(ok.tagged, /^z OK /);
  assert.match(ok.untagged[0]!, /^\* GENURLAUTH \S+;urlauth=anonymous:internal:[0-9a-f]{40} \S+\/inbox\/;UID=1;urlauth=authuser:internal:[0-9a-f]{40}$/);
  await a.close();
});

test('RESETKEY: other sessions with the mailbox selected get an untagged OK [URLMECH INTERNAL] (RFC 4467 §6.3)', async () => {
  const a = await RawClient.connect(srv.port, { login: alice });
  for (const m of ['Uk1', 'Uk2']) await a.command(`CREATE ${m}`);
  const same = await RawClient.connect(srv.port, { login: alice });
  const other = await RawClient.connect(srv.port, { login: alice });
  const idler = await RawClient.connect(srv.port, { login: alice });
  const bobs = await RawClient.connect(srv.port, { login: bob });
  await same.command('SELECT Uk1');
  await other.command('SELECT Uk2');
  await idler.command('EXAMINE Uk1');
  await bobs.command('SELECT INBOX');
  idler.write('i1 IDLE\r\n');
  assert.match(await idler.readLine(), /^\+ /);
  // The resetting session has the code on its tagged OK, and no untagged copy of it.
  await a.command('SELECT Uk1');
  const r = await a.command('RESETKEY Uk1', 'k1');
  assert.match(r.tagged, /^k1 OK \[URLMECH INTERNAL\] /);
  assert.deepEqual(r.untagged, []);
  // IDLE hears it at once; the others at their next command.
  assert.match(await idler.readLine(), /^\* OK \[URLMECH INTERNAL\] /);
  idler.write('DONE\r\n');
  assert.equal(await idler.readLine(), 'i1 OK IDLE terminated');
  const n1 = await same.command('NOOP');
  assert.deepEqual(n1.untagged.filter((l) => /URLMECH/.test(l)).length, 1, n1.raw);
  assert.match(n1.untagged[0]!, /^\* OK \[URLMECH INTERNAL\] /);
  assert.deepEqual((await same.command('NOOP')).untagged, []); // told once
  assert.deepEqual((await other.command('NOOP')).untagged, []); // another mailbox
  assert.deepEqual((await bobs.command('NOOP')).untagged, []); // another user
  // RESETKEY without arguments removes every key: every session with a mailbox selected is told.
  assert.match((await a.command('RESETKEY', 'k2')).tagged, /^k2 OK /);
  for (const c of [same, other, idler]) assert.match((await c.command('NOOP')).untagged.join('\n'), /^\* OK \[URLMECH INTERNAL\] /);
  assert.deepEqual((await bobs.command('NOOP')).untagged, []);
  for (const c of [a, same, other, idler, bobs]) await c.close();
});

test('RESETKEY revokes one mailbox\'s URLs, RESETKEY alone all; a deleted and re-created mailbox has a new key', async () => {
  const a = await RawClient.connect(srv.port, { login: alice });
  for (const m of ['Uc', 'Ud']) {
    await a.command(`CREATE ${m}`);
    await a.command(`APPEND ${m} ${lit(SOURCE)}`);
  }
  const c1 = await gen(a, `${base}/Uc/;UID=1/;SECTION=1;urlauth=anonymous`);
  const d1 = await gen(a, `${base}/Ud/;UID=1/;SECTION=1;urlauth=anonymous`);
  const b = await RawClient.connect(srv.port, { login: bob });
  assert.match(await fetch1(b, `"${c1}"`), /\{5\}\r\nhello$/);
  // BASE.7.1.URLMECH: SELECT and EXAMINE say which mechanisms GENURLAUTH offers.
  assert.match((await a.command('SELECT Uc')).untagged.join('\n'), /^\* OK \[URLMECH INTERNAL\]/m);
  assert.match((await a.command('EXAMINE Ud')).untagged.join('\n'), /^\* OK \[URLMECH INTERNAL\]/m);
  await a.command('UNSELECT');
  const r = await a.command('RESETKEY Uc', 'k1');
  assert.match(r.tagged, /^k1 OK \[URLMECH INTERNAL\] /);
  assert.equal(await fetch1(b, `"${c1}"`), `* URLFETCH ${c1} NIL`);
  assert.match(await fetch1(b, `"${d1}"`), /\{5\}\r\nhello$/);
  // The new key signs new URLs; the same rump gets a different token.
  const c2 = await gen(a, `${base}/Uc/;UID=1/;SECTION=1;urlauth=anonymous`);
  assert.notEqual(c2, c1);
  assert.match(await fetch1(b, `"${c2}"`), /\{5\}\r\nhello$/);
  assert.match((await a.command('RESETKEY Uc INTERNAL', 'k2')).tagged, /^k2 OK \[URLMECH INTERNAL\] /);
  assert.match((await a.command('RESETKEY Uc XSAMPLE', 'k3')).tagged, /^k3 NO /);
  assert.match((await a.command('RESETKEY Nope', 'k4')).tagged, /^k4 NO \[NONEXISTENT\] /);
  const d2 = await gen(a, `${base}/Ud/;UID=1/;SECTION=1;urlauth=anonymous`);
  assert.equal(d2, d1); // the key is kept until reset
  assert.match((await a.command('RESETKEY', 'k5')).tagged, /^k5 OK /);
  assert.equal(await fetch1(b, `"${d1}"`), `* URLFETCH ${d1} NIL`);
  // DELETE drops the key with the mailbox: a new mailbox of the same name never validates the old URLs.
  const d3 = await gen(a, `${base}/Ud/;UID=1/;SECTION=1;urlauth=anonymous`);
  await a.command('DELETE Ud');
  assert.equal(await fetch1(b, `"${d3}"`), `* URLFETCH ${d3} NIL`);
  await a.command('CREATE Ud');
  await a.command(`APPEND Ud ${lit(SOURCE)}`);
  assert.equal(await fetch1(b, `"${d3}"`), `* URLFETCH ${d3} NIL`);
  await a.close();
  await b.close();
});

test('EXPIRE: valid until the given time, NIL after it', async () => {
  const a = await RawClient.connect(srv.port, { login: alice });
  await a.command('CREATE Ue');
  await a.command(`APPEND Ue ${lit(SOURCE)}`);
  const at = new Date(Date.now() + 1500).toISOString().replace(/\.\d+Z$/, 'Z');
  const u = await gen(a, `${base}/Ue/;UID=1/;SECTION=1;EXPIRE=${at};urlauth=authuser`);
  const b = await RawClient.connect(srv.port, { login: bob });
  assert.match(await fetch1(b, `"${u}"`), /\{5\}\r\nhello$/);
  await new Promise((r) => setTimeout(r, Date.parse(at) - Date.now() + 50));
  assert.equal(await fetch1(b, `"${u}"`), `* URLFETCH ${u} NIL`);
  await a.close();
  await b.close();
});

test('URLAUTH=BINARY (RFC 5524): BODY, BINARY, BODYPARTSTRUCTURE; PARTIAL counts decoded bytes for BINARY', async () => {
  const a = await RawClient.connect(srv.port, { login: alice });
  await a.command('CREATE Uf');
  await a.command(`APPEND Uf ${lit(SOURCE)}`);
  const p2 = await gen(a, `${base}/Uf/;UID=1/;SECTION=2;urlauth=anonymous`);
  const p1 = await gen(a, `${base}/Uf/;UID=1/;SECTION=1/;PARTIAL=1.3;urlauth=anonymous`);
  const pp = await gen(a, `${base}/Uf/;UID=1/;SECTION=2/;PARTIAL=1.2;urlauth=anonymous`);
  const b = await RawClient.connect(srv.port, { login: bob });
  assert.equal(await fetch1(b, `("${p2}" BINARY)`), `* URLFETCH ${p2} (BINARY ~{4}\r\n\0\x01\x02\x03)`);
  assert.equal(await fetch1(b, `("${pp}" BINARY)`), `* URLFETCH ${pp} (BINARY ~{2}\r\n\x01\x02)`); // not text: literal8 (as Dovecot)
  assert.equal(
    await fetch1(b, `("${p2}" BODYPARTSTRUCTURE)`),
    `* URLFETCH ${p2} (BODYPARTSTRUCTURE ("application" "octet-stream" NIL NIL NIL "base64" 8 NIL NIL NIL NIL))`,
  );
  assert.equal(
    await fetch1(b, `("${p2}" BODY BODYPARTSTRUCTURE)`),
    `* URLFETCH ${p2} (BODYPARTSTRUCTURE ("application" "octet-stream" NIL NIL NIL "base64" 8 NIL NIL NIL NIL) BODY {8}\r\nAAECAw==)`,
  );
  assert.equal(
    await fetch1(b, `("${p1}" BINARY BODYPARTSTRUCTURE)`),
    `* URLFETCH ${p1} (BODYPARTSTRUCTURE ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 5 0 NIL NIL NIL NIL) BINARY {3}\r\nell)`,
  );
  assert.equal(await fetch1(b, `("${p2}")`), `* URLFETCH ${p2} (BODY {8}\r\nAAECAw==)`);
  assert.equal(await fetch1(b, `("${p2}x" BINARY)`), `* URLFETCH ${p2}x NIL`);
  for (const bad of [`("${p2}" FOO)`, `("${p2}" BINARY BODY)`, '', '()']) {
    assert.match((await b.command(`URLFETCH ${bad}`, 'e')).tagged, /^e BAD /, bad);
  }
  const caps = (await b.command('CAPABILITY')).untagged[0]!;
  for (const cap of ['URLAUTH', 'URLAUTH=BINARY', 'URL-PARTIAL']) assert.ok(caps.split(' ').includes(cap), cap);
  await a.close();
  await b.close();
});

test('URLAUTH commands need authentication', async () => {
  const c = await RawClient.connect(srv.port);
  for (const cmd of ['GENURLAUTH "x" INTERNAL', 'URLFETCH "x"', 'RESETKEY']) {
    assert.match((await c.command(cmd, 'n')).tagged, /^n BAD /, cmd);
  }
  await c.close();
});
