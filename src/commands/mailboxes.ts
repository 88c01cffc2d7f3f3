// Mailbox management: CREATE (RFC 9051 §6.3.4), DELETE (§6.3.5), RENAME
// (§6.3.6), SUBSCRIBE (§6.3.7), UNSUBSCRIBE (§6.3.8), NAMESPACE (§6.3.10, RFC 2342).
import { defineCommand, no, bad } from './types.js';
import { ArgReader, invalidNewMailboxName, SEPARATOR } from './args.js';
import type { MailStore } from '../store/types.js';

/** Create the missing superiors of `name` (RFC 9051 §6.3.4: the server SHOULD create them). */
async function createSuperiors(store: MailStore, userId: number, name: string): Promise<void> {
  const parts = name.split(SEPARATOR);
  for (let i = 1; i < parts.length; i++) {
    const parent = parts.slice(0, i).join(SEPARATOR);
    if (!(await store.getMailbox(userId, parent))) {
      try {
        await store.createMailbox(userId, parent);
      } catch (e) {
        if (!(e instanceof Error && (e as { kind?: string }).kind === 'ALREADYEXISTS')) throw e;
      }
    }
  }
}

export const create = defineCommand({
  name: 'CREATE',
  states: ['auth', 'selected'],
  rfc: 'RFC 9051 §6.3.4',
  parse(args, session) {
    const r = new ArgReader(args);
    let name = r.mailbox(session);
    // CREATE parameters (RFC 4466 §2.2, e.g. USE for RFC 6154 CREATE-SPECIAL-USE) are not offered.
    r.end();
    // A trailing separator declares intent to create children; the name is created without it.
    while (name.length > 1 && name.endsWith(SEPARATOR)) name = name.slice(0, -1);
    return { name };
  },
  async run(ctx, { name }) {
    if (name === 'INBOX') throw no('INBOX always exists', 'ALREADYEXISTS');
    const invalid = invalidNewMailboxName(name);
    if (invalid) throw no(invalid, 'CANNOT');
    const userId = ctx.session.user!.id;
    if (await ctx.store.getMailbox(userId, name)) throw no('Mailbox already exists', 'ALREADYEXISTS');
    await createSuperiors(ctx.store, userId, name);
    const created = await ctx.store.createMailbox(userId, name);
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
    await createSuperiors(ctx.store, userId, to);
    await ctx.store.renameMailbox(userId, from, to);
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
