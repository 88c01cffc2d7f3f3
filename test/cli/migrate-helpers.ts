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
import { RawClient, message } from '../helpers/imap.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { provisionUser } from '../../src/cli/users.js';
import { addAppPassword } from '../../src/auth/userdb/builtin.js';
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


/**
 * The migrate tests' source store in `srcDir`: alice (app password, quota, address, annotations, a
 * subscribed child mailbox and a subscribed name that does not exist) and bob (a domain address), with
 * `messages` in alice's INBOX appended `batch` at a time (zones, keywords, \Seen on every third),
 * three copies into Work/Projects, flag changes, three messages flagged \Deleted (UIDs 11-13, for the
 * QRESYNC client's EXPUNGE) and `sentBody` in bob's Sent. Closed again when it returns.
 */
export async function seedSource(srcDir: string, o: { messages: number; batch: number; sentBody: string }) {
  const src = await openSqliteStore({ dataDir: srcDir, synchronous: 'NORMAL' });
  const alice = await provisionUser(src, 'alice', 'secret-a');
  const bob = await provisionUser(src, 'bob', 'secret-b');
  await addAppPassword(src, alice, 'phone');
  await src.touchCredential(alice.id, 'app', 'phone', new Date(1_700_000_000_000));
  await src.setQuota(alice.id, { storage: 10_000_000, messages: 5000 });
  await src.addAddress(alice.id, 'alice@example.org');
  await src.addAddress(bob.id, '@example.net');
  await src.setAnnotations(alice.id, null, [{ entry: '/private/comment', value: Buffer.from('server note') }], { maxEntries: 100, maxPerUser: 100 });
  const work = await src.createMailbox(alice.id, 'Work/Projects');
  await src.setSubscribed(alice.id, 'Work/Projects', true);
  await src.setSubscribed(alice.id, 'Gone/But/Subscribed', true);
  await src.setAnnotations(alice.id, work.id, [{ entry: '/shared/comment', value: Buffer.from([0, 1, 2, 255]) }], { maxEntries: 100, maxPerUser: 100 });
  const inbox = (await src.getMailbox(alice.id, 'INBOX'))!;
  for (let i = 0; i < o.messages; i += o.batch) {
    await src.appendMessages(
      inbox.id,
      Array.from({ length: Math.min(o.batch, o.messages - i) }, (_, k) => ({ data: Buffer.from(message(i + k, { subject: `m${i + k}` })), flags: (i + k) % 3 === 0 ? ['\\Seen', '$Label1'] : [], internalDate: 1_600_000_000_000 + (i + k) * 60_000, internalTz: ((i + k) % 5) * 60 - 120 })),
    );
  }
  await src.copyMessages(inbox.id, [5, 6, 7], work.id);
  await src.storeFlags(inbox.id, [10, 20, 30], 'add', ['\\Flagged', 'Custom']);
  await src.storeFlags(inbox.id, [11, 12, 13], 'add', ['\\Deleted']);
  const sent = (await src.getMailbox(bob.id, 'Sent'))!;
  await src.appendMessages(sent.id, [{ data: Buffer.from(o.sentBody), flags: ['\\Seen'] }]);
  await src.close();
  return { alice, bob, inboxId: inbox.id, workId: work.id };
}

/**
 * A QRESYNC client of the seeded source (served in-process): its cached state just before the EXPUNGE
 * of UIDs 11-13 (`before`) and just after it (`after`), and the answer to a re-SELECT with the older one.
 */
export async function qresyncOfSource(srcDir: string, messages: number) {
  const srv = await serve(await openSqliteStore({ dataDir: srcDir, synchronous: 'NORMAL' }), srcDir);
  const c = await RawClient.connect(srv.port, { login: ['alice', 'secret-a'] });
  await c.command('ENABLE QRESYNC');
  let sel = await c.command('SELECT INBOX');
  const uidv = Number(/UIDVALIDITY (\d+)/.exec(sel.untagged.join('\n'))![1]);
  const before = Number(/HIGHESTMODSEQ (\d+)/.exec(sel.untagged.join('\n'))![1]);
  const expunge = (await c.command('EXPUNGE')).untagged.join(' ');
  sel = await c.command('SELECT INBOX');
  const after = Number(/HIGHESTMODSEQ (\d+)/.exec(sel.untagged.join('\n'))![1]);
  const oldAnswer = (await c.command(`SELECT INBOX (QRESYNC (${uidv} ${before} 1:${messages}))`)).untagged.filter((l) => /VANISHED|FETCH/.test(l));
  await c.close();
  await srv.server.close();
  return { uidv, before, after, expunge, oldAnswer };
}

/** An interrupted earlier run: the first `count` INBOX messages of alice copied into `dst` (closed after), as `quire migrate` copies them. */
export async function copiedBefore(srcDir: string, inboxId: number, dst: MailStore, passwordHash: string, count: number): Promise<void> {
  const s = await openSqliteStore({ dataDir: srcDir, synchronous: 'NORMAL' });
  const du = await dst.createUser('alice', passwordHash);
  const dbox = await dst.createMailbox(du.id, 'INBOX');
  const st = await s.exportMailbox(inboxId);
  const messages = [];
  for (const m of (await s.listMessages(inboxId)).sort((a, b) => a.uid - b.uid).slice(0, count)) {
    const b = (await s.openMessage(inboxId, m.uid))!;
    messages.push({ uid: m.uid, modseq: m.modseq, flags: m.flags, internalDate: m.internalDate, internalTz: m.internalTz ?? 0, saveDate: m.saveDate ?? null, emailId: m.emailId, data: await b.read(0, b.size) });
  }
  await dst.bulkImport(dbox.id, { messages, state: { uidValidity: st.uidValidity, objectId: st.objectId } });
  await s.close();
  await dst.close();
}
