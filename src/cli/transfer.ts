// `quire import maildir|mbox` and `quire export maildir|mbox`.
//
// Import writes through MailStore.importMessages, so UIDVALIDITY and UIDs of
// a Dovecot Maildir survive (clients' caches stay valid) and sessions of a
// running server are notified like for any other append. It is resumable: a
// mailbox that already holds the first part of the same source (same
// UIDVALIDITY, or the same leading UIDs and sizes for sources without one)
// continues after it; otherwise the messages are added after the existing
// ones with new UIDs. Messages are stored with CRLF line ends (IMAP's form,
// RFC 9051 §2.3.4 / RFC 5322 §2.1) unless --keep-line-endings is given;
// export writes LF (what Dovecot and mbox readers expect) unless --crlf.

import type { Command } from 'commander';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { safeLevels, UnsafeNameError, within } from './fs-names.js';
import { StoreError, type ImportInput, type MailStore, type MailboxInfo } from '../store/types.js';
import { MaildirFolderWriter, readMaildir, type SourceFolder, type SourceMessage } from './maildir.js';
import { formatMboxMessage, readMbox, type MboxVariant } from './mbox.js';
import { requireUser, type AdminHelpers } from './mail-admin.js';
import { registerImapImport } from './imap-import.js';

/** Messages per import transaction: one fsync per batch, progress visible, memory bounded. */
export const IMPORT_BATCH_MESSAGES = 500;
/** Bytes per import transaction (the batch is held in memory). */
export const IMPORT_BATCH_BYTES = 32 * 1024 * 1024;

/** Bare LF → CRLF; existing CRLF untouched. */
export function toCrlf(b: Buffer): Buffer {
  if (!b.includes(0x0a)) return b;
  return Buffer.from(b.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1');
}

/** CRLF → LF. */
export function toLf(b: Buffer): Buffer {
  if (!b.includes(0x0d)) return b;
  return Buffer.from(b.toString('latin1').replace(/\r\n/g, '\n'), 'latin1');
}

export interface Progress {
  (folder: string, done: number, total: number): void;
}

/** Progress on a TTY (one rewritten line on stderr); silent otherwise. */
export function ttyProgress(): Progress {
  if (!process.stderr.isTTY) return () => {};
  let last = 0;
  return (folder, done, total) => {
    const now = Date.now();
    if (done !== total && now - last < 100) return;
    last = now;
    process.stderr.write(`\r\x1b[K${folder}: ${done}/${total}${done === total ? '\n' : ''}`);
  };
}

export interface ImportSummary {
  folders: number;
  imported: number;
  skipped: number;
}

async function ensureMailbox(store: MailStore, userId: number, name: string): Promise<MailboxInfo> {
  const parts = name.split('/');
  for (let i = 1; i <= parts.length; i++) {
    const n = parts.slice(0, i).join('/');
    if (await store.getMailbox(userId, n)) continue;
    try {
      await store.createMailbox(userId, n);
      await store.setSubscribed(userId, n, true);
    } catch (err) {
      if (!(err instanceof StoreError && err.kind === 'ALREADYEXISTS')) throw err;
    }
  }
  return (await store.getMailbox(userId, name))!;
}

/** Imports folders into a user's mailboxes; see the file comment for resume rules. */
export async function importFolders(
  store: MailStore,
  userId: number,
  folders: SourceFolder[],
  opts: { keepLineEndings?: boolean; progress?: Progress } = {},
): Promise<ImportSummary> {
  const summary: ImportSummary = { folders: 0, imported: 0, skipped: 0 };
  const convert = (b: Buffer) => (opts.keepLineEndings ? b : toCrlf(b));
  for (const folder of folders) {
    const mb = await ensureMailbox(store, userId, folder.name);
    const existing = await store.listMessages(mb.id);
    let todo: SourceMessage[] = folder.messages;
    let keepUids = false;
    if (existing.length === 0 && mb.uidNext === 1) {
      keepUids = true;
    } else if (folder.uidValidity !== undefined && folder.uidValidity === mb.uidValidity) {
      keepUids = true; // an interrupted import of this source: continue after it
      todo = folder.messages.filter((m) => m.uid >= mb.uidNext);
    } else if (folder.uidValidity === undefined && existing.length <= folder.messages.length && existing.every((m, i) => m.uid === i + 1)) {
      const lastSrc = folder.messages[existing.length - 1];
      const lastDst = existing[existing.length - 1];
      if (lastSrc && lastDst && lastSrc.uid === lastDst.uid && convert(await lastSrc.read()).length === lastDst.size) {
        keepUids = true;
        todo = folder.messages.slice(existing.length);
      }
    }
    summary.skipped += folder.messages.length - todo.length;
    const total = folder.messages.length;
    let done = total - todo.length;
    let nextUid = keepUids ? 0 : mb.uidNext;
    let batch: ImportInput[] = [];
    let bytes = 0;
    const flush = async (last: boolean) => {
      if (batch.length === 0 && !(last && keepUids)) return;
      await store.importMessages(
        mb.id,
        batch,
        keepUids ? { uidValidity: folder.uidValidity, uidNext: last ? folder.uidNext : undefined } : {},
      );
      done += batch.length;
      summary.imported += batch.length;
      batch = [];
      bytes = 0;
      opts.progress?.(folder.name, done, total);
    };
    opts.progress?.(folder.name, done, total);
    for (const m of todo) {
      const data = convert(await m.read());
      batch.push({ uid: keepUids ? m.uid : nextUid++, data, flags: m.flags, internalDate: m.internalDate });
      bytes += data.length;
      if (batch.length >= IMPORT_BATCH_MESSAGES || bytes >= IMPORT_BATCH_BYTES) await flush(false);
    }
    await flush(true);
    summary.folders++;
  }
  return summary;
}

/** mbox files of a path: the file itself, or every *.mbox below a directory (mailbox = relative path without .mbox). */
async function mboxSources(p: string, mailbox: string | undefined, variant: MboxVariant): Promise<SourceFolder[]> {
  const st = await fs.stat(p);
  const files: { file: string; name: string }[] = [];
  if (st.isDirectory()) {
    const walk = async (dir: string, prefix: string): Promise<void> => {
      for (const e of (await fs.readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
        if (e.isDirectory()) await walk(path.join(dir, e.name), `${prefix}${e.name}/`);
        else if (e.name.endsWith('.mbox')) files.push({ file: path.join(dir, e.name), name: prefix + e.name.slice(0, -5) });
      }
    };
    await walk(p, '');
    if (mailbox !== undefined) throw new Error('--mailbox applies to a single mbox file, not a directory');
  } else {
    files.push({ file: p, name: mailbox ?? 'INBOX' });
  }
  const out: SourceFolder[] = [];
  for (const f of files) {
    const msgs = await readMbox(f.file, variant);
    const now = Date.now();
    out.push({
      name: /^inbox$/i.test(f.name) ? 'INBOX' : f.name,
      messages: msgs.map((m, i) => ({ uid: i + 1, flags: m.flags, internalDate: m.internalDate ?? now, read: async () => m.data })),
    });
  }
  return out;
}

export interface ExportSummary {
  folders: number;
  messages: number;
  droppedKeywords: string[];
  /** Mailboxes not written because their names cannot be file names (UnsafeNameError texts). */
  skipped: string[];
}

async function* eachMessage(store: MailStore, mb: MailboxInfo, crlf: boolean) {
  for (const m of await store.listMessages(mb.id)) {
    const body = await store.openMessage(mb.id, m.uid);
    if (!body) continue; // expunged meanwhile
    const data = await body.read(0, body.size);
    yield { meta: m, data: crlf ? data : toLf(data) };
  }
}

export async function exportMaildir(store: MailStore, userId: number, dir: string, opts: { crlf?: boolean; progress?: Progress } = {}): Promise<ExportSummary> {
  const summary: ExportSummary = { folders: 0, messages: 0, droppedKeywords: [], skipped: [] };
  for (const mb of await store.listMailboxes(userId)) {
    let w: MaildirFolderWriter;
    try {
      w = new MaildirFolderWriter(dir, mb.name, mb.uidValidity, mb.uidNext);
    } catch (e) {
      if (!(e instanceof UnsafeNameError)) throw e;
      summary.skipped.push(e.message);
      continue;
    }
    await w.open();
    const total = (await store.mailboxStatus(mb.id)).messages;
    let n = 0;
    for await (const { meta, data } of eachMessage(store, mb, !!opts.crlf)) {
      await w.add({ uid: meta.uid, flags: meta.flags, internalDate: meta.internalDate, data });
      opts.progress?.(mb.name, ++n, total);
    }
    await w.close();
    summary.droppedKeywords.push(...[...w.dropped].map((k) => `${mb.name}: ${k}`));
    summary.folders++;
    summary.messages += n;
  }
  return summary;
}

export async function exportMbox(store: MailStore, userId: number, dir: string, opts: { crlf?: boolean; progress?: Progress } = {}): Promise<ExportSummary> {
  const summary: ExportSummary = { folders: 0, messages: 0, droppedKeywords: [], skipped: [] };
  for (const mb of await store.listMailboxes(userId)) {
    // Levels become directories, the last one <level>.mbox, each checked (a name
    // like "../../escaped" was once written two levels up).
    let file: string;
    try {
      const levels = safeLevels(mb.name);
      levels[levels.length - 1] += '.mbox';
      file = within(dir, ...levels);
    } catch (e) {
      if (!(e instanceof UnsafeNameError)) throw e;
      summary.skipped.push(e.message);
      continue;
    }
    await fs.mkdir(path.dirname(file), { recursive: true });
    const fh = await fs.open(file, 'w');
    const total = (await store.mailboxStatus(mb.id)).messages;
    let n = 0;
    try {
      for await (const { meta, data } of eachMessage(store, mb, false)) {
        let out = formatMboxMessage(data, meta.flags, meta.internalDate);
        if (opts.crlf) out = toCrlf(out);
        await fh.write(out);
        opts.progress?.(mb.name, ++n, total);
      }
    } finally {
      await fh.close();
    }
    summary.folders++;
    summary.messages += n;
  }
  return summary;
}

export function registerTransfer(program: Command, h: AdminHelpers): void {
  const imp = program.command('import').description('import mail into a user\'s mailboxes (resumable)');
  const exp = program.command('export').description('export a user\'s mailboxes');
  registerImapImport(imp, h);
  const report = (s: ImportSummary, source: string, what: string) => {
    // An import that found nothing is a mistake (wrong path or format), not a success (ops).
    if (s.imported === 0 && s.skipped === 0) throw new Error(`found no messages in ${source} (${s.folders} folder(s) scanned; is it ${what}?)`);
    process.stdout.write(`imported ${s.imported} message(s) into ${s.folders} mailbox(es)${s.skipped ? `; ${s.skipped} already present` : ''}\n`);
  };

  h.addStoreOptions(imp.command('maildir').argument('<dir>', 'Maildir root (Dovecot layout: .Folder directories, dovecot-uidlist, dovecot-keywords)'))
    .description('import a Maildir, keeping UIDVALIDITY, UIDs, flags, keywords and dates')
    .requiredOption('--user <name>', 'the user to import into')
    .option('--keep-line-endings', 'store messages as they are instead of converting LF to CRLF')
    .action(async (dir: string, opts: Record<string, unknown>) => {
      const folders = await readMaildir(dir);
      const s = await h.withStore(opts, false, async (store) =>
        importFolders(store, (await requireUser(store, String(opts.user))).id, folders, { keepLineEndings: !!opts.keepLineEndings, progress: ttyProgress() }),
      );
      report(s, dir, 'a Maildir root with cur/ and new/, or Dovecot .Folder directories');
    });

  h.addStoreOptions(imp.command('mbox').argument('<path>', 'an mbox file, or a directory of *.mbox files (sub-directories = hierarchy)'))
    .description('import mbox (Status/X-Status/X-Keywords become flags)')
    .requiredOption('--user <name>', 'the user to import into')
    .option('--mailbox <name>', 'target mailbox for a single file (default INBOX)')
    .option('--variant <variant>', 'mboxrd (default) or mboxo: how ">From " lines are unescaped', 'mboxrd')
    .option('--keep-line-endings', 'store messages as they are instead of converting LF to CRLF')
    .action(async (p: string, opts: Record<string, unknown>) => {
      const variant = String(opts.variant);
      if (variant !== 'mboxrd' && variant !== 'mboxo') throw new Error('--variant must be mboxrd or mboxo');
      const folders = await mboxSources(p, opts.mailbox as string | undefined, variant);
      const s = await h.withStore(opts, false, async (store) =>
        importFolders(store, (await requireUser(store, String(opts.user))).id, folders, { keepLineEndings: !!opts.keepLineEndings, progress: ttyProgress() }),
      );
      report(s, p, 'an mbox file, or a directory of *.mbox files');
    });

  for (const format of ['maildir', 'mbox'] as const) {
    h.addStoreOptions(exp.command(format).argument('<dir>', format === 'maildir' ? 'Maildir root to create' : 'directory for one <mailbox>.mbox file per mailbox'))
      .description(format === 'maildir' ? 'export as a Maildir in Dovecot\'s layout (UIDs, flags, keywords, dates kept)' : 'export as mboxrd files with Status/X-Status/X-Keywords')
      .requiredOption('--user <name>', 'the user to export')
      .option('--crlf', 'write CRLF line ends (default: LF)')
      .action(async (dir: string, opts: Record<string, unknown>) => {
        await fs.mkdir(dir, { recursive: true });
        const s = await h.withStore(opts, false, async (store) => {
          const u = await requireUser(store, String(opts.user));
          const o = { crlf: !!opts.crlf, progress: ttyProgress() };
          return format === 'maildir' ? exportMaildir(store, u.id, dir, o) : exportMbox(store, u.id, dir, o);
        });
        process.stdout.write(`exported ${s.messages} message(s) from ${s.folders} mailbox(es)\n`);
        for (const k of s.droppedKeywords) process.stderr.write(`warning: keyword not representable in Maildir (26 per folder): ${k}\n`);
        for (const k of s.skipped) process.stderr.write(`warning: skipped ${k}\n`);
      });
  }
}
