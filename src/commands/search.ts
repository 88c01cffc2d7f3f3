// SEARCH and UID SEARCH — RFC 9051 §6.4.4, §6.4.9, rev1 keys RFC 3501 §6.4.4;
// ESEARCH result options (RFC 4731), SEARCHRES "$" and SAVE (RFC 5182),
// PARTIAL (RFC 9394); CHARSET (RFC 9051 §6.4.4: US-ASCII and UTF-8
// required, legacy charsets via iconv-lite). The pieces SORT and THREAD
// share with it are in results.ts.
import { refuseSearchCharset } from './utf8.js';
import { defineCommand, bad, type CommandContext } from './types.js';
import { ArgReader, isAtom } from './args.js';
import { usesModseq, type Criterion } from '../search/program.js';
import { enableCondstore } from './condstore.js';
import type { MessageMeta } from '../store/types.js';
import { FORMAT_SLICE, badCharset, esearchLine, findMatches, numbersOf, parseCriteria, parseReturn, savedOf, viewScope, type ReturnSpec } from './results.js';
import { AsciiBuilder } from '../wire/ascii.js';

const tick = () => new Promise<void>((r) => setImmediate(r));
import { addContext, checkUpdate, refusedLine } from './context.js';
import { toMetaFilter } from '../search/meta.js';

interface SearchArgs {
  ret: ReturnSpec | null;
  program: Criterion | null;
}

function spec(uidMode: boolean) {
  return defineCommand<SearchArgs>({
    name: uidMode ? 'UID SEARCH' : 'SEARCH',
    states: ['selected'],
    rfc: uidMode ? 'RFC 9051 §6.4.9, §6.4.4' : 'RFC 9051 §6.4.4, RFC 4731, RFC 5182, RFC 9394',
    // RFC 9051 §7.5.1: no EXPUNGE while answering SEARCH (the UID form may).
    expungeAllowed: uidMode,
    parse(args, session) {
      const r = new ArgReader(args);
      const ret = parseReturn(r);
      let charset = 'UTF-8';
      if (isAtom(r.peek(), 'CHARSET')) {
        r.next('CHARSET');
        refuseSearchCharset(session); // RFC 6855 §3
        charset = r.astringText('charset');
      }
      return { ret, program: parseCriteria(r, charset).program };
    },
    async run(ctx, a) {
      return runSearch(ctx, a, uidMode);
    },
  });
}

async function runSearch(ctx: CommandContext, a: SearchArgs, uidMode: boolean) {
  const s = ctx.session;
  if (!a.program) {
    // RFC 9051 §6.4.4.1: a SEARCH ... SAVE answered NO empties "$".
    if (a.ret?.opts.includes('SAVE')) s.savedSearch = [];
    badCharset();
  }
  const program = a.program;
  // RFC 5267 §4.3: UPDATE under a tag whose context is still active is refused.
  const update = a.ret?.opts.includes('UPDATE') ? checkUpdate(s.selected!, ctx.tag) : null;
  if (update === 'reuse') throw bad('Tag reuse: a search with this tag is still being updated');
  // RFC 7162 §3.1: SEARCH with MODSEQ is a CONDSTORE enabling command.
  const withModseq = usesModseq(program);
  if (withModseq) enableCondstore(ctx);
  let found: { uids: number[]; meta: Map<number, MessageMeta> };
  try {
    found = await findMatches(ctx, program, withModseq);
  } catch (e) {
    // RFC 5182 §2.1: a failed SEARCH ... SAVE leaves "$" empty.
    if (a.ret?.opts.includes('SAVE')) s.savedSearch = [];
    throw e;
  }
  const r = await answer(ctx, a, uidMode, found.uids, found.meta, withModseq);
  if (update) {
    // Only programs the store's index answers are kept up to date (RFC 5267 §4.3.1 lets a server refuse).
    const filter = withModseq ? null : toMetaFilter(program, viewScope(s));
    if (update === 'ok' && filter) {
      addContext(s.selected!, ctx.tag, uidMode, filter, program, null, found.uids, a.ret?.updateFetch ?? null);
      return { text: 'SEARCH completed, will notify' };
    }
    ctx.out.untagged(refusedLine(ctx.tag, update === 'refused'));
  }
  return r;
}

/** The untagged SEARCH / ESEARCH response and SAVE handling (RFC 9051 §7.3.4, RFC 4731, RFC 5182). */
async function answer(ctx: CommandContext, a: SearchArgs, uidMode: boolean, result: number[], meta: Map<number, MessageMeta>, withModseq: boolean) {
  const s = ctx.session;
  const view = s.selected!;
  const num = uidMode ? (u: number) => u : (u: number) => view.seqOf(u);
  const ret: ReturnSpec | null = a.ret ?? (s.rev2 ? { opts: ['ALL'] } : null);
  // RFC 7162 §3.1.6 / §3.1.10: with MODSEQ, results carry the highest mod-sequence of the messages returned.
  const highest = (uidsOut: readonly number[]) => uidsOut.reduce((mx, u) => Math.max(mx, meta.get(u)?.modseq ?? 0), 0);
  // Numbered (and written) a slice per turn of the event loop: a 100k-message answer is ~10 ms of work.
  const nums = await numbersOf(view, result, uidMode);
  if (!ret) {
    const mod = withModseq && result.length ? ` (MODSEQ ${highest(result)})` : '';
    const text = new AsciiBuilder(nums.length * 7 + 16);
    text.text('SEARCH');
    for (let i = 0; i < nums.length; i++) {
      if (i > 0 && i % FORMAT_SLICE === 0) await tick();
      text.byte(0x20);
      text.number(nums[i]!);
    }
    text.text(mod);
    ctx.out.untagged([text.bytes()]);
    return { text: 'SEARCH completed' };
  }
  if (ret.opts.includes('SAVE')) {
    s.savedSearch = savedOf(ret, result);
    // RFC 5182 §2.4: SAVE alone produces no ESEARCH response.
    if (ret.opts.length === 1) return { text: 'SEARCH completed, result saved' };
  }
  ctx.out.untagged(esearchLine(ctx.tag, ret, { result, nums, num, uidMode, modseq: withModseq ? highest : undefined }));
  return { text: 'SEARCH completed' };
}

export const search = spec(false);
export const uidSearch = spec(true);
export type { CommandContext };
