// The notifications NOTIFY asked for (RFC 5465 §5), rendered when the
// connection may send them: between commands and during IDLE (§3.1: "the
// client listens for event notifications all the time"). Selected mailbox:
// the view's usual updates (EXISTS, EXPUNGE or VANISHED, FETCH FLAGS), with
// EXPUNGE held back for SELECTED-DELAYED outside IDLE (§6.1.2), then the
// MessageNew fetch attributes for messages the client learnt of (§5.2).
// Other mailboxes: STATUS (§5.1-§5.3), LIST (§5.4, §5.5), METADATA (§5.6,
// §5.7). Too much pending: NOTIFICATIONOVERFLOW, then as NOTIFY NONE (§5.8).
import type { CommandContext } from './types.js';
import type { FetchItem } from './fetch-items.js';
import { needsBody, renderMessage, renderMetaLine, setsSeen, withThreadIds } from './fetch-items.js';
import { mbox } from './format.js';
import { SEPARATOR } from './args.js';
import { mailboxAttributes, parentsOf } from './list.js';
import { statusLine, statusValues, type StatusItem } from './status.js';
import type { NotifyState, StatusDue } from '../session/notify.js';
import type { MailStore } from '../store/types.js';
import type { SelectedView } from '../session/view.js';
import type { AfterFlush } from './context.js';

/** Messages whose MessageNew FETCH is rendered per store call (bounded memory for a big COPY into the selected mailbox). */
const NOTIFY_FETCH_BATCH = 256;

/** §5.1-§5.3: the STATUS items telling what changed in an unselected mailbox. */
export function statusItemsFor(due: StatusDue, condstore: boolean): StatusItem[] {
  const items: StatusItem[] = [];
  if (due.messageNew || due.messageExpunge) items.push('MESSAGES', 'UIDNEXT');
  // §5.1: with CONDSTORE, HIGHESTMODSEQ and UIDVALIDITY.
  if (due.flagChange && condstore) items.push('UIDVALIDITY');
  // §5.1: UNSEEN MAY be told; with FlagChange asked for, it goes with every STATUS (a new message changes it too).
  if (due.flagWatch) items.push('UNSEEN');
  // §5.2: HIGHESTMODSEQ with CONDSTORE for new messages, §5.3 with QRESYNC (which implies it) for expunges, §5.1 for flags.
  if (condstore) items.push('HIGHESTMODSEQ');
  return items;
}

export interface PushOptions {
  /** IDLE is in progress: EXPUNGE may always be sent (RFC 9051 §7.5.1). */
  idling: boolean;
  /** The connection's flush of the selected mailbox's queued changes. */
  flushSelected(allowExpunge: boolean): void | Promise<void>;
}

/** Sends what is due; resolves when it is written. */
export async function pushNotifications(ctx: CommandContext, opts: PushOptions): Promise<void> {
  // A client that does not read gets nothing more written: what is due piles up in the state,
  // which is bounded (MAX_NOTIFY_PENDING) and overflows instead of growing.
  await ctx.out.drain();
  const s = ctx.session;
  const state = s.notify;
  if (!state || s.state === 'logout' || overflow(ctx, state)) return;
  const view = s.selected;
  if (state.selectedDue) {
    state.selectedDue = false;
    if (view) {
      await ctx.settled();
      if (s.selected === view) await opts.flushSelected(!state.delayed || opts.idling);
    }
  }
  if (view && s.selected === view && state.selected?.events.fetch) await newMessageFetches(ctx, state, state.selected.events.fetch as FetchItem[]);
  // Checked again after every wait: what piled up meanwhile is dropped, not sent, once it overflowed.
  if (s.notify !== state || overflow(ctx, state)) return;
  const lines: string[] = [];
  if (state.statusDue.size > 0) {
    const due = [...state.statusDue];
    state.statusDue.clear();
    for (const [id, d] of due) {
      const name = state.names.get(id);
      if (name === undefined || (s.selected && s.selected.mailboxId === id)) continue;
      const items = statusItemsFor(d, s.condstore);
      try {
        const st = await statusValues(ctx.store, id, items);
        const flagsOnly = !d.messageNew && !d.messageExpunge && !s.condstore;
        if (flagsOnly && state.toldUnseen.get(id) === st.unseen) continue; // §5.1: nothing the client can see changed
        if (d.flagWatch) state.toldUnseen.set(id, st.unseen);
        lines.push(statusLine(s, name, st, items));
      } catch {
        // Deleted meanwhile: its MailboxName event (if asked for) tells the client.
      }
    }
  }
  if (state.listDue.size > 0) lines.push(...(await listLines(ctx.store, s.user!.id, state, (n) => mbox(s, n))));
  if (s.notify !== state || overflow(ctx, state)) return;
  if (state.metadataDue.size > 0) {
    const due = [...state.metadataDue];
    state.metadataDue.clear();
    // RFC 5464 §4.4.2: the unsolicited form names the entries that changed, without values (names were checked by SETMETADATA).
    for (const [name, entries] of due) lines.push(`METADATA ${name === '' ? '""' : mbox(s, name)} ${[...entries].sort().join(' ')}`);
  }
  if (lines.length) ctx.out.raw(lines.map((l) => `* ${l}\r\n`).join(''));
}

/** §5.8: once too much is pending, `* OK [NOTIFICATIONOVERFLOW]` and NOTIFY NONE from then on. */
function overflow(ctx: CommandContext, state: NotifyState): boolean {
  if (!state.overflowed) return false;
  if (ctx.session.notify === state) {
    ctx.session.notify = null;
    ctx.out.untagged('OK [NOTIFICATIONOVERFLOW] Too many notifications; NOTIFY NONE is in effect');
  }
  return true;
}

/** §5.4, §5.5: one LIST per affected name, attributes computed now (\NonExistent for a name that is gone). */
async function listLines(store: MailStore, userId: number, state: NotifyState, name: (n: string) => string): Promise<string[]> {
  const due = [...state.listDue.values()];
  state.listDue.clear();
  const all = new Map((await store.listMailboxes(userId)).map((m) => [m.name, m]));
  const parents = parentsOf(all.keys());
  const out: string[] = [];
  for (const d of due) {
    let attrs: string[];
    if (all.has(d.name)) attrs = await mailboxAttributes(all, d.name, parents);
    else if (parents.has(d.name)) attrs = ['\\Noselect', '\\HasChildren'];
    else attrs = ['\\NonExistent'];
    if (state.subscribed.has(d.name)) attrs.push('\\Subscribed');
    let line = `LIST (${attrs.join(' ')}) "${SEPARATOR}" ${name(d.name)}`;
    if (d.oldName !== undefined) line += ` ("OLDNAME" (${name(d.oldName)}))`;
    out.push(line);
  }
  return out;
}

/**
 * §5.2: after the EXISTS, a FETCH with the requested attributes for each new
 * message, except those this client put there itself (APPEND, COPY, MOVE).
 */
async function newMessageFetches(ctx: CommandContext, state: NotifyState, items: FetchItem[]): Promise<void> {
  const view = ctx.session.selected!;
  const floor = state.fetchFloor;
  if (!floor || floor.mailboxId !== view.mailboxId) {
    state.fetchFloor = { mailboxId: view.mailboxId, uid: view.uids.length ? view.uids[view.uids.length - 1]! : 0 };
    return;
  }
  const from = view.lowerBound(floor.uid + 1);
  if (from >= view.uids.length) return;
  const uids = view.uids.slice(from).filter((u) => !state.ownUids.has(u) && !view.expungedPending.has(u));
  floor.uid = view.uids[view.uids.length - 1]!;
  state.ownUids.clear();
  await fetchNewMessages(ctx, uids, items, false);
}

/**
 * FETCH responses with `items` for new messages of the selected mailbox
 * (NOTIFY MessageNew, RFC 5465 §5.2; SEARCH / SORT `UPDATE (fetch-att)`,
 * §7), in batches. `markSeen`: BODY[...] / RFC822 / RFC822.TEXT set \Seen
 * as in a FETCH (RFC 9051 §6.4.5), the new FLAGS going with the data.
 */
export async function fetchNewMessages(ctx: CommandContext, uids: readonly number[], items: FetchItem[], markSeen: boolean): Promise<void> {
  const view = ctx.session.selected;
  if (!view) return;
  const wantBody = items.some(needsBody);
  const setSeen = markSeen && !view.readOnly && items.some(setsSeen);
  for (let i = 0; i < uids.length; i += NOTIFY_FETCH_BATCH) {
    let metas = await withThreadIds(ctx.store, view.mailboxId, await ctx.store.getMessages(view.mailboxId, uids.slice(i, i + NOTIFY_FETCH_BATCH)), items);
    if (ctx.session.selected !== view) return;
    const seenNow = new Set<number>();
    if (setSeen) {
      const unseen = metas.filter((m) => !m.flags.includes('\\Seen')).map((m) => m.uid);
      if (unseen.length) {
        const res = await ctx.store.storeFlags(view.mailboxId, unseen, 'add', ['\\Seen']);
        if (ctx.session.selected !== view) return;
        for (const m of res.changed) view.markOwn(m.modseq); // told here, not again as a flag change
        const changed = new Map(res.changed.map((m) => [m.uid, m]));
        metas = metas.map((m) => { const c = changed.get(m.uid); return c ? { ...c, threadId: m.threadId } : m; });
        for (const m of res.changed) seenNow.add(m.uid);
      }
    }
    const bodies = wantBody ? await ctx.store.openMessages(view.mailboxId, metas.map((m) => m.uid)) : [];
    if (ctx.session.selected !== view) return;
    for (let k = 0; k < metas.length; k++) {
      const m = metas[k]!;
      const seq = view.seqOf(m.uid);
      if (!seq) continue;
      if (items.some((it) => it.kind === 'FLAGS') || seenNow.has(m.uid)) {
        const kw = view.keywordResponses(m.flags);
        if (kw) for (const l of kw) ctx.out.untagged(l);
      }
      if (!wantBody) ctx.out.raw(renderMetaLine(ctx.session, seq, m, items, seenNow.has(m.uid)));
      else if (bodies[k]) await renderMessage(ctx, seq, m, bodies[k]!, items, seenNow.has(m.uid));
    }
    await ctx.out.drain();
  }
}

/**
 * RFC 5465 §7, after a flush: each update context's FETCHes for the messages that joined it by
 * arriving, then its ESEARCH line (`write` takes whole response lines), context after context.
 */
export async function contextFetches(ctx: CommandContext, view: SelectedView, rest: readonly AfterFlush[], write: (line: string) => void): Promise<void> {
  for (const e of rest) {
    if (ctx.session.selected !== view) return;
    if (e.fetch) {
      // §5.2: NOTIFY's MessageNew attributes and the context's SHOULD be one FETCH, without duplicates:
      // NOTIFY's are added here, and those messages are not FETCHed again by the NOTIFY push.
      const state = ctx.session.notify;
      const extra = (state?.selected?.events.fetch as FetchItem[] | undefined) ?? [];
      const seen = new Set(e.fetch.items.map((i) => JSON.stringify(i)));
      const items = [...e.fetch.items, ...extra.filter((i) => !seen.has(JSON.stringify(i)))];
      await fetchNewMessages(ctx, e.fetch.uids, items, true);
      if (state && extra.length > 0) for (const u of e.fetch.uids) state.ownUids.add(u);
    }
    if (e.line && ctx.session.selected === view) write(`* ${e.line}\r\n`);
  }
}
