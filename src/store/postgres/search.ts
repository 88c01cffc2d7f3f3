// MetaFilter (src/store/types.ts) compiled to a PostgreSQL condition over the
// messages row `m`, its body row `b` and its full-text row `t` (LEFT JOIN
// blob_text, fulltext.ts). The same three-valued contract as the SQLite
// store (src/store/sqlite/search.ts): true = matches, false = does not,
// NULL = undecided (the caller reads the message). Every value is a bound
// parameter; only fixed column names are spelled into the SQL.
import { StoreError, type MetaFilter } from '../types.js';
import { FLAG_ANSWERED, FLAG_DELETED, FLAG_DRAFT, FLAG_FLAGGED, FLAG_SEEN } from './schema.js';
import { contentCondition } from './fulltext.js';
import { blobIdOfEmailId, threadNumberOf } from '../objectid.js';

const DAY_MS = 86_400_000;
/** INTERNALDATE as wall-clock time in its own zone (ms), for day comparisons (RFC 9051 §6.4.4). */
const LOCAL_INTERNAL_DATE = '(m.internal_date + m.internal_tz * 60000)';
/** UID sets with more ranges than this are bound as two arrays instead of inline BETWEENs. */
const MAX_INLINE_RANGES = 64;
/**
 * Most nodes (plus inline ranges) in one program: a bound on the SQL we
 * build and PostgreSQL plans, as the SQLite store's MAX_FILTER_COST; above
 * it SEARCH gets NO [LIMIT] (RFC 5530).
 */
export const MAX_FILTER_COST = 600;

const SYSTEM_BITS = new Map<string, number>([
  ['\\seen', FLAG_SEEN],
  ['\\answered', FLAG_ANSWERED],
  ['\\flagged', FLAG_FLAGGED],
  ['\\deleted', FLAG_DELETED],
  ['\\draft', FLAG_DRAFT],
]);

const INDEX_COLUMNS = { from: 'b.idx_from', to: 'b.idx_to', cc: 'b.idx_cc', bcc: 'b.idx_bcc', subject: 'b.idx_subject' } as const;

export interface PgFilter {
  sql: string;
  params: unknown[];
  /** Reads `b` or `t` (header index, full-text). */
  usesBlob: boolean;
}

export function filterCost(f: MetaFilter): number {
  switch (f.k) {
    case 'not': return 1 + filterCost(f.f);
    case 'or': return 1 + filterCost(f.a) + filterCost(f.b);
    case 'and': return 1 + f.fs.reduce((n, x) => n + filterCost(x), 0);
    case 'uids': return 1 + (f.ranges.length > MAX_INLINE_RANGES ? 16 : f.ranges.length);
    default: return 1;
  }
}

/** The condition for `f`; parameters are numbered from `firstParam`. */
export function compilePgFilter(f: MetaFilter, firstParam = 1): PgFilter {
  const cost = filterCost(f);
  if (cost > MAX_FILTER_COST) throw new StoreError('LIMIT', `SEARCH program too complex (cost ${cost}, at most ${MAX_FILTER_COST})`);
  const params: unknown[] = [];
  let usesBlob = false;
  const p = (v: unknown): string => {
    params.push(v);
    return `$${firstParam + params.length - 1}`;
  };
  const go = (f: MetaFilter): string => {
    switch (f.k) {
      case 'all': return 'true';
      case 'none': return 'false';
      case 'flag': {
        const bit = SYSTEM_BITS.get(f.flag.toLowerCase());
        if (bit !== undefined) return f.present ? `(m.sysflags & ${bit}) <> 0` : `(m.sysflags & ${bit}) = 0`;
        if (f.flag.startsWith('\\')) return f.present ? 'false' : 'true'; // \Recent and unknown system flags are not stored
        // Keywords are ASCII atoms separated by one space (flags.ts), so lower() compares exactly (RFC 9051 §2.3.2).
        const cond = `strpos(' ' || lower(m.keywords) || ' ', ${p(` ${f.flag.toLowerCase()} `)}) > 0`;
        return f.present ? cond : `NOT (${cond})`;
      }
      case 'uids': {
        if (f.ranges.length === 0) return 'false';
        if (f.ranges.length > MAX_INLINE_RANGES) {
          const s = p(f.ranges.map((r) => r.start));
          const e = p(f.ranges.map((r) => r.end));
          return `EXISTS (SELECT 1 FROM unnest(${s}::bigint[], ${e}::bigint[]) r(s, e) WHERE m.uid BETWEEN r.s AND r.e)`;
        }
        return '(' + f.ranges.map((r) => `m.uid BETWEEN ${p(r.start)} AND ${p(r.end)}`).join(' OR ') + ')';
      }
      case 'larger': return `m.size > ${p(f.n)}`;
      case 'smaller': return `m.size < ${p(f.n)}`;
      case 'arrived': return f.op === 'le' ? `m.internal_date <= ${p(f.ms)}` : `m.internal_date >= ${p(f.ms)}`;
      case 'before': return `${LOCAL_INTERNAL_DATE} < ${p(f.day * DAY_MS)}`;
      case 'since': return `${LOCAL_INTERNAL_DATE} >= ${p(f.day * DAY_MS)}`;
      case 'on': return `(${LOCAL_INTERNAL_DATE} >= ${p(f.day * DAY_MS)} AND ${LOCAL_INTERNAL_DATE} < ${p((f.day + 1) * DAY_MS)})`;
      case 'modseq': return `m.modseq >= ${p(f.modseq)}`;
      // RFC 8514 §4.3: messages stored before the save date was kept compare their internal date.
      case 'savedbefore': return `coalesce(m.save_date, m.internal_date) < ${p(f.start)}`;
      case 'savedsince': return `coalesce(m.save_date, m.internal_date) >= ${p(f.start)}`;
      case 'savedon': return `(coalesce(m.save_date, m.internal_date) >= ${p(f.start)} AND coalesce(m.save_date, m.internal_date) < ${p(f.end)})`;
      case 'emailid': {
        const blob = blobIdOfEmailId(f.id);
        return blob === null ? 'false' : `m.blob_id = ${p(blob)}`;
      }
      case 'threadid': {
        // RFC 8474 §6 SEARCH THREADID: the bodies of that thread (threadids.ts).
        const n = threadNumberOf(f.id);
        return n === null ? 'false' : `m.blob_id IN (SELECT id FROM blobs WHERE thread_id = ${p(n)})`;
      }
      case 'header': {
        usesBlob = true;
        const col = INDEX_COLUMNS[f.field];
        return `(CASE WHEN ${col} IS NOT NULL THEN strpos(${col}, ${p(f.value)}) > 0 ELSE NULL END)`;
      }
      case 'sentbefore': case 'senton': case 'sentsince': {
        usesBlob = true;
        const op = f.k === 'sentbefore' ? '<' : f.k === 'senton' ? '=' : '>=';
        return `coalesce(b.idx_sent_day ${op} ${p(f.day)}, false)`;
      }
      case 'content': {
        usesBlob = true;
        return contentCondition(f.scope, p(f.value));
      }
      case 'not': return `NOT (${go(f.f)})`;
      case 'or': return `((${go(f.a)}) OR (${go(f.b)}))`;
      case 'and': return f.fs.length ? f.fs.map((x) => `(${go(x)})`).join(' AND ') : 'true';
    }
  };
  return { sql: go(f), params, usesBlob };
}

