// The store's URLAUTH mailbox access keys (RFC 4467 §2.4): made on demand,
// stable until reset, kept across a restart, per user and mailbox, gone
// with the mailbox (the trigger of schema migration V_URLAUTH_KEYS) and the user.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { withTempStore } from '../helpers/temp-store.js';
import { SqliteMailStore } from '../../src/store/sqlite/index.js';
import { provisionUser } from '../../src/cli/users.js';
import { StoreError } from '../../src/store/types.js';
import { MIGRATIONS } from '../../src/store/sqlite/schema.js';

test('urlAuthKey / resetUrlAuthKeys', async () => {
  await withTempStore('quire-urlkeys-', async (s, alice, dir) => {
    const box = await s.createMailbox(alice, 'K');
    assert.equal(await s.urlAuthKey(alice, box.id, 'INTERNAL', false), null);
    const k1 = (await s.urlAuthKey(alice, box.id, 'INTERNAL', true))!;
    assert.equal(k1.length, 32);
    assert.deepEqual(await s.urlAuthKey(alice, box.id, 'INTERNAL', true), k1);
    assert.deepEqual(await s.urlAuthKey(alice, box.id, 'INTERNAL', false), k1);
    // Another user's mailbox is not this user's key table.
    const bob = (await provisionUser(s, 'bob', 'secret-b')).id;
    await assert.rejects(s.urlAuthKey(bob, box.id, 'INTERNAL', true), (e: unknown) => e instanceof StoreError && e.kind === 'NONEXISTENT');
    await assert.rejects(s.resetUrlAuthKeys(bob, box.id, 'INTERNAL'), (e: unknown) => e instanceof StoreError && e.kind === 'NONEXISTENT');
    const bobBox = (await s.getMailbox(bob, 'INBOX'))!;
    const kb = (await s.urlAuthKey(bob, bobBox.id, 'INTERNAL', true))!;
    // RESETKEY <mailbox>: a new key at once.
    await s.resetUrlAuthKeys(alice, box.id, 'INTERNAL');
    const k2 = (await s.urlAuthKey(alice, box.id, 'INTERNAL', false))!;
    assert.ok(k2 && !k2.equals(k1));
    // RESETKEY alone: every key of that user gone, other users' kept.
    await s.resetUrlAuthKeys(alice, null, 'INTERNAL');
    assert.equal(await s.urlAuthKey(alice, box.id, 'INTERNAL', false), null);
    assert.deepEqual(await s.urlAuthKey(bob, bobBox.id, 'INTERNAL', false), kb);
    // Gone with the mailbox.
    const k3 = (await s.urlAuthKey(alice, box.id, 'INTERNAL', true))!;
    await s.deleteMailbox(alice, 'K');
    const again = await s.createMailbox(alice, 'K');
    assert.equal(await s.urlAuthKey(alice, again.id, 'INTERNAL', false), null);
    const k4 = (await s.urlAuthKey(alice, again.id, 'INTERNAL', true))!;
    assert.ok(!k4.equals(k3));
    // Kept across a restart.
    const copy = await SqliteMailStore.open({ dataDir: path.join(dir, 'data'), synchronous: 'NORMAL' });
    try {
      assert.deepEqual(await copy.urlAuthKey(alice, again.id, 'INTERNAL', false), k4);
    } finally {
      await copy.close();
    }
    // Gone with the user (the foreign key cascades); alice's stay.
    await s.deleteUser(bob);
    await assert.rejects(s.urlAuthKey(bob, bobBox.id, 'INTERNAL', false), (e: unknown) => e instanceof StoreError && e.kind === 'NONEXISTENT');
    assert.deepEqual(await s.urlAuthKey(alice, again.id, 'INTERNAL', false), k4);
  });
});

test('the URLAUTH keys migration comes after V11 (migrations are append-only: a released store at V11 runs it)', () => {
  const i = MIGRATIONS.findIndex((m) => m.includes('CREATE TABLE urlauth_keys'));
  const sortKeys = MIGRATIONS.findIndex((m) => m.includes('CREATE TABLE sort_keys'));
  assert.ok(i > sortKeys && sortKeys >= 0);
});
