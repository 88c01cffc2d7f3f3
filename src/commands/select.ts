// SELECT and EXAMINE — RFC 9051 §6.3.2, §6.3.3; rev1 differences (RECENT,
// UNSEEN, no LIST response) per RFC 3501 §6.3.1 and RFC 9051 Appendix E.
import { defineCommand, no, type CommandContext } from './types.js';
import { ArgReader } from './args.js';
import { SelectedView } from '../session/view.js';
import { mbox, SYSTEM_FLAG_LIST } from './format.js';

function spec(name: 'SELECT' | 'EXAMINE') {
  return defineCommand({
    name,
    states: ['auth', 'selected'],
    rfc: name === 'SELECT' ? 'RFC 9051 §6.3.2' : 'RFC 9051 §6.3.3',
    parse(args, session) {
      const r = new ArgReader(args);
      const mailbox = r.mailbox(session);
      // Select parameters (RFC 4466 §2.4) are accepted only when we know them; none yet.
      r.end();
      return { mailbox };
    },
    async run(ctx, { mailbox }) {
      return selectMailbox(ctx, mailbox, name === 'EXAMINE');
    },
  });
}

export async function selectMailbox(ctx: CommandContext, name: string, readOnly: boolean) {
  const s = ctx.session;
  if (s.selected) {
    // RFC 9051 §6.3.2: selecting closes the current mailbox without expunging;
    // the CLOSED response code marks the boundary (RFC 9051 §7.1, RFC 7162 §3.2.11).
    s.selected = null;
    s.state = 'auth';
    if (s.rev2) ctx.out.untagged('OK [CLOSED] Previous mailbox closed');
  }
  s.savedSearch = [];
  const info = await ctx.store.getMailbox(s.user!.id, name);
  if (!info) throw no('Mailbox does not exist', 'NONEXISTENT');
  s.pendingSelect = { mailboxId: info.id, changes: [] };
  let messages;
  let firstRecent = Infinity;
  try {
    messages = await ctx.store.listMessages(info.id);
    if (s.recentEnabled && !readOnly) firstRecent = await ctx.store.claimRecent(info.id);
    else if (s.recentEnabled) {
      // RFC 3501 §6.3.2: EXAMINE changes nothing, including the loss of \Recent, but it
      // still reports the recent messages (as Dovecot does). They are the highest UIDs.
      const { recent } = await ctx.store.mailboxStatus(info.id);
      if (recent > 0) firstRecent = messages[Math.max(0, messages.length - recent)]?.uid ?? Infinity;
    }
  } catch (e) {
    s.pendingSelect = null;
    throw e;
  }
  const keywords = await ctx.store.listKeywords(info.id);
  const view = new SelectedView(info.id, info.name, readOnly, info.uidValidity, messages, info.highestModseq);
  for (const c of s.pendingSelect.changes) view.enqueue(c);
  s.pendingSelect = null;
  let firstUnseen = 0;
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i];
    if (m.uid >= firstRecent) view.recent.add(m.uid);
    if (!firstUnseen && !m.flags.includes('\\Seen')) firstUnseen = i + 1;
  }
  s.selected = view;
  s.state = 'selected';
  const flags = [...SYSTEM_FLAG_LIST, ...keywords].join(' ');
  ctx.out.untagged(`${view.exists} EXISTS`);
  if (s.recentEnabled) ctx.out.untagged(`${view.recent.size} RECENT`);
  ctx.out.untagged(`FLAGS (${flags})`);
  ctx.out.untagged(`OK [PERMANENTFLAGS (${readOnly ? '' : flags + ' \\*'})] Flags permitted`);
  if (s.recentEnabled && firstUnseen) ctx.out.untagged(`OK [UNSEEN ${firstUnseen}] First unseen`);
  ctx.out.untagged(`OK [UIDVALIDITY ${info.uidValidity}] UIDs valid`);
  ctx.out.untagged(`OK [UIDNEXT ${info.uidNext}] Predicted next UID`);
  // RFC 9051 §6.3.2: the server MUST return a LIST response with the mailbox name.
  if (s.rev2) ctx.out.untagged(`LIST () "/" ${mbox(s, info.name)}`);
  return { code: readOnly ? 'READ-ONLY' : 'READ-WRITE', text: `${readOnly ? 'EXAMINE' : 'SELECT'} completed` };
}

export const select = spec('SELECT');
export const examine = spec('EXAMINE');
