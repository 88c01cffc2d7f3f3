// MailStore.maildropLocks for the PostgreSQL store: one holder per user
// across every node (and every worker process) serving the schema, for
// POP3's RFC 1939 §8 exclusive maildrop access. Each lock is a session-level
// advisory lock (PostgreSQL manual, "Advisory Locks";
// pg_try_advisory_lock(int, int)) taken on a connection this process
// dedicates to locks and keeps open while anything is locked: PostgreSQL
// releases a session's advisory locks when its connection ends, so a node
// that crashes or loses the database never leaves a maildrop locked, and a
// holder whose lock connection is lost is told (onLost) and must stop, since
// another node may take the maildrop from then on.
//
// Advisory locks are re-entrant within one database session, so the
// connection alone does not exclude this process's own sessions: a map here
// does (one holder per user in this process), and the database excludes the
// other processes. A lock key is (hashtext('quire:maildrop:' || schema),
// user id): advisory locks are database-wide, so the schema is part of the
// key; two schemas whose names hash alike, or user ids that fold alike
// (above 2^31 - 1), can only make a login wait for [IN-USE] that need not,
// never let two sessions in.
import pg from 'pg';
import { StoreError, type UserLocks } from '../types.js';

/**
 * Longest wait for one lock or unlock statement. A connection whose statement
 * took longer is dropped (whether the lock was granted is unknown then, and
 * only ending the connection settles it): its holders are told they lost it.
 */
export const PG_LOCK_QUERY_TIMEOUT_MS = 5_000;
/** Idle lock connection kept this long after the last lock is released (logins come in bursts), then closed. */
export const PG_LOCK_IDLE_CLOSE_MS = 60_000;
/** Largest second key of pg_try_advisory_lock(int, int). */
const INT4_MAX = 0x7fffffff;

interface Entry {
  holder: string;
  onLost: () => void;
  /** The connection that granted the lock; null while it is being asked for. */
  client: pg.Client | null;
}

/** The advisory lock's second key: the user id, folded into int4 beyond it (a fold can only refuse, see above). */
function userKey(userId: number): number {
  return userId <= INT4_MAX ? userId : userId % INT4_MAX;
}

export class PgUserLocks implements UserLocks {
  private readonly entries = new Map<number, Entry>();
  private conn: pg.Client | null = null;
  private connecting: Promise<pg.Client> | null = null;
  private idleTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly namespace: string;

  constructor(
    private readonly config: pg.ClientConfig,
    schema: string,
  ) {
    this.namespace = `quire:maildrop:${schema}`;
  }

  /** Locks held by this process (tests, metrics). */
  get size(): number {
    return this.entries.size;
  }

  private client(): Promise<pg.Client> {
    if (this.conn) return Promise.resolve(this.conn);
    if (this.connecting) return this.connecting;
    const appName = `${String(this.config.application_name ?? 'quire')}:locks`.slice(0, 63);
    const c = new pg.Client({ ...this.config, application_name: appName, query_timeout: PG_LOCK_QUERY_TIMEOUT_MS, keepAlive: true });
    c.on('error', () => this.lost(c));
    c.on('end', () => this.lost(c));
    this.connecting = c.connect().then(
      () => {
        this.connecting = null;
        if (this.closed) {
          void c.end().catch(() => undefined);
          throw new StoreError('UNAVAILABLE', 'store is closed');
        }
        this.conn = c;
        return c;
      },
      (err: unknown) => {
        this.connecting = null;
        void c.end().catch(() => undefined);
        throw new StoreError('UNAVAILABLE', `maildrop lock connection failed: ${err instanceof Error ? err.message : String(err)}`);
      },
    );
    return this.connecting;
  }

  /** The connection `c` ended or failed: PostgreSQL has released its locks, so their holders lost them. */
  private lost(c: pg.Client): void {
    if (this.conn === c) this.conn = null;
    for (const [user, e] of this.entries) {
      if (e.client !== c) continue;
      this.entries.delete(user);
      e.onLost();
    }
  }

  /** Ends connection `c` (a statement failed or timed out: its state is unknown); its holders are told at once. */
  private drop(c: pg.Client): void {
    this.lost(c);
    void c.end().catch(() => undefined);
  }

  async acquire(userId: number, holder: string, onLost: () => void): Promise<boolean> {
    if (this.closed) throw new StoreError('UNAVAILABLE', 'store is closed');
    const had = this.entries.get(userId);
    if (had) return had.holder === holder;
    const mine: Entry = { holder, onLost, client: null };
    this.entries.set(userId, mine);
    this.cancelIdleClose();
    let c: pg.Client | null = null;
    try {
      c = await this.client();
      // Released while connecting: nothing was asked for.
      if (this.entries.get(userId) !== mine) return false;
      const r = await c.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtext($1), $2) AS ok', [this.namespace, userKey(userId)]);
      const ok = r.rows[0]?.ok === true;
      if (this.entries.get(userId) !== mine) {
        // Released while asking: give back what was granted (locks count re-entries, so a holder that came since keeps its own).
        if (ok) await this.unlock(c, userId);
        this.idleClose();
        return false;
      }
      if (this.conn !== c) throw new StoreError('UNAVAILABLE', 'maildrop lock connection lost');
      if (!ok) {
        this.entries.delete(userId);
        this.idleClose();
        return false;
      }
      mine.client = c;
      return true;
    } catch (err) {
      if (this.entries.get(userId) === mine) this.entries.delete(userId);
      // A statement that failed or timed out leaves the lock's state unknown: only ending the connection settles it.
      if (c && !(err instanceof StoreError)) this.drop(c);
      this.idleClose();
      throw err instanceof StoreError ? err : new StoreError('UNAVAILABLE', `maildrop lock failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  async release(userId: number, holder: string): Promise<void> {
    const e = this.entries.get(userId);
    if (!e || e.holder !== holder) return;
    this.entries.delete(userId);
    // Still being asked for: acquire gives back what it gets. On a connection that is gone: PostgreSQL released it.
    if (e.client && e.client === this.conn) await this.unlock(e.client, userId);
    this.idleClose();
  }

  private async unlock(c: pg.Client, userId: number): Promise<void> {
    try {
      await c.query('SELECT pg_advisory_unlock(hashtext($1), $2)', [this.namespace, userKey(userId)]);
    } catch {
      // Unknown state: ending the connection releases everything it held (its holders are told).
      this.drop(c);
    }
  }

  private cancelIdleClose(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
  }

  /** Closes the connection once nothing has been locked for PG_LOCK_IDLE_CLOSE_MS (a connection per node only while in use). */
  private idleClose(): void {
    if (this.entries.size > 0 || this.idleTimer || !this.conn) return;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = null;
      const c = this.conn;
      if (this.entries.size > 0 || !c) return;
      this.conn = null;
      void c.end().catch(() => undefined);
    }, PG_LOCK_IDLE_CLOSE_MS);
    this.idleTimer.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.cancelIdleClose();
    this.entries.clear();
    const c = this.conn ?? (await this.connecting?.catch(() => null)) ?? null;
    this.conn = null;
    await c?.end().catch(() => undefined);
  }
}
