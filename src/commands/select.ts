// SELECT and EXAMINE — RFC 9051 §6.3.2, §6.3.3; rev1 differences (RECENT,
// UNSEEN, no LIST response) per RFC 3501 §6.3.1 and RFC 9051 Appendix E;
// the CONDSTORE and QRESYNC select parameters of RFC 7162 §3.1.8, §3.2.5.
import { defineCommand, bad, no, ImapError, type CommandContext } from './types.js';
import { ArgReader, isAtom, parseNumber, sequenceSetArg } from './args.js';
import { SelectedView } from '../session/view.js';
import { flagsOf, mbox, SYSTEM_FLAG_LIST } from './format.js';
import { fetchHead } from './uidonly.js';
import { enableCondstore, vanishedSince } from './condstore.js';
import { iterateSequenceSet, normalizeRanges, STAR, type SeqRange } from '../wire/index.js';
import type { Token } from '../wire/types.js';

/** \Recent messages marked per turn of the event loop while a mailbox is selected. */
const RECENT_SLICE = 5_000;

/** Most sequence/UID pairs accepted in QRESYNC's message sequence match data. */
const MAX_SEQ_MATCH_PAIRS = 10_000;

interface Qresync {
  uidValidity: number;
  modseq: number;
  knownUids: SeqRange[] | null;
  seqMatch: { seqs: number[]; uids: number[] } | null;
}

interface SelectArgs {
  mailbox: string;
  condstore: boolean;
  qresync: Qresync | null;
  /** A name that cannot exist (invalid modified UTF-7): answered NO after closing the current mailbox. */
  invalid?: ImapError | null;
}

function explicitRanges(text: string, what: string): SeqRange[] {
  const set = sequenceSetArg(text);
  if (set.saved || set.ranges.some((r) => r.start === STAR || r.end === STAR)) throw bad(`Invalid ${what}`);
  return set.ranges;
}

function expand(ranges: SeqRange[]): number[] {
  const out: number[] = [];
  for (const n of iterateSequenceSet(ranges, 0xffffffff)) {
    out.push(n);
    if (out.length > MAX_SEQ_MATCH_PAIRS) throw bad('Too much sequence match data', 'LIMIT');
  }
  return out;
}

/** RFC 7162 §3.2.5: QRESYNC (uidvalidity modseq [known-uids [(seq-match)]]). */
function parseQresync(t: Token | undefined): Qresync {
  if (!t || t.kind !== 'list' || t.items.length < 2 || t.items.length > 4) throw bad('Invalid QRESYNC parameter');
  const [v, m, k, sm] = t.items;
  if (!isAtom(v) || !isAtom(m)) throw bad('Invalid QRESYNC parameter');
  const uidValidity = parseNumber(v.value, 'UIDVALIDITY');
  const modseq = parseNumber(m.value, 'mod-sequence', Number.MAX_SAFE_INTEGER);
  if (uidValidity === 0 || modseq === 0) throw bad('Invalid QRESYNC parameter');
  let knownUids: SeqRange[] | null = null;
  let seqMatch: Qresync['seqMatch'] = null;
  if (k) {
    if (!isAtom(k)) throw bad('Invalid known UIDs');
    knownUids = explicitRanges(k.value, 'known UIDs');
  }
  if (sm) {
    if (sm.kind !== 'list' || sm.items.length !== 2 || !isAtom(sm.items[0]) || !isAtom(sm.items[1])) throw bad('Invalid sequence match data');
    const seqs = expand(explicitRanges(sm.items[0].value, 'sequence match set'));
    const uids = expand(explicitRanges(sm.items[1].value, 'sequence match UIDs'));
    if (seqs.length !== uids.length) throw bad('Sequence match sets differ in length');
    seqMatch = { seqs, uids };
  }
  return { uidValidity, modseq, knownUids, seqMatch };
}

function spec(name: 'SELECT' | 'EXAMINE') {
  return defineCommand<SelectArgs>({
    name,
    states: ['auth', 'selected'],
    rfc: name === 'SELECT' ? 'RFC 9051 §6.3.2, RFC 7162 §3.1.8, §3.2.5' : 'RFC 9051 §6.3.3, RFC 7162 §3.1.8, §3.2.5',
    parse(args, session) {
      const r = new ArgReader(args);
      // A name that is not valid modified UTF-7 is a NO (as Dovecot answers), and a
      // failed SELECT still closes the current mailbox (RFC 9051 §6.3.2): keep the error for run.
      let mailbox = '';
      let invalid: ImapError | null = null;
      try {
        mailbox = r.mailbox(session);
      } catch (e) {
        if (!(e instanceof ImapError) || e.status !== 'NO') throw e;
        invalid = e;
      }
      // Select parameters (RFC 4466 §2.4): CONDSTORE and QRESYNC (RFC 7162).
      let condstore = false;
      let qresync: Qresync | null = null;
      const params = r.optionalList();
      r.end();
      if (params) {
        for (let i = 0; i < params.length; i++) {
          const p = params[i];
          if (isAtom(p, 'CONDSTORE') && !condstore) condstore = true;
          else if (isAtom(p, 'QRESYNC') && !qresync) {
            // RFC 7162 §3.2.5: BAD unless the client has enabled QRESYNC.
            if (!session.qresync) throw bad('QRESYNC must be enabled first');
            qresync = parseQresync(params[++i]);
          } else throw bad('Unknown SELECT parameter');
        }
      }
      return { mailbox, condstore, qresync, invalid };
    },
    async run(ctx, a) {
      if (a.invalid) {
        closeSelected(ctx);
        throw a.invalid;
      }
      if (a.condstore) enableCondstore(ctx);
      return selectMailbox(ctx, a.mailbox, name === 'EXAMINE', a.qresync);
    },
  });
}

export async function selectMailbox(ctx: CommandContext, name: string, readOnly: boolean, qresync: Qresync | null = null) {
  const s = ctx.session;
  closeSelected(ctx);
  s.savedSearch = [];
  const info = await ctx.store.getMailbox(s.user!.id, name);
  if (!info) throw no('Mailbox does not exist', 'NONEXISTENT');
  s.pendingSelect = { mailboxId: info.id, changes: [] };
  let uids: number[];
  let firstRecent = Infinity;
  let firstUnseenUid = 0;
  try {
    // Only the UIDs: counts come from the mailbox's counters, flags are fetched when asked for.
    uids = await ctx.store.listUids(info.id);
    if (s.recentEnabled) firstUnseenUid = await ctx.store.firstUnseenUid(info.id);
    if (s.recentEnabled && !readOnly) firstRecent = await ctx.store.claimRecent(info.id);
    else if (s.recentEnabled) {
      // RFC 3501 §6.3.2: EXAMINE changes nothing, including the loss of \Recent, but it
      // still reports the recent messages (as Dovecot does). They are the highest UIDs.
      const { recent } = await ctx.store.mailboxStatus(info.id);
      if (recent > 0) firstRecent = uids[Math.max(0, uids.length - recent)] ?? Infinity;
    }
  } catch (e) {
    s.pendingSelect = null;
    throw e;
  }
  const keywords = await ctx.store.listKeywords(info.id);
  const view = new SelectedView(info.id, info.name, readOnly, info.uidValidity, uids, info.highestModseq, keywords);
  if (firstRecent !== Infinity) {
    // All 100k of a freshly imported mailbox may be recent: a slice per turn (changes meanwhile still queue in pendingSelect).
    for (let i = view.lowerBound(firstRecent); i < uids.length; i++) {
      if (i % RECENT_SLICE === RECENT_SLICE - 1) await new Promise<void>((r) => setImmediate(r));
      view.recent.add(uids[i]);
    }
  }
  for (const c of s.pendingSelect.changes) view.enqueue(c);
  s.pendingSelect = null;
  const firstUnseen = firstUnseenUid ? view.seqOf(firstUnseenUid) : 0;
  // The listing is read after the mailbox row (in pages, with other connections' commits between them:
  // src/store/sqlite/metadata.ts), so it may hold messages appended since. UIDNEXT is above every UID
  // EXISTS counts (RFC 9051 §2.3.1.1: messages arriving after it is told have a UID at least that); a change the listing already
  // shows and that arrives afterwards is neither announced again (view.enqueue) nor lost. HIGHESTMODSEQ
  // stays the row's: a lower bound, as RFC 7162 §3.1.2.1 allows, raised by the queued changes.
  const uidNext = Math.max(info.uidNext, (uids[uids.length - 1] ?? 0) + 1);
  s.selected = view;
  s.state = 'selected';
  const flags = [...SYSTEM_FLAG_LIST, ...keywords].join(' ');
  ctx.out.untagged(`${view.exists} EXISTS`);
  if (s.recentEnabled) ctx.out.untagged(`${view.recent.size} RECENT`);
  ctx.out.untagged(`FLAGS (${flags})`);
  ctx.out.untagged(`OK [PERMANENTFLAGS (${readOnly ? '' : flags + ' \\*'})] Flags permitted`);
  // RFC 9586 §3: [UNSEEN n] is a sequence number, not sent with UIDONLY.
  if (s.recentEnabled && firstUnseen && !s.uidOnly) ctx.out.untagged(`OK [UNSEEN ${firstUnseen}] First unseen`);
  ctx.out.untagged(`OK [UIDVALIDITY ${info.uidValidity}] UIDs valid`);
  ctx.out.untagged(`OK [UIDNEXT ${uidNext}] Predicted next UID`);
  ctx.out.untagged(`OK [MAILBOXID (${info.objectId})] Ok`); // RFC 8474 §4.3
  // RFC 4467 BASE.7.1.URLMECH: SELECT and EXAMINE name the URLAUTH mechanisms (GENURLAUTH, urlauth.ts).
  ctx.out.untagged('OK [URLMECH INTERNAL] URLAUTH mechanisms');
  // RFC 7162 §3.1.2.1: HIGHESTMODSEQ with every SELECT once CONDSTORE is enabled.
  if (s.condstore) ctx.out.untagged(`OK [HIGHESTMODSEQ ${info.highestModseq}] Highest mailbox mod-sequence`);
  // RFC 9051 §6.3.2: the server MUST return a LIST response with the mailbox name.
  if (s.rev2) ctx.out.untagged(`LIST () "/" ${mbox(s, info.name)}`);
  if (qresync && qresync.uidValidity === info.uidValidity) await resync(ctx, view, uidNext, qresync);
  return { code: readOnly ? 'READ-ONLY' : 'READ-WRITE', text: `${readOnly ? 'EXAMINE' : 'SELECT'} completed` };
}

/**
 * RFC 7162 §3.2.5.1: what changed since the client's mod-sequence — VANISHED
 * (EARLIER) for expunges, then FETCH (UID FLAGS MODSEQ) for flag changes,
 * both restricted to the known UIDs (default 1:UIDNEXT-1).
 */
async function resync(ctx: CommandContext, view: SelectedView, uidNext: number, q: Qresync): Promise<void> {
  const maxUid = uidNext - 1;
  let known = q.knownUids ? normalizeRanges(q.knownUids, Math.max(maxUid, 1)) : maxUid > 0 ? [{ start: 1, end: maxUid }] : [];
  if (q.seqMatch) {
    // §3.2.5.2: expunges up to the last matching sequence/UID pair are known to the client.
    let floor = 0;
    for (let i = 0; i < q.seqMatch.seqs.length; i++) {
      if (view.uidOf(q.seqMatch.seqs[i]) === q.seqMatch.uids[i]) floor = q.seqMatch.uids[i];
      else break;
    }
    if (floor > 0) known = known.filter((r) => r.end > floor).map((r) => ({ start: Math.max(r.start, floor + 1), end: r.end }));
  }
  const gone = await vanishedSince(ctx, view.mailboxId, known, q.modseq, view.uids);
  if (gone) ctx.out.untagged(`VANISHED (EARLIER) ${gone}`);
  const knownSet = q.knownUids ? normalizeRanges(q.knownUids, Math.max(maxUid, 1)) : null;
  for (const m of await ctx.store.listChangedSince(view.mailboxId, q.modseq)) {
    const seq = view.seqOf(m.uid);
    if (!seq) continue;
    if (knownSet && !knownSet.some((r) => m.uid >= r.start && m.uid <= r.end)) continue;
    ctx.out.untagged(`${fetchHead(ctx.session, seq, m.uid)} (UID ${m.uid} FLAGS ${flagsOf(ctx.session, m)} MODSEQ (${m.modseq}))`);
  }
}

export const select = spec('SELECT');
export const examine = spec('EXAMINE');

/** RFC 9051 §6.3.2: selecting (even unsuccessfully) closes the current mailbox without expunging. */
function closeSelected(ctx: CommandContext): void {
  const s = ctx.session;
  if (!s.selected) return;
  // The CLOSED response code marks the boundary (RFC 9051 §7.1, RFC 7162 §3.2.11).
  s.selected = null;
  s.state = 'auth';
  // RFC 7162 §3.2.11: a server advertising CONDSTORE/QRESYNC sends it to every client.
  ctx.out.untagged('OK [CLOSED] Previous mailbox closed');
}
