// Real SASL clients against Quire's SCRAM: Cyrus' imtest (Debian
// cyrus-clients, through libsasl2's SCRAM plugin from libsasl2-modules) and
// mutt (through GNU SASL). The server's auth log says which mechanism ran.
//
// libsasl binds -PLUS with tls-unique only, which is defined for TLS 1.2 and
// not for TLS 1.3 (RFC 8446 §C.5, RFC 9266): its -PLUS runs against a server
// limited to TLS 1.2. mutt 2.2 hands GNU SASL no channel binding data, so it
// cannot use -PLUS at all; it logs in with SCRAM-SHA-256.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import { existsSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { hasTool, requireTool, runTool, scratchDir } from './harness.js';
import type { AuthLogger } from '../../src/auth/authenticator.js';

/** Debian installs the Cyrus test clients outside PATH. */
const CYRUS_BIN_DIR = '/usr/lib/cyrus/bin';

function imtestPath(t: TestContext): string | null {
  if (hasTool('imtest')) return 'imtest';
  if (existsSync(join(CYRUS_BIN_DIR, 'imtest'))) return join(CYRUS_BIN_DIR, 'imtest');
  if (process.env.CI) throw new Error('imtest is not installed (Debian package cyrus-clients); CI must provide it');
  t.skip('imtest not installed (apt-get install cyrus-clients libsasl2-modules)');
  return null;
}

interface Logged { msg: string; fields: Record<string, unknown> }
const events: Logged[] = [];
const log: AuthLogger = { debug() {}, warn() {}, error() {}, info: (msg, fields = {}) => { events.push({ msg, fields }); } };

let srv: TestServer;
let srv12: TestServer;
let scratch: string;
before(async () => {
  scratch = scratchDir('sasl-clients');
  srv = await startTestServer({ auth: { log } });
  // A server speaking at most TLS 1.2, where tls-unique is defined.
  const saved = tls.DEFAULT_MAX_VERSION;
  tls.DEFAULT_MAX_VERSION = 'TLSv1.2';
  try {
    srv12 = await startTestServer({ auth: { log } });
  } finally {
    tls.DEFAULT_MAX_VERSION = saved;
  }
});
after(async () => {
  await srv?.stop();
  await srv12?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

async function imtest(bin: string, args: string[], password = 'secret-a') {
  events.length = 0;
  const r = await runTool(bin, [...args, '-a', 'alice', '-w', password, '127.0.0.1'], { input: 'x1 SELECT INBOX\r\nx2 LOGOUT\r\n', timeoutMs: 30_000 });
  const out = r.stdout + r.stderr;
  const ok = events.find((e) => e.msg.startsWith('credentials verified'));
  return { out, ok, failed: events.find((e) => e.msg === 'credentials refused') };
}

test('imtest: SCRAM-SHA-256 on the loopback plain port and after STARTTLS (TLS 1.3)', async (t) => {
  const bin = imtestPath(t);
  if (!bin) return;
  let r = await imtest(bin, ['-m', 'SCRAM-SHA-256', '-p', String(srv.port)]);
  assert.match(r.out, /Authenticated\./, r.out);
  assert.match(r.out, /x1 OK \[READ-WRITE\]/);
  assert.equal(r.ok?.fields.mechanism, 'SCRAM-SHA-256');
  r = await imtest(bin, ['-t', '', '-m', 'SCRAM-SHA-256', '-p', String(srv.port)]);
  assert.match(r.out, /TLSv1\.3/);
  assert.match(r.out, /Authenticated\./, r.out);
  assert.equal(r.ok?.fields.mechanism, 'SCRAM-SHA-256');
  r = await imtest(bin, ['-m', 'SCRAM-SHA-256', '-p', String(srv.port)], 'wrong');
  assert.doesNotMatch(r.out, /Authenticated\./);
  assert.match(String(r.failed?.fields.reason), /invalid proof/);
});

test('imtest: SCRAM-SHA-256-PLUS (tls-unique) over STARTTLS and implicit TLS 1.2', async (t) => {
  const bin = imtestPath(t);
  if (!bin) return;
  for (const args of [['-t', '', '-p', String(srv12.port)], ['-s', '-p', String(srv12.tlsPort)]]) {
    const r = await imtest(bin, [...args, '-m', 'SCRAM-SHA-256-PLUS']);
    assert.match(r.out, /TLSv1\.2/);
    assert.match(r.out, /Authenticated\./, r.out);
    // libsasl names the mechanism without "-PLUS" while binding; the gs2 header carries the binding.
    assert.match(String(r.ok?.fields.mechanism), /^SCRAM-SHA-256/);
    assert.match(r.out, /C: A01 AUTHENTICATE SCRAM-SHA-256 cD10bHMtdW5pcXVl/, 'p=tls-unique in the gs2 header');
  }
  // The binding is really checked: a wrong password with -PLUS still fails.
  const bad = await imtest(bin, ['-t', '', '-p', String(srv12.port), '-m', 'SCRAM-SHA-256-PLUS'], 'wrong');
  assert.doesNotMatch(bad.out, /Authenticated\./);
});

test('mutt: SCRAM-SHA-256 through GNU SASL over IMAPS', async (t) => {
  if (!requireTool(t, 'mutt')) return;
  if (!requireTool(t, 'script', 'bsdutils')) return;
  const dir = join(scratch, 'mutt');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(dir, { recursive: true });
  const cert = join(dir, 'cert.pem');
  writeFileSync(cert, srv.cert);
  writeFileSync(
    join(dir, 'muttrc'),
    [
      `set certificate_file="${cert}"`,
      'set ssl_verify_host=no',
      'set ssl_force_tls=yes',
      'set imap_user="alice"',
      'set imap_pass="secret-a"',
      'set imap_authenticators="scram-sha-256"',
      'set mail_check=0',
      'set timeout=1',
      'set wait_key=no',
      'set quit=yes',
      'set confirmcreate=no',
      `set folder="${dir}"`,
      '',
    ].join('\n'),
  );
  events.length = 0;
  const cmd = `mutt -d 2 -n -F '${join(dir, 'muttrc')}' -f 'imaps://alice@127.0.0.1:${srv.tlsPort}/INBOX' -e 'push <quit>'`;
  const r = await runTool('script', ['-qec', cmd, '/dev/null'], { env: { TERM: 'xterm', HOME: dir, COLUMNS: '120', LINES: '40' }, timeoutMs: 30_000 });
  const debug = existsSync(join(dir, '.muttdebug0')) ? readFileSync(join(dir, '.muttdebug0'), 'utf8') : '';
  assert.match(debug, /AUTHENTICATE SCRAM-SHA-256 /, `mutt exit ${r.code}\n${debug.slice(-3000)}`);
  const ok = events.find((e) => e.msg.startsWith('credentials verified'));
  assert.equal(ok?.fields.mechanism, 'SCRAM-SHA-256');
  assert.equal(ok?.fields.user, 'alice');
  assert.match(debug, /SELECT "INBOX"|SELECT INBOX/);
});
