// Mailbox management: CREATE (RFC 9051 §6.3.4), DELETE (§6.3.5), RENAME
// (§6.3.6), SUBSCRIBE (§6.3.7), UNSUBSCRIBE (§6.3.8), NAMESPACE (§6.3.10, RFC 2342).
import { defineCommand, no, bad } from './types.js';
import { ArgReader, invalidNewMailboxName, SEPARATOR } from './args.js';
import type { MailStore, SpecialUse } from '../store/types.js';
import type { Token } from '../wire/types.js';

/**
 * Create the missing superiors of `name` (RFC 9051 §6.3.4: the server SHOULD
 * create them), then run `last` (the CREATE or RENAME itself). If anything
 * fails — e.g. NO [LIMIT] at the per-user mailbox limit — the superiors
 * created here are removed again, so a refused command leaves nothing behind.
 */
async function withSuperiors<T>(store: MailStore, userId: number, name: string, last: () => Promise<T>): Promise<T> {
  const parts = name.split(SEPARATOR);
  const created: string[] = [];
  try {
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join(SEPARATOR);
      if (!(await store.getMailbox(userId, parent))) {
        try {
          await store.createMailbox(userId, parent);
          created.push(parent);
        } catch (e) {
          if (!(e instanceof Error && (e as { kind?: string }).kind === 'ALREADYEXISTS')) throw e;
        }
      }
    }
    return await last();
  } catch (e) {
    for (const p of created.reverse()) await store.deleteMailbox(userId, p).catch(() => undefined);
    throw e;
  }
}

/**
 * Special uses CREATE can assign (RFC 6154 §2). \All and \Flagged name virtual
 * views of other mailboxes' messages, which this store does not build; a mailbox
 * carries one special use.
 */
const CREATABLE_USES: readonly SpecialUse[] = ['\\Archive', '\\Drafts', '\\Junk', '\\Sent', '\\Trash'];

type CreateUse = { specialUse: SpecialUse | null } | { refused: string };

/** The USE parameter of CREATE (RFC 6154 §3, §6 ABNF: "USE" SP "(" [use-attr *(SP use-attr)] ")"). */
function createUse(params: Token[]): CreateUse {
  let result: CreateUse = { specialUse: null };
  if (params.length % 2 !== 0) throw bad('CREATE parameters come in name/value pairs');
  for (let i = 0; i < params.length; i += 2) {
    const key = params[i];
    const value = params[i + 1];
    if (key.kind !== 'atom' || key.value.toUpperCase() !== 'USE') throw bad('Unknown CREATE parameter');
    if (value.kind !== 'list') throw bad('USE takes a list of special-use attributes');
    const attrs: string[] = [];
    for (const a of value.items) {
      if (a.kind !== 'atom' || !a.value.startsWith('\\') || a.value.length < 2) throw bad('USE takes special-use attributes');
      attrs.push(a.value);
    }
    if (attrs.length === 0) continue;
    if (attrs.length > 1) return { refused: 'A mailbox can have only one special use' };
    const found = CREATABLE_USES.find((u) => u.toLowerCase() === attrs[0].toLowerCase());
    result = found ? { specialUse: found } : { refused: `${attrs[0]} not supported` };
    if (!found) return result;
  }
  return result;
}

export const create = defineCommand({
  name: 'CREATE',
  states: ['auth', 'selected'],
  rfc: 'RFC 9051 §6.3.4',
  parse(args, session) {
    const r = new ArgReader(args);
    let name = r.mailbox(session);
    // RFC 4466 §2.2 create-param list; the only parameter offered is USE (RFC 6154 §3).
    const params = r.optionalList();
    r.end();
    const use = params ? createUse(params) : null;
    // A trailing separator declares intent to create children; the name is created without it.
    while (name.length > 1 && name.endsWith(SEPARATOR)) name = name.slice(0, -1);
    return { name, use };
  },
  async run(ctx, { name, use }) {
    if (name === 'INBOX') throw no('INBOX always exists', 'ALREADYEXISTS');
    const invalid = invalidNewMailboxName(name);
    if (invalid) throw no(invalid, 'CANNOT');
    // RFC 6154 §3: a special use the server cannot assign means no mailbox, NO [USEATTR].
    if (use && 'refused' in use) throw no(use.refused, 'USEATTR');
    const userId = ctx.session.user!.id;
    if (await ctx.store.getMailbox(userId, name)) throw no('Mailbox already exists', 'ALREADYEXISTS');
    const created = await withSuperiors(ctx.store, userId, name, () => ctx.store.createMailbox(userId, name, use?.specialUse ?? null));
    // RFC 8474 §4.1: the new mailbox's MAILBOXID in the tagged OK.
    return { code: `MAILBOXID (${created.objectId})`, text: 'CREATE completed' };
  },
});

export const del = defineCommand({
  name: 'DELETE',
  states: ['auth', 'selected'],
  rfc: 'RFC 9051 §6.3.5',
  parse(args, session) {
    const r = new ArgReader(args);
    const name = r.mailbox(session);
    r.end();
    return { name };
  },
  async run(ctx, { name }) {
    if (name === 'INBOX') throw no('INBOX cannot be deleted', 'CANNOT');
    const userId = ctx.session.user!.id;
    const all = await ctx.store.listMailboxes(userId);
    if (!all.some((m) => m.name === name)) throw no('Mailbox does not exist', 'NONEXISTENT');
    // RFC 9051 §6.3.5: a server that does not delete names with inferiors answers NO [HASCHILDREN].
    if (all.some((m) => m.name.startsWith(name + SEPARATOR))) throw no('Mailbox has children; delete them first', 'HASCHILDREN');
    const sel = ctx.session.selected;
    if (sel && sel.mailboxName === name) {
      // Deleting the selected mailbox leaves the session in authenticated state (as Dovecot does).
      ctx.session.selected = null;
      ctx.session.state = 'auth';
      if (ctx.session.rev2) ctx.out.untagged('OK [CLOSED] Mailbox closed');
    }
    await ctx.store.deleteMailbox(userId, name);
    return { text: 'DELETE completed' };
  },
});

export const rename = defineCommand({
  name: 'RENAME',
  states: ['auth', 'selected'],
  rfc: 'RFC 9051 §6.3.6',
  parse(args, session) {
    const r = new ArgReader(args);
    const from = r.mailbox(session, 'existing mailbox name');
    let to = r.mailbox(session, 'new mailbox name');
    r.end();
    while (to.length > 1 && to.endsWith(SEPARATOR)) to = to.slice(0, -1);
    return { from, to };
  },
  async run(ctx, { from, to }) {
    const userId = ctx.session.user!.id;
    const invalid = invalidNewMailboxName(to);
    if (invalid) throw no(invalid, 'CANNOT');
    if (!(await ctx.store.getMailbox(userId, from))) throw no('Mailbox does not exist', 'NONEXISTENT');
    if (from === to) throw no('Source and destination are the same', 'ALREADYEXISTS');
    if (await ctx.store.getMailbox(userId, to)) throw no('Destination mailbox already exists', 'ALREADYEXISTS');
    if (to.startsWith(from + SEPARATOR) && from !== 'INBOX') throw no('Cannot move a mailbox into itself', 'CANNOT');
    if (from !== 'INBOX') {
      // RFC 9051 §6.3.6: the inferiors move too, so their new names must be valid as well
      // (checked before anything is created, so a refused RENAME leaves no superiors behind).
      for (const m of await ctx.store.listMailboxes(userId)) {
        if (!m.name.startsWith(from + SEPARATOR)) continue;
        const bad = invalidNewMailboxName(to + m.name.slice(from.length));
        if (bad) throw no(`Cannot rename inferior mailbox: ${bad}`, 'CANNOT');
      }
    }
    await withSuperiors(ctx.store, userId, to, () => ctx.store.renameMailbox(userId, from, to));
    return { text: 'RENAME completed' };
  },
});

function subscription(name: 'SUBSCRIBE' | 'UNSUBSCRIBE') {
  return defineCommand({
    name,
    states: ['auth', 'selected'],
    rfc: name === 'SUBSCRIBE' ? 'RFC 9051 §6.3.7' : 'RFC 9051 §6.3.8',
    parse(args, session) {
      const r = new ArgReader(args);
      const mailbox = r.mailbox(session);
      r.end();
      if (mailbox.length === 0) throw bad('Empty mailbox name');
      return { mailbox };
    },
    async run(ctx, { mailbox }) {
      const userId = ctx.session.user!.id;
      if (name === 'SUBSCRIBE') {
        // RFC 9051 §6.3.7: the server MAY validate that the mailbox exists; we do, as Dovecot does.
        if (!(await ctx.store.getMailbox(userId, mailbox))) throw no('Mailbox does not exist', 'NONEXISTENT');
        await ctx.store.setSubscribed(userId, mailbox, true);
      } else {
        // RFC 9051 §6.3.8: unsubscribing a name that is not subscribed is not an error here (idempotent).
        await ctx.store.setSubscribed(userId, mailbox, false);
      }
      return { text: `${name} completed` };
    },
  });
}

export const subscribe = subscription('SUBSCRIBE');
export const unsubscribe = subscription('UNSUBSCRIBE');

export const namespace = defineCommand({
  name: 'NAMESPACE',
  states: ['auth', 'selected'],
  rfc: 'RFC 9051 §6.3.10, RFC 2342',
  parse(args) {
    new ArgReader(args).end();
  },
  async run(ctx) {
    // One personal namespace with an empty prefix, no other users', no shared.
    ctx.out.untagged(`NAMESPACE (("" "${SEPARATOR}")) NIL NIL`);
  },
});
