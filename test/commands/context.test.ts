// Search contexts (RFC 5267 §4): RETURN (UPDATE) on SEARCH and SORT, the
// ADDTO / REMOVEFROM a session receives as a second session changes the
// mailbox (REMOVEFROM before EXPUNGE, ADDTO after EXISTS), positions in
// sorted contexts, tag reuse, CANCELUPDATE, the NOUPDATE limit, IDLE pushes,
// and CONTEXT / PARTIAL return options.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient } from '../helpers/imap.js';
import { MAX_UPDATE_CONTEXTS } from '../../src/commands/context.js';

let srv: TestServer;
const login = ['alice', 'secret-a'] as [string, string];
let boxN = 0;

before(async () => {
  srv = await startTestServer();
});
after(async () => {
  await srv.stop();
});

/** A fresh mailbox with messages of these subjects (UIDs 1..n), selected by two sessions. */
async function setup(subjects: string[]): Promise<{ a: RawClient; b: RawClient; box: string }> {
  const box = `C${++boxN}`;
  const a = await RawClient.connect(srv.port, { login });
  await a.command(`CREATE ${box}`);
  for (const s of subjects) await a.append(box, `Subject: ${s}\r\nDate: 1 Jan 2024 00:00:00 +0000\r\n\r\nx\r\n`);
  await a.command(`SELECT ${box}`);
  const b = await RawClient.connect(srv.port, { login });
  await b.command(`SELECT ${box}`);
  return { a, b, box };
}

const esearch = (lines: string[]) => lines.filter((l) => l.startsWith('* ESEARCH')).map((l) => l.replace(/\(TAG "[^"]*"\)/, '(TAG *)'));

test('UID SEARCH RETURN (UPDATE COUNT): ADDTO and REMOVEFROM as another session flags, appends and expunges', async () => {
  const { a, b, box } = await setup(['m1', 'm2', 'm3', 'm4']);
  await b.command('STORE 2 +FLAGS (\\Flagged)');
  await a.command('NOOP');
  const r = await a.command('UID SEARCH RETURN (UPDATE COUNT) FLAGGED', 'S1');
  assert.deepEqual(esearch(r.untagged), ['* ESEARCH (TAG *) UID COUNT 1']);
  assert.match(r.tagged, /^S1 OK/);
  await b.command('STORE 3:4 +FLAGS (\\Flagged)');
  let n = await a.command('NOOP');
  assert.deepEqual(esearch(n.untagged), ['* ESEARCH (TAG *) UID ADDTO (0 3:4)']);
  // ADDTO for a new message comes after its EXISTS.
  await b.append(box, 'Subject: m5\r\n\r\nx\r\n', '(\\Flagged)');
  n = await a.command('NOOP');
  const exists = n.untagged.findIndex((l) => / EXISTS$/.test(l));
  const add = n.untagged.findIndex((l) => /ADDTO \(0 5\)/.test(l));
  assert.ok(exists >= 0 && add > exists, n.raw);
  await b.command('STORE 3 -FLAGS (\\Flagged)');
  n = await a.command('NOOP');
  assert.deepEqual(esearch(n.untagged), ['* ESEARCH (TAG *) UID REMOVEFROM (0 3)']);
  // Messages that do not match change nothing.
  await b.command('STORE 1 +FLAGS (\\Seen)');
  n = await a.command('NOOP');
  assert.deepEqual(esearch(n.untagged), []);
  // An expunged match: REMOVEFROM before the EXPUNGE.
  await b.command('STORE 4 +FLAGS (\\Deleted)');
  await b.command('EXPUNGE');
  n = await a.command('NOOP');
  const rem = n.untagged.findIndex((l) => /REMOVEFROM \(0 4\)/.test(l));
  const exp = n.untagged.findIndex((l) => /^\* 4 EXPUNGE$/.test(l));
  assert.ok(rem >= 0 && exp > rem, n.raw);
  await a.close();
  await b.close();
});

test('SEARCH (sequence numbers): REMOVEFROM names the number the expunge is about to free', async () => {
  const { a, b } = await setup(['m1', 'm2', 'm3']);
  await a.command('STORE 1:3 +FLAGS (\\Flagged)');
  const r = await a.command('SEARCH RETURN (UPDATE ALL) FLAGGED', 'Q1');
  assert.deepEqual(esearch(r.untagged), ['* ESEARCH (TAG *) ALL 1:3']);
  await b.command('STORE 2 +FLAGS (\\Deleted)');
  await b.command('EXPUNGE');
  const n = await a.command('NOOP');
  const i = n.untagged.indexOf('* ESEARCH (TAG "Q1") REMOVEFROM (0 2)');
  assert.ok(i >= 0 && n.untagged.indexOf('* 2 EXPUNGE') > i, n.raw);
  // After the expunge, numbers have shifted: flagging the (new) message 2 again is an ADDTO of nothing new.
  await b.append(`C${boxN}`, 'Subject: m4\r\n\r\nx\r\n', '(\\Flagged)');
  const m = await a.command('NOOP');
  assert.ok(m.untagged.includes('* ESEARCH (TAG "Q1") ADDTO (0 3)'), m.raw);
  await a.close();
  await b.close();
});

test('UID SORT RETURN (UPDATE): additions and removals at their positions in the sorted result', async () => {
  const { a, b, box } = await setup(['b', 'd', 'f', 'h']);
  await a.command('STORE 1:4 +FLAGS (\\Flagged)');
  const r = await a.command('UID SORT RETURN (UPDATE ALL) (SUBJECT) UTF-8 FLAGGED', 'T1');
  assert.deepEqual(esearch(r.untagged), ['* ESEARCH (TAG *) UID ALL 1:4']);
  await b.append(box, 'Subject: a\r\n\r\nx\r\n', '(\\Flagged)'); // uid 5, first
  await b.append(box, 'Subject: e\r\n\r\nx\r\n', '(\\Flagged)'); // uid 6, between d and f
  await b.append(box, 'Subject: z\r\n\r\nx\r\n'); // uid 7, not flagged
  let n = await a.command('NOOP');
  assert.deepEqual(esearch(n.untagged), ['* ESEARCH (TAG *) UID ADDTO (1 5 4 6)']);
  // Result now a(5) b(1) d(2) e(6) f(3) h(4); drop d and e (consecutive) and h.
  await b.command('UID STORE 2,6,4 -FLAGS (\\Flagged)');
  n = await a.command('NOOP');
  assert.deepEqual(esearch(n.untagged), ['* ESEARCH (TAG *) UID REMOVEFROM (3 2,6 4 4)']);
  // Both in one response, removals first.
  await b.command('UID STORE 5 -FLAGS (\\Flagged)');
  await b.command('UID STORE 7 +FLAGS (\\Flagged)');
  n = await a.command('NOOP');
  assert.deepEqual(esearch(n.untagged), ['* ESEARCH (TAG *) UID REMOVEFROM (1 5) ADDTO (3 7)']);
  await a.close();
  await b.close();
});

test('tag reuse is BAD; CANCELUPDATE stops updates; unknown tags answer NO; unselecting ends contexts', async () => {
  const { a, b } = await setup(['m1', 'm2']);
  assert.match((await a.command('UID SEARCH RETURN (UPDATE) UNSEEN', 'R1')).tagged, /^R1 OK/);
  assert.match((await a.command('UID SORT RETURN (UPDATE) (DATE) UTF-8 ALL', 'R1')).tagged, /^R1 BAD/);
  // Reusing a tag without UPDATE is fine.
  assert.match((await a.command('UID SEARCH ALL', 'R1')).tagged, /^R1 OK/);
  await b.command('STORE 1 +FLAGS (\\Seen)');
  let n = await a.command('NOOP');
  assert.deepEqual(esearch(n.untagged), ['* ESEARCH (TAG *) UID REMOVEFROM (0 1)']);
  assert.match((await a.command('CANCELUPDATE "R1"')).tagged, /OK/);
  await b.command('STORE 2 +FLAGS (\\Seen)');
  n = await a.command('NOOP');
  assert.deepEqual(esearch(n.untagged), []);
  assert.match((await a.command('CANCELUPDATE "R1"')).tagged, /NO/);
  assert.match((await a.command('CANCELUPDATE')).tagged, /BAD/);
  // A new SELECT ends every context.
  assert.match((await a.command('UID SEARCH RETURN (UPDATE) SEEN', 'R2')).tagged, /OK/);
  await a.command(`SELECT C${boxN}`);
  assert.match((await a.command('CANCELUPDATE "R2"')).tagged, /NO/);
  await a.close();
  await b.close();
});

test(`at most ${MAX_UPDATE_CONTEXTS} contexts: the next is answered with an untagged NO [NOUPDATE] and still completes`, async () => {
  const { a, b } = await setup(['m1']);
  for (let i = 0; i < MAX_UPDATE_CONTEXTS; i++) assert.match((await a.command(`UID SEARCH RETURN (UPDATE) ALL`, `L${i}`)).tagged, /OK/);
  const r = await a.command('UID SEARCH RETURN (UPDATE COUNT) ALL', 'LX');
  assert.ok(r.untagged.includes('* NO [NOUPDATE "LX"] Too many search contexts'), r.raw);
  assert.deepEqual(esearch(r.untagged), ['* ESEARCH (TAG *) UID COUNT 1']);
  assert.match(r.tagged, /^LX OK/);
  // A program the index cannot answer (MODSEQ) is refused updates too.
  await a.command('CANCELUPDATE "L0"');
  const m = await a.command('UID SEARCH RETURN (UPDATE) MODSEQ 1', 'LM');
  assert.ok(m.untagged.includes('* NO [NOUPDATE "LM"] Updates are not available for this search'), m.raw);
  await a.close();
  await b.close();
});

test('updates are pushed during IDLE', async () => {
  const { a, b } = await setup(['m1', 'm2']);
  await a.command('UID SEARCH RETURN (UPDATE) FLAGGED', 'I1');
  a.write('I2 IDLE\r\n');
  assert.match(await a.readLine(), /^\+ /);
  await b.command('STORE 2 +FLAGS (\\Flagged)');
  const lines = await a.readUntil((l) => l.startsWith('* ESEARCH'));
  assert.equal(lines[lines.length - 1], '* ESEARCH (TAG "I1") UID ADDTO (0 2)');
  a.write('DONE\r\n');
  await a.readUntil((l) => l.startsWith('I2 '));
  await a.close();
  await b.close();
});

test('capabilities CONTEXT=SEARCH and CONTEXT=SORT; RETURN (CONTEXT ...) is a hint', async () => {
  const { a, b } = await setup(['m1', 'm2']);
  const caps = (await a.command('CAPABILITY')).untagged[0]!.split(' ');
  assert.ok(caps.includes('CONTEXT=SEARCH') && caps.includes('CONTEXT=SORT'));
  assert.deepEqual(esearch((await a.command('SEARCH RETURN (CONTEXT COUNT) ALL')).untagged), ['* ESEARCH (TAG *) COUNT 2']);
  assert.deepEqual(esearch((await a.command('SEARCH RETURN (CONTEXT) ALL')).untagged), ['* ESEARCH (TAG *) ALL 1:2']);
  assert.deepEqual(esearch((await a.command('SORT RETURN (CONTEXT PARTIAL 2:2) (SUBJECT) UTF-8 ALL')).untagged), ['* ESEARCH (TAG *) PARTIAL (2:2 2)']);
  await a.close();
  await b.close();
});
