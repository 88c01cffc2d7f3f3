// The window a SORT PARTIAL range (RFC 9394 §3) selects from a sorted list of
// `total` messages, shared by every backend's sortMessages.

/** first:last, 1-based; negative ends count from the last message (-1 = the last). */
export interface PartialRange {
  first: number;
  last: number;
}

/** The rows to skip and to take for `range` over `total` sorted messages (all of them without a range). */
export function partialWindow(range: PartialRange | undefined, total: number): { offset: number; want: number } {
  if (!range) return { offset: 0, want: total };
  if (range.first > 0) {
    const offset = range.first - 1;
    return { offset, want: Math.max(0, Math.min(range.last, total) - offset) };
  }
  // -a:-b (a <= b): from the b-th last to the a-th last message (RFC 9394).
  const offset = Math.max(0, total + range.last);
  return { offset, want: Math.max(0, total + range.first + 1 - offset) };
}
