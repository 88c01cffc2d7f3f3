// A Dovecot-compatible passwd-file user database:
//
//   user:{SCHEME}password:uid:gid:gecos:home:shell:extra_fields
//
// Only the first two fields are required; uid/gid/gecos/home/shell are
// ignored (Quire keeps mail in its own store). extra_fields are
// space-separated key=value pairs; understood:
//   userdb_quota_rule=*:storage=<size>   (size: bytes, or with k/M/G/T; "userdb_quota_rule2" etc. too)
//   userdb_quota_rule=*:messages=<n>
//   userdb_aliases=<addr>[,<addr>...]    (delivery addresses for the local user)
//   nologin                              (the account may not log in)
// Lines starting with "#" and blank lines are skipped. A password without
// a {SCHEME} prefix uses `defaultScheme` (Dovecot's default: CRYPT).
//
// The file is re-read when its mtime or size changes (checked at most once
// per PASSWD_FILE_CHECK_MS), so edits take effect without a reload; a file
// that fails to read keeps the previous contents in use and is logged.

import { promises as fs } from 'node:fs';
import { DerivedVerifiers, storedPasswordEntry } from './stored.js';
import type { Account, UserDb, UserEntry } from './types.js';

/** How often the file's mtime is checked (ms). */
export const PASSWD_FILE_CHECK_MS = 1000;
/** Largest passwd-file read (bytes): about a million users. */
export const MAX_PASSWD_FILE_BYTES = 128 * 1024 * 1024;
/** Longest line considered (longer lines are skipped and logged). */
const MAX_LINE = 16 * 1024;

interface Line {
  name: string;
  password: string;
  account: Account;
  nologin: boolean;
}

const SIZE_SUFFIX: Record<string, number> = { '': 1, B: 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

function parseQuotaRule(rule: string, account: Account): void {
  const m = /^\*:(storage|messages)=(\d+)([bBkKmMgGtT]?)$/.exec(rule);
  if (!m) return;
  account.quota ??= {};
  const n = Number(m[2]);
  if (m[1] === 'storage') account.quota.storage = n * SIZE_SUFFIX[m[3]!.toUpperCase()]!;
  else account.quota.messages = n;
}

/** Parses the file's text into entries by lower-cased name; bad lines are reported through `warn`. */
export function parsePasswdFile(text: string, warn: (msg: string) => void): Map<string, Line> {
  const out = new Map<string, Line>();
  let lineNo = 0;
  for (const raw of text.split('\n')) {
    lineNo++;
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line === '' || line.startsWith('#')) continue;
    if (line.length > MAX_LINE) {
      warn(`passwd-file line ${lineNo}: longer than ${MAX_LINE} characters, skipped`);
      continue;
    }
    const f = line.split(':');
    const name = f[0]!;
    if (name === '' || f.length < 2) {
      warn(`passwd-file line ${lineNo}: expected user:password[:...], skipped`);
      continue;
    }
    // Extra fields are the 8th field onwards (they may contain ":", e.g. quota rules).
    const extra = f.length > 7 ? f.slice(7).join(':') : '';
    const account: Account = { name };
    let nologin = false;
    for (const kv of extra.split(' ').filter(Boolean)) {
      const eq = kv.indexOf('=');
      const k = eq < 0 ? kv : kv.slice(0, eq);
      const v = eq < 0 ? '' : kv.slice(eq + 1);
      if (/^userdb_quota_rule\d*$/.test(k)) parseQuotaRule(v, account);
      else if (k === 'userdb_aliases') account.aliases = v.split(',').filter(Boolean);
      else if (k === 'nologin') nologin = true;
    }
    const key = name.toLowerCase();
    if (out.has(key)) warn(`passwd-file line ${lineNo}: user ${name} appears twice, the first entry is used`);
    else out.set(key, { name, password: f[1]!, account, nologin });
  }
  return out;
}

export interface PasswdFileOptions {
  path: string;
  /** Scheme of passwords without a {SCHEME} prefix (default CRYPT, as Dovecot). */
  defaultScheme?: string;
  warn?: (msg: string, fields?: Record<string, unknown>) => void;
  now?: () => number;
}

export class PasswdFileUserDb implements UserDb {
  readonly kind = 'passwd-file';
  /** {SCRAM-SHA-256} and {PLAIN} entries can do SCRAM; for hashed entries the exchange fails (see docs/config.md). */
  readonly scram = true;
  private entries = new Map<string, Line>();
  private mtime = -1;
  private size = -1;
  private checkedAt = -Infinity;
  private loading: Promise<void> | null = null;
  private readonly derived = new DerivedVerifiers();
  private readonly warn: (msg: string, fields?: Record<string, unknown>) => void;
  private readonly now: () => number;
  private readonly defaultScheme: string;

  constructor(private readonly opts: PasswdFileOptions) {
    this.warn = opts.warn ?? (() => {});
    this.now = opts.now ?? Date.now;
    this.defaultScheme = opts.defaultScheme ?? 'CRYPT';
  }

  /** Reads the file now (also done lazily before lookups). Rejects when the file cannot be read the first time. */
  async load(): Promise<void> {
    const st = await fs.stat(this.opts.path);
    this.checkedAt = this.now();
    if (st.mtimeMs === this.mtime && st.size === this.size) return;
    if (st.size > MAX_PASSWD_FILE_BYTES) throw new Error(`passwd-file ${this.opts.path} is larger than ${MAX_PASSWD_FILE_BYTES} bytes`);
    const text = await fs.readFile(this.opts.path, 'utf8');
    this.entries = parsePasswdFile(text, (m) => this.warn(m, { file: this.opts.path }));
    this.derived.clear();
    this.mtime = st.mtimeMs;
    this.size = st.size;
  }

  private async fresh(): Promise<void> {
    if (this.now() - this.checkedAt < PASSWD_FILE_CHECK_MS) return;
    this.loading ??= this.load()
      .catch((e: unknown) => {
        if (this.mtime < 0) throw e;
        this.warn('passwd-file could not be re-read; keeping the previous contents', { file: this.opts.path, error: String(e) });
      })
      .finally(() => {
        this.loading = null;
      });
    await this.loading;
  }

  async find(name: string): Promise<UserEntry | null> {
    await this.fresh();
    const line = this.entries.get(name.toLowerCase());
    if (!line) return null;
    return storedPasswordEntry(line.account, line.password, { defaultScheme: this.defaultScheme, nologin: line.nologin, derived: this.derived, warn: this.warn, source: 'passwd-file' });
  }
}
