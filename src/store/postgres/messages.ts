// Message operations of the PostgreSQL store: APPEND, FETCH metadata,
// STORE, COPY/MOVE, EXPUNGE, the QRESYNC history. Below maildrop.ts, urlauth-keys.ts, bulk.ts and PgMailStore.
//
// UIDs and MODSEQs (RFC 9051 §2.3.1.1, RFC 7162 §3.1): every write takes the
// mailbox row FOR UPDATE inside its transaction (after its user's row, see
// base.ts), reads uid_next / highest_modseq and writes them back before it
// commits, so they strictly ascend per mailbox and are never handed out
// twice, whichever node writes. A rolled-back transaction gives nothing
// away; a committed one is durable (PostgreSQL's synchronous_commit).
import { assignThreadIds } from './threadids.js';
import type pg from 'pg';
import {
  StoreError,
  type AppendInput,
  type AppendResult,
  type CopyResult,
  type Flag,
  type FlagOp,
  type HeaderIndex,
  type MessageBody,
  type MessageMeta,
  type MetaFilter,
  type StoreFlagsResult,
} from '../types.js';
import { describeMessage, loadStructure } from '../structure.js';
import type { MimePart } from '../../mime/index.js';
import { PgBase, type Emit } from './base.js';
import type { BlobStore, Queryable } from './blobs.js';
import { FLAG_DELETED, FLAG_SEEN } from './schema.js';
import { compilePgFilter } from './search.js';
import { emailIdOf } from '../objectid.js';
import { indexableText, storeText } from './fulltext.js';
import { MAX_KEYWORDS_PER_MAILBOX, decodeFlags, encodeKeywords, parseFlags, splitKeywords, type ParsedFlags } from './flags.js';

/** Largest UID (RFC 9051 §2.3.1.1: nz-number is a 32-bit unsigned integer). */
export const MAX_UID = 0xffffffff;
/** Expunged UIDs remembered per mailbox for QRESYNC (RFC 7162 §3.2.10), as the SQLite store. */
export const EXPUNGE_TOMBSTONES_KEPT = 100_000;
/** Pruning of tombstones runs once every this many modseqs. */
const TOMBSTONE_PRUNE_EVERY = 64;
/** Messages whose flags one STORE transaction changes (big sets go in several, each its own modseq). */
const STORE_BATCH = 5_000;
/** Messages one EXPUNGE transaction removes. */
const REMOVE_BATCH = 2_000;
/** Decoded part trees and header bytes kept in memory (message lists are fetched again and again). */
const DESCRIBED_CACHE_SIZE = 10_000;

export interface MailboxRow {
  id: number;
  user_id: number;
  name: string;
  uid_validity: number;
  uid_next: number;
  highest_modseq: number;
  recent_uid: number;
  special_use: string | null;
  object_id: string;
  msg_count: number;
  unseen_count: number;
  deleted_count: number;
  total_size: number;
  tombstone_floor: number;
}

interface MetaDbRow {
  uid: number;
  sysflags: number;
  keywords: string;
  internal_date: number;
  internal_tz: number;
  save_date: number | null;
  size: number;
  modseq: number;
  blob_id: number;
}

export const META_COLS = 'uid, sysflags, keywords, internal_date, internal_tz, save_date, size, modseq, blob_id';

export function metaOf(r: MetaDbRow): MessageMeta {
  return {
    uid: r.uid,
    flags: decodeFlags(r.sysflags, r.keywords),
    internalDate: r.internal_date,
    internalTz: r.internal_tz,
    saveDate: r.save_date,
    emailId: emailIdOf(r.blob_id),
    size: r.size,
    modseq: r.modseq,
  };
}

/** The server's zone at instant `ms`, minutes east of UTC. */
export function localZoneAt(ms: number): number {
  return 0 - new Date(ms).getTimezoneOffset();
}

/** Text PostgreSQL can store: NUL becomes U+FFFD (text columns cannot hold it). */
export function pgText(s: string | null): string | null {
  return s === null || !s.includes('\0') ? s : s.replace(/\0/g, '\uFFFD');
}

/** Valid, deduplicated, ascending UIDs. */
function cleanUids(uids: readonly number[]): number[] {
  const out = [...new Set(uids.filter((u) => Number.isInteger(u) && u > 0 && u <= MAX_UID))];
  out.sort((a, b) => a - b);
  return out;
}

type Described = ReturnType<typeof describeMessage> & { text: ReturnType<typeof indexableText> };

/** Keywords of one mailbox within one transaction; registers new ones (first-seen spelling, RFC 9051 §2.3.2). */
export class KeywordTable {
  private map: Map<string, string> | undefined;
  constructor(
    private readonly tx: Queryable,
    private readonly mailboxId: number,
  ) {}

  async resolve(keywords: readonly string[]): Promise<string[]> {
    if (keywords.length === 0) return [];
    if (!this.map) {
      const r = await this.tx.query<{ lname: string; name: string }>('SELECT lname, name FROM mailbox_keywords WHERE mailbox_id = $1', [this.mailboxId]);
      this.map = new Map(r.rows.map((x) => [x.lname, x.name]));
    }
    const out: string[] = [];
    for (const k of keywords) {
      const lower = k.toLowerCase();
      let name = this.map.get(lower);
      if (name === undefined) {
        if (this.map.size >= MAX_KEYWORDS_PER_MAILBOX) throw new StoreError('LIMIT', `too many keywords in mailbox (at most ${MAX_KEYWORDS_PER_MAILBOX})`);
        await this.tx.query('INSERT INTO mailbox_keywords (mailbox_id, lname, name) VALUES ($1, $2, $3)', [this.mailboxId, lower, k]);
        this.map.set(lower, k);
        name = k;
      }
      out.push(name);
    }
    return out;
  }
}

export class PgBody implements MessageBody {
  constructor(
    private readonly blobs: BlobStore,
    private readonly id: number,
    readonly size: number,
    readonly structure: MimePart | null,
    readonly header: Buffer | null,
  ) {}

  async read(start: number, end: number): Promise<Buffer> {
    const s = Math.max(0, start);
    const e = Math.min(this.size, end);
    return e <= s ? Buffer.alloc(0) : this.blobs.read(this.id, s, e);
  }

  async *stream(start = 0, end = this.size, chunkSize = 64 * 1024): AsyncIterable<Buffer> {
    const s = Math.max(0, start);
    const e = Math.min(this.size, end);
    if (e > s) yield* this.blobs.stream(this.id, s, e, chunkSize);
  }
}

export abstract class PgMessageOps extends PgBase {
  protected abstract readonly blobs: BlobStore;
  /** mailbox id -> user id (never changes; ids are never reused). */
  private readonly owners = new Map<number, number>();
  private readonly described = new Map<number, { root: MimePart | null; header: Buffer | null }>();

  protected async mailboxRow(q: Queryable, id: number, lock = false): Promise<MailboxRow | undefined> {
    const r = await q.query<MailboxRow>(`SELECT * FROM mailboxes WHERE id = $1${lock ? ' FOR UPDATE' : ''}`, [id]);
    return r.rows[0];
  }

  protected async existing(q: Queryable, id: number, kind: 'NONEXISTENT' | 'TRYCREATE' = 'NONEXISTENT', lock = false): Promise<MailboxRow> {
    const mb = await this.mailboxRow(q, id, lock);
    if (!mb) throw new StoreError(kind, 'no such mailbox');
    return mb;
  }

  /** The owner of a mailbox (for the user lock a write takes first). */
  protected async ownerOf(mailboxId: number, kind: 'NONEXISTENT' | 'TRYCREATE' = 'NONEXISTENT'): Promise<number> {
    const known = this.owners.get(mailboxId);
    if (known !== undefined) return known;
    const r = await this.db.query<{ user_id: number }>('SELECT user_id FROM mailboxes WHERE id = $1', [mailboxId]);
    const u = r.rows[0]?.user_id;
    if (u === undefined) throw new StoreError(kind, 'no such mailbox');
    if (this.owners.size > 100_000) this.owners.clear();
    this.owners.set(mailboxId, u);
    return u;
  }

  private async rowsFor(q: Queryable, mailboxId: number, uids: readonly number[], lock = false): Promise<MetaDbRow[]> {
    const clean = cleanUids(uids);
    if (clean.length === 0) return [];
    const r = await q.query<MetaDbRow>(
      `SELECT ${META_COLS} FROM messages WHERE mailbox_id = $1 AND uid = ANY($2::bigint[]) ORDER BY uid${lock ? ' FOR UPDATE' : ''}`,
      [mailboxId, clean],
    );
    return r.rows;
  }

  // ---- bodies

  protected describe(items: readonly { data: Buffer }[]): Described[] {
    return items.map((it) => ({ ...describeMessage(it.data), text: indexableText(it.data) }));
  }

  /**
   * Inserts the body rows of `items` (metadata with the bare-LF count POP3 sizes need, chunks, full-text) in the
   * caller's transaction; returns their ids. `fixed[i]`, when given, is the id body i must have (bulk.ts: an
   * EMAILID kept by a copy; the caller made sure the sequence never hands it out).
   */
  protected async insertBodies(tx: Queryable, items: readonly { data: Buffer }[], described: readonly Described[], fixed?: readonly (number | null)[]): Promise<number[]> {
    const ids: number[] = [];
    for (let i = 0; i < items.length; i++) {
      const d = described[i]!;
      const ix = d.index;
      const k = d.sort;
      const want = fixed?.[i] ?? null;
      const r = await tx.query<{ id: number }>(
        `INSERT INTO blobs (${want === null ? '' : 'id, '}size, structure, header, idx_from, idx_to, idx_cc, idx_bcc, idx_subject, idx_sent_day,
           sort_subject, sort_from, sort_to, sort_cc, sort_dfrom, sort_dto, sort_sent, sort_reply, msgid, refs, irt, bare_lf)
         VALUES (${want === null ? '' : '$22, '}$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21) RETURNING id`,
        [items[i]!.data.length, pgText(d.structure), d.header, pgText(ix.from), pgText(ix.to), pgText(ix.cc), pgText(ix.bcc), pgText(ix.subject), ix.sentDay,
          pgText(k.subject), pgText(k.from), pgText(k.to), pgText(k.cc), pgText(k.displayFrom), pgText(k.displayTo), k.date, k.isReply, pgText(k.messageId), pgText(k.references), pgText(k.inReplyTo), d.bareLf,
          ...(want === null ? [] : [want])],
      );
      const id = r.rows[0]!.id;
      await this.blobs.put(tx, id, items[i]!.data);
      await storeText(tx, id, d.text);
      ids.push(id);
    }
    return ids;
  }

  /** Deletes the body rows no message references any more (same user: serialised by the user lock). */
  protected async dropUnreferenced(tx: Queryable, blobIds: readonly number[]): Promise<void> {
    if (blobIds.length === 0) return;
    await tx.query(
      'DELETE FROM blobs b WHERE b.id = ANY($1::bigint[]) AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.blob_id = b.id)',
      [[...new Set(blobIds)]],
    );
  }

  // ---- APPEND

  appendMessages(mailboxId: number, items: AppendInput[]): Promise<AppendResult> {
    return this.run(async () => {
      const parsed = items.map((it) => parseFlags(it.flags));
      const userId = await this.ownerOf(mailboxId, 'TRYCREATE');
      if (items.length === 0) return { uidValidity: (await this.existing(this.db, mailboxId, 'TRYCREATE')).uid_validity, uids: [] };
      const described = this.describe(items);
      let ids: number[] = [];
      return this.write(
        userId,
        (tx, emit) => this.appendInTx(tx, mailboxId, items, ids, parsed, emit, null),
        async (tx) => {
          ids = await this.insertBodies(tx, items, described);
        },
      );
    });
  }

  /** Inserts message rows for stored bodies; `given` are imported UIDs (null: the next ones). */
  protected async appendInTx(
    tx: Queryable,
    mailboxId: number,
    items: readonly AppendInput[],
    ids: readonly number[],
    parsed: readonly ParsedFlags[],
    emit: Emit,
    given: readonly number[] | null,
  ): Promise<AppendResult> {
    const mb = await this.existing(tx, mailboxId, 'TRYCREATE', true);
    if (given === null && mb.uid_next + items.length - 1 > MAX_UID) throw new StoreError('LIMIT', 'mailbox UID space exhausted');
    if (given !== null && given.length > 0 && given[0]! < mb.uid_next) {
      throw new StoreError('CANNOT', `UID ${given[0]} is below the mailbox's UIDNEXT ${mb.uid_next}`);
    }
    await this.checkQuota(tx, mb.user_id, items.reduce((n, it) => n + it.data.length, 0), items.length);
    const kw = new KeywordTable(tx, mailboxId);
    const modseq = mb.highest_modseq + 1;
    const now = Date.now();
    const metas: MessageMeta[] = [];
    const cols: unknown[][] = [[], [], [], [], [], [], [], [], []];
    for (let i = 0; i < items.length; i++) {
      const it = items[i]!;
      const uid = given ? given[i]! : mb.uid_next + i;
      const { sys, keywords } = parsed[i]!;
      const kwCol = encodeKeywords(await kw.resolve(keywords));
      const date = it.internalDate ?? now;
      const tz = it.internalTz ?? localZoneAt(date);
      const size = it.data.length;
      // RFC 8514 §3: the save date is the time of saving, whatever INTERNALDATE was given.
      [uid, ids[i]!, sys, kwCol, date, tz, now, size, modseq].forEach((v, c) => cols[c]!.push(v));
      metas.push({ uid, flags: decodeFlags(sys, kwCol), internalDate: date, internalTz: tz, saveDate: now, emailId: emailIdOf(ids[i]!), size, modseq });
    }
    await this.insertMessages(tx, mailboxId, cols);
    // RFC 8474 §5.2: the THREADID is fixed as the message is stored (threadids.ts).
    await assignThreadIds(tx, mb.user_id, ids);
    const uidNext = given ? Math.max(mb.uid_next, (given[given.length - 1] ?? 0) + 1) : mb.uid_next + items.length;
    await tx.query('UPDATE mailboxes SET uid_next = $2, highest_modseq = $3 WHERE id = $1', [mailboxId, uidNext, modseq]);
    emit({ kind: 'append', userId: mb.user_id, mailboxId, modseq, messages: metas });
    return { uidValidity: mb.uid_validity, uids: metas.map((m) => m.uid) };
  }

  /** One INSERT for many message rows (columns as arrays: uid, blob, sysflags, keywords, date, tz, save date, size, modseq). */
  protected async insertMessages(tx: Queryable, mailboxId: number, cols: unknown[][]): Promise<void> {
    if (cols[0]!.length === 0) return;
    await tx.query(
      `INSERT INTO messages (mailbox_id, uid, blob_id, sysflags, keywords, internal_date, internal_tz, save_date, size, modseq)
       SELECT $1, * FROM unnest($2::bigint[], $3::bigint[], $4::int[], $5::text[], $6::bigint[], $7::int[], $8::bigint[], $9::bigint[], $10::bigint[])`,
      [mailboxId, ...cols],
    );
  }

  /** OVERQUOTA when adding `bytes` in `count` messages would pass the user's limits (RFC 9208 §5.1). The user row is locked. */
  protected async checkQuota(tx: Queryable, userId: number, bytes: number, count: number): Promise<void> {
    const r = await tx.query<{ storage_limit: number | null; message_limit: number | null; storage_used: number; messages_used: number }>(
      'SELECT storage_limit, message_limit, storage_used, messages_used FROM users WHERE id = $1',
      [userId],
    );
    const q = r.rows[0];
    if (!q) return;
    if ((q.storage_limit !== null && q.storage_used + bytes > q.storage_limit) || (q.message_limit !== null && q.messages_used + count > q.message_limit)) {
      throw new StoreError('OVERQUOTA', 'quota exceeded');
    }
  }

  replaceMessage(sourceMailboxId: number, uid: number, destMailboxId: number, item: AppendInput): Promise<AppendResult> {
    return this.run(async () => {
      const parsed = [parseFlags(item.flags)];
      const userId = await this.ownerOf(sourceMailboxId);
      const destUser = await this.ownerOf(destMailboxId, 'TRYCREATE');
      if (destUser !== userId) throw new StoreError('CANNOT', 'REPLACE across users');
      const described = this.describe([item]);
      let ids: number[] = [];
      return this.write(
        userId,
        async (tx, emit) => {
          const src = await this.existing(tx, sourceMailboxId, 'NONEXISTENT', true);
          const rows = await this.rowsFor(tx, sourceMailboxId, [uid], true);
          if (rows.length === 0) throw new StoreError('EXPUNGEISSUED', 'the message to replace no longer exists');
          await this.removeInTx(tx, src, rows, emit);
          return this.appendInTx(tx, destMailboxId, [item], ids, parsed, emit, null);
        },
        async (tx) => {
          ids = await this.insertBodies(tx, [item], described);
        },
      );
    });
  }

  // ---- FETCH metadata

  listMessages(mailboxId: number): Promise<MessageMeta[]> {
    return this.run(async () => {
      await this.existing(this.db, mailboxId);
      const r = await this.db.query<MetaDbRow>(`SELECT ${META_COLS} FROM messages WHERE mailbox_id = $1 ORDER BY uid`, [mailboxId]);
      return r.rows.map(metaOf);
    });
  }

  deletedSize(mailboxId: number): Promise<number> {
    return this.run(async () => {
      await this.existing(this.db, mailboxId);
      const r = await this.db.query<{ n: number }>(`SELECT coalesce(sum(size), 0)::bigint AS n FROM messages WHERE mailbox_id = $1 AND (sysflags & ${FLAG_DELETED}) <> 0`, [mailboxId]);
      return r.rows[0]!.n;
    });
  }

  searchMeta(mailboxId: number, filter: MetaFilter): Promise<{ uids: number[]; undecided: number[] }> {
    return this.run(async () => {
      await this.existing(this.db, mailboxId);
      const f = compilePgFilter(filter, 2);
      if (!f.usesBlob) {
        const r = await this.db.query<{ uid: number }>(`SELECT m.uid FROM messages m WHERE m.mailbox_id = $1 AND (${f.sql}) ORDER BY m.uid`, [mailboxId, ...f.params]);
        return { uids: r.rows.map((x) => x.uid), undecided: [] };
      }
      const r = await this.db.query<{ uid: number; ok: boolean | null }>(
        `SELECT m.uid, (${f.sql}) AS ok FROM messages m JOIN blobs b ON b.id = m.blob_id LEFT JOIN blob_text t ON t.blob_id = m.blob_id
         WHERE m.mailbox_id = $1 ORDER BY m.uid`,
        [mailboxId, ...f.params],
      );
      const uids: number[] = [];
      const undecided: number[] = [];
      for (const row of r.rows) {
        if (row.ok === null) undecided.push(row.uid);
        else if (row.ok) uids.push(row.uid);
      }
      return { uids, undecided };
    });
  }

  listUids(mailboxId: number): Promise<number[]> {
    return this.run(async () => {
      await this.existing(this.db, mailboxId);
      const r = await this.db.query<{ uid: number }>('SELECT uid FROM messages WHERE mailbox_id = $1 ORDER BY uid', [mailboxId]);
      return r.rows.map((x) => x.uid);
    });
  }

  firstUnseenUid(mailboxId: number): Promise<number> {
    return this.run(async () => {
      await this.existing(this.db, mailboxId);
      const r = await this.db.query<{ uid: number }>(`SELECT uid FROM messages WHERE mailbox_id = $1 AND (sysflags & ${FLAG_SEEN}) = 0 ORDER BY uid LIMIT 1`, [mailboxId]);
      return r.rows[0]?.uid ?? 0;
    });
  }

  getMessages(mailboxId: number, uids: number[]): Promise<MessageMeta[]> {
    return this.run(async () => {
      await this.existing(this.db, mailboxId);
      return (await this.rowsFor(this.db, mailboxId, uids)).map(metaOf);
    });
  }

  openMessage(mailboxId: number, uid: number): Promise<MessageBody | null> {
    return this.openMessages(mailboxId, [uid]).then((b) => b[0] ?? null);
  }

  openMessages(mailboxId: number, uids: number[]): Promise<(MessageBody | null)[]> {
    return this.run(async () => {
      await this.existing(this.db, mailboxId);
      const clean = cleanUids(uids);
      if (clean.length === 0) return uids.map(() => null);
      const rows = (await this.db.query<{ uid: number; blob_id: number; size: number }>(
        'SELECT uid, blob_id, size FROM messages WHERE mailbox_id = $1 AND uid = ANY($2::bigint[])',
        [mailboxId, clean],
      )).rows;
      const missing = rows.filter((r) => !this.described.has(r.blob_id)).map((r) => r.blob_id);
      if (missing.length > 0) {
        const d = await this.db.query<{ id: number; structure: string | null; header: Buffer | null }>(
          'SELECT id, structure, header FROM blobs WHERE id = ANY($1::bigint[])',
          [missing],
        );
        for (const x of d.rows) {
          if (this.described.size >= DESCRIBED_CACHE_SIZE) this.described.delete(this.described.keys().next().value as number);
          this.described.set(x.id, { root: loadStructure(x.structure), header: x.header });
        }
      }
      const byUid = new Map<number, MessageBody>();
      for (const r of rows) {
        const d = this.described.get(r.blob_id) ?? { root: null, header: null };
        byUid.set(r.uid, new PgBody(this.blobs, r.blob_id, r.size, d.root, d.root ? d.header : null));
      }
      return uids.map((u) => byUid.get(u) ?? null);
    });
  }

  listKeywords(mailboxId: number): Promise<string[]> {
    return this.run(async () => {
      await this.existing(this.db, mailboxId);
      const r = await this.db.query<{ name: string }>('SELECT name FROM mailbox_keywords WHERE mailbox_id = $1 ORDER BY id', [mailboxId]);
      return r.rows.map((x) => x.name);
    });
  }

  // ---- STORE

  storeFlags(mailboxId: number, uids: number[], op: FlagOp, flags: Flag[], unchangedSince?: number): Promise<StoreFlagsResult> {
    return this.run(async () => {
      const { sys, keywords } = parseFlags(flags);
      const userId = await this.ownerOf(mailboxId);
      const sorted = cleanUids(uids);
      const out: StoreFlagsResult = { changed: [], modified: [] };
      if (sorted.length === 0) {
        await this.existing(this.db, mailboxId);
        return out;
      }
      for (let i = 0; i < sorted.length; i += STORE_BATCH) {
        const part = await this.write(userId, (tx, emit) => this.storeChunk(tx, mailboxId, sorted.slice(i, i + STORE_BATCH), op, sys, keywords, unchangedSince, emit));
        for (const m of part.changed) out.changed.push(m);
        for (const u of part.modified) out.modified.push(u);
      }
      return out;
    });
  }

  private async storeChunk(tx: Queryable, mailboxId: number, uids: readonly number[], op: FlagOp, sys: number, keywords: string[], unchangedSince: number | undefined, emit: Emit): Promise<StoreFlagsResult> {
    const mb = await this.existing(tx, mailboxId, 'NONEXISTENT', true);
    const rows = await this.rowsFor(tx, mailboxId, uids);
    const result: StoreFlagsResult = { changed: [], modified: [] };
    if (rows.length === 0) return result;
    const kwNames = op === 'remove' ? keywords : await new KeywordTable(tx, mailboxId).resolve(keywords);
    const kwLower = new Set(kwNames.map((k) => k.toLowerCase()));
    const modseq = mb.highest_modseq + 1;
    const pending: [number[], number[], string[]] = [[], [], []];
    for (const r of rows) {
      // RFC 7162 §3.2: messages changed since UNCHANGEDSINCE are refused and left alone.
      if (unchangedSince !== undefined && r.modseq > unchangedSince) {
        result.modified.push(r.uid);
        continue;
      }
      const oldKws = splitKeywords(r.keywords);
      let newSys: number;
      let newKws: readonly string[];
      if (op === 'set') {
        newSys = sys;
        newKws = kwNames;
      } else if (op === 'add') {
        newSys = r.sysflags | sys;
        const have = new Set(oldKws.map((k) => k.toLowerCase()));
        newKws = [...oldKws, ...kwNames.filter((k) => !have.has(k.toLowerCase()))];
      } else {
        newSys = r.sysflags & ~sys;
        newKws = oldKws.filter((k) => !kwLower.has(k.toLowerCase()));
      }
      const kwCol = encodeKeywords(newKws);
      if (newSys === r.sysflags && kwCol === r.keywords) continue;
      pending[0].push(r.uid);
      pending[1].push(newSys);
      pending[2].push(kwCol);
      result.changed.push({ ...metaOf(r), flags: decodeFlags(newSys, kwCol), modseq });
    }
    if (pending[0].length === 0) return result;
    await tx.query(
      `UPDATE messages m SET sysflags = u.s, keywords = u.k, modseq = $2
       FROM unnest($3::bigint[], $4::int[], $5::text[]) AS u(uid, s, k) WHERE m.mailbox_id = $1 AND m.uid = u.uid`,
      [mailboxId, modseq, ...pending],
    );
    await tx.query('UPDATE mailboxes SET highest_modseq = $2 WHERE id = $1', [mailboxId, modseq]);
    emit({ kind: 'flags', userId: mb.user_id, mailboxId, modseq, messages: result.changed });
    return result;
  }

  // ---- COPY / MOVE / EXPUNGE

  copyMessages(sourceMailboxId: number, uids: number[], destMailboxId: number): Promise<CopyResult> {
    return this.run(async () => {
      const userId = await this.ownerOf(sourceMailboxId);
      const destUser = await this.ownerOf(destMailboxId, 'TRYCREATE');
      if (destUser !== userId) throw new StoreError('CANNOT', 'COPY across users');
      return this.write(userId, async (tx, emit) => (await this.copyInTx(tx, sourceMailboxId, uids, destMailboxId, emit, true)).result);
    });
  }

  moveMessages(sourceMailboxId: number, uids: number[], destMailboxId: number): Promise<CopyResult> {
    return this.run(async () => {
      const userId = await this.ownerOf(sourceMailboxId);
      const destUser = await this.ownerOf(destMailboxId, 'TRYCREATE');
      if (destUser !== userId) throw new StoreError('CANNOT', 'MOVE across users');
      return this.write(userId, (tx, emit) => this.moveInTx(tx, sourceMailboxId, uids, destMailboxId, emit));
    });
  }

  /** RFC 6851: copy, then expunge the originals, in the caller's transaction; quota-neutral (usage does not change). */
  protected async moveInTx(tx: Queryable, sourceMailboxId: number, uids: readonly number[], destMailboxId: number, emit: Emit): Promise<CopyResult> {
    const { result, rows } = await this.copyInTx(tx, sourceMailboxId, uids, destMailboxId, emit, false);
    if (rows.length > 0) await this.removeInTx(tx, await this.existing(tx, sourceMailboxId, 'NONEXISTENT', true), rows, emit);
    return result;
  }

  /** Copies existing source UIDs (ascending) to new ascending UIDs in the destination, sharing bodies. */
  protected async copyInTx(tx: Queryable, sourceMailboxId: number, uids: readonly number[], destMailboxId: number, emit: Emit, quota: boolean): Promise<{ result: CopyResult; rows: MetaDbRow[] }> {
    // Locks in id order (a copy between two mailboxes never deadlocks with one the other way).
    const [a, b] = sourceMailboxId <= destMailboxId ? [sourceMailboxId, destMailboxId] : [destMailboxId, sourceMailboxId];
    await this.existing(tx, a, a === destMailboxId ? 'TRYCREATE' : 'NONEXISTENT', true);
    if (b !== a) await this.existing(tx, b, b === destMailboxId ? 'TRYCREATE' : 'NONEXISTENT', true);
    const dest = await this.existing(tx, destMailboxId, 'TRYCREATE');
    const rows = await this.rowsFor(tx, sourceMailboxId, uids);
    const result: CopyResult = { uidValidity: dest.uid_validity, sourceUids: [], destUids: [] };
    if (rows.length === 0) return { result, rows };
    if (dest.uid_next + rows.length - 1 > MAX_UID) throw new StoreError('LIMIT', 'mailbox UID space exhausted');
    if (quota) await this.checkQuota(tx, dest.user_id, rows.reduce((n, r) => n + r.size, 0), rows.length);
    const kw = new KeywordTable(tx, destMailboxId);
    const modseq = dest.highest_modseq + 1;
    // RFC 8514 §3: a copy (and a moved message) gets a new save date; INTERNALDATE and its zone travel (RFC 9051 §6.4.7).
    const now = Date.now();
    const cols: unknown[][] = [[], [], [], [], [], [], [], [], []];
    const metas: MessageMeta[] = [];
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i]!;
      const destUid = dest.uid_next + i;
      const destKw = r.keywords === '' ? '' : encodeKeywords(await kw.resolve(splitKeywords(r.keywords)));
      [destUid, r.blob_id, r.sysflags, destKw, r.internal_date, r.internal_tz, now, r.size, modseq].forEach((v, c) => cols[c]!.push(v));
      result.sourceUids.push(r.uid);
      result.destUids.push(destUid);
      metas.push({ uid: destUid, flags: decodeFlags(r.sysflags, destKw), internalDate: r.internal_date, internalTz: r.internal_tz, saveDate: now, emailId: emailIdOf(r.blob_id), size: r.size, modseq });
    }
    await this.insertMessages(tx, destMailboxId, cols);
    await tx.query('UPDATE mailboxes SET uid_next = $2, highest_modseq = $3 WHERE id = $1', [destMailboxId, dest.uid_next + rows.length, modseq]);
    emit({ kind: 'append', userId: dest.user_id, mailboxId: destMailboxId, modseq, messages: metas });
    return { result, rows };
  }

  expunge(mailboxId: number, uids?: number[]): Promise<number[]> {
    return this.run(async () => {
      const userId = await this.ownerOf(mailboxId);
      const want = uids === undefined ? null : cleanUids(uids);
      const all: number[] = [];
      let after = 0;
      let cursor = 0;
      // In transactions of REMOVE_BATCH, each its own modseq and change record (RFC 9051 §7.5.1 lets others see them go in steps).
      for (;;) {
        const gone = await this.write(userId, async (tx, emit) => {
          const mb = await this.existing(tx, mailboxId, 'NONEXISTENT', true);
          let rows: MetaDbRow[];
          if (want === null) {
            rows = (await tx.query<MetaDbRow>(
              `SELECT ${META_COLS} FROM messages WHERE mailbox_id = $1 AND (sysflags & ${FLAG_DELETED}) <> 0 AND uid > $2 ORDER BY uid LIMIT $3`,
              [mailboxId, after, REMOVE_BATCH],
            )).rows;
          } else {
            const part = want.slice(cursor, cursor + REMOVE_BATCH);
            cursor += part.length;
            rows = (await this.rowsFor(tx, mailboxId, part)).filter((r) => r.sysflags & FLAG_DELETED);
          }
          if (rows.length > 0) await this.removeInTx(tx, mb, rows, emit);
          return rows.map((r) => r.uid);
        });
        for (const u of gone) all.push(u);
        if (gone.length) after = gone[gone.length - 1]!;
        if (want === null ? gone.length < REMOVE_BATCH : cursor >= want.length) break;
      }
      return all;
    });
  }

  /** Deletes the given rows and leaves tombstones with one new modseq; bodies nobody references go too. */
  protected async removeInTx(tx: Queryable, mb: MailboxRow, rows: readonly MetaDbRow[], emit: Emit): Promise<void> {
    const modseq = mb.highest_modseq + 1;
    const uids = rows.map((r) => r.uid);
    await tx.query('DELETE FROM messages WHERE mailbox_id = $1 AND uid = ANY($2::bigint[])', [mb.id, uids]);
    await tx.query(
      `INSERT INTO expunged (mailbox_id, uid, modseq) SELECT $1, u, $2 FROM unnest($3::bigint[]) AS u
       ON CONFLICT (mailbox_id, uid) DO UPDATE SET modseq = excluded.modseq`,
      [mb.id, modseq, uids],
    );
    await tx.query('UPDATE mailboxes SET highest_modseq = $2 WHERE id = $1', [mb.id, modseq]);
    await this.dropUnreferenced(tx, rows.map((r) => r.blob_id));
    if (modseq % TOMBSTONE_PRUNE_EVERY === 0) await this.pruneTombstones(tx, mb.id);
    emit({ kind: 'expunge', userId: mb.user_id, mailboxId: mb.id, modseq, uids });
  }

  private async pruneTombstones(tx: Queryable, mailboxId: number): Promise<void> {
    const r = await tx.query<{ modseq: number }>('SELECT modseq FROM expunged WHERE mailbox_id = $1 ORDER BY modseq DESC LIMIT 1 OFFSET $2', [mailboxId, EXPUNGE_TOMBSTONES_KEPT]);
    const cut = r.rows[0]?.modseq;
    if (cut === undefined) return;
    await tx.query('DELETE FROM expunged WHERE mailbox_id = $1 AND modseq <= $2', [mailboxId, cut]);
    await tx.query('UPDATE mailboxes SET tombstone_floor = GREATEST(tombstone_floor, $2) WHERE id = $1', [mailboxId, cut]);
  }

  // ---- indexes and history

  headerIndex(mailboxId: number): Promise<Map<number, HeaderIndex | null>> {
    return this.run(async () => {
      await this.existing(this.db, mailboxId);
      const r = await this.db.query<{ uid: number; idx_from: string | null; idx_to: string | null; idx_cc: string | null; idx_bcc: string | null; idx_subject: string | null; idx_sent_day: number | null }>(
        `SELECT m.uid, b.idx_from, b.idx_to, b.idx_cc, b.idx_bcc, b.idx_subject, b.idx_sent_day
         FROM messages m JOIN blobs b ON b.id = m.blob_id WHERE m.mailbox_id = $1 ORDER BY m.uid`,
        [mailboxId],
      );
      const out = new Map<number, HeaderIndex | null>();
      for (const x of r.rows) out.set(x.uid, { from: x.idx_from, to: x.idx_to, cc: x.idx_cc, bcc: x.idx_bcc, subject: x.idx_subject, sentDay: x.idx_sent_day });
      return out;
    });
  }

  listChangedSince(mailboxId: number, modseq: number): Promise<MessageMeta[]> {
    return this.run(async () => {
      await this.existing(this.db, mailboxId);
      const r = await this.db.query<MetaDbRow>(`SELECT ${META_COLS} FROM messages WHERE mailbox_id = $1 AND modseq > $2 ORDER BY uid`, [mailboxId, modseq]);
      return r.rows.map(metaOf);
    });
  }

  expungedSince(mailboxId: number, modseq: number): Promise<{ uids: number[]; complete: boolean }> {
    return this.run(async () => {
      const mb = await this.existing(this.db, mailboxId);
      const r = await this.db.query<{ uid: number }>('SELECT uid FROM expunged WHERE mailbox_id = $1 AND modseq > $2 ORDER BY uid', [mailboxId, modseq]);
      return { uids: r.rows.map((x) => x.uid), complete: modseq >= mb.tombstone_floor };
    });
  }
}
