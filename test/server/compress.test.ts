// COMPRESS=DEFLATE (RFC 4978) over real sockets: a raw client runs its
// commands through zlib streams; a decompression bomb is cut off while
// another connection keeps being served.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient } from '../helpers/imap.js';
import { INFLATE_MAX_RATIO, INFLATE_RATIO_SLACK_BYTES } from '../../src/server/compress.js';

let srv: TestServer;
before(async () => {
  srv = await startTestServer({ users: [['carol', 'pw-c'], ['dave', 'pw-d']], tweak: (o) => { o.limits.maxMessageSize = 100 * 1024 * 1024; o.limits.maxCommandSize = 100 * 1024 * 1024; } });
});
after(async () => { await srv.stop(); });

/** A message of mixed text and base64 (so it is not trivially compressible), about `size` bytes. */
function bigMessage(size: number): Buffer {
  const head = 'From: a@example.com\r\nTo: b@example.com\r\nSubject: big\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n';
  const lines: string[] = [];
  let n = head.length;
  let i = 0;
  while (n < size) {
    const l = i % 3 === 0 ? `line ${i} of the body, with some repeated words words words` : randomBytes(45).toString('base64');
    lines.push(l);
    n += l.length + 2;
    i++;
  }
  return Buffer.from(head + lines.join('\r\n') + '\r\n', 'latin1');
}

test('COMPRESS=DEFLATE is advertised only after login and only until active', async () => {
  const c = await RawClient.connect(srv.port);
  assert.doesNotMatch(c.greeting, /COMPRESS=DEFLATE/);
  const pre = await c.command('COMPRESS DEFLATE');
  assert.match(pre.tagged, /^\S+ BAD/);
  await c.command('LOGIN carol pw-c');
  assert.match((await c.command('CAPABILITY')).untagged.join('\n'), /COMPRESS=DEFLATE/);
  assert.match((await c.command('COMPRESS GZIP')).tagged, /^\S+ BAD/);
  const r = await c.startCompress();
  assert.match(r.tagged, /^\S+ OK/);
  const caps = await c.command('CAPABILITY');
  assert.match(caps.tagged, /^\S+ OK/);
  assert.match(caps.untagged.join('\n'), /IMAP4rev2/);
  assert.doesNotMatch(caps.untagged.join('\n'), /COMPRESS=DEFLATE/);
  // RFC 4978 §3: a second COMPRESS (sent compressed) is refused with COMPRESSIONACTIVE.
  assert.match((await c.command('COMPRESS DEFLATE')).tagged, /^\S+ NO \[COMPRESSIONACTIVE\]/);
  assert.match((await c.command('NOOP')).tagged, /^\S+ OK/);
  await c.command('LOGOUT');
  await c.close();
});

test('compressed session: APPEND literals and FETCH of a large body are byte-exact', async () => {
  const c = await RawClient.connect(srv.port, { login: ['carol', 'pw-c'] });
  assert.match((await c.startCompress()).tagged, /OK/);
  await c.command('CREATE big');
  const msg = bigMessage(3 * 1024 * 1024);
  // A LITERAL+ literal and a synchronizing one, both through the compressor.
  assert.match((await c.append('big', msg)).tagged, /^\S+ OK/);
  const small = Buffer.from('Subject: sync\r\n\r\nhello\r\n');
  c.write(`s1 APPEND big {${small.length}}\r\n`);
  assert.match(await c.readLine(), /^\+ /);
  c.write(Buffer.concat([small, Buffer.from('\r\n')]));
  assert.match((await c.collect('s1')).tagged, /^s1 OK/);
  await c.command('SELECT big');
  const f = await c.command('FETCH 1 BODY.PEEK[]');
  assert.match(f.tagged, /^\S+ OK/);
  const raw = Buffer.from(f.untagged.join('\r\n'), 'utf8');
  const m = /\{(\d+)\}\r\n/.exec(raw.toString('latin1'));
  assert.ok(m, 'literal in FETCH');
  assert.equal(Number(m[1]), msg.length);
  const start = m.index + m[0].length;
  assert.ok(raw.subarray(start, start + msg.length).equals(msg), 'body is byte-exact');
  const f2 = await c.command('FETCH 2 BODY.PEEK[TEXT]');
  assert.match(f2.untagged.join('\r\n'), /hello/);
  await c.close();
});

test('IDLE push arrives promptly on a compressed connection (sync flush per response)', async () => {
  const a = await RawClient.connect(srv.port, { login: ['dave', 'pw-d'] });
  assert.match((await a.startCompress()).tagged, /OK/);
  await a.command('SELECT INBOX');
  a.write('i1 IDLE\r\n');
  assert.match(await a.readLine(), /^\+ /);
  const b = await RawClient.connect(srv.port, { login: ['dave', 'pw-d'] });
  assert.match((await b.append('INBOX', 'Subject: push\r\n\r\nx\r\n')).tagged, /OK/);
  // From the APPEND's OK (the change is committed and announced): what a busy machine adds to the APPEND
  // itself is not the push's delay. Unflushed, the EXISTS would wait in the compressor until the next response.
  const t0 = Date.now();
  const lines = await a.readUntil((l) => /^\* \d+ EXISTS/.test(l), 5000);
  assert.ok(lines.some((l) => /EXISTS/.test(l)));
  assert.ok(Date.now() - t0 < 5000);
  a.write('DONE\r\n');
  assert.match((await a.collect('i1')).tagged, /^i1 OK/);
  await a.close();
  await b.close();
});

test('COMPRESS works over implicit TLS and after STARTTLS (compress, then encrypt)', async () => {
  const c = await RawClient.connect(srv.tlsPort, { tls: true, login: ['carol', 'pw-c'] });
  assert.match((await c.startCompress()).tagged, /OK/);
  assert.match((await c.command('STATUS INBOX (MESSAGES)')).untagged.join('\n'), /STATUS/);
  await c.close();
  const s = await RawClient.connect(srv.port);
  await s.startTls();
  assert.match((await s.command('LOGIN carol pw-c')).tagged, /OK/);
  assert.match((await s.startCompress()).tagged, /OK/);
  assert.match((await s.command('NOOP')).tagged, /^\S+ OK/);
  await s.close();
});

test('a decompression bomb gets BYE [LIMIT]; another connection keeps answering', async () => {
  const other = await RawClient.connect(srv.port, { login: ['dave', 'pw-d'] });
  const c = await RawClient.connect(srv.port, { login: ['carol', 'pw-c'] });
  assert.match((await c.startCompress()).tagged, /OK/);
  // 64 MiB of zeros deflate to about 64 KiB: far above INFLATE_MAX_RATIO.
  const size = 64 * 1024 * 1024;
  assert.ok(size > INFLATE_MAX_RATIO * (size / 1000) + INFLATE_RATIO_SLACK_BYTES);
  c.write(`b1 APPEND INBOX {${size}+}\r\n`);
  const zeros = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < 64; i++) c.write(zeros);
  let noops = 0;
  const bye = c.readUntil((l) => l.startsWith('* BYE'), 20_000);
  // Meanwhile the other user's session answers.
  for (let i = 0; i < 3; i++) {
    assert.match((await other.command('NOOP')).tagged, /^\S+ OK/);
    noops++;
  }
  const lines = await bye;
  assert.match(lines.at(-1)!, /^\* BYE \[LIMIT\] Compressed input expands too much/);
  assert.equal(noops, 3);
  assert.match((await other.command('NOOP')).tagged, /^\S+ OK/);
  // The bomb never became a message.
  assert.doesNotMatch((await other.command('STATUS INBOX (MESSAGES)')).untagged.join(''), /MESSAGES [1-9]\d{3,}/);
  await other.close();
  await c.close();
});

test('corrupt compressed input gets a clean BYE', async () => {
  const c = await RawClient.connect(srv.port, { login: ['carol', 'pw-c'] });
  assert.match((await c.startCompress()).tagged, /OK/);
  // Bypass the client's compressor: bytes that are not a valid DEFLATE stream (reserved block type 3).
  c.socket.write(Buffer.from([0xff, 0xff, 0xff, 0xff]));
  const lines = await c.readUntil((l) => l.startsWith('* BYE'), 10_000);
  assert.match(lines.at(-1)!, /^\* BYE/);
  await c.close();
});

test('backpressure holds on the compressed stream: a client that stops reading gets no unbounded output queue', async () => {
  const c = await RawClient.connect(srv.port, { login: ['carol', 'pw-c'] });
  assert.match((await c.startCompress()).tagged, /OK/);
  await c.command('CREATE bp');
  // Random base64 barely compresses: what the server queues is about what it sends.
  const head = 'Subject: bp\r\n\r\n';
  const msg = Buffer.from(head + (randomBytes(768 * 1024).toString('base64').match(/.{1,76}/g) ?? []).join('\r\n') + '\r\n');
  assert.match((await c.append('bp', msg)).tagged, /OK/);
  await c.command('SELECT bp');
  c.socket.pause();
  const N = 30;
  for (let i = 0; i < N; i++) c.write(`f${i} FETCH 1 BODY.PEEK[]\r\n`);
  await new Promise((r) => setTimeout(r, 1500));
  const queued = srv.server.bufferedOutputBytes();
  // 30 answers are about 30 MB; the server holds back all but a few until the client reads.
  assert.ok(queued < 8 * 1024 * 1024, `server queued ${queued} bytes for a client that is not reading`);
  c.socket.resume();
  for (let i = 0; i < N; i++) {
    const r = await c.collect(`f${i}`);
    assert.match(r.tagged, /OK/);
    assert.ok(r.untagged.join('\r\n').includes(msg.subarray(msg.length - 200).toString('latin1')));
  }
  await c.close();
});

test('plain bytes pipelined after COMPRESS (before its OK) are discarded, never executed', async () => {
  const c = await RawClient.connect(srv.port, { login: ['carol', 'pw-c'] });
  c.write('z1 COMPRESS DEFLATE\r\nz2 CREATE injected\r\n');
  const ok = await c.readLine();
  assert.match(ok, /^z1 OK/);
  // Switch our side as a real client does after the OK; the pipelined CREATE must not have run.
  await c.close();
  const v = await RawClient.connect(srv.port, { login: ['carol', 'pw-c'] });
  const l = await v.command('LIST "" injected');
  assert.doesNotMatch(l.untagged.join('\n'), /injected/);
  await v.close();
});
