// Search contexts: RETURN (UPDATE) on SEARCH and SORT, the ADDTO / REMOVEFROM
// notifications, and CANCELUPDATE (RFC 5267 §4.3). A context remembers the
// results the client was told (UIDs, in the requested order); when a change
// of the mailbox arrives, the query is run again against the store and, at
// the next point where the connection sends mailbox updates, the difference
// goes out: REMOVEFROM for expunged messages before the EXPUNGE (while their
// sequence numbers still hold), ADDTO after the EXISTS that announces new
// messages (RFC 5267 §4.3.3, §4.3.4). Sort keys never change, so a sorted
// result only gains and loses members; positions are computed from the lists.
import { defineCommand, bad, no, type CommandContext } from './types.js';
import { ArgReader, astringBytes } from './args.js';
import { formatSequenceSet, quoted } from '../wire/index.js';
import type { Criterion } from '../search/program.js';
import type { MailStore, MetaFilter, SortCriterion } from '../store/types.js';
import type { Session } from '../session/session.js';
import type { SelectedView, UpdateContext } from '../session/view.js';
import { matchFilter, viewScope } from './results.js';
import type { FetchItem } from './fetch-items.js';

/** Update contexts per selected mailbox (RFC 5267 §4.3.1: at least one; each costs a re-run per change). */
export const MAX_UPDATE_CONTEXTS = 8;
/** Most tags one CANCELUPDATE names. */
const MAX_CANCEL_TAGS = 64;

/** What a context re-runs: the filter built when the command arrived (sequence numbers and "$" fixed then, RFC 5267 §4.3). */
interface ContextQuery {
  filter: MetaFilter;
  program: Criterion;
  criteria: SortCriterion[] | null;
  /** RFC 5465 §7 `UPDATE (fetch-att)`: FETCHed for new messages joining the result; null without. */
  fetch: FetchItem[] | null;
  /** Highest UID this context has been compared against: members above it joined by arriving, not by a flag change. */
  seenMax: number;
}

/** A FETCH the connection renders (for new members, RFC 5465 §7) before the ESEARCH line that follows it. */
export interface ContextFetch {
  uids: number[];
  items: FetchItem[];
}

/** What goes out after the flush for one context: its FETCHes (if any), then its ESEARCH line (if any). */
export interface AfterFlush {
  fetch?: ContextFetch;
  line?: string;
}

/**
 * Registers an update context for `tag` with the result just sent, or
 * answers why not: "reuse" (BAD, RFC 5267 §4.3) or "refused" (an untagged
 * NO [NOUPDATE], §4.3.1, while the command itself succeeds).
 */
export function checkUpdate(view: SelectedView, tag: string): 'ok' | 'reuse' | 'refused' {
  if (view.contexts.has(tag)) return 'reuse';
  if (view.contexts.size >= MAX_UPDATE_CONTEXTS) return 'refused';
  return 'ok';
}

export function addContext(
  view: SelectedView,
  tag: string,
  uid: boolean,
  filter: MetaFilter,
  program: Criterion,
  criteria: SortCriterion[] | null,
  told: readonly number[],
  fetch: FetchItem[] | null = null,
): void {
  const query: ContextQuery = { filter, program, criteria, fetch, seenMax: view.uids.length ? view.uids[view.uids.length - 1]! : 0 };
  view.contexts.set(tag, { tag, uid, sorted: criteria !== null, told: [...told], fresh: null, query });
}

/** The untagged NO [NOUPDATE] of RFC 5267 §4.3.1: too many contexts, or a program the store's index cannot re-run. */
export function refusedLine(tag: string, tooMany: boolean): string {
  return `NO [NOUPDATE ${quoted(tag)}] ${tooMany ? 'Too many search contexts' : 'Updates are not available for this search'}`;
}

/** Runs every context's query again (after a change of the mailbox); the differences go out at the next flush. */
export async function refreshContexts(store: MailStore, session: Session): Promise<void> {
  const view = session.selected;
  if (!view || view.contexts.size === 0) return;
  // Against the store as it is now: messages not yet announced are held back at the flush.
  const scope = { ...viewScope(session), has: () => true };
  for (const c of [...view.contexts.values()]) {
    const q = c.query as ContextQuery;
    let uids = await matchFilter(store, scope, q.filter, q.program);
    if (q.criteria) uids = (await store.sortMessages(view.mailboxId, { criteria: q.criteria, uids })).uids;
    if (session.selected !== view || !view.contexts.has(c.tag)) return; // unselected or cancelled meanwhile
    c.fresh = uids;
  }
}

/** Whether some context has something to tell. */
export function contextsPending(view: SelectedView): boolean {
  for (const c of view.contexts.values()) if (c.fresh || c.told.some((u) => view.expungedPending.has(u))) return true;
  return false;
}

function esearch(c: UpdateContext, items: string[]): string {
  return `ESEARCH (TAG ${quoted(c.tag)})${c.uid ? ' UID' : ''} ${items.join(' ')}`;
}

/** REMOVEFROM for told messages that are being expunged: sent before the flush, while their numbers are valid. */
export function linesBeforeFlush(view: SelectedView): string[] {
  const out: string[] = [];
  for (const c of view.contexts.values()) {
    if (!c.told.some((u) => view.expungedPending.has(u))) continue;
    const keep = c.told.filter((u) => !view.expungedPending.has(u));
    const item = removals(c, view, c.told, new Set(keep));
    c.told = keep;
    if (item) out.push(esearch(c, [item]));
  }
  return out;
}

/**
 * ADDTO / REMOVEFROM bringing each context from what it told to its fresh
 * result: sent after the flush. A context with `UPDATE (fetch-att)` first
 * has its new members FETCHed, those that joined by arriving (RFC 5465 §7:
 * "No untagged FETCH response SHOULD be returned if a message becomes a
 * member ... due to flag or annotation changes"); §7 puts the EXISTS, then
 * the FETCHes, then the ESEARCH.
 */
export function linesAfterFlush(view: SelectedView): AfterFlush[] {
  const out: AfterFlush[] = [];
  const top = view.uids.length ? view.uids[view.uids.length - 1]! : 0;
  for (const c of view.contexts.values()) {
    if (!c.fresh) continue;
    const q = c.query as ContextQuery;
    // Only messages the client knows of (announced, not being expunged).
    const visible = c.fresh.filter((u) => view.seqOf(u) !== 0 && !view.expungedPending.has(u));
    c.fresh = null;
    const visibleSet = new Set(visible);
    const items: string[] = [];
    const rem = removals(c, view, c.told, visibleSet);
    if (rem) items.push(rem);
    const kept = c.told.filter((u) => visibleSet.has(u));
    const add = additions(c, view, kept, visible);
    if (add) items.push(add);
    const entry: AfterFlush = {};
    if (q.fetch && add) {
      const had = new Set(kept);
      const arrived = visible.filter((u) => u > q.seenMax && !had.has(u)).sort((a, b) => a - b);
      if (arrived.length) entry.fetch = { uids: arrived, items: q.fetch };
    }
    q.seenMax = Math.max(q.seenMax, top);
    c.told = visible;
    if (items.length) entry.line = esearch(c, items);
    if (entry.fetch || entry.line) out.push(entry);
  }
  return out;
}

const num = (c: UpdateContext, view: SelectedView) => (u: number) => (c.uid ? u : view.seqOf(u));

/** REMOVEFROM of the members of `from` not in `keep`: position 0 and mailbox order for SEARCH; runs at their positions for SORT. */
function removals(c: UpdateContext, view: SelectedView, from: readonly number[], keep: ReadonlySet<number>): string | null {
  const n = num(c, view);
  const gone = from.filter((u) => !keep.has(u));
  if (gone.length === 0) return null;
  if (!c.sorted) return `REMOVEFROM (0 ${formatSequenceSet(gone.map(n).sort((a, b) => a - b))})`;
  // Runs of consecutive removed members; each position counts the removals before it.
  const pairs: string[] = [];
  let removed = 0;
  for (let i = 0; i < from.length;) {
    if (keep.has(from[i]!)) {
      i++;
      continue;
    }
    let j = i;
    while (j < from.length && !keep.has(from[j]!)) j++;
    pairs.push(`${i + 1 - removed} ${formatSequenceSet(from.slice(i, j).map(n))}`);
    removed += j - i;
    i = j;
  }
  return `REMOVEFROM (${pairs.join(' ')})`;
}

/** ADDTO turning `kept` into `to` (a superset in the same order). */
function additions(c: UpdateContext, view: SelectedView, kept: readonly number[], to: readonly number[]): string | null {
  const n = num(c, view);
  const had = new Set(kept);
  const added = to.filter((u) => !had.has(u));
  if (added.length === 0) return null;
  if (!c.sorted) return `ADDTO (0 ${formatSequenceSet(added.map(n).sort((a, b) => a - b))})`;
  // Runs of consecutive new members at their final positions, in increasing order.
  const pairs: string[] = [];
  for (let i = 0; i < to.length;) {
    if (had.has(to[i]!)) {
      i++;
      continue;
    }
    let j = i;
    while (j < to.length && !had.has(to[j]!)) j++;
    pairs.push(`${i + 1} ${formatSequenceSet(to.slice(i, j).map(n))}`);
    i = j;
  }
  return `ADDTO (${pairs.join(' ')})`;
}

// ---------------------------------------------------------------- CANCELUPDATE (RFC 5267 §4.3.5)

export const cancelUpdate = defineCommand<{ tags: string[] }>({
  name: 'CANCELUPDATE',
  states: ['selected'],
  rfc: 'RFC 5267 §4.3.5',
  parse(args) {
    const r = new ArgReader(args);
    const tags: string[] = [];
    while (!r.done) {
      if (tags.length >= MAX_CANCEL_TAGS) throw bad('Too many tags');
      tags.push(astringBytes(r.next('tag'), 'tag').toString('utf8'));
    }
    if (tags.length === 0) throw bad('CANCELUPDATE needs the tags of the searches to stop');
    return { tags };
  },
  async run(ctx: CommandContext, a) {
    const view = ctx.session.selected!;
    const unknown = a.tags.filter((t) => !view.contexts.has(t));
    for (const t of a.tags) view.contexts.delete(t);
    if (unknown.length) throw no(`No update context for ${unknown.map((t) => quoted(t)).join(' ').slice(0, 200)}`);
    return { text: 'No further updates' };
  },
});
