// THREAD over a store's thread index (RFC 5256 §4 REFERENCES and
// ORDEREDSUBJECT, and REFS as Dovecot defines it), on integers: every
// Message-ID a store keeps is interned to a number once, at APPEND (the
// SQLite store's thread_msgids / thread_keys tables), so threading a mailbox
// is array work over typed arrays, without a string Map of 100k entries or an
// object per message. Pure and backend-neutral: the SQLite store runs it on
// its search thread (search-worker.ts), so a 100k-message THREAD never holds
// the serving thread (STYLE.md habit 14).
//
// The answer must equal src/search/thread.ts's (the reference implementation,
// which threads the strings of ThreadRow): the steps below are the same steps
// in the same order, so every choice the RFC leaves to the order of
// processing (the first of two messages with one Message-ID keeps it, a link
// once made is not replaced by a later chain, step 1.A; loops are never made)
// comes out the same. test/store/threading.test.ts compares both on generated
// and on hostile corpora.
//
// Input: the messages in sent-date order (RFC 5256 §2.2: date, then sequence
// number), so "earlier" is a smaller position and sorting siblings by date is
// visiting positions in increasing order. Output: the threads as a flat
// preorder encoding (ThreadForest).

/**
 * Most ancestors walked to rule out a loop before linking two messages
 * (RFC 5256 §4 step 1.A); a deeper chain is treated as a loop (the link is
 * not made), which bounds the work on a hostile References chain. The same
 * bound as src/search/thread.ts MAX_ANCESTOR_WALK.
 */
export const THREAD_ANCESTOR_WALK = 10_000;

export type ThreadAlgorithmName = 'ORDEREDSUBJECT' | 'REFERENCES' | 'REFS';

/**
 * Threads as a flat preorder list: `nodes` holds, for every node, its UID
 * (0 for a dummy parent, which the THREAD response shows as a bare list) and
 * its number of children, followed by its children in order; the threads
 * (`roots` of them) follow one another.
 */
export interface ThreadForest {
  roots: number;
  nodes: Uint32Array;
}

/** The thread index entries of the messages to thread, in sent-date order (position = index). */
export interface ThreadInput {
  count: number;
  uid: Uint32Array;
  /** The message's own Message-ID, interned (> 0), or 0 without one. */
  self: Uint32Array;
  /** The references of message i are refIds[refStart[i] .. refStart[i+1]): References, or In-Reply-To without them (§4 step 1.A). */
  refStart: Uint32Array;
  refIds: Uint32Array;
  /** The base subject (RFC 5256 §2.1), interned: equal subjects equal numbers; 0 = empty. */
  subject: Uint32Array;
  /** 1 when the subject carried a reply/forward marker (§4 step 5.C). */
  reply: Uint8Array;
}

/** Positions 0..n-1 ordered by key (unique keys < 2^32), through one native sort of packed doubles. */
function orderBy(n: number, key: (i: number) => number): Uint32Array {
  const SHIFT = 2 ** 21;
  if (n >= SHIFT) {
    const idx = new Uint32Array(n);
    for (let i = 0; i < n; i++) idx[i] = i;
    return idx.sort((a, b) => key(a) - key(b) || a - b);
  }
  const packed = new Float64Array(n);
  for (let i = 0; i < n; i++) packed[i] = key(i) * SHIFT + i;
  packed.sort();
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = packed[i]! % SHIFT;
  return out;
}

/** Growable Int32 columns for the step-1 nodes (messages and the dummies references create). */
class Nodes {
  cap: number;
  size = 0;
  /** Position of the message, or -1 for a dummy. */
  pos: Int32Array;
  parent: Int32Array;
  first: Int32Array;
  last: Int32Array;
  next: Int32Array;
  prev: Int32Array;
  /** Depth (ancestors above) of a node, valid while depthAt equals `epoch`. */
  depth: Int32Array;
  depthAt: Int32Array;
  /** Bumped when a node with children moves (every depth below it changes). */
  private epoch = 1;
  private readonly path: number[] = [];
  constructor(cap: number) {
    this.cap = Math.max(16, cap);
    this.pos = new Int32Array(this.cap);
    this.parent = new Int32Array(this.cap);
    this.first = new Int32Array(this.cap);
    this.last = new Int32Array(this.cap);
    this.next = new Int32Array(this.cap);
    this.prev = new Int32Array(this.cap);
    this.depth = new Int32Array(this.cap);
    this.depthAt = new Int32Array(this.cap);
  }
  add(pos: number): number {
    if (this.size === this.cap) this.grow();
    const i = this.size++;
    this.pos[i] = pos;
    this.parent[i] = -1;
    this.first[i] = -1;
    this.last[i] = -1;
    this.next[i] = -1;
    this.prev[i] = -1;
    this.depthAt[i] = 0;
    return i;
  }
  private grow(): void {
    this.cap *= 2;
    for (const k of ['pos', 'parent', 'first', 'last', 'next', 'prev', 'depth', 'depthAt'] as const) {
      const a = new Int32Array(this.cap);
      a.set(this[k]);
      this[k] = a;
    }
  }
  /** A node is about to move: its depth changes, and every depth below it when it has children. */
  private moved(c: number): void {
    if (this.first[c]! >= 0) this.epoch++;
    else this.depthAt[c] = 0;
  }
  unlink(c: number): void {
    const p = this.parent[c]!;
    if (p < 0) return;
    this.moved(c);
    const pr = this.prev[c]!;
    const nx = this.next[c]!;
    if (pr >= 0) this.next[pr] = nx;
    else this.first[p] = nx;
    if (nx >= 0) this.prev[nx] = pr;
    else this.last[p] = pr;
    this.parent[c] = -1;
    this.next[c] = -1;
    this.prev[c] = -1;
  }
  link(p: number, c: number): void {
    this.unlink(c);
    this.moved(c);
    this.parent[c] = p;
    const l = this.last[p]!;
    this.prev[c] = l;
    if (l >= 0) this.next[l] = c;
    else this.first[p] = c;
    this.last[p] = c;
  }
  /** Ancestors above `a`: walked up to the nearest node whose depth is known, which the nodes on the way then keep. */
  depthOf(a: number): number {
    const path = this.path;
    path.length = 0;
    let x = a;
    while (this.depthAt[x] !== this.epoch) {
      path.push(x);
      x = this.parent[x]!;
      if (x < 0) break;
    }
    let d = x < 0 ? -1 : this.depth[x]!;
    for (let k = path.length - 1; k >= 0; k--) {
      d++;
      this.depth[path[k]!] = d;
      this.depthAt[path[k]!] = this.epoch;
    }
    return this.depth[a]!;
  }
  /**
   * Whether `a` is `b` or one of its descendants (linking a as b's parent would make a loop), as
   * thread.ts wouldLoop: also true when `a` has more than THREAD_ANCESTOR_WALK ancestors to walk. For a
   * `b` without children (the common case: a new message, a new dummy) only `a` itself can be `b`, and
   * the walk's bound is a comparison with a kept depth.
   */
  wouldLoop(a: number, b: number): boolean {
    if (this.first[b]! < 0) return a === b || this.depthOf(a) > THREAD_ANCESTOR_WALK;
    let n = a;
    for (let steps = 0; n >= 0; steps++) {
      if (n === b || steps > THREAD_ANCESTOR_WALK) return true;
      n = this.parent[n]!;
    }
    return false;
  }
}

/** Interned id -> node: an array when the ids are dense enough (one store's), else a Map. */
class IdTable {
  private readonly arr: Int32Array | null = null;
  private readonly map: Map<number, number> | null = null;
  constructor(inp: ThreadInput) {
    let max = 0;
    for (let i = 0; i < inp.count; i++) if (inp.self[i]! > max) max = inp.self[i]!;
    for (let i = 0; i < inp.refIds.length; i++) if (inp.refIds[i]! > max) max = inp.refIds[i]!;
    if (max <= 4 * (inp.count + inp.refIds.length) + 1024) this.arr = new Int32Array(max + 1).fill(-1);
    else this.map = new Map();
  }
  get(id: number): number | undefined {
    if (this.arr) {
      const v = this.arr[id]!;
      return v < 0 ? undefined : v;
    }
    return this.map!.get(id);
  }
  set(id: number, node: number): void {
    if (this.arr) this.arr[id] = node;
    else this.map!.set(id, node);
  }
}

/** Thread `input` with `alg`. ORDEREDSUBJECT needs `subjectOrder`: the positions in (base subject, sent date, sequence) order. */
export function threadIndex(alg: ThreadAlgorithmName, input: ThreadInput, subjectOrder?: Uint32Array): ThreadForest {
  if (alg === 'ORDEREDSUBJECT') {
    const bySubject = () => Uint32Array.from(input.uid.keys()).sort((a, b) => input.subject[a]! - input.subject[b]! || a - b);
    return orderedSubject(input, subjectOrder ?? bySubject());
  }
  return references(input, alg === 'REFS');
}

// ---------------------------------------------------------------- ORDEREDSUBJECT (RFC 5256 §4)

function orderedSubject(inp: ThreadInput, order: Uint32Array): ThreadForest {
  const n = order.length;
  // Each run of one base subject: the first message is the root, the others its children.
  const rootOf = new Int32Array(inp.count).fill(-1);
  const kids = new Uint32Array(inp.count);
  for (let i = 0; i < n;) {
    let j = i + 1;
    const s = inp.subject[order[i]!]!;
    while (j < n && inp.subject[order[j]!]! === s) j++;
    const root = order[i]!;
    rootOf[root] = root;
    kids[root] = j - i - 1;
    for (let k = i + 1; k < j; k++) rootOf[order[k]!] = root;
    i = j;
  }
  // Threads by their first message's date; the children of each in subject-order (= date order within one subject).
  const nodes = new Uint32Array(2 * n);
  let w = 0;
  let roots = 0;
  // Emit roots in position order; each root's children are contiguous in `order` right after it.
  const startInOrder = new Int32Array(inp.count);
  for (let i = 0; i < n; i++) startInOrder[order[i]!] = i;
  for (let p = 0; p < inp.count; p++) {
    if (rootOf[p] !== p) continue;
    roots++;
    nodes[w++] = inp.uid[p]!;
    nodes[w++] = kids[p]!;
    const at = startInOrder[p]!;
    for (let k = 1; k <= kids[p]!; k++) {
      nodes[w++] = inp.uid[order[at + k]!]!;
      nodes[w++] = 0;
    }
  }
  return { roots, nodes: nodes.subarray(0, w) };
}

// ---------------------------------------------------------------- REFERENCES / REFS (RFC 5256 §4)

function references(inp: ThreadInput, refs: boolean): ThreadForest {
  const n = inp.count;
  const t = new Nodes(n + Math.min(inp.refIds.length, 4 * n) + 1);
  /** Interned Message-ID -> node. */
  const byId = new IdTable(inp);
  const idNode = (id: number): number => {
    let k = byId.get(id);
    if (k === undefined) {
      k = t.add(-1);
      byId.set(id, k);
    }
    return k;
  };
  const nodeOfPos = new Int32Array(n);

  // (1) links from each message's references, in sequence (UID) order.
  const seq = orderBy(n, (i) => inp.uid[i]!);
  for (let s = 0; s < n; s++) {
    const pos = seq[s]!;
    const id = inp.self[pos]!;
    let node = -1;
    if (id !== 0) {
      const known = byId.get(id);
      if (known === undefined) {
        node = t.add(pos);
        byId.set(id, node);
      } else if (t.pos[known]! < 0) {
        // A dummy created by an earlier reference: this message is it.
        t.pos[known] = pos;
        node = known;
      }
    }
    // No Message-ID, or a duplicate of an earlier message's: an id of its own (step 1.A).
    if (node < 0) node = t.add(pos);
    nodeOfPos[pos] = node;

    const a = inp.refStart[pos]!;
    const b = inp.refStart[pos + 1]!;
    // (1.A) each reference is the parent of the next, unless that child has a parent already or it would loop.
    for (let k = a; k + 1 < b; k++) {
      const p = idNode(inp.refIds[k]!);
      const c = idNode(inp.refIds[k + 1]!);
      if (p === c || t.parent[c]! >= 0 || t.wouldLoop(p, c)) continue;
      t.link(p, c);
    }
    // (1.B) the last reference is this message's parent (replacing a parent from a truncated chain,
    // which is dropped even when the new link cannot be made).
    const last = b > a ? idNode(inp.refIds[b - 1]!) : -1;
    if (t.parent[node]! >= 0 && t.parent[node] !== last) t.unlink(node);
    if (last >= 0 && last !== node && t.parent[node]! < 0 && !t.wouldLoop(last, node)) t.link(last, node);
  }

  // (2) + (3): the roots, and dummies pruned. A message's parent after pruning is its nearest message
  // ancestor; a message without one hangs from its root dummy when that dummy keeps two or more such
  // messages, and is a root itself otherwise (a dummy with one child is replaced by it, one without
  // children goes). Computed top-down over the step-1 tree, without recursion.
  const N = t.size;
  /** Per step-1 node: its nearest message ancestor (as a position), or -1. */
  const msgAnc = new Int32Array(N).fill(-1);
  /** Per step-1 node: the root of its tree. */
  const rootOfNode = new Int32Array(N);
  const queue = new Int32Array(N);
  let qh = 0;
  let qt = 0;
  for (let v = 0; v < N; v++) {
    if (t.parent[v]! < 0) {
      queue[qt++] = v;
      rootOfNode[v] = v;
    }
  }
  while (qh < qt) {
    const v = queue[qh++]!;
    const vp = t.pos[v]!;
    for (let c = t.first[v]!; c >= 0; c = t.next[c]!) {
      msgAnc[c] = vp >= 0 ? vp : msgAnc[v]!;
      rootOfNode[c] = rootOfNode[v]!;
      queue[qt++] = c;
    }
  }
  // Messages directly under each root dummy (through dummies only).
  const underDummy = new Int32Array(N);
  for (let p = 0; p < n; p++) {
    const v = nodeOfPos[p]!;
    const r = rootOfNode[v]!;
    if (msgAnc[v]! < 0 && r !== v) underDummy[r]!++;
  }
  // The pruned forest: messages by position (0..n-1), dummies numbered from n.
  const parent = new Int32Array(n + N).fill(-1);
  const dummyOf = new Int32Array(N).fill(-1);
  let size = n;
  for (let p = 0; p < n; p++) {
    const v = nodeOfPos[p]!;
    const anc = msgAnc[v]!;
    if (anc >= 0) {
      parent[p] = anc;
      continue;
    }
    const r = rootOfNode[v]!;
    if (r === v || underDummy[r]! < 2) continue;
    if (dummyOf[r]! < 0) dummyOf[r] = size++;
    parent[p] = dummyOf[r]!;
  }

  // (4) the threads by sent date (a dummy by its first child): visiting positions in order, a root
  // message at its own position, a dummy at its first child's.
  const firstChild = new Int32Array(n + N + n).fill(-1);
  const roots: number[] = [];
  for (let p = 0; p < n; p++) {
    const q = parent[p]!;
    if (q < 0) roots.push(p);
    else if (q >= n && firstChild[q]! < 0) {
      firstChild[q] = p;
      roots.push(q);
    }
  }

  let top = roots;
  if (!refs) top = mergeSubjects(inp, roots, parent, firstChild, n, () => size++);
  const total = size;

  // (6) siblings by sent date: children listed in position order (dummies only ever sit at the top).
  const count = new Uint32Array(total);
  for (let p = 0; p < n; p++) if (parent[p]! >= 0) count[parent[p]!]!++;
  const start = new Uint32Array(total + 1);
  for (let i = 0; i < total; i++) start[i + 1] = start[i]! + count[i]!;
  const kids = new Uint32Array(start[total]!);
  const fill = start.slice(0, total);
  for (let p = 0; p < n; p++) {
    const q = parent[p]!;
    if (q >= 0) kids[fill[q]!++] = p;
  }

  let order = top;
  if (refs) {
    // Dovecot's REFS: threads by their newest message (the most recently active thread last).
    const rootOf = new Int32Array(total).fill(-1);
    for (const r of top) rootOf[r] = r;
    const newest = new Int32Array(total).fill(-1);
    for (let p = 0; p < n; p++) {
      // Up to the root, remembering it on the way down again (each node is resolved once).
      let x = p;
      const path: number[] = [];
      while (rootOf[x]! < 0) {
        path.push(x);
        x = parent[x]!;
      }
      const r = rootOf[x]!;
      for (const y of path) rootOf[y] = r;
      if (p > newest[r]!) newest[r] = p;
    }
    const ord = orderBy(top.length, (i) => newest[top[i]!]!);
    order = Array.from(ord, (i) => top[i]!);
  }

  // The preorder encoding, iteratively (deep threads must not exhaust the stack).
  const nodes = new Uint32Array(2 * total);
  let w = 0;
  const stack: number[] = [];
  for (const r of order) {
    stack.push(r);
    while (stack.length > 0) {
      const v = stack.pop()!;
      nodes[w++] = v < n ? inp.uid[v]! : 0;
      nodes[w++] = count[v]!;
      for (let k = start[v + 1]! - 1; k >= start[v]!; k--) stack.push(kids[k]!);
    }
  }
  return { roots: order.length, nodes: nodes.subarray(0, w) };
}

/**
 * RFC 5256 §4 step 5 (REFERENCES only): threads whose base subjects are equal are gathered, exactly as
 * src/search/thread.ts mergeSubjects does, over `parent` (rewritten in place). Returns the threads in order.
 */
function mergeSubjects(inp: ThreadInput, top: number[], parent: Int32Array, firstChild: Int32Array, n: number, newDummy: () => number): number[] {
  const isDummy = (v: number) => v >= n;
  // The thread subject: the message's, or a dummy's first child's.
  const subjectOf = (v: number): number => inp.subject[isDummy(v) ? firstChild[v]! : v]!;
  const isReply = (v: number) => !isDummy(v) && inp.reply[v] === 1;
  // (B) the subject table.
  const table = new Map<number, number>();
  for (const v of top) {
    const s = subjectOf(v);
    if (s === 0) continue;
    const had = table.get(s);
    if (had === undefined) table.set(s, v);
    else if (!isDummy(had) && (isDummy(v) || (isReply(had) && !isReply(v)))) table.set(s, v);
  }
  // Children of the dummies at the top (the only dummies), to move them all at once.
  const dummyKids = new Map<number, number[]>();
  for (let p = 0; p < n; p++) {
    const q = parent[p]!;
    if (q >= n) {
      let l = dummyKids.get(q);
      if (!l) dummyKids.set(q, (l = []));
      l.push(p);
    }
  }
  // (C) merge.
  const removed = new Set<number>();
  const added: number[] = [];
  for (const v of top) {
    const s = subjectOf(v);
    if (s === 0) continue;
    const tgt = table.get(s)!;
    if (tgt === v) continue;
    if (isDummy(tgt) && isDummy(v)) {
      const from = dummyKids.get(v) ?? [];
      const into = dummyKids.get(tgt)!;
      for (const c of from) {
        parent[c] = tgt;
        into.push(c);
      }
      dummyKids.set(v, []);
      removed.add(v);
    } else if (isDummy(tgt) || (isReply(v) && !isReply(tgt))) {
      // Into the dummy's children, or a reply under the non-reply.
      parent[v] = tgt;
      if (isDummy(tgt)) dummyKids.get(tgt)!.push(v);
      removed.add(v);
    } else {
      // A new dummy holds both, and takes the table message's place among the threads.
      const d = newDummy();
      removed.add(tgt);
      removed.add(v);
      parent[tgt] = d;
      parent[v] = d;
      dummyKids.set(d, [tgt, v]);
      table.set(s, d);
      added.push(d);
    }
  }
  // The threads again by date: a dummy by its earliest child (positions of messages are their dates).
  const keep: number[] = [];
  const keyOf = (v: number): number => {
    if (!isDummy(v)) return v;
    let best = -1;
    for (const c of dummyKids.get(v) ?? []) if (best < 0 || c < best) best = c;
    return best;
  };
  for (const v of [...top, ...added]) if (!removed.has(v)) keep.push(v);
  const keys = keep.map(keyOf);
  const ord = orderBy(keep.length, (i) => keys[i]!);
  return Array.from(ord, (i) => keep[i]!);
}
