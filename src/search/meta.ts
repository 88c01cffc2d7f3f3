// Turning a SEARCH program into a store MetaFilter when it needs no message
// body (metadata and the header index), so the backend answers it from its index (STYLE.md: search/
// compiles what a backend can run). Sequence numbers, \Recent and "$" are
// session notions: they become UID ranges here, from the session's view.
import { dateToUtcMs, normalizeRanges, rangesOf, type ImapDate, type SequenceSet } from '../wire/index.js';
import type { MetaFilter } from '../store/types.js';
import type { Criterion } from './program.js';

const DAY_MS = 86_400_000;

/** RFC 5032 §2: now less the interval, to the second. */
export function withinTarget(seconds: number, now = Date.now()): number {
  return (Math.floor(now / 1000) - seconds) * 1000;
}

export interface ViewFacts {
  /** Client-visible UIDs, ascending (index + 1 = sequence number). */
  uids: readonly number[];
  recent: ReadonlySet<number>;
  saved: readonly number[];
}

function setToUids(set: SequenceSet, seqMode: boolean, v: ViewFacts): MetaFilter {
  if (set.saved) return { k: 'uids', ranges: rangesOf([...v.saved].sort((a, b) => a - b)) };
  const uids = v.uids;
  if (uids.length === 0) return { k: 'none' };
  if (!seqMode) return { k: 'uids', ranges: normalizeRanges(set.ranges, uids[uids.length - 1]) };
  // A range of sequence numbers is the range of UIDs between its ends: no UID in
  // between can be outside the view except expunged ones, which the store lacks.
  return { k: 'uids', ranges: normalizeRanges(set.ranges, uids.length).map((r) => ({ start: uids[r.start - 1], end: uids[r.end - 1] })) };
}

/**
 * The instants where `d` begins and ends in the server's zone: SAVEDATE is
 * shown in that zone, so RFC 8514's "disregarding time and timezone" is the
 * day as shown.
 */
export function serverDay(d: ImapDate): { start: number; end: number } {
  const at = (utcMidnight: number): number => {
    // The offset at local midnight, found in two steps (a DST change near it moves it).
    let t = utcMidnight + new Date(utcMidnight).getTimezoneOffset() * 60_000;
    t = utcMidnight + new Date(t).getTimezoneOffset() * 60_000;
    return t;
  };
  const u = dateToUtcMs(d);
  return { start: at(u), end: at(u + DAY_MS) };
}

/** The MetaFilter equivalent to `c`, or null when `c` needs message content. */
export function toMetaFilter(c: Criterion, v: ViewFacts): MetaFilter | null {
  switch (c.k) {
    case 'all': return { k: 'all' };
    case 'flag': return { k: 'flag', flag: c.flag, present: c.present };
    case 'recent': {
      const f: MetaFilter = { k: 'uids', ranges: rangesOf([...v.recent].sort((a, b) => a - b)) };
      return c.present ? f : { k: 'not', f };
    }
    case 'new': return { k: 'and', fs: [{ k: 'uids', ranges: rangesOf([...v.recent].sort((a, b) => a - b)) }, { k: 'flag', flag: '\\Seen', present: false }] };
    case 'seq': return setToUids(c.set, true, v);
    case 'uid': return setToUids(c.set, false, v);
    case 'larger': case 'smaller': return { k: c.k, n: c.n };
    case 'older': case 'younger': return { k: 'arrived', op: c.k === 'older' ? 'le' : 'ge', ms: withinTarget(c.seconds) };
    case 'before': case 'on': case 'since': return { k: c.k, day: Math.floor(dateToUtcMs(c.date) / DAY_MS) };
    case 'modseq': return { k: 'modseq', modseq: c.modseq };
    case 'savedbefore': case 'savedon': case 'savedsince': {
      const { start, end } = serverDay(c.date);
      return { k: c.k, start, end };
    }
    case 'emailid': return { k: 'emailid', id: c.id };
    case 'threadid': return { k: 'threadid', id: c.id };
    case 'header': {
      // The index holds From/To/Cc/Bcc/Subject; an empty needle asks whether the field exists (read the message).
      // Address fields are indexed as parsed addresses: only FROM/TO/CC/BCC keys (c.address) may use them.
      const field = c.field.toLowerCase();
      const indexed = field === 'subject' || (!!c.address && (field === 'from' || field === 'to' || field === 'cc' || field === 'bcc'));
      if (c.value === '' || !indexed) return null;
      return { k: 'header', field, value: c.value.toLowerCase() };
    }
    case 'sentbefore': case 'senton': case 'sentsince': return { k: c.k, day: Math.floor(dateToUtcMs(c.date) / DAY_MS) };
    // The store's text index narrows these; what it cannot rule out is read (src/search/evaluate.ts compares lower-cased).
    case 'body': case 'text': return { k: 'content', scope: c.k, value: c.value.toLowerCase() };
    case 'not': {
      const f = toMetaFilter(c.c, v);
      return f && { k: 'not', f };
    }
    case 'or': {
      const a = toMetaFilter(c.a, v);
      const b = a && toMetaFilter(c.b, v);
      return a && b && { k: 'or', a, b };
    }
    case 'and': {
      const fs: MetaFilter[] = [];
      for (const x of c.cs) {
        const f = toMetaFilter(x, v);
        if (!f) return null;
        fs.push(f);
      }
      return { k: 'and', fs };
    }
    default: return null;
  }
}
