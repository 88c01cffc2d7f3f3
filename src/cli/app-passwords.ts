// `quire user app-password add|list|revoke`: named application passwords per
// user (src/auth/userdb/builtin.ts). A generated password is shown once; the
// store keeps only its SHA-256. Each works wherever the account password does
// (LOGIN, SASL PLAIN), is logged by name at every login, and revoking it
// takes effect at once on every worker (the verified-password cache is keyed
// on the set of application passwords). SCRAM uses the account password only.

import type { Command } from 'commander';
import { StoreError, type MailStore, type UserInfo } from '../store/types.js';
import { addAppPassword, APP_PASSWORD_KIND } from '../auth/userdb/builtin.js';
import type { AdminHelpers } from './mail-admin.js';

async function userOf(store: MailStore, name: string): Promise<UserInfo> {
  const u = await store.getUser(name);
  if (!u) throw new StoreError('NONEXISTENT', `no such user: ${name}`);
  return u;
}

export function registerAppPasswords(user: Command, admin: AdminHelpers): void {
  const app = user.command('app-password').description('named application passwords (one per device or program, each revocable)');

  admin.addStoreOptions(app.command('add').argument('<user>').argument('<name>', 'what it is for, e.g. "phone"').description('create an application password and print it once'))
    .action(async (name: string, label: string, opts: Record<string, unknown>) => {
      const password = await admin.withStore(opts, false, async (store) => addAppPassword(store, await userOf(store, name), label));
      process.stdout.write(`application password "${label}" for ${name}:\n  ${password}\n`);
    });

  admin.addStoreOptions(app.command('list').alias('ls').argument('<user>').description('list application passwords (name, created, last used; tab-separated)'))
    .action(async (name: string, opts: Record<string, unknown>) => {
      const list = await admin.withStore(opts, false, async (store) => store.listCredentials((await userOf(store, name)).id, APP_PASSWORD_KIND));
      for (const c of list) process.stdout.write(`${c.name}\t${c.createdAt.toISOString()}\t${c.lastUsed ? c.lastUsed.toISOString() : 'never'}\n`);
    });

  admin.addStoreOptions(app.command('revoke').argument('<user>').argument('<name>').description('revoke an application password'))
    .action(async (name: string, label: string, opts: Record<string, unknown>) => {
      const gone = await admin.withStore(opts, false, async (store) => store.deleteCredential((await userOf(store, name)).id, APP_PASSWORD_KIND, label));
      if (!gone) throw new StoreError('NONEXISTENT', `${name} has no application password named "${label}"`);
      process.stdout.write(`revoked application password "${label}" of ${name}\n`);
    });
}
