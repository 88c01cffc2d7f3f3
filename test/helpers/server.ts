// An in-process Quire for behaviour tests: a real SQLite store in a temp
// directory (or PostgreSQL, see `store`), real sockets on loopback ports chosen by the OS.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openSqliteStore, type SqliteStoreOptions } from '../../src/store/sqlite/index.js';
import { openPostgresStore } from '../../src/store/postgres/index.js';
import { PG_URL, dropSchema, freshSchema } from './pg.js';
import { Authenticator, type AuthenticatorOptions } from '../../src/auth/authenticator.js';
import { startServer, type RunningServer } from '../../src/server/index.js';
import { loadConfig, toServerOptions } from '../../src/cli/config.js';
import { loadOrCreateTls } from '../../src/cli/tls.js';
import { provisionUser } from '../../src/cli/users.js';
import type { MailStore } from '../../src/store/types.js';
import type { ServerOptions, Logger } from '../../src/server/options.js';

export interface TestServer {
  store: MailStore;
  server: RunningServer;
  auth: Authenticator;
  port: number;
  tlsPort: number;
  cert: string;
  dataDir: string;
  /** The PostgreSQL schema of a `store: 'postgres'` server (null on SQLite). */
  pgSchema: string | null;
  /** Everything the server logged at error level (unexpected failures: SERVERBUG). */
  errors: string[];
  stop(): Promise<void>;
}

let tlsPromise: ReturnType<typeof loadOrCreateTls> | null = null;
/** One self-signed certificate per test process (key generation is slow). */
function sharedTls() {
  tlsPromise ??= mkdtemp(path.join(tmpdir(), 'quire-tls-')).then((dir) => loadOrCreateTls({ dataDir: dir, tls: {} } as never));
  return tlsPromise;
}

const quiet: Logger = { debug() {}, info() {}, warn() {}, error: (m, f) => console.error('[server error]', m, f) };

export async function startTestServer(opts: {
  users?: [string, string][];
  tweak?: (o: ServerOptions) => void;
  /** Store limits (e.g. a small maxMailboxesPerUser). */
  storeOptions?: { maxMailboxesPerUser?: number; bodyCacheBytes?: number };
  /** SQLite-only store options (default synchronous NORMAL: no fsyncs; durability tests ask for FULL). */
  sqlite?: Partial<Omit<SqliteStoreOptions, 'dataDir'>>;
  /** Authenticator options beyond the short test delays (user database, master users, bearer tokens). */
  auth?: Omit<AuthenticatorOptions, 'baseDelayMs' | 'maxDelayMs'>;
  /** The store's threads (default: all, as `quire serve`); search: false serves without the search thread. */
  background?: { indexer?: boolean; search?: boolean };
  /**
   * The backend: SQLite in the temp directory (default), or PostgreSQL in a
   * fresh schema dropped at stop() (QUIRE_TEST_STORE=postgres runs a whole
   * behaviour test file so: test/store/postgres-behaviour.ts).
   */
  store?: 'sqlite' | 'postgres';
  /** The PostgreSQL server's URL (default PG_URL; a fault test puts a forwarder in between). */
  pgUrl?: string;
  /**
   * An existing data directory (SQLite), e.g. of an earlier server: a restart. stop() then leaves it
   * for the caller to remove; pass `users: []` when they exist already.
   */
  dataDir?: string;
} = {}): Promise<TestServer> {
  const dataDir = opts.dataDir ?? (await mkdtemp(path.join(tmpdir(), 'quire-test-')));
  const kind = opts.store ?? (process.env.QUIRE_TEST_STORE === 'postgres' ? 'postgres' : 'sqlite');
  let dropStore = async (): Promise<void> => {};
  let store: MailStore;
  let pgSchema: string | null = null;
  if (kind === 'postgres') {
    const schema = freshSchema('imap');
    pgSchema = schema;
    store = await openPostgresStore({ url: opts.pgUrl ?? PG_URL, schema, poolSize: 6, ...opts.storeOptions });
    dropStore = () => dropSchema(schema);
  } else {
    store = await openSqliteStore({ dataDir, synchronous: 'NORMAL', ...opts.storeOptions, ...opts.sqlite });
  }
  for (const [u, p] of opts.users ?? [['alice', 'secret-a'], ['bob', 'secret-b']]) await provisionUser(store, u, p);
  const config = loadConfig({ env: {}, flags: { data: dataDir } });
  const tls = await sharedTls();
  const errors: string[] = [];
  const log: Logger = {
    ...quiet,
    error: (m, f) => {
      errors.push(`${m} ${JSON.stringify(f ?? {})}`);
      quiet.error(m, f);
    },
  };
  const so = toServerOptions(config, tls, log);
  so.imap = [{ host: '127.0.0.1', port: 0 }];
  so.imaps = [{ host: '127.0.0.1', port: 0 }];
  opts.tweak?.(so);
  // As `quire serve` does: the full-text indexing thread.
  store.startBackgroundWork?.((err) => log.error('full-text indexing failed', { err: String(err) }), opts.background);
  const auth = new Authenticator(store, { baseDelayMs: 20, maxDelayMs: 100, ...opts.auth });
  const server = await startServer(store, auth, so);
  return {
    store,
    server,
    auth,
    port: server.addresses.imap[0]?.port ?? 0,
    tlsPort: server.addresses.imaps[0]?.port ?? 0,
    cert: String(tls.cert),
    dataDir,
    pgSchema,
    errors,
    async stop() {
      await server.close();
      await store.close();
      await dropStore();
      if (!opts.dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}
