// LIST — RFC 9051 §6.3.9 with LIST-EXTENDED (RFC 5258), LIST-STATUS
// (RFC 5819), SPECIAL-USE (RFC 6154) and CHILDREN (RFC 3348) attributes;
// LSUB — RFC 3501 §6.3.9 (rev1 only, RFC 9051 Appendix E).
import { defineCommand, bad, no } from './types.js';
import { compileListPattern, MAX_LIST_PATTERN_LENGTH, PatternTooLongError, type NameMatcher } from './list-match.js';
import type { CommandContext } from './types.js';
import type { Token } from '../wire/types.js';
import { ArgReader, astringBytes, isAtom, normaliseInbox, SEPARATOR } from './args.js';
import { mbox } from './format.js';
import { decodeMutf7 } from '../wire/index.js';
import type { MailboxInfo } from '../store/types.js';
import { parseStatusItems, statusLine, statusValues, type StatusItem } from './status.js';
import type { Session } from '../session/session.js';

/** Most patterns in one LIST-EXTENDED command. */
const MAX_LIST_PATTERNS = 64;

interface ListArgs {
  /** null: a reference or pattern that names no mailbox (see patternText). */
  ref: string | null;
  patterns: (string | null)[];
  selSubscribed: boolean;
  selRemote: boolean;
  recursiveMatch: boolean;
  selSpecialUse: boolean;
  retSubscribed: boolean;
  retChildren: boolean;
  retSpecialUse: boolean;
  retStatus: StatusItem[] | null;
  extended: boolean;
}

/**
 * The text of a reference or pattern, or null when it cannot name any mailbox:
 * not valid modified UTF-7 for an IMAP4rev1 session (RFC 3501 §5.1.3), or not
 * valid UTF-8. Such a LIST/LSUB answers OK with no match, as Dovecot does
 * (RFC 9051 §6.3.9: the reply lists what matches; nothing does).
 */
function patternText(t: Token, session: Session): string | null {
  const bytes = astringBytes(t, 'mailbox pattern');
  const text = bytes.toString('utf8');
  if (!Buffer.from(text, 'utf8').equals(bytes)) return null;
  if (session.utf8Names) return text;
  if (bytes.some((b) => b > 0x7f)) return null;
  if (!text.includes('&')) return text;
  try {
    return decodeMutf7(text);
  } catch {
    return null;
  }
}

/**
 * Turn a LIST pattern into a matcher: "*" matches anything, "%" anything but
 * the separator. The INBOX level matches case-insensitively (RFC 9051 §5.1:
 * INBOX is a case-insensitive name), so "inb%" and "*box" find INBOX, as in
 * Dovecot; every other level is case-sensitive. Linear-time, no RegExp
 * (list-match.ts); a pattern over MAX_LIST_PATTERN_LENGTH is NO [LIMIT].
 */
export function patternMatcher(pattern: string): NameMatcher {
  try {
    return compileListPattern(normaliseInbox(pattern), SEPARATOR);
  } catch (e) {
    if (e instanceof PatternTooLongError) throw no(`List pattern too long (at most ${MAX_LIST_PATTERN_LENGTH} characters)`, 'LIMIT');
    throw e;
  }
}

export const list = defineCommand<ListArgs>({
  name: 'LIST',
  states: ['auth', 'selected'],
  rfc: 'RFC 9051 §6.3.9, RFC 5258, RFC 5819, RFC 6154',
  parse(args, session) {
    const r = new ArgReader(args);
    const a: ListArgs = {
      ref: '', patterns: [], selSubscribed: false, selRemote: false, recursiveMatch: false, selSpecialUse: false,
      retSubscribed: false, retChildren: false, retSpecialUse: false, retStatus: null, extended: false,
    };
    const sel = r.optionalList();
    if (sel) {
      a.extended = true;
      for (const t of sel) {
        if (!isAtom(t)) throw bad('Invalid selection option');
        const o = t.value.toUpperCase();
        if (o === 'SUBSCRIBED') a.selSubscribed = true;
        else if (o === 'REMOTE') a.selRemote = true;
        else if (o === 'RECURSIVEMATCH') a.recursiveMatch = true;
        else if (o === 'SPECIAL-USE') a.selSpecialUse = true;
        else throw bad(`Unknown selection option ${o.slice(0, 30)}`); // RFC 5258 §3.1: unknown option → BAD
      }
      // RFC 5258 §3.1: RECURSIVEMATCH alone is an error.
      if (a.recursiveMatch && !a.selSubscribed && !a.selSpecialUse) throw bad('RECURSIVEMATCH needs another selection option');
    }
    a.ref = patternText(r.next('reference name'), session);
    const pat = r.next('mailbox pattern');
    if (pat.kind === 'list') {
      a.extended = true;
      if (pat.items.length === 0 || pat.items.length > MAX_LIST_PATTERNS) throw bad('Invalid pattern list');
      for (const p of pat.items) a.patterns.push(patternText(p, session));
    } else {
      a.patterns.push(patternText(pat, session));
    }
    if (!r.done) {
      if (!isAtom(r.next('RETURN'), 'RETURN')) throw bad('Expected RETURN');
      a.extended = true;
      const opts = r.list('return options');
      for (let i = 0; i < opts.length; i++) {
        const t = opts[i];
        if (!isAtom(t)) throw bad('Invalid return option');
        const o = t.value.toUpperCase();
        if (o === 'SUBSCRIBED') a.retSubscribed = true;
        else if (o === 'CHILDREN') a.retChildren = true;
        else if (o === 'SPECIAL-USE') a.retSpecialUse = true;
        else if (o === 'STATUS') {
          const items = opts[++i];
          if (!items || items.kind !== 'list') throw bad('STATUS needs a list of items');
          a.retStatus = parseStatusItems(items.items);
        } else throw bad(`Unknown return option ${o.slice(0, 30)}`);
      }
      r.end();
    }
    return a;
  },
  async run(ctx, a) {
    await runList(ctx, a, 'LIST');
  },
});

export const lsub = defineCommand({
  name: 'LSUB',
  states: ['auth', 'selected'],
  rfc: 'RFC 3501 §6.3.9',
  parse(args, session) {
    const r = new ArgReader(args);
    const ref = patternText(r.next('reference name'), session);
    const pattern = patternText(r.next('mailbox pattern'), session);
    r.end();
    return { ref, pattern };
  },
  async run(ctx, { ref, pattern }) {
    if (ref === null || pattern === null) return; // RFC 3501 §6.3.9: no name matches
    const userId = ctx.session.user!.id;
    const subs = await ctx.store.listSubscriptions(userId);
    const all = new Map((await ctx.store.listMailboxes(userId)).map((m) => [m.name, m]));
    const re = patternMatcher(ref + pattern);
    const out = new Map<string, boolean>(); // name -> noselect
    for (const name of subs) {
      if (re.test(name)) out.set(name, !all.has(name));
      else if (pattern.endsWith('%')) {
        // RFC 3501 §6.3.9: a "%" that matches an unsubscribed superior of a subscribed name returns it \Noselect.
        const parts = name.split(SEPARATOR);
        for (let i = parts.length - 1; i > 0; i--) {
          const parent = parts.slice(0, i).join(SEPARATOR);
          if (re.test(parent) && !out.has(parent)) out.set(parent, !subs.includes(parent));
        }
      }
    }
    for (const [name, noselect] of [...out].sort((x, y) => cmpNames(x[0], y[0]))) {
      ctx.out.untagged(`LSUB (${noselect ? '\\Noselect' : ''}) "${SEPARATOR}" ${mbox(ctx.session, name)}`);
    }
  },
});

function cmpNames(a: string, b: string): number {
  if (a === 'INBOX') return -1;
  if (b === 'INBOX') return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Names that have at least one child, computed once per command (O(names × depth), not names²). */
export function parentsOf(names: Iterable<string>): Set<string> {
  const parents = new Set<string>();
  for (const n of names) {
    for (let i = n.indexOf(SEPARATOR); i >= 0; i = n.indexOf(SEPARATOR, i + 1)) parents.add(n.slice(0, i));
  }
  return parents;
}

export async function mailboxAttributes(all: Map<string, MailboxInfo>, name: string, parents: Set<string> = parentsOf(all.keys())): Promise<string[]> {
  const attrs: string[] = [];
  const info = all.get(name);
  attrs.push(parents.has(name) ? '\\HasChildren' : '\\HasNoChildren');
  if (info?.specialUse) attrs.push(info.specialUse);
  return attrs;
}

async function runList(ctx: CommandContext, a: ListArgs, _verb: 'LIST'): Promise<void> {
  const s = ctx.session;
  const userId = s.user!.id;
  // RFC 9051 §6.3.9: an empty pattern asks for the hierarchy delimiter and root name.
  // (With the extended syntax Dovecot answers nothing for "", and so do we.)
  if (a.patterns.length === 1 && a.patterns[0] === '' && !a.extended) {
    ctx.out.untagged(`LIST (\\Noselect) "${SEPARATOR}" ""`);
    return;
  }
  if (a.ref === null) return; // a reference that names no mailbox: nothing matches
  const ref = a.ref;
  const mailboxes = await ctx.store.listMailboxes(userId);
  const all = new Map(mailboxes.map((m) => [m.name, m]));
  const parents = parentsOf(all.keys());
  const subs = new Set(a.selSubscribed || a.retSubscribed ? await ctx.store.listSubscriptions(userId) : []);
  const res = a.patterns.filter((p): p is string => p !== '' && p !== null).map((p) => patternMatcher(ref + p));
  const matches = (n: string) => res.some((re) => re.test(n));
  const filtered = a.selSubscribed || a.selSpecialUse;
  /** RFC 5258 §3.1: selection options combine; a name must satisfy all of them. */
  const satisfies = (n: string) => (!a.selSubscribed || subs.has(n)) && (!a.selSpecialUse || !!all.get(n)?.specialUse);
  const attributesOf = async (n: string): Promise<string[]> => {
    const attrs = all.has(n) ? await mailboxAttributes(all, n, parents) : ['\\NonExistent'];
    if (subs.has(n) && (a.selSubscribed || a.retSubscribed)) attrs.push('\\Subscribed');
    return attrs;
  };

  const rows = new Map<string, { attrs: string[]; childinfo: boolean }>();
  // Names that satisfy the selection: every mailbox, or the subscribed names (which may not exist).
  const selected = [...new Set<string>(a.selSubscribed ? [...subs] : all.keys())].filter(satisfies);
  for (const n of selected) {
    if (matches(n)) rows.set(n, { attrs: await attributesOf(n), childinfo: false });
  }
  if (filtered) {
    if (a.recursiveMatch) {
      // RFC 5258 §3.5: a name matching the pattern that has a descendant satisfying the
      // selection carries CHILDINFO. One that does not satisfy the selection itself is
      // returned only if such a descendant is not returned anyway (§3.3 rule 2B), as Dovecot does.
      const superiors = new Map<string, boolean>(); // name -> has a selected descendant outside the pattern
      for (const n of selected) {
        const parts = n.split(SEPARATOR);
        for (let i = 1; i < parts.length; i++) {
          const p = parts.slice(0, i).join(SEPARATOR);
          if (!matches(p)) continue;
          superiors.set(p, (superiors.get(p) ?? false) || !matches(n));
        }
      }
      for (const [p, unreturned] of superiors) {
        const row = rows.get(p);
        if (row) row.childinfo = true;
        else if (unreturned) rows.set(p, { attrs: await attributesOf(p), childinfo: true });
      }
    }
  } else {
    // Superiors that exist only as part of other names are listed \Noselect.
    for (const n of all.keys()) {
      const parts = n.split(SEPARATOR);
      for (let i = 1; i < parts.length; i++) {
        const p = parts.slice(0, i).join(SEPARATOR);
        if (!rows.has(p) && !all.has(p) && matches(p)) rows.set(p, { attrs: ['\\Noselect', '\\HasChildren'], childinfo: false });
      }
    }
  }
  const criteria = [a.selSubscribed ? '"SUBSCRIBED"' : '', a.selSpecialUse ? '"SPECIAL-USE"' : ''].filter(Boolean).join(' ');
  for (const [n, row] of [...rows].sort((x, y) => cmpNames(x[0], y[0]))) {
    let line = `LIST (${row.attrs.join(' ')}) "${SEPARATOR}" ${mbox(s, n)}`;
    if (row.childinfo) line += ` ("CHILDINFO" (${criteria}))`;
    ctx.out.untagged(line);
    const info = all.get(n);
    // RFC 5819 §2: STATUS follows the LIST of each selectable mailbox.
    if (a.retStatus && info && !row.attrs.includes('\\Noselect') && !row.attrs.includes('\\NonExistent')) {
      ctx.out.untagged(statusLine(s, n, await statusValues(ctx.store, info.id, a.retStatus), a.retStatus));
    }
  }
}
