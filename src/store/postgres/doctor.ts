// `quire doctor [--repair]` on the PostgreSQL store: the same report as the
// SQLite store's (src/store/sqlite/doctor.ts, DoctorReport), from checks that
// make sense here:
// - counters: a mailbox's msg_count / unseen_count / deleted_count /
//   total_size against its message rows (the triggers keep them; a manual
//   edit of the tables may not);
// - quota: a user's storage_used / messages_used against its messages;
// - uidnext: UIDNEXT above the highest UID; modseq: HIGHESTMODSEQ not below
//   any message's or tombstone's MODSEQ (RFC 9051 §2.3.1.1, RFC 7162 §3.1);
// - refcount: body rows (blobs) no message refers to;
// - blob-row: a message whose body bytes are missing or of the wrong size
//   (blob_chunks rows, or the file of a filesystem body directory): not
//   repairable here (restore the body from a backup);
// - orphan-file: files of a filesystem body directory that no row refers to
//   (older than the sweep's grace period).
// Repairs run per mailbox / user under the user's row lock, the lock every
// writer takes first, so they are safe while nodes serve.
import type pg from 'pg';
import type { DoctorFinding, DoctorReport } from '../sqlite/doctor.js';
import { FsBlobStore } from '../blob-fs.js';
import type { BlobStore } from './blobs.js';
import { BLOB_CHUNK_SIZE } from './blobs.js';
import { FLAG_DELETED, FLAG_SEEN } from './schema.js';

/** Bodies whose size is checked per query. */
const BODY_BATCH = 1_000;
/** Findings of one kind listed at most (the rest counted in the last one). */
const MAX_FINDINGS_PER_CHECK = 1_000;

interface Ctx {
  pool: pg.Pool;
  repair: boolean;
  findings: DoctorFinding[];
}

/** Runs `fn` in a transaction holding user `userId`'s row lock. */
async function underUserLock(pool: pg.Pool, userId: number, fn: (c: pg.PoolClient) => Promise<void>): Promise<void> {
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    await c.query('SELECT 1 FROM users WHERE id = $1 FOR UPDATE', [userId]);
    await fn(c);
    await c.query('COMMIT');
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    c.release();
  }
}

function add(ctx: Ctx, f: Omit<DoctorFinding, 'repaired'>, repaired: boolean): void {
  const same = ctx.findings.filter((x) => x.check === f.check).length;
  if (same < MAX_FINDINGS_PER_CHECK) ctx.findings.push({ ...f, repaired });
}

const MAILBOX_FACTS = `
  SELECT m.id, m.user_id, u.name AS uname, m.name, m.msg_count, m.unseen_count, m.deleted_count, m.total_size, m.uid_next, m.highest_modseq,
    coalesce(a.c, 0) AS c, coalesce(a.unseen, 0) AS unseen, coalesce(a.deleted, 0) AS deleted, coalesce(a.size, 0) AS size,
    coalesce(a.maxuid, 0) AS maxuid, greatest(coalesce(a.maxmod, 0), coalesce(e.maxmod, 0)) AS maxmod
  FROM mailboxes m JOIN users u ON u.id = m.user_id
  LEFT JOIN (SELECT mailbox_id, count(*) AS c, count(*) FILTER (WHERE sysflags & ${FLAG_SEEN} = 0) AS unseen,
      count(*) FILTER (WHERE sysflags & ${FLAG_DELETED} <> 0) AS deleted, sum(size) AS size, max(uid) AS maxuid, max(modseq) AS maxmod
    FROM messages GROUP BY mailbox_id) a ON a.mailbox_id = m.id
  LEFT JOIN (SELECT mailbox_id, max(modseq) AS maxmod FROM expunged GROUP BY mailbox_id) e ON e.mailbox_id = m.id`;

interface FactRow {
  id: number; user_id: number; uname: string; name: string;
  msg_count: number; unseen_count: number; deleted_count: number; total_size: number; uid_next: number; highest_modseq: number;
  c: number; unseen: number; deleted: number; size: number; maxuid: number; maxmod: number;
}

async function checkMailboxes(ctx: Ctx): Promise<number> {
  const rows = (await ctx.pool.query<FactRow>(MAILBOX_FACTS)).rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'string' && k !== 'uname' && k !== 'name' ? Number(v) : v])) as unknown as FactRow);
  for (const r of rows) {
    const subject = `${r.uname}/${r.name}`;
    const diffs: string[] = [];
    if (r.msg_count !== r.c) diffs.push(`messages ${r.msg_count} (actual ${r.c})`);
    if (r.unseen_count !== r.unseen) diffs.push(`unseen ${r.unseen_count} (actual ${r.unseen})`);
    if (r.deleted_count !== r.deleted) diffs.push(`deleted ${r.deleted_count} (actual ${r.deleted})`);
    if (r.total_size !== r.size) diffs.push(`size ${r.total_size} (actual ${r.size})`);
    const badUid = r.uid_next <= r.maxuid;
    const badMod = r.highest_modseq < r.maxmod;
    if (ctx.repair && (diffs.length || badUid || badMod)) {
      await underUserLock(ctx.pool, r.user_id, async (c) => {
        await c.query(
          `UPDATE mailboxes m SET msg_count = a.c, unseen_count = a.unseen, deleted_count = a.deleted, total_size = a.size,
             uid_next = greatest(m.uid_next, a.maxuid + 1), highest_modseq = greatest(m.highest_modseq, a.maxmod, coalesce((SELECT max(modseq) FROM expunged WHERE mailbox_id = m.id), 0))
           FROM (SELECT count(*) AS c, count(*) FILTER (WHERE sysflags & ${FLAG_SEEN} = 0) AS unseen, count(*) FILTER (WHERE sysflags & ${FLAG_DELETED} <> 0) AS deleted,
                   coalesce(sum(size), 0) AS size, coalesce(max(uid), 0) AS maxuid, coalesce(max(modseq), 0) AS maxmod FROM messages WHERE mailbox_id = $1) a
           WHERE m.id = $1`,
          [r.id],
        );
      });
    }
    if (diffs.length) add(ctx, { check: 'counters', subject, detail: diffs.join(', '), repairable: true }, ctx.repair);
    if (badUid) add(ctx, { check: 'uidnext', subject, detail: `UIDNEXT ${r.uid_next} is not above the highest UID ${r.maxuid}`, repairable: true }, ctx.repair);
    if (badMod) add(ctx, { check: 'modseq', subject, detail: `HIGHESTMODSEQ ${r.highest_modseq} is below a message's or expunge's modseq ${r.maxmod}`, repairable: true }, ctx.repair);
  }
  return rows.length;
}

async function checkQuota(ctx: Ctx): Promise<void> {
  const r = await ctx.pool.query<{ id: number; name: string; storage_used: number; messages_used: number; s: string; c: string }>(
    `SELECT u.id, u.name, u.storage_used, u.messages_used, coalesce(sum(x.size), 0) AS s, count(x.uid) AS c
     FROM users u LEFT JOIN mailboxes m ON m.user_id = u.id LEFT JOIN messages x ON x.mailbox_id = m.id
     GROUP BY u.id`,
  );
  for (const q of r.rows) {
    if (q.storage_used === Number(q.s) && q.messages_used === Number(q.c)) continue;
    if (ctx.repair) {
      await underUserLock(ctx.pool, q.id, async (c) => {
        await c.query(
          `UPDATE users u SET storage_used = a.s, messages_used = a.c FROM (SELECT coalesce(sum(x.size), 0) AS s, count(x.uid) AS c FROM mailboxes m JOIN messages x ON x.mailbox_id = m.id WHERE m.user_id = $1) a WHERE u.id = $1`,
          [q.id],
        );
      });
    }
    add(ctx, { check: 'quota', subject: q.name, detail: `usage ${q.storage_used} bytes / ${q.messages_used} messages, actual ${q.s} / ${q.c}`, repairable: true }, ctx.repair);
  }
}

async function checkBodies(ctx: Ctx, blobs: BlobStore): Promise<{ bodies: number; files: number }> {
  // Rows no message refers to (what dropUnreferenced would have freed).
  const orphans = await ctx.pool.query<{ id: number }>('SELECT b.id FROM blobs b WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.blob_id = b.id) ORDER BY b.id');
  if (orphans.rows.length) {
    if (ctx.repair) await ctx.pool.query('DELETE FROM blobs b WHERE b.id = ANY($1::bigint[]) AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.blob_id = b.id)', [orphans.rows.map((r) => r.id)]);
    for (const o of orphans.rows) add(ctx, { check: 'refcount', subject: `blob ${o.id}`, detail: 'referenced by no message (would be freed)', repairable: true }, ctx.repair);
  }
  let bodies = 0;
  let files = 0;
  const fs = blobs instanceof FsBlobStore ? blobs : null;
  for (let after = 0; ;) {
    const page = fs
      ? await ctx.pool.query<{ id: number; size: number; have: null }>('SELECT id, size, NULL AS have FROM blobs WHERE id > $1 ORDER BY id LIMIT $2', [after, BODY_BATCH])
      : await ctx.pool.query<{ id: number; size: number; have: number }>(
          `SELECT b.id, b.size, coalesce((SELECT sum(length(data)) FROM blob_chunks c WHERE c.blob_id = b.id), 0) AS have FROM blobs b WHERE b.id > $1 ORDER BY b.id LIMIT $2`,
          [after, BODY_BATCH],
        );
    for (const b of page.rows) {
      bodies++;
      let have: number | null = b.have === null ? null : Number(b.have);
      if (fs) {
        have = await fs.sizeOf(b.id);
        if (have !== null) files++;
      }
      if (have !== b.size) {
        const detail = have === null ? 'body file missing' : `body holds ${have} bytes, ${b.size} recorded${fs ? '' : ` (${BLOB_CHUNK_SIZE}-byte chunks)`}`;
        add(ctx, { check: 'blob-row', subject: `blob ${b.id}`, detail, repairable: false }, false);
      }
    }
    if (page.rows.length < BODY_BATCH) break;
    after = page.rows.at(-1)!.id;
  }
  if (fs) {
    const live = async (ids: number[]) => new Set((await ctx.pool.query<{ id: number }>('SELECT id FROM blobs WHERE id = ANY($1::bigint[])', [ids])).rows.map((r) => r.id));
    const swept = await fs.sweep(live, undefined, Date.now(), ctx.repair);
    if (swept.removed > 0) add(ctx, { check: 'orphan-file', subject: `${swept.removed} file(s) under ${fs.root}`, detail: 'body files (or temporary files) no row knows, older than the grace period', repairable: true }, ctx.repair);
  }
  return { bodies, files };
}

export async function pgDoctor(pool: pg.Pool, blobs: BlobStore, opts: { repair?: boolean } = {}): Promise<DoctorReport> {
  const ctx: Ctx = { pool, repair: !!opts.repair, findings: [] };
  const mailboxes = await checkMailboxes(ctx);
  await checkQuota(ctx);
  const { bodies, files } = await checkBodies(ctx, blobs);
  const messages = Number((await pool.query<{ n: string }>('SELECT count(*) AS n FROM messages')).rows[0]!.n);
  return { findings: ctx.findings, checked: { mailboxes, messages, blobs: bodies, files } };
}
