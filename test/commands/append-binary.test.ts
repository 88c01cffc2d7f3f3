// Issue 10 item 7: binary content appended with literal8 (RFC 3516) is never
// served with raw NULs in an ordinary literal (RFC 9051 §4.3): binary or
// NUL-carrying leaf parts are stored base64-encoded, as Dovecot answers
// (recorded against the peer: BODY[2] "eAB5/w==", CTE base64 in BODY[2.MIME]),
// while BINARY[n] returns the appended bytes exactly. Also through LMTP.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { ByteClient, literalOf } from '../helpers/bytes-client.js';
import { encodeBinaryParts, parseMessage } from '../../src/mime/index.js';
import { startTestLmtp, LmtpClient } from '../delivery/helpers.js';

let srv: TestServer;
before(async () => { srv = await startTestServer(); });
after(async () => { await srv.stop(); });
const login: [string, string] = ['alice', 'secret-a'];

const bin = (s: string) => Buffer.from(s, 'latin1');
const MULTI = Buffer.concat([
  bin('Subject: multi\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello kumquat\r\n'),
  bin('--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n'), Buffer.from([0x78, 0, 0x79, 0xff]),
  bin('\r\n--b\r\nContent-Type: text/plain\r\n\r\nnul in 7bit '), Buffer.from([0]), bin(' zephyr\r\n'),
  bin('--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nContent-Transfer-Encoding: BINARY\r\n\r\n'), Buffer.alloc(200, 0), bin('\r\n--b--\r\n'),
]);

/** Every literal of a FETCH response line (ordinary and literal8), in order, with its kind. */
function literals(line: Buffer): { eight: boolean; data: Buffer }[] {
  const out: { eight: boolean; data: Buffer }[] = [];
  const s = line.toString('latin1');
  const re = /(~?)\{(\d+)\}\r\n/g; // test-only RegExp over our own server's output
  for (let m = re.exec(s); m; m = re.exec(s)) {
    const start = m.index + m[0].length;
    out.push({ eight: m[1] === '~', data: line.subarray(start, start + Number(m[2])) });
    re.lastIndex = start + Number(m[2]);
  }
  return out;
}

test('APPEND literal8 with binary parts: BODY[], BODY[TEXT], BODY[n] have no NUL; BINARY[n] exact; sizes consistent; search works', async () => {
  const c = await ByteClient.connect(srv.port, login);
  await c.commandBytes('CREATE Bin');
  const r = await c.commandBytes(Buffer.concat([bin(`APPEND Bin ~{${MULTI.length}+}\r\n`), MULTI]));
  assert.match(r.tagged, /OK \[APPENDUID/);
  await c.commandBytes('SELECT Bin');
  const f = (await c.commandBytes('FETCH 1 (RFC822.SIZE BODY.PEEK[] BODY.PEEK[TEXT] BODY.PEEK[2] BODY.PEEK[3] BODY.PEEK[4] BODY.PEEK[2.MIME] BINARY.PEEK[2] BINARY.PEEK[3] BINARY.SIZE[2] BODYSTRUCTURE)')).untagged[0]!;
  const lits = literals(f);
  for (const l of lits.filter((x) => !x.eight)) assert.equal(l.data.indexOf(0), -1, `no NUL in an ordinary literal: ${l.data.toString('latin1').slice(0, 60)}`);
  const [whole, , part2, , part4, mime2, b2, b3] = lits;
  assert.equal(part2!.data.toString(), 'eAB5/w==');
  assert.match(mime2!.data.toString(), /^Content-Type: application\/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n$/);
  assert.ok(b2!.eight && b2!.data.equals(Buffer.from([0x78, 0, 0x79, 0xff])), 'BINARY[2] is the appended bytes');
  assert.ok(b3!.data.equals(Buffer.concat([bin('nul in 7bit '), Buffer.from([0]), bin(' zephyr')])), 'BINARY[3] too');
  assert.match(part4!.data.toString('latin1'), /^Subject: inner\r\nContent-Transfer-Encoding: base64\r\n\r\nAAAA/, 'the embedded message\'s binary body too');
  const text = f.toString('latin1');
  assert.match(text, new RegExp(`RFC822\\.SIZE ${whole!.data.length} `));
  assert.match(text, /BINARY\.SIZE\[2\] 4/);
  assert.match(text, /"application" "octet-stream" NIL NIL NIL "base64" 8 /);
  // The structure the server keeps is the stored bytes' structure.
  assert.equal(parseMessage(whole!.data).children!.length, 4);
  // Full-text search sees the decoded text part and the 7bit one.
  assert.match((await c.commandBytes('SEARCH BODY kumquat')).untagged[0]!.toString(), /^\* SEARCH 1$/);
  assert.match((await c.commandBytes('SEARCH BODY zephyr')).untagged[0]!.toString(), /^\* SEARCH 1$/);
  c.close();
});

test('encodeBinaryParts: nothing to do without NUL (binary parts without NUL are kept byte for byte); LF-only headers keep LF', () => {
  assert.equal(encodeBinaryParts(bin('Subject: x\r\nContent-Transfer-Encoding: 8bit\r\n\r\ncaf\xe9 binary word\r\n')), null);
  assert.equal(encodeBinaryParts(bin('Subject: x\r\nContent-Transfer-Encoding: binary\r\n\r\n\xff\r\x01 bare CR\r\n')), null);
  const lf = encodeBinaryParts(Buffer.concat([bin('Subject: x\nContent-Transfer-Encoding: binary\n\n'), Buffer.from([1, 0, 2])]))!;
  assert.equal(lf.toString('latin1'), 'Subject: x\nContent-Transfer-Encoding: base64\n\nAQAC\r\n');
  const noHeader = encodeBinaryParts(Buffer.concat([bin('Subject: y\r\n\r\n'), Buffer.from([0x61, 0, 0x62])]))!;
  assert.equal(noHeader.toString('latin1'), `Subject: y\r\nContent-Transfer-Encoding: base64\r\n\r\n${Buffer.from([0x61, 0, 0x62]).toString('base64')}\r\n`);
  const long = encodeBinaryParts(Buffer.concat([bin('Content-Transfer-Encoding: binary\r\n\r\n'), Buffer.alloc(300, 0)]))!;
  const lines = long.toString('latin1').split('\r\n\r\n')[1]!.split('\r\n');
  assert.ok(lines.every((l) => l.length <= 76), 'base64 lines of at most 76 characters (RFC 2045 §6.8)');
});

test('LMTP: a message with NULs is stored base64-encoded as well', async () => {
  const { lmtp, port } = await startTestLmtp(srv.store);
  try {
    const l = await LmtpClient.connect(port);
    await l.line();
    l.send('LHLO t\r\n');
    await l.reply();
    assert.match(await l.cmd('MAIL FROM:<s@x>'), /^250/);
    assert.match(await l.cmd('RCPT TO:<bob>'), /^250/);
    assert.match(await l.cmd('DATA'), /^354/);
    l.send(Buffer.concat([bin('Subject: lmtp-nul\r\n\r\nab'), Buffer.from([0]), bin('cd\r\n.\r\n')]));
    assert.match(await l.line(), /^250/);
    l.close();
    const c = await ByteClient.connect(srv.port, ['bob', 'secret-b']);
    await c.commandBytes('SELECT INBOX');
    const f = (await c.commandBytes('FETCH * (BODY.PEEK[] BINARY.PEEK[1])')).untagged[0]!;
    const [body, b1] = literals(f);
    assert.equal(body!.data.indexOf(0), -1);
    assert.ok(b1!.data.equals(Buffer.concat([bin('ab'), Buffer.from([0]), bin('cd\r\n')])), JSON.stringify(b1!.data.toString('latin1')));
    c.close();
  } finally {
    await lmtp.close();
  }
});
