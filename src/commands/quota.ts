// GETQUOTA, GETQUOTAROOT, SETQUOTA — RFC 9208 §4.1.1-4.1.3 (QUOTA,
// QUOTA=RES-STORAGE, QUOTA=RES-MESSAGE, QUOTASET).
//
// Quire has one quota root per user covering all of that user's mailboxes.
// The user sees it as "" (as in the RFC 9208 §4.2.1 example); an admin
// (config `admins`) may name another user's root as "#user/NAME".
// STORAGE is in units of 1024 octets (RFC 9208 §5.1: sum of RFC822.SIZE),
// usage rounded down, limits kept in bytes by the store. SETQUOTA discards
// limits it does not list (§4.1.3). OVERQUOTA on APPEND/COPY comes from the
// store (StoreError OVERQUOTA) through the error table in errors.ts.

import { defineCommand, bad, no, type CommandContext } from './types.js';
import { ArgReader, isAtom, parseNumber } from './args.js';
import { mbox } from './format.js';
import { quoted } from '../wire/index.js';
import type { QuotaInfo, UserInfo } from '../store/types.js';

/** Prefix of another user's quota root name (admins only). */
const USER_ROOT_PREFIX = '#user/';
const KiB = 1024;
/** Largest STORAGE limit accepted, in KiB: keeps bytes within a safe integer (RFC 9208 allows 63 bits). */
const MAX_STORAGE_KIB = Math.floor(Number.MAX_SAFE_INTEGER / KiB);

function isAdmin(ctx: CommandContext): boolean {
  const me = ctx.session.user!.name.toLowerCase();
  return ctx.admins.some((a) => a.toLowerCase() === me);
}

/** The user a quota root name refers to for this session, or a tagged NO. */
async function rootUser(ctx: CommandContext, root: string): Promise<UserInfo> {
  const me = ctx.session.user!;
  if (root === '') return me;
  if (root.startsWith(USER_ROOT_PREFIX)) {
    const name = root.slice(USER_ROOT_PREFIX.length);
    if (name.toLowerCase() === me.name.toLowerCase()) return me;
    if (isAdmin(ctx)) {
      const u = await ctx.store.getUser(name);
      if (u) return u;
    }
  }
  throw no('No such quota root', 'NONEXISTENT');
}

/** RFC 9208 §4.2.1: only limited resources are listed; an empty list means no limits. */
function quotaResponse(root: string, q: QuotaInfo): string {
  const parts: string[] = [];
  if (q.storageLimit !== null) parts.push(`STORAGE ${Math.floor(q.storageUsed / KiB)} ${Math.floor(q.storageLimit / KiB)}`);
  if (q.messageLimit !== null) parts.push(`MESSAGE ${q.messagesUsed} ${q.messageLimit}`);
  return `QUOTA ${quoted(root)} (${parts.join(' ')})`;
}

export const getquota = defineCommand({
  name: 'GETQUOTA',
  states: ['auth', 'selected'],
  rfc: 'RFC 9208 §4.1.1',
  parse(args) {
    const r = new ArgReader(args);
    const root = r.astringText('quota root');
    r.end();
    return { root };
  },
  async run(ctx, { root }) {
    const u = await rootUser(ctx, root);
    ctx.out.untagged(quotaResponse(root, await ctx.store.getQuota(u.id)));
  },
});

export const getquotaroot = defineCommand({
  name: 'GETQUOTAROOT',
  states: ['auth', 'selected'],
  rfc: 'RFC 9208 §4.1.2',
  parse(args, session) {
    const r = new ArgReader(args);
    const mailbox = r.mailbox(session);
    r.end();
    return { mailbox };
  },
  async run(ctx, { mailbox }) {
    // §4.1.2: the mailbox need not exist; every mailbox of the user is under "".
    const q = await ctx.store.getQuota(ctx.session.user!.id);
    ctx.out.untagged(`QUOTAROOT ${mbox(ctx.session, mailbox)} ""`);
    ctx.out.untagged(quotaResponse('', q));
  },
});

export const setquota = defineCommand({
  name: 'SETQUOTA',
  states: ['auth', 'selected'],
  rfc: 'RFC 9208 §4.1.3',
  parse(args) {
    const r = new ArgReader(args);
    const root = r.astringText('quota root');
    const items = r.list('resource limits');
    r.end();
    if (items.length % 2 !== 0) throw bad('Resource limits come in name/limit pairs');
    const limits: { storage: number | null; messages: number | null } = { storage: null, messages: null };
    const seen = new Set<string>();
    for (let i = 0; i < items.length; i += 2) {
      const name = items[i];
      const value = items[i + 1];
      if (!isAtom(name) || !isAtom(value)) throw bad('Expected resource name and limit');
      const res = name.value.toUpperCase();
      if (seen.has(res)) throw bad(`Resource ${res} given twice`);
      seen.add(res);
      // RFC 9208 §9: resource-limit is a 63-bit number.
      const n = parseNumber(value.value, 'resource limit', Number.MAX_SAFE_INTEGER);
      if (res === 'STORAGE') {
        if (n > MAX_STORAGE_KIB) throw bad('STORAGE limit too large');
        limits.storage = n * KiB;
      } else if (res === 'MESSAGE') {
        limits.messages = n;
      } else {
        throw no(`Resource ${res.slice(0, 40)} is not supported`, 'CANNOT');
      }
    }
    return { root, limits };
  },
  async run(ctx, { root, limits }) {
    if (!isAdmin(ctx)) throw no('Only an administrator may change quotas', 'NOPERM');
    const u = await rootUser(ctx, root);
    const q = await ctx.store.setQuota(u.id, limits);
    ctx.out.untagged(quotaResponse(root, q));
  },
});
