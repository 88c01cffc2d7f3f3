// quire doctor: a temp store corrupted on purpose (SQL updates behind the
// store's back, a deleted body file, a stray file) is diagnosed, repaired, and
// then reported clean; the repaired store serves the messages again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, unlink, writeFile, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { SqliteMailStore } from '../../src/store/sqlite/index.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function msg(i: number): Buffer {
  return Buffer.from(`From: Person ${i} <p${i}@example.com>\r\nSubject: Hello number ${i}\r\nDate: Mon, 4 Nov 2024 10:00:00 +0000\r\n\r\nbody ${i}\r\n`);
}

async function setup(): Promise<{ dir: string; userId: number; inbox: number; work: number }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'quire-doctor-'));
  const s = await SqliteMailStore.open({ dataDir: dir, synchronous: 'NORMAL' });
  const u = await s.createUser('alice', 'x');
  const inbox = await s.createMailbox(u.id, 'INBOX');
  const work = await s.createMailbox(u.id, 'Work');
  await s.appendMessages(inbox.id, Array.from({ length: 10 }, (_, i) => ({ data: msg(i), flags: i % 2 ? ['\\Seen'] : [] })));
  await s.copyMessages(inbox.id, [1, 2, 3], work.id); // shared bodies: refcount 2
  await s.storeFlags(work.id, [1], 'add', ['\\Deleted']);
  const clean = await s.doctor();
  assert.deepEqual(clean.findings, [], 'a fresh store is clean');
  assert.equal(clean.checked.messages, 13);
  await s.close();
  return { dir, userId: u.id, inbox: inbox.id, work: work.id };
}

function blobPath(dir: string, id: number): string {
  return path.join(dir, 'blobs', (Math.floor(id / 65536)).toString(16).padStart(2, '0'), (Math.floor(id / 256) % 256).toString(16).padStart(2, '0'), String(id));
}

test('doctor finds and repairs counters, refcounts, UIDNEXT, modseq, quota, index, missing rows and stray files', async () => {
  const { dir, inbox, work } = await setup();
  try {
    const db = new Database(path.join(dir, 'quire.sqlite3'));
    db.pragma('foreign_keys = OFF'); // the damage a hand edit or a partial restore can do
    const blobOf = (mb: number, uid: number) => db.prepare('SELECT blob_id FROM messages WHERE mailbox_id = ? AND uid = ?').pluck().get(mb, uid) as number;
    db.prepare('UPDATE mailboxes SET msg_count = 99, unseen_count = 0, deleted_count = 5, total_size = 1 WHERE id = ?').run(inbox);
    db.prepare('UPDATE mailboxes SET uid_next = 2, highest_modseq = 1 WHERE id = ?').run(work);
    db.prepare('UPDATE blobs SET refcount = 7 WHERE id = ?').run(blobOf(inbox, 1));
    db.prepare('UPDATE quotas SET storage_used = 0, messages_used = 1000').run();
    // Bodies "stored before schema v2/v5".
    db.prepare('UPDATE blobs SET structure = NULL, indexed = 0, idx_subject = NULL WHERE id IN (?, ?)').run(blobOf(inbox, 4), blobOf(inbox, 5));
    // A blob row lost while its file is still there.
    const lostRow = blobOf(inbox, 6);
    db.exec('DROP TRIGGER blobs_unreferenced'); // delete the row without the trigger queueing the file for removal
    db.prepare('DELETE FROM blobs WHERE id = ?').run(lostRow);
    db.close();
    // A file without a row, and a body file deleted.
    const stray = blobPath(dir, 987_654);
    await mkdir(path.dirname(stray), { recursive: true });
    await writeFile(stray, 'junk');
    const db2 = new Database(path.join(dir, 'quire.sqlite3'));
    const lostFile = db2.prepare('SELECT blob_id FROM messages WHERE mailbox_id = ? AND uid = 8').pluck().get(inbox) as number;
    // Put back the trigger the schema defines, as it was.
    db2.exec(`CREATE TRIGGER blobs_unreferenced AFTER UPDATE OF refcount ON blobs WHEN NEW.refcount <= 0 BEGIN
      DELETE FROM blobs WHERE id = NEW.id; INSERT OR IGNORE INTO blob_trash (id) VALUES (NEW.id); END;`);
    db2.close();
    await unlink(blobPath(dir, lostFile));

    const s = await SqliteMailStore.open({ dataDir: dir, synchronous: 'NORMAL' });
    try {
      const found = await s.doctor();
      const checks = new Set(found.findings.map((f) => f.check));
      for (const c of ['counters', 'uidnext', 'modseq', 'refcount', 'quota', 'index', 'blob-row', 'orphan-file', 'blob-file'] as const) assert.ok(checks.has(c), `finds ${c}: ${JSON.stringify(found.findings)}`);
      assert.ok(found.findings.every((f) => !f.repaired), 'nothing repaired without --repair');
      assert.ok(existsSync(stray), 'a check alone changes nothing');
      assert.equal((await s.mailboxStatus(inbox)).messages, 99);

      const fixed = await s.doctor({ repair: true });
      for (const f of fixed.findings) assert.equal(f.repaired, f.check !== 'blob-file', `${f.check} ${f.subject}: ${f.detail}`);
      const after = await s.doctor();
      assert.deepEqual(after.findings.map((f) => f.check), ['blob-file'], 'only the lost body file remains');
      assert.match(after.findings[0]!.detail, /file missing.*alice\/INBOX UID 8/);

      const st = await s.mailboxStatus(inbox);
      assert.deepEqual([st.messages, st.unseen, st.deleted, st.size], [10, 5, 0, Array.from({ length: 10 }, (_, i) => msg(i).length).reduce((a, b) => a + b)]);
      const w = (await s.getMailboxById(work))!;
      assert.equal(w.uidNext, 4);
      assert.ok(w.highestModseq >= 3);
      assert.ok(!existsSync(stray), 'stray file removed');
      const q = await s.getQuota((await s.getUser('alice'))!.id);
      assert.equal(q.messagesUsed, 13);
      const idx = await s.headerIndex(inbox);
      assert.equal(idx.get(4)?.subject, 'hello number 3');
      assert.equal(idx.get(6)?.subject, 'hello number 5', 'rebuilt blob row was re-indexed');
      const body = (await s.openMessage(inbox, 6))!;
      assert.ok(body.structure, 'structure back');
      assert.equal((await body.read(0, body.size)).toString(), msg(5).toString());
      // The over-counted refcount was set back: expunging both copies frees the body.
      await s.storeFlags(inbox, [1], 'add', ['\\Deleted']);
      await s.storeFlags(work, [1], 'add', ['\\Deleted']);
      await s.expunge(inbox);
      await s.expunge(work);
      assert.deepEqual((await s.doctor()).findings.map((f) => f.check), ['blob-file']);
    } finally {
      await s.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('quire doctor on the command line: exit 1 and "would repair", then --repair, then clean', async () => {
  const { dir, inbox } = await setup();
  try {
    const db = new Database(path.join(dir, 'quire.sqlite3'));
    db.prepare('UPDATE mailboxes SET unseen_count = 42 WHERE id = ?').run(inbox);
    db.close();
    const run = (...a: string[]) => spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), 'doctor', '--data', dir, ...a], { cwd: ROOT, encoding: 'utf8' });
    let r = run();
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stdout, /^counters\talice\/INBOX\tunseen 42 \(actual 5\)\t\[would repair\]$/m);
    r = run('--repair');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /\[repaired\]/);
    r = run();
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /no problems/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
