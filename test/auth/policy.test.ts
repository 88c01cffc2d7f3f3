// Auth policy through IMAP: application passwords (named, logged by name,
// revoked at once), master users (user*master and SASL PLAIN authzid),
// optional lockout, the verified-password cache (hits, and invalidation by
// passwd / del from another process's point of view), and the auth log; plus
// `quire user app-password` and the config block through the real CLI.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestServer } from '../helpers/server.js';
import { RawClient } from '../helpers/imap.js';
import { scramAuth } from '../helpers/scram-client.js';
import { runProcess } from '../helpers/process.js';
import { addAppPassword } from '../../src/auth/userdb/builtin.js';
import { changePassword, removeUser } from '../../src/cli/users.js';
import { loadConfig, ConfigError } from '../../src/cli/config.js';
import type { AuthLogger } from '../../src/auth/authenticator.js';

function recorder() {
  const events: { level: string; msg: string; fields: Record<string, unknown> }[] = [];
  const log: AuthLogger = {
    debug: (msg, fields = {}) => events.push({ level: 'debug', msg, fields }),
    info: (msg, fields = {}) => events.push({ level: 'info', msg, fields }),
    warn: (msg, fields = {}) => events.push({ level: 'warn', msg, fields }),
    error: (msg, fields = {}) => events.push({ level: 'error', msg, fields }),
  };
  return { events, log, last: (msg: string) => events.filter((e) => e.msg === msg).at(-1) };
}
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

test('application passwords: several per user, logged by name, revoked at once (cache included)', async () => {
  const r = recorder();
  const srv = await startTestServer({ auth: { log: r.log } });
  try {
    const alice = (await srv.store.getUser('alice'))!;
    const phone = await addAppPassword(srv.store, alice, 'phone');
    const laptop = await addAppPassword(srv.store, alice, 'laptop');
    await assert.rejects(addAppPassword(srv.store, alice, 'phone'), /exists/);
    await assert.rejects(addAppPassword(srv.store, alice, 'bad:name'), /name must be/);
    const c = await RawClient.connect(srv.port);
    assert.match((await c.command(`LOGIN alice ${phone}`)).tagged, /OK/);
    assert.equal(r.last('credentials verified')?.fields.appPassword, 'phone');
    await c.close();
    const d = await RawClient.connect(srv.port);
    d.write(`p1 AUTHENTICATE PLAIN ${b64(`\0alice\0${laptop}`)}\r\n`);
    assert.match((await d.collect('p1')).tagged, /OK/);
    assert.equal(r.last('credentials verified')?.fields.appPassword, 'laptop');
    await d.close();
    const [used] = (await srv.store.listCredentials(alice.id, 'app')).filter((x) => x.name === 'phone');
    assert.ok(used?.lastUsed, 'last use recorded');
    // Revoked: the next login with it fails although it was just verified (and cached).
    assert.equal(await srv.store.deleteCredential(alice.id, 'app', 'phone'), true);
    const e = await RawClient.connect(srv.port);
    assert.match((await e.command(`LOGIN alice ${phone}`)).tagged, /NO \[AUTHENTICATIONFAILED\]/);
    assert.match((await e.command(`LOGIN alice ${laptop}`)).tagged, /OK/, 'the other one still works');
    await e.close();
    // The account password and SCRAM are unaffected.
    const f = await RawClient.connect(srv.port);
    assert.match((await scramAuth(f, 'alice', 'secret-a')).reply.tagged, /OK/);
    await f.close();
  } finally {
    await srv.stop();
  }
});

test('master users: user*master and PLAIN authzid open the user\'s mailbox and are logged; others may not', async () => {
  const r = recorder();
  const srv = await startTestServer({ users: [['alice', 'secret-a'], ['bob', 'secret-b'], ['admin', 'admin-pw']], auth: { log: r.log, masterUsers: ['admin'] } });
  try {
    await srv.store.createMailbox((await srv.store.getUser('bob'))!.id, 'BobOnly');
    const c = await RawClient.connect(srv.port);
    assert.match((await c.command('LOGIN bob*admin admin-pw')).tagged, /OK/);
    assert.match((await c.command('LIST "" BobOnly')).raw, /BobOnly/, 'the session is bob\'s');
    const m = r.last('credentials verified (master user)');
    assert.equal(m?.fields.user, 'bob');
    assert.equal(m?.fields.master, 'admin');
    await c.close();
    const d = await RawClient.connect(srv.port);
    d.write(`a1 AUTHENTICATE PLAIN ${b64('bob\0admin\0admin-pw')}\r\n`);
    assert.match((await d.collect('a1')).tagged, /OK/);
    assert.match((await d.command('LIST "" BobOnly')).raw, /BobOnly/);
    await d.close();
    // SCRAM with an authorization identity too.
    const s = await RawClient.connect(srv.port);
    assert.match((await scramAuth(s, 'admin', 'admin-pw', { authzid: 'bob' })).reply.tagged, /OK/);
    assert.equal(r.last('credentials verified (master user)')?.fields.mechanism, 'SCRAM-SHA-256');
    await s.close();
    // Not a master: refused and logged.
    const e = await RawClient.connect(srv.port);
    e.write(`a2 AUTHENTICATE PLAIN ${b64('bob\0alice\0secret-a')}\r\n`);
    assert.match((await e.collect('a2')).tagged, /NO \[AUTHENTICATIONFAILED\]/);
    assert.match(String(r.last('credentials refused')?.fields.reason), /not allowed to log in as bob/);
    assert.match((await e.command('LOGIN bob*alice secret-a')).tagged, /NO/);
    assert.match((await e.command('LOGIN nobody*admin admin-pw')).tagged, /NO/, 'unknown target');
    assert.match((await e.command('LOGIN bob*admin wrong')).tagged, /NO/);
    await e.close();
  } finally {
    await srv.stop();
  }
});

test('lockout: after the threshold the right password is refused too; the cache: hits are logged, passwd and del take effect at once', async () => {
  const r = recorder();
  const srv = await startTestServer({ auth: { log: r.log, lockoutThreshold: 3 } });
  try {
    const c = await RawClient.connect(srv.port);
    assert.match((await c.command('LOGIN alice secret-a')).tagged, /OK/);
    assert.equal(r.last('credentials verified')?.fields.cached, false);
    await c.close();
    const c2 = await RawClient.connect(srv.port);
    assert.match((await c2.command('LOGIN alice secret-a')).tagged, /OK/);
    assert.equal(r.last('credentials verified')?.fields.cached, true, 'second login from the cache');
    await c2.close();
    // passwd (as the CLI of another process does: only the database changes).
    await changePassword(srv.store, 'alice', 'changed-a');
    const c3 = await RawClient.connect(srv.port);
    assert.match((await c3.command('LOGIN alice secret-a')).tagged, /NO/, 'the cached old password is not used');
    assert.match((await c3.command('LOGIN alice changed-a')).tagged, /OK/);
    await c3.close();
    await removeUser(srv.store, 'alice');
    const c4 = await RawClient.connect(srv.port);
    assert.match((await c4.command('LOGIN alice changed-a')).tagged, /NO/, 'deleted');
    await c4.close();

    const l = await RawClient.connect(srv.port);
    for (let i = 0; i < 3; i++) assert.match((await l.command('LOGIN bob wrong')).tagged, /NO/);
    assert.match((await l.command('LOGIN bob secret-b')).tagged, /NO \[AUTHENTICATIONFAILED\]/, 'locked out');
    assert.match(String(r.last('credentials refused')?.fields.reason), /locked out/);
    assert.ok((r.last('credentials refused')?.fields.delayMs as number) > 0);
    await l.close();
  } finally {
    await srv.stop();
  }
});

test('the mechanism allow-list limits what is advertised and accepted', async () => {
  const srv = await startTestServer({ auth: { mechanisms: ['PLAIN'] } });
  try {
    const c = await RawClient.connect(srv.port);
    assert.doesNotMatch(c.greeting, /SCRAM/);
    assert.match((await c.command('AUTHENTICATE SCRAM-SHA-256')).tagged, /NO \[CANNOT\]/);
    await c.close();
  } finally {
    await srv.stop();
  }
});

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const cli = (args: string[], stdin?: string) => runProcess(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args], { cwd: ROOT, env: { ...process.env, QUIRE_CONFIG: '' }, stdin });

test('quire user app-password add / list / revoke', async () => {
  const data = mkdtempSync(join(tmpdir(), 'quire-app-cli-'));
  assert.equal((await cli(['user', 'add', 'carol', '--password-stdin', '--data', data], 'carol-pw')).code, 0);
  const add = await cli(['user', 'app-password', 'add', 'carol', 'tablet', '--data', data]);
  assert.equal(add.code, 0, add.stderr);
  assert.match(add.stdout, /application password "tablet" for carol:\n {2}[A-Za-z0-9_-]{24}\n/);
  const list = await cli(['user', 'app-password', 'list', 'carol', '--data', data]);
  assert.match(list.stdout, /^tablet\t\d{4}-\d\d-\d\dT[^\t]+\tnever\n$/);
  assert.equal((await cli(['user', 'app-password', 'revoke', 'carol', 'tablet', '--data', data])).code, 0);
  const again = await cli(['user', 'app-password', 'revoke', 'carol', 'tablet', '--data', data]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /no application password named "tablet"/);
  assert.equal((await cli(['user', 'app-password', 'list', 'carol', '--data', data])).stdout, '');
});

test('config: the auth block (userdb, oauth, masters) is read and checked', () => {
  const dir = mkdtempSync(join(tmpdir(), 'quire-auth-config-'));
  const file = join(dir, 'quire.json');
  writeFileSync(file, JSON.stringify({
    auth: { masterUsers: ['admin'], lockoutThreshold: 10, cacheMs: '5m', mechanisms: 'SCRAM-SHA-256,PLAIN' },
    userdb: { driver: 'passwd-file', path: 'users' },
    oauth: { issuers: [{ issuer: 'https://idp/', audience: 'imap', jwks: 'jwks.json' }] },
  }));
  const c = loadConfig({ env: {}, cwd: dir, flags: { config: file } });
  assert.deepEqual(c.userdb, { driver: 'passwd-file', path: join(dir, 'users') });
  assert.equal(c.oauth?.issuers?.[0]?.jwks, join(dir, 'jwks.json'));
  assert.deepEqual(c.auth.masterUsers, ['admin']);
  assert.deepEqual(c.auth.mechanisms, ['SCRAM-SHA-256', 'PLAIN']);
  assert.equal(c.auth.cacheMs, 300_000);
  for (const [bad, msg] of [
    [{ userdb: { driver: 'nis' } }, /userdb.driver must be/],
    [{ userdb: { driver: 'ldap', urls: ['ldap://x'] } }, /dnTemplate .* or baseDn and bindDn/],
    [{ userdb: { driver: 'ldap', urls: ['http://x'], dnTemplate: 'uid=%u' } }, /not an ldap/],
    [{ userdb: { driver: 'sql', connectionString: 'postgres://x', query: 'SELECT 1' } }, /\$1/],
    [{ userdb: { driver: 'passwd-file', path: 'u', extra: 1 } }, /unknown key "extra"/],
    [{ oauth: { issuers: [{ issuer: 'i', audience: 'a', jwks: 'j', algorithms: ['HS256'] }] } }, /HS256 is not supported/],
    [{ oauth: {} }, /needs issuers or introspection/],
  ] as const) {
    writeFileSync(file, JSON.stringify(bad));
    assert.throws(() => loadConfig({ env: {}, cwd: dir, flags: { config: file } }), (e: unknown) => e instanceof ConfigError && msg.test(e.message), JSON.stringify(bad));
  }
  // From the environment as JSON text.
  const e = loadConfig({ env: { QUIRE_USERDB: '{"driver":"sql","connectionString":"postgres://x","query":"SELECT password FROM u WHERE name = $1"}' }, cwd: dir, flags: {} });
  assert.equal(e.userdb.driver, 'sql');
});
