// Multi-connection transcripts (STYLE.md habit 11): two or three sessions on
// one mailbox, checking what each one is told and when (RFC 9051 §7.5.1,
// RFC 2180 §4), and that sequence numbers stay consistent per session.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient, message, type Reply } from '../helpers/imap.js';

let srv: TestServer;
const login = ['alice', 'secret-a'] as [string, string];
before(async () => { srv = await startTestServer(); });
after(async () => { await srv.stop(); });

let boxNo = 0;
async function sessions(count: number, messages: number, rev2 = true): Promise<{ cs: RawClient[]; box: string }> {
  const box = `Multi${++boxNo}`;
  const cs: RawClient[] = [];
  for (let i = 0; i < count; i++) {
    const c = await RawClient.connect(srv.port, { login });
    if (rev2) await c.command('ENABLE IMAP4rev2');
    cs.push(c);
  }
  await cs[0].command(`CREATE ${box}`);
  for (let i = 1; i <= messages; i++) await cs[0].append(box, message(i));
  for (const c of cs) await c.command(`SELECT ${box}`);
  return { cs, box };
}

test('append by another session: EXISTS at the next command; unannounced numbers are BAD', async () => {
  const { cs: [a, b], box } = await sessions(2, 2);
  await b.append(box, message(3));
  // Until EXISTS is sent, message 3 does not exist for this client (Dovecot answers the same).
  const early = await a.command('FETCH 3 UID', 'a0');
  assert.match(early.tagged, /^a0 BAD /);
  const r = await a.command('FETCH 2 UID', 'a1');
  // EXISTS may be sent during FETCH.
  assert.deepEqual(r.untagged, ['* 2 FETCH (UID 2)', '* 3 EXISTS']);
  const f = await a.command('FETCH 3 (UID BODY.PEEK[HEADER.FIELDS (Subject)])', 'a1b');
  assert.deepEqual(f.untagged, ['* 3 FETCH (UID 3 BODY[HEADER.FIELDS (Subject)] {22}\r\nSubject: Message 3\r\n\r\n)']);
  await b.append(box, message(4));
  await b.append(box, message(5));
  const n = await a.command('NOOP', 'a2');
  assert.deepEqual(n.untagged, ['* 5 EXISTS']);
  for (const c of [a, b]) await c.close();
});

test('expunge by another session: held back during FETCH/STORE/SEARCH, sent at NOOP', async () => {
  const { cs: [a, b] } = await sessions(2, 5);
  await b.command('STORE 2,4 +FLAGS.SILENT (\\Deleted)');
  assert.deepEqual((await b.command('EXPUNGE')).untagged, ['* 4 EXPUNGE', '* 2 EXPUNGE']);
  // a still counts 5 messages; sequence 4 is still UID 4 for it.
  const f = await a.command('FETCH 5 (UID FLAGS)', 'f1');
  assert.deepEqual(f.untagged, ['* 5 FETCH (UID 5 FLAGS ())']);
  assert.equal(f.tagged, 'f1 OK FETCH completed');
  const s = await a.command('STORE 5 +FLAGS (\\Seen)', 'f2');
  assert.deepEqual(s.untagged, ['* 5 FETCH (FLAGS (\\Seen))']);
  const se = await a.command('SEARCH 5', 'f3');
  assert.deepEqual(se.untagged, ['* ESEARCH (TAG "f3") ALL 5']);
  // FETCH of the expunged message itself: NO [EXPUNGEISSUED] (or its own old data), never another message's data.
  const gone = await a.command('FETCH 4 (UID BODY.PEEK[HEADER.FIELDS (Subject)])', 'f4');
  for (const l of gone.untagged) assert.equal(l, '* 4 FETCH (UID 4 BODY[HEADER.FIELDS (Subject)] {22}\r\nSubject: Message 4\r\n\r\n)');
  assert.match(gone.tagged, /^f4 (OK|NO \[EXPUNGEISSUED\]) /);
  const mixed = await a.command('FETCH 3:5 UID', 'f5');
  assert.ok(mixed.untagged.includes('* 3 FETCH (UID 3)') && mixed.untagged.includes('* 5 FETCH (UID 5)'), mixed.raw);
  for (const l of mixed.untagged) assert.match(l, /^\* (3 FETCH \(UID 3\)|4 FETCH \(UID 4\)|5 FETCH \(UID 5\))$/);
  // STORE on an expunged message: nothing stored for it.
  const st = await a.command('STORE 2 +FLAGS (\\Flagged)', 'f6');
  assert.deepEqual(st.untagged, []);
  assert.match(st.tagged, /^f6 (OK|NO \[EXPUNGEISSUED\]) /);
  // Now the announcement, in descending order so each number is valid when sent.
  const n = await a.command('NOOP', 'f7');
  assert.deepEqual(n.untagged, ['* 4 EXPUNGE', '* 2 EXPUNGE']);
  assert.deepEqual((await a.command('FETCH 1:* UID', 'f8')).untagged, ['* 1 FETCH (UID 1)', '* 2 FETCH (UID 3)', '* 3 FETCH (UID 5)']);
  for (const c of [a, b]) await c.close();
});

test('flag change by another session: untagged FETCH FLAGS, also during FETCH', async () => {
  const { cs: [a, b] } = await sessions(2, 3);
  await b.command('STORE 2 +FLAGS.SILENT (\\Answered)');
  const r = await a.command('FETCH 1 FLAGS', 'x1');
  assert.deepEqual(r.untagged.slice().sort(), ['* 1 FETCH (FLAGS ())', '* 2 FETCH (UID 2 FLAGS (\\Answered))'].sort());
  // Flags of a message that is then expunged are not reported; the EXPUNGE is.
  await b.command('STORE 3 +FLAGS.SILENT (\\Deleted)');
  await b.command('EXPUNGE');
  assert.deepEqual((await a.command('NOOP', 'x2')).untagged, ['* 3 EXPUNGE']);
  for (const c of [a, b]) await c.close();
});

test('three sessions: append, expunge and append again interleaved; each keeps its own numbering', async () => {
  const { cs: [a, b, c], box } = await sessions(3, 3);
  await a.append(box, message(4)); // uid 4
  await b.command('STORE 1 +FLAGS.SILENT (\\Deleted)');
  await b.command('EXPUNGE'); // uid 1 gone
  await b.append(box, message(5)); // uid 5
  await a.command('UID STORE 3 +FLAGS.SILENT (\\Deleted)');
  await a.command('UID EXPUNGE 3'); // uid 3 gone
  // c saw nothing yet: its numbering is the old one (3 messages); sequence 2 is still UID 2.
  const f = await c.command('FETCH 2 UID', 'c1');
  assert.deepEqual(f.untagged.filter((l) => / FETCH /.test(l)), ['* 2 FETCH (UID 2)']);
  const n = await c.command('NOOP', 'c2');
  // Whatever c is told must bring it to UIDs 2,4,5 with valid numbers at each step.
  const model = [1, 2, 3];
  applyUpdates(model, f);
  applyUpdates(model, n);
  const all = await c.command('UID FETCH 1:* UID', 'c3');
  applyUpdates(model, all);
  assert.deepEqual(model, [2, 4, 5]);
  assert.deepEqual(all.untagged.filter((l) => / FETCH /.test(l)), ['* 1 FETCH (UID 2)', '* 2 FETCH (UID 4)', '* 3 FETCH (UID 5)']);
  for (const x of [a, b, c]) await x.close();
});

/** Apply EXPUNGE/EXISTS/FETCH UID responses to a client-side seq -> UID model, checking each as it comes. */
function applyUpdates(model: number[], r: Reply): void {
  for (const l of r.untagged) {
    let m = /^\* (\d+) EXPUNGE$/.exec(l);
    if (m) {
      const seq = Number(m[1]);
      assert.ok(seq >= 1 && seq <= model.length, `EXPUNGE ${seq} with ${model.length} messages`);
      model.splice(seq - 1, 1);
      continue;
    }
    m = /^\* (\d+) EXISTS$/.exec(l);
    if (m) {
      const count = Number(m[1]);
      assert.ok(count >= model.length, `EXISTS ${count} shrinks from ${model.length}`);
      while (model.length < count) model.push(0);
      continue;
    }
    m = /^\* (\d+) FETCH \(.*UID (\d+)/.exec(l);
    if (m) {
      const seq = Number(m[1]);
      const uid = Number(m[2]);
      assert.ok(seq >= 1 && seq <= model.length, `FETCH ${seq} with ${model.length} messages`);
      if (model[seq - 1] === 0) model[seq - 1] = uid;
      assert.equal(model[seq - 1], uid, `sequence ${seq} is UID ${model[seq - 1]}, server says ${uid}`);
    }
  }
}

test('randomised interleaving over three sessions keeps every session consistent', async () => {
  const { cs, box } = await sessions(3, 6, false);
  const models = cs.map(() => [1, 2, 3, 4, 5, 6]);
  const subjects = new Map<number, string>([1, 2, 3, 4, 5, 6].map((i) => [i, `Message ${i}`]));
  let seed = 12345;
  const rnd = (k: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % k;
  };
  let next = 100;
  for (let step = 0; step < 80; step++) {
    const i = rnd(3);
    const c = cs[i];
    const model = models[i];
    const op = rnd(6);
    let r: Reply;
    if (op === 0) {
      const k = next++;
      r = await c.append(box, message(k));
      const uid = Number(/APPENDUID \d+ (\d+)/.exec(r.tagged)![1]);
      subjects.set(uid, `Message ${k}`);
    } else if (op === 1 && model.length > 0) {
      const seq = 1 + rnd(model.length);
      r = await c.command(`STORE ${seq} +FLAGS.SILENT (\\Deleted)`);
    } else if (op === 2) {
      r = await c.command('EXPUNGE');
    } else if (op === 3 && model.length > 0) {
      // FETCH by sequence number: the data must belong to the UID the client believes is there.
      const seq = 1 + rnd(model.length);
      r = await c.command(`FETCH ${seq} (UID BODY.PEEK[HEADER.FIELDS (Subject)])`);
      for (const l of r.untagged) {
        const m = /^\* (\d+) FETCH \(UID (\d+) BODY\[HEADER\.FIELDS \(Subject\)\] \{\d+\}\r\nSubject: (Message \d+)\r\n/.exec(l);
        if (m) assert.equal(m[3], subjects.get(Number(m[2])), `step ${step}: data of UID ${m[2]}`);
      }
      assert.match(r.tagged, / (OK|NO \[EXPUNGEISSUED\]) /);
    } else if (op === 4) {
      r = await c.command('NOOP');
    } else {
      r = await c.command('UID FETCH 1:* UID');
    }
    applyUpdates(model, r);
    assert.doesNotMatch(r.tagged, / BAD /, `step ${step}: ${r.tagged}`);
  }
  // Finally everyone catches up and agrees with the store.
  const truth = (await cs[0].command('UID SEARCH ALL')).untagged.find((l) => l.startsWith('* SEARCH'))!;
  for (let i = 0; i < cs.length; i++) {
    applyUpdates(models[i], await cs[i].command('NOOP'));
    const r = await cs[i].command('FETCH 1:* UID');
    applyUpdates(models[i], r);
    assert.equal(`* SEARCH${models[i].map((u) => ` ${u}`).join('')}`, truth, `session ${i}`);
  }
  for (const c of cs) await c.close();
});
