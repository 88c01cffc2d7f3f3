// `quire migrate --data DIR --to URL` (issue 13 item 6), SQLite -> SQLite
// (PostgreSQL: migrate-postgres.test.ts): a real `quire` process copies a store
// filled through a real IMAP server and the store API; everything observable
// is equal afterwards (users, credentials, quotas, addresses, subscriptions,
// annotations, mailbox state, every message's UID, MODSEQ, flags, dates,
// EMAILID and bytes); a QRESYNC client re-selecting against a server on the
// copy with its cached UIDVALIDITY/HIGHESTMODSEQ gets no resync, and one
// with an older state gets the same VANISHED (EARLIER) as from the original;
// a run cut short continues where it stopped; a diverging target is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import Database from 'better-sqlite3';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DB_FILE, openSqliteStore } from '../../src/store/sqlite/index.js';
import { provisionUser } from '../../src/cli/users.js';
import { RawClient, message } from '../helpers/imap.js';
import { copiedBefore, migrate, observe, qresyncOfSource, seedSource, serve } from './migrate-helpers.js';
import { cleanEnv } from '../obs/helpers.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

test('migrate SQLite -> SQLite: an exact copy, QRESYNC clients do not resync, resumable, verified', { timeout: 180_000 }, async () => {
  const srcDir = mkdtempSync(path.join(tmpdir(), 'quire-mig-src-'));
  const dstDir = mkdtempSync(path.join(tmpdir(), 'quire-mig-dst-'));
  // 1,200 messages in INBOX (200 at a time), zones and keywords, then copies, flag changes and expunges.
  const { alice, inboxId } = await seedSource(srcDir, { messages: 1200, batch: 200, sentBody: message(1) });

  // A QRESYNC client of the source: its cached state just before the expunge, and just after it.
  const { uidv, before, after, expunge, oldAnswer } = await qresyncOfSource(srcDir, 1200);
  assert.match(expunge, /VANISHED 11:13/);
  const srcAgain = await openSqliteStore({ dataDir: srcDir, synchronous: 'NORMAL' });
  const want = await observe(srcAgain);
  await srcAgain.close();

  // An interrupted earlier run left the first 300 INBOX messages in the target.
  await copiedBefore(srcDir, inboxId, await openSqliteStore({ dataDir: dstDir, synchronous: 'NORMAL' }), alice.passwordHash, 300);

  const run = await migrate(['--data', srcDir, '--to', `sqlite://${dstDir}`, '--json']);
  assert.equal(run.code, 0, run.stdout + run.stderr);
  const report = JSON.parse(run.stdout) as { ok: boolean; users: number; mailboxes: { user: string; mailbox: string; messages: number; copied: number; emailIdsKept: number; verified: boolean }[] };
  assert.ok(report.ok);
  assert.equal(report.users, 2);
  const rin = report.mailboxes.find((m) => m.user === 'alice' && m.mailbox === 'INBOX')!;
  assert.deepEqual([rin.messages, rin.copied, rin.emailIdsKept, rin.verified], [1197, 897, 1197, true], 'continued after the 300 copied before');

  const dst = await openSqliteStore({ dataDir: dstDir, synchronous: 'NORMAL' });
  assert.deepEqual(await observe(dst), want);
  // The copies share one body in the target as in the source.
  const w = (await dst.getMailbox((await dst.getUser('alice'))!.id, 'Work/Projects'))!;
  const copies = await dst.listMessages(w.id);
  const originals = await dst.getMessages((await dst.getMailbox((await dst.getUser('alice'))!.id, 'INBOX'))!.id, [5, 6, 7]);
  assert.deepEqual(copies.map((m) => m.emailId), originals.map((m) => m.emailId));

  // Against a server on the copy: the cached state resyncs nothing; the older one gets the same answer as before.
  const srv = await serve(dst, dstDir);
  const c = await RawClient.connect(srv.port, { login: ['alice', 'secret-a'] });
  await c.command('ENABLE QRESYNC');
  const same = await c.command(`SELECT INBOX (QRESYNC (${uidv} ${after} 1:1200))`);
  assert.deepEqual(same.untagged.filter((l) => /VANISHED|FETCH/.test(l)), [], same.raw);
  assert.match(same.untagged.join('\n'), new RegExp(`UIDVALIDITY ${uidv}\\b[^]*HIGHESTMODSEQ ${after}\\b|HIGHESTMODSEQ ${after}\\b[^]*UIDVALIDITY ${uidv}\\b`));
  const old = await c.command(`SELECT INBOX (QRESYNC (${uidv} ${before} 1:1200))`);
  assert.deepEqual(old.untagged.filter((l) => /VANISHED|FETCH/.test(l)), oldAnswer);
  assert.ok(oldAnswer.includes('* VANISHED (EARLIER) 11:13'), oldAnswer.join('\n'));
  // New changes continue above the copied MODSEQs and UIDs.
  const ap = await c.command('APPEND INBOX {5}\r\nhello');
  assert.match(ap.tagged, /APPENDUID \d+ 1201\]/);
  const st = await c.command('STATUS INBOX (HIGHESTMODSEQ)');
  assert.ok(Number(/HIGHESTMODSEQ (\d+)/.exec(st.untagged[0]!)![1]) > after);
  await c.close();
  await srv.server.close();

  // Running again changes nothing and verifies; a target that diverged is refused, not overwritten.
  let again = await migrate(['--data', srcDir, '--to', dstDir]);
  assert.equal(again.code, 1, 'the copy now differs (the APPEND above) and says so');
  assert.match(again.stdout, /FAIL alice\tINBOX/);
  const fresh = mkdtempSync(path.join(tmpdir(), 'quire-mig-dst2-'));
  again = await migrate(['--data', srcDir, '--to', fresh]);
  assert.equal(again.code, 0, again.stdout + again.stderr);
  again = await migrate(['--data', srcDir, '--to', fresh, '--json']);
  assert.equal(again.code, 0);
  assert.ok((JSON.parse(again.stdout) as { mailboxes: { copied: number }[] }).mailboxes.every((m) => m.copied === 0));
  // The way back is the same code: --from the copy into another directory.
  const back = mkdtempSync(path.join(tmpdir(), 'quire-mig-back-'));
  const rb = await migrate(['--data', back, '--from', `sqlite://${fresh}`, '--to', back + '/store']);
  assert.equal(rb.code, 0, rb.stdout + rb.stderr);
  await dst.close();
  // The source is not its own target.
  assert.match((await migrate(['--data', srcDir, '--to', srcDir])).stderr, /source store itself/);
});

test('migrate killed with SIGKILL mid-copy continues where it stopped when run again', { timeout: 180_000 }, async () => {
  const srcDir = mkdtempSync(path.join(tmpdir(), 'quire-mig-kill-src-'));
  const dstDir = mkdtempSync(path.join(tmpdir(), 'quire-mig-kill-dst-'));
  const src = await openSqliteStore({ dataDir: srcDir, synchronous: 'NORMAL' });
  const u = await provisionUser(src, 'carol', 'secret-c');
  const inbox = (await src.getMailbox(u.id, 'INBOX'))!;
  await src.appendMessages(inbox.id, Array.from({ length: 400 }, (_, i) => ({ data: Buffer.from(message(i)), flags: i % 2 ? ['\\Seen'] : [] })));
  await src.close();
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), 'migrate', '--data', srcDir, '--to', dstDir, '--batch', '1'], { cwd: ROOT, env: cleanEnv(), stdio: 'ignore' });
  const exited = new Promise((r) => child.once('exit', r));
  const count = () => {
    try {
      const db = new Database(path.join(dstDir, DB_FILE), { readonly: true, fileMustExist: true });
      try {
        return db.prepare('SELECT count(*) FROM messages').pluck().get() as number;
      } finally {
        db.close();
      }
    } catch {
      return 0;
    }
  };
  const deadline = Date.now() + 120_000;
  while (count() < 40 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  child.kill('SIGKILL');
  await exited;
  const k = count();
  assert.ok(k >= 40 && k < 400, `killed after ${k} messages`);
  const again = await migrate(['--data', srcDir, '--to', dstDir, '--json']);
  assert.equal(again.code, 0, again.stdout + again.stderr);
  const r = JSON.parse(again.stdout) as { ok: boolean; mailboxes: { mailbox: string; messages: number; copied: number }[] };
  const box = r.mailboxes.find((m) => m.mailbox === 'INBOX')!;
  assert.deepEqual([r.ok, box.messages, box.copied], [true, 400, 400 - k]);
});
