// Entry point of the PostgreSQL backend (issue 13): several stateless nodes
// over one database. See store.ts for the store, base.ts for transactions
// and the change feed across nodes, schema.ts for the migrations.
import { PgMailStore, type PgStoreOptions } from './store.js';

export { PgMailStore, splitStoreUrl, type PgStoreOptions } from './store.js';
export { PgBlobStore, BLOB_CHUNK_SIZE, type BlobStore } from './blobs.js';
export { PgNotifyListener, channelOf } from './listen.js';
export { MIGRATIONS } from './schema.js';

/** Opens (migrating if needed) the store in the schema named by the options or the URL's `?schema=` (default "quire"). */
export function openPostgresStore(opts: PgStoreOptions): Promise<PgMailStore> {
  return PgMailStore.open(opts);
}
