// The write gate: every writer of one store (each connection of this
// process, its indexing thread and, in a cluster, every worker through the
// primary) queues here before its transaction, so no writer ever sleeps on
// the event loop in SQLite's busy handler.

/** A FIFO lock over write transactions (see SqliteStoreOptions.writeGate). */
export interface WriteGate {
  /** Resolves with the release function once the caller may begin its transaction. */
  acquire(): Promise<() => void>;
}

/** The in-process WriteGate: first come, first served. */
export class LocalWriteGate implements WriteGate {
  private held = false;
  private readonly queue: (() => void)[] = [];
  /** Called each time an acquire has to wait (a cluster's primary revokes the workers' leases: bus/cluster.ts). */
  onQueued: (() => void) | null = null;

  acquire(): Promise<() => void> {
    return new Promise((resolve) => {
      const grant = () => {
        this.held = true;
        let released = false;
        resolve(() => {
          if (released) return;
          released = true;
          this.release();
        });
      };
      if (!this.held) grant();
      else {
        this.queue.push(grant);
        this.onQueued?.();
      }
    });
  }

  private release(): void {
    const next = this.queue.shift();
    if (next) next();
    else this.held = false;
  }

  /** Writers waiting (for tests and metrics). */
  get waiting(): number {
    return this.queue.length;
  }
}
