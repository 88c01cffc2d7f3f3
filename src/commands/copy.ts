// COPY / UID COPY — RFC 9051 §6.4.7, COPYUID (RFC 4315 §3);
// MOVE / UID MOVE — RFC 6851 (RFC 9051 §6.4.8).
import { defineCommand, bad, no, type CommandContext } from './types.js';
import { ArgReader } from './args.js';
import { resolveUids, SequenceError } from '../session/resolve.js';
import { formatSequenceSet, type SequenceSet } from '../wire/index.js';

function spec(kind: 'COPY' | 'MOVE', uidMode: boolean) {
  return defineCommand<{ set: SequenceSet; mailbox: string }>({
    name: uidMode ? `UID ${kind}` : kind,
    states: ['selected'],
    rfc: kind === 'COPY' ? 'RFC 9051 §6.4.7, RFC 4315' : 'RFC 6851, RFC 9051 §6.4.8',
    parse(args, session) {
      const r = new ArgReader(args);
      const set = r.sequenceSet();
      const mailbox = r.mailbox(session);
      r.end();
      return { set, mailbox };
    },
    async run(ctx, a) {
      return runCopy(ctx, kind, uidMode, a.set, a.mailbox);
    },
  });
}

async function runCopy(ctx: CommandContext, kind: 'COPY' | 'MOVE', uidMode: boolean, set: SequenceSet, mailbox: string) {
  const s = ctx.session;
  const view = s.selected!;
  let uids: number[];
  try {
    uids = resolveUids(s, set, uidMode);
  } catch (e) {
    if (e instanceof SequenceError) throw bad(e.message, 'CLIENTBUG');
    throw e;
  }
  if (kind === 'MOVE' && view.readOnly) throw no('Mailbox is read-only', 'CANNOT');
  const dest = await ctx.store.getMailbox(s.user!.id, mailbox);
  if (!dest) throw no('Destination mailbox does not exist', 'TRYCREATE');
  const live = uids.filter((u) => !view.expungedPending.has(u));
  if (live.length === 0) {
    if (uids.length > 0) throw no('Messages were expunged', 'EXPUNGEISSUED');
    return { text: `${kind} completed, nothing to do` };
  }
  const res = kind === 'MOVE'
    ? await ctx.store.moveMessages(view.mailboxId, live, dest.id)
    : await ctx.store.copyMessages(view.mailboxId, live, dest.id);
  // Expunged by another session between our view and the store: nothing was copied.
  if (res.sourceUids.length === 0) throw no('Messages were expunged', 'EXPUNGEISSUED');
  // RFC 4315 §3: COPYUID names only what was actually copied.
  const code = res.sourceUids.length
    ? `COPYUID ${res.uidValidity} ${formatSequenceSet(res.sourceUids)} ${formatSequenceSet(res.destUids)}`
    : undefined;
  if (kind === 'MOVE') {
    // RFC 6851 §4.3: COPYUID goes in an untagged OK before the EXPUNGE responses.
    if (code) ctx.out.untagged(`OK [${code}] Moved`);
    return { text: 'MOVE completed' };
  }
  return { code, text: 'COPY completed' };
}

export const copy = spec('COPY', false);
export const uidCopy = spec('COPY', true);
export const move = spec('MOVE', false);
export const uidMove = spec('MOVE', true);
