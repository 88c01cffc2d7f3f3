// GETMETADATA and SETMETADATA — RFC 5464 (METADATA, METADATA-SERVER).
//
// Mailboxes have one owner, so /private and /shared entries are both the
// owner's; server entries (mailbox "") are kept per user too (there is no
// administrator role for shared server data). /private/specialuse is the
// mailbox's special-use attribute (RFC 6154 §4), validated on SETMETADATA.
// /shared/admin is read-only (RFC 5464 §3.2.1.1) and has no value.
import { defineCommand, bad, no, type CommandContext } from './types.js';
import { ArgReader, astringBytes, isAtom, isList, mailboxName, parseNumber } from './args.js';
import { mbox } from './format.js';
import { literal, nstring, string } from '../wire/index.js';
import type { SpecialUse } from '../store/types.js';
import type { Token } from '../wire/types.js';

/** Largest annotation value accepted by SETMETADATA, in octets ([METADATA MAXSIZE n]). */
export const MAX_METADATA_VALUE = 64 * 1024;
/** Annotations one user may keep on one mailbox (or on the server) ([METADATA TOOMANY]). */
export const MAX_METADATA_PER_MAILBOX = 256;
/** Annotations one user may keep in all ([METADATA TOOMANY]). */
export const MAX_METADATA_PER_USER = 10_000;
/** Longest entry name, in octets. */
export const MAX_METADATA_ENTRY_NAME = 1024;
/** Most entries named in one GETMETADATA or set by one SETMETADATA. */
export const MAX_METADATA_ENTRIES_PER_COMMAND = 256;

const SPECIAL_USE_ENTRY = '/private/specialuse';
const ADMIN_ENTRY = '/shared/admin';
const SPECIAL_USES: readonly SpecialUse[] = ['\\All', '\\Archive', '\\Drafts', '\\Flagged', '\\Junk', '\\Sent', '\\Trash'];

/** RFC 5464 §3.2: a valid entry name, lower-cased (names are case-insensitive); BAD otherwise. */
export function entryName(t: Token): string {
  const bytes = astringBytes(t, 'entry name');
  if (bytes.length > MAX_METADATA_ENTRY_NAME) throw bad('Entry name too long');
  for (const b of bytes) {
    // No non-ASCII, no 0x00-0x19, no "*" or "%".
    if (b < 0x20 || b > 0x7e || b === 0x2a || b === 0x25) throw bad('Invalid character in entry name');
  }
  const name = bytes.toString('latin1').toLowerCase();
  if (!name.startsWith('/private/') && !name.startsWith('/shared/')) throw bad('Entry name must begin with /private/ or /shared/');
  if (name.includes('//')) throw bad('Entry name must not contain "//"');
  if (name.endsWith('/')) throw bad('Entry name must not end with "/"');
  return name;
}

/** An entry name given to GETMETADATA, where "/private" and "/shared" alone are allowed with DEPTH. */
function requestedEntry(t: Token): string {
  const bytes = astringBytes(t, 'entry name');
  const lower = bytes.toString('latin1').toLowerCase();
  if (lower === '/private' || lower === '/shared') return lower;
  return entryName(t);
}

/** The mailbox argument: null for "" (server annotations), else the mailbox name. */
function target(t: Token, ctx: { session: CommandContext['session'] }): string | null {
  if (astringBytes(t, 'mailbox name').length === 0) return null;
  return mailboxName(t, ctx.session);
}

interface GetArgs {
  mailbox: Token;
  maxSize: number | null;
  depth: 0 | 1 | 'infinity';
  entries: string[];
}

function parseOptions(items: Token[], out: GetArgs): void {
  for (let i = 0; i < items.length; i++) {
    const t = items[i];
    const v = items[++i];
    if (isAtom(t, 'MAXSIZE') && isAtom(v)) out.maxSize = parseNumber(v.value, 'MAXSIZE');
    else if (isAtom(t, 'DEPTH') && isAtom(v)) {
      const d = v.value.toLowerCase();
      if (d === '0') out.depth = 0;
      else if (d === '1') out.depth = 1;
      else if (d === 'infinity') out.depth = 'infinity';
      else throw bad('DEPTH must be 0, 1 or infinity');
    } else throw bad('Unknown GETMETADATA option');
  }
}

function valueOf(v: Buffer): string | Buffer | Buffer[] {
  // RFC 5464 §5: value = nstring / literal8; a NUL can only travel in a literal8.
  return v.includes(0) ? literal(v, true) : string(v, true);
}

export const getmetadata = defineCommand({
  name: 'GETMETADATA',
  states: ['auth', 'selected'],
  rfc: 'RFC 5464 §4.2',
  parse(args) {
    const r = new ArgReader(args);
    const out: GetArgs = { mailbox: undefined as never, maxSize: null, depth: 0, entries: [] };
    // RFC 5464 §5: options come before the mailbox (as Dovecot requires).
    const opts = r.optionalList();
    if (opts) parseOptions(opts, out);
    out.mailbox = r.next('mailbox name');
    const e = r.next('entries');
    const list = isList(e) ? e.items : [e];
    r.end();
    if (list.length === 0) throw bad('Missing entry names');
    if (list.length > MAX_METADATA_ENTRIES_PER_COMMAND) throw bad('Too many entry names', 'LIMIT');
    out.entries = list.map(requestedEntry);
    return out;
  },
  async run(ctx, a) {
    const userId = ctx.session.user!.id;
    const name = target(a.mailbox, ctx);
    const info = name === null ? null : await ctx.store.getMailbox(userId, name);
    if (name !== null && !info) throw no('Mailbox does not exist', 'NONEXISTENT');
    const stored = await ctx.store.getAnnotations(userId, info?.id ?? null, a.entries, a.depth);
    const values = new Map<string, Buffer | null>(stored.map((s) => [s.entry, s.value]));
    // RFC 6154 §4: the mailbox's special use, whatever the table says.
    const wantsSpecialUse = a.entries.some((e) => e === SPECIAL_USE_ENTRY || (a.depth !== 0 && SPECIAL_USE_ENTRY.startsWith(e + '/') && (a.depth === 'infinity' || e === '/private')));
    if (info && wantsSpecialUse && info.specialUse) values.set(SPECIAL_USE_ENTRY, Buffer.from(info.specialUse, 'latin1'));
    // Entries asked for that hold no value are answered NIL, as Dovecot does.
    for (const e of a.entries) {
      if (e === '/private' || e === '/shared') continue;
      if (!values.has(e) && ![...values.keys()].some((k) => k.startsWith(e + '/'))) values.set(e, null);
    }
    if (name === null && values.has(ADMIN_ENTRY)) values.set(ADMIN_ENTRY, null);
    let longest = 0;
    const parts: (string | Buffer)[] = [];
    for (const k of [...values.keys()].sort()) {
      const v = values.get(k) ?? null;
      // RFC 5464 §4.2.1: entries above MAXSIZE are left out and the largest size is reported.
      if (v && a.maxSize !== null && v.length > a.maxSize) {
        longest = Math.max(longest, v.length);
        continue;
      }
      parts.push(parts.length ? ` ${k} ` : `${k} `);
      const enc = v === null ? nstring(null) : valueOf(v);
      if (Array.isArray(enc)) parts.push(...enc);
      else parts.push(enc);
    }
    const boxName = name === null ? '""' : mbox(ctx.session, info!.name);
    if (parts.length) ctx.out.untagged([`METADATA ${boxName} (`, ...parts, ')']);
    return longest > 0 ? { code: `METADATA LONGENTRIES ${longest}`, text: 'GETMETADATA completed' } : { text: 'GETMETADATA completed' };
  },
});

export const setmetadata = defineCommand({
  name: 'SETMETADATA',
  states: ['auth', 'selected'],
  rfc: 'RFC 5464 §4.3',
  parse(args) {
    const r = new ArgReader(args);
    const mailbox = r.next('mailbox name');
    const list = r.list('entry values');
    r.end();
    if (list.length === 0 || list.length % 2 !== 0) throw bad('Expected entry and value pairs');
    if (list.length / 2 > MAX_METADATA_ENTRIES_PER_COMMAND) throw bad('Too many entries', 'LIMIT');
    const items: { entry: string; value: Buffer | null }[] = [];
    for (let i = 0; i < list.length; i += 2) {
      const entry = entryName(list[i]!);
      const v = list[i + 1]!;
      let value: Buffer | null;
      if (isAtom(v, 'NIL')) value = null;
      else if (v.kind === 'string') value = v.bytes;
      else throw bad('Expected a value (string, literal or NIL)');
      items.push({ entry, value });
    }
    return { mailbox, items };
  },
  async run(ctx, { mailbox, items }) {
    const userId = ctx.session.user!.id;
    const name = target(mailbox, ctx);
    const info = name === null ? null : await ctx.store.getMailbox(userId, name);
    if (name !== null && !info) throw no('Mailbox does not exist', 'NONEXISTENT');
    // Everything is checked before anything changes (RFC 5464 §4.3: all or nothing).
    let specialUse: SpecialUse | null | undefined;
    const rest: typeof items = [];
    for (const it of items) {
      if (it.value && it.value.length > MAX_METADATA_VALUE) throw no('Value too large', `METADATA MAXSIZE ${MAX_METADATA_VALUE}`);
      if (name === null && it.entry === ADMIN_ENTRY) throw no('/shared/admin is read-only', 'NOPERM');
      if (info && it.entry === SPECIAL_USE_ENTRY) {
        specialUse = parseSpecialUse(it.value);
        continue;
      }
      rest.push(it);
    }
    try {
      if (rest.length) {
        await ctx.store.setAnnotations(userId, info?.id ?? null, rest, { maxEntries: MAX_METADATA_PER_MAILBOX, maxPerUser: MAX_METADATA_PER_USER });
      }
      if (specialUse !== undefined) await ctx.store.setSpecialUse(info!.id, specialUse);
    } catch (err) {
      if (err instanceof Error && err.name === 'StoreError' && (err as { kind?: string }).kind === 'LIMIT') throw no('Too many annotations', 'METADATA TOOMANY');
      throw err;
    }
    return { text: 'SETMETADATA completed' };
  },
});

/** RFC 6154 §4: the value is the mailbox's special-use attributes; Quire keeps one per mailbox. */
function parseSpecialUse(v: Buffer | null): SpecialUse | null {
  if (v === null) return null;
  const text = v.toString('latin1').trim();
  if (text === '') return null;
  const words = text.split(/\s+/);
  if (words.length > 1) throw no('One special-use attribute per mailbox', 'USEATTR');
  const found = SPECIAL_USES.find((u) => u.toLowerCase() === words[0]!.toLowerCase());
  // RFC 6154 §6: an attribute the server does not support is refused with [USEATTR].
  if (!found) throw no('Unknown special-use attribute', 'USEATTR');
  return found;
}
