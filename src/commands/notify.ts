// NOTIFY — RFC 5465 §3.1 (NOTIFY SET [STATUS] / NOTIFY NONE), §5 (events),
// §6 (mailbox specifiers), §8 (syntax). The routing of change records lives
// in src/session/notify.ts, the rendering of the notifications in
// notify-push.ts; the connection pushes them between commands and during IDLE.
import { defineCommand, bad, no, ImapError } from './types.js';
import type { Token } from '../wire/types.js';
import { ArgReader, isAtom, isList, mailboxName } from './args.js';
import { parseFetchAtt } from './fetch.js';
import type { FetchItem } from './fetch-items.js';
import { NotifyState, noEvents, type NotifyEvents, type NotifyFilter, type NotifyGroup } from '../session/notify.js';
import type { Session } from '../session/session.js';
import { statusLine, statusValues, type StatusItem } from './status.js';

/** Most event groups in one NOTIFY SET (a client needs a handful). */
export const MAX_NOTIFY_GROUPS = 64;
/** Most mailbox names over all SUBTREE / MAILBOXES groups of one NOTIFY SET. */
export const MAX_NOTIFY_NAMES = 1000;
/** Most fetch attributes for MessageNew (as for FETCH). */
const MAX_NOTIFY_FETCH_ITEMS = 100;

/** RFC 5465 §3.1: BADEVENT "MUST list names of all events supported by the server". */
export const SUPPORTED_EVENTS = ['MessageNew', 'MessageExpunge', 'FlagChange', 'MailboxName', 'SubscriptionChange', 'MailboxMetadataChange', 'ServerMetadataChange'];
const BADEVENT = `BADEVENT (${SUPPORTED_EVENTS.join(' ')})`;

const EVENT_KEYS: Record<string, keyof Omit<NotifyEvents, 'fetch'>> = {
  MESSAGENEW: 'messageNew',
  MESSAGEEXPUNGE: 'messageExpunge',
  FLAGCHANGE: 'flagChange',
  MAILBOXNAME: 'mailboxName',
  SUBSCRIPTIONCHANGE: 'subscriptionChange',
  MAILBOXMETADATACHANGE: 'mailboxMetadataChange',
  SERVERMETADATACHANGE: 'serverMetadataChange',
};

export interface NotifyArgs {
  status: boolean;
  groups: NotifyGroup[];
  /** An event this server does not support was named: NO [BADEVENT] (RFC 5465 §3.1: not a BAD), after the syntax was checked. */
  unsupported: string | null;
}

/** One mailbox name of SUBTREE / MAILBOXES; null for a name no mailbox can have (§3.1: ignored like a missing one). */
function filterName(t: Token, session: Session): string | null {
  try {
    return mailboxName(t, session);
  } catch (e) {
    if (e instanceof ImapError && e.status === 'NO') return null;
    throw e;
  }
}

function parseFilter(items: Token[], session: Session, names: { n: number }): { filter: NotifyFilter; rest: Token[] } {
  const head = items[0];
  if (!isAtom(head)) throw bad('Expected a mailbox specifier');
  const kind = head.value.toLowerCase();
  switch (kind) {
    case 'selected':
    case 'selected-delayed':
    case 'inboxes':
    case 'personal':
    case 'subscribed':
      return { filter: { kind }, rest: items.slice(1) };
    case 'subtree':
    case 'mailboxes': {
      const arg = items[1];
      if (!arg) throw bad(`${head.value} needs a mailbox name`);
      const tokens = isList(arg) ? arg.items : [arg];
      if (tokens.length === 0) throw bad(`${head.value} needs a mailbox name`);
      names.n += tokens.length;
      if (names.n > MAX_NOTIFY_NAMES) throw no(`Too many mailbox names (at most ${MAX_NOTIFY_NAMES})`, 'LIMIT');
      const list: string[] = [];
      for (const t of tokens) {
        if (isList(t)) throw bad('Invalid mailbox name');
        const n = filterName(t, session);
        if (n !== null && !list.includes(n)) list.push(n);
      }
      return { filter: { kind, names: list }, rest: items.slice(2) };
    }
    default:
      throw bad(`Unknown mailbox specifier ${head.value.slice(0, 30)}`);
  }
}

function parseEvents(rest: Token[], selected: boolean, unsupported: { name: string | null }): NotifyEvents {
  if (rest.length !== 1) throw bad('Expected one list of events or NONE');
  const ev = noEvents();
  const t = rest[0]!;
  if (isAtom(t, 'NONE')) return ev;
  if (!isList(t) || t.items.length === 0) throw bad('Expected a list of events or NONE');
  const items = t.items;
  for (let i = 0; i < items.length; i++) {
    const it = items[i];
    if (!isAtom(it)) throw bad('Invalid event');
    const name = it.value.toUpperCase();
    const key = EVENT_KEYS[name];
    if (!key) {
      // RFC 5465 §8 event-ext = atom: well-formed, but not ours (AnnotationChange among them: no RFC 5257 here).
      unsupported.name ??= it.value;
      continue;
    }
    ev[key] = true;
    if (key === 'messageNew' && isList(items[i + 1])) {
      // §8: the fetch-att list is allowed only with SELECTED / SELECTED-DELAYED.
      if (!selected) throw bad('MessageNew fetch attributes are allowed only for the selected mailbox');
      const atts = (items[++i] as { items: Token[] }).items;
      if (atts.length === 0) throw bad('Empty fetch attribute list');
      const fetch: FetchItem[] = [];
      for (const a of atts) parseFetchAtt(a, fetch);
      if (fetch.length > MAX_NOTIFY_FETCH_ITEMS) throw bad('Too many fetch attributes', 'LIMIT');
      ev.fetch = fetch;
    }
  }
  // RFC 5465 §5: MessageNew and MessageExpunge come together; FlagChange needs both. Otherwise BAD.
  if (ev.messageNew !== ev.messageExpunge) throw bad('MessageNew and MessageExpunge must be given together');
  if (ev.flagChange && !ev.messageNew) throw bad('FlagChange needs MessageNew and MessageExpunge');
  // §6.1: only message events with SELECTED / SELECTED-DELAYED.
  if (selected && (ev.mailboxName || ev.subscriptionChange || ev.mailboxMetadataChange || ev.serverMetadataChange)) {
    throw bad('Only message events are allowed for the selected mailbox');
  }
  return ev;
}

export function parseNotify(args: Token[], session: Session): NotifyArgs | null {
  const r = new ArgReader(args);
  const verb = r.atom('SET or NONE').toUpperCase();
  if (verb === 'NONE') {
    r.end();
    return null;
  }
  if (verb !== 'SET') throw bad('Expected SET or NONE');
  let status = false;
  if (isAtom(r.peek(), 'STATUS')) {
    r.next('STATUS');
    status = true;
  }
  if (r.done) throw bad('NOTIFY SET needs at least one event group');
  const groups: NotifyGroup[] = [];
  const names = { n: 0 };
  const unsupported = { name: null as string | null };
  let selectedSeen = false;
  while (!r.done) {
    if (groups.length >= MAX_NOTIFY_GROUPS) throw bad(`Too many event groups (at most ${MAX_NOTIFY_GROUPS})`, 'LIMIT');
    const g = r.list('event group');
    const { filter, rest } = parseFilter(g, session, names);
    const selected = filter.kind === 'selected' || filter.kind === 'selected-delayed';
    // §6.1: only one of SELECTED / SELECTED-DELAYED in a command.
    if (selected && selectedSeen) throw bad('Only one SELECTED or SELECTED-DELAYED group is allowed');
    selectedSeen ||= selected;
    groups.push({ filter, events: parseEvents(rest, selected, unsupported) });
  }
  return { status, groups, unsupported: unsupported.name };
}

/** RFC 5465 §3.1: the STATUS items due for a mailbox whose message events are enabled, in STATUS order. */
export function initialStatusItems(ev: NotifyEvents, condstore: boolean): StatusItem[] {
  const items: StatusItem[] = [];
  if (ev.messageNew || ev.messageExpunge) items.push('MESSAGES');
  if (ev.messageNew) items.push('UIDNEXT');
  if (ev.messageNew || (ev.flagChange && condstore)) items.push('UIDVALIDITY');
  // §5.1: flag changes elsewhere are told by UNSEEN (and HIGHESTMODSEQ with CONDSTORE): the first values come now.
  if (ev.flagChange) items.push('UNSEEN');
  if (ev.flagChange && condstore) items.push('HIGHESTMODSEQ');
  return items;
}

export const notify = defineCommand<NotifyArgs | null>({
  name: 'NOTIFY',
  states: ['auth', 'selected'],
  rfc: 'RFC 5465 §3.1, §5, §6',
  parse: parseNotify,
  async run(ctx, a) {
    const s = ctx.session;
    if (a === null) {
      s.notify = null;
      return { text: 'NOTIFY completed' };
    }
    if (a.unsupported !== null) throw no(`Unsupported event ${a.unsupported.slice(0, 40)}`, BADEVENT);
    const userId = s.user!.id;
    const boxes = await ctx.store.listMailboxes(userId);
    const subs = await ctx.store.listSubscriptions(userId);
    const state = new NotifyState(a.groups, new Map(boxes.map((m) => [m.id, m.name])), subs);
    const view = s.selected;
    if (view) state.fetchFloor = { mailboxId: view.mailboxId, uid: view.uids.length ? view.uids[view.uids.length - 1]! : 0 };
    // In force at once: changes committed while the STATUS responses are read are notified after the OK.
    s.notify = state;
    if (a.status) {
      // §3.1: a STATUS for each other mailbox whose message events are enabled, before the tagged OK.
      for (const m of boxes) {
        if (view && m.id === view.mailboxId) continue;
        const ev = state.eventsFor(m.name);
        if (!ev || !(ev.messageNew || ev.messageExpunge || ev.flagChange)) continue;
        const items = initialStatusItems(ev, s.condstore);
        const st = await statusValues(ctx.store, m.id, items);
        if (items.includes('UNSEEN')) state.toldUnseen.set(m.id, st.unseen);
        ctx.out.untagged(statusLine(s, m.name, st, items));
      }
    }
    // §3.1: NOTIFY SET implies a NOOP: the dispatcher flushes the selected mailbox's updates before the OK.
    return { text: 'NOTIFY completed' };
  },
});
