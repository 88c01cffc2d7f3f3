// The full-text index behind SEARCH BODY and TEXT (RFC 9051 §6.4.4) in
// PostgreSQL: blob_text keeps, per body, the exact lower-cased text the
// evaluator searches (src/store/structure.ts searchTextOfMessage), computed
// at APPEND. SEARCH's BODY/TEXT are substring matches, so the contract is
// the SQLite store's: the index only rules messages out (the needle is not
// in the stored text); every other message stays undecided and the
// evaluator reads it, so the answer is exactly what reading every message
// gives. Bodies without a row (text over MAX_INDEXED_TEXT, or holding NUL,
// which PostgreSQL text cannot) are undecided.
//
// With pg_trgm (CREATE EXTENSION pg_trgm) the text columns get GIN trigram
// indexes, which PostgreSQL uses for LIKE '%needle%' over many bodies;
// without it the same condition is a scan of the mailbox's rows: the same
// answers, only slower.
import { searchTextOfMessage, type SearchText } from '../structure.js';
import type { Queryable } from './blobs.js';

/** The search text to store for a body, or null to leave it out of the index. */
export function indexableText(data: Buffer): SearchText | null {
  const t = searchTextOfMessage(data);
  if (!t || t.header.includes('\0') || t.body.includes('\0')) return null;
  return t;
}

export async function storeText(tx: Queryable, blobId: number, text: SearchText | null): Promise<void> {
  if (text) await tx.query('INSERT INTO blob_text (blob_id, header, body) VALUES ($1, $2, $3)', [blobId, text.header, text.body]);
}

/** The condition over `t` (LEFT JOIN blob_text t): false = ruled out, NULL = undecided; `param` holds the lower-cased needle. */
export function contentCondition(scope: 'body' | 'text', param: string): string {
  const absent = scope === 'body' ? `strpos(t.body, ${param}) = 0` : `strpos(t.body, ${param}) = 0 AND strpos(t.header, ${param}) = 0`;
  return `(CASE WHEN t.blob_id IS NOT NULL AND ${absent} THEN false ELSE NULL END)`;
}

/**
 * Adds the trigram indexes when pg_trgm is (or can be made) available;
 * returns whether they exist. Failing to create the extension (no
 * privilege, not installed) is not an error: searches scan instead.
 */
export async function ensureTrigramIndex(db: Queryable): Promise<boolean> {
  try {
    await db.query('CREATE EXTENSION IF NOT EXISTS pg_trgm');
  } catch {
    const r = await db.query(`SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'`).catch(() => null);
    if (!r || r.rowCount === 0) return false;
  }
  try {
    await db.query('CREATE INDEX IF NOT EXISTS blob_text_body_trgm ON blob_text USING gin (body gin_trgm_ops)');
    await db.query('CREATE INDEX IF NOT EXISTS blob_text_header_trgm ON blob_text USING gin (header gin_trgm_ops)');
    return true;
  } catch {
    return false;
  }
}
