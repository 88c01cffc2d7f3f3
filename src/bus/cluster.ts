// The change bus and the write gate between the workers of `quire serve
// --workers N` (node:cluster), over the IPC channel each worker has with the
// primary. Messages carry a `type` namespaced "bus:" (docs: coord's process
// model), so other features' messages on the same channel never collide.
//
//   worker -> primary   {type:'bus:hint', hint}     after a durable commit
//   primary -> workers  {type:'bus:hint', hint}     relayed to every other worker
//   worker -> primary   {type:'bus:lock', id}       ask for the write gate
//   primary -> worker   {type:'bus:grant', id, revoked}  it is yours (revoked: others already wait)
//   primary -> worker   {type:'bus:revoke', id}     someone else waits: hand it back
//   worker -> primary   {type:'bus:unlock', id}     handed back
//   either way          {type:'bus:batch', msgs}    several of the above, in order (BusBatcher)
//
// The gate is one FIFO in the primary shared by every worker's write
// transactions and the primary's own (its full-text indexing thread), so
// writers never meet SQLite's write lock taken, never sleep in its busy
// handler on an event loop, and are served in the order they asked (no
// starvation). A grant is a lease: the worker keeps it between its
// transactions, so a worker writing while nobody else does pays no IPC per
// transaction (under the mixed load the request/grant/unlock round trip of
// every write was ~3% of a worker's busy time); once another writer queues
// at the primary's gate the holder is told (revoke) and hands it back after
// its current transaction, or after at most LOCAL_TURNS_PER_GRANT turns in
// a row when its own writers queue. A lease is logical: SQLite's write lock
// is taken and dropped by each transaction. A worker that dies holding the
// gate or waiting for it loses its turn: the primary releases it on the
// worker's exit.
import type { ChangeBus, ChangeHint, HintListener } from './types.js';

/** A write gate as its writers see it (the store's WriteGate). */
export interface WriterGate {
  acquire(): Promise<() => void>;
}

/** What the primary's gate needs besides (the SQLite store's LocalWriteGate is one). */
export interface Gate extends WriterGate {
  /** Writers waiting now. */
  readonly waiting: number;
  /** Called when an acquire has to wait (the hub then revokes the workers' leases). */
  onQueued?: (() => void) | null;
}

/** The IPC endpoint a worker talks through (node's `process` in a cluster worker). */
export interface Channel {
  send(message: unknown): unknown;
  on(event: 'message', fn: (m: unknown) => void): unknown;
  off(event: 'message', fn: (m: unknown) => void): unknown;
}

/** The primary's view of one worker (node's cluster.Worker). */
export interface WorkerPort {
  readonly id: number;
  send(message: unknown): unknown;
  isConnected(): boolean;
}

type BusMessage =
  | { type: 'bus:hint'; hint: ChangeHint }
  | { type: 'bus:lock'; id: number }
  | { type: 'bus:grant'; id: number; revoked?: boolean }
  | { type: 'bus:revoke'; id: number }
  | { type: 'bus:unlock'; id: number };

function busMessage(m: unknown): BusMessage | null {
  if (typeof m !== 'object' || m === null) return null;
  const t = (m as { type?: unknown }).type;
  return typeof t === 'string' && t.startsWith('bus:') && t !== 'bus:batch' ? (m as BusMessage) : null;
}

/** The bus messages an IPC message carries: none, one, or a batch's (BusBatcher), in order. */
function busMessages(m: unknown): BusMessage[] {
  const one = busMessage(m);
  if (one) return [one];
  if (typeof m !== 'object' || m === null || (m as { type?: unknown }).type !== 'bus:batch') return [];
  const msgs = (m as { msgs?: unknown }).msgs;
  if (!Array.isArray(msgs)) return [];
  const out: BusMessage[] = [];
  for (const x of msgs) {
    const b = busMessage(x);
    if (b) out.push(b);
  }
  return out;
}

/** Bus messages gathered into one IPC message at most (past it the batch leaves at once). */
export const MAX_BUS_BATCH = 256;

/**
 * Bus messages sent during one piece of work (until process.nextTick) leave
 * as one IPC message, `{type:'bus:batch', msgs}`: one system call and one
 * wake-up of the receiver instead of one per message. Under the mixed load a
 * worker's gate hand-back and its commit's hint, and the primary's grant and
 * the hints it relays to the same worker, went out one by one (~0.9 extra
 * writes per operation over two workers). Order is kept; receivers accept
 * single messages and batches alike.
 */
export class BusBatcher {
  private pending: unknown[] = [];
  private scheduled = false;

  constructor(private readonly sendNow: (m: unknown) => unknown) {}

  send(m: unknown): void {
    this.pending.push(m);
    if (this.pending.length >= MAX_BUS_BATCH) return this.flush();
    if (this.scheduled) return;
    this.scheduled = true;
    process.nextTick(() => this.flush());
  }

  flush(): void {
    this.scheduled = false;
    const msgs = this.pending;
    if (msgs.length === 0) return;
    this.pending = [];
    try {
      this.sendNow(msgs.length === 1 ? msgs[0] : { type: 'bus:batch', msgs });
    } catch {
      // A closed channel: the peer's exit handling releases what this side held.
    }
  }
}

/** A worker's channel whose sends are batched (BusBatcher); messages in are passed through as they come. */
export function batchedChannel(channel: Channel): Channel {
  const batcher = new BusBatcher((m) => channel.send(m));
  return {
    send: (m) => batcher.send(m),
    on: (e, fn) => channel.on(e, fn),
    off: (e, fn) => channel.off(e, fn),
  };
}

/** A worker's change bus: hints go to the primary, which relays them to the other workers. */
export class ClusterChangeBus implements ChangeBus {
  private readonly listeners = new Set<HintListener>();
  private readonly onMessage = (m: unknown): void => {
    for (const msg of busMessages(m)) {
      if (msg.type !== 'bus:hint') continue;
      for (const fn of this.listeners) fn(msg.hint);
    }
  };

  constructor(private readonly channel: Channel) {
    channel.on('message', this.onMessage);
  }

  publish(hint: ChangeHint): void {
    this.channel.send({ type: 'bus:hint', hint });
  }

  subscribe(fn: HintListener): () => void {
    const entry: HintListener = (h) => fn(h);
    this.listeners.add(entry);
    return () => this.listeners.delete(entry);
  }

  async close(): Promise<void> {
    this.listeners.clear();
    this.channel.off('message', this.onMessage);
  }
}

/**
 * Transactions one worker may run in a row on one grant of the primary's
 * gate once another writer waits for it (its revoke has arrived) while the
 * worker's own writers queue; then it hands the gate back, so the other
 * workers wait at most this many turns.
 */
export const LOCAL_TURNS_PER_GRANT = 8;

/**
 * A worker's write gate: its own writers queue here in FIFO order; the
 * first asks the primary for the gate, which the worker then keeps (a lease)
 * until the primary revokes it; after a revoke it goes back once the worker's
 * queue is empty or LOCAL_TURNS_PER_GRANT transactions have run on the grant.
 */
export class ClusterWriteGate implements WriterGate {
  private seq = 0;
  private readonly queue: ((release: () => void) => void)[] = [];
  /** The grant held (its id), or null. */
  private held: number | null = null;
  private requested = false;
  private busy = false;
  private turns = 0;
  /** Another writer waits for the grant held: hand it back (see pump). */
  private revoked = false;
  private readonly onMessage = (m: unknown): void => {
    for (const msg of busMessages(m)) this.handle(msg);
  };

  private handle(msg: BusMessage): void {
    if (msg.type === 'bus:revoke') {
      if (msg.id !== this.held) return; // already handed back
      this.revoked = true;
      this.pump();
      return;
    }
    if (msg.type !== 'bus:grant' || !this.requested || msg.id !== this.seq) return;
    this.requested = false;
    this.held = msg.id;
    this.turns = 0;
    this.revoked = msg.revoked === true;
    this.pump();
  }

  constructor(private readonly channel: Channel) {
    channel.on('message', this.onMessage);
  }

  acquire(): Promise<() => void> {
    return new Promise((resolve) => {
      this.queue.push(resolve);
      this.pump();
    });
  }

  private pump(): void {
    if (this.busy) return;
    if (this.held !== null && this.revoked && (this.queue.length === 0 || this.turns >= LOCAL_TURNS_PER_GRANT)) {
      this.channel.send({ type: 'bus:unlock', id: this.held });
      this.held = null;
      this.revoked = false;
    }
    const next = this.queue[0];
    if (!next) return;
    if (this.held === null) {
      if (!this.requested) {
        this.requested = true;
        this.channel.send({ type: 'bus:lock', id: ++this.seq });
      }
      return;
    }
    this.queue.shift();
    this.busy = true;
    this.turns++;
    let released = false;
    next(() => {
      if (released) return;
      released = true;
      this.busy = false;
      this.pump();
    });
  }
}

/**
 * The primary's side: relays hints between workers (and to `onHint`, the
 * primary's own store: its indexing thread wants to hear of appends) and
 * grants the write gate in FIFO order.
 */
export class ClusterHub {
  private readonly workers = new Map<number, HubEntry>();

  constructor(
    private readonly gate: Gate,
    private readonly onHint: (hint: ChangeHint) => void = () => {},
  ) {
    // Someone queues behind a worker's lease (another worker, or this process's own writer): revoke it.
    gate.onQueued = () => this.revokeLeases();
  }

  private revokeLeases(): void {
    for (const w of this.workers.values()) {
      if (w.dead) continue;
      for (const id of w.held.keys()) {
        if (w.revoked.has(id)) continue;
        w.revoked.add(id);
        w.out.send({ type: 'bus:revoke', id });
      }
    }
  }

  /** Starts serving a worker; returns the handler for its messages (non-bus messages are ignored here). */
  attach(port: WorkerPort): (m: unknown) => void {
    const entry: HubEntry = {
      port,
      // A worker whose channel closed gets nothing (its exit detaches it).
      out: new BusBatcher((m) => port.isConnected() && port.send(m)),
      held: new Map<number, () => void>(),
      revoked: new Set<number>(),
      dead: false,
    };
    this.workers.set(port.id, entry);
    return (m: unknown) => {
      for (const msg of busMessages(m)) this.handle(entry, msg);
    };
  }

  private handle(entry: HubEntry, msg: BusMessage): void {
    if (entry.dead) return;
    const port = entry.port;
    if (msg.type === 'bus:hint') {
      for (const w of this.workers.values()) if (w !== entry && !w.dead) w.out.send(msg);
      this.onHint(msg.hint);
    } else if (msg.type === 'bus:lock') {
      void this.gate.acquire().then((release) => {
        if (entry.dead || !port.isConnected()) return release();
        entry.held.set(msg.id, release);
        // Writers already queued behind this grant: it comes revoked (one message, not two).
        const revoked = this.gate.waiting > 0;
        if (revoked) entry.revoked.add(msg.id);
        entry.out.send({ type: 'bus:grant', id: msg.id, revoked });
      });
    } else if (msg.type === 'bus:unlock') {
      const release = entry.held.get(msg.id);
      entry.held.delete(msg.id);
      entry.revoked.delete(msg.id);
      release?.();
    }
  }

  /** A worker has exited: whatever it held or waited for is released. */
  detach(id: number): void {
    const entry = this.workers.get(id);
    if (!entry) return;
    entry.dead = true;
    this.workers.delete(id);
    for (const release of entry.held.values()) release();
    entry.held.clear();
    entry.revoked.clear();
  }
}

interface HubEntry {
  port: WorkerPort;
  /** What goes to the worker, batched per piece of work. */
  out: BusBatcher;
  /** Grants the worker holds (one at most in practice), by id, with their release. */
  held: Map<number, () => void>;
  /** Held grants already revoked (each is revoked once). */
  revoked: Set<number>;
  dead: boolean;
}
