// Evaluating a SEARCH program over a mailbox. Keys the index answers
// (flags, sizes, dates, UIDs, sequence numbers) use message metadata only;
// content keys read the message through a lazily created accessor. The loop
// yields to the event loop regularly so other connections stay responsive
// on 100k-message mailboxes (STYLE.md habit 14).
import { performance } from 'node:perf_hooks';
import { dateToUtcMs, normalizeRanges, type SequenceSet } from '../wire/index.js';
import type { HeaderIndex, MessageMeta } from '../store/types.js';
import type { Criterion } from './program.js';
import { serverDay, withinTarget } from './meta.js';

const DAY_MS = 86_400_000;
/** Messages whose content is read concurrently by a content search (bounded memory: each may be large). */
const CONTENT_CONCURRENCY = 8;
/**
 * Longest run of evaluation between two yields to the event loop (ms). By
 * time, not by count: bodies served from the body cache involve no I/O, so
 * a count of 2,000 let a BODY search over 300 cached messages hold the loop
 * for 20-30 ms (no other connection, and no INPROGRESS timer, ran meanwhile).
 */
export const EVAL_SLICE_MS = 5;

/** What content keys need from a message. */
export interface MessageContent {
  /** Decoded (RFC 2047, charset) values of every header field named `field`. */
  headerValues(field: string): string[];
  /** The field's values as parsed addresses in canonical form (FROM/TO/CC/BCC keys; see mime addressSearchText). */
  addressValues(field: string): string[];
  /** All header fields decoded, as text (for TEXT). */
  headerText(): string;
  /** Decoded text of the body parts (for BODY and TEXT). */
  bodyText(): string;
  /** The Date header's calendar day (in its own zone) as days since the epoch, or null. */
  sentDay(): number | null;
}

export interface SearchTarget {
  /** Client-visible UIDs in sequence order. */
  uids: readonly number[];
  meta: Map<number, MessageMeta>;
  isRecent(uid: number): boolean;
  /** Resolve "$" (RFC 5182) to UIDs. */
  saved(): number[];
  content(uid: number): Promise<MessageContent | null>;
  /** The store's SEARCH header index, when loaded: answers FROM/TO/CC/BCC/SUBJECT/SENT* without reading messages. */
  index?: Map<number, HeaderIndex | null>;
  /** Evaluate only these UIDs (the rest are known not to match); sequence numbers still follow `uids`. */
  only?: ReadonlySet<number>;
}

const INDEXED_FIELDS = new Set(['from', 'to', 'cc', 'bcc', 'subject']);

/** Whether the header index can help this program (so the caller loads it). */
export function usesHeaderIndex(c: Criterion): boolean {
  switch (c.k) {
    case 'header': return INDEXED_FIELDS.has(c.field.toLowerCase());
    case 'sentbefore': case 'senton': case 'sentsince': return true;
    case 'not': return usesHeaderIndex(c.c);
    case 'or': return usesHeaderIndex(c.a) || usesHeaderIndex(c.b);
    case 'and': return c.cs.some(usesHeaderIndex);
    default: return false;
  }
}

function needsContent(c: Criterion): boolean {
  switch (c.k) {
    case 'header': case 'body': case 'text': case 'sentbefore': case 'senton': case 'sentsince': return true;
    case 'not': return needsContent(c.c);
    case 'or': return needsContent(c.a) || needsContent(c.b);
    case 'and': return c.cs.some(needsContent);
    default: return false;
  }
}

/** Cheap keys first so AND can short-circuit before reading message content. */
function cost(c: Criterion): number {
  if (needsContent(c)) return 2;
  return 0;
}

/** The calendar day of a message's INTERNALDATE in its own zone, as days since the epoch. */
function localDay(m: MessageMeta): number {
  return Math.floor((m.internalDate + (m.internalTz ?? 0) * 60_000) / DAY_MS);
}

function dayOf(d: { year: number; month: number; day: number }): number {
  return Math.floor(dateToUtcMs(d) / DAY_MS);
}

function setMatcher(set: SequenceSet, max: number, saved: () => number[]): (n: number) => boolean {
  if (set.saved) {
    const s = new Set(saved());
    return (n) => s.has(n);
  }
  const ranges = normalizeRanges(set.ranges, max);
  return (n) => {
    let lo = 0;
    let hi = ranges.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const r = ranges[mid];
      if (n < r.start) hi = mid - 1;
      else if (n > r.end) lo = mid + 1;
      else return true;
    }
    return false;
  };
}

/** Evaluate `program`; returns the matching UIDs in ascending order. */
export async function evaluate(program: Criterion, target: SearchTarget): Promise<number[]> {
  const uids = target.uids;
  const maxUid = uids.length ? uids[uids.length - 1] : 0;
  const matchers = new Map<Criterion, (n: number) => boolean>();
  const matcherFor = (c: Criterion & { set: SequenceSet }, max: number) => {
    let m = matchers.get(c);
    if (!m) {
      // "$" under a sequence-number key still means saved UIDs (RFC 5182 §2.1).
      m = setMatcher(c.set, max, target.saved);
      matchers.set(c, m);
    }
    return m;
  };
  const sortAnd = (c: Criterion): void => {
    if (c.k === 'and') {
      c.cs.sort((a, b) => cost(a) - cost(b));
      c.cs.forEach(sortAnd);
    } else if (c.k === 'not') sortAnd(c.c);
    else if (c.k === 'or') { sortAnd(c.a); sortAnd(c.b); }
  };
  sortAnd(program);

  const matchOne = async (idx: number): Promise<boolean> => {
    const uid = uids[idx];
    if (target.only && !target.only.has(uid)) return false;
    const meta = target.meta.get(uid);
    if (!meta) return false;
    const seq = idx + 1;
    let content: MessageContent | null | undefined;
    const getContent = async () => {
      if (content === undefined) content = await target.content(uid);
      return content;
    };
    const test = async (c: Criterion): Promise<boolean> => {
      switch (c.k) {
        case 'all': return true;
        case 'flag': {
          const has = meta.flags.some((f) => f.toLowerCase() === c.flag.toLowerCase());
          return has === c.present;
        }
        case 'recent': return target.isRecent(uid) === c.present;
        case 'new': return target.isRecent(uid) && !meta.flags.includes('\\Seen');
        case 'seq':
          if (c.set.saved) return matcherFor(c, maxUid)(uid);
          return matcherFor(c, uids.length)(seq);
        case 'uid': return matcherFor(c, maxUid)(uid);
        case 'larger': return meta.size > c.n;
        case 'older': return meta.internalDate <= withinTarget(c.seconds);
        case 'younger': return meta.internalDate >= withinTarget(c.seconds);
        case 'smaller': return meta.size < c.n;
        // RFC 9051 §6.4.4: the day as the INTERNALDATE is written, in its own zone.
        case 'before': return localDay(meta) < dayOf(c.date);
        case 'on': return localDay(meta) === dayOf(c.date);
        case 'since': return localDay(meta) >= dayOf(c.date);
        case 'modseq': return meta.modseq >= c.modseq;
        case 'savedbefore': case 'savedon': case 'savedsince': {
          // RFC 8514 §4.3: a message without a save date compares its internal date.
          const t = meta.saveDate ?? meta.internalDate;
          const { start, end } = serverDay(c.date);
          return c.k === 'savedbefore' ? t < start : c.k === 'savedon' ? t >= start && t < end : t >= start;
        }
        case 'emailid': return meta.emailId === c.id;
        // RFC 8474 §6: filled in by the caller (findMatchesIn) when the program asks for a THREADID.
        case 'threadid': return meta.threadId === c.id;
        case 'sentbefore': case 'senton': case 'sentsince': {
          const ix = target.index?.get(uid);
          const d = ix ? ix.sentDay : ((await getContent())?.sentDay() ?? null);
          if (d === null) return false;
          const want = dayOf(c.date);
          return c.k === 'sentbefore' ? d < want : c.k === 'senton' ? d === want : d >= want;
        }
        case 'header': {
          const needle = c.value.toLowerCase();
          const field = c.field.toLowerCase();
          // The index holds address fields as parsed addresses: only the address keys may use them.
          if (needle !== '' && INDEXED_FIELDS.has(field) && (field === 'subject' || c.address)) {
            const v = target.index?.get(uid)?.[field as 'from' | 'to' | 'cc' | 'bcc' | 'subject'];
            if (typeof v === 'string') return v.includes(needle);
          }
          const ct = await getContent();
          if (!ct) return false;
          const values = c.address ? ct.addressValues(c.field) : ct.headerValues(c.field);
          return values.some((v) => v.toLowerCase().includes(needle));
        }
        case 'body': {
          const ct = await getContent();
          return !!ct && ct.bodyText().toLowerCase().includes(c.value.toLowerCase());
        }
        case 'text': {
          const ct = await getContent();
          if (!ct) return false;
          const needle = c.value.toLowerCase();
          return ct.headerText().toLowerCase().includes(needle) || ct.bodyText().toLowerCase().includes(needle);
        }
        case 'not': return !(await test(c.c));
        case 'or': return (await test(c.a)) || (await test(c.b));
        case 'and':
          for (const x of c.cs) if (!(await test(x))) return false;
          return true;
      }
    };
    return test(program);
  };

  // Content keys wait on file reads: several messages are read at once (in
  // order of results); metadata-only programs run one by one without I/O.
  const width = needsContent(program) ? CONTENT_CONCURRENCY : 1;
  const out: number[] = [];
  let sliceStart = performance.now();
  for (let idx = 0; idx < uids.length; idx += width) {
    if (performance.now() - sliceStart >= EVAL_SLICE_MS) {
      await new Promise((r) => setImmediate(r));
      sliceStart = performance.now();
    }
    const n = Math.min(width, uids.length - idx);
    const hits = width === 1 ? [await matchOne(idx)] : await Promise.all(Array.from({ length: n }, (_, j) => matchOne(idx + j)));
    for (let j = 0; j < n; j++) if (hits[j]) out.push(uids[idx + j]);
  }
  return out;
}

export { needsContent };
