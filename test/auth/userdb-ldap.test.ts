// The LDAP user database against a real OpenLDAP slapd (Debian's slapd,
// started here with its own config and port): search-then-bind and bind
// modes, StartTLS and LDAPS, filter escaping, the empty-password rule, the
// cache fingerprint following a password change in the directory, SCRAM not
// offered, pooling under concurrent logins, and an unresponsive server
// answered as UNAVAILABLE after the timeout.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { LdapUserDb, escapeDn, escapeFilter, type LdapOptions } from '../../src/auth/userdb/ldap.js';
import { provisionExternalUser } from '../../src/cli/users.js';
import { hasSlapd, slappasswd, startSlapd, SUFFIX, type Slapd } from '../helpers/slapd.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient } from '../helpers/imap.js';

const PEOPLE = `ou=people,${SUFFIX}`;
let slapd: Slapd;
before(async () => {
  if (!hasSlapd()) {
    if (process.env.CI) throw new Error('slapd / ldap-utils not installed; CI must provide them');
    return;
  }
  slapd = await startSlapd();
  slapd.ldif(
    [
      `dn: uid=lena,${PEOPLE}\nobjectClass: inetOrgPerson\nuid: lena\ncn: Lena\nsn: L\nmail: lena@example.org\nmail: l@example.org\nemployeeNumber: 4096\nuserPassword: ${slappasswd('lena-pw')}\n`,
      `dn: uid=mike,${PEOPLE}\nobjectClass: inetOrgPerson\nuid: mike\ncn: Mike\nsn: M\nuserPassword: mike pw, with (parens)*\n`,
    ].join('\n'),
  );
});
after(async () => { await slapd?.stop(); });

const skip = !hasSlapd() && !process.env.CI ? 'slapd not installed (apt-get install slapd ldap-utils)' : false;

function search(extra: Partial<LdapOptions> = {}): LdapOptions {
  return { urls: [slapd.url], baseDn: SUFFIX, bindDn: '', filter: '(&(objectClass=inetOrgPerson)(uid=%u))', quotaStorageAttribute: 'employeeNumber', aliasAttribute: 'mail', ...extra };
}

async function serverWith(o: LdapOptions): Promise<{ srv: TestServer; db: LdapUserDb }> {
  const db = new LdapUserDb(o);
  let srv: TestServer | undefined;
  srv = await startTestServer({ users: [], auth: { userdb: db, provision: (a) => provisionExternalUser(srv!.store, a.name) } });
  return { srv, db };
}

test('escaping: filter (RFC 4515) and DN (RFC 4514) metacharacters', () => {
  assert.equal(escapeFilter('*)(uid=*'), '\\2a\\29\\28uid=\\2a');
  assert.equal(escapeFilter('a\\b\0'), 'a\\5cb\\00');
  assert.equal(escapeDn('a,b+c="x"'), 'a\\,b\\+c\\=\\"x\\"');
  assert.equal(escapeDn(' #lead'), '\\ #lead');
});

test('search-then-bind through IMAP: login, provisioning, quota and aliases, bad and empty passwords, injection, no SCRAM', { skip }, async () => {
  const { srv, db } = await serverWith(search());
  try {
    const c = await RawClient.connect(srv.port);
    assert.doesNotMatch(c.greeting, /SCRAM/, 'an LDAP bind gives no verifier: SCRAM is not offered');
    assert.match(c.greeting, /AUTH=PLAIN/);
    assert.match((await c.command('LOGIN lena wrong')).tagged, /NO \[AUTHENTICATIONFAILED\]/);
    assert.match((await c.command('LOGIN lena ""')).tagged, /NO \[AUTHENTICATIONFAILED\]/, 'empty password: no unauthenticated bind');
    assert.match((await c.command('LOGIN * lena-pw')).tagged, /NO/, 'a filter wildcard matches nobody');
    assert.match((await c.command('LOGIN lena lena-pw')).tagged, /OK/);
    assert.match((await c.command('GETQUOTAROOT INBOX')).raw, /STORAGE 0 4/);
    await c.close();
    const lena = await srv.store.getUser('lena');
    assert.deepEqual((await srv.store.listAddresses(lena!.id)).map((a) => a.address).sort(), ['l@example.org', 'lena@example.org']);
    const m = await RawClient.connect(srv.port);
    assert.match((await m.command('LOGIN mike "mike pw, with (parens)*"')).tagged, /OK/, 'a cleartext userPassword with metacharacters');
    await m.close();
  } finally {
    await srv.stop();
    await db.close();
  }
});

test('a password changed in the directory stops the cached old one at once (modifyTimestamp fingerprint)', { skip }, async () => {
  const { srv, db } = await serverWith(search());
  try {
    const c = await RawClient.connect(srv.port);
    assert.match((await c.command('LOGIN mike "mike pw, with (parens)*"')).tagged, /OK/);
    await c.close();
    // modifyTimestamp has a resolution of one second.
    await new Promise((r) => setTimeout(r, 1100));
    slapd.ldif(`dn: uid=mike,${PEOPLE}\nchangetype: modify\nreplace: userPassword\nuserPassword: ${slappasswd('mike-new')}\n`, 'ldapmodify');
    const d = await RawClient.connect(srv.port);
    assert.match((await d.command('LOGIN mike "mike pw, with (parens)*"')).tagged, /NO/);
    assert.match((await d.command('LOGIN mike mike-new')).tagged, /OK/);
    await d.close();
  } finally {
    await srv.stop();
    await db.close();
  }
});

test('bind mode (DN template), StartTLS and LDAPS with the directory\'s CA; LDAPS with an unknown CA is UNAVAILABLE', { skip }, async () => {
  for (const o of [
    { urls: [slapd.url], dnTemplate: `uid=%u,${PEOPLE}` },
    { urls: [slapd.url], dnTemplate: `uid=%u,${PEOPLE}`, startTls: true, ca: slapd.ca },
    { urls: [slapd.ldapsUrl], dnTemplate: `uid=%u,${PEOPLE}`, ca: slapd.ca },
    search({ urls: [slapd.ldapsUrl], ca: slapd.ca }),
  ] as LdapOptions[]) {
    const db = new LdapUserDb(o);
    const e = await db.find('lena');
    assert.equal(await e!.checkPassword('lena-pw'), '', JSON.stringify({ ...o, ca: !!o.ca }));
    assert.equal(await e!.checkPassword('nope'), null);
    await db.close();
  }
  const { srv, db } = await serverWith({ urls: [slapd.ldapsUrl], dnTemplate: `uid=%u,${PEOPLE}` });
  try {
    const c = await RawClient.connect(srv.port);
    assert.match((await c.command('LOGIN lena lena-pw')).tagged, /NO \[UNAVAILABLE\]/);
    await c.close();
  } finally {
    await srv.stop();
    await db.close();
  }
});

test('pooling: many concurrent logins over a pool of two connections', { skip }, async () => {
  const { srv, db } = await serverWith(search({ poolSize: 2 }));
  try {
    const clients = await Promise.all(Array.from({ length: 12 }, () => RawClient.connect(srv.port)));
    const replies = await Promise.all(clients.map((c, i) => c.command(i % 3 === 0 ? 'LOGIN lena wrong' : 'LOGIN lena lena-pw')));
    replies.forEach((r, i) => assert.match(r.tagged, i % 3 === 0 ? /NO/ : /OK/, `client ${i}`));
    await Promise.all(clients.map((c) => c.close()));
  } finally {
    await srv.stop();
    await db.close();
  }
});

test('an LDAP server that accepts but never answers: NO [UNAVAILABLE] after the timeout, other sessions unaffected', { skip }, async () => {
  const held: net.Socket[] = [];
  const silent = net.createServer((s) => held.push(s));
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
  const port = (silent.address() as net.AddressInfo).port;
  const { srv, db } = await serverWith({ urls: [`ldap://127.0.0.1:${port}`], baseDn: SUFFIX, bindDn: '', timeoutMs: 500, connectTimeoutMs: 500 });
  try {
    const c = await RawClient.connect(srv.port);
    const t0 = Date.now();
    const pending = c.command('LOGIN lena lena-pw');
    // Meanwhile another connection is served at once.
    const other = await RawClient.connect(srv.port);
    assert.match((await other.command('NOOP')).tagged, /OK/);
    assert.match((await pending).tagged, /NO \[UNAVAILABLE\]/);
    assert.ok(Date.now() - t0 < 5000, 'bounded by the timeout');
    await Promise.all([c.close(), other.close()]);
  } finally {
    await srv.stop();
    await db.close();
    for (const s of held) s.destroy();
    silent.close();
  }
});
