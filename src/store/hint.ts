import type { Change, ChangeHint } from './types.js';

/**
 * The change-bus hint of one commit's records, for every backend: the one
 * mailbox changed with its highest modseq (kind append when a message
 * arrived), or (several mailboxes, or a mailbox created, renamed, deleted)
 * a request for a full look. Subscriptions, annotations and URLAUTH keys
 * concern no other session's mailbox view.
 */
export function hintOf(changes: readonly Change[]): ChangeHint | null {
  let hint = null as ChangeHint | null;
  for (const c of changes) {
    if (c.kind === 'subscription' || c.kind === 'annotation' || c.kind === 'urlauth-key') continue;
    if (!('modseq' in c)) return { userId: c.userId, mailboxId: c.mailboxId, modseq: 0, kind: 'mailboxes' };
    if (hint && hint.mailboxId !== c.mailboxId) return { userId: c.userId, mailboxId: c.mailboxId, modseq: 0, kind: 'mailboxes' };
    const kind: ChangeHint['kind'] = c.kind === 'append' || hint?.kind === 'append' ? 'append' : 'messages';
    hint = { userId: c.userId, mailboxId: c.mailboxId, modseq: Math.max(c.modseq, hint?.modseq ?? 0), kind };
  }
  return hint;
}
