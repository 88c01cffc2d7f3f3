// The plumbing of the PostgreSQL store: the connection pool, one write
// transaction with retries, the mapping of every failure to StoreError, and
// the change feed carried between nodes by the journal.
//
// Writes. write(userId, fn) runs BEGIN; locks the user's row (SELECT ... FOR
// UPDATE: every writer of a user takes it first, so writers of one user
// serialise and always lock in the same order, user row then mailbox rows);
// runs fn, which takes UIDs and MODSEQs from the mailbox counters
// (UPDATE ... RETURNING) in the same transaction; appends one journal row
// with the change records under the user's next journal sequence number,
// NOTIFYs the store's channel; COMMIT. Serialization failures and deadlocks
// (SQLSTATE 40001, 40P01) are retried here with a short random pause and
// never reach the caller; a failure of the connection before COMMIT was sent
// is retried too (nothing was committed), one during COMMIT becomes
// UNAVAILABLE (the outcome is unknown; the client retries, as IMAP does).
//
// Change feed. Per user, journal sequence numbers are handed out under that
// user's row lock, so they ascend in commit order. Each process follows the
// journal of the users its sessions subscribed to (from the sequence number
// current when the first subscription came) and publishes the records to
// its LocalChangeFeed in journal order: its own commits (at once, when
// nothing of another node's came between) and every other node's (woken by
// LISTEN/NOTIFY, listen.ts; by a periodic poll otherwise). A notification
// never carries the change, so a lost one costs latency only.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { StoreError, type Change, type ChangeFeed, type ChangeHint, type ChangeListener } from '../types.js';
import { LocalChangeFeed } from '../feed.js';
import { hintOf } from '../hint.js';
import type { Queryable } from './blobs.js';
import { channelOf, notifyPayload } from './listen.js';

/** Attempts of a write transaction that met a serialization failure, deadlock or lost connection. */
const MAX_WRITE_ATTEMPTS = 8;
/** Longest random pause before another attempt (ms); the first is at most 2 ms. */
const RETRY_MAX_PAUSE_MS = 100;
/** SQLSTATEs retried inside the store: serialization_failure, deadlock_detected. */
const RETRY_CODES = new Set(['40001', '40P01']);
/** Journal rows (commits) read per query when catching up. */
const JOURNAL_PAGE = 500;
/** How long getting a connection may take before the call fails UNAVAILABLE (a database that is down). */
const CONNECT_TIMEOUT_MS = 5_000;

export type Emit = (c: Change) => void;

/** int8 columns (ids, UIDs, modseqs, ms dates, counts) as JS numbers: every value we store is below 2^53. */
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === 20 && format !== 'binary') return (v: string) => Number(v);
    return pg.types.getTypeParser(oid, format as 'text');
  },
};

/** Whether an error means the database (or the connection to it) is unreachable. */
export function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  if (typeof code === 'string') {
    if (code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03' || code === '53300') return true;
    if (['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH'].includes(code)) return true;
  }
  const m = err instanceof Error ? err.message : '';
  return /Connection terminated|connection timeout|Client has encountered a connection error|Client was closed/i.test(m);
}

/** Maps anything thrown below the contract to the closed StoreError set. */
export function toStoreError(err: unknown): StoreError {
  if (err instanceof StoreError) return err;
  const code = (err as { code?: unknown })?.code;
  const message = err instanceof Error ? err.message : String(err);
  let kind: 'UNAVAILABLE' | 'ALREADYEXISTS' | 'CORRUPT' | 'LIMIT' = 'UNAVAILABLE';
  if (code === '23505') kind = 'ALREADYEXISTS';
  else if (code === 'XX001' || code === 'XX002') kind = 'CORRUPT';
  else if (code === '54000' || code === '54001') kind = 'LIMIT';
  const e = new StoreError(kind, isConnectionError(err) ? `database unavailable: ${message}` : message);
  (e as { cause?: unknown }).cause = err;
  return e;
}

interface Tracked {
  /** Journal position delivered to this process's feed (null: being read). */
  last: number | null;
  /** Catch-ups and publications of this user, one after the other. */
  chain: Promise<void>;
}

export interface PgBaseOptions {
  url: string;
  /** The schema holding the store's tables (default "quire"). */
  schema: string;
  poolSize?: number;
  feed?: ChangeFeed;
}

/** A ChangeFeed whose first subscription of a user starts following that user's journal. */
class JournalFeed implements ChangeFeed {
  constructor(
    private readonly local: ChangeFeed,
    private readonly onSubscribe: (userId: number) => void,
  ) {}
  subscribe(userId: number, listener: ChangeListener): () => void {
    this.onSubscribe(userId);
    return this.local.subscribe(userId, listener);
  }
  publish(change: Change): void {
    this.local.publish(change);
  }
}

/**
 * A user's write transactions may hold at most 1/WRITER_POOL_SHARE of the
 * pool's connections at once (at least one): their transactions lock the
 * user's row first and so run one at a time in PostgreSQL anyway, and a
 * user whose writes are held up (a long or stuck transaction holding that
 * row, a slow disk under one tenant's bulk import) must not take every
 * pooled connection and stall other users' sessions (issue 13 item 7). The
 * others wait here, in arrival order, without a connection.
 */
export const WRITER_POOL_SHARE = 4;

/** Write slots of one user (see WRITER_POOL_SHARE). */
class UserWriteSlots {
  private readonly byUser = new Map<number, { active: number; waiting: (() => void)[] }>();
  constructor(private readonly perUser: number) {}

  async acquire(userId: number): Promise<() => void> {
    let e = this.byUser.get(userId);
    if (!e) this.byUser.set(userId, (e = { active: 0, waiting: [] }));
    const slot = e;
    if (slot.active >= this.perUser) await new Promise<void>((resolve) => slot.waiting.push(resolve));
    else slot.active++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = slot.waiting.shift();
      if (next) next(); // the slot passes straight on
      else if (--slot.active === 0) this.byUser.delete(userId);
    };
  }
}

export abstract class PgBase {
  readonly pool: pg.Pool;
  readonly feed: ChangeFeed;
  readonly channel: string;
  /**
   * This store instance's name in its NOTIFY payloads ("<user id> <node id>"),
   * so that its own LISTEN connection can pass over its own commits: they
   * are published by delivered() already, and reading the journal for them
   * again cost a query per commit and held up the user's next publication.
   */
  readonly nodeId = randomBytes(6).toString('hex');
  protected closed = false;
  private readonly inflight = new Set<Promise<unknown>>();
  private readonly tracked = new Map<number, Tracked>();
  /** First subscriptions whose journal position is being read: every call waits for them (see run). */
  private readonly tails = new Set<Promise<void>>();
  /** Called after a commit with its hint (the change bus, metrics). */
  onCommit: ((hint: ChangeHint) => void) | undefined;

  /** See WRITER_POOL_SHARE. */
  private readonly writeSlots: UserWriteSlots;

  protected constructor(protected readonly opts: PgBaseOptions) {
    this.channel = channelOf(opts.schema);
    this.writeSlots = new UserWriteSlots(Math.max(1, Math.floor((opts.poolSize ?? 10) / WRITER_POOL_SHARE)));
    this.pool = new pg.Pool({
      connectionString: opts.url,
      max: opts.poolSize ?? 10,
      options: `-c search_path=${searchPathOption(opts.schema)}`,
      types,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      // Seen in pg_stat_activity: which store a backend serves (operators; the fault tests end them by it).
      application_name: applicationName(opts.schema),
    });
    // An idle client's connection dropping (a PostgreSQL restart) must not crash the process.
    this.pool.on('error', () => undefined);
    // ...nor one of a client in use (its query fails with the error; the write retries or maps it).
    this.pool.on('connect', (c) => c.on('error', () => undefined));
    this.feed = new JournalFeed(opts.feed ?? new LocalChangeFeed(), (u) => this.track(u));
  }

  /** The pool's connection settings, for another connection to the same schema (listen.ts). */
  protected clientConfig(): pg.ClientConfig {
    return { connectionString: this.opts.url, options: `-c search_path=${searchPathOption(this.opts.schema)}`, types, application_name: applicationName(this.opts.schema), connectionTimeoutMillis: CONNECT_TIMEOUT_MS };
  }

  protected run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new StoreError('UNAVAILABLE', 'store is closed'));
    const p = (async () => {
      // A session subscribes and then reads: its reads see at least the journal position its feed starts from.
      if (this.tails.size) await Promise.all([...this.tails]);
      try {
        return await fn();
      } catch (err) {
        throw toStoreError(err);
      }
    })();
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p)).catch(() => undefined);
    return p;
  }

  /** A read on any pooled connection. */
  protected get db(): Queryable {
    return this.pool;
  }

  /**
   * One write transaction of `userId` (null: none, e.g. creating a user).
   * `pre` runs first, before the user's row is locked (storing bodies: long
   * work that need not hold up the user's other writers).
   */
  protected async write<T>(
    userId: number | null,
    fn: (tx: pg.PoolClient, emit: Emit) => Promise<T>,
    pre?: (tx: pg.PoolClient) => Promise<void>,
  ): Promise<T> {
    if (userId === null) return this.writeTx(userId, fn, pre);
    const release = await this.writeSlots.acquire(userId);
    try {
      return await this.writeTx(userId, fn, pre);
    } finally {
      release();
    }
  }

  private async writeTx<T>(
    userId: number | null,
    fn: (tx: pg.PoolClient, emit: Emit) => Promise<T>,
    pre?: (tx: pg.PoolClient) => Promise<void>,
  ): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      let client: pg.PoolClient;
      try {
        client = await this.pool.connect();
      } catch (err) {
        throw toStoreError(err);
      }
      let broken = false;
      let committing = false;
      const changes: Change[] = [];
      try {
        await client.query('BEGIN');
        if (pre) await pre(client);
        let seq = 0;
        if (userId !== null) {
          const r = await client.query<{ journal_seq: number }>('SELECT journal_seq FROM users WHERE id = $1 FOR UPDATE', [userId]);
          if (r.rowCount === 0) throw new StoreError('NONEXISTENT', 'no such user');
          seq = r.rows[0]!.journal_seq;
        }
        const result = await fn(client, (c) => changes.push(c));
        if (userId !== null && changes.length > 0) {
          await client.query('UPDATE users SET journal_seq = $2 WHERE id = $1', [userId, seq + 1]);
          await client.query('INSERT INTO journal (user_id, seq, changes) VALUES ($1, $2, $3)', [userId, seq + 1, JSON.stringify(changes)]);
          await client.query('SELECT pg_notify($1, $2)', [this.channel, notifyPayload(userId, this.nodeId)]);
        }
        committing = true;
        await client.query('COMMIT');
        client.release();
        if (userId !== null && changes.length > 0) await this.delivered(userId, seq, changes);
        else if (userId !== null) await this.caughtUpTo(userId, seq);
        return result;
      } catch (err) {
        if (isConnectionError(err)) broken = true;
        if (!broken) await client.query('ROLLBACK').catch(() => (broken = true));
        client.release(broken ? true : undefined);
        const code = (err as { code?: unknown })?.code;
        const retry = !committing && attempt < MAX_WRITE_ATTEMPTS && ((typeof code === 'string' && RETRY_CODES.has(code)) || isConnectionError(err));
        if (!retry) throw toStoreError(err);
        await new Promise((r) => setTimeout(r, Math.random() * Math.min(RETRY_MAX_PAUSE_MS, 2 ** attempt)));
      }
    }
  }

  // ---- the change feed across processes

  /** Starts following a user's journal (its first subscription in this process). */
  private track(userId: number): void {
    if (this.tracked.has(userId) || this.closed) return;
    const t: Tracked = { last: null, chain: Promise.resolve() };
    this.tracked.set(userId, t);
    const tail = (async () => {
      try {
        const r = await this.pool.query<{ journal_seq: number }>('SELECT journal_seq FROM users WHERE id = $1', [userId]);
        t.last = r.rows[0]?.journal_seq ?? 0;
      } catch {
        // Unreachable database: the session's reads fail too; follow from the next position seen.
        this.tracked.delete(userId);
      }
    })();
    t.chain = tail;
    this.tails.add(tail);
    void tail.finally(() => this.tails.delete(tail));
  }

  /** After this process's commit at journal position seq + 1: published in order with other nodes' records. */
  private delivered(userId: number, seq: number, changes: Change[]): Promise<void> {
    const hint = hintOf(changes);
    if (hint && this.onCommit) {
      try {
        this.onCommit(hint);
      } catch {
        // a bus that cannot send: the others' poll still finds the change
      }
    }
    const t = this.tracked.get(userId);
    if (!t) return Promise.resolve();
    return this.serial(t, async () => {
      if (t.last === seq) {
        t.last = seq + 1;
        for (const c of changes) this.feed.publish(c);
      } else await this.readJournal(userId, t);
    });
  }

  /**
   * After a write that changed nothing, seen at journal position `seq`: other
   * nodes' records up to there are published before the command answers. A
   * UID EXPUNGE that finds its message already expunged by another node must
   * not end OK before this session is told of that expunge (RFC 9051 §7.5.1
   * allows the EXPUNGE at the end of the command, not after it), and a STORE
   * that changed nothing must not answer with flags older than the database's.
   */
  private caughtUpTo(userId: number, seq: number): Promise<void> {
    const t = this.tracked.get(userId);
    if (!t || t.last === null || t.last >= seq) return Promise.resolve();
    return this.serial(t, async () => {
      if (t.last !== null && t.last < seq) await this.readJournal(userId, t);
    });
  }

  private serial(t: Tracked, fn: () => Promise<void>): Promise<void> {
    const next = t.chain.then(fn, fn);
    t.chain = next.catch(() => undefined);
    return t.chain;
  }

  /** Publishes the journal records of `userId` after the position delivered. */
  private async readJournal(userId: number, t: Tracked): Promise<void> {
    for (;;) {
      if (t.last === null || this.closed) return;
      const r = await this.pool.query<{ seq: number; changes: Change[] }>(
        `SELECT seq, changes FROM journal WHERE user_id = $1 AND seq > $2 ORDER BY seq LIMIT ${JOURNAL_PAGE}`,
        [userId, t.last],
      );
      for (const row of r.rows) {
        if (row.seq <= t.last) continue;
        t.last = row.seq;
        for (const c of row.changes) this.feed.publish(c);
      }
      if (r.rows.length < JOURNAL_PAGE) return;
      await new Promise((res) => setImmediate(res)); // a long catch-up leaves the event loop turns between pages
    }
  }

  /**
   * Catches up with other processes' commits (a hint: that user; userId 0
   * or null: everyone followed). The records come from the journal, never
   * from the hint.
   */
  wake(hint: ChangeHint | null): void {
    if (this.closed) return;
    const users = hint && hint.userId > 0 ? [hint.userId] : [...this.tracked.keys()];
    for (const u of users) {
      const t = this.tracked.get(u);
      if (t) void this.serial(t, () => this.readJournal(u, t));
    }
  }

  /** One look at every followed user's journal position; catches up those that moved (the periodic poll). */
  protected async pollJournal(): Promise<void> {
    const ids = [...this.tracked.keys()];
    if (ids.length === 0 || this.closed) return;
    const r = await this.pool.query<{ id: number; journal_seq: number }>('SELECT id, journal_seq FROM users WHERE id = ANY($1::bigint[])', [ids]);
    for (const row of r.rows) {
      const t = this.tracked.get(row.id);
      if (t && t.last !== null && row.journal_seq > t.last) void this.serial(t, () => this.readJournal(row.id, t));
    }
  }

  protected async drain(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.inflight]);
    await Promise.allSettled([...this.tracked.values()].map((t) => t.chain));
  }
}

/** The application_name of a store's connections. */
export function applicationName(schema: string): string {
  return `quire:${schema}`.slice(0, 63);
}

/** search_path for the connection options: the schema, then public (pg_trgm's operators live there). */
function searchPathOption(schema: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new StoreError('CANNOT', `invalid schema name ${JSON.stringify(schema)}`);
  return `${schema},public`;
}

