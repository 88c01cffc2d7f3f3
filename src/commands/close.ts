// CLOSE (RFC 9051 §6.4.1), UNSELECT (§6.4.2, RFC 3691), EXPUNGE (§6.4.3),
// UID EXPUNGE (§6.4.9, RFC 4315 §2.1).
import { defineCommand, no, type CommandContext } from './types.js';
import { ArgReader } from './args.js';
import { resolveUids } from '../session/resolve.js';
import type { SequenceSet } from '../wire/index.js';

/** RFC 7162 §3.2.7 / §3.2.9: with QRESYNC, the tagged OK carries the new HIGHESTMODSEQ after an expunge. */
async function expunged(ctx: CommandContext, count: number, text: string) {
  if (count === 0 || !ctx.session.qresync) return { text };
  const st = await ctx.store.mailboxStatus(ctx.session.selected!.mailboxId);
  return { code: `HIGHESTMODSEQ ${st.highestModseq}`, text };
}

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
    const gone = await ctx.store.expunge(view.mailboxId);
    return expunged(ctx, gone.length, 'EXPUNGE completed');
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
    const gone = uids.length ? await ctx.store.expunge(view.mailboxId, uids) : [];
    return expunged(ctx, gone.length, 'UID EXPUNGE completed');
  },
});
