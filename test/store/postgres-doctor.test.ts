// `quire doctor [--repair] --store postgres://...` (src/store/postgres/doctor.ts)
// as a real child process: a healthy store passes; counters, UIDNEXT,
// HIGHESTMODSEQ, quota usage and an unreferenced body row broken by hand
// are found, and repaired with --repair; a body whose bytes are gone (chunk
// rows, or the file of a filesystem body directory) is found and stays
// (not repairable); an old orphan file is removed by --repair only. And
// `quire backup` / `restore` on PostgreSQL say they do not apply and what
// to use instead (pg_dump / pg_restore).
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';
import { openPostgresStore } from '../../src/store/postgres/index.js';
import { runProcess } from '../helpers/process.js';
import { PG_URL, dropSchema, freshSchema, pgSkip, pgStoreUrl } from '../helpers/pg.js';
import { msg } from './contract.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = path.join(ROOT, 'src/cli/main.ts');
const skip = await pgSkip();
const schemas: string[] = [];
const dirs: string[] = [];
after(async () => {
  for (const s of schemas) await dropSchema(s).catch(() => undefined);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function env(): Record<string, string> {
  const e: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('QUIRE_') && v !== undefined) e[k] = v;
  return e;
}

const quire = (...args: string[]) => runProcess(process.execPath, ['--import', 'tsx', MAIN, ...args], { cwd: ROOT, env: env() });

/** A store with one user, INBOX with three messages; returns its URL and ids. */
async function seeded(blobs?: string): Promise<{ url: string; schema: string; boxId: number; userId: number }> {
  const schema = freshSchema('pgdoctor');
  schemas.push(schema);
  const store = await openPostgresStore({ url: PG_URL, schema, blobsPath: blobs });
  const u = await store.createUser('alice', 'h');
  const box = await store.createMailbox(u.id, 'INBOX');
  await store.appendMessages(box.id, [1, 2, 3].map((i) => ({ data: msg(i, `body ${i}`), flags: i === 1 ? ['\\Seen'] : [] })));
  await store.close();
  return { url: pgStoreUrl(schema) + (blobs ? `&blobs=${encodeURIComponent(blobs)}` : ''), schema, boxId: box.id, userId: u.id };
}

async function sql(schema: string, text: string): Promise<void> {
  const store = await openPostgresStore({ url: PG_URL, schema });
  try {
    await store.pool.query(text);
  } finally {
    await store.close();
  }
}

describe('quire doctor and backup on PostgreSQL', { skip }, () => {
  test('doctor: healthy passes; broken counters, UIDNEXT, MODSEQ, quota, unreferenced body found and repaired; a lost body found, not repaired', async () => {
    const s = await seeded();
    const ok = await quire('doctor', '--store', s.url);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /checked 1 mailbox\(es\), 3 message\(s\), 3 bodies, 0 file\(s\): no problems/);
    await sql(s.schema, `UPDATE mailboxes SET msg_count = 99, unseen_count = 0, uid_next = 2, highest_modseq = 1 WHERE id = ${s.boxId};
      UPDATE users SET storage_used = 0 WHERE id = ${s.userId};
      INSERT INTO blobs (size) VALUES (10);
      DELETE FROM blob_chunks WHERE blob_id = (SELECT blob_id FROM messages WHERE mailbox_id = ${s.boxId} AND uid = 3)`);
    const found = await quire('doctor', '--store', s.url);
    assert.equal(found.code, 1, found.stdout + found.stderr);
    for (const re of [/^counters\talice\/INBOX\tmessages 99 \(actual 3\), unseen 0 \(actual 2\)\t\[would repair\]$/m, /^uidnext\talice\/INBOX\tUIDNEXT 2 is not above the highest UID 3\t\[would repair\]$/m,
      /^modseq\talice\/INBOX\t.*\[would repair\]$/m, /^quota\talice\t.*\[would repair\]$/m, /^refcount\tblob \d+\treferenced by no message.*\[would repair\]$/m, /^blob-row\tblob \d+\tbody holds 0 bytes.*\[cannot repair\]$/m]) {
      assert.match(found.stdout, re);
    }
    const fixed = await quire('doctor', '--repair', '--store', s.url);
    assert.equal(fixed.code, 1, 'the lost body remains a problem');
    assert.match(fixed.stdout, /^counters\t.*\[repaired\]$/m);
    const again = await quire('doctor', '--store', s.url);
    assert.deepEqual(again.stdout.split('\n').filter((l) => l.includes('\t')).map((l) => l.split('\t')[0]), ['blob-row'], again.stdout);
    const store = await openPostgresStore({ url: PG_URL, schema: s.schema });
    try {
      const st = await store.mailboxStatus(s.boxId);
      assert.deepEqual([st.messages, st.unseen, st.uidNext], [3, 2, 4], 'counters and UIDNEXT as the rows say');
      assert.ok(st.highestModseq >= 2, 'HIGHESTMODSEQ back at the MODSEQ of the messages');
    } finally {
      await store.close();
    }
  });

  test('doctor with bodies in files: a missing file is found; an old orphan file is removed by --repair only', async () => {
    const d = mkdtempSync(path.join(tmpdir(), 'quire-pgdoctor-'));
    dirs.push(d);
    const blobs = path.join(d, 'bodies');
    const s = await seeded(blobs);
    const ok = await quire('doctor', '--store', s.url);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /3 bodies, 3 file\(s\): no problems/);
    const shard = readdirSync(blobs).find((n) => /^[0-9a-f]{6}$/.test(n))!;
    const files = readdirSync(path.join(blobs, shard)).filter((n) => /^\d+$/.test(n)).sort((a, b) => Number(a) - Number(b));
    unlinkSync(path.join(blobs, shard, files[0]!));
    const orphan = path.join(blobs, shard, '999999');
    writeFileSync(orphan, 'left by a transaction that never committed');
    const old = new Date(Date.now() - 2 * 3600_000);
    utimesSync(orphan, old, old);
    const found = await quire('doctor', '--store', s.url);
    assert.equal(found.code, 1);
    assert.match(found.stdout, new RegExp(`^blob-row\\tblob ${files[0]}\\tbody file missing\\t\\[cannot repair\\]$`, 'm'));
    assert.match(found.stdout, /^orphan-file\t1 file\(s\) under .*\t\[would repair\]$/m);
    assert.ok(readdirSync(path.join(blobs, shard)).includes('999999'), 'without --repair nothing is removed');
    const fixed = await quire('doctor', '--repair', '--store', s.url);
    assert.match(fixed.stdout, /^orphan-file\t.*\[repaired\]$/m);
    assert.ok(!readdirSync(path.join(blobs, shard)).includes('999999'));
  });

  test('backup and restore on PostgreSQL say they do not apply, and name pg_dump / pg_restore', async () => {
    const s = await seeded();
    const d = mkdtempSync(path.join(tmpdir(), 'quire-pgbackup-'));
    dirs.push(d);
    const b = await quire('backup', path.join(d, 'b'), '--store', s.url);
    assert.notEqual(b.code, 0);
    assert.match(b.stderr, /copies a SQLite data directory; this store is in PostgreSQL/);
    assert.match(b.stderr, new RegExp(`pg_dump --format=custom --schema=${s.schema}`));
    const r = await quire('restore', path.join(d, 'b'), '--store', s.url);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /pg_restore/);
  });
});
