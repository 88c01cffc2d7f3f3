// Sequence sets (RFC 9051 §9 sequence-set, RFC 5182 "$").
//
//   sequence-set = (seq-number / seq-range) ["," sequence-set]
//   seq-range    = seq-number ":" seq-number   ; order does not matter
//   seq-number   = nz-number / "*"
//   nz-number    = digit-nz *DIGIT             ; < 4,294,967,296
//
// A parsed range keeps "*" as STAR (Infinity) and is stored with start <= end
// where that is already known; `resolve*` substitutes "*" with the largest
// number in use and orders the ends again (RFC 9051 §9: "*:4" with 2 messages
// is "2:4").

/** "*" in a parsed range: the largest number in use. */
export const STAR = Number.POSITIVE_INFINITY;

/** Largest nz-number / uniqueid (RFC 9051 §9: 32-bit unsigned). */
export const MAX_NZ_NUMBER = 0xffffffff;

export interface SeqRange {
  start: number;
  end: number;
}

/** `{saved:true}` is "$" (RFC 5182): the caller substitutes the saved search result. */
export type SequenceSet = { saved: true } | { saved: false; ranges: SeqRange[] };

function parseSeqNumber(s: string): number | null {
  if (s === '*') return STAR;
  if (s.length === 0 || s.length > 10) return null;
  const c0 = s.charCodeAt(0);
  if (c0 < 0x31 || c0 > 0x39) return null; // digit-nz: no "0", no leading zeros
  for (let i = 1; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return null;
  }
  const n = Number(s);
  return n <= MAX_NZ_NUMBER ? n : null;
}

/** Parse a sequence set; null when it is not valid syntax. */
export function parseSequenceSet(s: string): SequenceSet | null {
  if (s === '$') return { saved: true };
  if (s.length === 0) return null;
  const ranges: SeqRange[] = [];
  for (const part of s.split(',')) {
    const colon = part.indexOf(':');
    if (colon < 0) {
      const n = parseSeqNumber(part);
      if (n === null) return null;
      ranges.push({ start: n, end: n });
      continue;
    }
    const a = parseSeqNumber(part.slice(0, colon));
    const b = parseSeqNumber(part.slice(colon + 1));
    if (a === null || b === null) return null;
    ranges.push(a <= b ? { start: a, end: b } : { start: b, end: a });
  }
  return { saved: false, ranges };
}

/**
 * Substitute "*" with `max`, order each range, clip to [1, max], sort and
 * merge. The result is ascending, non-overlapping and non-adjacent.
 * With max = 0 (empty mailbox) the result is empty.
 */
export function normalizeRanges(ranges: readonly SeqRange[], max: number): SeqRange[] {
  const out: SeqRange[] = [];
  if (max < 1) return out;
  const tmp: SeqRange[] = [];
  for (const r of ranges) {
    let a = r.start === STAR ? max : r.start;
    let b = r.end === STAR ? max : r.end;
    if (a > b) [a, b] = [b, a];
    if (a > max) continue;
    if (b > max) b = max;
    if (a < 1) a = 1;
    if (a > b) continue;
    tmp.push({ start: a, end: b });
  }
  tmp.sort((x, y) => x.start - y.start);
  for (const r of tmp) {
    const last = out[out.length - 1];
    if (last && r.start <= last.end + 1) {
      if (r.end > last.end) last.end = r.end;
    } else {
      out.push({ start: r.start, end: r.end });
    }
  }
  return out;
}

/** Every number of the set in [1, max], ascending and unique. */
export function resolveSequenceSet(ranges: readonly SeqRange[], max: number): number[] {
  const out: number[] = [];
  for (const r of normalizeRanges(ranges, max)) {
    for (let n = r.start; n <= r.end; n++) out.push(n);
  }
  return out;
}

/** Lazily yields the numbers of the set in [1, max], ascending and unique. */
export function* iterateSequenceSet(ranges: readonly SeqRange[], max: number): Generator<number> {
  for (const r of normalizeRanges(ranges, max)) {
    for (let n = r.start; n <= r.end; n++) yield n;
  }
}

/** Whether `n` is in ranges already produced by normalizeRanges (binary search). */
export function containsNormalized(normalized: readonly SeqRange[], n: number): boolean {
  let lo = 0;
  let hi = normalized.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const r = normalized[mid]!;
    if (n < r.start) hi = mid - 1;
    else if (n > r.end) lo = mid + 1;
    else return true;
  }
  return false;
}

/** Whether `n` is in the (unnormalised) ranges, "*" meaning `max`. */
export function sequenceContains(ranges: readonly SeqRange[], n: number, max: number): boolean {
  for (const r of ranges) {
    let a = r.start === STAR ? max : r.start;
    let b = r.end === STAR ? max : r.end;
    if (a > b) [a, b] = [b, a];
    if (n >= a && n <= b) return true;
  }
  return false;
}

/** Format ranges as a sequence set ("*" for STAR), e.g. for COPYUID. */
export function formatRanges(ranges: readonly SeqRange[]): string {
  return ranges
    .map((r) => {
      const a = r.start === STAR ? '*' : String(r.start);
      const b = r.end === STAR ? '*' : String(r.end);
      return a === b ? a : `${a}:${b}`;
    })
    .join(',');
}

/**
 * Compress numbers into a sequence set: [1,2,3,7,9,10] -> "1:3,7,9:10".
 * Input order is kept (COPYUID pairs source and destination UIDs by
 * position); ascending runs are compressed. Empty input gives "".
 */
export function formatSequenceSet(nums: readonly number[]): string {
  const parts: string[] = [];
  let i = 0;
  while (i < nums.length) {
    const a = nums[i]!;
    let j = i;
    while (j + 1 < nums.length && nums[j + 1] === nums[j]! + 1) j++;
    parts.push(j === i ? String(a) : `${a}:${nums[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

/** Ascending numbers as ranges of consecutive runs (duplicates ignored): [1,2,3,7] -> 1:3, 7:7. */
export function rangesOf(sorted: readonly number[]): SeqRange[] {
  const out: SeqRange[] = [];
  for (const n of sorted) {
    const last = out[out.length - 1];
    if (last && n === last.end + 1) last.end = n;
    else if (!last || n > last.end) out.push({ start: n, end: n });
  }
  return out;
}
