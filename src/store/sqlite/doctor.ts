// `quire doctor`: consistency checks of the SQLite store, and the repairs
// that can be made from what is on disk. The derived state that triggers
// keep (schema.ts) can still drift if the database was edited by hand,
// restored partly from a backup, or written by a buggy version; bodies stored
// before schema V2/V5 lack their structure and SEARCH index.
//
// Checks, in the order they run (a repair may feed a later check):
//  1. messages whose blob row is missing (the row is rebuilt when the file exists);
//  2. blob refcounts vs the messages that reference them (0 → the body is freed);
//  3. per-mailbox counters (messages, unseen, deleted, size), UIDNEXT above
//     every UID, HIGHESTMODSEQ at least every message's and tombstone's modseq;
//  4. per-user quota usage vs the messages;
//  5. blob files missing or of the wrong size (cannot be repaired: restore them);
//  6. files under blobs/ without a row (removed, unless a live writer reserved the id);
//  7. bodies without structure or SEARCH header index (re-read and described again);
//  8. with --repair, bodies not yet in the full-text index are indexed (not a finding).
// Each repair runs in its own IMMEDIATE transaction that re-reads what it
// fixes, so it is safe beside a running server.

import type Database from 'better-sqlite3';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describeMessage } from '../structure.js';
import { isOwnerDead, type BlobFiles } from './blobs.js';
import { FLAG_DELETED, FLAG_SEEN } from './schema.js';
import { ftsFileOf, indexPendingBodies, openFullText } from './fulltext.js';

/** Bodies re-described per transaction (each one is read from disk and parsed). */
const REINDEX_BATCH = 200;

export interface DoctorFinding {
  check: 'blob-row' | 'refcount' | 'counters' | 'uidnext' | 'modseq' | 'quota' | 'blob-file' | 'orphan-file' | 'index';
  /** What is affected: "user/mailbox", "blob 123", "user". */
  subject: string;
  detail: string;
  repairable: boolean;
  repaired: boolean;
}

export interface DoctorReport {
  findings: DoctorFinding[];
  checked: { mailboxes: number; messages: number; blobs: number; files: number };
}

interface CounterRow {
  id: number;
  uname: string;
  name: string;
  msg_count: number;
  unseen_count: number;
  deleted_count: number;
  total_size: number;
  uid_next: number;
  highest_modseq: number;
  c: number;
  u: number;
  d: number;
  s: number;
  maxuid: number;
  maxmod: number;
}

const COUNTERS_SQL = `
SELECT m.id, u.name AS uname, m.name, m.msg_count, m.unseen_count, m.deleted_count, m.total_size, m.uid_next, m.highest_modseq,
  coalesce(x.c, 0) AS c, coalesce(x.u, 0) AS u, coalesce(x.d, 0) AS d, coalesce(x.s, 0) AS s, coalesce(x.maxuid, 0) AS maxuid,
  max(coalesce(x.maxmod, 0), coalesce((SELECT max(e.modseq) FROM expunged e WHERE e.mailbox_id = m.id), 0), m.tombstone_floor) AS maxmod
FROM mailboxes m JOIN users u ON u.id = m.user_id
LEFT JOIN (
  SELECT mailbox_id, count(*) AS c, sum((sysflags & ${FLAG_SEEN}) = 0) AS u, sum((sysflags & ${FLAG_DELETED}) != 0) AS d,
    sum(size) AS s, max(uid) AS maxuid, max(modseq) AS maxmod
  FROM messages GROUP BY mailbox_id
) x ON x.mailbox_id = m.id
ORDER BY u.name, m.name`;

const REFCOUNT_SQL = `
SELECT b.id, b.refcount, coalesce(r.n, 0) AS refs FROM blobs b
LEFT JOIN (SELECT blob_id, count(*) AS n FROM messages GROUP BY blob_id) r ON r.blob_id = b.id
WHERE b.refcount != coalesce(r.n, 0) ORDER BY b.id`;

const MISSING_ROW_SQL = `
SELECT m.blob_id AS id, count(*) AS refs, min(m.size) AS size FROM messages m LEFT JOIN blobs b ON b.id = m.blob_id
WHERE b.id IS NULL GROUP BY m.blob_id ORDER BY m.blob_id`;

const QUOTA_SQL = `
SELECT u.id, u.name, q.user_id IS NOT NULL AS has_row, coalesce(q.storage_used, 0) AS storage_used, coalesce(q.messages_used, 0) AS messages_used,
  coalesce(a.s, 0) AS s, coalesce(a.c, 0) AS c
FROM users u LEFT JOIN quotas q ON q.user_id = u.id
LEFT JOIN (SELECT mb.user_id, sum(x.size) AS s, count(*) AS c FROM messages x JOIN mailboxes mb ON mb.id = x.mailbox_id GROUP BY mb.user_id) a ON a.user_id = u.id
ORDER BY u.name`;

async function fileSize(file: string): Promise<number | null> {
  try {
    return (await fs.stat(file)).size;
  } catch {
    return null;
  }
}

/** Runs every check; with `repair`, fixes what can be fixed. The caller purges blob_trash afterwards. */
export async function runDoctor(db: Database.Database, blobs: BlobFiles, opts: { repair?: boolean } = {}): Promise<DoctorReport> {
  const repair = !!opts.repair;
  const findings: DoctorFinding[] = [];
  const tx = <T>(fn: () => T): T => db.transaction(fn).immediate();
  const add = (f: Omit<DoctorFinding, 'repaired'>, repaired = false) => findings.push({ ...f, repaired: repair && f.repairable && repaired });

  // 1. messages whose blob row is gone: rebuild it from the file when there is one.
  for (const r of db.prepare(MISSING_ROW_SQL).all() as { id: number; refs: number; size: number }[]) {
    const size = await fileSize(blobs.pathOf(r.id));
    const ok = size !== null && size === r.size;
    let done = false;
    if (repair && ok) {
      tx(() => {
        const refs = db.prepare('SELECT count(*) FROM messages WHERE blob_id = ?').pluck().get(r.id) as number;
        if (refs > 0 && !db.prepare('SELECT 1 FROM blobs WHERE id = ?').get(r.id)) {
          // indexed = 0: check 7 describes it again from the file.
          db.prepare('INSERT INTO blobs (id, size, refcount, indexed) VALUES (?, ?, ?, 0)').run(r.id, size, refs);
          db.prepare('DELETE FROM blob_trash WHERE id = ?').run(r.id);
        }
      });
      done = true;
    }
    add(
      {
        check: 'blob-row',
        subject: `blob ${r.id}`,
        detail: ok ? `${r.refs} message(s) reference a body with no row; the file is there` : `${r.refs} message(s) reference a body with no row and no file (restore ${blobs.pathOf(r.id)} from a backup)`,
        repairable: ok,
      },
      done,
    );
  }

  // 2. refcounts.
  const badRefs = db.prepare(REFCOUNT_SQL).all() as { id: number; refcount: number; refs: number }[];
  for (const r of badRefs) add({ check: 'refcount', subject: `blob ${r.id}`, detail: `refcount ${r.refcount}, referenced by ${r.refs} message(s)${r.refs === 0 ? ' (unreferenced: would be freed)' : ''}`, repairable: true }, true);
  if (repair && badRefs.length > 0) {
    tx(() => {
      // The blobs_unreferenced trigger moves a body that drops to 0 into blob_trash.
      for (const r of db.prepare(REFCOUNT_SQL).all() as { id: number; refs: number }[]) db.prepare('UPDATE blobs SET refcount = ? WHERE id = ?').run(r.refs, r.id);
    });
  }

  // 3. mailbox counters, UIDNEXT, HIGHESTMODSEQ.
  const rows = db.prepare(COUNTERS_SQL).all() as CounterRow[];
  let bad = false;
  for (const r of rows) {
    const subject = `${r.uname}/${r.name}`;
    const diffs: string[] = [];
    if (r.msg_count !== r.c) diffs.push(`messages ${r.msg_count} (actual ${r.c})`);
    if (r.unseen_count !== r.u) diffs.push(`unseen ${r.unseen_count} (actual ${r.u})`);
    if (r.deleted_count !== r.d) diffs.push(`deleted ${r.deleted_count} (actual ${r.d})`);
    if (r.total_size !== r.s) diffs.push(`size ${r.total_size} (actual ${r.s})`);
    if (diffs.length > 0) add({ check: 'counters', subject, detail: diffs.join(', '), repairable: true }, true);
    if (r.uid_next <= r.maxuid) add({ check: 'uidnext', subject, detail: `UIDNEXT ${r.uid_next} is not above the highest UID ${r.maxuid}`, repairable: true }, true);
    if (r.highest_modseq < r.maxmod) add({ check: 'modseq', subject, detail: `HIGHESTMODSEQ ${r.highest_modseq} is below a message's or expunge's modseq ${r.maxmod}`, repairable: true }, true);
    bad ||= diffs.length > 0 || r.uid_next <= r.maxuid || r.highest_modseq < r.maxmod;
  }
  if (repair && bad) {
    tx(() => {
      const upd = db.prepare(
        `UPDATE mailboxes SET msg_count = ?, unseen_count = ?, deleted_count = ?, total_size = ?,
         uid_next = max(uid_next, ?), highest_modseq = max(highest_modseq, ?) WHERE id = ?`,
      );
      for (const r of db.prepare(COUNTERS_SQL).all() as CounterRow[]) upd.run(r.c, r.u, r.d, r.s, r.maxuid + 1, r.maxmod, r.id);
    });
  }

  // 4. quota usage.
  const quotas = db.prepare(QUOTA_SQL).all() as { id: number; name: string; has_row: number; storage_used: number; messages_used: number; s: number; c: number }[];
  const badQuota = quotas.filter((q) => !q.has_row || q.storage_used !== q.s || q.messages_used !== q.c);
  for (const q of badQuota) {
    add({ check: 'quota', subject: q.name, detail: q.has_row ? `usage ${q.storage_used} bytes / ${q.messages_used} messages, actual ${q.s} / ${q.c}` : 'no quota row', repairable: true }, true);
  }
  if (repair && badQuota.length > 0) {
    tx(() => {
      for (const q of db.prepare(QUOTA_SQL).all() as { id: number; s: number; c: number }[]) {
        db.prepare('INSERT OR IGNORE INTO quotas (user_id) VALUES (?)').run(q.id);
        db.prepare('UPDATE quotas SET storage_used = ?, messages_used = ? WHERE user_id = ?').run(q.s, q.c, q.id);
      }
    });
  }

  // 5. every blob row has its file, of its size.
  const blobRows = db.prepare('SELECT id, size FROM blobs ORDER BY id').raw().all() as [number, number][];
  for (const [id, size] of blobRows) {
    const actual = await fileSize(blobs.pathOf(id));
    if (actual === size) continue;
    const users = db
      .prepare('SELECT DISTINCT u.name || \'/\' || mb.name || \' UID \' || m.uid FROM messages m JOIN mailboxes mb ON mb.id = m.mailbox_id JOIN users u ON u.id = mb.user_id WHERE m.blob_id = ? LIMIT 3')
      .pluck()
      .all(id) as string[];
    add({
      check: 'blob-file',
      subject: `blob ${id}`,
      detail: `${actual === null ? 'file missing' : `file has ${actual} bytes, expected ${size}`} (${blobs.pathOf(id)}; ${users.join(', ') || 'no message'}): restore it from a backup`,
      repairable: false,
    });
  }

  // 6. files without a row (not reserved by a writer that is still running).
  const live = (db.prepare('SELECT start, end, owner FROM blob_reservations').all() as { start: number; end: number; owner: string }[]).filter((r) => !isOwnerDead(r.owner));
  const known = new Set(blobRows.map(([id]) => id));
  for (const id of db.prepare('SELECT DISTINCT blob_id FROM messages').pluck().all() as number[]) known.add(id);
  let files = 0;
  const orphans: string[] = [];
  const walk = async (dir: string, depth: number): Promise<void> => {
    let names: string[];
    try {
      names = await fs.readdir(dir);
    } catch {
      return;
    }
    for (const n of names.sort()) {
      const p = path.join(dir, n);
      if (depth < 2) {
        await walk(p, depth + 1);
        continue;
      }
      files++;
      const id = Number(n);
      if (!/^\d+$/.test(n)) {
        orphans.push(p);
        continue;
      }
      if (known.has(id) || live.some((r) => id >= r.start && id < r.end)) continue;
      orphans.push(p);
    }
  };
  await walk(blobs.blobDir, 0);
  for (const p of orphans) {
    let done = false;
    if (repair) {
      // Re-checked at removal time: a row may have appeared since the scan.
      const n = path.basename(p);
      const still = !/^\d+$/.test(n) || !db.prepare('SELECT 1 FROM blobs WHERE id = ? UNION ALL SELECT 1 FROM messages WHERE blob_id = ? LIMIT 1').get(Number(n), Number(n));
      if (still) await fs.unlink(p).catch(() => undefined);
      done = true;
    }
    add({ check: 'orphan-file', subject: path.relative(path.dirname(blobs.blobDir), p), detail: 'file under blobs/ that no row knows', repairable: true }, done);
  }

  // 7. structure and SEARCH header index.
  const unindexed = db.prepare('SELECT id FROM blobs WHERE indexed = 0 OR structure IS NULL ORDER BY id').pluck().all() as number[];
  const unreadable = new Set<number>();
  if (repair) {
    const upd = db.prepare(
      `UPDATE blobs SET structure = ?, header = ?, idx_from = ?, idx_to = ?, idx_cc = ?, idx_bcc = ?, idx_subject = ?, idx_sent_day = ?, indexed = 1 WHERE id = ?`,
    );
    for (let i = 0; i < unindexed.length; i += REINDEX_BATCH) {
      const described: [number, ReturnType<typeof describeMessage>][] = [];
      for (const id of unindexed.slice(i, i + REINDEX_BATCH)) {
        try {
          described.push([id, describeMessage(await fs.readFile(blobs.pathOf(id)))]);
        } catch {
          unreadable.add(id); // reported by check 5
        }
      }
      tx(() => {
        for (const [id, d] of described) upd.run(d.structure, d.header, d.index.from, d.index.to, d.index.cc, d.index.bcc, d.index.subject, d.index.sentDay, id);
      });
      await new Promise((r) => setImmediate(r)); // let a server sharing the process breathe
    }
  }
  if (unindexed.length > 0) {
    const ok = unindexed.length - unreadable.size;
    add({ check: 'index', subject: `${unindexed.length} bod${unindexed.length === 1 ? 'y' : 'ies'}`, detail: 'stored without MIME structure or SEARCH header index (before schema v2/v5)', repairable: ok > 0 }, ok > 0);
  }

  // 8. full-text index: bodies not yet in it are normal (a server's indexing
  // thread catches up; SEARCH reads them meanwhile), so this is no finding;
  // --repair indexes them here, for a store that no server runs on.
  if (repair) {
    const fts = openFullText(ftsFileOf(db.name)).db;
    try {
      while ((await indexPendingBodies((sql) => db.prepare(sql), fts, (id) => blobs.pathOf(id), tx, REINDEX_BATCH)) > 0) {
        await new Promise((r) => setImmediate(r));
      }
    } finally {
      fts.close();
    }
  }

  const messages = db.prepare('SELECT count(*) FROM messages').pluck().get() as number;
  return { findings, checked: { mailboxes: rows.length, messages, blobs: blobRows.length, files } };
}
