// MetaFilter (src/store/types.ts) compiled to an SQL condition over the
// messages table `m` (joined with its body row `b` when header keys are used):
// flags, sizes, dates, UIDs, mod-sequences and the header index are answered
// by SQLite's scan of one mailbox's rows, never by reading messages; BODY and
// TEXT are narrowed by the full-text index (fulltext.ts) to the messages that
// may contain the needle. Header
// keys on bodies without an index evaluate to NULL, and SQL's three-valued
// logic carries that through NOT / AND / OR: a NULL result means "undecided".
import type Database from 'better-sqlite3';
import { StoreError, type MetaFilter } from '../types.js';
import { FLAG_ANSWERED, FLAG_DELETED, FLAG_DRAFT, FLAG_FLAGGED, FLAG_SEEN } from './schema.js';
import { FTS_INDEXED, trigramQuery } from './fulltext.js';
import { blobIdOfEmailId, threadNumberOf } from '../objectid.js';

const DAY_MS = 86_400_000;
/** INTERNALDATE as wall-clock time in its own zone (ms), for day comparisons. */
const LOCAL_INTERNAL_DATE = '(m.internal_date + m.internal_tz * 60000)';
/** Most UID ranges turned into SQL; longer lists (a huge saved result) use a json_each table. */
const MAX_INLINE_RANGES = 64;
/**
 * Cost of one compiled filter, in range tests (an inline BETWEEN counts 1, a json_each set
 * JSON_SET_COST, any other test 1): above it the search is refused with NO [LIMIT] (RFC 5530).
 * SQLite's preparation of a WHERE clause grows quadratically with its OR terms: 100 × "(OR NEW OLD)"
 * (4,600 BETWEEN tests) took 4.6 s to prepare on the event loop whatever the mailbox size, and as
 * json_each sets it ran 1.4 s over 300 messages (found by `npm run fuzz -- search`, issue 10).
 * 600 keeps preparation to a few ms; real programs stay far below (a long UID set is one json_each).
 */
export const MAX_FILTER_COST = 600;
/** What a json_each UID set costs against MAX_FILTER_COST: it is parsed again for every message. */
const JSON_SET_COST = 16;

const SYSTEM_BITS = new Map<string, number>([
  ['\\seen', FLAG_SEEN],
  ['\\answered', FLAG_ANSWERED],
  ['\\flagged', FLAG_FLAGGED],
  ['\\deleted', FLAG_DELETED],
  ['\\draft', FLAG_DRAFT],
]);

export interface CompiledFilter {
  sql: string;
  params: (string | number)[];
  /** Whether the condition reads the body row `b`. */
  usesBlob: boolean;
  /** Whether it reads the full-text index file (attached as `fts`: fulltext.ts attachFullText). */
  usesFullText: boolean;
}

const INDEX_COLUMNS = { from: 'b.idx_from', to: 'b.idx_to', cc: 'b.idx_cc', bcc: 'b.idx_bcc', subject: 'b.idx_subject' } as const;

/** The WHERE condition (without the mailbox restriction) for `f`. */
export function compileFilter(f: MetaFilter, fullText = true): CompiledFilter {
  const params: (string | number)[] = [];
  let usesBlob = false;
  let usesFullText = false;
  // Refused before any SQL is built: the check must cost less than what it prevents.
  const cost = filterCost(f);
  if (cost > MAX_FILTER_COST) throw new StoreError('LIMIT', `SEARCH program too complex (cost ${cost}, at most ${MAX_FILTER_COST})`);
  const go = (f: MetaFilter): string => {
    switch (f.k) {
      case 'all': return '1';
      case 'none': return '0';
      case 'flag': {
        const bit = SYSTEM_BITS.get(f.flag.toLowerCase());
        // Spelled as the partial indexes of schema V8 (\Flagged, unseen, \Deleted) so SQLite can use them.
        if (bit !== undefined) return f.present ? `(m.sysflags & ${bit}) != 0` : `(m.sysflags & ${bit}) = 0`;
        // \Recent and unknown system flags are not stored.
        if (f.flag.startsWith('\\')) return f.present ? '0' : '1';
        // keywords: space-separated, spelled as first seen; ASCII atoms, so lower() is exact.
        params.push(` ${f.flag.toLowerCase()} `);
        const cond = `instr(' ' || lower(m.keywords) || ' ', ?) > 0`;
        return f.present ? cond : `NOT (${cond})`;
      }
      case 'uids': {
        if (f.ranges.length === 0) return '0';
        if (f.ranges.length > MAX_INLINE_RANGES) return bigUidSet(f.ranges, params);
        return '(' + f.ranges.map((r) => {
          params.push(r.start, r.end);
          return 'm.uid BETWEEN ? AND ?';
        }).join(' OR ') + ')';
      }
      case 'larger': params.push(f.n); return 'm.size > ?';
      case 'arrived': params.push(f.ms); return f.op === 'le' ? 'm.internal_date <= ?' : 'm.internal_date >= ?';
      case 'smaller': params.push(f.n); return 'm.size < ?';
      // RFC 9051 §6.4.4 "disregarding time and timezone": the day as the INTERNALDATE is written, in its own zone.
      case 'before': params.push(f.day * DAY_MS); return `${LOCAL_INTERNAL_DATE} < ?`;
      case 'since': params.push(f.day * DAY_MS); return `${LOCAL_INTERNAL_DATE} >= ?`;
      case 'on': params.push(f.day * DAY_MS, (f.day + 1) * DAY_MS); return `(${LOCAL_INTERNAL_DATE} >= ? AND ${LOCAL_INTERNAL_DATE} < ?)`;
      case 'modseq': params.push(f.modseq); return 'm.modseq >= ?';
      // RFC 8514 §4.3: messages stored before the save date was kept compare their internal date.
      case 'savedbefore': params.push(f.start); return 'coalesce(m.save_date, m.internal_date) < ?';
      case 'savedsince': params.push(f.start); return 'coalesce(m.save_date, m.internal_date) >= ?';
      case 'savedon': params.push(f.start, f.end); return '(coalesce(m.save_date, m.internal_date) >= ? AND coalesce(m.save_date, m.internal_date) < ?)';
      case 'emailid': {
        const blob = blobIdOfEmailId(f.id);
        if (blob === null) return '0';
        params.push(blob);
        return 'm.blob_id = ?';
      }
      case 'threadid': {
        // RFC 8474 §6 SEARCH THREADID: the bodies of that thread (schema V_THREAD_IDS, threadids.ts).
        const n = threadNumberOf(f.id);
        if (n === null) return '0';
        params.push(n);
        return 'm.blob_id IN (SELECT blob_id FROM thread_keys INDEXED BY thread_keys_thread WHERE thread_id = ?)';
      }
      case 'header': {
        usesBlob = true;
        const col = INDEX_COLUMNS[f.field];
        params.push(f.value);
        return `(CASE WHEN b.indexed = 1 AND ${col} IS NOT NULL THEN instr(${col}, ?) > 0 ELSE NULL END)`;
      }
      case 'sentbefore': case 'senton': case 'sentsince': {
        usesBlob = true;
        params.push(f.day);
        const op = f.k === 'sentbefore' ? '<' : f.k === 'senton' ? '=' : '>=';
        return `(CASE WHEN b.indexed = 1 THEN coalesce(b.idx_sent_day ${op} ?, 0) ELSE NULL END)`;
      }
      case 'content': {
        // Ruled out (0) when the body is indexed and lacks one of the needle's trigrams; else undecided.
        // The store's mark says the indexer handled the body; the index file's own row says it holds its text
        // (a lost or fresh index file rules nothing out).
        usesBlob = true;
        const q = fullText ? trigramQuery(f.value) : null;
        if (q === null) return 'NULL';
        usesFullText = true;
        params.push(q);
        const rows = f.scope === 'body' ? 'blob_text MATCH ? AND (rowid & 1) = 0' : 'blob_text MATCH ?';
        return `(CASE WHEN b.fts = ${FTS_INDEXED} AND EXISTS (SELECT 1 FROM fts.indexed i WHERE i.blob_id = b.id AND i.state = ${FTS_INDEXED}) AND b.id NOT IN (SELECT rowid >> 1 FROM fts.blob_text WHERE ${rows}) THEN 0 ELSE NULL END)`;
      }
      case 'not': return `NOT (${go(f.f)})`;
      case 'or': return `((${go(f.a)}) OR (${go(f.b)}))`;
      case 'and': return f.fs.length ? f.fs.map((x) => `(${go(x)})`).join(' AND ') : '1';
    }
  };
  const sql = go(f);
  return { sql, params, usesBlob, usesFullText };
}

/** Ranges of at most this many UIDs are listed UID by UID in a big set's IN list. */
const EXPAND_SPAN = 16;
/** Most UIDs listed in one big set's IN list (the rest of its ranges stay ranges). */
const MAX_LISTED_UIDS = 200_000;

/**
 * A UID set of more than MAX_INLINE_RANGES ranges. Single UIDs and short ranges become an uncorrelated
 * `IN (SELECT value FROM json_each(?))`, which SQLite evaluates once into an index; only the long ranges
 * left over are tested per message. (Before, the whole set was a correlated json_each that SQLite parsed
 * again for every message: 6,000 ranges over 3,000 messages took seconds; issue 10.)
 */
function bigUidSet(ranges: readonly { start: number; end: number }[], params: (string | number)[]): string {
  const listed: number[] = [];
  const spans: { start: number; end: number }[] = [];
  for (const r of ranges) {
    if (r.end - r.start < EXPAND_SPAN && listed.length + (r.end - r.start + 1) <= MAX_LISTED_UIDS) {
      for (let u = r.start; u <= r.end; u++) listed.push(u);
    } else spans.push(r);
  }
  const parts: string[] = [];
  if (listed.length) {
    params.push(JSON.stringify(listed));
    parts.push('m.uid IN (SELECT value FROM json_each(?))');
  }
  if (spans.length > MAX_INLINE_RANGES) {
    params.push(JSON.stringify(spans.map((r) => [r.start, r.end])));
    parts.push(`EXISTS (SELECT 1 FROM json_each(?) r WHERE m.uid BETWEEN json_extract(r.value, '$[0]') AND json_extract(r.value, '$[1]'))`);
  } else {
    for (const r of spans) {
      params.push(r.start, r.end);
      parts.push('m.uid BETWEEN ? AND ?');
    }
  }
  return parts.length ? `(${parts.join(' OR ')})` : '0';
}

/** A filter's cost against MAX_FILTER_COST: every node 1, plus its inline range tests or JSON_SET_COST for a json_each set. */
export function filterCost(f: MetaFilter): number {
  switch (f.k) {
    case 'not': return 1 + filterCost(f.f);
    case 'or': return 1 + filterCost(f.a) + filterCost(f.b);
    case 'and': return 1 + f.fs.reduce((n, x) => n + filterCost(x), 0);
    case 'uids': return 1 + (f.ranges.length > MAX_INLINE_RANGES ? JSON_SET_COST : f.ranges.length);
    default: return 1;
  }
}

/** Prepared statements kept per connection for SEARCH (their SQL differs per program shape, not per value: values are bound). */
export const SEARCH_STATEMENTS_KEPT = 64;

/** A small most-recently-used cache of prepared SEARCH statements on `db`. */
export function searchStatements(db: Database.Database): (sql: string) => Database.Statement {
  const kept = new Map<string, Database.Statement>();
  return (sql) => {
    let st = kept.get(sql);
    if (st) kept.delete(sql);
    else st = db.prepare(sql);
    kept.set(sql, st);
    if (kept.size > SEARCH_STATEMENTS_KEPT) kept.delete(kept.keys().next().value as string);
    return st;
  };
}

/** Runs a compiled filter over one mailbox: the matching UIDs, and those the filter leaves undecided (NULL). */
export function runFilter(statement: (sql: string) => Database.Statement, mailboxId: number, f: CompiledFilter): { uids: number[]; undecided: number[] } {
  if (!f.usesBlob) {
    const uids = statement(`SELECT m.uid FROM messages m WHERE m.mailbox_id = ? AND (${f.sql}) ORDER BY m.uid`).pluck().all(mailboxId, ...f.params) as number[];
    return { uids, undecided: [] };
  }
  const rows = statement(`SELECT m.uid, (${f.sql}) FROM messages m JOIN blobs b ON b.id = m.blob_id WHERE m.mailbox_id = ? ORDER BY m.uid`)
    .raw()
    .all(...f.params, mailboxId) as [number, number | null][];
  const uids: number[] = [];
  const undecided: number[] = [];
  for (const [uid, r] of rows) {
    if (r === null) undecided.push(uid);
    else if (r) uids.push(uid);
  }
  return { uids, undecided };
}
