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
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { openPostgresStore } from '../../src/store/postgres/index.js';
import { RawClient } from '../helpers/imap.js';
import { PG_URL, dropSchema, freshSchema, pgSkip, pgStoreUrl } from '../helpers/pg.js';
import { startPgNode } from '../cluster/pg-nodes.js';
import { copiedBefore, migrate, observe, qresyncOfSource, seedSource } from './migrate-helpers.js';

const skip = await pgSkip();
/** Messages in the source INBOX (a few batches of the copy at --batch 100). */
const N = 300;

type Report = { ok: boolean; users: number; mailboxes: { user: string; mailbox: string; messages: number; copied: number; emailIdsKept: number; digest: string; verified: boolean }[] };

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
    const { alice, inboxId } = await seedSource(srcDir, { messages: N, batch: 150, sentBody: 'Subject: bare LF\n\nline\n' });

    // A QRESYNC client of the source: its cached state just before the expunge, and just after it.
    const { uidv, before, after, expunge, oldAnswer } = await qresyncOfSource(srcDir, N);
    assert.match(expunge, /VANISHED 11:13/);
    assert.ok(oldAnswer.includes('* VANISHED (EARLIER) 11:13'), oldAnswer.join('\n'));
    const srcAgain = await openSqliteStore({ dataDir: srcDir, synchronous: 'NORMAL' });
    const want = await observe(srcAgain);
    await srcAgain.close();

    // An interrupted earlier run left the first 100 INBOX messages in the target schema.
    await copiedBefore(srcDir, inboxId, await openPostgresStore({ url: PG_URL, schema, poolSize: 2 }), alice.passwordHash, 100);

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
    const node = await startPgNode('quire-migrated', pgUrl, tmp('quire-migpg-node-'), ['--workers', '0']);
    try {
      const c = await RawClient.connect(node.imapPort, { login: ['alice', 'secret-a'] });
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
