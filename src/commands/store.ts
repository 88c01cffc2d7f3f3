// STORE and UID STORE — RFC 9051 §6.4.6, §6.4.9; flag semantics §2.3.2.
import { defineCommand, bad, no, type CommandContext } from './types.js';
import { ArgReader, flagArgs, isAtom, parseNumber } from './args.js';
import { resolveUids, SequenceError } from '../session/resolve.js';
import { formatSequenceSet, type SequenceSet } from '../wire/index.js';
import type { FlagOp, MessageMeta, StoreFlagsResult } from '../store/types.js';

/** Messages per STORE transaction: bounds how long one STORE holds the event loop. */
const STORE_CHUNK = 2000;
import { flagsOf } from './format.js';
import { fetchHead } from './uidonly.js';
import { enableCondstore } from './condstore.js';

interface StoreArgs {
  set: SequenceSet;
  op: FlagOp;
  silent: boolean;
  flags: string[];
  unchangedSince?: number;
}

function spec(uidMode: boolean) {
  return defineCommand<StoreArgs>({
    name: uidMode ? 'UID STORE' : 'STORE',
    states: ['selected'],
    rfc: uidMode ? 'RFC 9051 §6.4.9' : 'RFC 9051 §6.4.6',
    // RFC 9051 §7.5.1: no EXPUNGE while answering STORE (the UID form may).
    expungeAllowed: uidMode,
    parse(args) {
      const r = new ArgReader(args);
      const set = r.sequenceSet();
      let unchangedSince: number | undefined;
      const mods = r.optionalList();
      if (mods) {
        // RFC 7162 §3.1.3 store modifier.
        if (mods.length !== 2 || !isAtom(mods[0], 'UNCHANGEDSINCE') || !isAtom(mods[1])) throw bad('Invalid STORE modifier');
        unchangedSince = parseNumber(mods[1].value, 'UNCHANGEDSINCE', Number.MAX_SAFE_INTEGER);
      }
      const item = r.atom('data item').toUpperCase();
      const m = /^([+-]?)FLAGS(\.SILENT)?$/.exec(item);
      if (!m) throw bad('Expected FLAGS, +FLAGS or -FLAGS');
      const op: FlagOp = m[1] === '+' ? 'add' : m[1] === '-' ? 'remove' : 'set';
      const rest = [];
      while (!r.done) rest.push(r.next('flag'));
      const flagTokens = rest.length === 1 && rest[0].kind === 'list' ? rest[0].items : rest;
      if (rest.length === 0) throw bad('Missing flags');
      // \Recent in STORE is ignored rather than refused (RFC 3501 says it cannot be altered).
      const flags = flagArgs(flagTokens, true);
      return { set, op, silent: !!m[2], flags, unchangedSince };
    },
    async run(ctx, a) {
      return runStore(ctx, a, uidMode);
    },
  });
}

async function runStore(ctx: CommandContext, a: StoreArgs, uidMode: boolean) {
  const s = ctx.session;
  const view = s.selected!;
  if (view.readOnly) throw no('Mailbox is read-only', 'CANNOT');
  let uids: number[];
  try {
    uids = resolveUids(s, a.set, uidMode);
  } catch (e) {
    if (e instanceof SequenceError) throw bad(e.message, 'CLIENTBUG');
    throw e;
  }
  // RFC 7162 §3.1: UNCHANGEDSINCE is a CONDSTORE enabling command.
  if (a.unchangedSince !== undefined) enableCondstore(ctx);
  const live = uids.filter((u) => !view.expungedPending.has(u));
  // Big sets are stored in chunks, each its own transaction, with a yield in
  // between so other connections are served (STYLE.md habit 14; RFC 9051 does
  // not make STORE atomic across messages).
  const res: StoreFlagsResult = { changed: [], modified: [] };
  for (let i = 0; i < live.length; i += STORE_CHUNK) {
    if (i > 0) await new Promise((r) => setImmediate(r));
    const part = await ctx.store.storeFlags(view.mailboxId, live.slice(i, i + STORE_CHUNK), a.op, a.flags, a.unchangedSince);
    for (const m of part.changed) {
      view.markOwn(m.modseq);
      res.changed.push(m);
    }
    res.modified.push(...part.modified);
  }
  // Send what is queued (a new keyword's FLAGS response included) before this
  // command's FETCH responses; EXPUNGE stays held back (RFC 9051 §7.5.1).
  await ctx.settled();
  await ctx.flushUpdates(uidMode);
  const modified = new Set(res.modified);
  if (!a.silent && live.length) {
    const metas = changedOnly(res, live, view.highestModseq) ?? withChanged(await ctx.store.getMessages(view.mailboxId, live), res.changed);
    for (const m of metas) {
      if (modified.has(m.uid)) continue;
      const seq = view.seqOf(m.uid);
      if (!seq) continue;
      // A keyword another session defined after our flush is announced first (RFC 9051 §7.5.2).
      const kw = view.keywordResponses(m.flags);
      if (kw) for (const l of kw) ctx.out.untagged(l);
      // RFC 7162 §3.2.4: once CONDSTORE is on, FETCH responses carry UID and MODSEQ.
      const items = s.condstore ? `UID ${m.uid} FLAGS ${flagsOf(s, m)} MODSEQ (${m.modseq})` : `${uidMode ? `UID ${m.uid} ` : ''}FLAGS ${flagsOf(s, m)}`;
      ctx.out.untagged(`${fetchHead(s, seq, m.uid)} (${items})`);
    }
  } else if (s.condstore && live.length) {
    // RFC 7162 §3.1.3: even with .SILENT the new MODSEQ is reported (for every
    // message that passed UNCHANGEDSINCE, else for those that changed).
    const metas = a.unchangedSince !== undefined ? await ctx.store.getMessages(view.mailboxId, live) : res.changed;
    for (const m of metas) {
      if (modified.has(m.uid)) continue;
      const seq = view.seqOf(m.uid);
      if (seq) ctx.out.untagged(`${fetchHead(s, seq, m.uid)} (UID ${m.uid} MODSEQ (${m.modseq}))`);
    }
  }
  if (res.modified.length) {
    // RFC 7162 §3.2: the MODIFIED response code lists what failed the UNCHANGEDSINCE test.
    const nums = uidMode ? res.modified : res.modified.map((u) => view.seqOf(u)).filter((n) => n > 0).sort((x, y) => x - y);
    return { code: `MODIFIED ${formatSequenceSet(nums.slice().sort((x, y) => x - y))}`, text: 'Conditional STORE failed' };
  }
  if (live.length < uids.length) {
    // RFC 2180 §4.2.1: some messages were expunged by another session.
    return { status: 'NO' as const, code: 'EXPUNGEISSUED', text: 'Some messages were expunged' };
  }
  return { text: 'STORE completed' };
}

/**
 * The messages' flags as this STORE left them, without asking the store again,
 * when every one of them changed and the client has been told of no later
 * change (the view's HIGHESTMODSEQ skips this session's own changes, so it is
 * at most the STORE's modseq then); else null (read them). Saves one store
 * round trip per STORE of a client toggling a flag.
 */
function changedOnly(res: StoreFlagsResult, live: number[], seenModseq: number): StoreFlagsResult['changed'] | null {
  if (res.changed.length !== live.length || res.modified.length) return null;
  let max = 0;
  for (const m of res.changed) if (m.modseq > max) max = m.modseq;
  if (seenModseq > max) return null;
  return res.changed.slice().sort((x, y) => x.uid - y.uid);
}

/**
 * The messages read back for the answer, plus those this STORE changed that
 * the read no longer found: another session expunged them after the STORE's
 * commit, and this client has not been told yet, so for it they still exist
 * and their flags are what the STORE set (RFC 9051 §6.4.6: the updated value
 * "as if a FETCH of those flags was done"; §7.5.1 and RFC 2180 §4.2: a
 * message is there until its EXPUNGE is sent). Without them the client kept
 * whatever older flags an earlier FETCH of this answer had shown.
 */
function withChanged(read: readonly MessageMeta[], changed: StoreFlagsResult['changed']): readonly MessageMeta[] {
  if (changed.length === 0) return read;
  const found = new Set<number>();
  for (const m of read) found.add(m.uid);
  const gone = changed.filter((m) => !found.has(m.uid));
  if (gone.length === 0) return read;
  return [...read, ...gone].sort((x, y) => x.uid - y.uid);
}

export const store = spec(false);
export const uidStore = spec(true);
