// SORT programs (RFC 5256 §3 sort-criteria, RFC 5957 §3 DISPLAYFROM /
// DISPLAYTO) and result windows (RFC 9394 PARTIAL, RFC 5267 §4.4): parsed
// from decoder tokens; pure.
import type { Token } from '../wire/types.js';
import type { SortCriterion, SortKey } from '../store/types.js';
import { SearchSyntaxError } from './program.js';

/** Most criteria in one sort program (there are nine keys; repeating one changes nothing). */
export const MAX_SORT_CRITERIA = 16;

const KEYS: Record<string, SortKey> = {
  ARRIVAL: 'arrival',
  CC: 'cc',
  DATE: 'date',
  FROM: 'from',
  SIZE: 'size',
  SUBJECT: 'subject',
  TO: 'to',
  DISPLAYFROM: 'displayfrom',
  DISPLAYTO: 'displayto',
};

/** RFC 5256 §5: sort-criteria = "(" sort-criterion *(SP sort-criterion) ")"; sort-criterion = ["REVERSE" SP] sort-key. */
export function parseSortCriteria(items: readonly Token[]): SortCriterion[] {
  if (items.length === 0) throw new SearchSyntaxError('Empty sort program');
  const out: SortCriterion[] = [];
  let reverse = false;
  for (const t of items) {
    if (t.kind !== 'atom' || t.section) throw new SearchSyntaxError('Expected a sort key');
    const name = t.value.toUpperCase();
    if (name === 'REVERSE') {
      if (reverse) throw new SearchSyntaxError('REVERSE must be followed by a sort key');
      reverse = true;
      continue;
    }
    const key = KEYS[name];
    if (!key) throw new SearchSyntaxError(`Unknown sort key ${t.value.slice(0, 30)}`);
    if (out.length >= MAX_SORT_CRITERIA) throw new SearchSyntaxError('Too many sort criteria');
    // A key repeated later can never decide anything: its earlier occurrence already did.
    if (!out.some((c) => c.key === key)) out.push({ key, reverse });
    reverse = false;
  }
  if (reverse) throw new SearchSyntaxError('Sort program ends with REVERSE');
  return out;
}

/** RFC 9394 §3 partial-range: "first:last", both positive (from the start) or both negative (from the end). */
export interface PartialRange {
  first: number;
  last: number;
}

/** Largest position in a range (RFC 9394: a 32-bit number). */
const MAX_POSITION = 0xffffffff;

/** Parses "1:50" or "-1:-50" (the ends in either order; RFC 9394 §3), or null when malformed. */
export function parsePartialRange(text: string): PartialRange | null {
  const m = /^(-?)([1-9][0-9]{0,9}):(-?)([1-9][0-9]{0,9})$/.exec(text);
  if (!m || m[1] !== m[3]) return null;
  let a = Number(m[2]);
  let b = Number(m[4]);
  if (a > MAX_POSITION || b > MAX_POSITION) return null;
  if (a > b) [a, b] = [b, a];
  return m[1] ? { first: -a, last: -b } : { first: a, last: b };
}

/** The range as the response echoes it. */
export function formatPartialRange(r: PartialRange): string {
  return `${r.first}:${r.last}`;
}

/** The part of `items` (in their order) that a range selects (RFC 9394 §3; beyond the ends: what there is). */
export function windowOf<T>(items: readonly T[], r: PartialRange): T[] {
  if (r.first > 0) return items.slice(r.first - 1, r.last);
  const n = items.length;
  return items.slice(Math.max(0, n + r.last), Math.max(0, n + r.first + 1));
}
