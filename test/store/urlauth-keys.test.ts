// The store-level URLAUTH key and POP3 maildrop contracts
// (keys-maildrop-contract.ts) on SQLite, and the SQLite schema's order.
// PostgreSQL runs the same contracts in test/store/postgres-contracts.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import type { MailStore } from '../../src/store/types.js';
import { MIGRATIONS } from '../../src/store/sqlite/schema.js';
import type { StoreHarness } from './contract.js';
import { runMaildropContract, runUrlAuthKeyContract } from './keys-maildrop-contract.js';

async function sqlite(): Promise<StoreHarness> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'quire-urlkeys-'));
  const open = () => openSqliteStore({ dataDir: path.join(dir, 'data'), synchronous: 'NORMAL' });
  let store: MailStore = await open();
  return {
    store,
    reopen: async () => {
      await store.close();
      store = await open();
      return store;
    },
    cleanup: async () => {
      await store.close();
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}

runUrlAuthKeyContract('sqlite', sqlite);
runMaildropContract('sqlite', sqlite);

test('the URLAUTH keys migration comes after V11 (migrations are append-only: a released store at V11 runs it)', () => {
  const i = MIGRATIONS.findIndex((m) => m.includes('CREATE TABLE urlauth_keys'));
  const sortKeys = MIGRATIONS.findIndex((m) => m.includes('CREATE TABLE sort_keys'));
  assert.ok(i > sortKeys && sortKeys >= 0);
});
