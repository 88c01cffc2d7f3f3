// THREAD algorithms (RFC 5256 §4): ORDEREDSUBJECT, REFERENCES, and REFS as
// Dovecot defines it (REFERENCES without the base-subject merging of step 5,
// threads ordered by their newest message). Pure: the input is what the
// store keeps per message (ThreadRow); the output a tree of sequence
// positions. Long loops hand the event loop a turn through `pause`, so a
// 100k-message THREAD never holds other connections (STYLE.md habit 14).
import type { ThreadRow } from '../store/types.js';

export type ThreadAlgorithm = 'ORDEREDSUBJECT' | 'REFERENCES' | 'REFS';
export const THREAD_ALGORITHMS: readonly ThreadAlgorithm[] = ['ORDEREDSUBJECT', 'REFERENCES', 'REFS'];

/** A thread node: a message (its index in the input) or a dummy (-1) with children. */
export interface ThreadNode {
  index: number;
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
  pause?: () => Promise<void>;
}

interface Node {
  row: ThreadRow | null;
  /** Position in the input (= sequence order among the searched messages); -1 for dummies. */
  index: number;
  parent: Node | null;
  children: Set<Node>;
}

class Pacer {
  private n = 0;
  constructor(private readonly pause?: () => Promise<void>) {}
  async step(units = 1): Promise<void> {
    this.n += units;
    if (this.pause && this.n >= PAUSE_EVERY) {
      this.n = 0;
      await this.pause();
    }
  }
}

/** Thread `rows` (ascending by UID, i.e. in sequence order) with `alg`; nodes refer to indexes of `rows`. */
export async function threadMessages(alg: ThreadAlgorithm, rows: readonly ThreadRow[], opts: ThreadOptions = {}): Promise<ThreadNode[]> {
  if (alg === 'ORDEREDSUBJECT') return orderedSubject(rows, new Pacer(opts.pause));
  return references(rows, alg === 'REFS', new Pacer(opts.pause));
}

/** Sent date, then sequence order (RFC 5256 §2.2 tie-break). */
function cmpRows(rows: readonly ThreadRow[], a: number, b: number): number {
  return rows[a]!.date - rows[b]!.date || a - b;
}

// ---------------------------------------------------------------- ORDEREDSUBJECT

async function orderedSubject(rows: readonly ThreadRow[], pacer: Pacer): Promise<ThreadNode[]> {
  // Sorted by base subject, then sent date; split into runs of one subject.
  const order = rows.map((_, i) => i);
  order.sort((a, b) => {
    const sa = rows[a]!.subject;
    const sb = rows[b]!.subject;
    return sa < sb ? -1 : sa > sb ? 1 : cmpRows(rows, a, b);
  });
  await pacer.step(rows.length);
  const threads: ThreadNode[] = [];
  for (let i = 0; i < order.length;) {
    let j = i + 1;
    while (j < order.length && rows[order[j]!]!.subject === rows[order[i]!]!.subject) j++;
    // The first message is the root; the others are its children (no grandchildren).
    const root: ThreadNode = { index: order[i]!, children: [] };
    for (let k = i + 1; k < j; k++) root.children.push({ index: order[k]!, children: [] });
    threads.push(root);
    i = j;
  }
  // Threads by the sent date of their first message.
  threads.sort((a, b) => cmpRows(rows, a.index, b.index));
  return threads;
}

// ---------------------------------------------------------------- REFERENCES / REFS

function dummy(): Node {
  return { row: null, index: -1, parent: null, children: new Set() };
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

async function references(rows: readonly ThreadRow[], refs: boolean, pacer: Pacer): Promise<ThreadNode[]> {
  const byId = new Map<string, Node>();
  const nodes: Node[] = new Array(rows.length);
  const idNode = (id: string): Node => {
    let n = byId.get(id);
    if (!n) {
      n = dummy();
      byId.set(id, n);
    }
    return n;
  };

  // (1) links from each message's references.
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!;
    let node: Node | undefined;
    if (row.messageId !== null) {
      const known = byId.get(row.messageId);
      if (!known) {
        node = { row, index: i, parent: null, children: new Set() };
        byId.set(row.messageId, node);
      } else if (known.row === null) {
        // A dummy created by an earlier reference: this message is it.
        known.row = row;
        known.index = i;
        node = known;
      }
    }
    // No Message-ID, or a duplicate of an earlier message's: a unique id of its own (step 1.A).
    node ??= { row, index: i, parent: null, children: new Set() };
    nodes[i] = node;

    const list = row.references.length > 0 ? row.references : row.inReplyTo !== null ? [row.inReplyTo] : [];
    // (1.A) each reference is the parent of the next, unless that child has a parent already or it would loop.
    for (let k = 0; k + 1 < list.length; k++) {
      const p = idNode(list[k]!);
      const c = idNode(list[k + 1]!);
      if (p === c || c.parent || wouldLoop(p, c)) continue;
      link(p, c);
    }
    // (1.B) the last reference is this message's parent (replacing a parent from a truncated chain).
    // A parent from a truncated chain is dropped even when the new link cannot be made.
    const last = list.length > 0 ? idNode(list[list.length - 1]!) : null;
    if (node.parent && node.parent !== last) unlink(node);
    if (last && last !== node && !node.parent && !wouldLoop(last, node)) link(last, node);
    await pacer.step(1 + list.length);
  }

  // (2) the messages without a parent are the threads so far.
  const roots: Node[] = [];
  const seen = new Set<Node>();
  for (const n of [...nodes, ...byId.values()]) {
    if (seen.has(n)) continue;
    seen.add(n);
    if (!n.parent) roots.push(n);
  }
  await pacer.step(roots.length);

  // (3) prune dummies.
  let top = await prune(roots, pacer);

  // (4) the threads by sent date (a dummy by its earliest child).
  const firstOf = (n: Node): number => (n.row ? n.index : first(n));
  const first = (n: Node): number => {
    let best = -1;
    for (const c of n.children) {
      const ci = firstOf(c);
      if (best < 0 || cmpRows(rows, ci, best) < 0) best = ci;
    }
    return best;
  };
  const cmpNodes = (a: Node, b: Node) => cmpRows(rows, firstOf(a), firstOf(b));
  top.sort(cmpNodes);

  // (5) threads with the same base subject are gathered (not for REFS).
  if (!refs) top = await mergeSubjects(top, rows, pacer);

  // (6) every set of siblings by sent date, the deepest first; a dummy by its first child.
  const out = await toTree(top, rows, pacer);
  if (refs) {
    // Dovecot's REFS: threads by their newest message (the most recently active thread last).
    const newest = new Map<ThreadNode, number>();
    const newestOf = (t: ThreadNode): number => {
      let best = t.index;
      const stack = [...t.children];
      while (stack.length) {
        const c = stack.pop()!;
        if (c.index >= 0 && (best < 0 || cmpRows(rows, c.index, best) > 0)) best = c.index;
        for (const g of c.children) stack.push(g);
      }
      return best;
    };
    for (const t of out) newest.set(t, newestOf(t));
    out.sort((a, b) => cmpRows(rows, newest.get(a)!, newest.get(b)!));
  }
  return out;
}

/** RFC 5256 §4 step 3, iteratively (deep threads must not exhaust the stack). */
async function prune(roots: Node[], pacer: Pacer): Promise<Node[]> {
  const pruneLevel = (siblings: Node[], atRoot: boolean): Node[] => {
    const out: Node[] = [];
    const queue = siblings.slice();
    while (queue.length > 0) {
      const n = queue.shift()!;
      if (n.row === null) {
        if (n.children.size === 0) continue; // a dummy without children goes
        if (!atRoot || n.children.size === 1) {
          // Its children take its place (re-examined: they may be dummies too).
          const kids = [...n.children];
          for (const k of kids) k.parent = n.parent;
          queue.unshift(...kids);
          continue;
        }
      }
      out.push(n);
    }
    return out;
  };
  const top = pruneLevel(roots, true);
  for (const t of top) t.parent = null;
  // Then every level below, breadth first.
  const stack: Node[] = [...top];
  while (stack.length > 0) {
    const n = stack.pop()!;
    if (n.children.size === 0) continue;
    const kids = pruneLevel([...n.children], false);
    n.children = new Set(kids);
    for (const k of kids) {
      k.parent = n;
      stack.push(k);
    }
    await pacer.step(kids.length);
  }
  return top;
}

/** RFC 5256 §4 step 5. */
async function mergeSubjects(top: Node[], rows: readonly ThreadRow[], pacer: Pacer): Promise<Node[]> {
  const firstChild = (n: Node): Node | null => {
    // The first child in date order (step 4 sorted only the top level).
    let best: Node | null = null;
    for (const c of n.children) if (c.row && (!best || cmpRows(rows, c.index, best.index) < 0)) best = c;
    return best ?? n.children.values().next().value ?? null;
  };
  const subjectOf = (n: Node): string => {
    const m = n.row ? n : firstChild(n);
    return m?.row?.subject ?? '';
  };
  const isReply = (n: Node) => n.row?.isReply === true;
  // (B) the subject table.
  const table = new Map<string, Node>();
  for (const n of top) {
    const s = subjectOf(n);
    if (s === '') continue;
    const had = table.get(s);
    if (!had) table.set(s, n);
    else if (had.row !== null && (n.row === null || (isReply(had) && !isReply(n)))) table.set(s, n);
  }
  await pacer.step(top.length);
  // (C) merge.
  const removed = new Set<Node>();
  const added: Node[] = [];
  for (const n of top) {
    const s = subjectOf(n);
    if (s === '') continue;
    const t = table.get(s)!;
    if (t === n) continue;
    if (t.row === null && n.row === null) {
      for (const c of [...n.children]) link(t, c);
      removed.add(n);
    } else if (t.row === null && n.row !== null) {
      link(t, n);
      removed.add(n);
    } else if (isReply(n) && !isReply(t)) {
      link(t, n);
      removed.add(n);
    } else {
      const d = dummy();
      // The dummy takes the table message's place among the threads.
      removed.add(t);
      removed.add(n);
      link(d, t);
      link(d, n);
      table.set(s, d);
      added.push(d);
    }
  }
  await pacer.step(top.length);
  const out: Node[] = [];
  for (const n of [...top, ...added]) if (!removed.has(n)) out.push(n);
  for (const n of out) n.parent = null;
  return out;
}

/** RFC 5256 §4 step 6: sort each set of siblings by date (deepest first) and build the output tree. */
async function toTree(top: Node[], rows: readonly ThreadRow[], pacer: Pacer): Promise<ThreadNode[]> {
  const conv = new Map<Node, ThreadNode>();
  // Post-order without recursion: children are converted (and sorted) before their parent.
  const order: Node[] = [];
  const stack: Node[] = [...top];
  while (stack.length > 0) {
    const n = stack.pop()!;
    order.push(n);
    for (const c of n.children) stack.push(c);
  }
  const keyOf = (t: ThreadNode): number => (t.index >= 0 ? t.index : t.children.length ? keyOf(t.children[0]!) : -1);
  const cmp = (a: ThreadNode, b: ThreadNode) => {
    const ka = keyOf(a);
    const kb = keyOf(b);
    if (ka < 0 || kb < 0) return kb - ka;
    return cmpRows(rows, ka, kb);
  };
  for (let i = order.length - 1; i >= 0; i--) {
    const n = order[i]!;
    const kids = [...n.children].map((c) => conv.get(c)!);
    kids.sort(cmp);
    conv.set(n, { index: n.index, children: kids });
    if (i % PAUSE_EVERY === 0) await pacer.step(PAUSE_EVERY);
  }
  const out = top.map((n) => conv.get(n)!);
  out.sort(cmp);
  return out;
}

/** The THREAD response's thread lists (RFC 5256 §5 thread-list) for `nodes`, numbering messages with `num`. */
export function formatThreads(nodes: readonly ThreadNode[], num: (index: number) => number): string {
  const parts: string[] = [];
  // members(n): "id" followed by its one child inline, or its children as lists; a dummy is just its children.
  const members = (n: ThreadNode): string => {
    let s = '';
    let cur: ThreadNode | undefined = n;
    while (cur) {
      if (cur.index >= 0) s += (s ? ' ' : '') + num(cur.index);
      if (cur.children.length === 1 && cur.index >= 0) {
        cur = cur.children[0];
        continue;
      }
      if (cur.children.length >= 1) {
        const lists = cur.children.map((c) => `(${members(c)})`).join('');
        s += cur.index >= 0 || s ? ` ${lists}` : lists;
        if (cur.index < 0 && s.startsWith(' ')) s = s.slice(1);
      }
      break;
    }
    return s;
  };
  for (const n of nodes) parts.push(`(${members(n)})`);
  return parts.join('');
}
