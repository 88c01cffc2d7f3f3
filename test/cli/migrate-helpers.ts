// Shared by the `quire migrate` tests (migrate.test.ts, migrate-postgres.test.ts):
// an in-process IMAP server on a store, the `quire migrate` process, and
// everything observable of a store.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Authenticator } from '../../src/auth/authenticator.js';
import { startServer } from '../../src/server/index.js';
import { loadConfig, toServerOptions } from '../../src/cli/config.js';
import { loadOrCreateTls } from '../../src/cli/tls.js';
import type { MailStore } from '../../src/store/types.js';
import { runProcess } from '../helpers/process.js';
import { cleanEnv } from '../obs/helpers.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const quiet = { debug() {}, info() {}, warn() {}, error: (m: string, f?: unknown) => console.error('[server error]', m, f) };

export async function serve(store: MailStore, dir: string) {
  const config = loadConfig({ env: {}, flags: { data: dir } });
  const tls = await loadOrCreateTls({ dataDir: mkdtempSync(path.join(tmpdir(), 'quire-mig-tls-')), tls: {} } as never);
  const so = toServerOptions(config, tls, quiet);
  so.imap = [{ host: '127.0.0.1', port: 0 }];
  so.imaps = [];
  const server = await startServer(store, new Authenticator(store, { baseDelayMs: 10, maxDelayMs: 20 }), so);
  return { server, port: server.addresses.imap[0]!.port };
}

export function migrate(args: string[]) {
  return runProcess(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), 'migrate', ...args], { cwd: ROOT, env: cleanEnv() });
}

/** Everything observable of a store, user by user, mailbox by mailbox, with bodies. */
export async function observe(store: MailStore) {
  const out: unknown[] = [];
  for (const u of await store.listUsers()) {
    const creds = (await store.exportCredentials(u.id)).map((c) => [c.kind, c.name, c.secret, c.lastUsed?.getTime() ?? null]);
    const quota = await store.getQuota(u.id);
    const addrs = (await store.listAddresses(u.id)).map((a) => a.address);
    const subs = (await store.listSubscriptions(u.id)).sort();
    const notes = (await store.getAnnotations(u.id, null, ['/private', '/shared'], 'infinity')).map((a) => [a.entry, a.value.toString('hex')]);
    const boxes: unknown[] = [];
    for (const b of (await store.listMailboxes(u.id)).sort((x, y) => (x.name < y.name ? -1 : 1))) {
      const st = await store.exportMailbox(b.id);
      const msgs = [];
      for (const m of (await store.listMessages(b.id)).sort((x, y) => x.uid - y.uid)) {
        const body = await store.openMessage(b.id, m.uid);
        msgs.push({ ...m, flags: [...m.flags].sort(), body: (await body!.read(0, body!.size)).toString('latin1') });
      }
      const bnotes = (await store.getAnnotations(u.id, b.id, ['/private', '/shared'], 'infinity')).map((a) => [a.entry, a.value.toString('hex')]);
      boxes.push({ name: b.name, specialUse: b.specialUse, subscribed: b.subscribed, objectId: b.objectId, st, msgs, bnotes });
    }
    out.push({ name: u.name, hash: u.passwordHash, creds, quota, addrs, subs, notes, boxes });
  }
  return out;
}

