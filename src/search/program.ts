// SEARCH programs: the search-key grammar of RFC 9051 §6.4.4 (and the
// rev1 keys of RFC 3501 §6.4.4) parsed from decoder tokens into a tree.
import type { Token } from '../wire/types.js';
import { parseDate, parseSequenceSet, type ImapDate, type SequenceSet } from '../wire/index.js';

export class SearchSyntaxError extends Error {}

export type Criterion =
  | { k: 'all' }
  | { k: 'flag'; flag: string; present: boolean }
  | { k: 'recent'; present: boolean }
  | { k: 'new' }
  | { k: 'seq'; set: SequenceSet }
  | { k: 'uid'; set: SequenceSet }
  | { k: 'larger' | 'smaller'; n: number }
  /** RFC 5032 WITHIN: INTERNALDATE at least / at most `seconds` before now. */
  | { k: 'older' | 'younger'; seconds: number }
  | { k: 'before' | 'on' | 'since'; date: ImapDate }
  | { k: 'sentbefore' | 'senton' | 'sentsince'; date: ImapDate }
  /**
   * `address`: FROM/TO/CC/BCC keys, matched against the parsed addresses
   * (mime addressSearchText), as Dovecot does; HEADER <field> matches the
   * decoded raw field (Dovecot: HEADER FROM "comment" finds the comment).
   */
  | { k: 'header'; field: string; value: string; address?: boolean }
  | { k: 'body' | 'text'; value: string }
  | { k: 'modseq'; modseq: number }
  /** RFC 8514 §4.3 (SAVEDATESUPPORTED always matches: every message has a save date or its fallback). */
  | { k: 'savedbefore' | 'savedon' | 'savedsince'; date: ImapDate }
  /** RFC 8474 §6: EMAILID / THREADID search keys. */
  | { k: 'emailid' | 'threadid'; id: string }
  | { k: 'not'; c: Criterion }
  | { k: 'or'; a: Criterion; b: Criterion }
  | { k: 'and'; cs: Criterion[] };

/** Deepest NOT/OR/parenthesis nesting accepted: bounds recursion on hostile input. */
export const MAX_SEARCH_DEPTH = 64;
/** Most search keys in one program. */
export const MAX_SEARCH_KEYS = 1000;

const FLAG_KEYS: Record<string, [string, boolean]> = {
  ANSWERED: ['\\Answered', true],
  DELETED: ['\\Deleted', true],
  DRAFT: ['\\Draft', true],
  FLAGGED: ['\\Flagged', true],
  SEEN: ['\\Seen', true],
  UNANSWERED: ['\\Answered', false],
  UNDELETED: ['\\Deleted', false],
  UNDRAFT: ['\\Draft', false],
  UNFLAGGED: ['\\Flagged', false],
  UNSEEN: ['\\Seen', false],
};

const ADDRESS_KEYS: Record<string, string> = { FROM: 'From', TO: 'To', CC: 'Cc', BCC: 'Bcc', SUBJECT: 'Subject' };

export interface ParseOptions {
  /** Decode a search string argument (charset conversion happens here). */
  text(t: Token): string;
}

/** Whether a program uses the MODSEQ key (RFC 7162 §3.1.6: results then carry a mod-sequence). */
export function usesModseq(c: Criterion): boolean {
  switch (c.k) {
    case 'modseq': return true;
    case 'not': return usesModseq(c.c);
    case 'or': return usesModseq(c.a) || usesModseq(c.b);
    case 'and': return c.cs.some(usesModseq);
    default: return false;
  }
}

export function parseProgram(tokens: Token[], opts: ParseOptions): Criterion {
  let i = 0;
  let count = 0;
  const atomOf = (t: Token | undefined): string => {
    if (!t || t.kind !== 'atom' || t.section) throw new SearchSyntaxError('Expected a search key');
    return t.value;
  };
  const needText = (): string => {
    const t = tokens[i++];
    if (!t || t.kind === 'list') throw new SearchSyntaxError('Expected a string');
    return opts.text(t);
  };
  const needDate = (): ImapDate => {
    const t = tokens[i++];
    if (!t || t.kind === 'list') throw new SearchSyntaxError('Expected a date');
    const text = t.kind === 'atom' ? t.value : t.bytes.toString('latin1');
    const d = parseDate(text);
    if (!d) throw new SearchSyntaxError('Invalid date');
    return d;
  };
  const needNumber = (max: number): number => {
    const v = atomOf(tokens[i++]);
    if (!/^[0-9]{1,20}$/.test(v) || Number(v) > max) throw new SearchSyntaxError('Invalid number');
    return Number(v);
  };

  function key(depth: number): Criterion {
    if (depth > MAX_SEARCH_DEPTH) throw new SearchSyntaxError('Search program nested too deeply');
    if (++count > MAX_SEARCH_KEYS) throw new SearchSyntaxError('Too many search keys');
    const t = tokens[i++];
    if (!t) throw new SearchSyntaxError('Missing search key');
    if (t.kind === 'list') {
      if (t.items.length === 0) throw new SearchSyntaxError('Empty parenthesised search key');
      const saved = { tokens, i };
      tokens = t.items;
      i = 0;
      const cs: Criterion[] = [];
      while (i < tokens.length) cs.push(key(depth + 1));
      tokens = saved.tokens;
      i = saved.i;
      return cs.length === 1 ? cs[0] : { k: 'and', cs };
    }
    if (t.kind !== 'atom' || t.section) throw new SearchSyntaxError('Expected a search key');
    const name = t.value.toUpperCase();
    if (name in FLAG_KEYS) {
      const [flag, present] = FLAG_KEYS[name];
      return { k: 'flag', flag, present };
    }
    if (name in ADDRESS_KEYS) return { k: 'header', field: ADDRESS_KEYS[name], value: needText(), address: name !== 'SUBJECT' };
    switch (name) {
      case 'ALL': return { k: 'all' };
      case 'NEW': return { k: 'new' };
      case 'OLD': return { k: 'recent', present: false };
      case 'RECENT': return { k: 'recent', present: true };
      case 'KEYWORD':
      case 'UNKEYWORD': {
        const flag = atomOf(tokens[i++]);
        return { k: 'flag', flag, present: name === 'KEYWORD' };
      }
      case 'BEFORE': return { k: 'before', date: needDate() };
      case 'ON': return { k: 'on', date: needDate() };
      case 'SINCE': return { k: 'since', date: needDate() };
      case 'SENTBEFORE': return { k: 'sentbefore', date: needDate() };
      case 'SENTON': return { k: 'senton', date: needDate() };
      case 'SENTSINCE': return { k: 'sentsince', date: needDate() };
      case 'SAVEDBEFORE': return { k: 'savedbefore', date: needDate() };
      case 'SAVEDON': return { k: 'savedon', date: needDate() };
      case 'SAVEDSINCE': return { k: 'savedsince', date: needDate() };
      case 'SAVEDATESUPPORTED': return { k: 'all' };
      case 'EMAILID': case 'THREADID': {
        // RFC 8474 §7: objectid = 1*255(ALPHA / DIGIT / "_" / "-").
        const id = atomOf(tokens[i++]);
        if (!/^[A-Za-z0-9_-]{1,255}$/.test(id)) throw new SearchSyntaxError(`Invalid ${name}`);
        return { k: name === 'EMAILID' ? 'emailid' : 'threadid', id };
      }
      case 'LARGER': return { k: 'larger', n: needNumber(Number.MAX_SAFE_INTEGER) };
      // RFC 5032 §3: OLDER / YOUNGER nz-number (seconds).
      case 'OLDER': case 'YOUNGER': {
        const seconds = needNumber(0xffffffff);
        if (seconds === 0) throw new SearchSyntaxError(`${name} needs a positive number of seconds`);
        return { k: name === 'OLDER' ? 'older' : 'younger', seconds };
      }
      case 'SMALLER': return { k: 'smaller', n: needNumber(Number.MAX_SAFE_INTEGER) };
      case 'BODY': return { k: 'body', value: needText() };
      case 'TEXT': return { k: 'text', value: needText() };
      case 'HEADER': {
        const ft = tokens[i++];
        if (!ft || ft.kind === 'list') throw new SearchSyntaxError('Expected a header field name');
        const field = ft.kind === 'atom' ? ft.value : ft.bytes.toString('latin1');
        if (!/^[\x21-\x39\x3b-\x7e]+$/.test(field)) throw new SearchSyntaxError('Invalid header field name');
        return { k: 'header', field, value: needText() };
      }
      case 'UID': {
        const set = parseSequenceSet(atomOf(tokens[i++]));
        if (!set) throw new SearchSyntaxError('Invalid UID set');
        return { k: 'uid', set };
      }
      case 'MODSEQ': {
        // RFC 7162 §3.1.5: MODSEQ [<entry-name> <entry-type-req>] <mod-sequence-valzer>.
        // We keep one mod-sequence per message, so the entry only has to be well-formed.
        const t2 = tokens[i];
        if (t2 && t2.kind === 'string') {
          i++;
          const type = atomOf(tokens[i++]).toLowerCase();
          if (type !== 'priv' && type !== 'shared' && type !== 'all') throw new SearchSyntaxError('Invalid MODSEQ entry type');
        }
        return { k: 'modseq', modseq: needNumber(Number.MAX_SAFE_INTEGER) };
      }
      case 'NOT': return { k: 'not', c: key(depth + 1) };
      case 'OR': {
        const a = key(depth + 1);
        const b = key(depth + 1);
        return { k: 'or', a, b };
      }
      default: {
        const set = parseSequenceSet(t.value);
        if (set) return { k: 'seq', set };
        throw new SearchSyntaxError(`Unknown search key ${t.value.slice(0, 30)}`);
      }
    }
  }

  const cs: Criterion[] = [];
  if (tokens.length === 0) throw new SearchSyntaxError('Missing search criteria');
  while (i < tokens.length) cs.push(key(0));
  return cs.length === 1 ? cs[0] : { k: 'and', cs };
}
