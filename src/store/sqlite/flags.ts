// Flag codec for the SQLite store: the five system flags live in a bitmask,
// keywords in a text column spelled as first seen in the mailbox.
// Flag names compare case-insensitively (RFC 9051 §2.3.2).

import { StoreError, type Flag } from '../types.js';
import { FLAG_ANSWERED, FLAG_DELETED, FLAG_DRAFT, FLAG_FLAGGED, FLAG_SEEN } from './schema.js';

/** Canonical order of system flags in MessageMeta.flags. */
const SYSTEM: readonly [number, string][] = [
  [FLAG_SEEN, '\\Seen'],
  [FLAG_ANSWERED, '\\Answered'],
  [FLAG_FLAGGED, '\\Flagged'],
  [FLAG_DELETED, '\\Deleted'],
  [FLAG_DRAFT, '\\Draft'],
];
const SYSTEM_BY_LOWER = new Map(SYSTEM.map(([bit, name]) => [name.toLowerCase(), bit]));

/**
 * Keywords a mailbox may define (PERMANENTFLAGS stays finite and FLAGS
 * responses stay short; clients that invent a keyword per message are cut off).
 */
export const MAX_KEYWORDS_PER_MAILBOX = 256;
/** Longest keyword accepted, in characters (keeps the keywords column compact). */
export const MAX_KEYWORD_LENGTH = 128;

export interface ParsedFlags {
  sys: number;
  /** Keywords as given, deduplicated case-insensitively. */
  keywords: string[];
}

/**
 * Splits flags into system bits and keywords. "\\Recent" is ignored (a
 * session property); other backslash names and keywords that could not be
 * stored as atoms are refused with CANNOT (the command layer validates first).
 */
export function parseFlags(flags: readonly Flag[]): ParsedFlags {
  let sys = 0;
  const seen = new Set<string>();
  const keywords: string[] = [];
  for (const flag of flags) {
    const lower = flag.toLowerCase();
    if (flag.startsWith('\\')) {
      if (lower === '\\recent') continue;
      const bit = SYSTEM_BY_LOWER.get(lower);
      if (bit === undefined) throw new StoreError('CANNOT', `unknown system flag ${flag}`);
      sys |= bit;
      continue;
    }
    if (flag.length === 0 || flag.length > MAX_KEYWORD_LENGTH || /[\s()*%"\\\]{\x00-\x1f\x7f]/.test(flag)) {
      throw new StoreError('CANNOT', `invalid keyword ${JSON.stringify(flag)}`);
    }
    if (seen.has(lower)) continue;
    seen.add(lower);
    keywords.push(flag);
  }
  return { sys, keywords };
}

const sysCache: Flag[][] = [];
for (let bits = 0; bits < 32; bits++) sysCache.push(Object.freeze(SYSTEM.filter(([bit]) => bits & bit).map(([, n]) => n)) as Flag[]);

const kwCache = new Map<string, readonly string[]>();
const KW_CACHE_LIMIT = 10_000;

export function splitKeywords(column: string): readonly string[] {
  if (column === '') return [];
  let kws = kwCache.get(column);
  if (!kws) {
    kws = column.split(' ');
    if (kwCache.size >= KW_CACHE_LIMIT) kwCache.clear();
    kwCache.set(column, kws);
  }
  return kws;
}

const flagsCache = new Map<string, Flag[]>();
const FLAGS_CACHE_LIMIT = 10_000;

/**
 * The flags of a stored row, system flags first in canonical order. Rows
 * with the same flags share one frozen array (a 100k-message FETCH FLAGS
 * makes no array per row); callers copy before changing.
 */
export function decodeFlags(sys: number, keywordsColumn: string): Flag[] {
  const base = sysCache[sys & 31]!;
  if (keywordsColumn === '') return base;
  const key = `${sys & 31} ${keywordsColumn}`;
  let flags = flagsCache.get(key);
  if (!flags) {
    flags = Object.freeze(base.concat(splitKeywords(keywordsColumn))) as Flag[];
    if (flagsCache.size >= FLAGS_CACHE_LIMIT) flagsCache.clear();
    flagsCache.set(key, flags);
  }
  return flags;
}

/** Encodes canonical keyword spellings for the keywords column. */
export function encodeKeywords(keywords: Iterable<string>): string {
  const list = [...keywords];
  list.sort((a, b) => {
    const la = a.toLowerCase();
    const lb = b.toLowerCase();
    return la < lb ? -1 : la > lb ? 1 : 0;
  });
  return list.join(' ');
}
