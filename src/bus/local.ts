// The in-process change bus: every subscriber but the publisher's own
// subscriptions (a participant = one `join()`), delivered on the next turn of
// the event loop, never inside the publisher's commit path.
import type { ChangeBus, ChangeHint, HintListener } from './types.js';

export class LocalChangeBus {
  private readonly members = new Set<Member>();

  /** A participant: what it publishes reaches every other participant. */
  join(): ChangeBus {
    const m = new Member(this.members);
    this.members.add(m);
    return m;
  }
}

class Member implements ChangeBus {
  readonly listeners = new Set<HintListener>();
  constructor(private readonly members: Set<Member>) {}

  publish(hint: ChangeHint): void {
    for (const m of this.members) {
      if (m === this) continue;
      for (const fn of m.listeners) setImmediate(() => fn(hint));
    }
  }

  subscribe(fn: HintListener): () => void {
    const entry: HintListener = (h) => fn(h);
    this.listeners.add(entry);
    return () => this.listeners.delete(entry);
  }

  async close(): Promise<void> {
    this.listeners.clear();
    this.members.delete(this);
  }
}
