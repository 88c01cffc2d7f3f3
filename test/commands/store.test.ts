// STORE and UID STORE over a real socket (RFC 9051 §6.4.6, §6.4.9, §2.3.2),
// with a second session watching the flag changes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient, message } from '../helpers/imap.js';

let srv: TestServer;
const login = ['alice', 'secret-a'] as [string, string];
before(async () => { srv = await startTestServer(); });
after(async () => { await srv.stop(); });

let boxNo = 0;
/** A fresh mailbox with `n` messages, selected by a rev2 client (no \Recent in the answers). */
async function fresh(n = 4): Promise<{ c: RawClient; box: string }> {
  const box = `St${++boxNo}`;
  const c = await RawClient.connect(srv.port, { login });
  await c.command('ENABLE IMAP4rev2');
  await c.command(`CREATE ${box}`);
  for (let i = 1; i <= n; i++) await c.append(box, message(i));
  await c.command(`SELECT ${box}`);
  return { c, box };
}

test('+FLAGS, -FLAGS, FLAGS answer with the new flags; .SILENT answers nothing', async () => {
  const { c } = await fresh();
  const add = await c.command('STORE 1:2 +FLAGS (\\Flagged \\Seen)', 'a1');
  assert.deepEqual(add.untagged, ['* 1 FETCH (FLAGS (\\Seen \\Flagged))', '* 2 FETCH (FLAGS (\\Seen \\Flagged))']);
  assert.equal(add.tagged, 'a1 OK STORE completed');
  const rm = await c.command('STORE 2 -FLAGS (\\Seen)', 'a2');
  assert.deepEqual(rm.untagged, ['* 2 FETCH (FLAGS (\\Flagged))']);
  const set = await c.command('STORE 3 FLAGS (\\Answered \\Draft)', 'a3');
  assert.deepEqual(set.untagged, ['* 3 FETCH (FLAGS (\\Answered \\Draft))']);
  const clear = await c.command('STORE 3 FLAGS ()', 'a4');
  assert.deepEqual(clear.untagged, ['* 3 FETCH (FLAGS ())']);
  const silent = await c.command('STORE 4 +FLAGS.SILENT (\\Deleted)', 'a5');
  assert.deepEqual(silent.untagged, []);
  assert.equal(silent.tagged, 'a5 OK STORE completed');
  // Flags given without parentheses are accepted too (RFC 9051 §9 store-att-flags).
  assert.deepEqual((await c.command('STORE 4 -FLAGS \\Deleted', 'a6')).untagged, ['* 4 FETCH (FLAGS ())']);
  const all = await c.command('FETCH 1:* FLAGS', 'a7');
  assert.deepEqual(all.untagged, ['* 1 FETCH (FLAGS (\\Seen \\Flagged))', '* 2 FETCH (FLAGS (\\Flagged))', '* 3 FETCH (FLAGS ())', '* 4 FETCH (FLAGS ())']);
  await c.close();
});

test('keywords: a new keyword sends FLAGS and PERMANENTFLAGS first; names compare case-insensitively', async () => {
  const { c } = await fresh(2);
  const r = await c.command('STORE 1 +FLAGS ($Work Junk)', 'k1');
  assert.deepEqual(r.untagged, [
    '* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work Junk)',
    '* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work Junk \\*)] Flags permitted',
    '* 1 FETCH (FLAGS ($Work Junk))',
  ]);
  // Same keyword in another case: no new FLAGS, and the first spelling is kept.
  assert.deepEqual((await c.command('STORE 2 +FLAGS ($work)', 'k2')).untagged, ['* 2 FETCH (FLAGS ($Work))']);
  assert.deepEqual((await c.command('STORE 1 -FLAGS ($WORK)', 'k3')).untagged, ['* 1 FETCH (FLAGS (Junk))']);
  // A second session selecting now is told about the keywords.
  const b = await RawClient.connect(srv.port, { login });
  await b.command('ENABLE IMAP4rev2');
  const sel = await b.command('EXAMINE St' + boxNo);
  assert.ok(sel.untagged.includes('* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work Junk)'), sel.raw);
  assert.ok(sel.untagged.includes('* OK [PERMANENTFLAGS ()] Flags permitted'), sel.raw);
  // ...and about a keyword the first one adds later, with its FETCH.
  await c.command('STORE 2 +FLAGS (NewOne)', 'k4');
  const n = await b.command('NOOP');
  // Keyword order follows the view's knowledge; compare as sets.
  const words = (l: string) => l.replace(/^\* FLAGS \((.*)\)$/, '$1').split(' ').sort();
  assert.deepEqual(words(n.untagged[0]), words('* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work Junk NewOne)'));
  n.untagged[0] = 'FLAGS';
  assert.deepEqual(n.untagged, [
    'FLAGS',
    '* OK [PERMANENTFLAGS ()] Flags permitted',
    '* 2 FETCH (UID 2 FLAGS ($Work NewOne))',
  ]);
  await b.close();
  await c.close();
});

test('SELECT shows PERMANENTFLAGS with \\*; EXAMINE shows none and STORE is refused', async () => {
  const { c, box } = await fresh(1);
  const sel = await c.command(`SELECT ${box}`);
  assert.ok(sel.untagged.includes('* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted'), sel.raw);
  await c.command(`EXAMINE ${box}`);
  const r = await c.command('STORE 1 +FLAGS (\\Seen)', 'ro');
  assert.match(r.tagged, /^ro NO /);
  assert.deepEqual((await c.command('FETCH 1 FLAGS')).untagged, ['* 1 FETCH (FLAGS ())']);
  await c.close();
});

test('invalid flags and items are BAD; \\Recent is ignored', async () => {
  const { c } = await fresh(2);
  assert.match((await c.command('STORE 1 +FLAGS (\\Bogus)', 'b1')).tagged, /^b1 BAD /);
  assert.match((await c.command('STORE 1 +FLAGS (a%b)', 'b2')).tagged, /^b2 BAD /);
  assert.match((await c.command('STORE 1 +FLAGS (a]b)', 'b3')).tagged, /^b3 BAD /);
  assert.match((await c.command('STORE 1 XFLAGS (\\Seen)', 'b4')).tagged, /^b4 BAD /);
  assert.match((await c.command('STORE 1 +FLAGS', 'b5')).tagged, /^b5 BAD /);
  assert.match((await c.command('STORE 3 +FLAGS (\\Seen)', 'b6')).tagged, /^b6 BAD /);
  assert.match((await c.command('STORE 0 +FLAGS (\\Seen)', 'b7')).tagged, /^b7 BAD /);
  assert.match((await c.command('STORE 1 +FLAGS ((\\Seen))', 'b8')).tagged, /^b8 BAD /);
  const rec = await c.command('STORE 1 +FLAGS (\\Recent \\Seen)', 'b9');
  assert.deepEqual(rec.untagged, ['* 1 FETCH (FLAGS (\\Seen))']);
  assert.equal(rec.tagged, 'b9 OK STORE completed');
  assert.deepEqual((await c.command('FETCH 1:2 FLAGS')).untagged, ['* 1 FETCH (FLAGS (\\Seen))', '* 2 FETCH (FLAGS ())']);
  await c.close();
});

test('rev1 session: \\Recent shows in STORE answers but cannot be removed', async () => {
  const c = await RawClient.connect(srv.port, { login });
  await c.command('CREATE StRecent');
  await c.append('StRecent', message(1));
  await c.command('SELECT StRecent');
  assert.deepEqual((await c.command('STORE 1 -FLAGS (\\Recent)')).untagged, ['* 1 FETCH (FLAGS (\\Recent))']);
  assert.deepEqual((await c.command('STORE 1 FLAGS (\\Seen)')).untagged, ['* 1 FETCH (FLAGS (\\Seen \\Recent))']);
  await c.close();
});

test('UID STORE includes UID; a UID set naming nothing is OK', async () => {
  const { c } = await fresh(3);
  const r = await c.command('UID STORE 2:* +FLAGS (\\Answered)', 'u1');
  assert.deepEqual(r.untagged, ['* 2 FETCH (UID 2 FLAGS (\\Answered))', '* 3 FETCH (UID 3 FLAGS (\\Answered))']);
  const none = await c.command('UID STORE 10:20 +FLAGS (\\Answered)', 'u2');
  assert.deepEqual(none.untagged, []);
  assert.equal(none.tagged, 'u2 OK STORE completed');
  assert.deepEqual((await c.command('UID STORE 100:* FLAGS.SILENT (\\Seen)', 'u3')).untagged, []);
  assert.deepEqual((await c.command('UID FETCH 3 FLAGS', 'u4')).untagged, ['* 3 FETCH (UID 3 FLAGS (\\Seen))']);
  await c.command('SEARCH RETURN (SAVE) 1,3', 'u5');
  assert.deepEqual((await c.command('STORE $ +FLAGS (\\Flagged)', 'u6')).untagged, ['* 1 FETCH (FLAGS (\\Flagged))', '* 3 FETCH (FLAGS (\\Seen \\Flagged))']);
  await c.close();
});

test('another session sees flag changes as untagged FETCH FLAGS at its next command', async () => {
  const { c: a, box } = await fresh(3);
  const b = await RawClient.connect(srv.port, { login });
  await b.command('ENABLE IMAP4rev2');
  await b.command(`SELECT ${box}`);
  await a.command('STORE 1 +FLAGS.SILENT (\\Flagged)');
  await a.command('STORE 3 FLAGS (\\Deleted \\Seen)');
  const f = await b.command('FETCH 2 FLAGS', 'x1');
  // FETCH FLAGS for other messages may come during FETCH (RFC 9051 §7.5.1), ordered by sequence number.
  assert.deepEqual(f.untagged.slice().sort(), ['* 1 FETCH (UID 1 FLAGS (\\Flagged))', '* 2 FETCH (FLAGS ())', '* 3 FETCH (UID 3 FLAGS (\\Seen \\Deleted))'].sort());
  assert.deepEqual((await b.command('NOOP')).untagged, [], 'each change is reported once');
  // Two changes to one message before the other session looks: reported once, with the final flags.
  await a.command('STORE 2 +FLAGS (\\Answered)');
  await a.command('STORE 2 +FLAGS (\\Draft)');
  assert.deepEqual((await b.command('NOOP')).untagged, ['* 2 FETCH (UID 2 FLAGS (\\Answered \\Draft))']);
  // The acting session is not told twice about its own change.
  assert.deepEqual((await a.command('NOOP')).untagged, []);
  await a.close();
  await b.close();
});

test('STORE on more messages than one store transaction takes: every message changes, every FETCH is sent', async () => {
  const user = (await srv.store.getUser('alice'))!;
  const box = await srv.store.createMailbox(user.id, 'BigStore');
  const items = Array.from({ length: 4500 }, (_, i) => ({ data: Buffer.from(`Subject: ${i}\r\n\r\nx\r\n`), flags: i % 2 ? ['\\Flagged'] : [] }));
  await srv.store.appendMessages(box.id, items);
  const c = await RawClient.connect(srv.port, { login: ['alice', 'secret-a'] });
  await c.command('ENABLE CONDSTORE');
  await c.command('SELECT BigStore');
  const r = await c.command('STORE 1:* +FLAGS (\\Seen)');
  assert.match(r.tagged, / OK/);
  assert.equal(r.untagged.filter((l) => / FETCH \(UID \d+ FLAGS \(/.test(l)).length, 4500);
  assert.equal((await c.command('SEARCH UNSEEN')).untagged[0], '* SEARCH');
  // UNCHANGEDSINCE across chunks: one message changed meanwhile is reported in MODIFIED.
  const st = await c.command('STATUS BigStore (HIGHESTMODSEQ)');
  const since = Number(/HIGHESTMODSEQ (\d+)/.exec(st.untagged[0])![1]);
  const other = await RawClient.connect(srv.port, { login: ['alice', 'secret-a'] });
  await other.command('SELECT BigStore');
  await other.command('UID STORE 4400 +FLAGS (\\Answered)');
  await other.close();
  const u = await c.command(`UID STORE 1:4500 (UNCHANGEDSINCE ${since}) +FLAGS.SILENT (\\Draft)`);
  assert.match(u.tagged, /\[MODIFIED 4400\]/);
  // Messages whose modseq is above UNCHANGEDSINCE are reported as one compact set.
  const low = await c.command(`UID STORE 1:4500 (UNCHANGEDSINCE 1) +FLAGS.SILENT (\\Draft)`);
  assert.match(low.tagged, /\[MODIFIED 1:4500\]/);
  await c.close();
});
