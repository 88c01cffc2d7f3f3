// Issue 15 extensions that had no comparison with the Dovecot peer yet, run
// as one script against both servers: STATUS=SIZE (RFC 8438) as messages
// come and go, LITERAL+ (RFC 7888) APPENDs (a non-synchronizing literal,
// several in one MULTIAPPEND, `{n-}` refused as not literal syntax), and
// CREATE with a USE list (RFC 6154 §3), whose verdict both give as OK;
// Dovecot 2.3 does not advertise CREATE-SPECIAL-USE and drops the use, so
// the LIST that shows it is checked against Quire alone (docs/rfc.md).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient } from '../helpers/imap.js';
import { DOVECOT_IMAP_PORT, peerAdvertises } from '../helpers/peer.js';

/** This branch's Dovecot user (not one another test file uses). */
const DOVECOT_USER: [string, string] = ['testuser86', 'pass'];
const login: [string, string] = ['alice', 'secret-a'];

let srv: TestServer;
let dovecot = false;
before(async () => {
  srv = await startTestServer();
  dovecot = await peerAdvertises(DOVECOT_USER, 'STATUS=SIZE');
});
after(async () => { await srv.stop(); });

const verdict = (tagged: string) => tagged.split(' ')[1]!;
const MSGS = ['Subject: a\r\n\r\nhello\r\n', `Subject: b\r\nFrom: x@example.com\r\n\r\n${'line of text\r\n'.repeat(40)}`, 'Subject: c\r\n\r\n\r\n'];

async function script(port: number, user: [string, string]): Promise<Record<string, string | string[]>> {
  const c = await RawClient.connect(port, { login: user });
  const out: Record<string, string | string[]> = {};
  const status = async () => (await c.command('STATUS xsz (MESSAGES SIZE UIDNEXT UNSEEN)')).untagged.map((l) => l.replace(/\((.*)\)$/, (_m, items: string) => {
    // Item order is the server's choice (RFC 9051 §7.2.4): compare them as a set.
    const parts = items.split(' ');
    const pairs: string[] = [];
    for (let i = 0; i < parts.length; i += 2) pairs.push(`${parts[i]} ${parts[i + 1]}`);
    return `(${pairs.sort().join(' ')})`;
  }));
  try {
    await c.command('DELETE xsz');
    await c.command('DELETE xsu');
    await c.command('CREATE xsz');
    out.empty = await status();
    // RFC 7888 §3: a non-synchronizing literal; then a MULTIAPPEND of two.
    out.plus = verdict((await c.append('xsz', MSGS[0]!)).tagged);
    const two = Buffer.concat([
      Buffer.from(`APPEND xsz {${MSGS[1]!.length}+}\r\n${MSGS[1]} {${MSGS[2]!.length}+}\r\n${MSGS[2]}`),
    ]);
    out.multi = verdict((await c.command(two)).tagged);
    out.three = await status();
    await c.command('SELECT xsz');
    await c.command('STORE 2 +FLAGS (\\Seen \\Deleted)');
    await c.command('EXPUNGE');
    await c.command('UNSELECT');
    out.expunged = await status();
    // `{n-}` without LITERAL- is no literal (RFC 7888 §4; neither server offers LITERAL-).
    out.minus = verdict((await c.command('APPEND xsz {5-}')).tagged);
    out.createUse = verdict((await c.command('CREATE xsu (USE (\\Archive))')).tagged);
    await c.command('DELETE xsu');
    await c.command('DELETE xsz');
  } finally {
    await c.close();
  }
  return out;
}

test('STATUS=SIZE, LITERAL+ and CREATE (USE) as Quire answers them', async () => {
  const r = await script(srv.port, login);
  const total = MSGS.reduce((n, m) => n + m.length, 0);
  assert.deepEqual(r.empty, ['* STATUS xsz (MESSAGES 0 SIZE 0 UIDNEXT 1 UNSEEN 0)']);
  assert.deepEqual(r.three, [`* STATUS xsz (MESSAGES 3 SIZE ${total} UIDNEXT 4 UNSEEN 3)`]);
  assert.deepEqual(r.expunged, [`* STATUS xsz (MESSAGES 2 SIZE ${total - MSGS[1]!.length} UIDNEXT 4 UNSEEN 2)`]);
  assert.deepEqual([r.plus, r.multi, r.minus, r.createUse], ['OK', 'OK', 'BAD', 'OK']);
  // RFC 6154 §3: the use is kept (Dovecot 2.3 drops it).
  const c = await RawClient.connect(srv.port, { login });
  await c.command('CREATE xsu2 (USE (\\Archive))');
  assert.deepEqual((await c.command('LIST "" xsu2 RETURN (SPECIAL-USE)')).untagged, ['* LIST (\\HasNoChildren \\Archive) "/" xsu2']);
  await c.command('DELETE xsu2');
  await c.close();
});

test('STATUS=SIZE, LITERAL+ and CREATE (USE) answer as Dovecot does', async (t) => {
  if (!dovecot) return t.skip('Dovecot peer not running');
  assert.deepEqual(await script(srv.port, login), await script(DOVECOT_IMAP_PORT, DOVECOT_USER));
});
