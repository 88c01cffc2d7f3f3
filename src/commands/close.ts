// CLOSE (RFC 9051 §6.4.1), UNSELECT (§6.4.2, RFC 3691), EXPUNGE (§6.4.3),
// UID EXPUNGE (§6.4.9, RFC 4315 §2.1).
import { defineCommand, no } from './types.js';
import { ArgReader } from './args.js';
import { resolveUids } from '../session/resolve.js';
import type { SequenceSet } from '../wire/index.js';

export const close = defineCommand({
  name: 'CLOSE',
  states: ['selected'],
  rfc: 'RFC 9051 §6.4.1',
  parse(args) {
    new ArgReader(args).end();
  },
  async run(ctx) {
    const view = ctx.session.selected!;
    // RFC 9051 §6.4.1: messages marked \Deleted are removed, silently; nothing if read-only.
    ctx.session.selected = null;
    ctx.session.state = 'auth';
    if (!view.readOnly) await ctx.store.expunge(view.mailboxId);
    return { text: 'CLOSE completed' };
  },
});

export const unselect = defineCommand({
  name: 'UNSELECT',
  states: ['selected'],
  rfc: 'RFC 9051 §6.4.2, RFC 3691',
  parse(args) {
    new ArgReader(args).end();
  },
  async run(ctx) {
    ctx.session.selected = null;
    ctx.session.state = 'auth';
    return { text: 'UNSELECT completed' };
  },
});

export const expunge = defineCommand({
  name: 'EXPUNGE',
  states: ['selected'],
  rfc: 'RFC 9051 §6.4.3',
  parse(args) {
    new ArgReader(args).end();
  },
  async run(ctx) {
    const view = ctx.session.selected!;
    if (view.readOnly) throw no('Mailbox is read-only', 'CANNOT');
    // The EXPUNGE responses come from the change feed, flushed by the dispatcher.
    await ctx.store.expunge(view.mailboxId);
    return { text: 'EXPUNGE completed' };
  },
});

export const uidExpunge = defineCommand<{ set: SequenceSet }>({
  name: 'UID EXPUNGE',
  states: ['selected'],
  rfc: 'RFC 9051 §6.4.9, RFC 4315 §2.1',
  parse(args) {
    const r = new ArgReader(args);
    const set = r.sequenceSet('UID set');
    r.end();
    return { set };
  },
  async run(ctx, { set }) {
    const view = ctx.session.selected!;
    if (view.readOnly) throw no('Mailbox is read-only', 'CANNOT');
    const uids = resolveUids(ctx.session, set, true);
    if (uids.length) await ctx.store.expunge(view.mailboxId, uids);
    return { text: 'UID EXPUNGE completed' };
  },
});
