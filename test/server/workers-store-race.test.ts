// The mixed bench's one "keyword-lost" error over two workers, reproduced:
// session S (worker 1) runs `UID STORE w,u +FLAGS ($K)` where w already has
// $K, while session T (worker 2) expunges u, committing just after S's STORE
// and before S read the flags back for its answer. S's answer then named no
// FETCH for u (the read found u gone) and no EXPUNGE (the other worker's
// expunge had not reached S's worker yet), so the last flags S's client had
// for u were older than its own STORE: the STORE's value was lost to it.
// RFC 9051 §6.4.6: STORE returns the updated value in an untagged FETCH
// (§7.5.2), "as if a FETCH of those flags was done"; a message the client has
// not been told is expunged still exists for it (RFC 9051 §7.5.1, RFC 2180
// §4.2), so its new flags are what STORE set.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, type Cluster, type WorkerClient } from '../helpers/cluster.js';
import { message } from '../helpers/imap.js';

const ALICE: [string, string] = ['alice', 'secret-a'];
const ROUNDS = 60;
let cluster: Cluster;

before(async () => {
  cluster = await startCluster({ workers: 2, users: [ALICE] });
});

after(async () => {
  await cluster.stop();
});

/** NOOPs until `pred` holds for a line seen (cross-worker pushes take a few ms). */
async function noopUntil(c: WorkerClient, pred: (l: string) => boolean): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const r = await c.command('NOOP');
    if (r.untagged.some(pred)) return;
    await new Promise((res) => setTimeout(res, 5));
  }
  throw new Error('the change never arrived');
}

test('STORE answers the flags it set for a message another worker expunges meanwhile (or that message\'s EXPUNGE)', { timeout: 180_000 }, async () => {
  const s = await cluster.connectTo(ALICE);
  const t = await cluster.connectTo(ALICE, (slot) => slot !== s.slot);
  assert.notEqual(s.pid, t.pid);
  assert.match((await t.command('CREATE Race')).tagged, /OK/);
  // w = UID 1 carries $K already: S's STORE changes only u, so its answer is read back from the store.
  assert.match((await t.append('Race', message(1), '($K)')).tagged, /OK/);
  assert.match((await s.command('SELECT Race')).tagged, /OK/);
  assert.match((await t.command('SELECT Race')).tagged, /OK/);
  const violations: string[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const r = await t.append('Race', message(10 + round));
    const uid = Number(/APPENDUID \d+ (\d+)/.exec(r.tagged)?.[1]);
    assert.ok(uid > 1, r.tagged);
    await noopUntil(s, (l) => l === '* 2 EXISTS');
    assert.match((await t.command(`UID STORE ${uid} +FLAGS.SILENT (\\Deleted)`)).tagged, /OK/);
    // Both at once: whichever commits first, S must end knowing u either expunged or with $K.
    const store = s.command(`UID STORE 1,${uid} +FLAGS ($K)`);
    const expunge = t.command(`UID EXPUNGE ${uid}`);
    const [a, b] = await Promise.all([store, expunge]);
    assert.match(a.tagged, /OK/);
    assert.match(b.tagged, /OK/);
    const expunged = a.untagged.includes('* 2 EXPUNGE');
    const fetches = a.untagged.filter((l) => l.startsWith(`* 2 FETCH (UID ${uid} `));
    const last = fetches[fetches.length - 1];
    if (!expunged && !(last && /\$K/.test(last))) violations.push(`round ${round}: ${a.untagged.join(' | ') || '(nothing)'}`);
    if (!expunged) await noopUntil(s, (l) => l === '* 2 EXPUNGE');
  }
  assert.deepEqual(violations, [], `${violations.length} of ${ROUNDS} STOREs ended without u's new flags or its EXPUNGE`);
  await s.close();
  await t.close();
});
