// THREAD algorithms (src/search/thread.ts) on hand-made inputs: every step of
// RFC 5256 §4 REFERENCES (links from References, In-Reply-To fallback,
// truncated chains, dummies and their pruning, loops, duplicate and missing
// Message-IDs, subject merging), ORDEREDSUBJECT, Dovecot's REFS order, the
// THREAD response syntax (§5), and a 100k-message run that yields.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatThreads, threadMessages, type ThreadAlgorithm } from '../../src/search/thread.js';
import type { ThreadRow } from '../../src/store/types.js';

interface M {
  id?: string | null;
  refs?: string[];
  irt?: string;
  subject?: string;
  reply?: boolean;
  date?: number;
}

function rows(ms: M[]): ThreadRow[] {
  return ms.map((m, i) => ({
    uid: i + 1,
    date: m.date ?? i * 1000,
    subject: m.subject ?? `S${i + 1}`,
    isReply: m.reply ?? false,
    messageId: m.id === undefined ? `id${i + 1}` : m.id,
    references: m.refs ?? [],
    inReplyTo: m.irt ?? null,
  }));
}

async function thread(alg: ThreadAlgorithm, ms: M[]): Promise<string> {
  const r = rows(ms);
  return formatThreads(await threadMessages(alg, r), (u) => u);
}

test('REFERENCES: a chain, siblings, and the response syntax', async () => {
  assert.equal(await thread('REFERENCES', [{}, { refs: ['id1'] }, { refs: ['id1', 'id2'] }]), '(1 2 3)');
  assert.equal(await thread('REFERENCES', [{}, { refs: ['id1'] }, { refs: ['id1'] }]), '(1 (2)(3))');
  assert.equal(await thread('REFERENCES', [{}, { refs: ['id1'] }, { refs: ['id1'] }, { refs: ['id1', 'id2'] }]), '(1 (2 4)(3))');
  assert.equal(await thread('REFERENCES', [{}, {}]), '(1)(2)');
  assert.equal(await thread('REFERENCES', []), '');
});

test('REFERENCES: In-Reply-To is used only without usable References', async () => {
  assert.equal(await thread('REFERENCES', [{}, { irt: 'id1' }]), '(1 2)');
  assert.equal(await thread('REFERENCES', [{}, {}, { refs: ['id2'], irt: 'id1' }]), '(1)(2 3)');
});

test('REFERENCES: missing ancestors become dummies, pruned (step 3)', async () => {
  // 2 and 3 reply to an unseen message: a dummy at the root holds them.
  assert.equal(await thread('REFERENCES', [{}, { refs: ['gone'] }, { refs: ['gone'] }]), '(1)((2)(3))');
  // One child of a dummy at the root is promoted in its place.
  assert.equal(await thread('REFERENCES', [{ refs: ['gone'] }, {}]), '(1)(2)');
  // A dummy below the root gives its children to its parent.
  assert.equal(await thread('REFERENCES', [{}, { refs: ['id1', 'gone'] }, { refs: ['id1', 'gone'] }]), '(1 (2)(3))');
});

test('REFERENCES: a truncated chain does not override an existing link, but the last reference does (step 1.A/1.B)', async () => {
  // 3 says id1 -> id2 -> 3; 4 (truncated) says id2 directly, keeping id2 under id1.
  assert.equal(await thread('REFERENCES', [{}, { refs: ['id1'] }, { refs: ['id1', 'id2'] }, { refs: ['id2'] }]), '(1 2 (3)(4))');
  // A later message's chain places an earlier root under its parent (2 has no References of its own).
  assert.equal(await thread('REFERENCES', [{}, { id: 'x' }, { refs: ['id1', 'x'] }]), '(1 2 3)');
  // ...but never a message that already has a parent: 3 keeps 2 as its parent, though 4 says id1 -> 3.
  assert.equal(await thread('REFERENCES', [{}, {}, { refs: ['id2'] }, { refs: ['id1', 'id3'] }]), '(1)(2 3 4)');
});

test('REFERENCES: loops are never made; duplicate and missing Message-IDs get unique ids', async () => {
  // 1 claims 2 as its parent and 2 claims 1: the second link would loop.
  assert.equal(await thread('REFERENCES', [{ refs: ['id2'] }, { refs: ['id1'] }]), '(2 1)');
  // A message referencing itself.
  assert.equal(await thread('REFERENCES', [{ refs: ['id1'] }]), '(1)');
  // Two messages with one id: the first owns it; replies go to the first.
  assert.equal(await thread('REFERENCES', [{ id: 'x' }, { id: 'x' }, { refs: ['x'] }]), '(1 3)(2)');
  // No Message-ID at all.
  assert.equal(await thread('REFERENCES', [{ id: null }, { id: null, refs: ['id1'] }]), '(1)(2)');
  // Dovecot's case: c refers to itself last, so it leaves the parent its chain gave it.
  assert.equal(await thread('REFERENCES', [{ id: 'p' }, { id: 'c', refs: ['p', 'c'] }, { id: 'p', refs: ['c'] }]), '(1)(2 3)');
});

test('REFERENCES: threads with one base subject are gathered (step 5)', async () => {
  // A reply without references joins the non-reply with its subject.
  assert.equal(await thread('REFERENCES', [{ subject: 'A' }, { subject: 'A', reply: true }]), '(1 2)');
  // Two non-replies with one subject: a new dummy holds both.
  assert.equal(await thread('REFERENCES', [{ subject: 'A' }, { subject: 'A' }]), '((1)(2))');
  // An earlier reply joins a later non-reply: the non-reply takes the subject table's place.
  assert.equal(await thread('REFERENCES', [{ subject: 'A', reply: true }, { subject: 'A' }]), '(2 1)');
  // Two replies: a dummy holds both.
  assert.equal(await thread('REFERENCES', [{ subject: 'A', reply: true }, { subject: 'A', reply: true }]), '((1)(2))');
  // Empty subjects are never gathered.
  assert.equal(await thread('REFERENCES', [{ subject: '' }, { subject: '' }]), '(1)(2)');
  // A dummy thread and a message: the message joins the dummy's children.
  assert.equal(await thread('REFERENCES', [{ subject: 'B', refs: ['gone'] }, { subject: 'B', refs: ['gone'] }, { subject: 'B', reply: true }]), '((1)(2)(3))');
  // Not for REFS.
  assert.equal(await thread('REFS', [{ subject: 'A' }, { subject: 'A', reply: true }]), '(1)(2)');
});

test('REFERENCES: siblings and threads by sent date, ties by sequence (steps 4, 6)', async () => {
  assert.equal(await thread('REFERENCES', [{ date: 50 }, { date: 10 }, { date: 10 }]), '(2)(3)(1)');
  assert.equal(await thread('REFERENCES', [{ date: 0 }, { refs: ['id1'], date: 30 }, { refs: ['id1'], date: 20 }]), '(1 (3)(2))');
  // A dummy thread sorts by its first child.
  assert.equal(await thread('REFERENCES', [{ date: 40, subject: 'x' }, { refs: ['gone'], date: 50 }, { refs: ['gone'], date: 30 }]), '((3)(2))(1)');
});

test('REFS: threads ordered by their newest message', async () => {
  // Thread 1 has the newest message (3), so it comes after thread 2.
  assert.equal(await thread('REFS', [{ date: 0 }, { date: 10 }, { refs: ['id1'], date: 20 }]), '(2)(1 3)');
  assert.equal(await thread('REFERENCES', [{ date: 0 }, { date: 10 }, { refs: ['id1'], date: 20 }]), '(1 3)(2)');
});

test('ORDEREDSUBJECT: threads of one base subject, by sent date; no grandchildren', async () => {
  const ms: M[] = [{ subject: 'B', date: 5 }, { subject: 'A', date: 9 }, { subject: 'B', date: 1 }, { subject: 'A', date: 3 }, { subject: 'B', date: 7 }, { subject: 'C', date: 2 }];
  assert.equal(await thread('ORDEREDSUBJECT', ms), '(3 (1)(5))(6)(4 2)');
});

test('100k messages: REFERENCES finishes and hands the event loop back while it runs', async () => {
  const n = 100_000;
  const ms: ThreadRow[] = [];
  for (let i = 0; i < n; i++) {
    const parent = i % 10 === 0 ? null : `m${i - (i % 10)}`;
    ms.push({ uid: i + 1, date: i, subject: `topic ${i % 997}`, isReply: parent !== null, messageId: `m${i}`, references: parent ? [parent] : [], inReplyTo: null });
  }
  let pauses = 0;
  const started = Date.now();
  const out = await threadMessages('REFERENCES', ms, { pause: () => { pauses++; return new Promise((r) => setImmediate(r)); } });
  assert.ok(pauses > 20, `yielded ${pauses} times`);
  assert.ok(out.length > 0 && out.length <= n / 10);
  assert.ok(Date.now() - started < 30_000);
});

test('a very deep chain does not exhaust the stack', async () => {
  const ms: M[] = [{}];
  for (let i = 2; i <= 20_000; i++) ms.push({ refs: [`id${i - 1}`] });
  const text = await thread('REFERENCES', ms);
  assert.ok(text.startsWith('(1 2 3 '));
  assert.ok(text.endsWith(' 20000)'));
});
