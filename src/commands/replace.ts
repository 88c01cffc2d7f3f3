// REPLACE and UID REPLACE — RFC 8508 §3.2-§3.5: append a message and expunge
// one message of the selected mailbox as a single action. Only in the
// selected state (§3.5); the answer carries APPENDUID (RFC 4315 §3) in an
// untagged OK before the EXISTS/EXPUNGE responses, as in §3.2's example.
import { defineCommand, bad, no, type CommandContext } from './types.js';
import { ArgReader } from './args.js';
import { appendMessage } from './append.js';
import { assembleCatenated, type AppendItem } from './catenate.js';
import { formatSequenceSet } from '../wire/index.js';
import { resolveUids, SequenceError } from '../session/resolve.js';
import type { AppendInput } from '../store/types.js';
import type { Token } from '../wire/types.js';
import type { Session } from '../session/session.js';

interface ReplaceArgs {
  id: number;
  mailbox: string;
  item: AppendItem;
}

function parseReplace(args: Token[], session: Session): ReplaceArgs {
  const r = new ArgReader(args);
  // RFC 8508 §5: replace = "REPLACE" SP seq-number SP mailbox append-message (a single number, no set).
  const id = r.number('message number');
  if (id === 0) throw bad('Invalid message number');
  const mailbox = r.mailbox(session);
  const item = appendMessage(r, session); // RFC 6855 §4 applies to REPLACE's message too
  r.end();
  return { id, mailbox, item };
}

async function runReplace(ctx: CommandContext, { id, mailbox, item: given }: ReplaceArgs, uidMode: boolean) {
  const view = ctx.session.selected!;
  // §4.1: REPLACE needs the rights of STORE and EXPUNGE here: a read-only (EXAMINEd) mailbox cannot.
  if (view.readOnly) throw no('Mailbox is read-only', 'CANNOT');
  // RFC 8508 §5: append-message may be a CATENATE one (RFC 4469).
  const [item] = (await assembleCatenated(ctx, [given])) as [AppendInput];
  if (item.data.length > ctx.limits.maxMessageSize) throw no('Message too big', 'TOOBIG');
  // Sequence mode: a number above the message count is BAD; UID mode: a UID that names no message is NO.
  let uid: number | undefined;
  try {
    [uid] = resolveUids(ctx.session, { saved: false, ranges: [{ start: id, end: id }] }, uidMode);
  } catch (e) {
    if (e instanceof SequenceError) throw bad(e.message, 'CLIENTBUG');
    throw e;
  }
  if (uid === undefined) throw no('No such message');
  const dest = await ctx.store.getMailbox(ctx.session.user!.id, mailbox);
  // As for APPEND (§3.4): a missing destination answers NO [TRYCREATE], and nothing is expunged.
  if (!dest) throw no('Mailbox does not exist', 'TRYCREATE');
  const res = await ctx.store.replaceMessage(view.mailboxId, uid, dest.id, item);
  ctx.out.untagged(`OK [APPENDUID ${res.uidValidity} ${formatSequenceSet(res.uids)}] Replacement Message ready`);
  return { text: `${uidMode ? 'UID ' : ''}REPLACE completed` };
}

export const replace = defineCommand<ReplaceArgs>({
  name: 'REPLACE',
  states: ['selected'],
  rfc: 'RFC 8508 §3.2, §3.4, §3.5',
  parse: parseReplace,
  run: (ctx, a) => runReplace(ctx, a, false),
});

export const uidReplace = defineCommand<ReplaceArgs>({
  name: 'UID REPLACE',
  states: ['selected'],
  rfc: 'RFC 8508 §3.3',
  parse: parseReplace,
  run: (ctx, a) => runReplace(ctx, a, true),
});
