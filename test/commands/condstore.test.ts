// CONDSTORE and QRESYNC (RFC 7162) over real sockets, with a second session
// making the changes that the first must learn about.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient, message } from '../helpers/imap.js';

let srv: TestServer;
before(async () => { srv = await startTestServer(); });
after(async () => { await srv.stop(); });

const login = (u = 'alice', p = 'secret-a') => RawClient.connect(srv.port, { login: [u, p] });

async function box(c: RawClient, name: string, n: number) {
  await c.command(`CREATE ${name}`);
  for (let i = 1; i <= n; i++) await c.append(name, message(i));
}

const modseqOf = (line: string) => Number(/MODSEQ \((\d+)\)/.exec(line)?.[1]);

test('CONDSTORE and QRESYNC are advertised and enableable', async () => {
  const c = await login();
  const caps = await c.command('CAPABILITY');
  assert.match(caps.untagged[0], / CONDSTORE /);
  assert.match(caps.untagged[0], / QRESYNC/);
  const r = await c.command('ENABLE QRESYNC');
  assert.equal(r.untagged[0], '* ENABLED QRESYNC');
  await c.close();
});

test('STATUS HIGHESTMODSEQ grows with every change; FETCH MODSEQ enables CONDSTORE', async () => {
  const c = await login();
  await box(c, 'Cs1', 3);
  const s1 = await c.command('STATUS Cs1 (HIGHESTMODSEQ MESSAGES)');
  const m1 = Number(/HIGHESTMODSEQ (\d+)/.exec(s1.untagged[0])![1]);
  assert.ok(m1 > 0);
  await c.command('SELECT Cs1');
  const st = await c.command('STORE 2 +FLAGS (\\Flagged)');
  assert.match(st.untagged[0], /^\* 2 FETCH \(UID 2 FLAGS \(\\Flagged( \\Recent)?\) MODSEQ \((\d+)\)\)$/, 'CONDSTORE on (STATUS HIGHESTMODSEQ enabled it)');
  assert.ok(modseqOf(st.untagged[0]) > m1);
  const f = await c.command('FETCH 1:3 (MODSEQ)');
  assert.equal(f.untagged.length, 3);
  assert.equal(modseqOf(f.untagged[1]), modseqOf(st.untagged[0]));
  assert.ok(modseqOf(f.untagged[0]) < modseqOf(f.untagged[1]));
  await c.close();
});

test('first CONDSTORE enabling command in a selected mailbox announces HIGHESTMODSEQ', async () => {
  const c = await login();
  await box(c, 'Cs2', 2);
  const sel = await c.command('SELECT Cs2');
  assert.ok(!sel.untagged.some((l) => l.includes('HIGHESTMODSEQ')), 'no HIGHESTMODSEQ before CONDSTORE is enabled');
  const f = await c.command('FETCH 1 (MODSEQ)');
  assert.match(f.untagged[0], /^\* OK \[HIGHESTMODSEQ \d+\]/);
  assert.match(f.untagged[1], /^\* 1 FETCH \(MODSEQ \(\d+\)\)$/);
  await c.close();
});

test('FETCH CHANGEDSINCE returns only changed messages, with MODSEQ', async () => {
  const c = await login();
  await box(c, 'Cs3', 5);
  await c.command('ENABLE CONDSTORE');
  const sel = await c.command('SELECT Cs3');
  const hms = Number(/HIGHESTMODSEQ (\d+)/.exec(sel.untagged.find((l) => l.includes('HIGHESTMODSEQ'))!)![1]);
  const other = await login();
  await other.command('SELECT Cs3');
  await other.command('STORE 2,4 +FLAGS (\\Seen)');
  const r = await c.command(`UID FETCH 1:* (FLAGS) (CHANGEDSINCE ${hms})`);
  const fetches = r.untagged.filter((l) => / FETCH /.test(l));
  // The other session's changes may also arrive as unsolicited FETCH lines; only 2 and 4 ever appear.
  assert.deepEqual([...new Set(fetches.map((l) => /UID (\d+)/.exec(l)![1]))], ['2', '4']);
  const none = await c.command(`UID FETCH 1:* (FLAGS) (CHANGEDSINCE ${hms + 1000})`);
  assert.equal(none.untagged.filter((l) => / FETCH /.test(l)).length, 0);
  for (const l of fetches) assert.match(l, /MODSEQ \(\d+\)/);
  await c.close();
  await other.close();
});

test('STORE UNCHANGEDSINCE: MODIFIED for messages changed since, MODSEQ even with .SILENT', async () => {
  const c = await login();
  await box(c, 'Cs4', 3);
  await c.command('SELECT Cs4');
  const f = await c.command('FETCH 1:3 (MODSEQ)');
  const m = f.untagged.filter((l) => / FETCH /.test(l)).map(modseqOf);
  const other = await login();
  await other.command('SELECT Cs4');
  await other.command('STORE 2 +FLAGS (\\Answered)');
  const since = Math.max(...m);
  const r = await c.command(`STORE 1:3 (UNCHANGEDSINCE ${since}) +FLAGS.SILENT (\\Deleted)`);
  assert.match(r.tagged, /OK \[MODIFIED 2\]/);
  const fetches = r.untagged.filter((l) => /^\* [13] FETCH \(UID \d+ MODSEQ \(\d+\)\)$/.test(l));
  assert.equal(fetches.length, 2, r.raw);
  const check = await c.command('FETCH 1:3 (FLAGS)');
  assert.match(check.untagged.find((l) => l.startsWith('* 2 FETCH'))!, /FLAGS \(\\Answered( \\Recent)?\)/);
  assert.match(check.untagged.find((l) => l.startsWith('* 1 FETCH'))!, /\\Deleted/);
  await c.close();
  await other.close();
});

test('SEARCH MODSEQ returns the highest mod-sequence of the result', async () => {
  const c = await login();
  await box(c, 'Cs5', 4);
  await c.command('SELECT Cs5');
  const f = await c.command('FETCH 4 (MODSEQ)');
  const m4 = modseqOf(f.untagged.find((l) => / FETCH /.test(l))!);
  const st = await c.command('STORE 1 +FLAGS (\\Flagged)');
  const m1 = modseqOf(st.untagged[0]);
  const r = await c.command(`SEARCH MODSEQ ${m4}`);
  assert.equal(r.untagged[0], `* SEARCH 1 4 (MODSEQ ${m1})`);
  const e = await c.command(`UID SEARCH RETURN (ALL) MODSEQ "/flags/\\\\flagged" all ${m1}`);
  assert.match(e.untagged[0], new RegExp(`^\\* ESEARCH \\(TAG "t\\d+"\\) UID ALL 1 MODSEQ ${m1}$`));
  await c.close();
});

test('QRESYNC: VANISHED instead of EXPUNGE, HIGHESTMODSEQ in the tagged OK, UID FETCH VANISHED', async () => {
  const c = await login();
  await box(c, 'Qr1', 5);
  await c.command('ENABLE QRESYNC');
  const sel = await c.command('SELECT Qr1');
  const hms = Number(/HIGHESTMODSEQ (\d+)/.exec(sel.untagged.find((l) => l.includes('HIGHESTMODSEQ'))!)![1]);
  await c.command('STORE 2,3 +FLAGS.SILENT (\\Deleted)');
  const ex = await c.command('EXPUNGE');
  assert.deepEqual(ex.untagged, ['* VANISHED 2:3']);
  assert.match(ex.tagged, /OK \[HIGHESTMODSEQ \d+\]/);
  // Another session expunges: this one hears VANISHED at its next command.
  const other = await login();
  await other.command('SELECT Qr1');
  await other.command('UID STORE 5 +FLAGS.SILENT (\\Deleted)');
  await other.command('EXPUNGE');
  const noop = await c.command('NOOP');
  assert.ok(noop.untagged.includes('* VANISHED 5'), noop.raw);
  const v = await c.command(`UID FETCH 1:10 (FLAGS) (CHANGEDSINCE ${hms} VANISHED)`);
  assert.equal(v.untagged[0], '* VANISHED (EARLIER) 2:3,5');
  assert.match((await c.command('FETCH 1 (FLAGS) (CHANGEDSINCE 1 VANISHED)')).tagged, /BAD/);
  await c.close();
  await other.close();
});

test('SELECT (QRESYNC ...) reports VANISHED (EARLIER) and changed flags since the client\'s modseq', async () => {
  const c = await login();
  await box(c, 'Qr3', 6);
  await c.command('ENABLE QRESYNC');
  const sel = await c.command('SELECT Qr3');
  const uidv = Number(/UIDVALIDITY (\d+)/.exec(sel.untagged.find((l) => l.includes('UIDVALIDITY'))!)![1]);
  const hms = Number(/HIGHESTMODSEQ (\d+)/.exec(sel.untagged.find((l) => l.includes('HIGHESTMODSEQ'))!)![1]);
  await c.command('UNSELECT');
  // While "offline": another client flags 4 and expunges 2 and 5.
  const other = await login();
  await other.command('SELECT Qr3');
  await other.command('UID STORE 4 +FLAGS (\\Flagged)');
  await other.command('UID STORE 2,5 +FLAGS (\\Deleted)');
  await other.command('EXPUNGE');
  await other.close();
  const r = await c.command(`SELECT Qr3 (QRESYNC (${uidv} ${hms} 1:6))`);
  const i = r.untagged.indexOf('* VANISHED (EARLIER) 2,5');
  assert.ok(i >= 0, r.raw);
  const f = r.untagged.findIndex((l) => /^\* 3 FETCH \(UID 4 FLAGS \(\\Flagged\) MODSEQ \(\d+\)\)$/.test(l));
  assert.ok(f > i, 'FETCH after VANISHED: ' + r.raw);
  assert.match(r.untagged.join('\n'), /\* 4 EXISTS/);
  assert.match(r.tagged, /OK \[READ-WRITE\]/);
  // A wrong UIDVALIDITY: the rest of the parameter is ignored.
  const w = await c.command(`SELECT Qr3 (QRESYNC (${uidv + 1} ${hms} 1:6))`);
  assert.ok(!w.untagged.some((l) => l.startsWith('* VANISHED')));
  assert.ok(w.untagged.includes('* OK [CLOSED] Previous mailbox closed'));
  // Sequence match data: the client's 3rd message is UID 4, so nothing at or below 4 is reported.
  const sm = await c.command(`SELECT Qr3 (QRESYNC (${uidv} ${hms} 1:6 (1,3 1,4)))`);
  assert.ok(sm.untagged.includes('* VANISHED (EARLIER) 5'), sm.raw);
  await c.close();
});

test('SELECT QRESYNC needs ENABLE QRESYNC; SELECT (CONDSTORE) enables CONDSTORE', async () => {
  const c = await login();
  await box(c, 'Qr4', 1);
  assert.match((await c.command('SELECT Qr4 (QRESYNC (1 1))')).tagged, /BAD/);
  const r = await c.command('SELECT Qr4 (CONDSTORE)');
  assert.ok(r.untagged.some((l) => /^\* OK \[HIGHESTMODSEQ \d+\]/.test(l)), r.raw);
  assert.match((await c.command('SELECT Qr4 (FOO)')).tagged, /BAD/);
  await c.close();
});

test('VANISHED modifier needs ENABLE QRESYNC and CHANGEDSINCE', async () => {
  const c = await login();
  await box(c, 'Qr2', 1);
  await c.command('SELECT Qr2');
  assert.match((await c.command('UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)')).tagged, /BAD/);
  await c.close();
});
