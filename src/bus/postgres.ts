// The change bus between the nodes of a PostgreSQL store (issue 13 item 4):
// LISTEN/NOTIFY on the store's channel, as a ChangeBus. The PostgreSQL store
// already NOTIFYs inside every write transaction and follows the journal by
// itself (src/store/postgres/base.ts, listen.ts), so a node needs no other
// bus; this one is for processes that want the hints without a store (and
// to keep one interface for every bus). Hints carry only the user; the
// receiver reads what changed from the journal.
import { PgNotifyListener, channelOf } from '../store/postgres/index.js';
import type { ChangeBus } from './types.js';

export class PgChangeBus extends PgNotifyListener implements ChangeBus {
  /** `schema`: the store's schema (its channel); `onReconnect`: notifications may have been lost, look at everything. */
  constructor(url: string, schema = 'quire', onReconnect: () => void = () => {}) {
    super({ connectionString: url }, channelOf(schema), onReconnect);
  }
}
