// PostgreSQL for tests: the server CI runs at 127.0.0.1:5432 (database
// `test`, trust auth), or QUIRE_TEST_PG. Each caller gets its own schema,
// dropped afterwards. When the server is unreachable the PostgreSQL tests
// fail in CI (process.env.CI set) and are skipped with a message elsewhere.
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export const PG_URL = process.env.QUIRE_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test';

let reachable: Promise<string | null> | null = null;

/** null when PostgreSQL answers; else why not. */
export function pgUnavailable(): Promise<string | null> {
  reachable ??= (async () => {
    const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3000 });
    try {
      await c.connect();
      await c.query('SELECT 1');
      return null;
    } catch (err) {
      return `PostgreSQL at ${PG_URL} unreachable: ${(err as Error).message}`;
    } finally {
      await c.end().catch(() => undefined);
    }
  })();
  return reachable;
}

/**
 * The `skip` option for node:test: false when PostgreSQL answers; a message
 * when not (outside CI). In CI an unreachable server throws, failing the file.
 */
export async function pgSkip(): Promise<false | string> {
  const why = await pgUnavailable();
  if (why === null) return false;
  if (process.env.CI) throw new Error(`${why} (required in CI)`);
  console.log(`# skipping PostgreSQL tests: ${why}`);
  return why;
}

/** A fresh schema name (lower-case, as the store requires). */
export function freshSchema(prefix = 't'): string {
  return `qt_${prefix}_${randomBytes(6).toString('hex')}`;
}

export async function dropSchema(schema: string): Promise<void> {
  const c = new pg.Client({ connectionString: PG_URL });
  try {
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** The store URL of a schema (as `quire --store` takes it). */
export function pgStoreUrl(schema: string): string {
  return `${PG_URL}?schema=${schema}`;
}
