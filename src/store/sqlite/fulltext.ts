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
import type Database from 'better-sqlite3';
import { promises as fs } from 'node:fs';
import { searchTextOfMessage, type SearchText } from '../structure.js';

/** blobs.fts: not yet indexed (stored before schema v7), indexed, or deliberately left out (text over MAX_INDEXED_TEXT). */
export const FTS_PENDING = 0;
export const FTS_INDEXED = 1;
export const FTS_SKIPPED = 2;

/** Schema v7 (see schema.ts). */
export const FTS_SCHEMA = `
CREATE VIRTUAL TABLE blob_text USING fts5(t, content='', contentless_delete=1, detail='none', tokenize='trigram case_sensitive 1');
ALTER TABLE blobs ADD COLUMN fts INTEGER NOT NULL DEFAULT ${FTS_PENDING};
CREATE TRIGGER blobs_fts_ad AFTER DELETE ON blobs WHEN OLD.fts = ${FTS_INDEXED} BEGIN
  DELETE FROM blob_text WHERE rowid = OLD.id * 2;
  DELETE FROM blob_text WHERE rowid = OLD.id * 2 + 1;
END;
`;

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

/** Puts a body's search text into the index (inside the caller's transaction). */
export function indexBodyText(prepare: (sql: string) => Database.Statement, blobId: number, text: SearchText | null): void {
  if (text) {
    const ins = prepare('INSERT INTO blob_text (rowid, t) VALUES (?, ?)');
    ins.run(blobId * 2, text.body);
    ins.run(blobId * 2 + 1, text.header);
  }
  prepare('UPDATE blobs SET fts = ? WHERE id = ?').run(text ? FTS_INDEXED : FTS_SKIPPED, blobId);
}

/** Up to `max` bodies not yet in the index, oldest first. */
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
 * Puts texts into the index (inside the caller's write transaction),
 * re-checked under the lock: a body may be gone (expunged) or indexed by
 * another process meanwhile, and must never be indexed twice.
 */
export function storePendingTexts(prepare: (sql: string) => Database.Statement, batch: readonly [number, SearchText | null][]): void {
  const state = prepare('SELECT fts FROM blobs WHERE id = ?').pluck();
  for (const [id, text] of batch) if (state.get(id) === FTS_PENDING) indexBodyText(prepare, id, text);
}

/**
 * Indexes up to `max` pending bodies in one transaction run by `tx`; returns
 * how many were handled (0: none left). The server's indexing thread does
 * the same with its own pacing (text-worker.ts).
 */
export async function indexPendingBodies(
  prepare: (sql: string) => Database.Statement,
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
  if (texts.length) await tx(() => storePendingTexts(prepare, texts));
  return ids.length;
}
