// APPEND over a real socket: flags, internal date, APPENDUID, TRYCREATE,
// literal8, MULTIAPPEND, TOOBIG, synchronizing literals, 8-bit and 20 MB
// messages byte-exact, and what a second connection sees (STYLE.md habit 11).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient, message } from '../helpers/imap.js';
import { ByteClient, literalOf } from '../helpers/bytes-client.js';

let srv: TestServer;
before(async () => { srv = await startTestServer(); });
after(async () => { await srv.stop(); });

const login = ['alice', 'secret-a'] as [string, string];

async function uidValidity(c: RawClient, mailbox: string): Promise<string> {
  const r = await c.command(`STATUS ${mailbox} (UIDVALIDITY)`);
  return /UIDVALIDITY (\d+)/.exec(r.untagged[0])![1];
}

test('APPEND with flags and internal date: APPENDUID, and FETCH shows them', async () => {
  const c = await RawClient.connect(srv.port, { login });
  await c.command('CREATE App1');
  const v = await uidValidity(c, 'App1');
  const r = await c.append('App1', message(1), '(\\Seen $Work \\Flagged) "07-Feb-1994 21:52:25 -0800"');
  assert.equal(r.tagged, `t4 OK [APPENDUID ${v} 1] APPEND completed`);
  assert.deepEqual(r.untagged, []);
  const r2 = await c.append('App1', message(2));
  assert.equal(r2.tagged, `t5 OK [APPENDUID ${v} 2] APPEND completed`);
  await c.command('SELECT App1');
  const f = await c.command('FETCH 1:2 (UID FLAGS INTERNALDATE RFC822.SIZE)');
  assert.match(f.untagged[0], /^\* 1 FETCH \(UID 1 FLAGS \(\\Seen \\Flagged \$Work( \\Recent)?\) INTERNALDATE " 7-Feb-1994 21:52:25 -0800" RFC822\.SIZE 179\)$/);
  assert.match(f.untagged[1], /^\* 2 FETCH \(UID 2 FLAGS \((\\Recent)?\) INTERNALDATE "[ 0-9]\d-[A-Z][a-z]{2}-\d{4} \d\d:\d\d:\d\d [+-]\d{4}" RFC822\.SIZE 179\)$/);
  assert.equal(f.tagged, 't7 OK FETCH completed');
  await c.close();
});

test('APPEND with an invalid date, flag or missing literal is BAD and stores nothing', async () => {
  const c = await RawClient.connect(srv.port, { login });
  await c.command('CREATE App2');
  assert.match((await c.append('App2', message(1), '"31-Feb-1994 21:52:25 -0800"')).tagged, /^t3 BAD /);
  assert.match((await c.append('App2', message(1), '(\\Bogus)')).tagged, /^t4 BAD /);
  assert.match((await c.append('App2', message(1), '(\\Recent)')).tagged, /^t5 BAD /);
  assert.match((await c.command('APPEND App2 "not a literal"')).tagged, /^t6 BAD /);
  assert.match((await c.command('APPEND App2')).tagged, /^t7 BAD /);
  const st = await c.command('STATUS App2 (MESSAGES)');
  assert.equal(st.untagged[0], '* STATUS App2 (MESSAGES 0)');
  await c.close();
});

test('APPEND to a missing mailbox is NO [TRYCREATE]', async () => {
  const c = await RawClient.connect(srv.port, { login });
  const r = await c.append('Nowhere', message(1));
  assert.match(r.tagged, /^t2 NO \[TRYCREATE\] /);
  assert.match((await c.append('Nowhere/Deeper', message(1))).tagged, /^t3 NO \[TRYCREATE\] /);
  await c.close();
});

test('synchronizing literal: "+" continuation, then the message', async () => {
  const c = await RawClient.connect(srv.port, { login });
  await c.command('CREATE App3');
  const msg = message(3);
  c.write(`s1 APPEND App3 (\\Draft) {${Buffer.byteLength(msg)}}\r\n`);
  const cont = await c.readLine();
  assert.match(cont, /^\+ /);
  c.write(`${msg}\r\n`);
  const r = await c.collect('s1');
  assert.match(r.tagged, /^s1 OK \[APPENDUID \d+ 1\] /);
  await c.command('EXAMINE App3');
  const f = await c.command('FETCH 1 (FLAGS BODY.PEEK[])');
  // rev1 EXAMINE may show \Recent for a message no session has claimed yet.
  assert.equal(f.untagged[0].replace(' \\Recent)', ')'), `* 1 FETCH (FLAGS (\\Draft) BODY[] {${msg.length}}\r\n${msg})`);
  await c.close();
});

test('literal8 ~{n} carries NUL bytes: stored base64 (RFC 3516 §4.3), BINARY[1] returns them exactly, BODY[] has no NUL', async () => {
  const c = await ByteClient.connect(srv.port, login);
  await c.commandBytes('CREATE App4');
  const payload = Buffer.concat([Buffer.from('ab'), Buffer.from([0, 1, 0xff, 0]), Buffer.from('cd')]);
  const body = Buffer.concat([Buffer.from('Subject: nul\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n'), payload]);
  const r = await c.commandBytes(Buffer.concat([Buffer.from(`APPEND App4 ~{${body.length}+}\r\n`), body]));
  assert.match(r.tagged, /^b3 OK \[APPENDUID \d+ 1\] /);
  // A plain literal may not contain NUL (RFC 9051 §4.3).
  const nul = await c.commandBytes(Buffer.concat([Buffer.from(`APPEND App4 {${body.length}+}\r\n`), body]));
  assert.match(nul.tagged, /^b4 BAD /);
  await c.commandBytes('SELECT App4');
  const f = await c.commandBytes('FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[1] BODY.PEEK[] RFC822.SIZE)');
  const line = f.untagged[0];
  assert.ok(line.toString('latin1').startsWith(`* 1 FETCH (BINARY[1] ~{${payload.length}}\r\n`), line.toString('latin1'));
  assert.ok(literalOf(line).equals(payload));
  assert.match(line.toString('latin1'), new RegExp(`BINARY.SIZE\\[1\\] ${payload.length} `));
  const stored = literalOf(line.subarray(line.indexOf('BODY[]')));
  // As Dovecot answers: the part re-encoded as base64, its CTE field saying so.
  assert.equal(stored.toString('latin1'), `Subject: nul\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n${payload.toString('base64')}\r\n`);
  assert.match(line.toString('latin1'), new RegExp(`RFC822.SIZE ${stored.length}\\b`));
  assert.equal((await c.commandBytes('STATUS App4 (MESSAGES)')).untagged[0].toString(), '* STATUS App4 (MESSAGES 1)');
  c.close();
});

test('MULTIAPPEND: several messages in one command, APPENDUID with a uid-set', async () => {
  const c = await RawClient.connect(srv.port, { login });
  await c.command('CREATE App5');
  const v = await uidValidity(c, 'App5');
  const m = [message(1), message(2), message(3)];
  const r = await c.command(
    `APPEND App5 (\\Seen) {${m[0].length}+}\r\n${m[0]} {${m[1].length}+}\r\n${m[1]} (\\Flagged) "01-Jan-2020 00:00:00 +0000" {${m[2].length}+}\r\n${m[2]}`,
  );
  assert.equal(r.tagged, `t4 OK [APPENDUID ${v} 1:3] APPEND completed`);
  await c.command('EXAMINE App5');
  const f = await c.command('FETCH 1:* (FLAGS INTERNALDATE)');
  f.untagged = f.untagged.map((l) => l.replace(/ ?\\Recent\)/, ')'));
  assert.match(f.untagged[0], /^\* 1 FETCH \(FLAGS \(\\Seen\) /);
  assert.match(f.untagged[1], /^\* 2 FETCH \(FLAGS \(\) /);
  assert.equal(f.untagged[2], '* 3 FETCH (FLAGS (\\Flagged) INTERNALDATE " 1-Jan-2020 00:00:00 +0000")');
  await c.close();
});

test('MULTIAPPEND is atomic: a bad third message stores none of them', async () => {
  const c = await RawClient.connect(srv.port, { login });
  await c.command('CREATE App6');
  const m = message(1);
  const r = await c.command(`APPEND App6 {${m.length}+}\r\n${m} {${m.length}+}\r\n${m} (\\Nope) {${m.length}+}\r\n${m}`);
  assert.match(r.tagged, /^t3 BAD /);
  assert.equal((await c.command('STATUS App6 (MESSAGES UIDNEXT)')).untagged[0], '* STATUS App6 (MESSAGES 0 UIDNEXT 1)');
  await c.close();
});

test('TOOBIG: a literal over the limit is refused, before "+" for a synchronizing one', async () => {
  const small = await startTestServer({ tweak: (o) => { o.limits.maxMessageSize = 2048; } });
  try {
    const c = await RawClient.connect(small.port, { login });
    const caps = await c.command('CAPABILITY');
    assert.match(caps.untagged[0], / APPENDLIMIT=2048( |$)/);
    // Synchronizing: no continuation, a tagged TOOBIG at once.
    c.write('s1 APPEND INBOX {4096}\r\n');
    const r = await c.collect('s1');
    assert.deepEqual(r.untagged, []);
    assert.match(r.tagged, /^s1 (NO|BAD) \[TOOBIG\] /);
    // Non-synchronizing: the bytes are read and discarded, then BAD [TOOBIG] (RFC 7888 §4).
    const big = 'x'.repeat(4096);
    const r2 = await c.append('INBOX', big);
    assert.match(r2.tagged, /^t3 BAD \[TOOBIG\] /);
    // The connection is still in sync and usable; a message at the limit fits.
    const fits = Buffer.alloc(2048, 'y');
    assert.match((await c.append('INBOX', fits)).tagged, /^t4 OK \[APPENDUID \d+ 1\] /);
    assert.match((await c.command('NOOP')).tagged, /^t5 OK/);
    // MULTIAPPEND with one message over the limit stores nothing.
    const r3 = await c.command(`APPEND INBOX {5+}\r\nhello {4096+}\r\n${big}`);
    assert.match(r3.tagged, /^t6 BAD \[TOOBIG\] /);
    assert.equal((await c.command('STATUS INBOX (MESSAGES)')).untagged[0], '* STATUS INBOX (MESSAGES 1)');
    await c.close();
  } finally {
    await small.stop();
  }
});

test('8-bit message bytes round-trip exactly', async () => {
  const c = await ByteClient.connect(srv.port, login);
  await c.commandBytes('CREATE App7');
  const body = Buffer.concat([
    Buffer.from('Subject: =?ISO-8859-1?Q?caf=E9?=\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n'),
    Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x0d, 0x0a, 0xc3, 0xa9, 0xff, 0x80, 0x0d, 0x0a]),
    Buffer.from('\u00fcber UTF-8 \u{1f600}\r\n', 'utf8'),
  ]);
  const r = await c.commandBytes(Buffer.concat([Buffer.from(`APPEND App7 {${body.length}+}\r\n`), body]));
  assert.match(r.tagged, /^b3 OK /);
  await c.commandBytes('EXAMINE App7');
  const f = await c.commandBytes('FETCH 1 (RFC822.SIZE BODY.PEEK[])');
  const line = f.untagged[0];
  assert.ok(line.toString('latin1').startsWith(`* 1 FETCH (RFC822.SIZE ${body.length} BODY[] {${body.length}}\r\n`));
  assert.ok(literalOf(line).equals(body));
  const t = await c.commandBytes('FETCH 1 BODY.PEEK[TEXT]');
  assert.ok(literalOf(t.untagged[0]).equals(body.subarray(body.indexOf('\r\n\r\n') + 4)));
  c.close();
});

test('a 20 MB message streams in and out byte-exact, with partial fetches', async () => {
  const c = await ByteClient.connect(srv.port, login);
  await c.commandBytes('CREATE Big');
  const head = Buffer.from('Subject: big\r\nContent-Type: application/octet-stream\r\n\r\n');
  const payload = Buffer.alloc(20 * 1024 * 1024);
  for (let i = 0; i < payload.length; i++) payload[i] = i % 78 === 76 ? 13 : i % 78 === 77 ? 10 : 0x21 + ((i * 7) % 94);
  const body = Buffer.concat([head, payload]);
  // A synchronizing literal, as a cautious client would send it.
  c.socket.write(`big APPEND Big {${body.length}}\r\n`);
  const cont = await c.line();
  assert.match(cont.toString(), /^\+ /);
  c.socket.write(Buffer.concat([body, Buffer.from('\r\n')]));
  const l = await c.line(60_000);
  assert.match(l.toString(), /^big OK \[APPENDUID \d+ 1\] /);
  await c.commandBytes('EXAMINE Big');
  const f = await c.commandBytes('FETCH 1 (RFC822.SIZE BODY.PEEK[])');
  assert.match(f.untagged[0].subarray(0, 60).toString(), new RegExp(`^\\* 1 FETCH \\(RFC822\\.SIZE ${body.length} BODY\\[\\] \\{${body.length}\\}\\r\\n`));
  assert.ok(literalOf(f.untagged[0]).equals(body), 'BODY[] is byte-exact');
  assert.equal(f.untagged[0].length, f.untagged[0].indexOf('}\r\n') + 3 + body.length + 1, 'only ")" after the literal');
  const p = await c.commandBytes('FETCH 1 BODY.PEEK[]<10485760.1000>');
  assert.ok(p.untagged[0].toString('latin1').startsWith('* 1 FETCH (BODY[]<10485760> {1000}\r\n'));
  assert.ok(literalOf(p.untagged[0]).equals(body.subarray(10485760, 10486760)));
  const tail = await c.commandBytes(`FETCH 1 BODY.PEEK[]<${body.length - 10}.100>`);
  assert.ok(literalOf(tail.untagged[0]).equals(body.subarray(body.length - 10)));
  c.close();
});

test('APPEND to the selected mailbox: EXISTS for the appender and for another session', async () => {
  const a = await RawClient.connect(srv.port, { login });
  const b = await RawClient.connect(srv.port, { login });
  await a.command('CREATE App8');
  await a.command('SELECT App8');
  await b.command('SELECT App8');
  const r = await a.append('App8', message(1));
  // rev1 session: EXISTS, then RECENT (see report: new arrivals are not claimed as \Recent yet).
  assert.equal(r.untagged[0], '* 1 EXISTS');
  assert.match(r.untagged[1], /^\* [01] RECENT$/);
  assert.equal(r.untagged.length, 2);
  const n = await b.command('NOOP');
  assert.equal(n.untagged[0], '* 1 EXISTS');
  assert.equal(n.tagged, 't3 OK NOOP completed');
  // Appending elsewhere says nothing about the selected mailbox.
  const other = await a.append('INBOX', message(2));
  assert.deepEqual(other.untagged, []);
  await a.close();
  await b.close();
});
