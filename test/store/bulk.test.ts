// The store-to-store copy contract (test/store/bulk-contract.ts) on SQLite.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import type { MailStore } from '../../src/store/types.js';
import { runBulkContract } from './bulk-contract.js';

runBulkContract('sqlite', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'quire-bulk-'));
  let store: MailStore = await openSqliteStore({ dataDir: path.join(dir, 'data'), synchronous: 'NORMAL' });
  return {
    store,
    reopen: async () => {
      await store.close();
      store = await openSqliteStore({ dataDir: path.join(dir, 'data'), synchronous: 'NORMAL' });
      return store;
    },
    cleanup: async () => {
      await store.close();
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
});
