// The change bus: wake-up hints between the processes that serve one store
// (the workers of `quire serve`, later the nodes of a PostgreSQL cluster).
// A hint says where to look after a commit (user, mailbox, modseq); it never
// carries the change itself. Each receiver catches up from the database
// (the SQLite store's wake(): its ForeignWatcher reads what changed) and
// publishes the records to its own sessions through its change feed, so a
// lost, late or duplicated hint costs latency, never correctness.
//
// Implementations: LocalChangeBus (one process; also what tests use),
// ClusterChangeBus (node:cluster IPC, relayed by the primary: cluster.ts).
// A PostgreSQL one fits the same interface: publish = NOTIFY on a channel
// after the commit that also wrote the journal row; subscribe = LISTEN;
// receivers read the journal from their last position.
import type { ChangeHint } from '../store/types.js';

export type { ChangeHint };

export type HintListener = (hint: ChangeHint) => void;

export interface ChangeBus {
  /** Tells the other participants that a commit happened (after it is durable). */
  publish(hint: ChangeHint): void;
  /** Receives the hints of the other participants; returns an unsubscribe function. */
  subscribe(fn: HintListener): () => void;
  close(): Promise<void>;
}

