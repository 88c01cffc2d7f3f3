// The PostgreSQL implementation of MailStore: users, mailboxes,
// subscriptions, credentials, annotations, addresses, quota and import, over
// the message operations of messages.ts, the sort reads of sorting.ts, the
// POP3 maildrop (maildrop.ts), URLAUTH keys (urlauth-keys.ts) and the
// store-to-store copy (bulk.ts).
// Several processes (nodes) may open the same schema at once: everything
// they share is in the database; each keeps only caches of immutable facts.
//
// The same choices as the SQLite store (src/store/sqlite/store.ts):
// - User names are case-insensitive (ASCII); mailbox names exact.
// - UIDVALIDITY comes from one counter for the whole store,
//   max(now in seconds, last + 1), so a recreated mailbox always gets a
//   greater value (RFC 9051 §2.3.1.1).
// - RENAME keeps UIDVALIDITY unless the new name carried an equal or greater
//   one before; renaming INBOX moves its messages to a new mailbox.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import {
  StoreError,
  type AddressInfo,
  type Annotation,
  type AppendResult,
  type ChangeFeed,
  type CredentialInfo,
  type ImportInput,
  type ImportOptions,
  type MailboxInfo,
  type MailboxStatus,
  type QuotaInfo,
  type SpecialUse,
  type UserInfo,
} from '../types.js';
import { mailboxStatusOf } from '../status.js';
import { DEFAULT_MAX_MAILBOXES_PER_USER } from '../limits.js';
import type { Queryable } from './blobs.js';
import { PgBlobStore, type BlobStore } from './blobs.js';
import { PgBulkOps } from './bulk.js';
import { MAX_UID, type MailboxRow } from './messages.js';
import { checkMailboxName, normaliseAddress, parseFlags } from './flags.js';
import { migrate } from './schema.js';
import { ensureTrigramIndex } from './fulltext.js';
import { PgNotifyListener } from './listen.js';
import { PgUserLocks } from './user-locks.js';
import { FsBlobStore, type SweepResult } from '../blob-fs.js';
import { pgDoctor } from './doctor.js';
import type { DoctorReport } from '../sqlite/doctor.js';
import { isConnectionError, type Emit } from './base.js';

/** How often each node looks at the journal positions of the users it follows, whatever NOTIFY said (ms). */
const JOURNAL_POLL_MS = 1_000;
/** Journal rows older than this are pruned (a node away longer re-reads its sessions' mailboxes). */
const JOURNAL_KEEP_SECONDS = 3_600;
/** How often a node prunes the journal (ms). */
const JOURNAL_PRUNE_MS = 60_000;
/** How often each node sweeps a filesystem body directory for orphans (ms; the first sweep comes after a random part of it). */
export const FS_SWEEP_MS = 6 * 60 * 60 * 1000;

export interface PgStoreOptions {
  /** postgres://user@host:port/db; `?schema=NAME` picks the schema (default "quire"). */
  url: string;
  /** The schema (overrides the URL's); lower-case letters, digits and "_". */
  schema?: string;
  feed?: ChangeFeed;
  poolSize?: number;
  maxMailboxesPerUser?: number;
  /** Where bodies go (default: blob_chunks rows in the same database). */
  blobs?: BlobStore;
  /**
   * Bodies in files under this path (FsBlobStore, src/store/blob-fs.ts),
   * shared by every node; also `?blobs=PATH` in the URL. Ignored when
   * `blobs` is given.
   */
  blobsPath?: string;
  /** Follow other nodes' commits over LISTEN/NOTIFY and the journal poll (default true). */
  followOthers?: boolean;
}

interface UserRow {
  id: number;
  name: string;
  password_hash: string;
  created_at: number;
}

interface MailboxInfoRow {
  id: number;
  user_id: number;
  name: string;
  uid_validity: number;
  uid_next: number;
  highest_modseq: number;
  special_use: string | null;
  object_id: string;
  subscribed: boolean;
}

const MAILBOX_SELECT = `SELECT m.id, m.user_id, m.name, m.uid_validity, m.uid_next, m.highest_modseq, m.special_use, m.object_id,
  EXISTS (SELECT 1 FROM subscriptions s WHERE s.user_id = m.user_id AND s.name = m.name) AS subscribed
  FROM mailboxes m`;

function userInfo(r: UserRow): UserInfo {
  return { id: r.id, name: r.name, passwordHash: r.password_hash, createdAt: new Date(r.created_at) };
}

function mailboxInfo(r: MailboxInfoRow): MailboxInfo {
  return {
    id: r.id,
    userId: r.user_id,
    name: r.name,
    uidValidity: r.uid_validity,
    uidNext: r.uid_next,
    highestModseq: r.highest_modseq,
    specialUse: r.special_use as SpecialUse | null,
    subscribed: r.subscribed,
    objectId: r.object_id,
  };
}

function checkLimit(n: number | null | undefined, what: string): void {
  if (n === null || n === undefined) return;
  if (!Number.isSafeInteger(n) || n < 0) throw new StoreError('CANNOT', `${what} limit must be a whole number >= 0`);
}

/** The URL without Quire's own `schema` and `blobs` parameters, and those parameters. */
export function splitStoreUrl(url: string): { url: string; schema: string | null; blobs: string | null } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new StoreError('CANNOT', 'invalid PostgreSQL URL');
  }
  const schema = u.searchParams.get('schema');
  const blobs = u.searchParams.get('blobs');
  u.searchParams.delete('schema');
  u.searchParams.delete('blobs');
  return { url: u.toString(), schema, blobs: blobs || null };
}

/** Pause between THREADID backfill batches. */
const THREAD_ID_BACKFILL_PAUSE_MS = 50;

export class PgMailStore extends PgBulkOps {
  /** Set once at open (a filesystem path needs the database's name first). */
  protected blobs: BlobStore;
  private maxMailboxesPerUser = DEFAULT_MAX_MAILBOXES_PER_USER;
  private listener: PgNotifyListener | null = null;
  /** POP3 maildrop locks (user-locks.ts): made at first use, its connection opened only while something is locked. */
  private locks: PgUserLocks | null = null;
  private timers: NodeJS.Timeout[] = [];
  /** Whether SEARCH BODY/TEXT have trigram indexes (pg_trgm). */
  trigram = false;

  private constructor(opts: PgStoreOptions, url: string, schema: string) {
    super({ url, schema, poolSize: opts.poolSize, feed: opts.feed });
    this.blobs = opts.blobs ?? new PgBlobStore(this.pool);
    if (opts.maxMailboxesPerUser !== undefined) this.maxMailboxesPerUser = opts.maxMailboxesPerUser;
  }

  static async open(opts: PgStoreOptions): Promise<PgMailStore> {
    const split = splitStoreUrl(opts.url);
    const schema = opts.schema ?? split.schema ?? 'quire';
    const store = new PgMailStore(opts, split.url, schema);
    try {
      const client = await store.pool.connect();
      try {
        await migrate(client, schema);
        store.trigram = await ensureTrigramIndex(client);
        const blobsPath = opts.blobs ? null : (opts.blobsPath ?? split.blobs);
        if (blobsPath) {
          const db = (await client.query<{ db: string }>('SELECT current_database() AS db')).rows[0]!.db;
          store.blobs = await FsBlobStore.open(blobsPath, { database: db, schema });
        }
      } finally {
        client.release();
      }
      if (store.blobs instanceof FsBlobStore) {
        const sweep = () => void store.sweepBlobs().catch(() => undefined);
        const first = setTimeout(() => {
          if (store.closed) return;
          sweep();
          const every = setInterval(sweep, FS_SWEEP_MS);
          every.unref();
          store.timers.push(every);
        }, Math.floor(FS_SWEEP_MS * (0.5 + Math.random() / 2)));
        first.unref();
        store.timers.push(first);
      }
      if (opts.followOthers !== false) {
        store.listener = new PgNotifyListener(store.clientConfig(), store.channel, () => store.wake(null), store.nodeId);
        store.listener.subscribe((hint) => store.wake(hint));
        await store.listener.ready;
        const poll = setInterval(() => void store.pollJournal().catch(() => undefined), JOURNAL_POLL_MS);
        poll.unref();
        store.timers.push(poll);
      }
      const prune = setInterval(() => void store.pool.query(`DELETE FROM journal WHERE at < now() - make_interval(secs => $1)`, [JOURNAL_KEEP_SECONDS]).catch(() => undefined), JOURNAL_PRUNE_MS);
      prune.unref();
      store.timers.push(prune);
      store.startThreadIdBackfill();
      return store;
    } catch (err) {
      await store.pool.end().catch(() => undefined);
      const { toStoreError } = await import('./base.js');
      throw toStoreError(err);
    }
  }

  /** RFC 8474 §5.2 THREADIDs of bodies stored before v4-thread-ids, a batch at a time (every node may run it: batches are idempotent). */
  private startThreadIdBackfill(): void {
    const step = () => {
      if (this.closed) return;
      this.fillPendingThreadIds().then(
        (n) => {
          if (n > 0 && !this.closed) setTimeout(step, THREAD_ID_BACKFILL_PAUSE_MS).unref();
        },
        () => undefined, // tried again at the next start; FETCH assigns what it reports meanwhile
      );
    };
    setTimeout(step, 0).unref();
  }

  /**
   * Removes body files no message refers to any more (expunged, or left by a
   * transaction that never committed) once older than the grace period
   * (src/store/blob-fs.ts); a no-op with bodies in PostgreSQL.
   */
  async sweepBlobs(graceMs?: number): Promise<SweepResult | null> {
    if (!(this.blobs instanceof FsBlobStore)) return null;
    const blobs = this.blobs;
    return this.run(() =>
      blobs.sweep(async (ids) => {
        const r = await this.pool.query<{ id: number }>('SELECT id FROM blobs WHERE id = ANY($1::bigint[])', [ids]);
        return new Set(r.rows.map((x) => x.id));
      }, graceMs),
    );
  }

  /** `quire doctor` (doctor.ts): consistency checks, and repairs with `repair`. */
  doctor(opts: { repair?: boolean } = {}): Promise<DoctorReport> {
    return this.run(() => pgDoctor(this.pool, this.blobs, opts));
  }

  /** Whether this node hears other nodes' notifications now (health). */
  get listening(): boolean {
    return this.listener?.connected ?? false;
  }

  /** RFC 1939 §8 maildrop locks that hold across every node of the schema (PostgreSQL advisory locks, user-locks.ts). */
  maildropLocks(): PgUserLocks {
    if (this.closed) throw new StoreError('UNAVAILABLE', 'store is closed');
    return (this.locks ??= new PgUserLocks(this.clientConfig(), this.opts.schema));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    for (const t of this.timers) clearTimeout(t);
    await this.drain();
    await this.locks?.close();
    await this.listener?.close();
    await this.pool.end().catch(() => undefined);
  }

  // ---- users

  createUser(name: string, passwordHash: string): Promise<UserInfo> {
    return this.run(async () => {
      if (name.length === 0) throw new StoreError('CANNOT', 'empty user name');
      return this.write(null, async (tx) => {
        const exists = await tx.query('SELECT 1 FROM users WHERE lower(name) = lower($1)', [name]);
        if (exists.rowCount) throw new StoreError('ALREADYEXISTS', `user ${name} exists`);
        const r = await tx.query<UserRow>('INSERT INTO users (name, password_hash, created_at) VALUES ($1, $2, $3) RETURNING *', [name, passwordHash, Date.now()]);
        return userInfo(r.rows[0]!);
      });
    });
  }

  getUser(name: string): Promise<UserInfo | null> {
    return this.run(async () => {
      const r = await this.db.query<UserRow>('SELECT * FROM users WHERE lower(name) = lower($1)', [name]);
      return r.rows[0] ? userInfo(r.rows[0]) : null;
    });
  }

  getUserById(id: number): Promise<UserInfo | null> {
    return this.run(async () => {
      if (!Number.isSafeInteger(id)) return null;
      const r = await this.db.query<UserRow>('SELECT * FROM users WHERE id = $1', [id]);
      return r.rows[0] ? userInfo(r.rows[0]) : null;
    });
  }

  setPasswordHash(userId: number, passwordHash: string): Promise<void> {
    return this.run(async () => {
      await this.write(userId, (tx) => tx.query('UPDATE users SET password_hash = $2 WHERE id = $1', [userId, passwordHash]));
    });
  }

  deleteUser(userId: number): Promise<void> {
    return this.run(async () => {
      await this.write(userId, async (tx, emit) => {
        const boxes = await tx.query<{ id: number; name: string }>('SELECT id, name FROM mailboxes WHERE user_id = $1 ORDER BY name', [userId]);
        for (const b of boxes.rows) {
          await this.dropMailbox(tx, b.id);
          emit({ kind: 'mailbox-delete', userId, mailboxId: b.id, name: b.name });
        }
        await tx.query('DELETE FROM annotations WHERE user_id = $1', [userId]);
        await tx.query('DELETE FROM users WHERE id = $1', [userId]);
      });
    });
  }

  listUsers(): Promise<UserInfo[]> {
    return this.run(async () => (await this.db.query<UserRow>('SELECT * FROM users ORDER BY name COLLATE "C"')).rows.map(userInfo));
  }

  countUsers(): Promise<number> {
    return this.run(async () => (await this.db.query<{ n: number }>('SELECT count(*) AS n FROM users')).rows[0]!.n);
  }

  // ---- credentials

  listCredentials(userId: number, kind: string): Promise<CredentialInfo[]> {
    return this.run(async () => {
      const r = await this.db.query<{ user_id: number; kind: string; name: string; secret: string; created_at: number; last_used: number | null }>(
        'SELECT * FROM credentials WHERE user_id = $1 AND kind = $2 ORDER BY name COLLATE "C"',
        [userId, kind],
      );
      return r.rows.map((x) => ({ userId: x.user_id, kind: x.kind, name: x.name, secret: x.secret, createdAt: new Date(x.created_at), lastUsed: x.last_used === null ? null : new Date(x.last_used) }));
    });
  }

  setCredential(userId: number, kind: string, name: string, secret: string): Promise<void> {
    return this.run(async () => {
      await this.write(userId, (tx) =>
        tx.query(
          `INSERT INTO credentials (user_id, kind, name, secret, created_at) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (user_id, kind, name) DO UPDATE SET secret = excluded.secret, created_at = excluded.created_at, last_used = NULL`,
          [userId, kind, name, secret, Date.now()],
        ),
      );
    });
  }

  deleteCredential(userId: number, kind: string, name?: string): Promise<boolean> {
    return this.run(async () => {
      const r = name === undefined
        ? await this.db.query('DELETE FROM credentials WHERE user_id = $1 AND kind = $2', [userId, kind])
        : await this.db.query('DELETE FROM credentials WHERE user_id = $1 AND kind = $2 AND name = $3', [userId, kind, name]);
      return (r.rowCount ?? 0) > 0;
    });
  }

  touchCredential(userId: number, kind: string, name: string, at: Date): Promise<void> {
    return this.run(async () => {
      await this.db.query('UPDATE credentials SET last_used = $4 WHERE user_id = $1 AND kind = $2 AND name = $3', [userId, kind, name, at.getTime()]);
    });
  }

  // ---- mailboxes

  listMailboxes(userId: number): Promise<MailboxInfo[]> {
    return this.run(async () => (await this.db.query<MailboxInfoRow>(`${MAILBOX_SELECT} WHERE m.user_id = $1 ORDER BY m.name COLLATE "C"`, [userId])).rows.map(mailboxInfo));
  }

  getMailbox(userId: number, name: string): Promise<MailboxInfo | null> {
    return this.run(async () => {
      const r = await this.db.query<MailboxInfoRow>(`${MAILBOX_SELECT} WHERE m.user_id = $1 AND m.name = $2`, [userId, name]);
      return r.rows[0] ? mailboxInfo(r.rows[0]) : null;
    });
  }

  getMailboxById(mailboxId: number): Promise<MailboxInfo | null> {
    return this.run(async () => {
      if (!Number.isSafeInteger(mailboxId)) return null;
      const r = await this.db.query<MailboxInfoRow>(`${MAILBOX_SELECT} WHERE m.id = $1`, [mailboxId]);
      return r.rows[0] ? mailboxInfo(r.rows[0]) : null;
    });
  }

  private async byName(tx: Queryable, userId: number, name: string, lock = false): Promise<MailboxRow | undefined> {
    const r = await tx.query<MailboxRow>(`SELECT * FROM mailboxes WHERE user_id = $1 AND name = $2${lock ? ' FOR UPDATE' : ''}`, [userId, name]);
    return r.rows[0];
  }

  createMailbox(userId: number, name: string, specialUse: SpecialUse | null = null): Promise<MailboxInfo> {
    return this.run(async () => {
      checkMailboxName(name);
      const id = await this.write(userId, async (tx, emit) => {
        if (await this.byName(tx, userId, name)) throw new StoreError('ALREADYEXISTS', `mailbox ${name} exists`);
        const mailboxId = await this.insertMailbox(tx, userId, name, specialUse);
        emit({ kind: 'mailbox-create', userId, mailboxId, name });
        return mailboxId;
      });
      const r = await this.db.query<MailboxInfoRow>(`${MAILBOX_SELECT} WHERE m.id = $1`, [id]);
      return mailboxInfo(r.rows[0]!);
    });
  }

  deleteMailbox(userId: number, name: string): Promise<void> {
    return this.run(async () => {
      if (name === 'INBOX') throw new StoreError('CANNOT', 'INBOX cannot be deleted');
      await this.write(userId, async (tx, emit) => {
        const mb = await this.byName(tx, userId, name, true);
        if (!mb) throw new StoreError('NONEXISTENT', `no mailbox ${name}`);
        await this.retireName(tx, userId, name, mb.uid_validity);
        await this.dropMailbox(tx, mb.id);
        emit({ kind: 'mailbox-delete', userId, mailboxId: mb.id, name });
      });
    });
  }

  renameMailbox(userId: number, from: string, to: string): Promise<void> {
    return this.run(async () => {
      checkMailboxName(to);
      if (from === 'INBOX') return this.renameInbox(userId, to);
      await this.write(userId, async (tx, emit) => {
        const mb = await this.byName(tx, userId, from, true);
        if (!mb) throw new StoreError('NONEXISTENT', `no mailbox ${from}`);
        if (to.startsWith(`${from}/`)) throw new StoreError('CANNOT', 'cannot rename a mailbox to its own child');
        const prefix = `${from}/`;
        const children = (await tx.query<MailboxRow>(
          'SELECT * FROM mailboxes WHERE user_id = $1 AND left(name, $2) = $3 ORDER BY name COLLATE "C" FOR UPDATE',
          [userId, prefix.length, prefix],
        )).rows;
        const moves = [mb, ...children].map((m) => ({ mb: m, newName: to + m.name.slice(from.length) }));
        for (const { newName } of moves) {
          if (await this.byName(tx, userId, newName)) throw new StoreError('ALREADYEXISTS', `mailbox ${newName} exists`);
          if (newName === 'INBOX') throw new StoreError('CANNOT', 'cannot rename onto INBOX');
          checkMailboxName(newName);
        }
        for (const { mb: m, newName } of moves) {
          await this.retireName(tx, userId, m.name, m.uid_validity);
          const prev = (await tx.query<{ uid_validity: number }>('SELECT uid_validity FROM retired_names WHERE user_id = $1 AND name = $2', [userId, newName])).rows[0]?.uid_validity;
          const uidValidity = prev !== undefined && prev >= m.uid_validity ? await this.nextUidValidity(tx) : m.uid_validity;
          await tx.query('UPDATE mailboxes SET name = $2, uid_validity = $3 WHERE id = $1', [m.id, newName, uidValidity]);
          emit({ kind: 'mailbox-rename', userId, mailboxId: m.id, oldName: m.name, name: newName });
          const sub = await tx.query('DELETE FROM subscriptions WHERE user_id = $1 AND name = $2', [userId, m.name]);
          if (sub.rowCount) {
            await tx.query('INSERT INTO subscriptions (user_id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING', [userId, newName]);
            emit({ kind: 'subscription', userId, name: m.name, subscribed: false });
            emit({ kind: 'subscription', userId, name: newName, subscribed: true });
          }
        }
      });
    });
  }

  /** RFC 9051 §6.3.6: INBOX's messages move to a new mailbox; INBOX stays, empty; its children are unaffected. */
  private async renameInbox(userId: number, to: string): Promise<void> {
    await this.write(userId, async (tx, emit) => {
      const inbox = await this.byName(tx, userId, 'INBOX');
      if (!inbox) throw new StoreError('NONEXISTENT', 'no INBOX');
      if (await this.byName(tx, userId, to)) throw new StoreError('ALREADYEXISTS', `mailbox ${to} exists`);
      const destId = await this.insertMailbox(tx, userId, to, null);
      emit({ kind: 'mailbox-create', userId, mailboxId: destId, name: to });
      const uids = (await tx.query<{ uid: number }>('SELECT uid FROM messages WHERE mailbox_id = $1 ORDER BY uid', [inbox.id])).rows.map((r) => r.uid);
      if (uids.length > 0) await this.moveInTx(tx, inbox.id, uids, destId, emit);
    });
  }

  setSubscribed(userId: number, name: string, subscribed: boolean): Promise<void> {
    return this.run(async () => {
      await this.write(userId, async (tx, emit) => {
        const r = subscribed
          ? await tx.query('INSERT INTO subscriptions (user_id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING', [userId, name])
          : await tx.query('DELETE FROM subscriptions WHERE user_id = $1 AND name = $2', [userId, name]);
        if (r.rowCount) emit({ kind: 'subscription', userId, name, subscribed });
      });
    });
  }

  listSubscriptions(userId: number): Promise<string[]> {
    return this.run(async () => (await this.db.query<{ name: string }>('SELECT name FROM subscriptions WHERE user_id = $1 ORDER BY name COLLATE "C"', [userId])).rows.map((r) => r.name));
  }

  mailboxStatus(mailboxId: number): Promise<MailboxStatus> {
    return this.run(async () => {
      const mb = await this.existing(this.db, mailboxId);
      const recent = (await this.db.query<{ n: number }>('SELECT count(*) AS n FROM messages WHERE mailbox_id = $1 AND uid > $2', [mailboxId, mb.recent_uid])).rows[0]!.n;
      return mailboxStatusOf(mb, recent);
    });
  }

  claimRecent(mailboxId: number): Promise<number> {
    return this.run(async () => {
      if (!Number.isSafeInteger(mailboxId) || mailboxId <= 0) throw new StoreError('NONEXISTENT', 'no such mailbox');
      // On the IDLE push path: the first session of a node to see a new
      // message claims it before its EXISTS goes out (src/server/connection.ts),
      // so this is one round trip (one simple query; the id is a checked
      // integer, the only value in it) and its commit does not wait for the
      // WAL flush (synchronous_commit off for this transaction only): a claim
      // is session state, not mail; a database crash may forget the last
      // claims, and those messages are then \Recent once more in a later
      // session, as after a restart. Of two sessions claiming at once, one
      // gets the new messages (the row lock; RFC 3501 §2.3.2).
      const client = await this.pool.connect();
      let broken = false;
      let res: pg.QueryResult<{ old?: number; recent_uid?: number }>[];
      try {
        res = (await client.query(
          `BEGIN; SET LOCAL synchronous_commit TO off;
           UPDATE mailboxes n SET recent_uid = n.uid_next - 1 FROM (SELECT id, recent_uid FROM mailboxes WHERE id = ${mailboxId} FOR UPDATE) o
            WHERE n.id = o.id AND o.recent_uid < n.uid_next - 1 RETURNING o.recent_uid AS old;
           SELECT recent_uid FROM mailboxes WHERE id = ${mailboxId};
           COMMIT`,
        )) as unknown as pg.QueryResult<{ old?: number; recent_uid?: number }>[];
      } catch (err) {
        if (isConnectionError(err)) broken = true;
        else await client.query('ROLLBACK').catch(() => (broken = true));
        throw err;
      } finally {
        client.release(broken ? true : undefined);
      }
      const claimed = res[2]?.rows[0]?.old;
      if (claimed !== undefined) return claimed + 1;
      const now = res[3]?.rows[0]?.recent_uid;
      if (now === undefined) throw new StoreError('NONEXISTENT', 'no such mailbox');
      return now + 1;
    });
  }

  // ---- helpers

  private async insertMailbox(tx: Queryable, userId: number, name: string, specialUse: SpecialUse | null): Promise<number> {
    if (name !== 'INBOX') {
      const n = (await tx.query<{ n: number }>('SELECT count(*) AS n FROM mailboxes WHERE user_id = $1', [userId])).rows[0]!.n;
      if (n >= this.maxMailboxesPerUser) throw new StoreError('LIMIT', `too many mailboxes (at most ${this.maxMailboxesPerUser})`);
    }
    const uidValidity = await this.nextUidValidity(tx);
    // RFC 8474 §4: MAILBOXID is 96 random bits, so no mailbox (even after a DELETE) gets another's.
    const objectId = 'F' + randomBytes(12).toString('hex');
    const r = await tx.query<{ id: number }>(
      'INSERT INTO mailboxes (user_id, name, uid_validity, special_use, object_id) VALUES ($1, $2, $3, $4, $5) RETURNING id',
      [userId, name, uidValidity, specialUse, objectId],
    );
    return r.rows[0]!.id;
  }

  /** RFC 9051 §2.3.1.1: a name's UIDVALIDITY only ever grows (one counter row for the store, in the caller's transaction). */
  private async nextUidValidity(tx: Queryable): Promise<number> {
    const r = await tx.query<{ value: number }>(
      `UPDATE meta SET value = GREATEST(floor(extract(epoch from clock_timestamp()))::bigint, value + 1) WHERE key = 'uidvalidity_last' RETURNING value`,
    );
    const v = r.rows[0]!.value;
    if (v > 0xffffffff) throw new StoreError('LIMIT', 'UIDVALIDITY space exhausted');
    return v;
  }

  private async retireName(tx: Queryable, userId: number, name: string, uidValidity: number): Promise<void> {
    await tx.query(
      `INSERT INTO retired_names (user_id, name, uid_validity) VALUES ($1, $2, $3)
       ON CONFLICT (user_id, name) DO UPDATE SET uid_validity = GREATEST(retired_names.uid_validity, excluded.uid_validity)`,
      [userId, name, uidValidity],
    );
  }

  /** Deletes a mailbox with its messages, tombstones, keywords and annotations (RFC 5464 §3.4), and the bodies left unreferenced. */
  private async dropMailbox(tx: Queryable, mailboxId: number): Promise<void> {
    const blobs = (await tx.query<{ blob_id: number }>('DELETE FROM messages WHERE mailbox_id = $1 RETURNING blob_id', [mailboxId])).rows.map((r) => r.blob_id);
    await tx.query('DELETE FROM annotations WHERE mailbox_id = $1', [mailboxId]);
    await tx.query('DELETE FROM mailboxes WHERE id = $1', [mailboxId]);
    await this.dropUnreferenced(tx, blobs);
  }

  // ---- annotations (RFC 5464)

  getAnnotations(userId: number, mailboxId: number | null, entries: string[], depth: 0 | 1 | 'infinity'): Promise<Annotation[]> {
    return this.run(async () => {
      if (mailboxId !== null) await this.existing(this.db, mailboxId);
      const box = mailboxId ?? 0;
      const out = new Map<string, Buffer>();
      for (const e of entries) {
        const exact = await this.db.query<{ entry: string; value: Buffer }>('SELECT entry, value FROM annotations WHERE user_id = $1 AND mailbox_id = $2 AND entry = $3', [userId, box, e]);
        for (const r of exact.rows) out.set(r.entry, r.value);
        if (depth === 0) continue;
        // Descendants by prefix range (entry is COLLATE "C"), never LIKE (names may hold "_").
        const below = await this.db.query<{ entry: string; value: Buffer }>(
          'SELECT entry, value FROM annotations WHERE user_id = $1 AND mailbox_id = $2 AND entry > $3 AND entry < $4 ORDER BY entry',
          [userId, box, `${e}/`, `${e}0`],
        );
        for (const r of below.rows) {
          if (depth === 1 && r.entry.slice(e.length + 1).includes('/')) continue;
          out.set(r.entry, r.value);
        }
      }
      return [...out].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([entry, value]) => ({ entry, value }));
    });
  }

  setAnnotations(userId: number, mailboxId: number | null, items: { entry: string; value: Buffer | null }[], limits: { maxEntries: number; maxPerUser: number }): Promise<void> {
    return this.run(async () => {
      await this.write(userId, async (tx, emit) => {
        if (mailboxId !== null) await this.existing(tx, mailboxId);
        const box = mailboxId ?? 0;
        for (const it of items) {
          if (it.value === null) await tx.query('DELETE FROM annotations WHERE user_id = $1 AND mailbox_id = $2 AND entry = $3', [userId, box, it.entry]);
          else await tx.query('INSERT INTO annotations (user_id, mailbox_id, entry, value) VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, mailbox_id, entry) DO UPDATE SET value = excluded.value', [userId, box, it.entry, it.value]);
        }
        const here = (await tx.query<{ n: number }>('SELECT count(*) AS n FROM annotations WHERE user_id = $1 AND mailbox_id = $2', [userId, box])).rows[0]!.n;
        const all = (await tx.query<{ n: number }>('SELECT count(*) AS n FROM annotations WHERE user_id = $1', [userId])).rows[0]!.n;
        // Thrown inside the transaction: nothing of this command is kept (RFC 5464 §4.3).
        if (here > limits.maxEntries || all > limits.maxPerUser) throw new StoreError('LIMIT', 'too many annotations');
        // Journalled and published after the commit like every change (RFC 5465 §5.6, §5.7 NOTIFY MailboxMetadataChange).
        if (items.length) emit({ kind: 'annotation', userId, mailboxId, entries: [...new Set(items.map((it) => it.entry))] });
      });
    });
  }

  setSpecialUse(mailboxId: number, use: SpecialUse | null): Promise<void> {
    return this.run(async () => {
      const userId = await this.ownerOf(mailboxId);
      await this.write(userId, async (tx, emit) => {
        const r = await tx.query('UPDATE mailboxes SET special_use = $2 WHERE id = $1', [mailboxId, use]);
        if (!r.rowCount) throw new StoreError('NONEXISTENT', 'no such mailbox');
        // RFC 6154 §4 /private/specialuse is an annotation: METADATA / NOTIFY watchers hear of it as the SQLite store's do.
        emit({ kind: 'annotation', userId, mailboxId, entries: ['/private/specialuse'] });
      });
    });
  }

  // ---- addresses

  addAddress(userId: number, address: string): Promise<AddressInfo> {
    return this.run(async () => {
      const a = normaliseAddress(address);
      return this.write(userId, async (tx) => {
        const owner = (await tx.query<{ user_id: number }>('SELECT user_id FROM addresses WHERE address = $1', [a])).rows[0]?.user_id;
        if (owner !== undefined) throw new StoreError('ALREADYEXISTS', owner === userId ? `${a} is already this user's` : `${a} belongs to another user`);
        await tx.query('INSERT INTO addresses (address, user_id, created_at) VALUES ($1, $2, $3)', [a, userId, Date.now()]);
        return { address: a, userId };
      });
    });
  }

  removeAddress(address: string): Promise<void> {
    return this.run(async () => {
      const a = normaliseAddress(address);
      const r = await this.db.query('DELETE FROM addresses WHERE address = $1', [a]);
      if (!r.rowCount) throw new StoreError('NONEXISTENT', `nobody owns ${a}`);
    });
  }

  listAddresses(userId?: number): Promise<AddressInfo[]> {
    return this.run(async () => {
      const r = userId === undefined
        ? await this.db.query<{ address: string; user_id: number }>('SELECT address, user_id FROM addresses ORDER BY address COLLATE "C"')
        : await this.db.query<{ address: string; user_id: number }>('SELECT address, user_id FROM addresses WHERE user_id = $1 ORDER BY address COLLATE "C"', [userId]);
      return r.rows.map((x) => ({ address: x.address, userId: x.user_id }));
    });
  }

  findAddress(address: string): Promise<AddressInfo | null> {
    return this.run(async () => {
      const r = await this.db.query<{ address: string; user_id: number }>('SELECT address, user_id FROM addresses WHERE address = $1', [address.trim()]);
      return r.rows[0] ? { address: r.rows[0].address, userId: r.rows[0].user_id } : null;
    });
  }

  // ---- quota (RFC 9208): usage kept by triggers (schema.ts), limits checked in the writer's transaction

  getQuota(userId: number): Promise<QuotaInfo> {
    return this.run(() => this.quotaOf(this.db, userId));
  }

  private async quotaOf(q: Queryable, userId: number): Promise<QuotaInfo> {
    const r = await q.query<{ storage_limit: number | null; message_limit: number | null; storage_used: number; messages_used: number }>(
      'SELECT storage_limit, message_limit, storage_used, messages_used FROM users WHERE id = $1',
      [userId],
    );
    const x = r.rows[0];
    if (!x) throw new StoreError('NONEXISTENT', 'no such user');
    return { storageLimit: x.storage_limit, messageLimit: x.message_limit, storageUsed: x.storage_used, messagesUsed: x.messages_used };
  }

  setQuota(userId: number, limits: { storage?: number | null; messages?: number | null }): Promise<QuotaInfo> {
    return this.run(async () => {
      checkLimit(limits.storage, 'storage');
      checkLimit(limits.messages, 'message');
      return this.write(userId, async (tx) => {
        if (limits.storage !== undefined) await tx.query('UPDATE users SET storage_limit = $2 WHERE id = $1', [userId, limits.storage]);
        if (limits.messages !== undefined) await tx.query('UPDATE users SET message_limit = $2 WHERE id = $1', [userId, limits.messages]);
        return this.quotaOf(tx, userId);
      });
    });
  }

  // ---- import with given UIDs

  importMessages(mailboxId: number, items: ImportInput[], opts: ImportOptions = {}): Promise<AppendResult> {
    return this.run(async () => {
      const parsed = items.map((it) => parseFlags(it.flags));
      let prev = 0;
      for (const it of items) {
        if (!Number.isInteger(it.uid) || it.uid <= prev || it.uid > MAX_UID) throw new StoreError('CANNOT', 'imported UIDs must be strictly ascending 32-bit numbers');
        prev = it.uid;
      }
      for (const v of [opts.uidValidity, opts.uidNext]) {
        if (v !== undefined && (!Number.isInteger(v) || v < 1 || v > MAX_UID)) throw new StoreError('CANNOT', 'UIDVALIDITY/UIDNEXT out of range');
      }
      const userId = await this.ownerOf(mailboxId, 'TRYCREATE');
      const described = this.describe(items);
      let ids: number[] = [];
      return this.write(
        userId,
        async (tx, emit: Emit) => {
          const mb = await this.existing(tx, mailboxId, 'TRYCREATE', true);
          let uidValidity = mb.uid_validity;
          if (opts.uidValidity !== undefined && opts.uidValidity !== mb.uid_validity) {
            // Only a mailbox that never held a message: no client can have cached a UID of it.
            if (mb.uid_next !== 1 || mb.msg_count !== 0) throw new StoreError('CANNOT', `mailbox ${mb.name} already has messages; its UIDVALIDITY cannot change`);
            uidValidity = opts.uidValidity;
            await tx.query('UPDATE mailboxes SET uid_validity = $2 WHERE id = $1', [mailboxId, uidValidity]);
            await tx.query(`UPDATE meta SET value = GREATEST(value, $1) WHERE key = 'uidvalidity_last'`, [uidValidity]);
          }
          let uids: number[] = [];
          if (items.length > 0) uids = (await this.appendInTx(tx, mailboxId, items, ids, parsed, emit, items.map((i) => i.uid))).uids;
          if (opts.uidNext !== undefined) await tx.query('UPDATE mailboxes SET uid_next = GREATEST(uid_next, $2) WHERE id = $1', [mailboxId, opts.uidNext]);
          return { uidValidity, uids };
        },
        async (tx) => {
          ids = await this.insertBodies(tx, items, described);
        },
      );
    });
  }
}
