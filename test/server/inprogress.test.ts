// INPROGRESS (RFC 9585) over a real socket: a long SEARCH / COPY gets
// `* OK [INPROGRESS ("tag" NIL NIL)]` responses before its tagged reply, at a
// bounded rate; short commands and FETCH get none.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient, message } from '../helpers/imap.js';

const INTERVAL_MS = 5;
let srv: TestServer;
before(async () => {
  srv = await startTestServer({ tweak: (o) => { o.inProgressMs = INTERVAL_MS; } });
  const userId = (await srv.store.getUser('alice'))!.id;
  const box = await srv.store.createMailbox(userId, 'Big');
  await srv.store.createMailbox(userId, 'Dest');
  for (let i = 0; i < 1; i++) {
    await srv.store.appendMessages(box.id, Array.from({ length: 300 }, (_, k) => ({ data: Buffer.from(message(i * 300 + k, { body: `text ${k} `.repeat(10) })), flags: [] })));
  }
});
after(async () => { await srv.stop(); });

const progressOf = (lines: string[], tag: string) => lines.filter((l) => l.startsWith(`* OK [INPROGRESS ("${tag}" NIL NIL)] `));

test('long commands send INPROGRESS with their tag at a bounded rate; short ones and FETCH none', async () => {
  const c = await RawClient.connect(srv.port, { login: ['alice', 'secret-a'] });
  await c.command('SELECT Big');
  const t0 = Date.now();
  const s = await c.command('UID SEARCH BODY "no such words anywhere"', 's1');
  const searchMs = Date.now() - t0;
  const sp = progressOf(s.untagged, 's1');
  const t1 = Date.now();
  const m = await c.command('UID COPY 1:* Dest', 'c1');
  const copyMs = Date.now() - t1;
  const cp = progressOf(m.untagged, 'c1');
  assert.match(s.tagged, /^s1 OK/);
  assert.match(m.tagged, /^c1 OK/);
  // The SEARCH reads every body in slices (other connections get turns), so the timer fires during it.
  assert.ok(sp.length > 0, `no INPROGRESS in a ${searchMs} ms SEARCH`);
  // Bounded: never more than one per interval (plus one for timer slack).
  assert.ok(sp.length <= searchMs / INTERVAL_MS + 1, `${sp.length} in ${searchMs} ms`);
  assert.ok(cp.length <= copyMs / INTERVAL_MS + 1, `${cp.length} in ${copyMs} ms`);
  // All progress responses precede the tagged reply and name the command's tag only.
  assert.equal(s.untagged.filter((l) => l.includes('INPROGRESS')).length, sp.length);
  // FETCH (streamed responses) and NOOP never carry one.
  const f = await c.command('UID FETCH 1:* (UID FLAGS)', 'f1');
  assert.deepEqual(progressOf(f.untagged, 'f1'), []);
  await new Promise((r) => setTimeout(r, INTERVAL_MS * 3));
  assert.deepEqual((await c.command('NOOP', 'n1')).untagged.filter((l) => l.includes('INPROGRESS')), []);
  await c.close();
});
