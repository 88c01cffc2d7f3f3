// `quire migrate --data DIR --to URL` (issue 13 item 6): copies a whole
// store into another one so that clients do not resync. Everything a client
// or an admin can observe goes across: users with their password hashes and
// credentials (SCRAM verifiers, application passwords), quotas, addresses,
// subscriptions, mailboxes with UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ,
// MAILBOXID, special use and QRESYNC tombstones, messages with their UIDs,
// MODSEQs, flags and keywords, INTERNALDATE and its zone, save date, EMAILID
// and bytes, and annotations (RFC 5464) on the server and on mailboxes. The
// MailStore contract's exportMailbox / bulkImport / exportCredentials carry
// what the ordinary methods cannot (src/store/types.ts).
//
// Resumable: each batch is one transaction in the target, and a re-run
// starts each mailbox after the highest UID the target already holds, once
// it has checked that what the target holds is exactly the source's start.
// Verified: at the end every mailbox is compared in both stores: state,
// counts, tombstones and a digest of every message's metadata and bytes.
// The other direction (postgres -> sqlite) is the same code with `--from`.
//
// Both stores must be quiet: the SQLite data directories are locked like
// `quire serve` locks them, so a running server refuses the copy (and vice
// versa); a PostgreSQL store (opened through store-open.ts, `?schema=NAME`
// choosing the schema) has no such lock: stop its servers first.
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { Command } from 'commander';
import type { BulkMessage, MailboxInfo, MailStore, MessageMeta } from '../store/types.js';
import type { AdminHelpers } from './mail-admin.js';
import { acquireDataLock, OpsError } from './ops-safety.js';

/** Messages per target transaction: one fsync per batch, progress visible, memory bounded. */
export const MIGRATE_BATCH_MESSAGES = 500;
/** Largest --batch: a bigger transaction only holds the target's write lock longer. */
export const MIGRATE_MAX_BATCH_MESSAGES = 5000;
/** Message bytes held in memory per batch (one message bigger than this is a batch of its own). */
export const MIGRATE_BATCH_BYTES = 32 * 1024 * 1024;
/** Annotation limits for the copy: the source already held these entries; the target takes them all. */
const COPY_ANNOTATION_LIMITS = { maxEntries: Number.MAX_SAFE_INTEGER, maxPerUser: Number.MAX_SAFE_INTEGER };
/** Every annotation: RFC 5464 §3.2 entries live under /private and /shared. */
const ANNOTATION_ROOTS = ['/private', '/shared'];

/** A store URL: `sqlite:///abs/dir` or a plain directory path (SQLite), or `postgres://...`. */
export type StoreLocation = { kind: 'sqlite'; dir: string } | { kind: 'postgres'; url: string };

export function parseStoreLocation(s: string): StoreLocation {
  if (/^postgres(ql)?:\/\//i.test(s)) return { kind: 'postgres', url: s };
  if (/^sqlite:/i.test(s)) {
    const u = new URL(s);
    const dir = decodeURIComponent(u.pathname);
    if (u.host !== '' || !dir.startsWith('/')) throw new OpsError(`${s}: expected sqlite:///absolute/directory`);
    return { kind: 'sqlite', dir };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(s)) throw new OpsError(`${s}: unknown store scheme (sqlite:// or postgres://)`);
  return { kind: 'sqlite', dir: path.resolve(s) };
}

/** Opens the store at `loc`, locked against a server; close() releases both. */
export async function openStoreAt(loc: StoreLocation): Promise<{ store: MailStore; close(): Promise<void> }> {
  if (loc.kind === 'sqlite') {
    const { mkdirSync } = await import('node:fs');
    mkdirSync(loc.dir, { recursive: true });
    const release = acquireDataLock(loc.dir);
    try {
      const { openSqliteStore } = await import('../store/sqlite/index.js');
      const store = await openSqliteStore({ dataDir: loc.dir, synchronous: 'FULL' });
      return { store, close: async () => (await store.close(), release()) };
    } catch (err) {
      release();
      throw err;
    }
  }
  // PostgreSQL through the composition root's one place for opening stores (store-open.ts): `?schema=NAME` picks
  // the schema (created and migrated when new). Not following other nodes: the copy is the only writer it cares about.
  const { openStore } = await import('./store-open.js');
  const store = await openStore({ data: '', store: { kind: 'postgres', url: loc.url }, followOthers: false });
  return { store, close: () => store.close() };
}

/** Whether two locations name the same store (a PostgreSQL URL compared with its schema, default "quire"). */
export function sameStoreLocation(a: StoreLocation, b: StoreLocation): boolean {
  if (a.kind === 'sqlite' || b.kind === 'sqlite') return a.kind === 'sqlite' && b.kind === 'sqlite' && path.resolve(a.dir) === path.resolve(b.dir);
  const norm = (url: string) => {
    try {
      const u = new URL(url);
      const schema = u.searchParams.get('schema') ?? 'quire';
      return `${u.host}${u.pathname}#${schema}`;
    } catch {
      return url;
    }
  };
  return norm(a.url) === norm(b.url);
}

export interface MailboxReport {
  user: string;
  mailbox: string;
  messages: number;
  /** Messages written by this run (0 when an earlier run had copied them all). */
  copied: number;
  /** Messages whose EMAILID the target kept. */
  emailIdsKept: number;
  digest: string;
  verified: boolean;
  problem?: string;
}

export interface MigrateReport {
  users: number;
  mailboxes: MailboxReport[];
  ok: boolean;
}

/** One message's line in a mailbox digest: everything a client sees of it, and its bytes' hash. */
function digestLine(m: MessageMeta, bodyHash: string): string {
  const flags = [...m.flags].map((f) => f.toLowerCase()).sort();
  return JSON.stringify([m.uid, m.modseq, flags, m.internalDate, m.internalTz ?? 0, m.saveDate ?? null, m.size, bodyHash]);
}

async function bodyOf(store: MailStore, mailboxId: number, uid: number): Promise<Buffer> {
  const b = await store.openMessage(mailboxId, uid);
  if (!b) throw new OpsError(`UID ${uid} vanished while being read`);
  return b.read(0, b.size);
}

/** The digest of a mailbox (state, tombstones, every message with its bytes); streams, one body at a time. */
async function mailboxDigest(store: MailStore, mailboxId: number): Promise<{ digest: string; metas: MessageMeta[] }> {
  const st = await store.exportMailbox(mailboxId);
  const h = createHash('sha256');
  h.update(JSON.stringify([st.uidValidity, st.uidNext, st.highestModseq, st.objectId, st.tombstoneFloor, st.expunged.map((t) => [t.uid, t.modseq])]) + '\n');
  const metas = (await store.listMessages(mailboxId)).sort((a, b) => a.uid - b.uid);
  for (const m of metas) h.update(digestLine(m, createHash('sha256').update(await bodyOf(store, mailboxId, m.uid)).digest('hex')) + '\n');
  return { digest: h.digest('hex'), metas };
}

/** A message's metadata as compared between stores (EMAILID apart: a target may have to give its own). */
const sameMeta = (a: MessageMeta, b: MessageMeta): boolean => digestLine(a, '') === digestLine(b, '');

interface CopyOptions {
  batch: number;
  log: (s: string) => void;
}

async function copyUser(src: MailStore, dst: MailStore, name: string, onMailbox: (r: MailboxReport) => void, o: CopyOptions): Promise<void> {
  const su = (await src.getUser(name))!;
  let du = await dst.getUser(name);
  if (!du) du = await dst.createUser(su.name, su.passwordHash);
  else if (du.passwordHash !== su.passwordHash) await dst.setPasswordHash(du.id, su.passwordHash);
  for (const c of await src.exportCredentials(su.id)) {
    const have = (await dst.listCredentials(du.id, c.kind)).find((x) => x.name === c.name);
    if (have?.secret !== c.secret) await dst.setCredential(du.id, c.kind, c.name, c.secret);
    if (c.lastUsed && have?.lastUsed?.getTime() !== c.lastUsed.getTime()) await dst.touchCredential(du.id, c.kind, c.name, c.lastUsed);
  }
  const q = await src.getQuota(su.id);
  await dst.setQuota(du.id, { storage: q.storageLimit, messages: q.messageLimit });
  for (const a of await src.listAddresses(su.id)) {
    const owner = await dst.findAddress(a.address);
    if (!owner) await dst.addAddress(du.id, a.address);
    else if (owner.userId !== du.id) throw new OpsError(`address ${a.address} belongs to another user in the target`);
  }
  const serverNotes = await src.getAnnotations(su.id, null, ANNOTATION_ROOTS, 'infinity');
  if (serverNotes.length > 0) await dst.setAnnotations(du.id, null, serverNotes, COPY_ANNOTATION_LIMITS);

  // Parents before children (sorted by name), so that a backend that wants them sees them first.
  const boxes = (await src.listMailboxes(su.id)).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const sb of boxes) {
    let db = await dst.getMailbox(du.id, sb.name);
    if (!db) db = await dst.createMailbox(du.id, sb.name, sb.specialUse);
    else if (db.specialUse !== sb.specialUse) await dst.setSpecialUse(db.id, sb.specialUse);
    const notes = await src.getAnnotations(su.id, sb.id, ANNOTATION_ROOTS, 'infinity');
    if (notes.length > 0) await dst.setAnnotations(du.id, db.id, notes, COPY_ANNOTATION_LIMITS);
    onMailbox(await copyMailbox(src, dst, su.name, sb, db, o));
  }
  const dstSubs = new Set(await dst.listSubscriptions(du.id));
  for (const s of await src.listSubscriptions(su.id)) if (!dstSubs.has(s)) await dst.setSubscribed(du.id, s, true);
}

async function copyMailbox(src: MailStore, dst: MailStore, user: string, sb: MailboxInfo, db: MailboxInfo, o: CopyOptions): Promise<MailboxReport> {
  const report = (copied: number, extra: Partial<MailboxReport>): MailboxReport => ({ user, mailbox: sb.name, messages: 0, copied, emailIdsKept: 0, digest: '', verified: false, ...extra });
  const srcState = await src.exportMailbox(sb.id);
  const srcMetas = (await src.listMessages(sb.id)).sort((a, b) => a.uid - b.uid);
  const dstState = await dst.exportMailbox(db.id);
  const dstMetas = (await dst.listMessages(db.id)).sort((a, b) => a.uid - b.uid);
  // Resuming: what the target holds must be exactly the source's first messages.
  const started = dstMetas.length > 0 || dstState.expunged.length > 0;
  if (started) {
    const bySrc = new Map(srcMetas.map((m) => [m.uid, m]));
    const bad = dstMetas.find((m) => !bySrc.has(m.uid) || !sameMeta(bySrc.get(m.uid)!, m));
    const prefix = dstMetas.length === 0 || srcMetas.filter((m) => m.uid <= dstMetas[dstMetas.length - 1]!.uid).length === dstMetas.length;
    if (dstState.uidValidity !== srcState.uidValidity || bad || !prefix) {
      return report(0, { problem: `the target's mailbox differs from the source beyond an interrupted copy${bad ? ` (UID ${bad.uid})` : ''}: delete it in the target and run again` });
    }
  }
  const after = dstMetas.length > 0 ? dstMetas[dstMetas.length - 1]!.uid : 0;
  const todo = srcMetas.filter((m) => m.uid > after);
  let first = !started;
  let copied = 0;
  for (let i = 0; i < todo.length; ) {
    const batch: BulkMessage[] = [];
    let bytes = 0;
    while (i < todo.length && batch.length < o.batch && (batch.length === 0 || bytes + todo[i]!.size <= MIGRATE_BATCH_BYTES)) {
      const m = todo[i++]!;
      const data = await bodyOf(src, sb.id, m.uid);
      bytes += data.length;
      batch.push({ uid: m.uid, modseq: m.modseq, flags: m.flags, internalDate: m.internalDate, internalTz: m.internalTz ?? 0, saveDate: m.saveDate ?? null, emailId: m.emailId, data });
    }
    await dst.bulkImport(db.id, { messages: batch, state: first ? { uidValidity: srcState.uidValidity, objectId: srcState.objectId } : undefined });
    first = false;
    copied += batch.length;
    o.log(`${user}/${sb.name}: ${after === 0 ? copied : `${dstMetas.length + copied}`}/${srcMetas.length}`);
  }
  // The rest of the state last: tombstones sit above UIDs still to come in an interrupted copy.
  await dst.bulkImport(db.id, {
    messages: [],
    state: { ...(first ? { uidValidity: srcState.uidValidity, objectId: srcState.objectId } : {}), uidNext: srcState.uidNext, highestModseq: srcState.highestModseq, expunged: srcState.expunged, tombstoneFloor: srcState.tombstoneFloor },
  });
  const a = await mailboxDigest(src, sb.id);
  const b = await mailboxDigest(dst, db.id);
  const ids = new Map(a.metas.map((m) => [m.uid, m.emailId]));
  const kept = b.metas.filter((m) => m.emailId !== undefined && ids.get(m.uid) === m.emailId).length;
  const verified = a.digest === b.digest && a.metas.length === b.metas.length;
  return report(copied, { messages: a.metas.length, emailIdsKept: kept, digest: a.digest, verified, ...(verified ? {} : { problem: `digest differs after the copy (source ${a.metas.length} messages, target ${b.metas.length})` }) });
}

/** Copies every user of `src` into `dst`; see the file comment. */
export async function migrateStore(src: MailStore, dst: MailStore, opts: { progress?: (line: string) => void; batch?: number } = {}): Promise<MigrateReport> {
  const users = await src.listUsers();
  const mailboxes: MailboxReport[] = [];
  const o = { batch: opts.batch ?? MIGRATE_BATCH_MESSAGES, log: opts.progress ?? (() => {}) };
  for (const u of users) await copyUser(src, dst, u.name, (r) => mailboxes.push(r), o);
  return { users: users.length, mailboxes, ok: mailboxes.every((m) => m.verified) };
}

export function registerMigrate(program: Command, h: AdminHelpers): void {
  h.addStoreOptions(
    program
      .command('migrate')
      .description('copy the whole store into another one (users, mailboxes, UIDs, MODSEQs, flags, bodies...) so that clients do not resync; resumable, verified')
      .requiredOption('--to <url>', 'target store: a directory or sqlite:///dir (SQLite), or postgres://host/db')
      .option('--from <url>', 'source store instead of the one --data / --config select (e.g. postgres://... to come back)')
      .option('--batch <n>', `messages per target transaction (default ${MIGRATE_BATCH_MESSAGES})`)
      .option('--json', 'print the per-mailbox report as JSON'),
  ).action(async (opts: Record<string, unknown>) => {
    const to = parseStoreLocation(String(opts.to));
    const batch = opts.batch === undefined ? MIGRATE_BATCH_MESSAGES : Number(opts.batch);
    if (!Number.isInteger(batch) || batch < 1 || batch > MIGRATE_MAX_BATCH_MESSAGES) throw new OpsError(`--batch must be 1-${MIGRATE_MAX_BATCH_MESSAGES}`);
    const fromUrl = typeof opts.from === 'string' ? parseStoreLocation(opts.from) : null;
    // Without --from: the store --data / --config / --store select (a PostgreSQL one has no data directory to lock).
    const configured = fromUrl ? null : (h.storeOf?.(opts) ?? { kind: 'sqlite' as const });
    const srcDir = fromUrl?.kind === 'sqlite' ? fromUrl.dir : fromUrl || configured?.kind === 'postgres' ? null : path.resolve(h.dataDir(opts));
    const srcLoc: StoreLocation | null = fromUrl ?? (configured?.kind === 'postgres' ? { kind: 'postgres', url: configured.url } : srcDir !== null ? { kind: 'sqlite', dir: srcDir } : null);
    if (srcLoc && sameStoreLocation(srcLoc, to)) throw new OpsError('--to is the source store itself');
    const progress = process.stderr.isTTY ? (l: string) => process.stderr.write(`\r\x1b[K${l}`) : () => {};
    const run = async (src: MailStore) => {
      const target = await openStoreAt(to);
      try {
        return await migrateStore(src, target.store, { progress, batch });
      } finally {
        await target.close();
      }
    };
    let report: MigrateReport;
    if (fromUrl) {
      const source = await openStoreAt(fromUrl);
      try {
        report = await run(source.store);
      } finally {
        await source.close();
      }
    } else {
      const release = srcDir !== null ? acquireDataLock(srcDir) : () => {};
      try {
        report = await h.withStore(opts, false, run);
      } finally {
        release();
      }
    }
    if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');
    if (opts.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
    else {
      for (const m of report.mailboxes) {
        process.stdout.write(`${m.verified ? 'ok  ' : 'FAIL'} ${m.user}\t${m.mailbox}\t${m.messages} messages (${m.copied} copied now)\tsha256 ${m.digest.slice(0, 16)}${m.problem ? `\t${m.problem}` : ''}\n`);
      }
      process.stdout.write(`${report.users} users, ${report.mailboxes.length} mailboxes: ${report.ok ? 'verified' : 'NOT verified'}\n`);
    }
    if (!report.ok) process.exitCode = 1;
  });
}
