// Safe failures an admin meets: a missing body file is an internal error
// with a log id (never "expunged") and doctor names it; an import that finds
// nothing fails; `--storage 0` means unlimited as in Dovecot; passwords
// shorter than auth.minPasswordLength are refused; a first start that fails
// on a port in use creates no user.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { writeFirstPassword } from '../../src/cli/ops-safety.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { startTestServer } from '../helpers/server.js';
import { RawClient, message } from '../helpers/imap.js';
import { runProcess } from '../helpers/process.js';
import { cleanEnv, ROOT, startServe } from './helpers.js';
import net from 'node:net';

function quire(args: string[], opts: { stdin?: string; env?: Record<string, string> } = {}) {
  return runProcess(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args], { cwd: ROOT, env: cleanEnv(opts.env), stdin: opts.stdin });
}

function bodyFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) out.push(join(e.parentPath, e.name));
  return out;
}

test('a missing body file: NO [SERVERBUG] with a log id that the log carries; other messages still served; doctor reports it', { timeout: 60_000 }, async () => {
  // The body cache off: the appended body would otherwise be served from memory after its file is gone.
  const t = await startTestServer({ storeOptions: { bodyCacheBytes: 0 } });
  try {
    const c = await RawClient.connect(t.port, { login: ['alice', 'secret-a'] });
    assert.match((await c.append('INBOX', message(1))).tagged, /OK/);
    const before = new Set(bodyFiles(join(t.dataDir, 'blobs')));
    assert.match((await c.append('INBOX', message(2))).tagged, /OK/);
    const second = bodyFiles(join(t.dataDir, 'blobs')).filter((f) => !before.has(f));
    assert.equal(second.length, 1);
    rmSync(second[0]!);
    await c.command('SELECT INBOX');
    const r = await c.command('FETCH 2 BODY[]');
    const m = /^\S+ NO \[SERVERBUG\] Internal error, log id ([0-9a-f]{12})$/.exec(r.tagged);
    assert.ok(m, r.tagged);
    assert.doesNotMatch(r.raw, /EXPUNGEISSUED/);
    const logged = t.errors.find((e) => e.includes(m[1]!));
    assert.ok(logged, `the log has the id: ${t.errors.join('\n')}`);
    assert.ok(logged.includes(second[0]!), 'the log names the missing file');
    assert.match((await c.command('FETCH 1 BODY[]')).tagged, /OK/, 'the intact message is still served');
    await c.command('LOGOUT');
  } finally {
    await t.server.close();
    await t.store.close();
  }
  const doc = await quire(['doctor', '--data', t.dataDir]);
  assert.match(doc.stdout + doc.stderr, /file missing/);
  assert.notEqual(doc.code, 0);
  await t.stop().catch(() => {});
});

test('import that finds nothing fails; --storage 0 is unlimited; minimum password length', { timeout: 60_000 }, async () => {
  const data = mkdtempSync(join(tmpdir(), 'quire-fail-'));
  const add = await quire(['user', 'add', 'carol', '--data', data, '--password-stdin'], { stdin: 'short\n' });
  assert.notEqual(add.code, 0);
  assert.match(add.stderr, /password must be at least 8 characters \(auth\.minPasswordLength\)/);
  assert.equal((await quire(['user', 'add', 'carol', '--data', data, '--password-stdin'], { stdin: 'short\n', env: { QUIRE_MIN_PASSWORD_LENGTH: '5' } })).code, 0);

  const empty = mkdtempSync(join(tmpdir(), 'quire-empty-'));
  // A Maildir with no messages in it.
  for (const d of ['cur', 'new', 'tmp']) mkdirSync(join(empty, d));
  const imp = await quire(['import', 'maildir', empty, '--user', 'carol', '--data', data]);
  assert.notEqual(imp.code, 0);
  assert.match(imp.stderr, /found no messages in /);
  const mbox = join(empty, 'none.mbox');
  writeFileSync(mbox, '');
  const imp2 = await quire(['import', 'mbox', mbox, '--user', 'carol', '--data', data]);
  assert.notEqual(imp2.code, 0);
  assert.match(imp2.stderr, /found no messages in /);

  // The first user's password file goes away when the password is changed.
  await writeFirstPassword(data, 'carol', 'short');
  assert.ok(existsSync(join(data, 'first-user-password.txt')));
  const pw = await quire(['user', 'passwd', 'carol', '--data', data, '--password-stdin'], { stdin: 'a-longer-password\n' });
  assert.equal(pw.code, 0, pw.stderr);
  assert.ok(!existsSync(join(data, 'first-user-password.txt')), 'removed by quire user passwd');

  const q = await quire(['user', 'quota', 'carol', '--storage', '0', '--data', data]);
  assert.equal(q.code, 0, q.stderr);
  assert.match(q.stdout, /storage \S+ \S+ of unlimited/);
  assert.match(q.stderr, /--storage 0 means unlimited/);
});

test('a first start that fails on a port in use creates no user; the next start does and shows its password', { timeout: 90_000 }, async () => {
  const busy = net.createServer();
  await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
  const port = (busy.address() as net.AddressInfo).port;
  const data = mkdtempSync(join(tmpdir(), 'quire-busy-'));
  try {
    const failed = await quire(['serve', '--data', data, '--pop3-port', 'off', '--pop3s-port', 'off', '--imap-port', String(port), '--imaps-port', '0', '--lmtp-port', 'off', '--admin-port', 'off']);
    assert.notEqual(failed.code, 0);
    assert.equal(failed.stderr.split('\n').filter((l) => l.startsWith('quire:')).join('\n'), `quire: cannot listen on 127.0.0.1:${port}: address already in use (another server, or another Quire, is on this port; choose another port or stop it)`);
    assert.ok(!existsSync(join(data, 'first-user-password.txt')));
    const users = await quire(['user', 'list', '--data', data]);
    assert.equal(users.stdout, '', 'no user was created');
  } finally {
    busy.close();
  }
  const ok = await startServe(data, `${data}.log`, ['--admin-port', 'off']);
  try {
    assert.match(ok.banner, /First start: created user "[^"]+" with password:\n {2}\S{20,}\n/);
  } finally {
    ok.child.kill('SIGTERM');
  }
  assert.equal(await ok.exited, 0);
});
