// `quire import imap://USER@HOST[:PORT]/` (on imapflow: src/cli/imap-source.ts): copies every mailbox of another
// IMAP server into a Quire user, with every message's bytes, flags,
// keywords and INTERNALDATE.
//
// UIDs: a target mailbox that is new and empty takes the source's
// UIDVALIDITY and every message keeps its UID (MailStore.importMessages), so
// a client that cached the source keeps a valid cache. A target that already
// holds mail gets the messages after its own, with new UIDs.
//
// Resume: progress is kept per mailbox as (source UIDVALIDITY, highest source
// UID imported). For a mailbox with kept UIDs the store itself says where to
// continue (its UIDVALIDITY equals the source's and its UIDNEXT is past the
// last imported UID). For renumbered mailboxes a state file in
// <data>/import-state/ records it, written after each committed batch; a
// batch is announced in the file before its commit (first target UID and
// size), so a kill between the commit and the file update is recognised on
// the next run and never imports the batch twice. Re-running after a complete
// import copies only what arrived at the source since.

import { Option, type Command } from 'commander';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { SYSTEM_FLAGS } from '../commands/args.js';
import { StoreError, type ImportInput, type MailStore, type MailboxInfo, type SpecialUse } from '../store/types.js';
import type { ConnectOptions, ListEntry } from './imap-client.js';
import { connectSource, type ImportSource } from './imap-source.js';
import { ttyProgress, type ImportSummary, type Progress } from './transfer.js';
import { requireUser, type AdminHelpers } from './mail-admin.js';

/** Messages fetched and stored per batch by default (one FETCH, one transaction). */
export const IMAP_IMPORT_BATCH_MESSAGES = 200;
/** Bytes fetched per batch at most (the batch is held in memory). */
export const IMAP_IMPORT_BATCH_BYTES = 32 * 1024 * 1024;

const SPECIAL_USE = new Set<string>(['\\All', '\\Archive', '\\Drafts', '\\Flagged', '\\Junk', '\\Sent', '\\Trash']);

export interface ImapSource extends ConnectOptions {
  user: string;
  /** The password, or with `oauth` an OAuth 2.0 access token (XOAUTH2 / OAUTHBEARER). */
  password: string;
  oauth?: boolean;
  /** PEM CA certificate(s) the source's certificate must chain to. */
  ca?: string;
}

export interface ImapImportOptions {
  /** Where per-mailbox progress is kept; null keeps none (resume then relies on kept UIDs only). */
  stateFile: string | null;
  batchMessages?: number;
  batchBytes?: number;
  progress?: Progress;
  /** Called with a line for the user (dropped flags, renumbered mailboxes). */
  warn?: (msg: string) => void;
}

interface FolderState {
  uidValidity: number;
  lastUid: number;
  /** A batch being committed: its last source UID, first target UID and that message's size. */
  pending?: { lastUid: number; dstUid: number; dstSize: number };
}

type StateFile = Record<string, FolderState>;

/** Parses imap://user@host:port/ (or imaps://). */
export function parseImapUrl(url: string): { host: string; port: number | null; user: string; password: string | null; tls: boolean } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`not a URL: ${url} (expected imap://USER@HOST[:PORT]/)`);
  }
  if (u.protocol !== 'imap:' && u.protocol !== 'imaps:') throw new Error(`unsupported scheme ${u.protocol} (expected imap:// or imaps://)`);
  if (!u.username) throw new Error('the URL names no user (imap://USER@HOST/)');
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  return {
    host,
    port: u.port ? Number(u.port) : null,
    user: decodeURIComponent(u.username),
    password: u.password ? decodeURIComponent(u.password) : null,
    tls: u.protocol === 'imaps:',
  };
}

/** The state file of one source account and target user under the data directory. */
export function stateFilePath(dataDir: string, source: { host: string; port: number; user: string }, localUser: string): string {
  const key = createHash('sha256').update(`${source.user}\0${source.host}\0${source.port}\0${localUser}`).digest('hex').slice(0, 16);
  return path.join(dataDir, 'import-state', `imap-${key}.json`);
}

async function loadState(file: string | null): Promise<StateFile> {
  if (!file) return {};
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as StateFile;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new Error(`cannot read import state ${file}: ${(err as Error).message}`);
  }
}

async function saveState(file: string | null, state: StateFile): Promise<void> {
  if (!file) return;
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  const fh = await fs.open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(JSON.stringify(state, null, 1));
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fs.rename(tmp, file);
}

/**
 * Target name: the source hierarchy with "/" as separator; INBOX normalised
 * (RFC 9051 §5.1). A remote server may name anything: levels that Quire
 * refuses (empty, ".", "..", control characters; issue 10 item 4) are escaped
 * with "_" so the import goes on and no name can become a path.
 */
export function targetName(e: ListEntry): string {
  const parts = e.delimiter ? e.name.split(e.delimiter) : [e.name];
  if (parts[0]!.toUpperCase() === 'INBOX') parts[0] = 'INBOX';
  return parts
    .map((p) => (e.delimiter === '/' ? p : p.split('/').join('_')))
    // eslint-disable-next-line no-control-regex
    .map((p) => p.replace(/[\x00-\x1f\x7f-\x9f]/g, '_'))
    .map((p) => (p === '' || p === '.' || p === '..' ? `_${p}` : p))
    .join('/');
}

async function ensureMailbox(store: MailStore, userId: number, name: string, specialUse: SpecialUse | null): Promise<MailboxInfo> {
  const parts = name.split('/');
  for (let i = 1; i <= parts.length; i++) {
    const n = parts.slice(0, i).join('/');
    if (await store.getMailbox(userId, n)) continue;
    try {
      await store.createMailbox(userId, n, i === parts.length ? specialUse : null);
      await store.setSubscribed(userId, n, true);
    } catch (err) {
      if (!(err instanceof StoreError && err.kind === 'ALREADYEXISTS')) throw err;
    }
  }
  return (await store.getMailbox(userId, name))!;
}

/** Flags the store can keep: the five system flags and valid keywords; \Recent and others are dropped. */
function storableFlags(flags: string[], dropped: Set<string>): string[] {
  const out: string[] = [];
  for (const f of flags) {
    if (f.startsWith('\\')) {
      const sys = SYSTEM_FLAGS.get(f.toLowerCase());
      if (sys) out.push(sys);
      else if (f.toLowerCase() !== '\\recent') dropped.add(f);
    } else if (f.length > 0 && f.length <= 128 && !/[\s()*%"\\\]{\x00-\x1f\x7f-\uffff]/.test(f)) {
      out.push(f);
    } else {
      dropped.add(f);
    }
  }
  return out;
}

/** Copies every mailbox of the source account into the user's mailboxes; see the file comment. */
export async function importImap(store: MailStore, userId: number, source: ImapSource, opts: ImapImportOptions): Promise<ImportSummary> {
  const batchMessages = Math.max(1, opts.batchMessages ?? IMAP_IMPORT_BATCH_MESSAGES);
  const batchBytes = Math.max(1, opts.batchBytes ?? IMAP_IMPORT_BATCH_BYTES);
  const warn = opts.warn ?? (() => {});
  const state = await loadState(opts.stateFile);
  const summary: ImportSummary = { folders: 0, imported: 0, skipped: 0 };
  // imapflow underneath (src/cli/imap-source.ts).
  const client = await connectSource({
    host: source.host,
    port: source.port,
    security: source.security,
    insecure: source.insecure,
    ca: source.ca,
    user: source.user,
    ...(source.oauth ? { accessToken: source.password } : { password: source.password }),
  });
  try {
    const entries = (await client.list()).filter((e) => !e.attributes.some((a) => /^\\NonExistent$/i.test(a)));
    // INBOX first, then parents before children.
    entries.sort((a, b) => {
      const an = targetName(a);
      const bn = targetName(b);
      if (an === 'INBOX' || bn === 'INBOX') return an === 'INBOX' ? (bn === 'INBOX' ? 0 : -1) : 1;
      return an < bn ? -1 : an > bn ? 1 : 0;
    });
    for (const e of entries) {
      const name = targetName(e);
      const noselect = e.attributes.some((a) => /^\\Noselect$/i.test(a));
      const special = (e.attributes.find((a) => SPECIAL_USE.has(a)) as SpecialUse | undefined) ?? null;
      const mb = await ensureMailbox(store, userId, name, special);
      summary.folders++;
      if (noselect) continue;
      const src = await client.examine(e.raw);
      const dropped = new Set<string>();
      const n = await importFolder(store, client, mb, name, src, state, opts.stateFile, { batchMessages, batchBytes, progress: opts.progress, warn, dropped });
      summary.imported += n.imported;
      summary.skipped += n.skipped;
      if (dropped.size > 0) warn(`${name}: flags that cannot be stored were dropped: ${[...dropped].join(' ')}`);
    }
    await client.logout();
  } finally {
    client.destroy();
  }
  return summary;
}

async function importFolder(
  store: MailStore,
  client: ImportSource,
  mbAtStart: MailboxInfo,
  name: string,
  src: { uidValidity: number; uidNext: number | null; exists: number },
  state: StateFile,
  stateFile: string | null,
  o: { batchMessages: number; batchBytes: number; progress?: Progress; warn: (m: string) => void; dropped: Set<string> },
): Promise<{ imported: number; skipped: number }> {
  let mb = (await store.getMailboxById(mbAtStart.id)) ?? mbAtStart;
  const status = await store.mailboxStatus(mb.id);
  let st: FolderState | undefined = state[name];
  if (st && st.uidValidity !== src.uidValidity) {
    o.warn(`${name}: the source's UIDVALIDITY changed since the last import; importing the mailbox again`);
    st = undefined;
  }
  // A batch announced but not confirmed: committed if its first target message is there with the announced size.
  if (st?.pending) {
    const [m] = await store.getMessages(mb.id, [st.pending.dstUid]);
    if (m && m.size === st.pending.dstSize) st.lastUid = st.pending.lastUid;
    delete st.pending;
  }
  const fresh = status.messages === 0 && mb.uidNext === 1;
  // Where to continue: the state file when there is one (it is exact, see the pending check above);
  // without it, a mailbox whose UIDs were kept continues after its last UID.
  const sameSource = src.uidValidity > 0 && mb.uidValidity === src.uidValidity;
  let after = fresh ? 0 : (st?.lastUid ?? (sameSource ? mb.uidNext - 1 : 0));
  // Some servers answer a UID range on an empty mailbox with NO/BAD.
  const todo = src.exists === 0 ? [] : await client.listFrom(after + 1);
  // Kept UIDs need every new source UID to be at or above the target's UIDNEXT (else: other mail arrived here).
  const keep = src.uidValidity > 0 && (fresh || (sameSource && (todo.length === 0 || todo[0]!.uid >= mb.uidNext)));
  if (!keep && !st && status.messages > 0) o.warn(`${name}: the target already holds messages; the source's messages get new UIDs after them`);
  const skipped = Math.max(0, src.exists - todo.length);
  const total = src.exists;
  let done = skipped;
  let imported = 0;
  o.progress?.(name, done, total);
  const save = async (s: FolderState) => {
    state[name] = s;
    await saveState(stateFile, state);
  };
  let i = 0;
  while (i < todo.length) {
    let j = i;
    let bytes = 0;
    while (j < todo.length && j - i < o.batchMessages && (j === i || bytes + todo[j]!.size <= o.batchBytes)) bytes += todo[j++]!.size;
    const want = todo.slice(i, j).map((m) => m.uid);
    const fetched = await client.fetchMessages(want);
    fetched.sort((a, b) => a.uid - b.uid);
    mb = (await store.getMailboxById(mb.id)) ?? mb;
    let next = mb.uidNext;
    const items: ImportInput[] = [];
    for (const f of fetched) {
      if (!f.body) continue; // expunged at the source meanwhile
      items.push({ uid: keep ? f.uid : next++, data: f.body, flags: storableFlags(f.flags, o.dropped), internalDate: f.internalDate ?? Date.now(), internalTz: f.internalTz ?? undefined });
    }
    const lastUid = want[want.length - 1]!;
    if (items.length > 0) await save({ uidValidity: src.uidValidity, lastUid: after, pending: { lastUid, dstUid: items[0]!.uid, dstSize: items[0]!.data.length } });
    await store.importMessages(mb.id, items, keep ? { uidValidity: src.uidValidity } : {});
    after = lastUid;
    await save({ uidValidity: src.uidValidity, lastUid: after });
    imported += items.length;
    done += want.length;
    o.progress?.(name, Math.min(done, total), total);
    i = j;
  }
  if (keep) {
    // Empty or complete: the target mirrors the source's UIDVALIDITY and UIDNEXT.
    await store.importMessages(mb.id, [], { uidValidity: src.uidValidity, uidNext: src.uidNext ?? undefined });
  }
  if (!state[name] || state[name]!.lastUid !== after) await save({ uidValidity: src.uidValidity, lastUid: after });
  return { imported, skipped };
}

/** Longest source password read from stdin. */
const MAX_STDIN_PASSWORD_BYTES = 64 * 1024;

async function readStdinPassword(): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of process.stdin) {
    const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    total += b.length;
    if (total > MAX_STDIN_PASSWORD_BYTES) throw new Error('password on stdin is too long');
    chunks.push(b);
  }
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

export function registerImapImport(imp: Command, h: AdminHelpers): void {
  h.addStoreOptions(imp.command('imap').argument('<url>', 'imap://USER@HOST[:PORT]/ (imaps:// for implicit TLS)'))
    .description('copy every mailbox of another IMAP server (UIDs kept for new mailboxes; resumable)')
    .requiredOption('--user <name>', 'the Quire user to import into')
    .addOption(new Option('--tls', 'implicit TLS (default port 993; the default for imaps://)').conflicts(['starttls', 'plain']))
    .addOption(new Option('--starttls', 'STARTTLS on the plain port (default port 143; the default for imap://)').conflicts(['plain']))
    .option('--plain', 'no TLS at all (only on a trusted network: the password travels in clear)')
    .option('--insecure', 'do not verify the server\'s TLS certificate')
    .option('--ca-file <file>', 'PEM CA certificate(s) to verify the server against (a private CA or a self-signed server)')
    .option('--password-stdin', 'read the source password from standard input')
    .option('--oauth-token-stdin', 'read an OAuth 2.0 access token from standard input instead of a password (XOAUTH2 / OAUTHBEARER: Gmail, Microsoft 365)')
    .option('--batch <n>', `messages per FETCH and per transaction (default ${IMAP_IMPORT_BATCH_MESSAGES})`)
    .action(async (url: string, opts: Record<string, unknown>) => {
      const u = parseImapUrl(url);
      const security: ConnectOptions['security'] = opts.plain ? 'plain' : opts.tls || (u.tls && !opts.starttls) ? 'tls' : 'starttls';
      const port = u.port ?? (security === 'tls' ? 993 : 143);
      let password = u.password;
      if (opts.passwordStdin && opts.oauthTokenStdin) throw new Error('give --password-stdin or --oauth-token-stdin, not both');
      if (opts.passwordStdin || opts.oauthTokenStdin) password = await readStdinPassword();
      if (password === null) throw new Error('no source password: give --password-stdin (or --oauth-token-stdin)');
      let ca: string | undefined;
      if (typeof opts.caFile === 'string') {
        ca = await fs.readFile(opts.caFile, 'utf8').catch((e: Error) => {
          throw new Error(`cannot read --ca-file ${opts.caFile}: ${e.message}`);
        });
      }
      const batch = opts.batch === undefined ? undefined : Number(opts.batch);
      if (batch !== undefined && (!Number.isInteger(batch) || batch < 1)) throw new Error('--batch must be a positive whole number');
      const localUser = String(opts.user);
      const stateFile = stateFilePath(h.dataDir(opts), { host: u.host, port, user: u.user }, localUser);
      const s = await h.withStore(opts, false, async (store) =>
        importImap(
          store,
          (await requireUser(store, localUser)).id,
          { host: u.host, port, security, insecure: !!opts.insecure, ca, oauth: !!opts.oauthTokenStdin, user: u.user, password: password! },
          { stateFile, batchMessages: batch, progress: ttyProgress(), warn: (m) => process.stderr.write(`warning: ${m}\n`) },
        ),
      );
      // An import that found nothing is a mistake (wrong account or server), not a success (ops).
      if (s.imported === 0 && s.skipped === 0) throw new Error(`found no messages on ${u.host} for ${u.user} (${s.folders} folder(s) scanned)`);
      process.stdout.write(`imported ${s.imported} message(s) into ${s.folders} mailbox(es)${s.skipped ? `; ${s.skipped} already present` : ''}\n`);
    });
}
