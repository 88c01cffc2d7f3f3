// ESEARCH — MULTISEARCH (RFC 7377): one search over several mailboxes,
// without selecting them. Source options are RFC 5465 §6's filter-mailboxes
// (selected, inboxes, personal, subscribed, subtree, mailboxes) plus RFC 7377
// §2.2's subtree-one; every answer is an ESEARCH response with the TAG,
// MAILBOX and UIDVALIDITY correlators and UIDs (§2.1), and a mailbox without
// matches gets none. RETURN options as for SEARCH (RFC 4731, RFC 5267 PARTIAL
// per mailbox); SAVE and UPDATE only with "selected" as the sole source.
import { refuseSearchCharset } from './utf8.js';
import { defineCommand, bad, no, type CommandContext } from './types.js';
import { ArgReader, isAtom, isList, mailboxName, SEPARATOR } from './args.js';
import type { Token } from '../wire/types.js';
import type { Session } from '../session/session.js';
import { usesModseq, type Criterion } from '../search/program.js';
import { enableCondstore } from './condstore.js';
import { badCharset, esearchLine, findMatchesIn, parseCriteria, parseReturn, savedOf, viewScope, type ReturnSpec, type SearchScope } from './results.js';
import { mbox } from './format.js';

/** Most mailboxes one ESEARCH searches (each is a search of its own); more answer NO [LIMIT]. */
export const MAX_MULTISEARCH_MAILBOXES = 1000;
/** Most source specifiers in one IN (...). */
const MAX_SOURCES = 64;

type Source =
  | { k: 'selected' | 'inboxes' | 'personal' | 'subscribed' }
  | { k: 'subtree' | 'subtree-one' | 'mailboxes'; names: string[] };

interface EsearchArgs {
  sources: Source[];
  ret: ReturnSpec | null;
  program: Criterion | null;
}

function oneOrMore(r: ArgReader, session: Session): string[] {
  const t = r.peek();
  if (isList(t)) {
    r.next('mailboxes');
    if (t.items.length === 0) throw bad('Empty mailbox list');
    return t.items.map((m) => mailboxName(m, session));
  }
  return [r.mailbox(session)];
}

function parseSources(items: Token[], session: Session): Source[] {
  const r = new ArgReader(items);
  const out: Source[] = [];
  while (!r.done) {
    const t = r.peek();
    // RFC 7377 §4: an optional list of scope options ends the sources; none is defined.
    if (isList(t)) {
      r.next('scope options');
      if (!r.done) throw bad('Scope options must come last');
      if (t.items.length > 0) throw bad('Unknown scope option');
      break;
    }
    const name = r.atom('source').toLowerCase();
    if (out.length >= MAX_SOURCES) throw bad('Too many source options');
    switch (name) {
      case 'selected': case 'inboxes': case 'personal': case 'subscribed':
        out.push({ k: name });
        break;
      case 'subtree': case 'subtree-one': case 'mailboxes':
        out.push({ k: name, names: oneOrMore(r, session) });
        break;
      case 'selected-delayed':
        throw bad('selected-delayed is not valid in ESEARCH (RFC 7377 §2.2)');
      default:
        throw bad(`Unknown source option ${name.slice(0, 30)}`);
    }
  }
  if (out.length === 0) throw bad('Missing source options');
  return out;
}

export const esearch = defineCommand<EsearchArgs>({
  name: 'ESEARCH',
  states: ['auth', 'selected'],
  rfc: 'RFC 7377 §2, RFC 5465 §6, RFC 4731',
  // Answers carry UIDs only, so EXPUNGEs may go out meanwhile.
  expungeAllowed: true,
  parse(args, session) {
    const r = new ArgReader(args);
    let sources: Source[] = [{ k: 'selected' }];
    if (isAtom(r.peek(), 'IN')) {
      r.next('IN');
      sources = parseSources(r.list('source options'), session);
    }
    const ret = parseReturn(r);
    let charset = 'UTF-8';
    if (isAtom(r.peek(), 'CHARSET')) {
      r.next('CHARSET');
      refuseSearchCharset(session); // RFC 6855 §3
      charset = r.astringText('charset');
    }
    if (r.done) throw bad('Missing search criteria');
    const onlySelected = sources.every((x) => x.k === 'selected');
    // RFC 7377 §2.2: SAVE and UPDATE only when the selected mailbox alone is searched.
    if (!onlySelected && ret && (ret.opts.includes('SAVE') || ret.opts.includes('UPDATE'))) throw bad('SAVE and UPDATE need "selected" as the only source');
    if (ret?.opts.includes('UPDATE')) throw bad('Use SEARCH RETURN (UPDATE) for updates of the selected mailbox');
    if (sources.some((x) => x.k === 'selected') && session.state !== 'selected') throw bad('No mailbox selected');
    return { sources, ret, program: parseCriteria(r, charset).program };
  },
  async run(ctx, a) {
    return runEsearch(ctx, a);
  },
});

/** The mailboxes the sources name (existing ones, each once, in the order first named). */
async function resolve(ctx: CommandContext, sources: Source[]): Promise<{ id: number; name: string; uidValidity: number }[]> {
  const s = ctx.session;
  const all = await ctx.store.listMailboxes(s.user!.id);
  const byName = new Map(all.map((m) => [m.name, m]));
  const out = new Map<number, { id: number; name: string; uidValidity: number }>();
  const add = (m: { id: number; name: string; uidValidity: number } | undefined) => {
    if (m && !out.has(m.id)) out.set(m.id, { id: m.id, name: m.name, uidValidity: m.uidValidity });
  };
  for (const src of sources) {
    switch (src.k) {
      case 'selected': {
        const v = s.selected!;
        add({ id: v.mailboxId, name: v.mailboxName, uidValidity: v.uidValidity });
        break;
      }
      // Mail is delivered to INBOX only.
      case 'inboxes': add(byName.get('INBOX')); break;
      case 'personal': for (const m of all) add(m); break;
      case 'subscribed': for (const m of all) if (m.subscribed) add(m); break;
      case 'mailboxes': for (const n of src.names) add(byName.get(n)); break;
      case 'subtree': case 'subtree-one':
        for (const n of src.names) {
          add(byName.get(n));
          const prefix = n + SEPARATOR;
          for (const m of all) {
            if (!m.name.startsWith(prefix)) continue;
            if (src.k === 'subtree-one' && m.name.slice(prefix.length).includes(SEPARATOR)) continue;
            add(m);
          }
        }
        break;
    }
    if (out.size > MAX_MULTISEARCH_MAILBOXES) throw no(`ESEARCH searches at most ${MAX_MULTISEARCH_MAILBOXES} mailboxes`, 'LIMIT');
  }
  return [...out.values()];
}

async function runEsearch(ctx: CommandContext, a: EsearchArgs) {
  const s = ctx.session;
  const saving = a.ret?.opts.includes('SAVE') ?? false;
  if (!a.program) {
    if (saving) s.savedSearch = [];
    badCharset();
  }
  const program = a.program;
  const withModseq = usesModseq(program);
  if (withModseq) enableCondstore(ctx);
  // RFC 7377 §2.1: source options without result options mean ALL.
  const ret: ReturnSpec = a.ret ?? { opts: ['ALL'] };
  const boxes = await resolve(ctx, a.sources);
  for (const box of boxes) {
    const selected = s.selected?.mailboxId === box.id;
    let scope: SearchScope;
    if (selected) scope = viewScope(s);
    else {
      // Not selected: the mailbox as stored; nothing is \Recent for this session and "$" is the selected mailbox's.
      const uids = await ctx.store.listUids(box.id).catch(() => null);
      if (!uids) continue; // deleted meanwhile
      const present = new Set(uids);
      scope = { mailboxId: box.id, uids, recent: new Set(), saved: [], has: (u) => present.has(u) };
    }
    let found;
    try {
      found = await findMatchesIn(ctx.store, scope, program, withModseq);
    } catch (e) {
      if (saving) s.savedSearch = [];
      if ((e as { kind?: string })?.kind === 'NONEXISTENT') continue;
      throw e;
    }
    if (saving && selected) s.savedSearch = savedOf(ret, found.uids);
    // RFC 7377 §2.1: no response for a mailbox without matches.
    if (found.uids.length === 0) continue;
    if (saving && ret.opts.length === 1) continue;
    const meta = found.meta;
    const highest = (uids: readonly number[]) => uids.reduce((mx, u) => Math.max(mx, meta.get(u)?.modseq ?? 0), 0);
    // The correlator gains MAILBOX and UIDVALIDITY (RFC 7377 §2.1).
    const correlators = `MAILBOX ${mbox(s, box.name)} UIDVALIDITY ${box.uidValidity}`;
    ctx.out.untagged(esearchLine(ctx.tag, ret, { result: found.uids, num: (u) => u, uidMode: true, modseq: withModseq ? highest : undefined, correlators }));
    await new Promise<void>((r) => setImmediate(r));
  }
  return { text: 'ESEARCH completed' };
}
