// Interpreting decoder tokens as the typed arguments of RFC 9051 §9:
// astring, nstring, number, flag lists, mailbox names, sequence sets.

import type { Token, AtomToken, ListToken } from '../wire/types.js';
import { decodeMutf7, parseSequenceSet, type SequenceSet } from '../wire/index.js';
import type { Session } from '../session/session.js';
import { bad, no } from './types.js';

/** Longest mailbox name (UTF-8 bytes); long enough for deep real-world folder trees. */
export const MAX_MAILBOX_NAME_BYTES = 1024;
/** Deepest mailbox hierarchy accepted by CREATE / RENAME. */
export const MAX_MAILBOX_DEPTH = 32;
/** Hierarchy separator (RFC 9051 §5.1.1); fixed for the whole server. */
export const SEPARATOR = '/';

export class ArgReader {
  private i = 0;
  constructor(private readonly tokens: Token[]) {}

  get done(): boolean {
    return this.i >= this.tokens.length;
  }

  peek(): Token | undefined {
    return this.tokens[this.i];
  }

  next(what: string): Token {
    const t = this.tokens[this.i++];
    if (!t) throw bad(`Missing ${what}`);
    return t;
  }

  end(): void {
    if (!this.done) throw bad('Unexpected extra arguments');
  }

  atom(what: string): string {
    const t = this.next(what);
    if (t.kind !== 'atom' || t.section) throw bad(`Expected ${what}`);
    return t.value;
  }

  astring(what: string): Buffer {
    return astringBytes(this.next(what), what);
  }

  astringText(what: string): string {
    return this.astring(what).toString('utf8');
  }

  list(what: string): Token[] {
    const t = this.next(what);
    if (t.kind !== 'list') throw bad(`Expected ${what} list`);
    return t.items;
  }

  optionalList(): Token[] | null {
    const t = this.peek();
    if (t && t.kind === 'list') {
      this.i++;
      return t.items;
    }
    return null;
  }

  number(what: string): number {
    return parseNumber(this.atom(what), what);
  }

  mailbox(session: Session, what = 'mailbox name'): string {
    return mailboxName(this.next(what), session);
  }

  sequenceSet(what = 'sequence set'): SequenceSet {
    return sequenceSetArg(this.atom(what));
  }
}

export function astringBytes(t: Token, what: string): Buffer {
  if (t.kind === 'string') return t.bytes;
  if (t.kind === 'atom' && !t.section) return Buffer.from(t.value, 'latin1');
  throw bad(`Expected ${what}`);
}

export function isAtom(t: Token | undefined, value?: string): t is AtomToken {
  return !!t && t.kind === 'atom' && !t.section && (value === undefined || t.value.toUpperCase() === value);
}

export function isList(t: Token | undefined): t is ListToken {
  return !!t && t.kind === 'list';
}

/** RFC 9051 number / nz-number: at most 2^32-1 (number64 handled separately). */
export function parseNumber(s: string, what: string, max = 0xffffffff): number {
  if (!/^[0-9]{1,20}$/.test(s)) throw bad(`Invalid ${what}`);
  const n = Number(s);
  if (!Number.isSafeInteger(n) || n > max) throw bad(`${what} out of range`);
  return n;
}

export function sequenceSetArg(s: string): SequenceSet {
  const set = parseSequenceSet(s);
  if (!set) throw bad('Invalid sequence set');
  return set;
}

/**
 * Decode a mailbox argument: UTF-8 for sessions with IMAP4rev2 / UTF8=ACCEPT,
 * modified UTF-7 otherwise (RFC 3501 §5.1.3); INBOX in any case means INBOX
 * (RFC 9051 §5.1), including as the first level of a hierarchical name.
 */
export function mailboxName(t: Token, session: Session): string {
  const bytes = astringBytes(t, 'mailbox name');
  let name: string;
  // RFC 3501 §5.1.3: an IMAP4rev1 client names mailboxes in 7-bit modified UTF-7.
  // A well-formed astring naming no possible mailbox is a NO, not a BAD (RFC 9051
  // §6.3.1/§6.3.4: the name cannot be selected or created; Dovecot answers
  // NO "Mailbox name is not valid mUTF-7" to SELECT, CREATE, RENAME, DELETE, STATUS, APPEND).
  if (!session.utf8Names && bytes.some((b) => b > 0x7f)) throw no('Mailbox name is not valid modified UTF-7');
  const text = bytes.toString('utf8');
  if (!Buffer.from(text, 'utf8').equals(bytes)) throw no('Mailbox name is not valid UTF-8');
  if (session.utf8Names) {
    name = text;
  } else if (!text.includes('&')) {
    name = text;
  } else {
    try {
      name = decodeMutf7(text);
    } catch {
      throw no('Mailbox name is not valid modified UTF-7');
    }
  }
  return normaliseInbox(name);
}

export function normaliseInbox(name: string): string {
  if (name.length >= 5 && name.slice(0, 5).toUpperCase() === 'INBOX' && (name.length === 5 || name[5] === SEPARATOR)) {
    return 'INBOX' + name.slice(5);
  }
  return name;
}

/** Rules for a name that will be created (CREATE, RENAME target): returns an error text or null. */
export function invalidNewMailboxName(name: string): string | null {
  if (name.length === 0) return 'Empty mailbox name';
  if (Buffer.byteLength(name, 'utf8') > MAX_MAILBOX_NAME_BYTES) return 'Mailbox name too long';
  // RFC 9051 §5.1 item 2 (CTL); Net-Unicode (RFC 5198 §2) also excludes the C1 controls.
  if (/[\x00-\x1f\x7f-\x9f]/.test(name)) return 'Mailbox name contains control characters';
  // RFC 9051 §5.1: 8-bit names that are not Net-Unicode (NFC) MUST NOT be created.
  if (name.normalize('NFC') !== name) return 'Mailbox name is not in Unicode Normalization Form C';
  if (/[*%]/.test(name)) return 'Mailbox name contains wildcard characters';
  const parts = name.split(SEPARATOR);
  if (parts.length > MAX_MAILBOX_DEPTH) return 'Mailbox hierarchy too deep';
  if (parts.some((p) => p.length === 0)) return 'Mailbox name has an empty hierarchy level';
  // "." and ".." levels mean something to every file system a name may be
  // exported to (maildir folders, mbox files); Dovecot refuses them too.
  if (parts.some((p) => p === '.' || p === '..')) return 'Mailbox name has a "." or ".." hierarchy level';
  return null;
}

/** Validate flags for STORE / APPEND (RFC 9051 §2.3.2). \Recent may not be set by clients. */
export function flagArgs(tokens: Token[], allowRecent = false): string[] {
  const out: string[] = [];
  for (const t of tokens) {
    if (t.kind !== 'atom' || t.section) throw bad('Invalid flag');
    const f = t.value;
    if (f.startsWith('\\')) {
      const sys = SYSTEM_FLAGS.get(f.toLowerCase());
      if (!sys) {
        if (f.toLowerCase() === '\\recent') {
          if (allowRecent) continue;
          throw bad('\\Recent cannot be set');
        }
        throw bad(`Unknown system flag ${f.slice(0, 40)}`);
      }
      out.push(sys);
    } else {
      if (!/^[\x21-\x7e]+$/.test(f) || /[(){%*"\\\]]/.test(f)) throw bad('Invalid keyword');
      out.push(f);
    }
  }
  return out;
}

export const SYSTEM_FLAGS = new Map<string, string>([
  ['\\seen', '\\Seen'],
  ['\\answered', '\\Answered'],
  ['\\flagged', '\\Flagged'],
  ['\\deleted', '\\Deleted'],
  ['\\draft', '\\Draft'],
]);
