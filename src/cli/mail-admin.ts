// Admin subcommands for mail flow: `quire user alias …`, `quire user quota …`,
// `quire import …` and `quire export …`. They write through the same
// MailStore methods as IMAP and LMTP, so a running server's sessions see the
// changes through the change feed like any other writer.

import type { Command } from 'commander';
import { StoreError, type MailStore, type QuotaInfo, type UserInfo } from '../store/types.js';

export interface AdminHelpers {
  addStoreOptions(cmd: Command): Command;
  withStore<T>(flags: Record<string, unknown>, create: boolean, fn: (store: MailStore) => Promise<T>): Promise<T>;
  /** The data directory the flags select (for files kept beside the store, e.g. import state). */
  dataDir(flags: Record<string, unknown>): string;
  /** The store the flags select (`quire migrate`: only a SQLite source has a data directory to lock). */
  storeOf?(flags: Record<string, unknown>): { kind: 'sqlite' } | { kind: 'postgres'; url: string };
}

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3, t: 1024 ** 4, tb: 1024 ** 4, tib: 1024 ** 4 };

/** "none"/"unlimited" → null; "500M" → bytes; plain numbers as they are. */
export function parseLimit(raw: string, sizes: boolean): number | null {
  const v = raw.trim().toLowerCase();
  if (v === 'none' || v === 'unlimited' || v === 'off') return null;
  const m = /^(\d+)\s*([a-z]*)$/.exec(v);
  const unit = m ? (sizes ? UNITS[m[2]!] : m[2] === '' ? 1 : undefined) : undefined;
  if (!m || unit === undefined) {
    throw new Error(sizes ? `invalid size ${JSON.stringify(raw)} (e.g. 500M, 2G, or "none")` : `invalid count ${JSON.stringify(raw)} (a number or "none")`);
  }
  const n = Number(m[1]) * unit;
  if (!Number.isSafeInteger(n)) throw new Error(`${raw} is too large`);
  return n;
}

function fmtBytes(n: number): string {
  for (const [u, f] of [['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]] as const) if (n >= f) return `${(n / f).toFixed(1)} ${u}`;
  return `${n} bytes`;
}

export function formatQuota(name: string, q: QuotaInfo): string {
  const storage = `storage ${fmtBytes(q.storageUsed)} of ${q.storageLimit === null ? 'unlimited' : fmtBytes(q.storageLimit)}`;
  const messages = `messages ${q.messagesUsed} of ${q.messageLimit === null ? 'unlimited' : q.messageLimit}`;
  return `${name}: ${storage}, ${messages}\n`;
}

export async function requireUser(store: MailStore, name: string): Promise<UserInfo> {
  const u = await store.getUser(name);
  if (!u) throw new StoreError('NONEXISTENT', `no such user: ${name}`);
  return u;
}

export function registerMailAdmin(program: Command, user: Command, h: AdminHelpers): void {
  const alias = user.command('alias').description('addresses and aliases a user receives mail for over LMTP (@domain = catch-all)');

  h.addStoreOptions(alias.command('add').argument('<name>', 'user name').argument('<address>', 'local@domain, or @domain for the catch-all of that domain'))
    .description('give an address to a user')
    .action(async (name: string, address: string, opts: Record<string, unknown>) => {
      const a = await h.withStore(opts, false, async (store) => store.addAddress((await requireUser(store, name)).id, address));
      process.stdout.write(`${a.address} now delivers to ${name}\n`);
    });

  h.addStoreOptions(alias.command('del').alias('delete').argument('<address>', 'the address to remove'))
    .description('remove an address')
    .action(async (address: string, opts: Record<string, unknown>) => {
      await h.withStore(opts, false, (store) => store.removeAddress(address));
      process.stdout.write(`removed ${address}\n`);
    });

  h.addStoreOptions(alias.command('list').alias('ls').argument('[name]', 'only this user'))
    .description('list addresses (address and user, tab-separated)')
    .action(async (name: string | undefined, opts: Record<string, unknown>) => {
      const lines = await h.withStore(opts, false, async (store) => {
        const list = await store.listAddresses(name === undefined ? undefined : (await requireUser(store, name)).id);
        const names = new Map<number, string>();
        for (const u of await store.listUsers()) names.set(u.id, u.name);
        return list.map((a) => `${a.address}\t${names.get(a.userId) ?? a.userId}\n`);
      });
      process.stdout.write(lines.join(''));
    });

  h.addStoreOptions(user.command('quota').argument('<name>', 'user name'))
    .description('show or set a user\'s quota (RFC 9208 STORAGE and MESSAGE); "none" removes a limit')
    .option('--storage <size>', 'storage limit in bytes or with a unit (500M, 2G), or "none"')
    .option('--messages <count>', 'message count limit, or "none"')
    .action(async (name: string, opts: Record<string, unknown>) => {
      const limits: { storage?: number | null; messages?: number | null } = {};
      if (typeof opts.storage === 'string') limits.storage = parseLimit(opts.storage, true);
      if (typeof opts.messages === 'string') limits.messages = parseLimit(opts.messages, false);
      // As in Dovecot (quota_rule storage=0): a limit of 0 means no limit, not "nothing may be stored" (ops).
      for (const k of ['storage', 'messages'] as const) {
        if (limits[k] === 0) {
          limits[k] = null;
          process.stderr.write(`note: --${k} 0 means unlimited (as in Dovecot); use "none" to say so explicitly\n`);
        }
      }
      const q = await h.withStore(opts, false, async (store) => {
        const u = await requireUser(store, name);
        return Object.keys(limits).length > 0 ? store.setQuota(u.id, limits) : store.getQuota(u.id);
      });
      process.stdout.write(formatQuota(name, q));
    });

  void program;
}
