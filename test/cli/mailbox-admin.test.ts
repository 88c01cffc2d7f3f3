// quire mailbox list|create|delete|rename|stats on the command line, against
// a store prepared in-process; then the store is checked directly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SqliteMailStore } from '../../src/store/sqlite/index.js';
import { provisionUser } from '../../src/cli/users.js';
import { normaliseMailboxName } from '../../src/cli/mailbox-admin.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

test('mailbox names: INBOX is case-insensitive, empty levels are refused', () => {
  assert.equal(normaliseMailboxName('inbox'), 'INBOX');
  assert.equal(normaliseMailboxName('Inbox/Sub'), 'INBOX/Sub');
  assert.equal(normaliseMailboxName('Lists/inbox'), 'Lists/inbox');
  assert.throws(() => normaliseMailboxName('a//b'), /empty level/);
  assert.throws(() => normaliseMailboxName('../../escaped'), /"\." or "\.\." level/);
  assert.throws(() => normaliseMailboxName('a/./b'), /"\." or "\.\." level/);
  assert.throws(() => normaliseMailboxName('a\nb'), /control character/);
});

test('quire mailbox create / rename / list / stats / delete', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'quire-mbadmin-'));
  try {
    let s = await SqliteMailStore.open({ dataDir: dir, synchronous: 'NORMAL' });
    const u = await provisionUser(s, 'erin', 'secret-e');
    const inbox = (await s.getMailbox(u.id, 'INBOX'))!;
    await s.appendMessages(inbox.id, [
      { data: Buffer.from('Subject: a\r\n\r\nhello\r\n'), flags: ['\\Seen'] },
      { data: Buffer.from('Subject: b\r\n\r\nworld!\r\n'), flags: [] },
    ]);
    const old = await s.createMailbox(u.id, 'Old');
    await s.appendMessages(old.id, [{ data: Buffer.from('Subject: c\r\n\r\nx\r\n'), flags: [] }]);
    await s.close();

    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('QUIRE_') && v !== undefined) env[k] = v;
    const run = (...a: string[]) => spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), 'mailbox', ...a, '--user', 'erin', '--data', dir], { cwd: ROOT, env, encoding: 'utf8' });

    let r = run('create', 'Lists/Work', '--special-use', '\\Archive');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'created Lists/Work\n');
    r = run('rename', 'Old', 'Lists/Old');
    assert.equal(r.status, 0, r.stderr);
    for (const bad of [['create', '../../escaped'], ['create', 'a/./b'], ['create', 'x\u0001y'], ['rename', 'Lists/Old', 'Lists/..']]) {
      r = run(...bad);
      assert.notEqual(r.status, 0, `${bad.join(' ')}: ${r.stdout}`);
      assert.match(r.stderr, /invalid mailbox name/);
    }
    r = run('list');
    assert.equal(r.status, 0, r.stderr);
    const names = r.stdout.trim().split('\n').map((l) => l.split('\t'));
    assert.deepEqual(names.find((n) => n[0] === 'Lists/Work'), ['Lists/Work', '\\Archive', 'subscribed']);
    assert.ok(names.some((n) => n[0] === 'Lists/Old'));
    assert.ok(!names.some((n) => n[0] === 'Old'));
    r = run('stats', 'inbox');
    assert.equal(r.status, 0, r.stderr);
    const [head, row] = r.stdout.trim().split('\n').map((l) => l.split('\t'));
    assert.deepEqual(head, ['mailbox', 'messages', 'unseen', 'size', 'uidvalidity', 'uidnext', 'highestmodseq']);
    assert.deepEqual(row!.slice(0, 4), ['INBOX', '2', '1', String('Subject: a\r\n\r\nhello\r\n'.length + 'Subject: b\r\n\r\nworld!\r\n'.length)]);
    assert.equal(row![5], '3');
    r = run('delete', 'Lists', '--recursive');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'deleted Lists/Work\ndeleted Lists/Old\ndeleted Lists\n');

    s = await SqliteMailStore.open({ dataDir: dir, synchronous: 'NORMAL' });
    try {
      const left = (await s.listMailboxes(u.id)).map((m) => m.name);
      assert.ok(!left.some((n) => n.startsWith('Lists')), left.join());
      assert.ok(!(await s.listSubscriptions(u.id)).some((n) => n.startsWith('Lists')));
      assert.deepEqual((await s.doctor()).findings, []);
    } finally {
      await s.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
