// THREAD algorithms (RFC 5256 §4): ORDEREDSUBJECT, REFERENCES, and REFS as
// Dovecot defines it (REFERENCES without the base-subject merging of step 5,
// threads ordered by their newest message). Pure: the input is what the
// store keeps per message (ThreadRow); the output a tree of UIDs (0 for the
// dummy parents the THREAD response shows as a bare list).
//
// At 100k messages nothing here may hold the event loop (STYLE.md habit 14):
// loops hand it a turn through `pause`, and the big sorts are not done here
// when the caller already has the orders from the store's indexes: rows in
// sent-date order (RFC 5256 §2.2: date, then sequence), and for
// ORDEREDSUBJECT the (base subject, date, sequence) order. Then "earlier"
// is a comparison of two positions and every sibling sort is over integers.
import type { ThreadRow } from '../store/types.js';
import type { ThreadForest } from '../store/threading.js';
import { AsciiBuilder } from '../wire/ascii.js';

export type ThreadAlgorithm = 'ORDEREDSUBJECT' | 'REFERENCES' | 'REFS';
export const THREAD_ALGORITHMS: readonly ThreadAlgorithm[] = ['ORDEREDSUBJECT', 'REFERENCES', 'REFS'];

/** A thread node: a message (its UID) or a dummy (uid 0) with children. */
export interface ThreadNode {
  uid: number;
  children: ThreadNode[];
}

/** Work units between two calls of `pause`. */
const PAUSE_EVERY = 4_000;
/**
 * Most ancestors walked to rule out a loop before linking two messages
 * (RFC 5256 §4 step 1.A); a deeper chain is treated as a loop (the link is
 * not made), which bounds the work on a hostile References chain.
 */
export const MAX_ANCESTOR_WALK = 10_000;

export interface ThreadOptions {
  /** Hands the event loop a turn (e.g. setImmediate). */
  pause?: () => Promise<void>;
  /** ORDEREDSUBJECT: the UIDs in (base subject, sent date, sequence) order, when the store has it; else sorted here. */
  subjectOrder?: readonly number[];
}

/** An output node with the position it sorts by (its own, or a dummy's first child's). */
interface OutNode extends ThreadNode {
  key: number;
  children: OutNode[];
}

interface Node {
  /** Position in date order (see file comment); -1 for dummies. */
  pos: number;
  row: ThreadRow | null;
  parent: Node | null;
  children: Set<Node>;
  /** The converted node (step 6). */
  out?: OutNode;
}

class Pacer {
  private n = 0;
  constructor(private readonly pause?: () => Promise<void>) {}
  /** Counts work; true when it is time to await `wait()` (synchronous, so the common case costs no microtask). */
  due(units = 1): boolean {
    this.n += units;
    if (!this.pause || this.n < PAUSE_EVERY) return false;
    this.n = 0;
    return true;
  }
  wait(): Promise<void> {
    return this.pause ? this.pause() : Promise.resolve();
  }
}

/**
 * `items` ordered by an integer key in [0, 2^32), ties in their current order: through one
 * native sort of packed numbers, so 100k items take a few milliseconds instead of a
 * comparator sort's tens.
 */
function sortByKey<T>(items: T[], key: (t: T) => number): T[] {
  const SHIFT = 2 ** 20;
  if (items.length < 64 || items.length >= SHIFT) return items.sort((a, b) => key(a) - key(b));
  const packed = new Float64Array(items.length);
  for (let i = 0; i < items.length; i++) packed[i] = key(items[i]!) * SHIFT + i;
  packed.sort();
  const copy = items.slice();
  for (let i = 0; i < items.length; i++) items[i] = copy[packed[i]! % SHIFT]!;
  return items;
}

const byDate = (a: ThreadRow, b: ThreadRow) => a.date - b.date || a.uid - b.uid;

/** `rows` in sent-date order (date, then UID = sequence order); sorted here only when they are not already. */
function dateOrdered(rows: readonly ThreadRow[]): readonly ThreadRow[] {
  for (let i = 1; i < rows.length; i++) if (byDate(rows[i - 1]!, rows[i]!) > 0) return [...rows].sort(byDate);
  return rows;
}

/** Thread `rows` (any order; fastest in sent-date order) with `alg`. */
export async function threadMessages(alg: ThreadAlgorithm, rows: readonly ThreadRow[], opts: ThreadOptions = {}): Promise<ThreadNode[]> {
  const pacer = new Pacer(opts.pause);
  const sorted = dateOrdered(rows);
  if (alg === 'ORDEREDSUBJECT') return orderedSubject(sorted, opts.subjectOrder, pacer);
  return references(sorted, alg === 'REFS', pacer);
}

// ---------------------------------------------------------------- ORDEREDSUBJECT

async function orderedSubject(rows: readonly ThreadRow[], subjectOrder: readonly number[] | undefined, pacer: Pacer): Promise<OutNode[]> {
  // Positions in (base subject, sent date, sequence) order.
  let order: number[];
  if (subjectOrder) {
    const posOf = new Map<number, number>();
    for (let i = 0; i < rows.length; i++) posOf.set(rows[i]!.uid, i);
    order = [];
    for (const uid of subjectOrder) {
      const p = posOf.get(uid);
      if (p !== undefined) order.push(p);
    }
  } else {
    // Stable sort of the date order by subject.
    order = rows.map((_, i) => i);
    order.sort((a, b) => {
      const sa = rows[a]!.subject;
      const sb = rows[b]!.subject;
      return sa < sb ? -1 : sa > sb ? 1 : a - b;
    });
  }
  if (pacer.due(rows.length)) await pacer.wait();
  const threads: OutNode[] = [];
  const leaf = (p: number): OutNode => ({ uid: rows[p]!.uid, children: [], key: p });
  for (let i = 0; i < order.length;) {
    let j = i + 1;
    while (j < order.length && rows[order[j]!]!.subject === rows[order[i]!]!.subject) j++;
    // The first message is the root; the others are its children (no grandchildren).
    const root = leaf(order[i]!);
    for (let k = i + 1; k < j; k++) root.children.push(leaf(order[k]!));
    threads.push(root);
    i = j;
    if (pacer.due(j - i + 1)) await pacer.wait();
  }
  // Threads by the sent date of their first message.
  sortByKey(threads, (t) => t.key);
  return threads;
}

// ---------------------------------------------------------------- REFERENCES / REFS

function dummy(): Node {
  return { pos: -1, row: null, parent: null, children: new Set() };
}

function link(parent: Node, child: Node): void {
  if (child.parent) child.parent.children.delete(child);
  child.parent = parent;
  parent.children.add(child);
}

function unlink(child: Node): void {
  if (child.parent) child.parent.children.delete(child);
  child.parent = null;
}

/** Whether `a` is `b` or one of its descendants (linking a as b's parent would make a loop). */
function wouldLoop(a: Node, b: Node): boolean {
  let n: Node | null = a;
  for (let steps = 0; n; steps++) {
    if (n === b || steps > MAX_ANCESTOR_WALK) return true;
    n = n.parent;
  }
  return false;
}

/** Positions of `rows` (date order) in sequence (UID) order, without a comparator sort. */
function sequenceOrder(rows: readonly ThreadRow[]): Uint32Array {
  // UID (< 2^32) and position (< 2^20 for any mailbox we thread) packed into one exact double.
  const SHIFT = 2 ** 20;
  if (rows.length >= SHIFT) {
    const idx = Uint32Array.from(rows.keys());
    return idx.sort((a, b) => rows[a]!.uid - rows[b]!.uid);
  }
  const packed = new Float64Array(rows.length);
  for (let i = 0; i < rows.length; i++) packed[i] = rows[i]!.uid * SHIFT + i;
  packed.sort();
  const out = new Uint32Array(rows.length);
  for (let i = 0; i < rows.length; i++) out[i] = packed[i]! % SHIFT;
  return out;
}

async function references(rows: readonly ThreadRow[], refs: boolean, pacer: Pacer): Promise<OutNode[]> {
  const byId = new Map<string, Node>();
  const idNode = (id: string): Node => {
    let n = byId.get(id);
    if (!n) {
      n = dummy();
      byId.set(id, n);
    }
    return n;
  };
  /** Messages without a Message-ID of their own (none, or a duplicate): roots not reachable through byId. */
  const unnamed: Node[] = [];

  // (1) links from each message's references, in sequence order (step 1.A: the lowest
  // sequence number keeps a duplicated Message-ID).
  for (const pos of sequenceOrder(rows)) {
    const row = rows[pos]!;
    let node: Node | undefined;
    if (row.messageId !== null) {
      const known = byId.get(row.messageId);
      if (!known) {
        node = { pos, row, parent: null, children: new Set() };
        byId.set(row.messageId, node);
      } else if (known.row === null) {
        // A dummy created by an earlier reference: this message is it.
        known.row = row;
        known.pos = pos;
        node = known;
      }
    }
    if (!node) {
      // No Message-ID, or a duplicate of an earlier message's: a unique id of its own (step 1.A).
      node = { pos, row, parent: null, children: new Set() };
      unnamed.push(node);
    }

    const list = row.references.length > 0 ? row.references : row.inReplyTo !== null ? [row.inReplyTo] : [];
    // (1.A) each reference is the parent of the next, unless that child has a parent already or it would loop.
    for (let k = 0; k + 1 < list.length; k++) {
      const p = idNode(list[k]!);
      const c = idNode(list[k + 1]!);
      if (p === c || c.parent || wouldLoop(p, c)) continue;
      link(p, c);
    }
    // (1.B) the last reference is this message's parent (replacing a parent from a truncated chain,
    // which is dropped even when the new link cannot be made).
    const last = list.length > 0 ? idNode(list[list.length - 1]!) : null;
    if (node.parent && node.parent !== last) unlink(node);
    if (last && last !== node && !node.parent && !wouldLoop(last, node)) link(last, node);
    if (pacer.due(1 + list.length)) await pacer.wait();
  }

  // (2) the messages without a parent are the threads so far.
  const roots: Node[] = [];
  for (const n of byId.values()) {
    if (!n.parent) roots.push(n);
    if (pacer.due()) await pacer.wait();
  }
  for (const n of unnamed) if (!n.parent) roots.push(n);

  // (3) prune dummies.
  let top = await prune(roots, pacer);

  // (4) the threads by sent date; a dummy (only at the top now, with message children) by its first child.
  const firstOf = (n: Node): number => {
    if (n.row) return n.pos;
    let best = -1;
    for (const c of n.children) if (best < 0 || c.pos < best) best = c.pos;
    return best;
  };
  const first = new Map<Node, number>();
  for (const n of top) {
    first.set(n, firstOf(n));
    if (pacer.due(1 + n.children.size)) await pacer.wait();
  }
  sortByKey(top, (n) => first.get(n)!);

  // (5) threads with the same base subject are gathered (not for REFS).
  if (!refs) top = await mergeSubjects(top, firstOf, pacer);

  // (6) every set of siblings by sent date, the deepest first; a dummy by its first child.
  const out = await toTree(top, pacer);
  if (refs) {
    // Dovecot's REFS: threads by their newest message (the most recently active thread last).
    const newest = new Map<OutNode, number>();
    for (const t of out) {
      let best = t.key;
      const stack = [...t.children];
      while (stack.length) {
        const c = stack.pop()!;
        if (c.key > best) best = c.key;
        for (const g of c.children) stack.push(g);
      }
      newest.set(t, best);
      if (pacer.due()) await pacer.wait();
    }
    sortByKey(out, (t) => newest.get(t)!);
  }
  return out;
}

/** RFC 5256 §4 step 3, iteratively (deep threads must not exhaust the stack). */
async function prune(roots: Node[], pacer: Pacer): Promise<Node[]> {
  const pruneLevel = async (siblings: Iterable<Node>, atRoot: boolean): Promise<Node[]> => {
    const out: Node[] = [];
    const todo: Node[] = [...siblings];
    while (todo.length > 0) {
      const n = todo.pop()!;
      if (pacer.due()) await pacer.wait();
      if (n.row === null) {
        if (n.children.size === 0) continue; // a dummy without children goes
        if (!atRoot || n.children.size === 1) {
          // Its children take its place (examined in turn: they may be dummies too).
          for (const k of n.children) todo.push(k);
          continue;
        }
      }
      out.push(n);
    }
    return out;
  };
  const top = await pruneLevel(roots, true);
  for (const t of top) t.parent = null;
  // Then every level below.
  const stack: Node[] = [...top];
  while (stack.length > 0) {
    const n = stack.pop()!;
    if (n.children.size === 0) continue;
    let hasDummy = false;
    for (const c of n.children) if (c.row === null) hasDummy = true;
    if (hasDummy) {
      const kids = await pruneLevel(n.children, false);
      n.children = new Set(kids);
      for (const k of kids) k.parent = n;
    }
    for (const k of n.children) stack.push(k);
    if (pacer.due(n.children.size)) await pacer.wait();
  }
  // A dummy kept at the top because it had two children may have lost them to the pruning below (they
  // were dummies whose messages moved elsewhere, step 1.B): applied bottom-up, step 3 deletes it when
  // none is left and promotes a single one (it had thrown a TypeError in step 6).
  const out: Node[] = [];
  for (const t of top) {
    if (t.row !== null || t.children.size >= 2) out.push(t);
    else for (const k of t.children) out.push(k);
  }
  for (const t of out) t.parent = null;
  return out;
}

/** RFC 5256 §4 step 5. */
async function mergeSubjects(top: Node[], firstOf: (n: Node) => number, pacer: Pacer): Promise<Node[]> {
  // The thread subject: the message's base subject, or a dummy's first child's.
  const subjectOf = (n: Node): string => {
    if (n.row) return n.row.subject;
    const p = firstOf(n);
    for (const c of n.children) if (c.pos === p) return c.row?.subject ?? '';
    return '';
  };
  const isReply = (n: Node) => n.row?.isReply === true;
  const subjects = new Map<Node, string>();
  for (const n of top) {
    subjects.set(n, subjectOf(n));
    if (pacer.due(1 + n.children.size)) await pacer.wait();
  }
  // (B) the subject table.
  const table = new Map<string, Node>();
  for (const n of top) {
    const s = subjects.get(n)!;
    if (s === '') continue;
    const had = table.get(s);
    if (!had) table.set(s, n);
    else if (had.row !== null && (n.row === null || (isReply(had) && !isReply(n)))) table.set(s, n);
    if (pacer.due()) await pacer.wait();
  }
  // (C) merge.
  const removed = new Set<Node>();
  const added: Node[] = [];
  for (const n of top) {
    const s = subjects.get(n)!;
    if (s === '') continue;
    const t = table.get(s)!;
    if (t === n) continue;
    if (t.row === null && n.row === null) {
      for (const c of [...n.children]) link(t, c);
      removed.add(n);
    } else if (t.row === null || (isReply(n) && !isReply(t))) {
      // Into the dummy's children, or a reply under the non-reply.
      link(t, n);
      removed.add(n);
    } else {
      // A new dummy holds both, and takes the table message's place among the threads.
      const d = dummy();
      removed.add(t);
      removed.add(n);
      link(d, t);
      link(d, n);
      table.set(s, d);
      added.push(d);
    }
    if (pacer.due(2)) await pacer.wait();
  }
  const out: Node[] = [];
  for (const n of [...top, ...added]) if (!removed.has(n)) out.push(n);
  for (const n of out) n.parent = null;
  return out;
}

/** RFC 5256 §4 step 6: sort each set of siblings by date (deepest first) and build the output tree. */
async function toTree(top: Node[], pacer: Pacer): Promise<OutNode[]> {
  // Post-order without recursion: children are converted (and sorted) before their parent.
  const order: Node[] = [];
  const stack: Node[] = [...top];
  while (stack.length > 0) {
    const n = stack.pop()!;
    order.push(n);
    for (const c of n.children) stack.push(c);
    if (pacer.due()) await pacer.wait();
  }
  for (let i = order.length - 1; i >= 0; i--) {
    const n = order[i]!;
    const kids: OutNode[] = [];
    for (const c of n.children) kids.push(c.out!);
    if (kids.length > 1) sortByKey(kids, (k) => k.key);
    n.out = { uid: n.row?.uid ?? 0, children: kids, key: n.row ? n.pos : kids[0]!.key };
    if (pacer.due()) await pacer.wait();
  }
  const result = top.map((n) => n.out!);
  sortByKey(result, (t) => t.key);
  return result;
}

/** The THREAD response's thread lists (RFC 5256 §5 thread-list), numbering messages with `num` (UID -> number shown). */
export function formatThreads(nodes: readonly ThreadNode[], num: (uid: number) => number): string {
  // members(n): the message, then its one child inline or its children as lists; a dummy is just its children.
  // Chains are walked iteratively; only branching nests.
  const members = (n: ThreadNode): string => {
    const parts: string[] = [];
    let cur: ThreadNode | undefined = n;
    while (cur) {
      if (cur.uid !== 0) parts.push(String(num(cur.uid)));
      if (cur.uid !== 0 && cur.children.length === 1) {
        cur = cur.children[0];
        continue;
      }
      if (cur.children.length > 0) parts.push(cur.children.map((c) => `(${members(c)})`).join(''));
      break;
    }
    return parts.join(' ');
  };
  return nodes.map((n) => `(${members(n)})`).join('');
}

/** Nodes of a ThreadForest formatted between two turns of the event loop (a millisecond or two). */
const FORMAT_SLICE = 5_000;

/**
 * The THREAD response's thread lists for a store-computed forest (src/store/threading.ts: preorder, each
 * node's UID or 0 for a dummy, then its number of children): the same text as formatThreads, as ASCII
 * bytes, built without recursion, handing the event loop a turn every FORMAT_SLICE nodes. `num` returns
 * 0 for a UID the session does not know; then the answer is null (the caller threads another way).
 */
export async function formatForest(forest: ThreadForest, num: (uid: number) => number, pause?: () => Promise<void>): Promise<Buffer | null> {
  const f = forest.nodes;
  const out = new AsciiBuilder(Math.max(64, f.length * 4));
  /** Per open group of sibling lists: how many are still to start (the outermost: the threads). */
  const groups: number[] = [forest.roots];
  let p = 0;
  let done = 0;
  while (groups.length > 0) {
    const g = groups.length - 1;
    if (groups[g] === 0) {
      groups.pop();
      if (groups.length > 0) out.byte(0x29); // ")" closes the member list that opened this group
      continue;
    }
    groups[g]!--;
    out.byte(0x28); // "("
    // The members: a chain of messages with one child each, then the children of the last as lists.
    let first = true;
    for (;;) {
      const uid = f[p]!;
      const k = f[p + 1]!;
      p += 2;
      if (pause && ++done % FORMAT_SLICE === 0) await pause();
      if (uid !== 0) {
        const m = num(uid);
        if (m === 0) return null;
        if (!first) out.byte(0x20);
        out.number(m);
        first = false;
        if (k === 1) continue;
      }
      if (k > 0) {
        if (!first) out.byte(0x20);
        groups.push(k);
      } else out.byte(0x29);
      break;
    }
  }
  return out.bytes();
}
