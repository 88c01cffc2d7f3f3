// SORT and UID SORT — RFC 5256 §3 (sort keys, base subject §2.1, sent date
// §2.2, i;unicode-casemap collation via the stored keys), RFC 5957 (SORT=DISPLAY:
// DISPLAYFROM, DISPLAYTO), ESORT (RFC 5267 §3: RETURN MIN MAX COUNT ALL),
// SEARCHRES with SORT (RFC 5182 §2.4 SAVE, "$" in the criteria), PARTIAL
// (RFC 9394 §3). CHARSET is mandatory (RFC 5256 §3) and handled as SEARCH does.
import { defineCommand, bad, type CommandContext } from './types.js';
import { ArgReader } from './args.js';
import { SearchSyntaxError, usesModseq, type Criterion } from '../search/program.js';
import { parseSortCriteria } from '../search/sort.js';
import { enableCondstore } from './condstore.js';
import type { SortCriterion } from '../store/types.js';
import type { SelectedView } from '../session/view.js';
import { badCharset, esearchLine, findMatches, matchesAll, parseCriteria, parseReturn, savedOf, viewScope, type ReturnSpec } from './results.js';
import { addContext, checkUpdate, refusedLine } from './context.js';
import { toMetaFilter } from '../search/meta.js';
import { AsciiBuilder } from '../wire/ascii.js';

/** Numbers formatted (or checked against the view) between two turns of the event loop. */
const FORMAT_SLICE = 10_000;
const tick = () => new Promise<void>((r) => setImmediate(r));

/** The sorted UIDs the client knows of: all of them unless an expunge is pending (the store no longer has those). */
async function visible(view: SelectedView, uids: number[]): Promise<number[]> {
  if (view.expungedPending.size === 0) return uids;
  const out: number[] = [];
  for (let i = 0; i < uids.length; i += FORMAT_SLICE) {
    if (i > 0) await tick();
    for (const u of uids.slice(i, i + FORMAT_SLICE)) if (view.seqOf(u) !== 0) out.push(u);
  }
  return out;
}

interface SortArgs {
  ret: ReturnSpec | null;
  criteria: SortCriterion[];
  program: Criterion | null;
}

function spec(uidMode: boolean) {
  return defineCommand<SortArgs>({
    name: uidMode ? 'UID SORT' : 'SORT',
    states: ['selected'],
    rfc: 'RFC 5256 §3, RFC 5957 §3, RFC 5267 §3, RFC 5182 §2.4, RFC 9394 §3',
    // RFC 5256 §3: no EXPUNGE while answering SORT (UID SORT may).
    expungeAllowed: uidMode,
    parse(args) {
      const r = new ArgReader(args);
      const ret = parseReturn(r);
      let criteria: SortCriterion[];
      try {
        criteria = parseSortCriteria(r.list('sort criteria'));
      } catch (e) {
        if (e instanceof SearchSyntaxError) throw bad(e.message);
        throw e;
      }
      const charset = r.astringText('charset');
      if (r.done) throw bad('Missing search criteria');
      return { ret, criteria, program: parseCriteria(r, charset).program };
    },
    run: (ctx, a) => runSort(ctx, a, uidMode),
  });
}

async function runSort(ctx: CommandContext, a: SortArgs, uidMode: boolean) {
  const s = ctx.session;
  const view = s.selected!;
  const saving = a.ret?.opts.includes('SAVE') ?? false;
  if (!a.program) {
    if (saving) s.savedSearch = [];
    badCharset();
  }
  const program = a.program;
  // RFC 5267 §4.3: UPDATE under a tag whose context is still active is refused.
  const update = a.ret?.opts.includes('UPDATE') ? checkUpdate(view, ctx.tag) : null;
  if (update === 'reuse') throw bad('Tag reuse: a search with this tag is still being updated');
  const withModseq = usesModseq(program);
  if (withModseq) enableCondstore(ctx);
  const ret = a.ret;
  // Only a window is needed when nothing asks for the whole list (PARTIAL, COUNT).
  const windowOnly = !!ret?.partial && !ret.opts.some((o) => o === 'MIN' || o === 'MAX' || o === 'SAVE' || o === 'UPDATE');
  const maxUid = view.uids.length ? view.uids[view.uids.length - 1]! : 0;
  let sorted: number[];
  let window: { uids: number[]; total: number } | undefined;
  let meta = new Map<number, { modseq: number }>();
  try {
    let restrict: number[] | null = null;
    if (!matchesAll(program) || withModseq) {
      const found = await findMatches(ctx, program, withModseq);
      restrict = found.uids;
      meta = found.meta;
    }
    if (windowOnly) {
      const r = await ctx.store.sortMessages(view.mailboxId, { criteria: a.criteria, uids: restrict, maxUid, range: ret!.partial });
      window = { uids: await visible(view, r.uids), total: r.total };
      sorted = window.uids;
    } else {
      const r = await ctx.store.sortMessages(view.mailboxId, { criteria: a.criteria, uids: restrict, maxUid });
      sorted = await visible(view, r.uids);
    }
  } catch (e) {
    // RFC 5182 §2.1: a failed ... SAVE leaves "$" empty.
    if (saving) s.savedSearch = [];
    throw e;
  }
  const num = uidMode ? (u: number) => u : (u: number) => view.seqOf(u);
  const highest = (uids: readonly number[]) => uids.reduce((mx, u) => Math.max(mx, meta.get(u)?.modseq ?? 0), 0);
  if (!ret) {
    // RFC 5256 §4: * SORT; RFC 7162 §3.1.7: with MODSEQ the highest mod-sequence follows.
    const mod = withModseq && sorted.length ? ` (MODSEQ ${highest(sorted)})` : '';
    // A 100k-message answer is written as ASCII a slice at a time (the event loop gets turns between them).
    const text = new AsciiBuilder(sorted.length * 7 + 16);
    text.text('SORT');
    for (let i = 0; i < sorted.length; i++) {
      if (i > 0 && i % FORMAT_SLICE === 0) await tick();
      text.byte(0x20);
      text.number(num(sorted[i]!));
    }
    text.text(mod);
    ctx.out.untagged([text.bytes()]);
    return { text: 'SORT completed' };
  }
  if (saving) {
    s.savedSearch = savedOf(ret, sorted);
    if (ret.opts.length === 1) return { text: 'SORT completed, result saved' };
  }
  ctx.out.untagged(esearchLine(ctx.tag, ret, { result: sorted, window, num, uidMode, modseq: withModseq ? highest : undefined }));
  if (update) {
    // Only programs the store's index answers are kept up to date (RFC 5267 §4.3.1 lets a server refuse).
    const filter = withModseq ? null : toMetaFilter(program, viewScope(s));
    if (update === 'ok' && filter) {
      addContext(view, ctx.tag, uidMode, filter, program, a.criteria, sorted, a.ret?.updateFetch ?? null);
      return { text: 'SORT completed, will notify' };
    }
    ctx.out.untagged(refusedLine(ctx.tag, update === 'refused'));
  }
  return { text: 'SORT completed' };
}

export const sort = spec(false);
export const uidSort = spec(true);
