// The integer THREAD engine of the thread index (src/store/threading.ts)
// against the reference implementation (src/search/thread.ts, the strings of
// ThreadRow): the same answer for every algorithm on random hostile inputs
// (a small Message-ID space, so duplicates, self-references, loops, broken
// and truncated chains, missing ancestors, dummies that lose their children,
// equal subjects and dates), on the generated thread corpus, and for a
// search-restricted subset. Also the THREAD text of formatForest against
// formatThreads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatForest, formatThreads, threadMessages, type ThreadAlgorithm } from '../../src/search/thread.js';
import { threadIndex, type ThreadInput } from '../../src/store/threading.js';
import type { ThreadRow } from '../../src/store/types.js';
import { prng } from '../helpers/rng.js';

/** What a store's thread index holds for `rows`: ids and subjects interned, in sent-date order. */
export function toInput(rows: readonly ThreadRow[]): { input: ThreadInput; subjectOrder: Uint32Array; subjectUids: number[] } {
  const sorted = [...rows].sort((a, b) => a.date - b.date || a.uid - b.uid);
  const ids = new Map<string, number>();
  const intern = (s: string) => {
    let k = ids.get(s);
    if (k === undefined) ids.set(s, (k = ids.size + 1));
    return k;
  };
  const subjects = new Map<string, number>([['', 0]]);
  const n = sorted.length;
  const input: ThreadInput = {
    count: n,
    uid: new Uint32Array(n),
    self: new Uint32Array(n),
    refStart: new Uint32Array(n + 1),
    refIds: new Uint32Array(sorted.reduce((s, r) => s + Math.max(r.references.length, r.inReplyTo ? 1 : 0), 0)),
    subject: new Uint32Array(n),
    reply: new Uint8Array(n),
  };
  let w = 0;
  sorted.forEach((r, i) => {
    input.uid[i] = r.uid;
    input.self[i] = r.messageId === null ? 0 : intern(r.messageId);
    const list = r.references.length > 0 ? r.references : r.inReplyTo !== null ? [r.inReplyTo] : [];
    for (const x of list) input.refIds[w++] = intern(x);
    input.refStart[i + 1] = w;
    let s = subjects.get(r.subject);
    if (s === undefined) subjects.set(r.subject, (s = subjects.size));
    input.subject[i] = s;
    input.reply[i] = r.isReply ? 1 : 0;
  });
  const order = sorted.map((_, i) => i).sort((a, b) => {
    const sa = sorted[a]!.subject;
    const sb = sorted[b]!.subject;
    return sa < sb ? -1 : sa > sb ? 1 : a - b;
  });
  return { input, subjectOrder: Uint32Array.from(order), subjectUids: order.map((i) => sorted[i]!.uid) };
}

async function both(alg: ThreadAlgorithm, rows: ThreadRow[]): Promise<[string, string]> {
  const { input, subjectOrder, subjectUids } = toInput(rows);
  const oracle = formatThreads(await threadMessages(alg, rows, { subjectOrder: subjectUids }), (u) => u);
  const fast = await formatForest(threadIndex(alg, input, subjectOrder), (u) => u, () => Promise.resolve());
  return [fast!.toString('latin1'), oracle];
}

function hostileRows(seed: number, count: number): ThreadRow[] {
  const r = prng(seed);
  const space = Math.max(3, Math.floor(count * (0.3 + r() * 1.2)));
  const id = () => `i${Math.floor(r() * space)}`;
  const subjects = ['a', 'b', 'c', '', 'd'];
  const rows: ThreadRow[] = [];
  for (let i = 0; i < count; i++) {
    const nrefs = r() < 0.3 ? 0 : Math.floor(r() * 6);
    rows.push({
      uid: i * 3 + 1 + Math.floor(r() * 3),
      date: Math.floor(r() * count * 0.7),
      subject: subjects[Math.floor(r() * subjects.length)]! + (r() < 0.5 ? String(Math.floor(r() * 4)) : ''),
      isReply: r() < 0.4,
      messageId: r() < 0.1 ? null : id(),
      references: Array.from({ length: nrefs }, id),
      inReplyTo: r() < 0.5 ? id() : null,
    });
  }
  // UID order is not date order.
  return rows.sort(() => r() - 0.5);
}

test('the thread index engine equals the reference on random hostile inputs, every algorithm', async () => {
  for (let seed = 1; seed <= 400; seed++) {
    const rows = hostileRows(seed, 1 + (seed % 60));
    for (const alg of ['REFERENCES', 'REFS', 'ORDEREDSUBJECT'] as const) {
      const [fast, oracle] = await both(alg, rows);
      assert.equal(fast, oracle, `seed ${seed} ${alg}`);
    }
  }
});

test('the engine on bigger hostile inputs (long chains through dummies, many duplicates)', async () => {
  for (let seed = 1000; seed < 1010; seed++) {
    const rows = hostileRows(seed, 3000);
    for (const alg of ['REFERENCES', 'REFS'] as const) {
      const [fast, oracle] = await both(alg, rows);
      assert.equal(fast, oracle, `seed ${seed} ${alg}`);
    }
  }
});

test('a dummy at the top whose children are pruned away goes (step 3 applied bottom-up)', async () => {
  const mk = (uid: number, id: string, refs: string[]): ThreadRow => ({ uid, date: uid, subject: `s${uid}`, isReply: false, messageId: id, references: refs, inReplyTo: null });
  // a holds dummies b and b2; 3 and 4 take c and c2 away from them (step 1.B), so both are left empty.
  const rows = [mk(1, 'm1', ['a', 'b', 'c']), mk(2, 'm2', ['a', 'b2', 'c2']), mk(3, 'c', ['q']), mk(4, 'c2', ['q'])];
  const [fast, oracle] = await both('REFERENCES', rows);
  assert.equal(oracle, '((3 1)(4 2))');
  assert.equal(fast, oracle);
  // With one of them kept: a has a single message left under it, which is promoted.
  const one = [mk(1, 'm1', ['a', 'b', 'c']), mk(2, 'm2', ['a', 'b2']), mk(3, 'c', ['q'])];
  const [f2, o2] = await both('REFERENCES', one);
  assert.equal(o2, '(2)(3 1)');
  assert.equal(f2, o2);
});

test('formatForest writes what formatThreads writes, and refuses an unknown UID', async () => {
  const rows = hostileRows(7, 200);
  const { input } = toInput(rows);
  const forest = threadIndex('REFERENCES', input);
  const num = (u: number) => u * 2;
  const viaTree = formatThreads(await threadMessages('REFERENCES', rows), num);
  assert.equal((await formatForest(forest, num))!.toString('latin1'), viaTree);
  assert.equal(await formatForest(forest, (u) => (u === rows[5]!.uid ? 0 : u)), null);
  assert.equal((await formatForest({ roots: 0, nodes: new Uint32Array(0) }, num))!.length, 0);
});

test('a References chain deeper than the ancestor walk is cut where the reference cuts it', async () => {
  // Each message replies to the one before: past THREAD_ANCESTOR_WALK ancestors a link counts as a loop.
  const rows: ThreadRow[] = Array.from({ length: 10_060 }, (_, i) => ({
    uid: i + 1, date: i, subject: 'deep', isReply: i > 0, messageId: `d${i}`, references: i > 0 ? [`d${i - 1}`] : [], inReplyTo: null,
  }));
  // And a late reply to the deep end and one to the top.
  rows.push({ uid: 20_000, date: 20_000, subject: 'deep', isReply: true, messageId: 'late', references: ['d10050'], inReplyTo: null });
  rows.push({ uid: 20_001, date: 20_001, subject: 'deep', isReply: true, messageId: 'late2', references: ['d0'], inReplyTo: null });
  for (const alg of ['REFERENCES', 'REFS'] as const) {
    const [fast, oracle] = await both(alg, rows);
    assert.equal(fast, oracle, alg);
  }
});
