// LIST / LSUB pattern matching (RFC 9051 §6.3.9, RFC 3501 §6.3.9): "*"
// matches zero or more characters, "%" zero or more characters except the
// hierarchy delimiter. Nothing here builds a RegExp: a pattern is compiled
// into a small NFA (one state per pattern position) that is run over the
// name with bit-parallel state sets, so a match costs
// O(name length × pattern length / 32) whatever the pattern — no
// backtracking, no exponential blow-up for "%*%*%*...x" (issue 10, item 1).
// Pure: imports nothing from src/.

/**
 * Longest pattern (reference + pattern, in UTF-16 code units after runs of
 * wildcards are merged) that LIST/LSUB compile. A pattern with more literal
 * characters than the longest mailbox name can never match and is answered
 * with no match without compiling (as Dovecot answers OK); one that is longer
 * than this only through its wildcards (e.g. "%a%a%a…") is refused with
 * NO [LIMIT], so the matching cost per name stays bounded (32 words of state).
 */
export const MAX_LIST_PATTERN_LENGTH = 1024;
/** Longest name that can exist (MAX_MAILBOX_NAME_BYTES); more literal characters cannot match. */
export const MAX_LIST_NAME_LENGTH = 1024;

/** A compiled LIST pattern. */
export interface NameMatcher {
  test(name: string): boolean;
}

export class PatternTooLongError extends Error {
  constructor() {
    super('List pattern too long');
    this.name = 'PatternTooLongError';
  }
}

const NEVER: NameMatcher = { test: () => false };

/**
 * Compile a LIST pattern. `delimiter` is the hierarchy delimiter that "%"
 * does not cross. With `inboxCaseless`, the first five characters of a name
 * that is INBOX or starts with "INBOX" + delimiter compare case-insensitively
 * with the pattern (RFC 9051 §5.1: INBOX is case-insensitive; Dovecot lets
 * "inb%" and "*box" find INBOX); every other character is case-sensitive.
 * Throws PatternTooLongError above MAX_LIST_PATTERN_LENGTH.
 */
export function compileListPattern(pattern: string, delimiter = '/', inboxCaseless = true): NameMatcher {
  // Merge runs of wildcards: a run containing "*" is "*", a run of "%" is "%".
  const kinds: number[] = []; // 0 literal, 1 "%", 2 "*"
  const chars: number[] = [];
  let literals = 0;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern.charCodeAt(i);
    const k = c === 0x2a ? 2 : c === 0x25 ? 1 : 0;
    const last = kinds.length - 1;
    if (k !== 0 && last >= 0 && kinds[last] !== 0) {
      if (k === 2) kinds[last] = 2;
      continue;
    }
    if (k === 0 && ++literals > MAX_LIST_NAME_LENGTH) return NEVER;
    kinds.push(k);
    chars.push(c);
  }
  const m = kinds.length;
  if (m > MAX_LIST_PATTERN_LENGTH) throw new PatternTooLongError();
  const delim = delimiter.charCodeAt(0);

  // Prefix and suffix of literals: cheap rejects before running the automaton.
  let prefix = 0;
  while (prefix < m && kinds[prefix] === 0) prefix++;
  if (prefix === m) {
    // No wildcard: plain comparison.
    return { test: (name) => name === pattern || (inboxCaseless && inboxEqual(name, pattern, delim)) };
  }
  let suffix = 0;
  while (suffix < m && kinds[m - 1 - suffix] === 0) suffix++;
  const suffixText = String.fromCharCode(...chars.slice(m - suffix));

  // State i = "pattern[0..i) consumed"; state m accepts. Bit i of word i >>> 5.
  const words = ((m + 1) >>> 5) + 1;
  const star = new Uint32Array(words); // states with a "*" self-loop
  const wild = new Uint32Array(words); // states with any wildcard self-loop (ε to i+1 too)
  const lit = new Map<number, Uint32Array>(); // char -> states that step on it
  for (let i = 0; i < m; i++) {
    const bit = 1 << (i & 31);
    if (kinds[i] === 2) star[i >>> 5]! |= bit;
    if (kinds[i] !== 0) wild[i >>> 5]! |= bit;
    else {
      let mask = lit.get(chars[i]!);
      if (!mask) lit.set(chars[i]!, (mask = new Uint32Array(words)));
      mask[i >>> 5]! |= bit;
    }
  }
  const acceptWord = m >>> 5;
  const acceptBit = 1 << (m & 31);
  const cur = new Uint32Array(words);
  const nxt = new Uint32Array(words);

  /** ε-closure: a wildcard state also means the next state (wildcards never follow each other). */
  const close = (d: Uint32Array): void => {
    let carry = 0;
    for (let w = 0; w < words; w++) {
      const x = d[w]! & wild[w]!;
      const out = ((x << 1) | carry) >>> 0;
      carry = x >>> 31;
      d[w] = (d[w]! | out) >>> 0;
    }
  };

  return {
    test(name: string): boolean {
      const caseless = inboxCaseless && isInboxRooted(name, delim);
      const n = name.length;
      if (n < literals) return false;
      // Literal prefix / suffix must agree (the INBOX level may differ in case).
      for (let i = 0; i < prefix; i++) if (!sameChar(name.charCodeAt(i), chars[i]!, caseless && i < 5)) return false;
      if (suffix > 0 && !caseless && !name.endsWith(suffixText)) return false;
      cur.fill(0);
      cur[0] = 1;
      close(cur);
      let lo = 0;
      let hi = 0; // words that may hold set bits
      for (let j = 0; j < n; j++) {
        const c = name.charCodeAt(j);
        let mask = lit.get(c);
        let alt: Uint32Array | undefined;
        if (caseless && j < 5) {
          const other = c >= 0x41 && c <= 0x5a ? c + 32 : c >= 0x61 && c <= 0x7a ? c - 32 : c;
          if (other !== c) alt = lit.get(other);
          if (!mask) [mask, alt] = [alt, undefined];
        }
        const self = c === delim ? star : wild;
        let carry = 0;
        let any = false;
        const top = Math.min(words - 1, hi + 1);
        let nlo = -1;
        let nhi = 0;
        for (let w = lo; w <= top; w++) {
          const d = cur[w]!;
          const m1 = mask ? mask[w]! | (alt ? alt[w]! : 0) : 0;
          const x = d & m1;
          const v = (((x << 1) | carry) | (d & self[w]!)) >>> 0;
          carry = x >>> 31;
          nxt[w] = v;
          if (v !== 0) {
            any = true;
            if (nlo < 0) nlo = w;
            nhi = w;
          }
        }
        if (!any) return false;
        for (let w = lo; w < nlo; w++) cur[w] = 0;
        for (let w = nlo; w <= top; w++) cur[w] = nxt[w]!;
        lo = nlo;
        hi = Math.min(words - 1, nhi + 1);
        // Closure may carry one word up; nhi + 1 covers it.
        let c2 = 0;
        for (let w = lo; w <= hi; w++) {
          const x = cur[w]! & wild[w]!;
          const out = ((x << 1) | c2) >>> 0;
          c2 = x >>> 31;
          cur[w] = (cur[w]! | out) >>> 0;
        }
      }
      return (cur[acceptWord]! & acceptBit) !== 0;
    },
  };
}

function isInboxRooted(name: string, delim: number): boolean {
  return name.startsWith('INBOX') && (name.length === 5 || name.charCodeAt(5) === delim);
}

function sameChar(a: number, b: number, caseless: boolean): boolean {
  if (a === b) return true;
  if (!caseless) return false;
  const la = a >= 0x41 && a <= 0x5a ? a + 32 : a;
  const lb = b >= 0x41 && b <= 0x5a ? b + 32 : b;
  return la === lb;
}

function inboxEqual(name: string, pattern: string, delim: number): boolean {
  if (!isInboxRooted(name, delim) || name.length !== pattern.length) return false;
  return pattern.slice(0, 5).toUpperCase() === 'INBOX' && pattern.slice(5) === name.slice(5);
}

/**
 * The obvious backtracking matcher, exponential in the number of wildcards:
 * the reference that the property tests compare compileListPattern against
 * on tiny inputs. Never use it on client input.
 */
export function referenceListMatch(pattern: string, name: string, delimiter = '/', inboxCaseless = true): boolean {
  const caseless = inboxCaseless && isInboxRooted(name, delimiter.charCodeAt(0));
  const go = (p: number, s: number): boolean => {
    if (p === pattern.length) return s === name.length;
    const c = pattern[p]!;
    if (c === '*' || c === '%') {
      for (let k = s; k <= name.length; k++) {
        if (go(p + 1, k)) return true;
        if (k < name.length && c === '%' && name[k] === delimiter) return false;
      }
      return false;
    }
    if (s >= name.length) return false;
    const ok = name[s] === c || (caseless && s < 5 && name[s]!.toLowerCase() === c.toLowerCase());
    return ok && go(p + 1, s + 1);
  };
  return go(0, 0);
}
