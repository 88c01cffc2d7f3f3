// FETCH and UID FETCH — RFC 9051 §6.4.5, §6.4.9, §7.5.2; BINARY (RFC 3516);
// PREVIEW (RFC 8970). Item rendering lives in fetch-items.ts.
import { defineCommand, bad, type CommandContext } from './types.js';
import type { Token } from '../wire/types.js';
import { ArgReader, isAtom, parseNumber } from './args.js';
import { resolveUids, SequenceError } from '../session/resolve.js';
import { normalizeRanges, type SequenceSet } from '../wire/index.js';
import { enableCondstore, vanishedSince } from './condstore.js';
import { prefetch } from './mime-bridge.js';
import type { MessageBody, MessageMeta } from '../store/types.js';
import { renderMessage, renderMetaLine, MetaLineWriter, type FetchItem, type SectionSpec, needsBody, setsSeen, withThreadIds } from './fetch-items.js';
import { parsePartialRange, windowOf, type PartialRange } from '../search/sort.js';

/** Most messages whose metadata is loaded at once; bounds memory on `1:*` over 100k messages. */
const FETCH_BATCH = 1000;
/**
 * The same when no message bytes are needed (flags resync): a batch of lines
 * costs well under a millisecond to render, and fewer batches mean fewer
 * store round trips and event-loop turns per command.
 */
const FETCH_META_BATCH = 5000;
/** Messages whose reads are started together (bounded: each holds its header bytes). */
const PREFETCH_GROUP = 32;
/** Messages opened together when nothing is read ahead (ENVELOPE, BODYSTRUCTURE from the stored part tree): one store call for a page of a message list. */
const OPEN_GROUP = 256;
/**
 * Longest stretch of rendering before other connections get a turn: store
 * reads resolve as microtasks, so without it a batch of 1,000 ENVELOPEs ran
 * ~180 ms without yielding (test/server/eventloop.test.ts; STYLE.md habit 14).
 */
const FETCH_SLICE_MS = 10;
/** Most data items in one FETCH. */
const MAX_FETCH_ITEMS = 100;

export interface FetchArgs {
  set: SequenceSet;
  items: FetchItem[];
  changedSince?: number;
  /** RFC 7162 §3.2.6 VANISHED modifier (UID FETCH with CHANGEDSINCE only). */
  vanished: boolean;
  /** RFC 9394 PARTIAL modifier: only this window of the messages the set (and CHANGEDSINCE) selects. */
  partial?: PartialRange;
}

function parseSection(tokens: Token[], binary: boolean): SectionSpec {
  if (tokens.length === 0) return { path: [], kind: '' };
  const first = tokens[0];
  if (!isAtom(first)) throw bad('Invalid section');
  const text = first.value.toUpperCase();
  const m = /^((?:[1-9][0-9]{0,8}\.)*(?:[1-9][0-9]{0,8}))?(?:^|\.)?(HEADER\.FIELDS\.NOT|HEADER\.FIELDS|HEADER|TEXT|MIME)?$/.exec(text);
  if (!m || (!m[1] && !m[2])) throw bad('Invalid section');
  const path = m[1] ? m[1].split('.').map(Number) : [];
  if (path.length > 32) throw bad('Section too deep');
  const kind = (m[2] ?? '') as SectionSpec['kind'];
  if (m[1] && m[2] && !text.startsWith(m[1] + '.')) throw bad('Invalid section');
  if (kind === 'MIME' && path.length === 0) throw bad('MIME needs a part number');
  if (binary && kind !== '') throw bad('BINARY takes only part numbers'); // RFC 3516 §4.1 section-binary
  let fields: string[] | undefined;
  if (kind === 'HEADER.FIELDS' || kind === 'HEADER.FIELDS.NOT') {
    const list = tokens[1];
    if (!list || list.kind !== 'list' || list.items.length === 0) throw bad('HEADER.FIELDS needs a list of field names');
    fields = list.items.map((t) => {
      const v = t.kind === 'string' ? t.bytes.toString('latin1') : isAtom(t) ? t.value : '';
      if (!/^[\x21-\x39\x3b-\x7e]+$/.test(v)) throw bad('Invalid header field name');
      return v;
    });
    if (tokens.length > 2) throw bad('Invalid section');
  } else if (tokens.length > 1) throw bad('Invalid section');
  return { path, kind, fields };
}

function parsePartial(p: string | undefined): { offset: number; length: number } | undefined {
  if (p === undefined) return undefined;
  const m = /^([0-9]{1,15})\.([0-9]{1,15})$/.exec(p);
  if (!m) throw bad('Invalid partial range');
  const length = Number(m[2]);
  if (length === 0) throw bad('Partial length must be positive');
  return { offset: Number(m[1]), length };
}

export function parseFetchAtt(t: Token, out: FetchItem[]): void {
  if (t.kind !== 'atom') throw bad('Invalid fetch item');
  const name = t.value.toUpperCase();
  if (t.section) {
    const binary = name.startsWith('BINARY');
    if (!['BODY', 'BODY.PEEK', 'BINARY', 'BINARY.PEEK', 'BINARY.SIZE'].includes(name)) throw bad('Invalid fetch item');
    const section = parseSection(t.section, binary);
    const partial = parsePartial(t.partial);
    if (name === 'BINARY.SIZE' && partial) throw bad('BINARY.SIZE takes no partial');
    out.push({ kind: name === 'BINARY.SIZE' ? 'BINARY.SIZE' : binary ? 'BINARY' : 'BODY[]', peek: name.endsWith('.PEEK'), section, partial });
    return;
  }
  if (t.partial !== undefined) throw bad('Invalid fetch item');
  switch (name) {
    case 'ALL': out.push({ kind: 'FLAGS' }, { kind: 'INTERNALDATE' }, { kind: 'RFC822.SIZE' }, { kind: 'ENVELOPE' }); return;
    case 'FAST': out.push({ kind: 'FLAGS' }, { kind: 'INTERNALDATE' }, { kind: 'RFC822.SIZE' }); return;
    case 'FULL': out.push({ kind: 'FLAGS' }, { kind: 'INTERNALDATE' }, { kind: 'RFC822.SIZE' }, { kind: 'ENVELOPE' }, { kind: 'BODY' }); return;
    case 'FLAGS': case 'UID': case 'INTERNALDATE': case 'RFC822.SIZE': case 'ENVELOPE': case 'BODY': case 'BODYSTRUCTURE':
    case 'RFC822': case 'RFC822.HEADER': case 'RFC822.TEXT': case 'PREVIEW': case 'MODSEQ':
    case 'SAVEDATE': // RFC 8514 §4.2
    case 'EMAILID': case 'THREADID': // RFC 8474 §5
      out.push({ kind: name });
      return;
    default:
      throw bad(`Unknown fetch item ${name.slice(0, 40)}`);
  }
}

function spec(uidMode: boolean) {
  return defineCommand<FetchArgs>({
    name: uidMode ? 'UID FETCH' : 'FETCH',
    states: ['selected'],
    rfc: uidMode ? 'RFC 9051 §6.4.9, §6.4.5' : 'RFC 9051 §6.4.5',
    // RFC 9051 §7.5.1: no EXPUNGE while answering FETCH (the UID form may).
    expungeAllowed: uidMode,
    parse(args, session) {
      const r = new ArgReader(args);
      const set = r.sequenceSet();
      const items: FetchItem[] = [];
      const t = r.next('fetch items');
      if (t.kind === 'list') {
        if (t.items.length === 0) throw bad('Empty fetch item list');
        for (let i = 0; i < t.items.length; i++) {
          const it = t.items[i];
          parseFetchAtt(it, items);
          // RFC 8970 §3.1: PREVIEW may carry modifiers, e.g. PREVIEW (LAZY).
          if (isAtom(it, 'PREVIEW') && t.items[i + 1]?.kind === 'list') {
            const mods = (t.items[++i] as { items: Token[] }).items;
            for (const m of mods) if (!isAtom(m, 'LAZY')) throw bad('Unknown PREVIEW modifier');
          }
        }
      } else {
        parseFetchAtt(t, items);
      }
      // RFC 4466 §2.4 fetch modifiers: CHANGEDSINCE (RFC 7162 §3.1.4.1), VANISHED (§3.2.6).
      let changedSince: number | undefined;
      let vanished = false;
      let partial: PartialRange | undefined;
      const mods = r.optionalList();
      if (mods) {
        for (let i = 0; i < mods.length; i++) {
          const m = mods[i];
          if (isAtom(m, 'CHANGEDSINCE') && isAtom(mods[i + 1]) && changedSince === undefined) {
            changedSince = parseNumber((mods[++i] as { value: string }).value, 'CHANGEDSINCE', Number.MAX_SAFE_INTEGER);
          } else if (isAtom(m, 'PARTIAL') && !partial) {
            // RFC 9394: PARTIAL <range>, positions counted in the order of UIDs (negative: from the end).
            const next = mods[++i];
            partial = (isAtom(next) && parsePartialRange(next.value)) || undefined;
            if (!partial) throw bad('PARTIAL needs a range such as 1:50 or -1:-50');
          } else if (isAtom(m, 'VANISHED') && !vanished) {
            if (!uidMode) throw bad('VANISHED is only allowed with UID FETCH');
            vanished = true;
          } else throw bad('Invalid FETCH modifier');
        }
        if (vanished && changedSince === undefined) throw bad('VANISHED requires CHANGEDSINCE');
        if (vanished && !session.qresync) throw bad('VANISHED requires ENABLE QRESYNC');
      }
      r.end();
      if (items.length > MAX_FETCH_ITEMS) throw bad('Too many fetch items', 'LIMIT');
      return { set, items, changedSince, vanished, partial };
    },
    async run(ctx, a) {
      return runFetch(ctx, a, uidMode);
    },
  });
}

async function runFetch(ctx: CommandContext, a: FetchArgs, uidMode: boolean) {
  const s = ctx.session;
  const view = s.selected!;
  let uids: number[];
  try {
    uids = resolveUids(s, a.set, uidMode);
  } catch (e) {
    if (e instanceof SequenceError) throw bad(e.message, 'CLIENTBUG');
    throw e;
  }
  const items = a.items.slice();
  // RFC 9051 §6.4.9: UID FETCH responses always include the UID.
  if (uidMode && !items.some((i) => i.kind === 'UID')) items.unshift({ kind: 'UID' });
  // RFC 7162 §3.1: MODSEQ and CHANGEDSINCE are CONDSTORE enabling; CHANGEDSINCE implies MODSEQ (§3.1.4.1).
  if (a.changedSince !== undefined && !items.some((i) => i.kind === 'MODSEQ')) items.push({ kind: 'MODSEQ' });
  if (items.some((i) => i.kind === 'MODSEQ')) enableCondstore(ctx);
  if (a.vanished && a.set.saved === false) {
    // RFC 7162 §3.2.6: VANISHED (EARLIER) comes before any FETCH response.
    const maxUid = view.uids.length ? view.uids[view.uids.length - 1] : 0;
    const st = await ctx.store.mailboxStatus(view.mailboxId);
    const ranges = normalizeRanges(a.set.ranges, Math.max(maxUid, st.uidNext - 1));
    const gone = await vanishedSince(ctx, view.mailboxId, ranges, a.changedSince!, view.uids);
    if (gone) ctx.out.untagged(`VANISHED (EARLIER) ${gone}`);
  }
  if (a.changedSince !== undefined) {
    const since = a.changedSince;
    const changed = new Set((await ctx.store.listChangedSince(view.mailboxId, since)).map((m) => m.uid));
    uids = uids.filter((u) => changed.has(u));
  }
  if (a.partial) uids = windowOf(uids, a.partial);
  const markSeen = !view.readOnly && items.some(setsSeen);
  const showsFlags = items.some((i) => i.kind === 'FLAGS');
  const wantBody = items.some(needsBody);
  let missing = 0;
  const seenNow = new Set<number>();
  const fast = wantBody ? null : MetaLineWriter.for(s, items);
  const emit = (chunk: Buffer) => ctx.out.raw(chunk);
  // Sequence numbers of ascending UIDs, found by walking the view from the last one (no search per message).
  let cursor = 0;
  const seqOf = (uid: number): number => {
    const a = view.uids;
    if (cursor < a.length && a[cursor]! <= uid) {
      while (cursor < a.length && a[cursor]! < uid) cursor++;
      if (a[cursor] === uid) return ++cursor;
    }
    const seq = view.seqOf(uid);
    if (seq) cursor = seq;
    return seq;
  };
  // Bodies opened with their metadata in one store call where the store can (issue 11); else a call per group below.
  // Such a batch is a group's size: opening a body decodes its stored part tree, and a store call stays as short as openMessages's.
  const together = wantBody && ctx.store.getMessagesWithBodies ? ctx.store.getMessagesWithBodies.bind(ctx.store) : null;
  const batchSize = together ? OPEN_GROUP : wantBody ? FETCH_BATCH : FETCH_META_BATCH;
  const opened = new Map<number, MessageBody | null>();
  for (let i = 0; i < uids.length; i += batchSize) {
    const batch = uids.slice(i, i + batchSize);
    let found: MessageMeta[];
    if (together) {
      const both = await together(view.mailboxId, batch);
      found = new Array<MessageMeta>(both.length);
      for (let k = 0; k < both.length; k++) {
        found[k] = both[k]!.meta;
        opened.set(both[k]!.meta.uid, both[k]!.body);
      }
    } else found = await ctx.store.getMessages(view.mailboxId, batch);
    let metas = await withThreadIds(ctx.store, view.mailboxId, found, items);
    if (markSeen) {
      const unseen = metas.filter((m) => !m.flags.includes('\\Seen')).map((m) => m.uid);
      if (unseen.length) {
        // RFC 9051 §6.4.5: BODY[...] (not .PEEK) sets \Seen; the new FLAGS are sent with the data.
        const res = await ctx.store.storeFlags(view.mailboxId, unseen, 'add', ['\\Seen']);
        for (const m of res.changed) view.markOwn(m.modseq);
        const changed = new Map(res.changed.map((m) => [m.uid, m]));
        metas = metas.map((m) => { const c = changed.get(m.uid); return c ? { ...c, threadId: m.threadId } : m; });
        for (const m of res.changed) seenNow.add(m.uid);
      }
    }
    missing += batch.length - metas.length;
    if (!wantBody) {
      // Metadata only: the whole batch leaves in one write.
      for (const m of metas) {
        const seq = seqOf(m.uid);
        if (!seq) continue;
        const seen = seenNow.size > 0 && seenNow.has(m.uid);
        if (showsFlags || seen) {
          const kw = view.keywordResponses(m.flags);
          if (kw) {
            fast?.take(emit);
            for (const l of kw) ctx.out.untagged(l);
          }
        }
        if (fast && !seen) fast.line(seq, m, emit);
        else {
          fast?.take(emit);
          ctx.out.raw(renderMetaLine(s, seq, m, seen && s.condstore ? withUidModseq(items) : items, seen));
        }
      }
      fast?.take(emit);
      metas = [];
    }
    // Open a group of messages and start their reads together; render in order.
    const sections = items.flatMap((i) => ('section' in i ? [i.section] : i.kind === 'RFC822.HEADER' ? [{ path: [], kind: 'HEADER' as const }] : []));
    const groupSize = sections.length ? PREFETCH_GROUP : OPEN_GROUP;
    let slice = performance.now();
    for (let g = 0; g < metas.length; g += groupSize) {
      // A client that does not read holds at most one group of rendered messages in memory, not a batch
      // (1,000 messages of up to STREAM_THRESHOLD each; test/server/slow-peers.test.ts).
      if (g > 0) await ctx.out.drain();
      if (performance.now() - slice > FETCH_SLICE_MS) {
        await new Promise((r) => setImmediate(r));
        slice = performance.now();
      }
      const group = metas.slice(g, g + groupSize);
      if (!together) {
        const bodies = await ctx.store.openMessages(view.mailboxId, group.map((m) => m.uid));
        group.forEach((m, k) => opened.set(m.uid, bodies[k] ?? null));
      }
      if (sections.length) {
        const reads = group.flatMap((m) => { const b = opened.get(m.uid); const r = b && prefetch(b, sections); return r ? [r] : []; });
        if (reads.length) await Promise.all(reads);
      }
      for (const m of group) {
        const seq = view.seqOf(m.uid);
        if (!seq) continue;
        const body = opened.get(m.uid) ?? null;
        opened.delete(m.uid);
        if (!body) {
          missing++;
          continue;
        }
        const seen = seenNow.has(m.uid);
        if (showsFlags || seen) {
          const kw = view.keywordResponses(m.flags);
          if (kw) for (const l of kw) ctx.out.untagged(l);
        }
        const its = seen && s.condstore ? withUidModseq(items) : items;
        await renderMessage(ctx, seq, m, body, its, seen);
      }
    }
    opened.clear();
    await ctx.out.drain();
    // Let other connections run between batches (STYLE.md habit 14).
    if (i + batchSize < uids.length) await new Promise((r) => setImmediate(r));
  }
  if (missing > 0) {
    // RFC 9051 §7.1 EXPUNGEISSUED: some requested messages were expunged by another session.
    return { status: 'NO' as const, code: 'EXPUNGEISSUED', text: 'Some messages were expunged' };
  }
  return { text: 'FETCH completed' };
}

function withUidModseq(items: FetchItem[]): FetchItem[] {
  const out = items.slice();
  if (!out.some((i) => i.kind === 'UID')) out.unshift({ kind: 'UID' });
  if (!out.some((i) => i.kind === 'MODSEQ')) out.push({ kind: 'MODSEQ' });
  return out;
}

export const fetch = spec(false);
export const uidFetch = spec(true);
