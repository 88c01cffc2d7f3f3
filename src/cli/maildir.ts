// Maildir in Dovecot's layout, read for `quire import maildir` and written by
// `quire export maildir`:
// - the root's cur/new/tmp is INBOX; a sub-folder "A/B" is the directory
//   ".A.B" (Maildir++), each name part in modified UTF-7 (RFC 3501 §5.1.3);
// - flags are the letters after ":2," in a file name: D \Draft, F \Flagged,
//   P $Forwarded, R \Answered, S \Seen, T \Deleted; "a".."z" are the keywords
//   numbered 0..25 in the folder's dovecot-keywords file;
// - dovecot-uidlist gives UIDVALIDITY, UIDNEXT and each file's UID (versions 1
//   and 3 of the format); files it does not list get UIDs after the listed ones;
// - INTERNALDATE is the file's modification time.

import { promises as fs } from 'node:fs';
import path from 'node:path';
import { safeLevels, within } from './fs-names.js';
import { decodeMutf7, encodeMutf7 } from '../wire/index.js';

export interface SourceMessage {
  /** UID from dovecot-uidlist (or assigned after the listed ones), ascending within a folder. */
  uid: number;
  flags: string[];
  internalDate: number;
  read(): Promise<Buffer>;
}

export interface SourceFolder {
  /** Mailbox name with "/" as separator; "INBOX" for the root. */
  name: string;
  uidValidity?: number;
  uidNext?: number;
  messages: SourceMessage[];
}

const LETTER_FLAGS: Record<string, string> = { D: '\\Draft', F: '\\Flagged', P: '$Forwarded', R: '\\Answered', S: '\\Seen', T: '\\Deleted' };
const FLAG_LETTERS = new Map(Object.entries(LETTER_FLAGS).map(([l, f]) => [f.toLowerCase(), l]));
/** Maildir can name at most 26 keywords per folder (letters a-z). */
export const MAILDIR_MAX_KEYWORDS = 26;

async function exists(p: string): Promise<boolean> {
  return fs.stat(p).then(
    () => true,
    () => false,
  );
}

/** Folder name from a Maildir++ directory name (".A.B" → "A/B"). */
export function folderName(dir: string): string {
  return dir
    .slice(1)
    .split('.')
    .map((p) => {
      try {
        return decodeMutf7(p);
      } catch {
        return p; // not valid modified UTF-7: take the name as it is
      }
    })
    .join('/');
}

/**
 * Maildir++ directory name of a mailbox ("A/B" → ".A.B"). A "." inside a name
 * becomes a level, as in Dovecot. Levels that are empty, "." or ".." are
 * refused (UnsafeNameError): ".." + "." would name the parent directory.
 * Modified UTF-7 never yields "/", so the result is one path component.
 */
export function folderDir(name: string): string {
  return '.' + safeLevels(name).map((p) => encodeMutf7(p)).join('.');
}

async function readKeywords(dir: string): Promise<Map<number, string>> {
  const map = new Map<number, string>();
  const text = await fs.readFile(path.join(dir, 'dovecot-keywords'), 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    const m = /^(\d+) (\S+)$/.exec(line.trim());
    if (m) map.set(Number(m[1]), m[2]!);
  }
  return map;
}

interface UidList {
  uidValidity?: number;
  uidNext?: number;
  byBase: Map<string, number>;
}

/** Parses dovecot-uidlist (version 1: "1 V N"; version 3: "3 Vn Nn ..."; entries "uid [ext] :base" or "uid base"). */
export function parseUidList(text: string): UidList {
  const lines = text.split('\n');
  const out: UidList = { byBase: new Map() };
  const head = (lines[0] ?? '').trim().split(/\s+/);
  if (head[0] === '1') {
    out.uidValidity = Number(head[1]);
    out.uidNext = Number(head[2]);
  } else if (head[0] === '3') {
    for (const f of head.slice(1)) {
      if (f[0] === 'V') out.uidValidity = Number(f.slice(1));
      if (f[0] === 'N') out.uidNext = Number(f.slice(1));
    }
  } else {
    return out;
  }
  for (const line of lines.slice(1)) {
    const m = /^(\d+)\s+(?:.*?\s)?:?(\S+)$/.exec(line.trim());
    if (!m) continue;
    const colon = line.indexOf(' :');
    const base = colon >= 0 ? line.slice(colon + 2).trim() : m[2]!;
    out.byBase.set(base.split(':')[0]!, Number(m[1]));
  }
  for (const k of ['uidValidity', 'uidNext'] as const) if (!Number.isInteger(out[k]) || out[k]! <= 0) delete out[k];
  return out;
}

/** Flags of a Maildir file name ("base:2,FRa" → \Flagged \Answered and keyword 0). */
export function flagsFromName(name: string, keywords: Map<number, string>): string[] {
  const i = name.indexOf(':2,');
  if (i < 0) return [];
  const flags: string[] = [];
  for (const ch of name.slice(i + 3)) {
    if (LETTER_FLAGS[ch]) flags.push(LETTER_FLAGS[ch]!);
    else if (ch >= 'a' && ch <= 'z') {
      const k = keywords.get(ch.charCodeAt(0) - 97);
      if (k) flags.push(k);
    }
  }
  return flags;
}

async function readFolder(dir: string, name: string): Promise<SourceFolder> {
  const keywords = await readKeywords(dir);
  const uidlist = parseUidList(await fs.readFile(path.join(dir, 'dovecot-uidlist'), 'utf8').catch(() => ''));
  const files: { file: string; base: string; flags: string[] }[] = [];
  for (const sub of ['cur', 'new']) {
    const names = await fs.readdir(path.join(dir, sub)).catch(() => [] as string[]);
    for (const n of names) {
      if (n.startsWith('.')) continue;
      files.push({ file: path.join(dir, sub, n), base: n.split(':')[0]!, flags: sub === 'cur' ? flagsFromName(n, keywords) : [] });
    }
  }
  const known = files.filter((f) => uidlist.byBase.has(f.base)).sort((a, b) => uidlist.byBase.get(a.base)! - uidlist.byBase.get(b.base)!);
  const unknown = files.filter((f) => !uidlist.byBase.has(f.base)).sort((a, b) => (a.base < b.base ? -1 : a.base > b.base ? 1 : 0));
  let next = Math.max(uidlist.uidNext ?? 1, ...known.map((f) => uidlist.byBase.get(f.base)! + 1));
  const messages: SourceMessage[] = [];
  for (const f of [...known, ...unknown]) {
    const st = await fs.stat(f.file);
    const uid = uidlist.byBase.get(f.base) ?? next++;
    messages.push({ uid, flags: f.flags, internalDate: Math.floor(st.mtimeMs), read: () => fs.readFile(f.file) });
  }
  return { name, uidValidity: uidlist.uidValidity, uidNext: Math.max(next, uidlist.uidNext ?? 0), messages };
}

/** Every folder of a Maildir root (INBOX first). */
export async function readMaildir(root: string): Promise<SourceFolder[]> {
  const st = await fs.stat(root).catch(() => null);
  if (!st?.isDirectory()) throw new Error(`${root} is not a directory`);
  const out: SourceFolder[] = [];
  if ((await exists(path.join(root, 'cur'))) || (await exists(path.join(root, 'new')))) out.push(await readFolder(root, 'INBOX'));
  const entries = (await fs.readdir(root, { withFileTypes: true })).filter((e) => e.isDirectory() && e.name.startsWith('.') && e.name !== '.' && e.name !== '..');
  for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const dir = path.join(root, e.name);
    if (!(await exists(path.join(dir, 'cur'))) && !(await exists(path.join(dir, 'new')))) continue;
    out.push(await readFolder(dir, folderName(e.name)));
  }
  if (out.length === 0) throw new Error(`${root} holds no Maildir (no cur/ or new/ and no .Folder directories)`);
  return out;
}

export interface ExportMessage {
  uid: number;
  flags: string[];
  internalDate: number;
  data: Buffer;
}

/** Writes one folder: cur/ files named with flags, dovecot-keywords, dovecot-uidlist; mtime = INTERNALDATE. */
export class MaildirFolderWriter {
  private readonly keywords: string[] = [];
  private readonly entries: string[] = [];
  private readonly dir: string;
  /** Keywords that did not fit in a-z (reported to the caller). */
  readonly dropped = new Set<string>();

  constructor(
    root: string,
    name: string,
    private readonly uidValidity: number,
    private readonly uidNext: number,
  ) {
    this.dir = name === 'INBOX' ? root : within(root, folderDir(name));
  }

  async open(): Promise<void> {
    for (const sub of ['cur', 'new', 'tmp']) await fs.mkdir(path.join(this.dir, sub), { recursive: true });
  }

  private letters(flags: string[]): string {
    const out: string[] = [];
    for (const f of flags) {
      const l = FLAG_LETTERS.get(f.toLowerCase());
      if (l) {
        out.push(l);
        continue;
      }
      if (f.startsWith('\\')) continue;
      let i = this.keywords.findIndex((k) => k.toLowerCase() === f.toLowerCase());
      if (i < 0 && this.keywords.length < MAILDIR_MAX_KEYWORDS) i = this.keywords.push(f) - 1;
      if (i < 0) this.dropped.add(f);
      else out.push(String.fromCharCode(97 + i));
    }
    return [...new Set(out)].sort().join('');
  }

  async add(m: ExportMessage): Promise<void> {
    const sec = Math.floor(m.internalDate / 1000);
    const base = `${sec}.Q${m.uid}V${this.uidValidity}.quire,S=${m.data.length}`;
    const file = path.join(this.dir, 'cur', `${base}:2,${this.letters(m.flags)}`);
    await fs.writeFile(file, m.data);
    const t = new Date(m.internalDate);
    await fs.utimes(file, t, t);
    this.entries.push(`${m.uid} :${base}`);
  }

  async close(): Promise<void> {
    await fs.writeFile(path.join(this.dir, 'dovecot-keywords'), this.keywords.map((k, i) => `${i} ${k}\n`).join(''));
    await fs.writeFile(path.join(this.dir, 'dovecot-uidlist'), `3 V${this.uidValidity} N${this.uidNext}\n` + this.entries.map((e) => `${e}\n`).join(''));
  }
}
