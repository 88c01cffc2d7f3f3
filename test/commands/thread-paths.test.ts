// THREAD over a real socket by both of its paths: a server whose store
// threads from its thread index on the search thread (MailStore.threadForest)
// and a server without a search thread, where the command threads the
// store's rows itself (src/search/thread.ts, the path of backends without a
// thread index). The same generated conversation mailbox on both: every
// algorithm, THREAD and UID THREAD, a restricting search, and a second
// session that expunges while the first still shows the message (the first
// answers without it, for it is gone from the store, and numbers the rest
// as it sees them).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient } from '../helpers/imap.js';
import { threadCorpus } from '../helpers/thread-corpus.js';

const login = ['alice', 'secret-a'] as [string, string];
let indexed: TestServer;
let plain: TestServer;

const COMMANDS = [
  'THREAD REFERENCES UTF-8 ALL',
  'UID THREAD REFERENCES UTF-8 ALL',
  'THREAD REFS UTF-8 ALL',
  'UID THREAD ORDEREDSUBJECT UTF-8 ALL',
  'THREAD ORDEREDSUBJECT UTF-8 ALL',
  'UID THREAD REFERENCES UTF-8 NOT SUBJECT budget',
  'THREAD REFS UTF-8 OR FROM anna SUBJECT release',
];

before(async () => {
  indexed = await startTestServer();
  plain = await startTestServer({ background: { search: false } });
  const msgs = threadCorpus(21, 400);
  for (const srv of [indexed, plain]) {
    const c = await RawClient.connect(srv.port, { login });
    await c.command('CREATE T');
    for (const m of msgs) await c.append('T', m.raw, `"${m.internalDate}"`);
    await c.close();
  }
});
after(async () => {
  await indexed.stop();
  await plain.stop();
});

async function answers(srv: TestServer, c: RawClient): Promise<string[]> {
  const out: string[] = [];
  for (const cmd of COMMANDS) {
    const r = await c.command(cmd);
    assert.match(r.tagged, /OK/, `${cmd}: ${r.tagged}`);
    const lines = r.untagged.filter((l) => l.startsWith('* THREAD'));
    assert.equal(lines.length, 1, cmd);
    assert.ok(lines[0]!.length > 20, `${cmd}: some threads`);
    out.push(lines[0]!);
  }
  assert.deepEqual(srv.errors, []);
  return out;
}

async function session(srv: TestServer): Promise<RawClient> {
  const c = await RawClient.connect(srv.port, { login });
  assert.match((await c.command('SELECT T')).tagged, /OK/);
  return c;
}

test('the thread index path and the generic path answer alike', async () => {
  const a = await session(indexed);
  const b = await session(plain);
  assert.deepEqual(await answers(indexed, a), await answers(plain, b));
  await a.close();
  await b.close();
});

test('a message another session expunged is left out before the EXPUNGE is announced', async () => {
  const a = await session(indexed);
  const b = await session(plain);
  for (const srv of [indexed, plain]) {
    const other = await session(srv);
    await other.command('UID STORE 3,10:12 +FLAGS.SILENT (\\Deleted)');
    await other.command('UID EXPUNGE 3,10:12');
    await other.close();
  }
  // THREAD may not send EXPUNGE (RFC 5256 §3 via RFC 9051 §7.5.1): the sessions still count the four messages.
  const ia = await answers(indexed, a);
  assert.deepEqual(ia, await answers(plain, b));
  assert.ok(!/[( ]3[ )]/.test(ia[1]!), 'UID 3 is not threaded');
  await a.close();
  await b.close();
});
