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
  if (session.recentEnabled && view && view.recent.has(m.uid)) return m.flags.length ? `(${m.flags.join(' ')} \\Recent)` : '(\\Recent)';
  if (!Object.isFrozen(m.flags)) return `(${m.flags.join(' ')})`;
  let s = listed.get(m.flags);
  if (s === undefined) listed.set(m.flags, (s = `(${m.flags.join(' ')})`));
  return s;
}

/** The FLAGS response's system flags, from the view that also sends FLAGS updates. */
export { SYSTEM_FLAGS as SYSTEM_FLAG_LIST } from '../session/view.js';
