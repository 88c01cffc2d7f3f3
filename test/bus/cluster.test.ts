// The write gate and hint relay of src/bus/cluster.ts over in-process
// channels shaped like node:cluster's IPC (asynchronous delivery, one
// channel per worker): one holder at a time across workers, FIFO between
// workers with at most LOCAL_TURNS_PER_GRANT turns in a row, a dead
// worker's turn released, hints reach every other worker and never the sender.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { ClusterChangeBus, ClusterHub, ClusterWriteGate, LOCAL_TURNS_PER_GRANT } from '../../src/bus/cluster.js';
import { LocalWriteGate } from '../../src/store/sqlite/index.js';
import type { ChangeHint } from '../../src/store/types.js';

/** A worker's end and the primary's end of one IPC channel; messages arrive on a later turn, like IPC. */
function pipe(id: number, hub: ClusterHub) {
  const worker = new EventEmitter();
  let connected = true;
  const port = {
    id,
    isConnected: () => connected,
    send: (m: unknown) => void setImmediate(() => worker.emit('message', structuredClone(m))),
  };
  const toPrimary = hub.attach(port);
  const channel = {
    send: (m: unknown) => void setImmediate(() => connected && toPrimary(structuredClone(m))),
    on: (e: 'message', fn: (m: unknown) => void) => worker.on(e, fn),
    off: (e: 'message', fn: (m: unknown) => void) => worker.off(e, fn),
  };
  return { channel, kill: () => { connected = false; hub.detach(id); } };
}

const tick = () => new Promise((r) => setImmediate(r));

test('one writer at a time across workers, and neither worker waits more than LOCAL_TURNS_PER_GRANT turns of the other', async () => {
  const hub = new ClusterHub(new LocalWriteGate());
  const a = new ClusterWriteGate(pipe(1, hub).channel);
  const b = new ClusterWriteGate(pipe(2, hub).channel);
  let inside = 0;
  const order: string[] = [];
  const writer = async (g: ClusterWriteGate, name: string) => {
    const release = await g.acquire();
    inside++;
    assert.equal(inside, 1, 'never two holders');
    order.push(name);
    await tick();
    inside--;
    release();
  };
  const N = 30;
  await Promise.all([...Array.from({ length: N }, () => writer(a, 'a')), ...Array.from({ length: N }, () => writer(b, 'b'))]);
  assert.equal(order.length, 2 * N);
  let run = 1;
  for (let i = 1; i < order.length; i++) {
    run = order[i] === order[i - 1] ? run + 1 : 1;
    // The tail of one worker's queue runs alone once the other is done.
    const otherLeft = order.slice(i).some((x) => x !== order[i]);
    if (otherLeft) assert.ok(run <= LOCAL_TURNS_PER_GRANT, `run of ${run} at ${i}: ${order.join('')}`);
  }
});

test('a worker that dies holding the gate or waiting for it loses its turn; the others go on', async () => {
  const hub = new ClusterHub(new LocalWriteGate());
  const pa = pipe(1, hub);
  const a = new ClusterWriteGate(pa.channel);
  const b = new ClusterWriteGate(pipe(2, hub).channel);
  await a.acquire(); // held, never released
  const waiting = b.acquire();
  await tick();
  pa.kill();
  const release = await waiting;
  release();
  const again = await b.acquire();
  again();
});

test('hints reach every other worker, not the sender, and the primary hears them', async () => {
  const heard: ChangeHint[] = [];
  const hub = new ClusterHub(new LocalWriteGate(), (h) => heard.push(h));
  const buses = [1, 2, 3].map((id) => new ClusterChangeBus(pipe(id, hub).channel));
  const got = buses.map(() => [] as ChangeHint[]);
  buses.forEach((bus, i) => bus.subscribe((h) => got[i]!.push(h)));
  const hint: ChangeHint = { userId: 1, mailboxId: 7, modseq: 42, kind: 'append' };
  buses[0]!.publish(hint);
  for (let i = 0; i < 5; i++) await tick();
  assert.deepEqual(got, [[], [hint], [hint]]);
  assert.deepEqual(heard, [hint]);
});

test('the local bus: a participant hears the others, never itself, on a later turn', async () => {
  const { LocalChangeBus } = await import('../../src/bus/local.js');
  const bus = new LocalChangeBus();
  const [p1, p2] = [bus.join(), bus.join()];
  const got1: ChangeHint[] = [];
  const got2: ChangeHint[] = [];
  p1.subscribe((h) => got1.push(h));
  p2.subscribe((h) => got2.push(h));
  const hint: ChangeHint = { userId: 1, mailboxId: 2, modseq: 3, kind: 'messages' };
  p1.publish(hint);
  assert.deepEqual(got2, [], 'not inside the publisher');
  await tick();
  assert.deepEqual(got1, []);
  assert.deepEqual(got2, [hint]);
  await p2.close();
  p1.publish(hint);
  await tick();
  assert.equal(got2.length, 1);
});

/** A channel that counts what the worker sends to the primary, by message type. */
function counting(ch: ReturnType<typeof pipe>['channel']) {
  const sent: string[] = [];
  return {
    sent,
    channel: { ...ch, send: (m: unknown) => { sent.push((m as { type: string }).type); return ch.send(m); } },
  };
}

test('a grant is a lease: a worker writing alone asks once, however many transactions it runs', async () => {
  const hub = new ClusterHub(new LocalWriteGate());
  const c = counting(pipe(1, hub).channel);
  const a = new ClusterWriteGate(c.channel);
  for (let i = 0; i < 20; i++) {
    const release = await a.acquire();
    await tick();
    release();
    await tick(); // the queue is empty between transactions
  }
  assert.deepEqual(c.sent, ['bus:lock'], 'one request, no unlock while nobody else waits');
});

test('an idle lease goes back when another worker asks, and when the primary\'s own writer does', async () => {
  const gate = new LocalWriteGate();
  const hub = new ClusterHub(gate);
  const ca = counting(pipe(1, hub).channel);
  const a = new ClusterWriteGate(ca.channel);
  const b = new ClusterWriteGate(pipe(2, hub).channel);
  (await a.acquire())(); // a holds the lease, idle
  const rb = await b.acquire(); // would hang if a kept it
  assert.deepEqual(ca.sent, ['bus:lock', 'bus:unlock']);
  rb();
  for (let i = 0; i < 5; i++) await tick();
  // b now holds the lease idle; the primary's own writer (its indexing thread) queues at the gate itself.
  const own = await gate.acquire();
  let aInside = false;
  const aTurn = a.acquire().then((r) => { aInside = true; r(); });
  for (let i = 0; i < 5; i++) await tick();
  assert.equal(aInside, false, 'never two holders: a waits while the primary writes');
  own();
  await aTurn;
});

test('a revoke that arrives during a transaction hands the lease back after it, not in the middle', async () => {
  const hub = new ClusterHub(new LocalWriteGate());
  const a = new ClusterWriteGate(pipe(1, hub).channel);
  const b = new ClusterWriteGate(pipe(2, hub).channel);
  const ra = await a.acquire();
  let bInside = false;
  const bTurn = b.acquire().then((r) => { bInside = true; return r; });
  for (let i = 0; i < 10; i++) await tick(); // the revoke has reached a by now
  assert.equal(bInside, false, 'b waits for a\'s transaction');
  ra();
  (await bTurn)();
  assert.equal(bInside, true);
});

test('bus messages of one piece of work leave as one IPC message, in order, and receivers take batches', async () => {
  const { BusBatcher, batchedChannel } = await import('../../src/bus/cluster.js');
  const sent: unknown[] = [];
  const b = new BusBatcher((m) => sent.push(m));
  b.send({ type: 'bus:unlock', id: 1 });
  b.send({ type: 'bus:hint', hint: { userId: 1, mailboxId: 2, modseq: 3, kind: 'messages' } });
  assert.deepEqual(sent, [], 'nothing leaves before the work is done');
  await new Promise((r) => process.nextTick(r));
  assert.deepEqual(sent, [{ type: 'bus:batch', msgs: [{ type: 'bus:unlock', id: 1 }, { type: 'bus:hint', hint: { userId: 1, mailboxId: 2, modseq: 3, kind: 'messages' } }] }]);
  b.send({ type: 'bus:lock', id: 2 });
  await new Promise((r) => process.nextTick(r));
  assert.deepEqual(sent[1], { type: 'bus:lock', id: 2 }, 'a lone message goes as it is');

  // The whole protocol over batched channels both ways: hints and the gate still work.
  const heard: ChangeHint[] = [];
  const hub = new ClusterHub(new LocalWriteGate(), (h) => heard.push(h));
  const [p1, p2] = [pipe(1, hub), pipe(2, hub)];
  const [c1, c2] = [batchedChannel(p1.channel), batchedChannel(p2.channel)];
  const [bus1, bus2] = [new ClusterChangeBus(c1), new ClusterChangeBus(c2)];
  const [g1, g2] = [new ClusterWriteGate(c1), new ClusterWriteGate(c2)];
  const got2: ChangeHint[] = [];
  bus2.subscribe((h) => got2.push(h));
  const hints = [1, 2, 3].map((m): ChangeHint => ({ userId: 1, mailboxId: m, modseq: m, kind: 'messages' }));
  const r1 = await g1.acquire();
  for (const h of hints) bus1.publish(h);
  r1();
  (await g2.acquire())();
  for (let i = 0; i < 10; i++) await tick();
  assert.deepEqual(got2, hints);
  assert.deepEqual(heard, hints);
});
