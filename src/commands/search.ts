// SEARCH and UID SEARCH — RFC 9051 §6.4.4, §6.4.9, rev1 keys RFC 3501 §6.4.4;
// ESEARCH result options (RFC 4731), SEARCHRES "$" and SAVE (RFC 5182);
// CHARSET (RFC 9051 §6.4.4: US-ASCII and UTF-8 required, legacy charsets via iconv-lite).
import iconv from 'iconv-lite';
import { defineCommand, bad, no, type CommandContext } from './types.js';
import type { Token } from '../wire/types.js';
import { ArgReader, isAtom } from './args.js';
import { formatSequenceSet, quoted } from '../wire/index.js';
import { parseProgram, SearchSyntaxError, usesModseq, type Criterion } from '../search/program.js';
import { enableCondstore } from './condstore.js';
import type { MessageMeta } from '../store/types.js';
import { evaluate, needsContent, usesHeaderIndex } from '../search/evaluate.js';
import { toMetaFilter } from '../search/meta.js';
import { searchContent } from './mime-bridge.js';

type ReturnOpt = 'MIN' | 'MAX' | 'ALL' | 'COUNT' | 'SAVE';

interface SearchArgs {
  ret: ReturnOpt[] | null;
  program: Criterion | null;
  /** An unsupported CHARSET: answered NO [BADCHARSET] by run, which must also empty "$" under SAVE. */
  badCharset?: boolean;
}

function decodeWith(charset: string) {
  const cs = charset.toUpperCase();
  return (t: Token): string => {
    const bytes = t.kind === 'string' ? t.bytes : Buffer.from((t as { value: string }).value, 'latin1');
    if (cs === 'UTF-8' || cs === 'US-ASCII') return bytes.toString('utf8');
    return iconv.decode(bytes, cs);
  };
}

function spec(uidMode: boolean) {
  return defineCommand<SearchArgs>({
    name: uidMode ? 'UID SEARCH' : 'SEARCH',
    states: ['selected'],
    rfc: uidMode ? 'RFC 9051 §6.4.9, §6.4.4' : 'RFC 9051 §6.4.4, RFC 4731, RFC 5182',
    // RFC 9051 §7.5.1: no EXPUNGE while answering SEARCH (the UID form may).
    expungeAllowed: uidMode,
    parse(args) {
      const r = new ArgReader(args);
      let ret: ReturnOpt[] | null = null;
      if (isAtom(r.peek(), 'RETURN')) {
        r.next('RETURN');
        const opts = r.list('return options');
        ret = [];
        for (const o of opts) {
          if (!isAtom(o)) throw bad('Invalid RETURN option');
          const v = o.value.toUpperCase() as ReturnOpt;
          if (!['MIN', 'MAX', 'ALL', 'COUNT', 'SAVE'].includes(v)) throw bad(`Unknown RETURN option ${o.value.slice(0, 20)}`);
          if (!ret.includes(v)) ret.push(v);
        }
        // RFC 4731 §3.1: RETURN () means RETURN (ALL).
        if (ret.length === 0) ret.push('ALL');
      }
      let charset = 'UTF-8';
      if (isAtom(r.peek(), 'CHARSET')) {
        r.next('CHARSET');
        charset = r.astringText('charset');
        const upper = charset.toUpperCase();
        if (upper !== 'UTF-8' && upper !== 'US-ASCII' && !iconv.encodingExists(charset)) {
          // RFC 9051 §6.4.4.1: a SEARCH ... SAVE answered NO empties "$"; run() does both.
          return { ret, program: null, badCharset: true };
        }
      }
      const rest: Token[] = [];
      while (!r.done) rest.push(r.next('search key'));
      try {
        return { ret, program: parseProgram(rest, { text: decodeWith(charset) }) };
      } catch (e) {
        if (e instanceof SearchSyntaxError) throw bad(e.message);
        throw e;
      }
    },
    async run(ctx, a) {
      return runSearch(ctx, a, uidMode);
    },
  });
}

async function runSearch(ctx: CommandContext, a: SearchArgs, uidMode: boolean) {
  const s = ctx.session;
  const view = s.selected!;
  let result: number[];
  if (a.badCharset || !a.program) {
    if (a.ret?.includes('SAVE')) s.savedSearch = [];
    throw no('Unsupported charset', 'BADCHARSET (UTF-8 US-ASCII)');
  }
  const program = a.program;
  // RFC 7162 §3.1: SEARCH with MODSEQ is a CONDSTORE enabling command.
  const withModseq = usesModseq(program);
  if (withModseq) enableCondstore(ctx);
  let meta: Map<number, MessageMeta>;
  try {
    const filter = toMetaFilter(program, { uids: view.uids, recent: view.recent, saved: s.savedSearch });
    if (filter && !withModseq) {
      // Metadata and header index only: the store answers; keep what the client can see.
      const found = await ctx.store.searchMeta(view.mailboxId, filter);
      result = found.uids.filter((u) => view.seqOf(u) !== 0);
      meta = new Map();
      if (found.undecided.length > 0) {
        // Messages stored without an index are judged by reading them.
        const undecided = found.undecided.filter((u) => view.seqOf(u) !== 0);
        const metas = await ctx.store.getMessages(view.mailboxId, undecided);
        const more = await evaluate(program, {
          uids: view.uids,
          meta: new Map(metas.map((m) => [m.uid, m])),
          isRecent: (uid) => view.recent.has(uid),
          saved: () => s.savedSearch,
          content: (uid) => searchContent(ctx.store, view.mailboxId, uid),
          only: new Set(undecided),
        });
        result = [...result, ...more].sort((x, y) => x - y);
      }
      return answer(ctx, a, uidMode, result, meta, withModseq);
    }
    const metas = await ctx.store.listMessages(view.mailboxId);
    meta = new Map(metas.map((m) => [m.uid, m]));
    const contentNeeded = needsContent(program);
    const index = usesHeaderIndex(program) ? await ctx.store.headerIndex(view.mailboxId) : undefined;
    result = await evaluate(program, {
      uids: view.uids,
      meta,
      isRecent: (uid) => view.recent.has(uid),
      saved: () => s.savedSearch,
      content: contentNeeded ? (uid) => searchContent(ctx.store, view.mailboxId, uid) : async () => null,
      index,
    });
  } catch (e) {
    // RFC 5182 §2.1: a failed SEARCH ... SAVE leaves "$" empty.
    if (a.ret?.includes('SAVE')) s.savedSearch = [];
    throw e;
  }
  return answer(ctx, a, uidMode, result, meta, withModseq);
}

/** The untagged SEARCH / ESEARCH response and SAVE handling (RFC 9051 §7.3.4, RFC 4731, RFC 5182). */
function answer(ctx: CommandContext, a: SearchArgs, uidMode: boolean, result: number[], meta: Map<number, MessageMeta>, withModseq: boolean) {
  const s = ctx.session;
  const view = s.selected!;
  const nums = uidMode ? result : result.map((u) => view.seqOf(u));
  const ret = a.ret ?? (s.rev2 ? ['ALL' as ReturnOpt] : null);
  // RFC 7162 §3.1.6 / §3.1.10: with MODSEQ, results carry the highest mod-sequence of the messages returned.
  const highest = (uidsOut: number[]) => uidsOut.reduce((mx, u) => Math.max(mx, meta.get(u)?.modseq ?? 0), 0);
  if (!ret) {
    const mod = withModseq && result.length ? ` (MODSEQ ${highest(result)})` : '';
    ctx.out.untagged(nums.length ? `SEARCH ${nums.join(' ')}${mod}` : 'SEARCH');
    return { text: 'SEARCH completed' };
  }
  if (ret.includes('SAVE')) {
    // RFC 5182 §2.4: with only MIN and/or MAX beside SAVE, only those messages are saved.
    const onlyMinMax = !ret.includes('ALL') && !ret.includes('COUNT') && (ret.includes('MIN') || ret.includes('MAX'));
    if (onlyMinMax && result.length) {
      const keep: number[] = [];
      if (ret.includes('MIN')) keep.push(result[0]);
      if (ret.includes('MAX') && result[result.length - 1] !== keep[0]) keep.push(result[result.length - 1]);
      s.savedSearch = keep;
    } else {
      s.savedSearch = result;
    }
    // RFC 5182 §2.4: SAVE alone produces no ESEARCH response.
    if (ret.length === 1) return { text: 'SEARCH completed, result saved' };
  }
  const parts = [`ESEARCH (TAG ${quoted(ctx.tag)})`];
  if (uidMode) parts.push('UID');
  if (nums.length) {
    if (ret.includes('MIN')) parts.push(`MIN ${nums[0]}`);
    if (ret.includes('MAX')) parts.push(`MAX ${nums[nums.length - 1]}`);
  }
  if (ret.includes('COUNT')) parts.push(`COUNT ${nums.length}`);
  if (ret.includes('ALL') && nums.length) parts.push(`ALL ${formatSequenceSet(nums.slice().sort((x, y) => x - y))}`);
  if (withModseq && result.length) {
    const reported = ret.includes('ALL') || ret.includes('COUNT') ? result : [result[0], result[result.length - 1]].filter((u, i) => (i === 0 ? ret.includes('MIN') : ret.includes('MAX')));
    if (reported.length) parts.push(`MODSEQ ${highest(reported)}`);
  }
  ctx.out.untagged(parts.join(' '));
  return { text: 'SEARCH completed' };
}

export const search = spec(false);
export const uidSearch = spec(true);
export type { CommandContext };
