// Python's imaplib (a real third-party client) authenticating with SASL PLAIN
// (AUTHENTICATE PLAIN, then the response to the "+" continuation) as users
// of an LDAP directory (a private slapd) and of a Dovecot passwd-file.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LdapUserDb } from '../../src/auth/userdb/ldap.js';
import { PasswdFileUserDb } from '../../src/auth/userdb/passwd-file.js';
import { shaCrypt } from '../../src/auth/userdb/schemes.js';
import { provisionExternalUser } from '../../src/cli/users.js';
import type { UserDb } from '../../src/auth/userdb/types.js';
import { hasSlapd, slappasswd, startSlapd, SUFFIX, type Slapd } from '../helpers/slapd.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { requireTool, runTool } from './harness.js';

const SCRIPT = `
import imaplib, sys
port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
m = imaplib.IMAP4('127.0.0.1', port)
try:
    typ, data = m.authenticate('PLAIN', lambda _: b'\\0' + user.encode() + b'\\0' + password.encode())
    print('AUTH', typ)
    typ, data = m.select('INBOX')
    print('SELECT', typ, data[0].decode())
    m.logout()
except imaplib.IMAP4.error as e:
    print('FAILED', e)
`;

const events: { msg: string; fields: Record<string, unknown> }[] = [];
let slapd: Slapd | undefined;
let dir: string;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'quire-imaplib-'));
  writeFileSync(join(dir, 'session.py'), SCRIPT);
  if (hasSlapd()) {
    slapd = await startSlapd();
    slapd.ldif(`dn: uid=olga,ou=people,${SUFFIX}\nobjectClass: inetOrgPerson\nuid: olga\ncn: Olga\nsn: O\nuserPassword: ${slappasswd('olga-pw')}\n`);
  } else if (process.env.CI) throw new Error('slapd / ldap-utils not installed; CI must provide them');
});
after(async () => {
  await slapd?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function withServer(userdb: UserDb, fn: (srv: TestServer) => Promise<void>) {
  let srv: TestServer | undefined;
  srv = await startTestServer({
    users: [],
    auth: { userdb, provision: (a) => provisionExternalUser(srv!.store, a.name), log: { debug() {}, warn() {}, error() {}, info: (msg, fields = {}) => { events.push({ msg, fields }); } } },
  });
  try {
    await fn(srv);
  } finally {
    await srv.stop();
  }
}

async function imaplib(port: number, user: string, password: string): Promise<string> {
  const r = await runTool('python3', [join(dir, 'session.py'), String(port), user, password], { timeoutMs: 30_000 });
  return r.stdout + r.stderr;
}

test('imaplib: AUTHENTICATE PLAIN as an LDAP user (search-then-bind)', async (t) => {
  if (!requireTool(t, 'python3')) return;
  if (!slapd) return t.skip('slapd not installed');
  const db = new LdapUserDb({ urls: [slapd.url], baseDn: SUFFIX, bindDn: '', filter: '(&(objectClass=inetOrgPerson)(uid=%u))' });
  try {
    await withServer(db, async (srv) => {
      events.length = 0;
      const out = await imaplib(srv.port, 'olga', 'olga-pw');
      assert.match(out, /AUTH OK/, out);
      assert.match(out, /SELECT OK 0/);
      const ok = events.find((e) => e.msg === 'credentials verified');
      assert.equal(ok?.fields.userdb, 'ldap');
      assert.equal(ok?.fields.mechanism, 'PLAIN');
      assert.match(await imaplib(srv.port, 'olga', 'wrong'), /FAILED .*AUTHENTICATIONFAILED/);
    });
  } finally {
    await db.close();
  }
});

test('imaplib: AUTHENTICATE PLAIN as a passwd-file user', async (t) => {
  if (!requireTool(t, 'python3')) return;
  const file = join(dir, 'users');
  writeFileSync(file, `pia:{SHA512-CRYPT}${shaCrypt('pia-pw', '$6$Qu1reSalt')}::::::\n`);
  await withServer(new PasswdFileUserDb({ path: file }), async (srv) => {
    events.length = 0;
    const out = await imaplib(srv.port, 'pia', 'pia-pw');
    assert.match(out, /AUTH OK/, out);
    assert.match(out, /SELECT OK 0/);
    assert.equal(events.find((e) => e.msg === 'credentials verified')?.fields.userdb, 'passwd-file');
    assert.match(await imaplib(srv.port, 'pia', 'wrong'), /FAILED/);
  });
});
