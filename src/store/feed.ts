// In-process change feed (STYLE habit 10): every committed mutation is
// published here after its commit, and each session of the user receives the
// records in publish order.

import type { Change, ChangeFeed, ChangeListener } from './types.js';

export type FeedErrorHandler = (err: unknown, change: Change) => void;

/**
 * A synchronous, in-process ChangeFeed.
 *
 * - A listener that throws is reported to `onError` and does not stop the
 *   other listeners.
 * - Dispatch order equals publish order, also when a listener publishes
 *   while being dispatched to (the nested record is queued and delivered
 *   after the current one has reached every listener).
 * - A listener subscribed during a dispatch receives records published after
 *   its subscription only; one unsubscribed during a dispatch receives no
 *   further records.
 */
export class LocalChangeFeed implements ChangeFeed {
  private readonly listeners = new Map<number, Set<ChangeListener>>();
  private readonly queue: Change[] = [];
  private dispatching = false;

  constructor(private readonly onError: FeedErrorHandler = defaultOnError) {}

  subscribe(userId: number, listener: ChangeListener): () => void {
    let set = this.listeners.get(userId);
    if (!set) {
      set = new Set();
      this.listeners.set(userId, set);
    }
    // Wrap so the same function may be subscribed twice and unsubscribed independently.
    const entry: ChangeListener = (c) => listener(c);
    set.add(entry);
    let active = true;
    return () => {
      if (!active) return;
      active = false;
      const s = this.listeners.get(userId);
      if (!s) return;
      s.delete(entry);
      if (s.size === 0) this.listeners.delete(userId);
    };
  }

  publish(change: Change): void {
    this.queue.push(change);
    if (this.dispatching) return;
    this.dispatching = true;
    try {
      let next: Change | undefined;
      while ((next = this.queue.shift()) !== undefined) this.dispatch(next);
    } finally {
      this.dispatching = false;
    }
  }

  /** Number of listeners of a user (for tests and diagnostics). */
  listenerCount(userId: number): number {
    return this.listeners.get(userId)?.size ?? 0;
  }

  private dispatch(change: Change): void {
    const set = this.listeners.get(change.userId);
    if (!set) return;
    for (const listener of [...set]) {
      if (!set.has(listener)) continue; // unsubscribed by an earlier listener
      try {
        listener(change);
      } catch (err) {
        try {
          this.onError(err, change);
        } catch {
          // an error handler that throws must not break dispatch either
        }
      }
    }
  }
}

function defaultOnError(err: unknown, change: Change): void {
  console.error(`quire: change listener failed on ${change.kind} for user ${change.userId}:`, err);
}
