// A SQLite store in a fresh temporary directory with user "alice", removed afterwards.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SqliteMailStore } from '../../src/store/sqlite/index.js';
import { provisionUser } from '../../src/cli/users.js';
import type { MailStore } from '../../src/store/types.js';

/** Runs `fn` with the store (data under `<dir>/data`), alice's user id and the directory. */
export async function withTempStore(prefix: string, fn: (s: MailStore, userId: number, dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  const s = await SqliteMailStore.open({ dataDir: path.join(dir, 'data'), synchronous: 'NORMAL' });
  try {
    const u = await provisionUser(s, 'alice', 'secret-a');
    await fn(s, u.id, dir);
  } finally {
    await s.close();
    await rm(dir, { recursive: true, force: true });
  }
}
