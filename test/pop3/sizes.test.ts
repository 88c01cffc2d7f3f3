// Issue 17: POP3 sizes are exact for the CRLF form RETR sends (RFC 1939 §11:
// LIST, STAT, "+OK n octets"), whatever line ends the message was stored
// with; bodies stored before the store counted bare LFs are counted at the
// first login and the count kept; pipelined commands (RFC 2449 §6.6) answered
// together (corked) keep their order and never hold back a response the
// client needs before it can go on (STLS).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import Database from 'better-sqlite3';
import { provisionUser } from '../../src/cli/users.js';
import { Pop3Client, startPop3TestServer, type Pop3TestServer } from './helpers.js';

let srv: Pop3TestServer;
let n = 0;
before(async () => { srv = await startPop3TestServer(); });
after(async () => {
  await srv?.stop();
  assert.deepEqual(srv.pop3Errors, [], 'no unexpected POP3 errors');
});

async function user(bodies: Buffer[]): Promise<{ name: string; inbox: number }> {
  const name = `szuser${++n}`;
  const u = await provisionUser(srv.store, name, 'pw');
  const mb = (await srv.store.getMailbox(u.id, 'INBOX'))!;
  if (bodies.length) await srv.store.appendMessages(mb.id, bodies.map((data) => ({ data, flags: [] })));
  return { name, inbox: mb.id };
}

async function pop(name: string): Promise<Pop3Client> {
  const c = await Pop3Client.connect(srv.pop3Port);
  assert.match(await c.line(), /^\+OK /);
  assert.match(await c.login(name, 'pw'), /^\+OK /);
  return c;
}

/** The message as RETR sent it: stuffing undone, terminator removed (what RFC 1939 §11 sizes count). */
function unstuffed(raw: Buffer): Buffer {
  const lines = raw.toString('latin1').split('\r\n');
  lines.splice(-2);
  return Buffer.from(lines.map((l) => (l.startsWith('.') ? l.slice(1) : l)).join('\r\n') + '\r\n', 'latin1');
}

const bodies = [
  Buffer.from('From: a@example.com\nSubject: bare LF\n\nline one\n.dot line\nline three\n'),
  Buffer.from('From: a@example.com\r\nSubject: mixed\r\n\r\nCRLF line\r\nLF line\nCR alone\rstays\r\n'),
  Buffer.from('From: a@example.com\r\nSubject: plain\r\n\r\nall CRLF\r\n'),
];

/** LIST, STAT and RETR's octet counts against what RETR sends. */
async function checkSizes(c: Pop3Client): Promise<number[]> {
  const sent: number[] = [];
  for (let i = 1; i <= bodies.length; i++) {
    const status = await c.cmd(`RETR ${i}`);
    const got = unstuffed(await c.multilineRaw());
    assert.equal(status, `+OK ${got.length} octets`, `RETR ${i}: ${JSON.stringify(got.toString('latin1'))}`);
    sent.push(got.length);
  }
  assert.deepEqual((await c.cmdMulti('LIST')).lines, sent.map((s, i) => `${i + 1} ${s}`));
  assert.equal(await c.cmd('LIST 1'), `+OK 1 ${sent[0]}`);
  assert.equal(await c.cmd('STAT'), `+OK ${sent.length} ${sent.reduce((a, b) => a + b, 0)}`);
  return sent;
}

test('LIST, STAT and RETR count the CRLF form of messages stored with bare LFs', async () => {
  const u = await user(bodies);
  const c = await pop(u.name);
  const sent = await checkSizes(c);
  // Bare LFs became CRLF: the stored sizes are smaller.
  assert.equal(sent[0], bodies[0]!.length + 6);
  assert.equal(sent[1], bodies[1]!.length + 1);
  assert.equal(sent[2], bodies[2]!.length);
  assert.match(await c.cmd('QUIT'), /^\+OK/);
});

test('bodies stored before the bare-LF count are counted at the first login, and the count is kept', async () => {
  const u = await user(bodies);
  const db = new Database(path.join(srv.dataDir, 'quire.sqlite3'));
  try {
    const ids = db.prepare('SELECT blob_id FROM messages WHERE mailbox_id = ?').pluck().all(u.inbox) as number[];
    const forget = db.prepare('UPDATE blobs SET bare_lf = NULL WHERE id = ?');
    for (const id of ids) forget.run(id);
    const c = await pop(u.name);
    await checkSizes(c);
    assert.match(await c.cmd('QUIT'), /^\+OK/);
    const kept = ids.map((id) => db.prepare('SELECT bare_lf FROM blobs WHERE id = ?').pluck().get(id));
    assert.deepEqual(kept, [6, 1, 0]);
  } finally {
    db.close();
  }
});

test('pipelined RETRs, LIST and UIDL in one write are answered in order, byte for byte', async () => {
  const many = Array.from({ length: 40 }, (_, i) => Buffer.from(`From: a@example.com\r\nSubject: ${i}\r\n\r\n${'x'.repeat(100 + i * 997)}\r\n.${i}\r\n`));
  const u = await user(many);
  const c = await pop(u.name);
  let cmds = 'LIST\r\n';
  for (let i = 1; i <= many.length; i++) cmds += `RETR ${i}\r\nNOOP\r\n`;
  cmds += 'RETR 99\r\nUIDL 1\r\n';
  c.send(cmds);
  assert.match(await c.line(), /^\+OK /);
  assert.equal((await c.multiline()).length, many.length);
  for (let i = 1; i <= many.length; i++) {
    assert.equal(await c.line(), `+OK ${many[i - 1]!.length} octets`);
    assert.deepEqual(unstuffed(await c.multilineRaw()), many[i - 1]);
    assert.equal(await c.line(), '+OK');
  }
  assert.match(await c.line(), /^-ERR /);
  assert.match(await c.line(), /^\+OK 1 /);
  assert.match(await c.cmd('QUIT'), /^\+OK/);
});

test('STLS pipelined with the commands after it: its +OK is not held back, the handshake completes', async () => {
  const c = await Pop3Client.connect(srv.pop3Port);
  assert.match(await c.line(), /^\+OK /);
  // RFC 2595 §4: what follows STLS in the same write is discarded (it was sent in the clear).
  c.send('STLS\r\nCAPA\r\n');
  assert.match(await c.line(), /^\+OK/);
  c.socket.removeAllListeners('data');
  const tls = await import('node:tls');
  const secure = tls.connect({ socket: c.socket, rejectUnauthorized: false });
  await new Promise<void>((resolve, reject) => {
    secure.once('secureConnect', () => resolve());
    secure.once('error', reject);
  });
  secure.destroy();
});
