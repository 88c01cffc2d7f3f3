// `quire migrate` to and from PostgreSQL (issue 13 item 6): a real `quire`
// process copies a SQLite store (filled through a real IMAP server and the
// store API) into a fresh PostgreSQL schema (`--to postgres://...?schema=NAME`,
// opened through src/cli/store-open.ts), continuing an interrupted earlier
// copy; everything observable is equal (users, credentials, quotas,
// addresses, subscriptions, annotations, mailbox state, every message's UID,
// MODSEQ, flags, dates, EMAILID and bytes) and the per-mailbox digests agree;
// a QRESYNC client re-selecting against `quire serve --store postgres://...`
// of the copy with its cached UIDVALIDITY/HIGHESTMODSEQ gets no resync, and
// with an older state the same VANISHED (EARLIER) as from the original; a
// re-run copies nothing and verifies; and the copy comes back to SQLite
// (`--from postgres://...`, and as the configured `--store`) equal again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { openPostgresStore } from '../../src/store/postgres/index.js';
import { provisionUser } from '../../src/cli/users.js';
import { addAppPassword } from '../../src/auth/userdb/builtin.js';
import { RawClient, message } from '../helpers/imap.js';
import { PG_URL, dropSchema, freshSchema, pgSkip, pgStoreUrl } from '../helpers/pg.js';
import { cleanEnv } from '../obs/helpers.js';
import { migrate, observe, serve } from './migrate-helpers.js';

const skip = await pgSkip();
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = path.join(ROOT, 'src/cli/main.ts');
/** Messages in the source INBOX (a few batches of the copy at --batch 100). */
const N = 300;

type Report = { ok: boolean; users: number; mailboxes: { user: string; mailbox: string; messages: number; copied: number; emailIdsKept: number; digest: string; verified: boolean }[] };

/** `quire serve --store URL` on an OS-chosen IMAP port; resolves once it says it is running. */
async function startNode(storeUrl: string, data: string): Promise<{ child: ChildProcess; port: number; exited: Promise<number | null> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'serve', '--store', storeUrl, '--data', data, '--imap-port', '0', '--imaps-port', 'off', '--lmtp-port', 'off', '--pop3-port', 'off', '--pop3s-port', 'off', '--admin-port', 'off', '--log-level', 'warn'], {
    cwd: ROOT,
    env: cleanEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`node did not start:\n${out}`)), 60_000);
    const check = () => {
      const m = /IMAP \(STARTTLS\): +127\.0\.0\.1:(\d+)/.exec(out);
      if (m && /Quire is running/.test(out)) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    child.stdout!.on('data', check);
    void exited.then((code) => reject(new Error(`node exited with ${code}:\n${out}`)));
  });
  return { child, port, exited };
}

test('migrate SQLite -> PostgreSQL -> SQLite: exact copies, verified, QRESYNC clients do not resync, resumable', { skip, timeout: 300_000 }, async () => {
  const schema = freshSchema('migrate');
  const pgUrl = pgStoreUrl(schema);
  const dirs: string[] = [];
  const tmp = (p: string) => {
    const d = mkdtempSync(path.join(tmpdir(), p));
    dirs.push(d);
    return d;
  };
  try {
    const srcDir = tmp('quire-migpg-src-');
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
    for (let i = 0; i < N; i += 150) {
      await src.appendMessages(
        inbox.id,
        Array.from({ length: 150 }, (_, k) => ({ data: Buffer.from(message(i + k, { subject: `m${i + k}` })), flags: (i + k) % 3 === 0 ? ['\\Seen', '$Label1'] : [], internalDate: 1_600_000_000_000 + (i + k) * 60_000, internalTz: ((i + k) % 5) * 60 - 120 })),
      );
    }
    await src.copyMessages(inbox.id, [5, 6, 7], work.id);
    await src.storeFlags(inbox.id, [10, 20, 30], 'add', ['\\Flagged', 'Custom']);
    await src.storeFlags(inbox.id, [11, 12, 13], 'add', ['\\Deleted']);
    const sent = (await src.getMailbox(bob.id, 'Sent'))!;
    await src.appendMessages(sent.id, [{ data: Buffer.from('Subject: bare LF\n\nline\n'), flags: ['\\Seen'] }]);
    await src.close();

    // A QRESYNC client of the source: its cached state just before the expunge, and just after it.
    const srv = await serve(await openSqliteStore({ dataDir: srcDir, synchronous: 'NORMAL' }), srcDir);
    let c = await RawClient.connect(srv.port, { login: ['alice', 'secret-a'] });
    await c.command('ENABLE QRESYNC');
    let sel = await c.command('SELECT INBOX');
    const uidv = Number(/UIDVALIDITY (\d+)/.exec(sel.untagged.join('\n'))![1]);
    const before = Number(/HIGHESTMODSEQ (\d+)/.exec(sel.untagged.join('\n'))![1]);
    assert.match((await c.command('EXPUNGE')).untagged.join(' '), /VANISHED 11:13/);
    sel = await c.command('SELECT INBOX');
    const after = Number(/HIGHESTMODSEQ (\d+)/.exec(sel.untagged.join('\n'))![1]);
    const oldAnswer = (await c.command(`SELECT INBOX (QRESYNC (${uidv} ${before} 1:${N}))`)).untagged.filter((l) => /VANISHED|FETCH/.test(l));
    assert.ok(oldAnswer.includes('* VANISHED (EARLIER) 11:13'), oldAnswer.join('\n'));
    await c.close();
    await srv.server.close();
    const srcAgain = await openSqliteStore({ dataDir: srcDir, synchronous: 'NORMAL' });
    const want = await observe(srcAgain);
    await srcAgain.close();

    // An interrupted earlier run left the first 100 INBOX messages in the target schema.
    {
      const s = await openSqliteStore({ dataDir: srcDir, synchronous: 'NORMAL' });
      const d = await openPostgresStore({ url: PG_URL, schema, poolSize: 2 });
      const du = await d.createUser('alice', alice.passwordHash);
      const dbox = await d.createMailbox(du.id, 'INBOX');
      const st = await s.exportMailbox(inbox.id);
      const messages = [];
      for (const m of (await s.listMessages(inbox.id)).sort((a, b) => a.uid - b.uid).slice(0, 100)) {
        const b = (await s.openMessage(inbox.id, m.uid))!;
        messages.push({ uid: m.uid, modseq: m.modseq, flags: m.flags, internalDate: m.internalDate, internalTz: m.internalTz ?? 0, saveDate: m.saveDate ?? null, emailId: m.emailId, data: await b.read(0, b.size) });
      }
      await d.bulkImport(dbox.id, { messages, state: { uidValidity: st.uidValidity, objectId: st.objectId } });
      await s.close();
      await d.close();
    }

    const run = await migrate(['--data', srcDir, '--to', pgUrl, '--batch', '100', '--json']);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const report = JSON.parse(run.stdout) as Report;
    assert.ok(report.ok);
    assert.equal(report.users, 2);
    const rin = report.mailboxes.find((m) => m.user === 'alice' && m.mailbox === 'INBOX')!;
    assert.deepEqual([rin.messages, rin.copied, rin.emailIdsKept, rin.verified], [N - 3, N - 3 - 100, N - 3, true], 'continued after the 100 copied before; EMAILIDs kept');
    const dst = await openPostgresStore({ url: PG_URL, schema, poolSize: 2 });
    try {
      assert.deepEqual(await observe(dst), want);
      // The copies share one body in the target as in the source.
      const a = (await dst.getUser('alice'))!;
      const w = (await dst.getMailbox(a.id, 'Work/Projects'))!;
      const originals = await dst.getMessages((await dst.getMailbox(a.id, 'INBOX'))!.id, [5, 6, 7]);
      assert.deepEqual((await dst.listMessages(w.id)).map((m) => m.emailId), originals.map((m) => m.emailId));
    } finally {
      await dst.close();
    }

    // `quire serve --store postgres://...` of the copy: the cached state resyncs nothing; the older one gets the same answer.
    const node = await startNode(pgUrl, tmp('quire-migpg-node-'));
    try {
      c = await RawClient.connect(node.port, { login: ['alice', 'secret-a'] });
      await c.command('ENABLE QRESYNC');
      const same = await c.command(`SELECT INBOX (QRESYNC (${uidv} ${after} 1:${N}))`);
      assert.deepEqual(same.untagged.filter((l) => /VANISHED|FETCH/.test(l)), [], same.raw);
      assert.ok(same.untagged.some((l) => l.includes(`[UIDVALIDITY ${uidv}]`)), same.raw);
      assert.ok(same.untagged.some((l) => l.includes(`[HIGHESTMODSEQ ${after}]`)), same.raw);
      const old = await c.command(`SELECT INBOX (QRESYNC (${uidv} ${before} 1:${N}))`);
      assert.deepEqual(old.untagged.filter((l) => /VANISHED|FETCH/.test(l)), oldAnswer);
      await c.command('LOGOUT').catch(() => undefined);
      await c.close();
    } finally {
      node.child.kill('SIGTERM');
      await node.exited;
    }

    // Running again copies nothing and verifies (the digests are the source's, as before).
    const again = await migrate(['--data', srcDir, '--to', pgUrl, '--json']);
    assert.equal(again.code, 0, again.stdout + again.stderr);
    const r2 = JSON.parse(again.stdout) as Report;
    assert.ok(r2.ok && r2.mailboxes.every((m) => m.copied === 0));
    assert.deepEqual(r2.mailboxes.map((m) => m.digest), report.mailboxes.map((m) => m.digest));

    // And back: PostgreSQL -> a fresh SQLite store, equal to the original, with the same digests.
    const back = tmp('quire-migpg-back-');
    const rb = await migrate(['--data', back, '--from', pgUrl, '--to', `sqlite://${back}/store`, '--json']);
    assert.equal(rb.code, 0, rb.stdout + rb.stderr);
    const r3 = JSON.parse(rb.stdout) as Report;
    assert.ok(r3.ok);
    assert.deepEqual(r3.mailboxes.map((m) => [m.user, m.mailbox, m.digest]), report.mailboxes.map((m) => [m.user, m.mailbox, m.digest]));
    const home = await openSqliteStore({ dataDir: path.join(back, 'store'), synchronous: 'NORMAL' });
    try {
      assert.deepEqual(await observe(home), want);
    } finally {
      await home.close();
    }
    // The configured store as the source (`--store postgres://...`; no data directory to lock): the same copy.
    const back2 = tmp('quire-migpg-back2-');
    const r4 = await migrate(['--store', pgUrl, '--data', path.join(back2, 'none'), '--to', `sqlite://${back2}/store`, '--json']);
    assert.equal(r4.code, 0, r4.stdout + r4.stderr);
    assert.deepEqual((JSON.parse(r4.stdout) as Report).mailboxes.map((m) => [m.digest, m.verified]), report.mailboxes.map((m) => [m.digest, true]));
    // A PostgreSQL store is not its own target (same URL and schema, however it is named).
    assert.match((await migrate(['--data', back, '--from', pgUrl, '--to', pgUrl])).stderr, /source store itself/);
    assert.match((await migrate(['--store', pgUrl, '--data', back, '--to', `${pgUrl}&sslmode=disable`])).stderr, /source store itself/);
  } finally {
    await dropSchema(schema).catch(() => undefined);
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
});
