// Choosing and opening the store (the composition root's one place for it):
// the embedded SQLite store in the data directory (default), or a
// PostgreSQL store shared by several nodes (issue 13), chosen by
// `store` in quire.json ({"kind":"postgres","url":"postgres://..."}),
// QUIRE_STORE or `--store postgres://HOST/DB` on every command that takes
// --data. With PostgreSQL the data directory keeps only local state
// (certificates, the serve lock).
import type { ChangeFeed, ChangeHint, MailStore } from '../store/types.js';
import type { SqliteStoreOptions } from '../store/sqlite/index.js';

export type StoreConfig =
  | { kind: 'sqlite' }
  | {
      kind: 'postgres';
      /** postgres://user@host:port/db, optionally ?schema=NAME (default schema "quire"). */
      url: string;
      /** Connections in this process's pool. */
      poolSize?: number;
      /** Bodies in files under a path every node mounts (src/store/blob-fs.ts), instead of in PostgreSQL. */
      blobs?: { kind: 'fs'; path: string };
    };

/** Most pooled connections one process may ask for (PostgreSQL's default max_connections is 100). */
const MAX_POOL_SIZE = 100;

/**
 * `store` as the config file, QUIRE_STORE or --store give it: a URL
 * ("postgres://..." / "postgresql://...", or "sqlite"; `?blobs=PATH` puts
 * bodies in files), or an object {kind, url, poolSize, blobs: {kind: "fs",
 * path}}.
 */
export function parseStoreConfig(raw: unknown): StoreConfig {
  if (raw === null || raw === undefined || raw === 'sqlite') return { kind: 'sqlite' };
  if (typeof raw === 'string') {
    if (/^postgres(ql)?:\/\//i.test(raw)) return { kind: 'postgres', url: checkUrl(raw) };
    throw new Error('must be "sqlite", a postgres:// URL or {"kind":"postgres","url":...}');
  }
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new Error('must be an object {"kind": "sqlite" | "postgres", ...}');
  const o = raw as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!['kind', 'url', 'poolSize', 'blobs'].includes(k)) throw new Error(`unknown key "${k}"`);
  if (o.kind === 'sqlite') return { kind: 'sqlite' };
  if (o.kind !== 'postgres') throw new Error('kind must be "sqlite" or "postgres"');
  if (typeof o.url !== 'string' || !/^postgres(ql)?:\/\//i.test(o.url)) throw new Error('url must be a postgres:// URL');
  const out: StoreConfig = { kind: 'postgres', url: checkUrl(o.url) };
  if (o.poolSize !== undefined) {
    if (typeof o.poolSize !== 'number' || !Number.isInteger(o.poolSize) || o.poolSize < 1 || o.poolSize > MAX_POOL_SIZE) throw new Error(`poolSize must be 1..${MAX_POOL_SIZE}`);
    out.poolSize = o.poolSize;
  }
  if (o.blobs !== undefined && o.blobs !== null) {
    const b = o.blobs as Record<string, unknown>;
    if (typeof b !== 'object' || Array.isArray(b)) throw new Error('blobs must be {"kind": "fs", "path": "/shared/path"}');
    for (const k of Object.keys(b)) if (!['kind', 'path'].includes(k)) throw new Error(`unknown key "blobs.${k}"`);
    if (b.kind !== 'fs') throw new Error('blobs.kind must be "fs" (bodies in PostgreSQL: leave blobs out)');
    if (typeof b.path !== 'string' || !b.path.startsWith('/')) throw new Error('blobs.path must be an absolute path');
    out.blobs = { kind: 'fs', path: b.path };
  }
  return out;
}

function checkUrl(url: string): string {
  try {
    new URL(url);
  } catch {
    throw new Error('not a valid URL');
  }
  return url;
}

/** A URL with its password hidden, for logs and banners. */
export function redactStoreUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://(invalid)';
  }
}

export interface OpenStoreOptions {
  /** The data directory (the SQLite store lives there). */
  data: string;
  store?: StoreConfig | string | null;
  synchronous?: 'FULL' | 'NORMAL';
  maxMailboxesPerUser?: number;
  feed?: ChangeFeed;
  /** SQLite-only options (the cluster's write gate, a private database file...); ignored by PostgreSQL. */
  sqlite?: Partial<SqliteStoreOptions>;
  /** After each commit, its hint (the change bus). */
  onCommit?: (hint: ChangeHint) => void;
  /** Publish other processes' commits to this store's feed (default true). */
  followOthers?: boolean;
}

export type OpenedStore = MailStore & { wake(hint: ChangeHint | null): void };

/** Opens the configured store; backends are loaded lazily (`quire --help` loads neither driver). */
export async function openStore(o: OpenStoreOptions): Promise<OpenedStore> {
  const cfg = typeof o.store === 'string' || o.store == null ? parseStoreConfig(o.store) : o.store;
  if (cfg.kind === 'postgres') {
    const { openPostgresStore } = await import('../store/postgres/index.js');
    const store = await openPostgresStore({
      url: cfg.url,
      poolSize: cfg.poolSize,
      blobsPath: cfg.blobs?.path,
      feed: o.feed,
      maxMailboxesPerUser: o.maxMailboxesPerUser,
      followOthers: o.followOthers,
    });
    store.onCommit = o.onCommit;
    return store;
  }
  const { openSqliteStore } = await import('../store/sqlite/index.js');
  return openSqliteStore({
    dataDir: o.data,
    synchronous: o.synchronous,
    maxMailboxesPerUser: o.maxMailboxesPerUser,
    feed: o.feed,
    onCommit: o.onCommit,
    followOthers: o.followOthers,
    ...o.sqlite,
  });
}
