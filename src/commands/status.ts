// STATUS — RFC 9051 §6.3.11; SIZE (RFC 8438), DELETED (RFC 9051), RECENT (rev1, RFC 3501 §6.3.10).
import { defineCommand, bad, no } from './types.js';
import type { Token } from '../wire/types.js';
import { ArgReader, isAtom } from './args.js';
import { mbox } from './format.js';
import { enableCondstore } from './condstore.js';
import type { MailboxStatus, MailStore } from '../store/types.js';
import type { Session } from '../session/session.js';

export type StatusItem = 'MESSAGES' | 'UIDNEXT' | 'UIDVALIDITY' | 'UNSEEN' | 'DELETED' | 'SIZE' | 'RECENT' | 'HIGHESTMODSEQ' | 'DELETED-STORAGE' | 'MAILBOXID';
const ITEMS = new Set<StatusItem>(['MESSAGES', 'UIDNEXT', 'UIDVALIDITY', 'UNSEEN', 'DELETED', 'SIZE', 'RECENT', 'HIGHESTMODSEQ', 'DELETED-STORAGE', 'MAILBOXID']);

export function parseStatusItems(tokens: Token[]): StatusItem[] {
  if (tokens.length === 0) throw bad('Empty STATUS item list');
  const out: StatusItem[] = [];
  for (const t of tokens) {
    if (!isAtom(t)) throw bad('Invalid STATUS item');
    const v = t.value.toUpperCase() as StatusItem;
    if (!ITEMS.has(v)) throw bad(`Unknown STATUS item ${t.value.slice(0, 30)}`);
    if (!out.includes(v)) out.push(v);
  }
  return out;
}

/** STATUS values, plus DELETED-STORAGE when asked for (computed on demand: it needs a scan). */
export type StatusValues = MailboxStatus & { deletedStorage?: number; objectId?: string };

/** Reads what `items` need for one mailbox. */
export async function statusValues(store: MailStore, mailboxId: number, items: StatusItem[]): Promise<StatusValues> {
  const st: StatusValues = await store.mailboxStatus(mailboxId);
  // RFC 9208 §4.1.4, §5.1: in the units of the STORAGE resource (1024 octets), rounded up.
  if (items.includes('DELETED-STORAGE')) st.deletedStorage = Math.ceil((await store.deletedSize(mailboxId)) / 1024);
  if (items.includes('MAILBOXID')) st.objectId = (await store.getMailboxById(mailboxId))?.objectId;
  return st;
}

export function statusLine(session: Session, name: string, st: StatusValues, items: StatusItem[]): string {
  const parts: string[] = [];
  for (const it of items) {
    switch (it) {
      case 'MESSAGES': parts.push(`MESSAGES ${st.messages}`); break;
      case 'UIDNEXT': parts.push(`UIDNEXT ${st.uidNext}`); break;
      case 'UIDVALIDITY': parts.push(`UIDVALIDITY ${st.uidValidity}`); break;
      case 'UNSEEN': parts.push(`UNSEEN ${st.unseen}`); break;
      case 'DELETED': parts.push(`DELETED ${st.deleted}`); break;
      case 'SIZE': parts.push(`SIZE ${st.size}`); break;
      case 'RECENT': parts.push(`RECENT ${st.recent}`); break;
      case 'HIGHESTMODSEQ': parts.push(`HIGHESTMODSEQ ${st.highestModseq}`); break; // RFC 7162 §3.1.7
      case 'DELETED-STORAGE': parts.push(`DELETED-STORAGE ${st.deletedStorage ?? 0}`); break; // RFC 9208 §4.1.4
      case 'MAILBOXID': if (st.objectId) parts.push(`MAILBOXID (${st.objectId})`); break; // RFC 8474 §4.2
    }
  }
  return `STATUS ${mbox(session, name)} (${parts.join(' ')})`;
}

export const status = defineCommand({
  name: 'STATUS',
  states: ['auth', 'selected'],
  rfc: 'RFC 9051 §6.3.11, RFC 8438',
  parse(args, session) {
    const r = new ArgReader(args);
    const mailbox = r.mailbox(session);
    const items = parseStatusItems(r.list('status items'));
    r.end();
    return { mailbox, items };
  },
  async run(ctx, { mailbox, items }) {
    const info = await ctx.store.getMailbox(ctx.session.user!.id, mailbox);
    if (!info) throw no('Mailbox does not exist', 'NONEXISTENT');
    // RFC 7162 §3.1: STATUS (HIGHESTMODSEQ) is a CONDSTORE enabling command.
    if (items.includes('HIGHESTMODSEQ')) enableCondstore(ctx);
    const st = await statusValues(ctx.store, info.id, items);
    ctx.out.untagged(statusLine(ctx.session, info.name, st, items));
  },
});
