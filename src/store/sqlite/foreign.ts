// Changes committed by another connection on the same database (another
// worker of `quire serve`, `quire import`, `quire mailbox ...`, a second
// server on the same data directory) reach this process's sessions too.
// They are found in the database, never taken from a message: a mailbox whose
// HIGHESTMODSEQ moved beyond what this process last published is turned into
// the same change records a local writer emits (appends, flag changes,
// expunges, in that order); a mailbox that appeared, was renamed or vanished
// becomes mailbox-create / -rename / -delete.
//
// When to look: every FOREIGN_POLL_MS when SQLite's data_version says another
// connection committed (the safety net: CLI processes send no hint); at once
// for the mailboxes a change-bus hint names (the store's wake()); and inside
// this process's own write transactions for the mailbox about to be changed
// (the store's mailbox reads), so that another writer's commit is always
// published before this process's next change of the same mailbox: records
// reach sessions in modseq order and an append is never mistaken for a flag
// change.
import type Database from 'better-sqlite3';
import type { Change } from '../types.js';
import { META_COLS, meta, type MetaRow } from './metadata.js';

/** How often the database is checked for other connections' commits without a hint (ms). */
export const FOREIGN_POLL_MS = 500;

interface Known {
  userId: number;
  name: string;
  modseq: number;
  uidNext: number;
}

/** The columns of a mailbox row the watcher compares. */
export interface WatchedRow {
  id: number;
  user_id: number;
  name: string;
  highest_modseq: number;
  uid_next: number;
}

export class ForeignWatcher {
  private readonly known = new Map<number, Known>();
  private dataVersion: number;
  private timer: NodeJS.Timeout | null = null;
  private readonly byId: Database.Statement;
  private readonly all: Database.Statement;
  private readonly changed: Database.Statement;
  private readonly expunged: Database.Statement;
  /** PRAGMA data_version, prepared once (db.pragma() compiles its statement at every call). */
  private readonly version: Database.Statement;

  constructor(private readonly db: Database.Database) {
    this.byId = db.prepare('SELECT id, user_id, name, highest_modseq, uid_next FROM mailboxes WHERE id = ?');
    this.all = db.prepare('SELECT id, user_id, name, highest_modseq, uid_next FROM mailboxes');
    this.changed = db
      .prepare(`SELECT ${META_COLS} FROM messages WHERE mailbox_id = ? AND modseq > ? AND modseq <= ? ORDER BY uid`)
      .raw();
    this.expunged = db.prepare('SELECT uid FROM expunged WHERE mailbox_id = ? AND modseq > ? AND modseq <= ? ORDER BY uid').pluck();
    this.version = db.prepare('PRAGMA data_version').pluck();
    this.dataVersion = this.version.get() as number;
    for (const r of this.all.all() as WatchedRow[]) this.remember(r);
  }

  /** Calls `tick` every FOREIGN_POLL_MS (the store runs poll() through its publishing queue). */
  start(tick: () => void): void {
    this.timer = setInterval(tick, FOREIGN_POLL_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private remember(r: WatchedRow): void {
    this.known.set(r.id, { userId: r.user_id, name: r.name, modseq: r.highest_modseq, uidNext: r.uid_next });
  }

  /** What this process itself committed (called right after its commit): never reported again as foreign. */
  noteLocal(c: Change): void {
    if (c.kind === 'subscription' || c.kind === 'annotation' || c.kind === 'urlauth-key') return;
    if (c.kind === 'mailbox-delete') {
      this.known.delete(c.mailboxId);
      return;
    }
    let k = this.known.get(c.mailboxId);
    if (!k) {
      k = { userId: c.userId, name: 'name' in c ? c.name : '', modseq: 0, uidNext: 1 };
      this.known.set(c.mailboxId, k);
    }
    if (c.kind === 'mailbox-create' || c.kind === 'mailbox-rename') {
      k.name = c.name;
      return;
    }
    if (c.modseq > k.modseq) k.modseq = c.modseq;
    if (c.kind === 'append') for (const m of c.messages) if (m.uid >= k.uidNext) k.uidNext = m.uid + 1;
  }

  /**
   * The records of one mailbox's foreign changes since it was last looked at
   * (`r` read just now). `inTransaction`: read inside this process's write
   * transaction, before it changed the mailbox (the store calls this once
   * per mailbox and transaction).
   */
  catchUp(r: WatchedRow, out: Change[], inTransaction = false, upTo = Infinity): void {
    let k = this.known.get(r.id);
    if (!k) {
      // A mailbox created elsewhere (or by this very transaction): from now on its changes are followed,
      // and what it already holds is reported as appended (a session that listed it already ignores those).
      k = { userId: r.user_id, name: r.name, modseq: 0, uidNext: 1 };
      this.known.set(r.id, k);
      if (!inTransaction) out.push({ kind: 'mailbox-create', userId: r.user_id, mailboxId: r.id, name: r.name });
    }
    if (k.name !== r.name) {
      out.push({ kind: 'mailbox-rename', userId: r.user_id, mailboxId: r.id, oldName: k.name, name: r.name });
      k.name = r.name;
    }
    // Up to `upTo` only (a hint's modseq: what its sender has made durable), the rest later.
    const until = Math.min(r.highest_modseq, upTo);
    if (until <= k.modseq) return;
    const metas = (this.changed.all(r.id, k.modseq, until) as MetaRow[]).map(meta);
    const appended = metas.filter((m) => m.uid >= k.uidNext);
    const flagged = metas.filter((m) => m.uid < k.uidNext);
    const gone = this.expunged.all(r.id, k.modseq, until) as number[];
    const base = { userId: r.user_id, mailboxId: r.id, modseq: until };
    k.modseq = until;
    // A message appended at or below `until` but changed again above it is reported (as appended) later.
    if (until === r.highest_modseq) k.uidNext = Math.max(k.uidNext, r.uid_next);
    else for (const m of appended) if (m.uid >= k.uidNext) k.uidNext = m.uid + 1;
    if (appended.length) out.push({ kind: 'append', ...base, messages: appended });
    if (flagged.length) out.push({ kind: 'flags', ...base, messages: flagged });
    if (gone.length) out.push({ kind: 'expunge', ...base, uids: gone });
  }

  /**
   * Foreign changes of the mailboxes hints named, each up to the hint's
   * modseq (durable: its sender synced the WAL before hinting, and every
   * commit of a lower modseq precedes it in the WAL; or, for a lazy write's
   * hint under durability "mail", every change below it other than flag
   * changes and expunges is durable: store.ts lazyDone); a vanished mailbox
   * is found by the next poll().
   */
  pollMailboxes(upTo: ReadonlyMap<number, number>, out: Change[]): void {
    for (const [id, modseq] of upTo) {
      const r = this.byId.get(id) as WatchedRow | undefined;
      if (r) this.catchUp(r, out, false, modseq);
    }
  }

  /** Every foreign change since the last poll, if another connection has committed since. */
  poll(out: Change[], force = false): void {
    const v = this.version.get() as number;
    if (v === this.dataVersion && !force) return;
    this.dataVersion = v;
    const rows = this.all.all() as WatchedRow[];
    const present = new Set<number>();
    for (const r of rows) {
      present.add(r.id);
      this.catchUp(r, out);
    }
    for (const [id, k] of this.known) {
      if (present.has(id)) continue;
      this.known.delete(id);
      out.push({ kind: 'mailbox-delete', userId: k.userId, mailboxId: id, name: k.name });
    }
  }
}
