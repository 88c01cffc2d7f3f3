// Small response-formatting helpers shared by commands; the escaping itself
// lives in src/wire/encoder.ts so no value can inject a line.
import { mailboxName as encodeMailboxName } from '../wire/index.js';
import type { Session } from '../session/session.js';
import type { MessageMeta } from '../store/types.js';

/** A mailbox name as it goes on the wire for this session (mUTF-7 or UTF-8). */
export function mbox(session: Session, name: string): string {
  const v = encodeMailboxName(name, session.utf8Names);
  return typeof v === 'string' ? v : v.toString('utf8');
}

/** Parenthesized flag lists per (shared, frozen) flags array of the store: one string, not one per message. */
const listed = new WeakMap<readonly string[], string>();

/** The FLAGS list of a message as this session sees it (\Recent only for rev1, RFC 3501 §2.3.2). */
export function flagsOf(session: Session, m: MessageMeta): string {
  const view = session.selected;
  if (session.recentEnabled && view && view.recent.has(m.uid)) return flagListRecent(m.flags);
  return flagList(m.flags);
}

/** `(flag flag ...)`, one string per shared frozen flags array. */
export function flagList(flags: readonly string[]): string {
  if (!Object.isFrozen(flags)) return `(${flags.join(' ')})`;
  let s = listed.get(flags);
  if (s === undefined) listed.set(flags, (s = `(${flags.join(' ')})`));
  return s;
}

const listedRecent = new WeakMap<readonly string[], string>();

/** The same with \Recent (every message of a mailbox nobody has selected read-write yet is \Recent to an rev1 EXAMINE). */
export function flagListRecent(flags: readonly string[]): string {
  const make = () => (flags.length ? `(${flags.join(' ')} \\Recent)` : '(\\Recent)');
  if (!Object.isFrozen(flags)) return make();
  let s = listedRecent.get(flags);
  if (s === undefined) listedRecent.set(flags, (s = make()));
  return s;
}

/**
 * flagsOf for many messages of one command: the session's state is looked at
 * once (a FETCH 1:* over 100k messages calls it 100k times).
 */
export function flagsFormatter(session: Session): (m: MessageMeta) => string {
  const view = session.selected;
  const recent = session.recentEnabled && view ? view.recent : null;
  // Neighbouring messages mostly share one of the store's frozen flag arrays: the last answer is kept.
  let lastFlags: readonly string[] | null = null;
  let lastText = '';
  const list = (flags: readonly string[]): string => {
    if (flags === lastFlags) return lastText;
    lastText = flagList(flags);
    lastFlags = Object.isFrozen(flags) ? flags : null;
    return lastText;
  };
  if (!recent) return (m) => list(m.flags);
  return (m) => (recent.has(m.uid) ? flagListRecent(m.flags) : list(m.flags));
}

/** The FLAGS response's system flags, from the view that also sends FLAGS updates. */
export { SYSTEM_FLAGS as SYSTEM_FLAG_LIST } from '../session/view.js';
