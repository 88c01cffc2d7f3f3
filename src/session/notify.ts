// What a session asked to be told by NOTIFY SET (RFC 5465 §3.1, §6) and the
// notifications waiting to go out. Pure bookkeeping: the change feed's records
// are routed here as they arrive (synchronously, no store access); the
// responses are rendered later by src/commands/notify-push.ts, at a point
// where the connection may send them (between commands, or during IDLE).
//
// Pending work is coalesced per mailbox (one STATUS per mailbox however many
// messages arrived) and bounded: past MAX_NOTIFY_PENDING the session gets
// `* OK [NOTIFICATIONOVERFLOW]` and behaves as after NOTIFY NONE (§5.8).

import type { Change } from '../store/types.js';

/** RFC 5465 §5: the events a group asks for (AnnotationChange is absent: we keep no per-message annotations, RFC 5257). */
export interface NotifyEvents {
  messageNew: boolean;
  messageExpunge: boolean;
  flagChange: boolean;
  mailboxName: boolean;
  subscriptionChange: boolean;
  mailboxMetadataChange: boolean;
  serverMetadataChange: boolean;
  /** MessageNew's fetch attributes (SELECTED / SELECTED-DELAYED only); opaque here (FetchItem[] in src/commands). */
  fetch: unknown[] | null;
}

/** RFC 5465 §6: the mailbox specifiers. */
export type NotifyFilter =
  | { kind: 'selected' | 'selected-delayed' }
  | { kind: 'inboxes' | 'personal' | 'subscribed' }
  | { kind: 'subtree' | 'mailboxes'; names: string[] };

export interface NotifyGroup {
  filter: NotifyFilter;
  events: NotifyEvents;
}

/** Mailboxes, names and metadata entries waiting to be told; past this the session overflows (RFC 5465 §5.8). */
export const MAX_NOTIFY_PENDING = 1000;
/** UIDs of this session's own appends to the selected mailbox remembered (no MessageNew FETCH for them, §5.2). */
const MAX_OWN_UIDS = 10_000;

/** Commands whose appends to the selected mailbox are the client's own (RFC 5465 §5.2: no FETCH for those). */
const OWN_APPEND = new Set(['APPEND', 'COPY', 'UID COPY', 'MOVE', 'UID MOVE', 'REPLACE', 'UID REPLACE']);
/** Commands whose mailbox-name and subscription changes are the client's own (RFC 5465 §5: SHOULD NOT be notified). */
const OWN_NAMES = new Set(['CREATE', 'DELETE', 'RENAME', 'SUBSCRIBE', 'UNSUBSCRIBE']);

export function noEvents(): NotifyEvents {
  return {
    messageNew: false, messageExpunge: false, flagChange: false, mailboxName: false,
    subscriptionChange: false, mailboxMetadataChange: false, serverMetadataChange: false, fetch: null,
  };
}

/** What a pending STATUS response has to tell about one unselected mailbox (RFC 5465 §5.1-5.3). */
export interface StatusDue {
  messageNew: boolean;
  messageExpunge: boolean;
  flagChange: boolean;
  /** FlagChange is asked for this mailbox: UNSEEN goes with every STATUS (§5.1 MAY; Dovecot does the same). */
  flagWatch: boolean;
}

/** A LIST response to send (RFC 5465 §5.4, §5.5): attributes are computed when it is sent. */
export interface ListDue {
  name: string;
  oldName?: string;
}

export class NotifyState {
  /** The SELECTED or SELECTED-DELAYED group, if any (RFC 5465 §6.1: at most one). */
  readonly selected: NotifyGroup | null;
  readonly others: NotifyGroup[];
  /** Mailbox id -> name, for routing message changes by name (kept up to date from the feed). */
  readonly names: Map<number, string>;
  /** The user's subscriptions (for SUBSCRIBED, re-evaluated as they change: RFC 5465 §6.4). */
  readonly subscribed: Set<string>;

  /** Unselected mailboxes whose STATUS is due, by id. */
  readonly statusDue = new Map<number, StatusDue>();
  /** LIST responses due, by mailbox name (the last event for a name wins). */
  readonly listDue = new Map<string, ListDue>();
  /** METADATA responses due: mailbox name ('' = server) -> entries. */
  readonly metadataDue = new Map<string, Set<string>>();
  /** The selected mailbox has message events to push now. */
  selectedDue = false;
  /** The UNSEEN last told per unselected mailbox: a flag change that leaves it alone is not told without CONDSTORE (§5.1). */
  readonly toldUnseen = new Map<number, number>();
  /** Set when too much piled up: the connection sends NOTIFICATIONOVERFLOW and drops the state. */
  overflowed = false;

  /** The selected mailbox and the highest UID whose MessageNew FETCH was sent or is not wanted. */
  fetchFloor: { mailboxId: number; uid: number } | null = null;
  /** UIDs this session appended to the selected mailbox itself. */
  readonly ownUids = new Set<number>();

  constructor(groups: NotifyGroup[], names: Map<number, string>, subscribed: Iterable<string>) {
    this.selected = groups.find((g) => g.filter.kind === 'selected' || g.filter.kind === 'selected-delayed') ?? null;
    this.others = groups.filter((g) => g !== this.selected);
    this.names = names;
    this.subscribed = new Set(subscribed);
  }

  /**
   * Whether IDLE sends this change of the selected mailbox at once: RFC 5465 §4
   * "exactly the same events as instructed by the client using the NOTIFY
   * command", so none without a SELECTED group asking for its kind.
   */
  idleSends(kind: Change['kind']): boolean {
    const ev = this.selected?.events;
    if (!ev) return false;
    return kind === 'append' ? ev.messageNew : kind === 'expunge' ? ev.messageExpunge : kind === 'flags' ? ev.flagChange : false;
  }

  /** SELECTED-DELAYED: EXPUNGE waits for a command that allows it (RFC 5465 §6.1.2). */
  get delayed(): boolean {
    return this.selected?.filter.kind === 'selected-delayed';
  }

  /** Whether the filter covers the mailbox `name` (an unselected mailbox; RFC 5465 §6.2-§6.6). */
  covers(f: NotifyFilter, name: string): boolean {
    switch (f.kind) {
      // §6.3: every personal mailbox may receive mail here (LMTP delivers by sub-address into any folder),
      // so "inboxes" cannot be computed more narrowly and MUST mean "personal".
      case 'inboxes':
      case 'personal':
        return true;
      case 'subscribed':
        return this.subscribed.has(name);
      case 'subtree':
        return f.names.some((n) => name === n || name.startsWith(`${n}/`));
      case 'mailboxes':
        return f.names.includes(name); // §6.6: no wildcard expansion
      default:
        return false;
    }
  }

  /** The union of the events the non-selected groups ask for about `name`. */
  eventsFor(name: string): NotifyEvents | null {
    let out: NotifyEvents | null = null;
    for (const g of this.others) {
      if (!this.covers(g.filter, name)) continue;
      out ??= noEvents();
      for (const k of ['messageNew', 'messageExpunge', 'flagChange', 'mailboxName', 'subscriptionChange', 'mailboxMetadataChange'] as const) {
        if (g.events[k]) out[k] = true;
      }
    }
    return out;
  }

  private wantsServerMetadata(): boolean {
    return this.others.some((g) => g.events.serverMetadataChange);
  }

  private pendingCount(): number {
    return this.statusDue.size + this.listDue.size + this.metadataDue.size;
  }

  private dueList(name: string, oldName?: string): void {
    this.listDue.delete(name);
    this.listDue.set(name, oldName === undefined ? { name } : { name, oldName });
  }

  /**
   * Routes one change record. `view`: the selected mailbox, if any;
   * `command`: the name of this session's command in progress, if any (its own
   * changes are not notified, RFC 5465 §5). Returns true when something is due.
   */
  route(c: Change, view: { mailboxId: number; uids: readonly number[] } | null, command: string | null): boolean {
    if (this.overflowed) return false;
    const selectedId = view?.mailboxId ?? 0;
    const own = command !== null && OWN_NAMES.has(command);
    let due = false;
    switch (c.kind) {
      case 'append':
      case 'expunge':
      case 'flags': {
        if (c.mailboxId === selectedId) {
          const ev = this.selected?.events;
          // A mailbox selected since the floor was set: what it held then was not new (RFC 5465 §5.2).
          if (this.fetchFloor?.mailboxId !== selectedId) this.fetchFloor = { mailboxId: selectedId, uid: view!.uids[view!.uids.length - 1] ?? 0 };
          if (c.kind === 'append' && command !== null && OWN_APPEND.has(command)) this.noteOwn(c.messages.map((m) => m.uid));
          if (!ev) return false;
          if ((c.kind === 'append' && ev.messageNew) || (c.kind === 'expunge' && ev.messageExpunge) || (c.kind === 'flags' && ev.flagChange)) {
            this.selectedDue = true;
            return true;
          }
          return false;
        }
        const name = this.names.get(c.mailboxId);
        if (name === undefined) return false;
        const ev = this.eventsFor(name);
        if (!ev) return false;
        const want = c.kind === 'append' ? ev.messageNew : c.kind === 'expunge' ? ev.messageExpunge : ev.flagChange;
        if (!want) return false;
        const st = this.statusDue.get(c.mailboxId) ?? { messageNew: false, messageExpunge: false, flagChange: false, flagWatch: ev.flagChange };
        if (c.kind === 'append') st.messageNew = true;
        else if (c.kind === 'expunge') st.messageExpunge = true;
        else st.flagChange = true;
        this.statusDue.set(c.mailboxId, st);
        due = true;
        break;
      }
      case 'mailbox-create': {
        this.names.set(c.mailboxId, c.name);
        if (own) break;
        // §5.4: the mailbox and its direct parent are affected.
        due = this.nameEvent(c.name) || due;
        const parent = parentOf(c.name);
        if (parent !== null) due = this.nameEvent(parent) || due;
        break;
      }
      case 'mailbox-delete': {
        this.names.delete(c.mailboxId);
        this.statusDue.delete(c.mailboxId);
        this.toldUnseen.delete(c.mailboxId);
        if (own) break;
        due = this.nameEvent(c.name) || due;
        const parent = parentOf(c.name);
        if (parent !== null) due = this.nameEvent(parent) || due;
        break;
      }
      case 'mailbox-rename': {
        this.names.set(c.mailboxId, c.name);
        if (own) break;
        // §5.4: one LIST with OLDNAME for the renamed mailbox; none for its children (renamed with it).
        const top = [...this.listDue.values()].some((l) => l.oldName !== undefined && c.oldName.startsWith(`${l.oldName}/`) && c.name.startsWith(`${l.name}/`));
        if (top) break;
        if (this.eventsFor(c.name)?.mailboxName || this.eventsFor(c.oldName)?.mailboxName) {
          this.dueList(c.name, c.oldName);
          due = true;
        }
        break;
      }
      case 'subscription': {
        if (c.subscribed) this.subscribed.add(c.name);
        else this.subscribed.delete(c.name);
        if (own || !this.eventsFor(c.name)?.subscriptionChange) break;
        if (!this.listDue.has(c.name)) this.dueList(c.name);
        due = true;
        break;
      }
      case 'annotation': {
        if (command === 'SETMETADATA') break; // the client's own (§5)
        if (c.mailboxId === null) {
          if (!this.wantsServerMetadata()) break;
          this.dueMetadata('', c.entries);
          due = true;
          break;
        }
        const name = this.names.get(c.mailboxId);
        // §5.6 concerns mailboxes covered by a non-selected group (the selected one takes message events only).
        if (name === undefined || !this.eventsFor(name)?.mailboxMetadataChange) break;
        this.dueMetadata(name, c.entries);
        due = true;
        break;
      }
    }
    if (this.pendingCount() > MAX_NOTIFY_PENDING) this.overflowed = true;
    return due || this.overflowed;
  }

  private nameEvent(name: string): boolean {
    if (!this.eventsFor(name)?.mailboxName) return false;
    this.dueList(name);
    return true;
  }

  private dueMetadata(name: string, entries: readonly string[]): void {
    let set = this.metadataDue.get(name);
    if (!set) this.metadataDue.set(name, (set = new Set()));
    for (const e of entries) set.add(e);
    if (set.size > MAX_NOTIFY_PENDING) this.overflowed = true;
  }

  private noteOwn(uids: readonly number[]): void {
    if (this.ownUids.size + uids.length > MAX_OWN_UIDS) this.ownUids.clear();
    for (const u of uids) this.ownUids.add(u);
  }

  /** Whether anything is waiting for the connection. */
  get hasPending(): boolean {
    return this.selectedDue || this.overflowed || this.pendingCount() > 0;
  }
}

function parentOf(name: string): string | null {
  const i = name.lastIndexOf('/');
  return i > 0 ? name.slice(0, i) : null;
}
