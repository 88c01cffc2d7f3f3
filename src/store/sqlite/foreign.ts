// Changes committed by another process on the same database (`quire import`,
// `quire mailbox ...`, a second server on the same data directory) reach this
// process's sessions too: SQLite's data_version moves when another connection
// commits, and the mailboxes whose HIGHESTMODSEQ moved beyond what this
// process last published are turned into the same change records a local
// writer emits (appends, flag changes, expunges), in that order.
import type Database from 'better-sqlite3';
import type { Change, ChangeFeed } from '../types.js';
import { META_COLS, meta, type MetaRow } from './metadata.js';

/** How often the database is checked for other processes' commits (ms). */
export const FOREIGN_POLL_MS = 500;

interface Known {
  modseq: number;
  uidNext: number;
}

export class ForeignWatcher {
  private readonly known = new Map<number, Known>();
  private dataVersion: number;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly db: Database.Database,
    private readonly feed: ChangeFeed,
  ) {
    this.dataVersion = db.pragma('data_version', { simple: true }) as number;
    for (const r of this.mailboxes()) this.known.set(r.id, { modseq: r.highest_modseq, uidNext: r.uid_next });
  }

  start(): void {
    this.timer = setInterval(() => {
      try {
        this.poll();
      } catch {
        // A busy or closing database: try again next time.
      }
    }, FOREIGN_POLL_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** What this process itself published: never reported again as foreign. */
  noteLocal(c: Change): void {
    if (!('modseq' in c)) return;
    const k = this.known.get(c.mailboxId) ?? { modseq: 0, uidNext: 1 };
    if (c.modseq > k.modseq) k.modseq = c.modseq;
    if (c.kind === 'append') for (const m of c.messages) if (m.uid >= k.uidNext) k.uidNext = m.uid + 1;
    this.known.set(c.mailboxId, k);
  }

  private mailboxes(): { id: number; user_id: number; highest_modseq: number; uid_next: number }[] {
    return this.db.prepare('SELECT id, user_id, highest_modseq, uid_next FROM mailboxes').all() as {
      id: number;
      user_id: number;
      highest_modseq: number;
      uid_next: number;
    }[];
  }

  /** Publishes other processes' changes since the last poll. */
  poll(): void {
    const v = this.db.pragma('data_version', { simple: true }) as number;
    if (v === this.dataVersion) return;
    this.dataVersion = v;
    const rows = this.mailboxes();
    const changed = this.db.prepare(
      `SELECT ${META_COLS} FROM messages WHERE mailbox_id = ? AND modseq > ? ORDER BY uid`,
    );
    const expunged = this.db.prepare('SELECT uid FROM expunged WHERE mailbox_id = ? AND modseq > ? ORDER BY uid').pluck();
    for (const r of rows) {
      const k = this.known.get(r.id);
      if (!k) {
        // A mailbox created elsewhere: from now on its changes are followed.
        this.known.set(r.id, { modseq: r.highest_modseq, uidNext: r.uid_next });
        continue;
      }
      if (r.highest_modseq <= k.modseq) continue;
      const metas = (changed.raw().all(r.id, k.modseq) as MetaRow[]).map(meta);
      const appended = metas.filter((m) => m.uid >= k.uidNext);
      const flagged = metas.filter((m) => m.uid < k.uidNext);
      const gone = expunged.all(r.id, k.modseq) as number[];
      const base = { userId: r.user_id, mailboxId: r.id, modseq: r.highest_modseq };
      k.modseq = r.highest_modseq;
      k.uidNext = Math.max(k.uidNext, r.uid_next);
      if (appended.length) this.feed.publish({ kind: 'append', ...base, messages: appended });
      if (flagged.length) this.feed.publish({ kind: 'flags', ...base, messages: flagged });
      if (gone.length) this.feed.publish({ kind: 'expunge', ...base, uids: gone });
    }
  }
}
