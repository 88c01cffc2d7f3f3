// Sequence sets to UIDs, once per command (STYLE.md habit 9): binary search
// over the view's sorted UIDs, never a scan per number.
import { normalizeRanges, STAR, type SequenceSet } from '../wire/index.js';
import type { Session } from './session.js';

export class SequenceError extends Error {}

/**
 * The UIDs (ascending, unique, all in the view) named by `set`.
 * UID mode: numbers that name no message are ignored (RFC 9051 §6.4.9) and
 * "*" is the highest UID in the mailbox, so "n:*" always includes it.
 * Sequence mode: a number above the message count is an error (BAD), and so
 * is any set, "*" included, when the mailbox is empty.
 * "$" is the saved search result (RFC 5182 §2.1), restricted to what still exists.
 */
export function resolveUids(session: Session, set: SequenceSet, uidMode: boolean): number[] {
  const view = session.selected;
  if (!view) return [];
  const uids = view.uids;
  if (set.saved) return session.savedSearch.filter((u) => view.seqOf(u) !== 0);
  if (uidMode) {
    if (uids.length === 0) return [];
    const maxUid = uids[uids.length - 1];
    const out: number[] = [];
    for (const r of normalizeRanges(set.ranges, maxUid)) {
      let i = view.lowerBound(r.start);
      while (i < uids.length && uids[i] <= r.end) out.push(uids[i++]);
    }
    return out;
  }
  const exists = uids.length;
  for (const r of set.ranges) {
    // RFC 9051 §9 seq-number: BAD for a number above the message count,
    // "including "*" if the selected mailbox is empty".
    if (exists === 0 || (r.start !== STAR && r.start > exists) || (r.end !== STAR && r.end > exists)) {
      throw new SequenceError('Invalid message sequence number');
    }
  }
  const out: number[] = [];
  for (const r of normalizeRanges(set.ranges, exists)) {
    for (let s = r.start; s <= r.end; s++) out.push(uids[s - 1]);
  }
  return out;
}
