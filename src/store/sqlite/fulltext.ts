// The full-text index behind SEARCH BODY and TEXT (RFC 9051 §6.4.4): an FTS5
// table of trigrams over the exact text the evaluator searches (src/mime
// searchtext, lower-cased), one row per body for its decoded body text
// (rowid 2 * blob id) and one for its header text (2 * blob id + 1).
//
// SEARCH's BODY/TEXT are substring matches, not word matches, so the index
// is used only to rule messages out: a body whose text lacks any trigram of
// the (lower-cased) needle cannot contain it. The rest are "undecided" and
// read by the evaluator, so the answer is exactly what reading every message
// would give. detail=none keeps only which rows hold a trigram (no
// positions): the smallest index that can rule out.
//
// The index lives in a database file of its own (<db>-fts.sqlite3, issue 11):
// the indexing thread's transactions (tokenized text into FTS5 segments,
// milliseconds each) take that file's write lock, never the store's, so
// serving writers never queue behind them; deleting a body no longer touches
// the index inside the serving transaction either (the thread prunes the rows
// of deleted bodies later). The store's blobs.fts only says whether the
// thread has handled a body (0 = pending); what the file's `indexed` table
// says is what searches trust, so a lost or fresh index file only makes
// SEARCH read more bodies, never answer less. Updating blobs.fts is the
// thread's one write to the store: a few rows by primary key per batch.
import Database from 'better-sqlite3';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { searchTextOfMessage, type SearchText } from '../structure.js';

/** blobs.fts: not yet handled by the indexer (pending), indexed, or deliberately left out (text over MAX_INDEXED_TEXT, unreadable). */
export const FTS_PENDING = 0;
export const FTS_INDEXED = 1;
export const FTS_SKIPPED = 2;

/** Schema v7 (see schema.ts): the index as it was kept inside the store's database until issue 11 moved it out (moveFullTextOut). */
export const FTS_SCHEMA = `
CREATE VIRTUAL TABLE blob_text USING fts5(t, content='', contentless_delete=1, detail='none', tokenize='trigram case_sensitive 1');
ALTER TABLE blobs ADD COLUMN fts INTEGER NOT NULL DEFAULT ${FTS_PENDING};
CREATE TRIGGER blobs_fts_ad AFTER DELETE ON blobs WHEN OLD.fts = ${FTS_INDEXED} BEGIN
  DELETE FROM blob_text WHERE rowid = OLD.id * 2;
  DELETE FROM blob_text WHERE rowid = OLD.id * 2 + 1;
END;
`;

/**
 * The index file's tables: the FTS5 index (as in schema v7, with v10's
 * tuning: deletes never rewrite segments, emergency merges never run inside
 * the short indexing transactions) and which bodies it holds.
 */
const FTS_FILE_SCHEMA = `
CREATE VIRTUAL TABLE blob_text USING fts5(t, content='', contentless_delete=1, detail='none', tokenize='trigram case_sensitive 1');
INSERT INTO blob_text (blob_text, rank) VALUES ('deletemerge', 0);
INSERT INTO blob_text (blob_text, rank) VALUES ('crisismerge', 1000);
CREATE TABLE indexed (blob_id INTEGER PRIMARY KEY, state INTEGER NOT NULL) WITHOUT ROWID;
`;

/** The index file beside a store database: quire.sqlite3 -> quire-fts.sqlite3. */
export function ftsFileOf(dbFile: string): string {
  const base = path.basename(dbFile);
  const stem = base.endsWith('.sqlite3') ? base.slice(0, -'.sqlite3'.length) : base;
  return path.join(path.dirname(dbFile), `${stem}-fts.sqlite3`);
}

/** How long a connection to the index file waits for its write lock (only indexers write it). */
const FTS_BUSY_TIMEOUT_MS = 10_000;

/** Opens (creating it if needed) the index file for writing; `created`: it had no index yet. */
export function openFullText(file: string): { db: Database.Database; created: boolean } {
  const db = new Database(file);
  db.pragma(`busy_timeout = ${FTS_BUSY_TIMEOUT_MS}`);
  db.pragma('journal_mode = WAL');
  // Losing index work on power failure only means doing it again (the store's marks follow the index's commits).
  db.pragma('synchronous = NORMAL');
  let created = false;
  db.transaction(() => {
    if (db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'indexed'").get() === undefined) {
      db.exec(FTS_FILE_SCHEMA);
      created = true;
    }
  }).immediate();
  return { db, created };
}

/**
 * The full-text index file beside the database, created when
 * missing; a new one holds no body yet, so every body is marked pending for
 * the indexing thread (a store whose index file was lost rebuilds it). A
 * file that cannot be created (read-only directory) leaves searches reading
 * bodies.
 */
export function prepareFullTextFile(db: Database.Database): boolean {
  let fts: ReturnType<typeof openFullText>;
  try {
    fts = openFullText(ftsFileOf(db.name));
  } catch {
    return false;
  }
  fts.db.close();
  if (fts.created) db.prepare(`UPDATE blobs SET fts = ${FTS_PENDING} WHERE fts != ${FTS_PENDING}`).run();
  return true;
}

/** Makes the index file readable as `fts.` on a connection to the store (search connections). */
export function attachFullText(db: Database.Database, file: string): boolean {
  if (!existsSync(file)) return false;
  db.prepare('ATTACH DATABASE ? AS fts').run(file);
  return true;
}

/**
 * Called by migrate() on every open: a store whose index is still inside
 * its database (schema v7-v10) drops it (FTS5 rows cannot be copied out:
 * content='' keeps no text) and marks every body pending, so the indexing
 * thread builds the index file again in the background; meanwhile SEARCH
 * reads those bodies, with the same answers. Idempotent, and not a numbered
 * migration on purpose: stores already at the last schema version need it
 * too, and a migration inserted before V11 would re-run V11 on them.
 */
export function moveFullTextOut(db: Database.Database): void {
  if (db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'blob_text'").get() === undefined) return;
  db.transaction(() => {
    db.exec(`DROP TRIGGER IF EXISTS blobs_fts_ad; DROP TABLE blob_text; UPDATE blobs SET fts = ${FTS_PENDING} WHERE fts != ${FTS_PENDING};`);
  }).immediate();
}

/** Most trigrams of a needle put into one index query: enough to rule out nearly every message; fewer keep the query cheap. */
const MAX_QUERY_TRIGRAMS = 12;

/**
 * The FTS5 query whose matches include every text containing `needle`
 * (already lower-cased), or null when the needle is too short to have a
 * trigram (then nothing can be ruled out).
 */
export function trigramQuery(needle: string): string | null {
  const cps = Array.from(needle);
  if (cps.length < 3 || needle.includes('\0')) return null;
  const grams = new Set<string>();
  for (let i = 0; i + 3 <= cps.length; i++) grams.add(cps[i]! + cps[i + 1]! + cps[i + 2]!);
  let list = [...grams];
  if (list.length > MAX_QUERY_TRIGRAMS) {
    // Spread over the needle: its two ends and evenly between.
    const step = (list.length - 1) / (MAX_QUERY_TRIGRAMS - 1);
    list = Array.from({ length: MAX_QUERY_TRIGRAMS }, (_, i) => list[Math.round(i * step)]!);
  }
  return list.map((g) => `"${g.replace(/"/g, '""')}"`).join(' AND ');
}

/** Up to `max` bodies the indexer has not handled yet, oldest first (from the store's database). */
export function pendingBodies(prepare: (sql: string) => Database.Statement, max: number): number[] {
  return prepare(`SELECT id FROM blobs WHERE fts = ${FTS_PENDING} ORDER BY id LIMIT ?`).pluck().all(max) as number[];
}

/** A body's text for the index, read from its file; null when unreadable (marked skipped: SEARCH reads it, `quire doctor` reports the file). */
export function pendingText(data: () => Buffer): SearchText | null {
  try {
    return searchTextOfMessage(data());
  } catch {
    return null;
  }
}

/**
 * Puts texts into the index file (inside the caller's transaction on it);
 * a body the index already holds (indexed by another process, or before a
 * crash between the two commits) is not indexed twice. Returns the state of
 * every body of the batch, for markHandled.
 */
export function storePendingTexts(ftsPrepare: (sql: string) => Database.Statement, batch: readonly [number, SearchText | null][]): [number, number][] {
  const state = ftsPrepare('SELECT state FROM indexed WHERE blob_id = ?').pluck();
  const ins = ftsPrepare('INSERT INTO blob_text (rowid, t) VALUES (?, ?)');
  const mark = ftsPrepare('INSERT INTO indexed (blob_id, state) VALUES (?, ?)');
  const out: [number, number][] = [];
  for (const [id, text] of batch) {
    const had = state.get(id) as number | undefined;
    if (had !== undefined) {
      out.push([id, had]);
      continue;
    }
    if (text) {
      ins.run(id * 2, text.body);
      ins.run(id * 2 + 1, text.header);
    }
    const st = text ? FTS_INDEXED : FTS_SKIPPED;
    mark.run(id, st);
    out.push([id, st]);
  }
  return out;
}

/** Marks bodies handled in the store's database (inside the caller's write transaction): a few primary-key updates. */
export function markHandled(prepare: (sql: string) => Database.Statement, handled: readonly [number, number][]): void {
  const upd = prepare(`UPDATE blobs SET fts = ? WHERE id = ? AND fts = ${FTS_PENDING}`);
  for (const [id, st] of handled) upd.run(st, id);
}

/** Index rows whose body is gone are pruned this many bodies at a time. */
const PRUNE_BATCH = 1000;

/**
 * Drops from the index file the rows of bodies the store no longer has
 * (after EXPUNGE/DELETE), looking at the next PRUNE_BATCH indexed bodies
 * after `after`; returns where to go on next time (0: wrapped around).
 * Blob ids are never reused, so a stale row only costs space meanwhile.
 */
export function pruneDeleted(prepare: (sql: string) => Database.Statement, ftsDb: Database.Database, after: number): number {
  const rows = ftsDb.prepare('SELECT blob_id, state FROM indexed WHERE blob_id > ? ORDER BY blob_id LIMIT ?').raw().all(after, PRUNE_BATCH) as [number, number][];
  if (rows.length === 0) return 0;
  const ids = JSON.stringify(rows.map((r) => r[0]));
  const present = new Set(prepare('SELECT id FROM blobs WHERE id IN (SELECT value FROM json_each(?))').pluck().all(ids) as number[]);
  const gone = rows.filter((r) => !present.has(r[0]));
  if (gone.length) {
    const delText = ftsDb.prepare('DELETE FROM blob_text WHERE rowid = ?');
    const delRow = ftsDb.prepare('DELETE FROM indexed WHERE blob_id = ?');
    ftsDb.transaction(() => {
      for (const [id, st] of gone) {
        if (st === FTS_INDEXED) {
          delText.run(id * 2);
          delText.run(id * 2 + 1);
        }
        delRow.run(id);
      }
    }).immediate();
  }
  return rows[rows.length - 1]![0];
}

/**
 * Indexes up to `max` pending bodies: the texts into the index file in one
 * transaction there, then the marks in one store transaction run by `tx`;
 * returns how many were handled (0: none left). The server's indexing thread
 * does the same with its own pacing (text-worker.ts).
 */
export async function indexPendingBodies(
  prepare: (sql: string) => Database.Statement,
  ftsDb: Database.Database,
  pathOf: (id: number) => string,
  tx: (fn: () => void) => void | Promise<void>,
  max: number,
): Promise<number> {
  const ids = pendingBodies(prepare, max);
  const texts: [number, SearchText | null][] = [];
  for (const id of ids) {
    const data = await fs.readFile(pathOf(id)).catch(() => null);
    texts.push([id, data ? pendingText(() => data) : null]);
  }
  if (texts.length) {
    const handled = ftsDb.transaction(() => storePendingTexts((sql) => ftsDb.prepare(sql), texts)).immediate();
    await tx(() => markHandled(prepare, handled));
  }
  return ids.length;
}
