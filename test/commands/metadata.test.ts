// METADATA / METADATA-SERVER (RFC 5464) over real sockets: set and get with
// MAXSIZE and DEPTH, limits, entry-name syntax, /private/specialuse tied to
// the mailbox's special use (RFC 6154 §4), RENAME and DELETE, a second
// session reading what the first wrote; and the same script against Dovecot.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient } from '../helpers/imap.js';
import { MAX_METADATA_PER_MAILBOX, MAX_METADATA_VALUE } from '../../src/commands/metadata.js';

let srv: TestServer;
const login = ['alice', 'secret-a'] as [string, string];
before(async () => { srv = await startTestServer(); });
after(async () => { await srv.stop(); });

let n = 0;
const fresh = (p: string) => `${p}${++n}`;

test('SETMETADATA then GETMETADATA: private and shared, server and mailbox, NIL removes; a second session sees them', async () => {
  const c = await RawClient.connect(srv.port, { login });
  const box = fresh('Md');
  await c.command(`CREATE ${box}`);
  assert.match((await c.command(`SETMETADATA ${box} (/private/comment "mine" /shared/comment "for all" /private/vendor/quire/x {5+}\r\nab\r\nc)`, 's1')).tagged, /^s1 OK /);
  assert.match((await c.command('SETMETADATA "" (/shared/comment "server note")', 's2')).tagged, /^s2 OK /);
  const w = await RawClient.connect(srv.port, { login });
  assert.deepEqual((await w.command(`GETMETADATA ${box} (/shared/comment /private/comment /private/missing)`)).untagged, [
    `* METADATA ${box} (/private/comment "mine" /private/missing NIL /shared/comment "for all")`,
  ]);
  assert.deepEqual((await w.command('GETMETADATA "" /shared/comment')).untagged, ['* METADATA "" (/shared/comment "server note")']);
  // Entry names are case-insensitive.
  assert.deepEqual((await w.command(`GETMETADATA ${box} /PRIVATE/Comment`)).untagged, [`* METADATA ${box} (/private/comment "mine")`]);
  // A multi-line value comes back as a literal, byte for byte.
  assert.deepEqual((await w.command(`GETMETADATA ${box} /private/vendor/quire/x`)).untagged, [`* METADATA ${box} (/private/vendor/quire/x {5}\r\nab\r\nc)`]);
  // Binary values (RFC 5464 §5: value = nstring / literal8) travel as literal8 both ways.
  assert.match((await c.command(Buffer.from(`SETMETADATA ${box} (/private/vendor/quire/bin ~{3+}\r\na\0b)`), 's5')).tagged, /^s5 OK /);
  assert.deepEqual((await w.command(`GETMETADATA ${box} /private/vendor/quire/bin`)).untagged, [`* METADATA ${box} (/private/vendor/quire/bin ~{3}\r\na\0b)`]);
  await c.command(`SETMETADATA ${box} (/private/comment NIL)`);
  assert.deepEqual((await w.command(`GETMETADATA ${box} /private/comment`)).untagged, [`* METADATA ${box} (/private/comment NIL)`]);
  assert.match((await c.command('SETMETADATA Nope (/private/comment "x")', 's3')).tagged, /^s3 NO \[NONEXISTENT\]/);
  assert.match((await c.command('GETMETADATA Nope /private/comment', 's4')).tagged, /^s4 NO \[NONEXISTENT\]/);
  const caps = (await c.command('CAPABILITY')).untagged[0]!;
  assert.match(caps, / METADATA /);
  assert.match(caps, / METADATA-SERVER( |$)/);
  await c.close();
  await w.close();
});

test('GETMETADATA DEPTH and MAXSIZE ([METADATA LONGENTRIES n])', async () => {
  const c = await RawClient.connect(srv.port, { login });
  const box = fresh('Dp');
  await c.command(`CREATE ${box}`);
  await c.command(`SETMETADATA ${box} (/private/a "1" /private/a/b "22" /private/a/b/c "333" /private/a_z "4" /shared/a "5")`);
  assert.deepEqual((await c.command(`GETMETADATA ${box} /private/a`)).untagged, [`* METADATA ${box} (/private/a "1")`]);
  assert.deepEqual((await c.command(`GETMETADATA (DEPTH 1) ${box} /private/a`)).untagged, [`* METADATA ${box} (/private/a "1" /private/a/b "22")`]);
  assert.deepEqual((await c.command(`GETMETADATA (DEPTH infinity) ${box} /private/a`)).untagged, [
    `* METADATA ${box} (/private/a "1" /private/a/b "22" /private/a/b/c "333")`,
  ]);
  assert.deepEqual((await c.command(`GETMETADATA (DEPTH infinity) ${box} /private`)).untagged, [
    `* METADATA ${box} (/private/a "1" /private/a/b "22" /private/a/b/c "333" /private/a_z "4")`,
  ]);
  const m = await c.command(`GETMETADATA (MAXSIZE 2 DEPTH infinity) ${box} /private/a`, 'm1');
  assert.deepEqual(m.untagged, [`* METADATA ${box} (/private/a "1" /private/a/b "22")`]);
  assert.match(m.tagged, /^m1 OK \[METADATA LONGENTRIES 3\] /);
  assert.match((await c.command(`GETMETADATA (DEPTH 2) ${box} /private/a`, 'm2')).tagged, /^m2 BAD /);
  assert.match((await c.command(`GETMETADATA (FOO 1) ${box} /private/a`, 'm3')).tagged, /^m3 BAD /);
  await c.close();
});

test('entry-name syntax is BAD; MAXSIZE and TOOMANY are NO and change nothing; /shared/admin is read-only', async () => {
  const c = await RawClient.connect(srv.port, { login });
  const box = fresh('Lim');
  await c.command(`CREATE ${box}`);
  for (const e of ['/private//x', '/private/x/', '/foo/x', '/private/a*b', '/private/a%b', 'private/x', '/private']) {
    assert.match((await c.command(`SETMETADATA ${box} ("${e}" "v")`, 'b1')).tagged, /^b1 BAD /, e);
  }
  assert.match((await c.command(`SETMETADATA ${box} (/private/x)`, 'b2')).tagged, /^b2 BAD /);
  const big = 'x'.repeat(MAX_METADATA_VALUE + 1);
  const r = await c.command(Buffer.from(`SETMETADATA ${box} (/private/small "kept?" /private/big {${big.length}+}\r\n${big})`), 'b3');
  assert.equal(r.tagged, `b3 NO [METADATA MAXSIZE ${MAX_METADATA_VALUE}] Value too large`);
  assert.deepEqual((await c.command(`GETMETADATA ${box} /private/small`)).untagged, [`* METADATA ${box} (/private/small NIL)`]);
  // Fill the mailbox to its limit, then one more fails as a whole.
  const pairs: string[] = [];
  for (let i = 0; i < MAX_METADATA_PER_MAILBOX; i++) pairs.push(`/private/vendor/quire/k${i} "v"`);
  assert.match((await c.command(`SETMETADATA ${box} (${pairs.join(' ')})`, 'b4')).tagged, /^b4 OK /);
  const over = await c.command(`SETMETADATA ${box} (/private/vendor/quire/k0 NIL /private/one "x" /private/two "y")`, 'b5');
  assert.equal(over.tagged, 'b5 NO [METADATA TOOMANY] Too many annotations');
  // Nothing of the failed command happened: k0 is still there.
  assert.deepEqual((await c.command(`GETMETADATA ${box} /private/vendor/quire/k0`)).untagged, [`* METADATA ${box} (/private/vendor/quire/k0 "v")`]);
  // Replacing an existing value needs no new room.
  assert.match((await c.command(`SETMETADATA ${box} (/private/vendor/quire/k0 "w")`, 'b6')).tagged, /^b6 OK /);
  assert.match((await c.command('SETMETADATA "" (/shared/admin "mailto:x@example.com")', 'b7')).tagged, /^b7 NO \[NOPERM\]/);
  assert.deepEqual((await c.command('GETMETADATA "" /shared/admin')).untagged, ['* METADATA "" (/shared/admin NIL)']);
  await c.close();
});

test('/private/specialuse is the mailbox\'s special use (RFC 6154 §4), validated; LIST shows a change', async () => {
  const c = await RawClient.connect(srv.port, { login });
  const box = fresh('Su');
  await c.command(`CREATE ${box}`);
  assert.deepEqual((await c.command(`GETMETADATA ${box} /private/specialuse`)).untagged, [`* METADATA ${box} (/private/specialuse NIL)`]);
  assert.deepEqual((await c.command('GETMETADATA Sent /private/specialuse')).untagged, ['* METADATA Sent (/private/specialuse "\\\\Sent")']);
  assert.match((await c.command(`SETMETADATA ${box} (/private/specialuse "\\\\Bogus")`, 'u1')).tagged, /^u1 NO \[USEATTR\]/);
  assert.match((await c.command(`SETMETADATA ${box} (/private/specialuse "\\\\Junk \\\\Trash")`, 'u2')).tagged, /^u2 NO \[USEATTR\]/);
  assert.match((await c.command(`SETMETADATA ${box} (/private/specialuse "\\\\Archive")`, 'u3')).tagged, /^u3 OK /);
  assert.deepEqual((await c.command(`LIST "" ${box}`)).untagged, [`* LIST (\\HasNoChildren \\Archive) "/" ${box}`]);
  assert.deepEqual((await c.command(`GETMETADATA ${box} /private/specialuse`)).untagged, [`* METADATA ${box} (/private/specialuse "\\\\Archive")`]);
  await c.command(`SETMETADATA ${box} (/private/specialuse NIL)`);
  assert.deepEqual((await c.command(`LIST "" ${box}`)).untagged, [`* LIST (\\HasNoChildren) "/" ${box}`]);
  await c.close();
});

test('annotations follow RENAME and vanish with DELETE (a new mailbox of that name has none)', async () => {
  const c = await RawClient.connect(srv.port, { login });
  const box = fresh('Rn');
  await c.command(`CREATE ${box}`);
  await c.command(`CREATE ${box}/kid`);
  await c.command(`SETMETADATA ${box} (/shared/comment "top")`);
  await c.command(`SETMETADATA ${box}/kid (/private/comment "kid")`);
  await c.command(`RENAME ${box} ${box}x`);
  assert.deepEqual((await c.command(`GETMETADATA ${box}x /shared/comment`)).untagged, [`* METADATA ${box}x (/shared/comment "top")`]);
  assert.deepEqual((await c.command(`GETMETADATA ${box}x/kid /private/comment`)).untagged, [`* METADATA ${box}x/kid (/private/comment "kid")`]);
  await c.command(`DELETE ${box}x/kid`);
  await c.command(`CREATE ${box}x/kid`);
  assert.deepEqual((await c.command(`GETMETADATA ${box}x/kid /private/comment`)).untagged, [`* METADATA ${box}x/kid (/private/comment NIL)`]);
  // Another user sees none of alice's annotations, server ones included.
  const b = await RawClient.connect(srv.port, { login: ['bob', 'secret-b'] });
  await c.command('SETMETADATA "" (/private/comment "alice only")');
  assert.deepEqual((await b.command('GETMETADATA "" /private/comment')).untagged, ['* METADATA "" (/private/comment NIL)']);
  await b.close();
  await c.close();
});

// The same script against the Dovecot peer and Quire (this branch's Dovecot user).
const DOVECOT_USER: [string, string] = ['testuser81', 'pass'];
const DOVECOT_PORT = Number(process.env.DOVECOT_PEER_PORT ?? 10143);

async function script(port: number, user: [string, string], box: string): Promise<string[]> {
  const c = await RawClient.connect(port, { login: user });
  const out: string[] = [];
  // Dovecot sends every value as a literal; compare the values, not the string form.
  // Entry order in a METADATA response carries no meaning (RFC 5464 §4.4): pairs are sorted.
  const norm = (l: string) => {
    const flat = l.replace(/\{(\d+)\}\r\n/g, (_, _n: string) => '').replace(/"([^"]*)"/g, '$1');
    const m = /^\* METADATA (\S+) \((.*)\)$/.exec(flat);
    if (!m) return flat;
    const words = m[2]!.split(' ');
    const pairs: string[] = [];
    for (let i = 0; i < words.length; i += 2) pairs.push(`${words[i]} ${words[i + 1]}`);
    return `* METADATA ${m[1]} (${pairs.sort().join(' ')})`;
  };
  const say = async (cmd: string) => {
    const r = await c.command(cmd);
    // Dovecot has no OBJECTID: CREATE's [MAILBOXID] is left out.
    const tagged = r.tagged.replace(/^\S+ /, '').replace(/ \[MAILBOXID \([^)]*\)\]/, '').replace(/\] .*$/, ']').replace(/^(OK|NO|BAD)(?! \[).*$/, '$1');
    out.push(`${cmd} => ${r.untagged.map(norm).join(' | ')} ${tagged}`);
  };
  try {
    await c.command(`DELETE ${box}x`);
    await c.command(`DELETE ${box}`);
    await say(`CREATE ${box}`);
    await say(`SETMETADATA ${box} (/private/comment "p" /shared/comment "s")`);
    await say(`GETMETADATA ${box} (/private/comment /shared/comment /private/none)`);
    await say(`SETMETADATA ${box} (/private/vendor/quire/a "1" /private/vendor/quire/a/b "22")`);
    await say(`GETMETADATA (DEPTH infinity) ${box} /private/vendor/quire`);
    await say(`GETMETADATA (MAXSIZE 1 DEPTH infinity) ${box} /private/vendor/quire`);
    await say(`SETMETADATA ${box} (/private//x "v")`);
    await say(`SETMETADATA ${box} (/other/x "v")`);
    await say(`GETMETADATA ${box} (DEPTH 1) /private`);
    await say(`SETMETADATA ${box} (/private/comment NIL)`);
    await say(`GETMETADATA ${box} /private/comment`);
    await say(`RENAME ${box} ${box}x`);
    await say(`GETMETADATA ${box}x /shared/comment`);
    await say(`DELETE ${box}x`);
    await say(`CREATE ${box}x`);
    await say(`GETMETADATA ${box}x /shared/comment`);
    await say('GETMETADATA "" /shared/admin');
    await say(`SETMETADATA NoSuch${box} (/private/comment "x")`);
    await c.command(`DELETE ${box}x`);
  } finally {
    await c.close();
  }
  return out;
}

test('the same METADATA session gives Dovecot\'s answers', async (t) => {
  let reachable = false;
  try {
    const d = await RawClient.connect(DOVECOT_PORT, { login: DOVECOT_USER });
    reachable = /METADATA/.test((await d.command('CAPABILITY')).untagged.join(' '));
    await d.close();
  } catch {
    reachable = false;
  }
  if (!reachable) {
    t.skip('the Dovecot peer is not reachable');
    return;
  }
  const box = `MdCmp${process.pid}`;
  const theirs = await script(DOVECOT_PORT, DOVECOT_USER, box);
  const ours = await script(srv.port, login, box);
  // Where Dovecot differs on purpose: it answers a missing mailbox with a bare NO (Quire: [NONEXISTENT]).
  const dovecotFixed = theirs.map((l) => (l.startsWith(`SETMETADATA NoSuch`) ? l.replace(/ NO$/, ' NO [NONEXISTENT]') : l));
  assert.deepEqual(ours, dovecotFixed);
});
