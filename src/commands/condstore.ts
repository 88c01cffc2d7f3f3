// CONDSTORE enabling (RFC 7162 §3.1): the first CONDSTORE enabling command
// makes the server report MODSEQ from then on; when a mailbox is selected
// at that moment, its HIGHESTMODSEQ is announced (RFC 7162 §3.1.3 Example 5).
import type { CommandContext } from './types.js';
import { containsNormalized, formatRanges, rangesOf, type SeqRange } from '../wire/index.js';

export function enableCondstore(ctx: CommandContext): void {
  const s = ctx.session;
  if (s.condstore) return;
  s.enabled.add('CONDSTORE');
  if (s.selected) ctx.out.untagged(`OK [HIGHESTMODSEQ ${s.selected.highestModseq}] Highest mailbox mod-sequence`);
}


/** The parts of `ranges` (normalised, ascending) not covered by `present` (ascending UIDs). */
export function missingRanges(ranges: readonly SeqRange[], present: readonly number[]): SeqRange[] {
  const out: SeqRange[] = [];
  let i = 0;
  for (const r of ranges) {
    let start = r.start;
    while (i < present.length && present[i] < start) i++;
    while (start <= r.end) {
      if (i < present.length && present[i] <= r.end) {
        const p = present[i];
        if (p > start) out.push({ start, end: p - 1 });
        start = p + 1;
        i++;
      } else {
        out.push({ start, end: r.end });
        break;
      }
    }
  }
  return out;
}

/**
 * The UIDs of `ranges` expunged since `modseq`, as a sequence-set string or
 * null when there are none (RFC 7162 §3.2.6). When the tombstones that old are
 * gone, every UID of the ranges that no longer exists is reported, as
 * §3.2.6's note requires.
 */
export async function vanishedSince(
  ctx: CommandContext,
  mailboxId: number,
  ranges: readonly SeqRange[],
  modseq: number,
  present: readonly number[],
): Promise<string | null> {
  const { uids, complete } = await ctx.store.expungedSince(mailboxId, modseq);
  let result: SeqRange[];
  if (complete) {
    result = rangesOf(uids.filter((u) => containsNormalized(ranges, u)));
  } else {
    result = missingRanges(ranges, present);
  }
  return result.length ? formatRanges(result) : null;
}
