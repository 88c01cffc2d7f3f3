// The SEARCH evaluator gives the event loop back by time (EVAL_SLICE_MS),
// also when every message's content is at hand without I/O (bodies from the
// body cache): a timer due meanwhile runs before the search ends. With a
// count of messages between yields (2,000 before), 300 messages whose text
// costs a fraction of a millisecond each ran as one block.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { EVAL_SLICE_MS, evaluate, type MessageContent, type SearchTarget } from '../../src/search/evaluate.js';
import type { MessageMeta } from '../../src/store/types.js';

/** CPU-bound work of about `ms` (the decoding a cached body's text costs). */
function spin(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

test('a BODY search over content available without I/O yields to the event loop every EVAL_SLICE_MS', async () => {
  const N = 300;
  const uids = Array.from({ length: N }, (_, i) => i + 1);
  const meta = new Map<number, MessageMeta>(
    uids.map((uid) => [uid, { uid, flags: [], internalDate: 0, internalTz: 0, saveDate: null, emailId: `M${uid}`, size: 10, modseq: 1 }]),
  );
  const content = (uid: number): MessageContent => ({
    headerValues: () => [],
    addressValues: () => [],
    headerText: () => '',
    bodyText: () => {
      spin(0.2);
      return uid === N ? 'the needle' : 'hay';
    },
    sentDay: () => null,
  });
  const target: SearchTarget = { uids, meta, isRecent: () => false, saved: () => [], content: async (uid) => content(uid) };
  let ranAt = -1;
  let done = false;
  const t0 = performance.now();
  setTimeout(() => (ranAt = done ? Infinity : performance.now() - t0), 1);
  const hits = await evaluate({ k: 'body', value: 'needle' }, target);
  done = true;
  const took = performance.now() - t0;
  assert.deepEqual(hits, [N]);
  assert.ok(took > 4 * EVAL_SLICE_MS, `the search took ${took.toFixed(1)} ms: long enough to need yields`);
  assert.ok(ranAt >= 0 && ranAt !== Infinity, 'a timer due during the search ran before it ended');
  assert.ok(ranAt < took / 2, `and early: at ${ranAt.toFixed(1)} of ${took.toFixed(1)} ms`);
});
