// MetaFilter (src/store/types.ts) compiled to an SQL condition over the
// messages table: flags, sizes, internal dates, UIDs and mod-sequences are
// answered by SQLite's scan of one mailbox's rows, never by reading messages.
import type { MetaFilter } from '../types.js';
import { FLAG_ANSWERED, FLAG_DELETED, FLAG_DRAFT, FLAG_FLAGGED, FLAG_SEEN } from './schema.js';

const DAY_MS = 86_400_000;
/** Most UID ranges turned into SQL; longer lists (a huge saved result) use a json_each table. */
const MAX_INLINE_RANGES = 64;

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
}

/** The WHERE condition (without the mailbox restriction) for `f`. */
export function compileFilter(f: MetaFilter): CompiledFilter {
  const params: (string | number)[] = [];
  const go = (f: MetaFilter): string => {
    switch (f.k) {
      case 'all': return '1';
      case 'none': return '0';
      case 'flag': {
        const bit = SYSTEM_BITS.get(f.flag.toLowerCase());
        let cond: string;
        if (bit !== undefined) cond = `(sysflags & ${bit}) != 0`;
        else if (f.flag.startsWith('\\')) cond = '0'; // \Recent and unknown system flags are not stored
        else {
          // keywords: space-separated, spelled as first seen; ASCII atoms, so lower() is exact.
          params.push(` ${f.flag.toLowerCase()} `);
          cond = `instr(' ' || lower(keywords) || ' ', ?) > 0`;
        }
        return f.present ? cond : `NOT (${cond})`;
      }
      case 'uids': {
        if (f.ranges.length === 0) return '0';
        if (f.ranges.length > MAX_INLINE_RANGES) {
          params.push(JSON.stringify(f.ranges.map((r) => [r.start, r.end])));
          return `EXISTS (SELECT 1 FROM json_each(?) r WHERE uid BETWEEN json_extract(r.value, '$[0]') AND json_extract(r.value, '$[1]'))`;
        }
        return '(' + f.ranges.map((r) => {
          params.push(r.start, r.end);
          return 'uid BETWEEN ? AND ?';
        }).join(' OR ') + ')';
      }
      case 'larger': params.push(f.n); return 'size > ?';
      case 'smaller': params.push(f.n); return 'size < ?';
      case 'before': params.push(f.day * DAY_MS); return 'internal_date < ?';
      case 'since': params.push(f.day * DAY_MS); return 'internal_date >= ?';
      case 'on': params.push(f.day * DAY_MS, (f.day + 1) * DAY_MS); return '(internal_date >= ? AND internal_date < ?)';
      case 'modseq': params.push(f.modseq); return 'modseq >= ?';
      case 'not': return `NOT (${go(f.f)})`;
      case 'or': return `((${go(f.a)}) OR (${go(f.b)}))`;
      case 'and': return f.fs.length ? f.fs.map((x) => `(${go(x)})`).join(' AND ') : '1';
    }
  };
  return { sql: go(f), params };
}
