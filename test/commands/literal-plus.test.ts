// LITERAL+ (RFC 7888) over a real socket: advertised alone (§5: never with
// LITERAL-), so non-synchronizing literals of any size up to the limits are
// taken without a continuation (LITERAL- would cap them at 4096 bytes);
// the §3 example; literal8 in the non-synchronizing form (§6, with BINARY).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient, message } from '../helpers/imap.js';

let srv: TestServer;
before(async () => { srv = await startTestServer(); });
after(async () => { await srv.stop(); });

test('LITERAL+ is advertised before and after login, LITERAL- never (RFC 7888 §5)', async () => {
  const c = await RawClient.connect(srv.port);
  const caps = (s: string) => s.split(' ');
  assert.ok(caps(c.greeting).includes('LITERAL+'), c.greeting);
  assert.ok(!caps(c.greeting).includes('LITERAL-'));
  await c.command('LOGIN alice secret-a');
  const after = caps((await c.command('CAPABILITY')).untagged[0]!);
  assert.ok(after.includes('LITERAL+') && !after.includes('LITERAL-'));
  await c.close();
});

test('§3 example: LOGIN with non-synchronizing literals is LOGIN with quoted strings; no continuation is sent', async () => {
  const c = await RawClient.connect(srv.port);
  // The name and password are literals whose spaces belong to the values.
  c.write('A001 LOGIN {5+}\r\nalice {8+}\r\nsecret-a\r\n');
  assert.match(await c.readLine(), /^A001 OK /);
  await c.close();
  const d = await RawClient.connect(srv.port);
  d.write('A002 LOGIN {11+}\r\nFRED FOOBAR {7+}\r\nfat man\r\n');
  const l = await d.readLine();
  assert.match(l, /^A002 NO \[AUTHENTICATIONFAILED\]/); // not BAD, and no "+"
  await d.close();
});

test('a non-synchronizing APPEND literal above 4096 bytes is accepted (LITERAL+, not LITERAL-)', async () => {
  const c = await RawClient.connect(srv.port, { login: ['alice', 'secret-a'] });
  await c.command('CREATE LitPlus');
  const big = Buffer.from(message(1, { body: 'z'.repeat(20_000) }));
  c.write(Buffer.concat([Buffer.from(`a1 APPEND LitPlus {${big.length}+}\r\n`), big, Buffer.from('\r\n')]));
  const first = await c.readLine();
  assert.match(first, /^a1 OK \[APPENDUID \d+ 1\]/);
  // literal8 in the non-synchronizing form (§6 with BINARY, RFC 3516).
  const bin = Buffer.from('Subject: b\r\n\r\nbin\x00ary\r\n', 'latin1');
  c.write(Buffer.concat([Buffer.from(`a2 APPEND LitPlus ~{${bin.length}+}\r\n`), bin, Buffer.from('\r\n')]));
  assert.match(await c.readLine(), /^a2 OK \[APPENDUID \d+ 2\]/);
  await c.command('SELECT LitPlus');
  assert.deepEqual((await c.command('FETCH 1 RFC822.SIZE')).untagged, [`* 1 FETCH (RFC822.SIZE ${big.length})`]);
  await c.close();
});
