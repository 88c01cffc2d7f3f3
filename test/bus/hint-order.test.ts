// A commit's change-bus hint leaves before the committing worker writes the
// change to its own sessions: the other workers start catching up at once
// instead of after this worker's fan-out (an IDLE push to hundreds of local
// sessions is milliseconds of socket writes), and the hint is never sent
// before the commit is durable (it follows the WAL sync, as the local
// publication does).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SqliteMailStore } from '../../src/store/sqlite/index.js';

test('the hint of a durable commit goes out before the local sessions hear of it', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'quire-hint-'));
  const order: string[] = [];
  try {
    const s = await SqliteMailStore.open({ dataDir: dir, synchronous: 'FULL', onCommit: (h) => order.push(`hint ${h.kind}`) });
    const u = await s.createUser('alice', 'x');
    const box = await s.createMailbox(u.id, 'INBOX');
    s.feed.subscribe(u.id, (c) => order.push(`local ${c.kind}`));
    order.length = 0;
    const syncs = s.walSyncCount();
    await s.appendMessages(box.id, [{ data: Buffer.from('Subject: x\r\n\r\nx\r\n'), flags: [] }]);
    assert.ok(s.walSyncCount() > syncs, 'durable first');
    assert.deepEqual(order, ['hint append', 'local append']);
    await s.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
