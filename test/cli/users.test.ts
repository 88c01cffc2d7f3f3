import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { verifyPassword } from '../../src/auth/password.js';
import { changePassword, checkUserName, DEFAULT_MAILBOXES, firstUserName, generatePassword, provisionUser, removeUser } from '../../src/cli/users.js';
import type { MailStore } from '../../src/store/types.js';

const SQLITE = new URL('../../src/store/sqlite/index.ts', import.meta.url);
const haveStore = existsSync(SQLITE);
if (!haveStore) console.log('# SKIP users.test.ts store tests: src/store/sqlite/index.ts does not exist yet');

async function openStore(): Promise<MailStore> {
  const { openSqliteStore } = (await import(SQLITE.href)) as { openSqliteStore(o: { dataDir: string }): Promise<MailStore> };
  return openSqliteStore({ dataDir: mkdtempSync(join(tmpdir(), 'quire-users-')) });
}

test('user name and password checks', () => {
  assert.equal(checkUserName('alice@example.org'), null);
  assert.equal(checkUserName('jöhn'), null);
  assert.match(checkUserName('') ?? '', /empty/);
  assert.match(checkUserName('a b') ?? '', /spaces/);
  assert.match(checkUserName('a\0b') ?? '', /control/);
  assert.match(checkUserName('x'.repeat(256)) ?? '', /255/);
  assert.match(checkUserName('a\ud800') ?? '', /Unicode/);
});

test('generated passwords are long and distinct', () => {
  const a = generatePassword();
  assert.match(a, /^[A-Za-z0-9_-]{24}$/);
  assert.notEqual(a, generatePassword());
});

test('first user name: OS login name when usable, else "quire"', () => {
  assert.equal(firstUserName('Alice'), 'alice');
  assert.equal(firstUserName('root'), 'quire');
  assert.equal(firstUserName(''), 'quire');
  assert.equal(firstUserName(undefined), 'quire');
  assert.equal(firstUserName('DOMAIN\\bob'), 'quire');
});

test('provisionUser creates the user and the subscribed default mailboxes', { skip: !haveStore && 'store not available yet' }, async () => {
  const store = await openStore();
  try {
    const u = await provisionUser(store, 'alice', 'pw1');
    assert.equal(u.name, 'alice');
    assert.equal(await verifyPassword('pw1', u.passwordHash), true);
    const boxes = await store.listMailboxes(u.id);
    for (const mb of DEFAULT_MAILBOXES) {
      const b = boxes.find((x) => x.name === mb.name);
      assert.ok(b, `${mb.name} exists`);
      assert.equal(b.specialUse, mb.specialUse);
      assert.equal(b.subscribed, true, `${mb.name} subscribed`);
    }
    assert.deepEqual([...(await store.listSubscriptions(u.id))].sort(), DEFAULT_MAILBOXES.map((m) => m.name).sort());
    await assert.rejects(provisionUser(store, 'alice', 'pw2'), /already exists/);
    await assert.rejects(provisionUser(store, 'bad name', 'pw2'), /spaces/);

    const changed = await changePassword(store, 'alice', 'pw2');
    const again = await store.getUserById(changed.id);
    assert.equal(await verifyPassword('pw2', again!.passwordHash), true);
    await assert.rejects(changePassword(store, 'nobody', 'x'), /no such user/);

    await removeUser(store, 'alice');
    assert.equal(await store.getUser('alice'), null);
    await assert.rejects(removeUser(store, 'alice'), /no such user/);
  } finally {
    await store.close();
  }
});
