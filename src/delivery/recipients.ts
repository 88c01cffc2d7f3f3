// Recipient resolution and final delivery for LMTP. Everything goes through
// the MailStore contract, so a delivered message reaches IDLE sessions through
// the store's change feed like an APPEND does (STYLE habit 10).
//
// Resolution of "local+detail@domain", first match wins:
//   1. the whole address, then the address without "+detail", each as
//      a) an address or alias a user owns (quire user alias add),
//      b) a user whose name is that address,
//      c) a user whose name is the local part;
//   2. the catch-all of the domain ("@domain"), if one is set.
// The detail part chooses the folder when sub-addressing is 'folder' and that
// folder exists; otherwise mail goes to INBOX.

import { StoreError, type MailStore } from '../store/types.js';
import type { LmtpOptions } from './options.js';
import { processMetrics } from '../obs/metrics.js';

export interface DeliveryTarget {
  userId: number;
  userName: string;
  /** Mailbox to deliver into ("INBOX" unless a sub-address named an existing folder). */
  mailbox: string;
}

/** Splits an address at its last "@"; a quoted local part loses its quotes. */
export function splitAddress(address: string): { local: string; domain: string } {
  const at = address.lastIndexOf('@');
  let local = at < 0 ? address : address.slice(0, at);
  const domain = at < 0 ? '' : address.slice(at + 1).toLowerCase();
  const q = /^"((?:[^"\\]|\\.)*)"$/.exec(local);
  if (q) local = q[1]!.replace(/\\(.)/g, '$1');
  return { local, domain };
}

async function userFor(store: MailStore, local: string, domain: string, external?: LmtpOptions['externalUser']): Promise<{ id: number; name: string } | null> {
  const full = domain ? `${local}@${domain}` : local;
  const owned = await store.findAddress(full);
  if (owned) {
    const u = await store.getUserById(owned.userId);
    if (u) return u;
  }
  if (domain) {
    const u = await store.getUser(full);
    if (u) return u;
  }
  if (local.length > 0) {
    const u = await store.getUser(local);
    if (u) return u;
  }
  // An account of an external user database that has not logged in yet (issue 16).
  if (external) {
    if (domain) {
      const u = await external(full);
      if (u) return u;
    }
    if (local.length > 0) return external(local);
  }
  return null;
}

/** The user and mailbox an address delivers to, or null for an unknown recipient (550 5.1.1). */
export async function resolveRecipient(
  store: MailStore,
  address: string,
  opts: Pick<LmtpOptions, 'subaddress' | 'recipientDelimiter' | 'externalUser'>,
): Promise<DeliveryTarget | null> {
  const { local, domain } = splitAddress(address);
  if (local.length === 0 && domain.length === 0) return null;
  let user = await userFor(store, local, domain, opts.externalUser);
  let detail: string | null = null;
  const delim = opts.recipientDelimiter;
  if (!user && delim && local.includes(delim)) {
    const i = local.indexOf(delim);
    detail = local.slice(i + delim.length);
    user = await userFor(store, local.slice(0, i), domain, opts.externalUser);
  }
  if (!user && domain) {
    const catchAll = await store.findAddress(`@${domain}`);
    if (catchAll) user = await store.getUserById(catchAll.userId);
  }
  if (!user) return null;
  let mailbox = 'INBOX';
  if (detail && opts.subaddress === 'folder') {
    mailbox = (await findFolder(store, user.id, detail)) ?? 'INBOX';
  }
  return { userId: user.id, userName: user.name, mailbox };
}

/** The existing mailbox named by a sub-address: exact name, else a unique case-insensitive match. */
async function findFolder(store: MailStore, userId: number, detail: string): Promise<string | null> {
  if (detail.toUpperCase() === 'INBOX') return 'INBOX';
  if (await store.getMailbox(userId, detail)) return detail;
  const lower = detail.toLowerCase();
  const hits = (await store.listMailboxes(userId)).filter((m) => m.name.toLowerCase() === lower);
  return hits.length === 1 ? hits[0]!.name : null;
}

/** The reply for one recipient, given the address it was named by (two RCPTs may share one delivery). */
export type Verdict = (address: string) => string;

/** True when the user has no room left (RCPT is refused early; the store still enforces at APPEND). */
export async function isOverQuota(store: MailStore, userId: number): Promise<boolean> {
  const q = await store.getQuota(userId);
  return (q.storageLimit !== null && q.storageUsed >= q.storageLimit) || (q.messageLimit !== null && q.messagesUsed >= q.messageLimit);
}

/** The reply for a recipient whose quota is exhausted (RFC 3463 X.2.2 mailbox full). */
export function overQuotaReply(opts: Pick<LmtpOptions, 'overQuota'>, address: string): string {
  return opts.overQuota === 'permanent'
    ? `552 5.2.2 <${address}> Mailbox is over quota`
    : `452 4.2.2 <${address}> Mailbox is over quota, try again later`;
}

/**
 * Stores `data` for one target; resolves once the message is durable
 * (MailStore.appendMessages resolves after its fsync). Never throws: the
 * outcome is the LMTP reply for every RCPT that named this target.
 */
export async function deliverTo(
  store: MailStore,
  target: DeliveryTarget,
  data: Buffer,
  opts: Pick<LmtpOptions, 'overQuota' | 'log'>,
): Promise<Verdict> {
  try {
    for (const name of target.mailbox === 'INBOX' ? ['INBOX'] : [target.mailbox, 'INBOX']) {
      let mb = await store.getMailbox(target.userId, name);
      if (!mb && name === 'INBOX') {
        try {
          mb = await store.createMailbox(target.userId, 'INBOX');
        } catch (err) {
          if (!(err instanceof StoreError && err.kind === 'ALREADYEXISTS')) throw err;
          mb = await store.getMailbox(target.userId, 'INBOX');
        }
      }
      if (!mb) continue; // the folder was deleted since RCPT: fall back to INBOX
      try {
        const r = await store.appendMessages(mb.id, [{ data, flags: [] }]);
        opts.log.info('delivered', { user: target.userName, mailbox: mb.name, uid: r.uids[0], size: data.length });
        processMetrics().deliveries.inc({ result: 'delivered' });
        return (a) => `250 2.0.0 <${a}> Saved`;
      } catch (err) {
        if (err instanceof StoreError && (err.kind === 'TRYCREATE' || err.kind === 'NONEXISTENT') && name !== 'INBOX') continue;
        throw err;
      }
    }
    return (a) => `451 4.3.0 <${a}> Mailbox unavailable`;
  } catch (err) {
    const first = failureReply(err, '\0', opts);
    return (a) => first.replace('\0', a);
  }
}

/** Maps a store failure to the reply of one recipient (RFC 3463 enhanced codes). */
export function failureReply(err: unknown, address: string, opts: Pick<LmtpOptions, 'overQuota' | 'log'>): string {
  if (err instanceof StoreError) processMetrics().deliveries.inc({ result: err.kind.toLowerCase() });
  else processMetrics().deliveries.inc({ result: 'error' });
  if (err instanceof StoreError) {
    switch (err.kind) {
      case 'OVERQUOTA':
        return overQuotaReply(opts, address);
      case 'TOOBIG':
        return `552 5.3.4 <${address}> Message too big`;
      case 'NONEXISTENT':
        return `550 5.1.1 <${address}> User unknown`;
      case 'NOPERM':
        return `550 5.7.1 <${address}> Delivery not permitted`;
      case 'LIMIT':
        return `452 4.3.1 <${address}> Mailbox limit reached, try again later`;
      default:
        break;
    }
  }
  const id = Math.random().toString(36).slice(2, 10);
  opts.log.error('delivery failed', { id, rcpt: address, error: err instanceof Error ? err.message : String(err) });
  return `451 4.3.0 <${address}> Temporary failure (${id})`;
}
