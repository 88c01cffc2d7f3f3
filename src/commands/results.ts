// What SEARCH, SORT and THREAD share: the CHARSET and search criteria that
// follow them (RFC 9051 §6.4.4, RFC 5256 §3), finding the matching messages,
// the RETURN options of ESEARCH (RFC 4731), ESORT (RFC 5267 §3), SEARCHRES
// (RFC 5182) and PARTIAL (RFC 9394), and the ESEARCH answer.
import iconv from 'iconv-lite';
import { bad, no, type CommandContext } from './types.js';
import type { Token } from '../wire/types.js';
import { ArgReader, isAtom, isList } from './args.js';
import { parseFetchAtt } from './fetch.js';
import { withThreadIds, type FetchItem } from './fetch-items.js';
import { formatSequenceSet, quoted } from '../wire/index.js';
import { parseProgram, SearchSyntaxError, type Criterion } from '../search/program.js';
import { evaluate, needsContent, usesHeaderIndex } from '../search/evaluate.js';
import { toMetaFilter } from '../search/meta.js';
import { formatPartialRange, parsePartialRange, windowOf, type PartialRange } from '../search/sort.js';
import type { MailStore, MessageMeta, MetaFilter } from '../store/types.js';
import type { Session } from '../session/session.js';
import { searchContent } from './mime-bridge.js';

export type ReturnOpt = 'MIN' | 'MAX' | 'ALL' | 'COUNT' | 'SAVE' | 'PARTIAL' | 'UPDATE' | 'CONTEXT';

export interface ReturnSpec {
  opts: ReturnOpt[];
  partial?: PartialRange;
  /** RFC 5465 §7 `UPDATE (fetch-att ...)`: what to FETCH for each new message joining the result. */
  updateFetch?: FetchItem[];
}

/** Most fetch attributes one `UPDATE (...)` may name (as NOTIFY's MessageNew list). */
export const MAX_UPDATE_FETCH_ITEMS = 100;

function decodeWith(charset: string) {
  const cs = charset.toUpperCase();
  return (t: Token): string => {
    const bytes = t.kind === 'string' ? t.bytes : Buffer.from((t as { value: string }).value, 'latin1');
    if (cs === 'UTF-8' || cs === 'US-ASCII') return bytes.toString('utf8');
    return iconv.decode(bytes, cs);
  };
}

/** RETURN (...) if present (RFC 4731 §3.1, RFC 5267 §3, RFC 9394 §3); null when absent. */
export function parseReturn(r: ArgReader): ReturnSpec | null {
  if (!isAtom(r.peek(), 'RETURN')) return null;
  r.next('RETURN');
  const items = r.list('return options');
  const spec: ReturnSpec = { opts: [] };
  for (let i = 0; i < items.length; i++) {
    const o = items[i]!;
    if (!isAtom(o)) throw bad('Invalid RETURN option');
    const v = o.value.toUpperCase() as ReturnOpt;
    if (!['MIN', 'MAX', 'ALL', 'COUNT', 'SAVE', 'PARTIAL', 'UPDATE', 'CONTEXT'].includes(v)) throw bad(`Unknown RETURN option ${o.value.slice(0, 20)}`);
    if (v === 'PARTIAL') {
      const t = items[++i];
      const range = t && isAtom(t) ? parsePartialRange(t.value) : null;
      if (!range) throw bad('PARTIAL needs a range such as 1:50 or -1:-50');
      if (spec.partial) throw bad('PARTIAL given twice');
      spec.partial = range;
    }
    if (v === 'UPDATE' && isList(items[i + 1])) {
      // RFC 5465 §8: modifier-update = "UPDATE" ["(" fetch-att *(SP fetch-att) ")"].
      const atts = (items[++i] as { items: Token[] }).items;
      if (atts.length === 0) throw bad('Empty UPDATE fetch attribute list');
      if (spec.updateFetch) throw bad('UPDATE given twice');
      const fetch: FetchItem[] = [];
      for (const a of atts) parseFetchAtt(a, fetch);
      if (fetch.length > MAX_UPDATE_FETCH_ITEMS) throw bad('Too many fetch attributes', 'LIMIT');
      spec.updateFetch = fetch;
    }
    if (!spec.opts.includes(v)) spec.opts.push(v);
  }
  // RFC 9394 §3: PARTIAL and ALL are mutually exclusive.
  if (spec.partial && spec.opts.includes('ALL')) throw bad('RETURN PARTIAL and ALL cannot be combined');
  // RFC 4731 §3.1: RETURN () means RETURN (ALL).
  if (spec.opts.length === 0) spec.opts.push('ALL');
  // RFC 5267 §4.2: CONTEXT is a hint only; alone it asks for nothing else, like RETURN ().
  if (spec.opts.length === 1 && spec.opts[0] === 'CONTEXT') spec.opts.push('ALL');
  return spec;
}

export interface Criteria {
  /** Null for an unsupported charset: answered NO [BADCHARSET] by run (which must also empty "$" under SAVE). */
  program: Criterion | null;
}

/** Whether a charset can be used for search strings (RFC 9051 §6.4.4: US-ASCII and UTF-8 at least; others through iconv-lite). */
export function charsetSupported(charset: string): boolean {
  const upper = charset.toUpperCase();
  return upper === 'UTF-8' || upper === 'US-ASCII' || iconv.encodingExists(charset);
}

/** The search criteria that end the command, their strings in `charset`. */
export function parseCriteria(r: ArgReader, charset: string): Criteria {
  if (!charsetSupported(charset)) {
    while (!r.done) r.next('search key');
    return { program: null };
  }
  const rest: Token[] = [];
  while (!r.done) rest.push(r.next('search key'));
  try {
    return { program: parseProgram(rest, { text: decodeWith(charset) }) };
  } catch (e) {
    if (e instanceof SearchSyntaxError) throw bad(e.message);
    throw e;
  }
}

export function badCharset(): never {
  throw no('Unsupported charset', 'BADCHARSET (UTF-8 US-ASCII)');
}

/** Whether a program matches every message (the common "list the folder" case). */
export function matchesAll(c: Criterion): boolean {
  if (c.k === 'all') return true;
  if (c.k === 'and') return c.cs.every(matchesAll);
  return false;
}

/** What a search needs to know of the messages a client sees (the selected view, or a whole mailbox for MULTISEARCH). */
export interface SearchScope {
  mailboxId: number;
  /** Visible UIDs, ascending (index + 1 = sequence number). */
  uids: readonly number[];
  recent: ReadonlySet<number>;
  saved: readonly number[];
  /** Whether a UID is visible. */
  has(uid: number): boolean;
}

export function viewScope(s: Session): SearchScope {
  const view = s.selected!;
  return { mailboxId: view.mailboxId, uids: view.uids, recent: view.recent, saved: s.savedSearch, has: (u) => view.seqOf(u) !== 0 };
}

/**
 * The visible UIDs matching a MetaFilter compiled from `program` (answered by
 * the store's index; what it cannot decide is read and judged), ascending.
 */
/** Whether a program has a SEARCH THREADID key (RFC 8474 §6): the evaluator then needs the messages' THREADIDs. */
function usesThreadId(c: Criterion): boolean {
  switch (c.k) {
    case 'threadid': return true;
    case 'not': return usesThreadId(c.c);
    case 'or': return usesThreadId(c.a) || usesThreadId(c.b);
    case 'and': return c.cs.some(usesThreadId);
    default: return false;
  }
}

/** Metadata for the evaluator, with THREADIDs when the program compares them. */
async function metasFor(store: MailStore, mailboxId: number, program: Criterion, metas: MessageMeta[]): Promise<MessageMeta[]> {
  return usesThreadId(program) ? withThreadIds(store, mailboxId, metas, [{ kind: 'THREADID' }]) : metas;
}

export async function matchFilter(store: MailStore, scope: SearchScope, filter: MetaFilter, program: Criterion): Promise<number[]> {
  const found = await store.searchMeta(scope.mailboxId, filter);
  let result = visibleOf(scope, found.uids);
  if (found.undecided.length > 0) {
    // Messages stored without an index are judged by reading them.
    const undecided = visibleOf(scope, found.undecided);
    const metas = await metasFor(store, scope.mailboxId, program, await store.getMessages(scope.mailboxId, undecided));
    const more = await evaluate(program, {
      uids: scope.uids,
      meta: new Map(metas.map((m) => [m.uid, m])),
      isRecent: (uid) => scope.recent.has(uid),
      saved: () => [...scope.saved],
      content: (uid) => searchContent(store, scope.mailboxId, uid),
      only: new Set(undecided),
    });
    result = [...result, ...more].sort((x, y) => x - y);
  }
  return result;
}

/**
 * The UIDs of ascending `uids` that `scope` shows (scope.has), in one walk along both lists: a UID of
 * scope.uids is shown, the others are asked (a binary search per UID held the event loop ~10 ms for
 * a 100k-message result).
 */
export function visibleOf(scope: SearchScope, uids: readonly number[]): number[] {
  const view = scope.uids;
  const out: number[] = [];
  let j = 0;
  let last = -1;
  for (const u of uids) {
    if (u <= last) return uids.filter((x) => scope.has(x)); // not ascending after all: one look-up each
    last = u;
    while (j < view.length && view[j]! < u) j++;
    if ((j < view.length && view[j] === u) || scope.has(u)) out.push(u);
  }
  return out;
}

/**
 * The numbers the client is shown for `uids` (the UIDs themselves, or their sequence numbers), a slice
 * per turn of the event loop; an ascending list is numbered in one walk along the view.
 */
export async function numbersOf(view: { uids: readonly number[]; seqOf(uid: number): number }, uids: readonly number[], uidMode: boolean): Promise<number[]> {
  if (uidMode) return uids as number[];
  const out = new Array<number>(uids.length);
  const all = view.uids;
  let j = 0;
  let last = -1;
  for (let i = 0; i < uids.length; i++) {
    if (i > 0 && i % FORMAT_SLICE === 0) await tick();
    const u = uids[i]!;
    if (u > last) {
      while (j < all.length && all[j]! < u) j++;
      out[i] = all[j] === u ? j + 1 : 0;
      last = u;
    } else out[i] = view.seqOf(u);
  }
  return out;
}

/** Numbers numbered or written between two turns of the event loop. */
export const FORMAT_SLICE = 10_000;
const tick = () => new Promise<void>((r) => setImmediate(r));

/**
 * The UIDs of the messages in `scope` that match `program`, ascending;
 * `meta` holds the metadata read on the way (for MODSEQ).
 */
export async function findMatchesIn(store: MailStore, scope: SearchScope, program: Criterion, withModseq: boolean): Promise<{ uids: number[]; meta: Map<number, MessageMeta> }> {
  const filter = toMetaFilter(program, scope);
  if (filter && !withModseq) return { uids: await matchFilter(store, scope, filter, program), meta: new Map() };
  const metas = await metasFor(store, scope.mailboxId, program, await store.listMessages(scope.mailboxId));
  const meta = new Map(metas.map((m) => [m.uid, m]));
  const contentNeeded = needsContent(program);
  const index = usesHeaderIndex(program) ? await store.headerIndex(scope.mailboxId) : undefined;
  const uids = await evaluate(program, {
    uids: scope.uids,
    meta,
    isRecent: (uid) => scope.recent.has(uid),
    saved: () => [...scope.saved],
    content: contentNeeded ? (uid) => searchContent(store, scope.mailboxId, uid) : async () => null,
    index,
  });
  return { uids, meta };
}

/** findMatchesIn over the selected mailbox as the client sees it. */
export function findMatches(ctx: CommandContext, program: Criterion, withModseq: boolean): Promise<{ uids: number[]; meta: Map<number, MessageMeta> }> {
  return findMatchesIn(ctx.store, viewScope(ctx.session), program, withModseq);
}

/** RFC 5182 §2.4: what SAVE keeps of a result (in result order: `result` may be sorted). */
export function savedOf(ret: ReturnSpec, result: readonly number[]): number[] {
  const o = ret.opts;
  const onlyMinMax = !o.includes('ALL') && !o.includes('COUNT') && !o.includes('PARTIAL') && (o.includes('MIN') || o.includes('MAX'));
  if (onlyMinMax && result.length) {
    const keep: number[] = [];
    if (o.includes('MIN')) keep.push(result[0]!);
    if (o.includes('MAX') && result[result.length - 1] !== keep[0]) keep.push(result[result.length - 1]!);
    return keep.sort((a, b) => a - b);
  }
  return [...result].sort((a, b) => a - b);
}

export interface EsearchData {
  /** The matching UIDs in result order (ascending for SEARCH, sorted for SORT). */
  result: readonly number[];
  /** When only a window of the result was read (PARTIAL without ALL/MIN/MAX): the window and the total. */
  window?: { uids: readonly number[]; total: number };
  /** UID -> number shown (sequence number, or the UID itself under UID). */
  num: (uid: number) => number;
  /** `result` numbered already (numbersOf), when the caller has it. */
  nums?: readonly number[];
  uidMode: boolean;
  /** MODSEQ data item (RFC 7162 §3.1.6) for these UIDs, when the program used MODSEQ. */
  modseq?: (uids: readonly number[]) => number;
  /** More search correlators after the TAG (RFC 7377 §2.1: MAILBOX and UIDVALIDITY), already formatted. */
  correlators?: string;
}

/** The ESEARCH response (RFC 4731 §3.2, RFC 5267 §3, RFC 9394 §3) for a result. */
export function esearchLine(tag: string, ret: ReturnSpec, d: EsearchData): string {
  const parts = [`ESEARCH (TAG ${quoted(tag)}${d.correlators ? ` ${d.correlators}` : ''})`];
  if (d.uidMode) parts.push('UID');
  const nums = d.nums ?? d.result.map(d.num);
  const total = d.window ? d.window.total : nums.length;
  const o = ret.opts;
  if (nums.length) {
    if (o.includes('MIN')) parts.push(`MIN ${nums[0]}`);
    if (o.includes('MAX')) parts.push(`MAX ${nums[nums.length - 1]}`);
  }
  if (o.includes('COUNT')) parts.push(`COUNT ${total}`);
  if (o.includes('ALL') && nums.length) parts.push(`ALL ${formatSequenceSet(nums)}`);
  if (ret.partial) {
    const inWindow = d.window ? d.window.uids.map(d.num) : windowOf(nums, ret.partial);
    parts.push(`PARTIAL (${formatPartialRange(ret.partial)} ${inWindow.length ? formatSequenceSet(inWindow) : 'NIL'})`);
  }
  if (d.modseq && d.result.length) {
    const reported = o.includes('ALL') || o.includes('COUNT') ? d.result : [d.result[0]!, d.result[d.result.length - 1]!].filter((_, i) => (i === 0 ? o.includes('MIN') : o.includes('MAX')));
    if (reported.length) parts.push(`MODSEQ ${d.modseq(reported)}`);
  }
  return parts.join(' ');
}

