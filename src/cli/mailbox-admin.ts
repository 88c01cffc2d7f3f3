// `quire mailbox list|create|delete|rename|stats --user NAME`: a user's
// mailboxes from the command line. Everything goes through MailStore
// methods, so the store publishes the same change records as for an IMAP
// client (the feed is in-process today: a server in another process sees the
// change at its sessions' next LIST/STATUS/SELECT).

import { Option, type Command } from 'commander';
import { StoreError, type MailStore, type SpecialUse } from '../store/types.js';
import { requireUser, type AdminHelpers } from './mail-admin.js';

const SPECIAL_USES: SpecialUse[] = ['\\All', '\\Archive', '\\Drafts', '\\Flagged', '\\Junk', '\\Sent', '\\Trash'];

/** "inbox" and "Inbox/x" name INBOX (RFC 9051 §5.1: INBOX is case-insensitive); "/" is the separator. */
export function normaliseMailboxName(name: string): string {
  const parts = name.split('/');
  if (parts[0]!.toUpperCase() === 'INBOX') parts[0] = 'INBOX';
  if (parts.some((p) => p === '')) throw new StoreError('CANNOT', `invalid mailbox name ${JSON.stringify(name)} (empty level)`);
  // As IMAP CREATE/RENAME (issue 10 item 4): no "." / ".." level, no control character.
  if (parts.some((p) => p === '.' || p === '..')) throw new StoreError('CANNOT', `invalid mailbox name ${JSON.stringify(name)} ("." or ".." level)`);
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f-\x9f]/.test(name)) throw new StoreError('CANNOT', `invalid mailbox name ${JSON.stringify(name)} (control character)`);
  return parts.join('/');
}

/** Creates the missing parents of `name` (not `name` itself), subscribed, as IMAP CREATE does (RFC 9051 §6.3.4). */
async function createParents(store: MailStore, userId: number, name: string): Promise<void> {
  const parts = name.split('/');
  for (let i = 1; i < parts.length; i++) {
    const n = parts.slice(0, i).join('/');
    if (await store.getMailbox(userId, n)) continue;
    await store.createMailbox(userId, n);
    await store.setSubscribed(userId, n, true);
  }
}

export interface MailboxStats {
  name: string;
  messages: number;
  unseen: number;
  size: number;
  uidValidity: number;
  uidNext: number;
  highestModseq: number;
}

export async function mailboxStats(store: MailStore, userId: number, only?: string): Promise<MailboxStats[]> {
  const out: MailboxStats[] = [];
  for (const mb of await store.listMailboxes(userId)) {
    if (only !== undefined && mb.name !== only) continue;
    const s = await store.mailboxStatus(mb.id);
    out.push({ name: mb.name, messages: s.messages, unseen: s.unseen, size: s.size, uidValidity: s.uidValidity, uidNext: s.uidNext, highestModseq: s.highestModseq });
  }
  if (only !== undefined && out.length === 0) throw new StoreError('NONEXISTENT', `no mailbox ${only}`);
  return out;
}

export function registerMailboxAdmin(program: Command, h: AdminHelpers): void {
  const mailbox = program.command('mailbox').description("manage a user's mailboxes (names use \"/\" as separator)");
  const withUser = <T>(opts: Record<string, unknown>, fn: (store: MailStore, userId: number) => Promise<T>) =>
    h.withStore(opts, false, async (store) => fn(store, (await requireUser(store, String(opts.user))).id));

  h.addStoreOptions(mailbox.command('list').alias('ls'))
    .description('list mailboxes: name, special-use, "subscribed" (tab-separated)')
    .requiredOption('--user <name>', 'the user')
    .action(async (opts: Record<string, unknown>) => {
      const lines = await withUser(opts, async (store, userId) =>
        (await store.listMailboxes(userId)).map((mb) => `${mb.name}\t${mb.specialUse ?? ''}\t${mb.subscribed ? 'subscribed' : ''}\n`),
      );
      process.stdout.write(lines.join(''));
    });

  h.addStoreOptions(mailbox.command('create').argument('<mailbox>', 'full name, e.g. Lists/Work'))
    .description('create a mailbox (and missing parents), subscribed')
    .requiredOption('--user <name>', 'the user')
    .addOption(new Option('--special-use <use>', 'RFC 6154 special use').choices(SPECIAL_USES))
    .action(async (name: string, opts: Record<string, unknown>) => {
      const n = normaliseMailboxName(name);
      await withUser(opts, async (store, userId) => {
        await createParents(store, userId, n);
        await store.createMailbox(userId, n, (opts.specialUse as SpecialUse | undefined) ?? null);
        await store.setSubscribed(userId, n, true);
      });
      process.stdout.write(`created ${n}\n`);
    });

  h.addStoreOptions(mailbox.command('delete').alias('del').argument('<mailbox>', 'full name'))
    .description('delete a mailbox and its messages (INBOX cannot be deleted)')
    .requiredOption('--user <name>', 'the user')
    .option('--recursive', 'also delete the mailboxes below it')
    .action(async (name: string, opts: Record<string, unknown>) => {
      const n = normaliseMailboxName(name);
      const gone = await withUser(opts, async (store, userId) => {
        if (!(await store.getMailbox(userId, n))) throw new StoreError('NONEXISTENT', `no mailbox ${n}`);
        const children = (await store.listMailboxes(userId)).filter((mb) => mb.name.startsWith(`${n}/`)).map((mb) => mb.name);
        if (children.length > 0 && !opts.recursive) throw new StoreError('CANNOT', `${n} has mailboxes below it (${children.join(', ')}); use --recursive`);
        const names = [...children.sort().reverse(), n];
        for (const c of names) {
          await store.deleteMailbox(userId, c);
          await store.setSubscribed(userId, c, false);
        }
        return names;
      });
      process.stdout.write(gone.map((g) => `deleted ${g}\n`).join(''));
    });

  h.addStoreOptions(mailbox.command('rename').alias('mv').argument('<from>', 'current name').argument('<to>', 'new name'))
    .description('rename a mailbox with everything below it (renaming INBOX moves its messages, RFC 9051 §6.3.6)')
    .requiredOption('--user <name>', 'the user')
    .action(async (from: string, to: string, opts: Record<string, unknown>) => {
      const f = normaliseMailboxName(from);
      const t = normaliseMailboxName(to);
      await withUser(opts, async (store, userId) => {
        if (!(await store.getMailbox(userId, f))) throw new StoreError('NONEXISTENT', `no mailbox ${f}`);
        await createParents(store, userId, t);
        await store.renameMailbox(userId, f, t);
      });
      process.stdout.write(`renamed ${f} to ${t}\n`);
    });

  h.addStoreOptions(mailbox.command('stats').argument('[mailbox]', 'only this mailbox'))
    .description('messages, unseen, size, UIDVALIDITY, UIDNEXT and HIGHESTMODSEQ per mailbox (tab-separated, with a header)')
    .requiredOption('--user <name>', 'the user')
    .action(async (name: string | undefined, opts: Record<string, unknown>) => {
      const stats = await withUser(opts, (store, userId) => mailboxStats(store, userId, name === undefined ? undefined : normaliseMailboxName(name)));
      const rows = [['mailbox', 'messages', 'unseen', 'size', 'uidvalidity', 'uidnext', 'highestmodseq'].join('\t')];
      for (const s of stats) rows.push([s.name, s.messages, s.unseen, s.size, s.uidValidity, s.uidNext, s.highestModseq].join('\t'));
      process.stdout.write(rows.join('\n') + '\n');
    });
}
