// The admin listener over HTTP with a real store: /readyz follows the
// server's readiness, only GET/HEAD are answered, and quire_index_backlog
// counts bodies waiting for the full-text index until the indexing thread
// has caught up.
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { provisionUser } from '../../src/cli/users.js';
import { READY_STORE_CACHE_MS, READY_STORE_TIMEOUT_MS, startAdmin } from '../../src/obs/admin.js';
import { processMetrics } from '../../src/obs/metrics.js';
import { createLogger } from '../../src/obs/log.js';
import { message } from '../helpers/imap.js';
import { httpGet, sample } from './helpers.js';

function request(port: number, method: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const r = http.request({ host: '127.0.0.1', port, path, method }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    r.on('error', reject);
    r.end(method === 'POST' ? 'x' : undefined);
  });
}

test('readiness, methods, and the index backlog gauge', { timeout: 60_000 }, async () => {
  const store = await openSqliteStore({ dataDir: mkdtempSync(join(tmpdir(), 'quire-admin-')), synchronous: 'NORMAL' });
  let ready = false;
  const admin = await startAdmin({ host: '127.0.0.1', port: 0, log: createLogger({ level: 'silent' }), ready: () => ready });
  const port = admin.address.port;
  try {
    assert.equal((await httpGet(port, '/readyz')).status, 503);
    ready = true;
    assert.equal((await httpGet(port, '/readyz')).status, 200);
    assert.equal((await httpGet(port, '/healthz')).body, 'ok\n');
    assert.equal(await request(port, 'POST', '/metrics'), 405);
    assert.equal(await request(port, 'HEAD', '/metrics'), 200);

    const u = await provisionUser(store, 'alice', 'secret-a');
    const inbox = (await store.getMailbox(u.id, 'INBOX'))!;
    await store.appendMessages(inbox.id, [1, 2, 3].map((i) => ({ data: Buffer.from(message(i)), flags: [] })));
    processMetrics().setIndexBacklogSource(() => store.indexBacklog!());
    assert.equal(sample((await httpGet(port, '/metrics')).body, 'quire_index_backlog'), 3, 'three bodies wait for the index');
    store.startBackgroundWork?.(() => {});
    // The indexing thread catches up; the gauge follows.
    let last: number | null = null;
    for (let i = 0; i < 300 && last !== 0; i++) {
      last = sample((await httpGet(port, '/metrics')).body, 'quire_index_backlog');
      if (last !== 0) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(last, 0);
  } finally {
    processMetrics().setIndexBacklogSource(null);
    await admin.close();
    await store.close();
  }
});

test('/readyz probes the store: a closed store or one that does not answer is 503, one probe per interval', { timeout: 30_000 }, async () => {
  const store = await openSqliteStore({ dataDir: mkdtempSync(join(tmpdir(), 'quire-admin-')), synchronous: 'NORMAL' });
  let hang = false;
  let probes = 0;
  const storeCheck = () => {
    probes++;
    return hang ? new Promise<never>(() => {}) : store.countUsers();
  };
  const admin = await startAdmin({ host: '127.0.0.1', port: 0, log: createLogger({ level: 'silent' }), ready: () => true, storeCheck });
  const port = admin.address.port;
  try {
    assert.equal((await httpGet(port, '/readyz')).status, 200);
    await Promise.all([1, 2, 3, 4].map(() => httpGet(port, '/readyz')));
    assert.ok(probes <= 2, `${probes} probes for 5 requests within READY_STORE_CACHE_MS`);
    await new Promise((r) => setTimeout(r, READY_STORE_CACHE_MS + 50));
    hang = true;
    const t0 = Date.now();
    const slow = await httpGet(port, '/readyz');
    assert.equal(slow.status, 503);
    assert.match(slow.body, /store not answering/);
    assert.ok(Date.now() - t0 >= READY_STORE_TIMEOUT_MS - 100);
    hang = false;
    await new Promise((r) => setTimeout(r, READY_STORE_CACHE_MS + 50));
    assert.equal((await httpGet(port, '/readyz')).status, 200);
    await store.close();
    await new Promise((r) => setTimeout(r, READY_STORE_CACHE_MS + 50));
    const closed = await httpGet(port, '/readyz');
    assert.equal(closed.status, 503);
    assert.match(closed.body, /store unreachable/);
  } finally {
    await admin.close();
    await store.close().catch(() => {});
  }
});
