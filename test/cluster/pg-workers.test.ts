// `quire serve --workers 2 --store postgres://...`: one node of several
// processes on the PostgreSQL store. A session IDLE on one worker gets the
// EXISTS, FETCH and EXPUNGE of changes made on the other (the workers' bus
// and the store's journal both carry them: each change is pushed once, in
// order), and one SIGTERM to the primary stops the whole node with status 0.
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { openPostgresStore } from '../../src/store/postgres/index.js';
import { provisionUser } from '../../src/cli/users.js';
import { startCluster } from '../helpers/cluster.js';
import { message } from '../helpers/imap.js';
import { dropSchema, freshSchema, pgSkip, pgStoreUrl, PG_URL } from '../helpers/pg.js';

const skip = await pgSkip();
const schema = freshSchema('pgnodes_wk');
after(async () => {
  await dropSchema(schema).catch(() => undefined);
});

test('--workers 2 on PostgreSQL: pushes cross workers once each, in order; one SIGTERM stops it', { skip, timeout: 120_000 }, async () => {
  const user: [string, string] = ['alice', 'alice-pass-1'];
  const store = await openPostgresStore({ url: PG_URL, schema, poolSize: 2 });
  await provisionUser(store, ...user);
  await store.close();
  const dir = await mkdtemp(path.join(tmpdir(), 'quire-pgworkers-'));
  const c = await startCluster({ workers: 2, users: [], dir, args: ['--store', pgStoreUrl(schema)] });
  try {
    const a = await c.connectTo(user, (slot) => slot === 1);
    const b = await c.connectTo(user, (slot) => slot === 2);
    assert.notEqual(a.pid, b.pid, 'two worker processes');
    await a.command('SELECT INBOX');
    await b.command('SELECT INBOX');
    a.write('i1 IDLE\r\n');
    assert.match(await a.readLine(), /^\+ /);
    for (let i = 1; i <= 3; i++) assert.match((await b.append('INBOX', message(i))).tagged, /OK/);
    await b.command('NOOP');
    assert.match((await b.command('STORE 2 +FLAGS (\\Deleted)')).tagged, /OK/);
    assert.match((await b.command('EXPUNGE')).tagged, /OK/);
    const lines = await a.readUntil((l) => l === '* 2 EXPUNGE', 10_000);
    a.write('DONE\r\n');
    const rest = await a.readUntil((l) => l.startsWith('i1 '), 10_000);
    const all = [...lines, ...rest].filter((l) => /EXISTS|EXPUNGE|FETCH/.test(l));
    // Each change once: the bus between workers and the journal do not both push it. EXISTS may
    // coalesce appends (RFC 9051 §7.4.1 reports the size, not each message), but never repeats or goes back.
    const exists = all.filter((l) => / EXISTS$/.test(l)).map((l) => Number(l.split(' ')[1]));
    assert.ok(exists.every((n, i) => i === 0 || n > exists[i - 1]!), all.join(' | '));
    assert.equal(exists.at(-1), 3, all.join(' | '));
    assert.equal(all.filter((l) => l === '* 2 EXPUNGE').length, 1, all.join(' | '));
    assert.ok(all.findIndex((l) => / FETCH .*\\Deleted/.test(l)) < all.indexOf('* 2 EXPUNGE'), all.join(' | '));
    const f = await a.command('FETCH 1:* (UID)');
    assert.deepEqual(f.untagged.filter((l) => / FETCH /.test(l)), ['* 1 FETCH (UID 1)', '* 2 FETCH (UID 3)']);
    await a.close();
    await b.close();
    c.child.kill('SIGTERM');
    assert.equal(await c.exited, 0, c.stderr());
  } finally {
    await c.stop();
  }
});
