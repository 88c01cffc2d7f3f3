// Runs the real `quire` entry point as a child process against a temp data dir.
import { runProcess, type Run } from '../helpers/process.js';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { verifyPassword } from '../../src/auth/password.js';
import type { MailStore } from '../../src/store/types.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = join(ROOT, 'src/cli/main.ts');
const SQLITE = new URL('../../src/store/sqlite/index.ts', import.meta.url);
const haveStore = existsSync(SQLITE);
if (!haveStore) console.log('# SKIP cli.test.ts: src/store/sqlite/index.ts does not exist yet');

function quire(args: string[], opts: { stdin?: string; env?: Record<string, string> } = {}): Promise<Run> {
  // A clean environment: no QUIRE_* from the developer's shell.
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('QUIRE_') && v !== undefined) env[k] = v;
  // node itself with tsx's loader (not the tsx command, which starts a second node for each run).
  return runProcess(process.execPath, ['--import', 'tsx', MAIN, ...args], { cwd: ROOT, env: { ...env, ...opts.env }, stdin: opts.stdin });
}

async function withStore<T>(dataDir: string, fn: (s: MailStore) => Promise<T>): Promise<T> {
  const { openSqliteStore } = (await import(SQLITE.href)) as { openSqliteStore(o: { dataDir: string }): Promise<MailStore> };
  const store = await openSqliteStore({ dataDir });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

test('quire --help and --version work without a store', async () => {
  const help = await quire(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /serve/);
  assert.match(help.stdout, /user/);
  const v = await quire(['--version']);
  assert.equal(v.code, 0);
  assert.match(v.stdout, /^\d+\.\d+\.\d+/);
});

test('configuration errors exit 1 with a message', async () => {
  const r = await quire(['config', '--imap-port', '99999']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /option --imap-port: must be a port number/);
});

test('user add / list / passwd / del', { skip: !haveStore && 'store not available yet' }, async () => {
  const data = mkdtempSync(join(tmpdir(), 'quire-cli-'));

  const add = await quire(['user', 'add', 'alice', '--data', data]);
  assert.equal(add.code, 0, add.stderr);
  const pw = /password: (\S+)/.exec(add.stdout)?.[1];
  assert.ok(pw && pw.length >= 20, add.stdout);

  const dup = await quire(['user', 'add', 'alice', '--data', data]);
  assert.equal(dup.code, 1);
  assert.match(dup.stderr, /already exists/);

  const bob = await quire(['user', 'add', 'bob', '--password-stdin', '--data', data], { stdin: 'bob pass\n' });
  assert.equal(bob.code, 0, bob.stderr);
  assert.doesNotMatch(bob.stdout, /password:/);

  const list = await quire(['user', 'list'], { env: { QUIRE_DATA: data } });
  assert.equal(list.code, 0, list.stderr);
  assert.deepEqual(
    list.stdout.trim().split('\n').map((l) => l.split('\t')[0]).sort(),
    ['alice', 'bob'],
  );

  await withStore(data, async (s) => {
    assert.equal(await verifyPassword(pw!, (await s.getUser('alice'))!.passwordHash), true);
    assert.equal(await verifyPassword('bob pass', (await s.getUser('bob'))!.passwordHash), true);
    const boxes = (await s.listMailboxes((await s.getUser('bob'))!.id)).map((b) => b.name).sort();
    assert.deepEqual(boxes, ['Archive', 'Drafts', 'INBOX', 'Junk', 'Sent', 'Trash']);
  });

  const passwd = await quire(['user', 'passwd', 'alice', '--password-stdin', '--data', data], { stdin: 'new secret' });
  assert.equal(passwd.code, 0, passwd.stderr);
  await withStore(data, async (s) => {
    assert.equal(await verifyPassword('new secret', (await s.getUser('alice'))!.passwordHash), true);
  });

  const emptyPw = await quire(['user', 'passwd', 'alice', '--password-stdin', '--data', data], { stdin: '\n' });
  assert.equal(emptyPw.code, 1);
  assert.match(emptyPw.stderr, /must not be empty/);

  const del = await quire(['user', 'del', 'bob', '--data', data]);
  assert.equal(del.code, 0, del.stderr);
  const delAgain = await quire(['user', 'del', 'bob', '--data', data]);
  assert.equal(delAgain.code, 1);
  assert.match(delAgain.stderr, /no such user/);

  const list2 = await quire(['user', 'list', '--data', data]);
  assert.deepEqual(list2.stdout.trim().split('\n').map((l) => l.split('\t')[0]), ['alice']);

  const missing = await quire(['user', 'list', '--data', join(data, 'nope')]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /no data directory/);
});
