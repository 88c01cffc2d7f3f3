// FETCH-side reads of the SQLite store: message metadata (from big mailboxes'
// in-memory snapshots where kept: metadata.ts), SEARCH on metadata, bodies with
// their cached part trees and headers, keywords, the header index and the
// CONDSTORE/QRESYNC change queries (RFC 7162 §3.1, §3.2). A layer of the SQLite
// store above the message writes (messages.ts).

import type Database from 'better-sqlite3';
import type { HeaderIndex, MaildropSnapshot, MessageBody, MessageMeta, MessageWithBody, MetaFilter } from '../types.js';
import { blobIdOfEmailId } from '../objectid.js';
import { FLAG_DELETED, FLAG_SEEN } from './schema.js';
import { loadStructure } from '../structure.js';
import { openMaildrop as openMaildropRows } from './maildrop.js';
import type { MimePart } from '../../mime/index.js';
import { compileFilter, runFilter, searchStatements, type CompiledFilter } from './search.js';
import { META_COLS, SMALL_READ, Snapshots, type Snapshot, allMetas, snapshotSource, meta, metasOf, type MetaRow } from './metadata.js';
import { MessageOps, uidJson } from './messages.js';

/** SEARCH on mailboxes with at least this many messages runs on the search thread even when it reads only the messages table. */
const SEARCH_OFFLOAD_MIN = 20_000;
/**
 * SEARCH also runs on the search thread when messages × compiled SQL length exceeds this: the work
 * grows with both, and a long program (100 × "(OR NEW OLD)" compiles to thousands of UID range
 * tests) over a mailbox below SEARCH_OFFLOAD_MIN took ~50 ms per 300 messages on the event loop
 * (found by `npm run fuzz -- search`, issue 10).
 */
const SEARCH_OFFLOAD_COST = 4_000_000;
/** Bodies whose decoded MIME tree and header bytes are kept in memory (a busy user's message lists)... */
const DESCRIBED_CACHE_SIZE = 10_000;
/** ...and at most about this many bytes of them (stored JSON plus header: headers may be up to MAX_STORED_HEADER). */
const DESCRIBED_CACHE_BYTES = 32 * 1024 * 1024;

export abstract class MessageReads extends MessageOps {
  private searchStmts: ((sql: string) => Database.Statement) | null = null;

  /** Prepared SEARCH statements of this connection (most recently used kept). */
  private get searchStatement(): (sql: string) => Database.Statement {
    return (this.searchStmts ??= searchStatements(this.db));
  }

  listMessages(mailboxId: number): Promise<MessageMeta[]> {
    return this.read(() => {
      this.existing(mailboxId);
      return this.withSnapshot(mailboxId, (snap) => {
        if (snap) return allMetas(snap);
        const rows = this.q(`SELECT ${META_COLS} FROM messages WHERE mailbox_id = ? ORDER BY uid`).raw().all(mailboxId) as MetaRow[];
        const out = new Array<MessageMeta>(rows.length);
        for (let i = 0; i < rows.length; i++) out[i] = meta(rows[i]!);
        return out;
      });
    });
  }

  deletedSize(mailboxId: number): Promise<number> {
    return this.read(() => {
      this.existing(mailboxId);
      return this.q(`SELECT coalesce(sum(size), 0) FROM messages WHERE mailbox_id = ? AND (sysflags & ${FLAG_DELETED}) != 0`)
        .pluck()
        .get(mailboxId) as number;
    });
  }

  searchMeta(mailboxId: number, filter: MetaFilter): Promise<{ uids: number[]; undecided: number[] }> {
    return this.read(() => {
      const mb = this.existing(mailboxId);
      const compiled = compileFilter(filter, this.hasFullTextFile());
      // Scans of many rows (and every header-index or full-text query) run off the event loop when a search thread runs.
      if (compiled.usesBlob || mb.msg_count >= SEARCH_OFFLOAD_MIN || mb.msg_count * compiled.sql.length > SEARCH_OFFLOAD_COST) {
        const off = this.offloadSearch(mailboxId, compiled);
        if (off) return off;
      }
      if (compiled.usesFullText) {
        // This connection never attaches the index file (its write transactions would lock that file too).
        const reader = this.fullTextReader();
        return reader ? runFilter(reader, mailboxId, compiled) : runFilter(this.searchStatement, mailboxId, compileFilter(filter, false));
      }
      return runFilter(this.searchStatement, mailboxId, compiled);
    });
  }

  /** Whether the full-text index file exists (searches may read it). */
  protected hasFullTextFile(): boolean {
    return false;
  }

  /** Statements of a read-only connection with the full-text index file attached, or null (no index file: nothing is ruled out). */
  protected fullTextReader(): ((sql: string) => Database.Statement) | null {
    return null;
  }


  /** Runs a search on another thread, or null when none runs (then it runs here). */
  protected offloadSearch(_mailboxId: number, _filter: CompiledFilter): Promise<{ uids: number[]; undecided: number[] }> | null {
    return null;
  }

  /** Every non-empty mailbox's metadata in memory (metadata.ts). */
  private readonly snapshots = new Snapshots(snapshotSource((sql) => this.q(sql), (id) => this.mailboxById(id)));

  /**
   * `fn` with the mailbox's snapshot (null: read rows instead): in this turn, inside the caller's
   * read snapshot, when it is current or the mailbox is small (refreshed now, in the same read
   * transaction); after its paged refresh otherwise (metadata.ts). `few`: the caller wants fewer
   * than SMALL_READ messages, and of a small mailbox whose snapshot is stale reads their rows
   * (cheaper than catching up).
   */
  private withSnapshot<T>(mailboxId: number, fn: (snap: Snapshot | null) => T | Promise<T>, few = false): T | Promise<T> {
    const now = this.snapshots.current(mailboxId);
    if (now !== undefined) return fn(now);
    if (this.snapshots.isSmall(mailboxId)) {
      if (few) return fn(null);
      const fresh = this.snapshots.refreshNow(mailboxId);
      if (fresh !== undefined) return fn(fresh);
    }
    return this.snapshots.get(mailboxId).then(fn);
  }

  /** Forgets the in-memory metadata of big mailboxes: the next use reads them again, as after a restart (tests of a first SELECT). */
  dropSnapshots(): void {
    this.snapshots.clear();
  }

  listUids(mailboxId: number): Promise<number[]> {
    return this.read(() => {
      this.existing(mailboxId);
      return this.withSnapshot(mailboxId, (snap) =>
        snap ? snap.uids.slice() : (this.q('SELECT uid FROM messages WHERE mailbox_id = ? ORDER BY uid').pluck().all(mailboxId) as number[]),
      );
    });
  }

  firstUnseenUid(mailboxId: number): Promise<number> {
    return this.read(() => {
      this.existing(mailboxId);
      const uid = this.q(`SELECT uid FROM messages WHERE mailbox_id = ? AND (sysflags & ${FLAG_SEEN}) = 0 ORDER BY uid LIMIT 1`)
        .pluck()
        .get(mailboxId) as number | undefined;
      return uid ?? 0;
    });
  }

  /** The metadata of `uids` (inside a read): from the snapshot, or the rows for a few of a stale small mailbox. */
  private metasFor(mailboxId: number, uids: number[]): MessageMeta[] | Promise<MessageMeta[]> {
    return this.withSnapshot(mailboxId, (snap) => (snap ? metasOf(snap, uids) : this.rowsFor(mailboxId, uids).map(meta)), uids.length < SMALL_READ);
  }

  getMessages(mailboxId: number, uids: number[]): Promise<MessageMeta[]> {
    return this.read(() => {
      this.existing(mailboxId);
      if (uids.length === 0) return [];
      return this.metasFor(mailboxId, uids);
    });
  }

  openMessage(mailboxId: number, uid: number): Promise<MessageBody | null> {
    return this.openMessages(mailboxId, [uid]).then((b) => b[0] ?? null);
  }

  openMessages(mailboxId: number, uids: number[]): Promise<(MessageBody | null)[]> {
    return this.read(() => {
      this.existing(mailboxId);
      if (uids.length === 0) return [];
      const rows = (
        uids.length === 1
          ? this.q('SELECT uid, blob_id, size FROM messages WHERE mailbox_id = ? AND uid = ?').raw().all(mailboxId, uids[0])
          : this.q('SELECT uid, blob_id, size FROM messages WHERE mailbox_id = ? AND uid IN (SELECT value FROM json_each(?))').raw().all(mailboxId, uidJson(uids))
      ) as [number, number, number][];
      this.describe(rows.map((r) => r[1]));
      const byUid = new Map<number, MessageBody>();
      for (const [uid, blobId, size] of rows) byUid.set(uid, this.bodyOf(blobId, size));
      return uids.map((u) => byUid.get(u) ?? null);
    });
  }

  /**
   * getMessages and openMessages in one store call and one read snapshot: the metadata (from the
   * snapshot where there is one, so often no row is read at all) gives each message's blob id and
   * size, and the part trees and headers come from the described cache (issue 11).
   */
  getMessagesWithBodies(mailboxId: number, uids: number[]): Promise<MessageWithBody[]> {
    return this.read(() => {
      this.existing(mailboxId);
      if (uids.length === 0) return [];
      const metas = this.metasFor(mailboxId, uids);
      // A paged refresh (a big mailbox that changed) ends outside this read snapshot: the bodies are looked up in a statement of their own then.
      return metas instanceof Promise ? metas.then((m) => this.withBodies(m)) : this.withBodies(metas);
    });
  }

  private withBodies(metas: MessageMeta[]): MessageWithBody[] {
    // EMAILID is "M<blob id>" in this store (objectid.ts): the metadata names each body.
    const ids = metas.map((m) => (m.emailId ? (blobIdOfEmailId(m.emailId) ?? 0) : 0));
    this.describe(ids);
    return metas.map((m, i) => ({ meta: m, body: this.bodyOf(ids[i]!, m.size) }));
  }

  /** Loads the part trees and headers of the blobs not in the described cache (one statement). */
  private describe(blobIds: readonly number[]): void {
    const missing = blobIds.filter((id) => !this.described.has(id));
    if (missing.length === 0) return;
    const described = this.q('SELECT id, structure, header FROM blobs WHERE id IN (SELECT value FROM json_each(?))')
      .raw()
      .all(JSON.stringify(missing)) as [number, string | null, Buffer | null][];
    for (const [id, json, header] of described) this.remember(id, json, header);
  }

  private bodyOf(blobId: number, size: number): MessageBody {
    const d = this.describedOf(blobId);
    // The stored header is only usable together with the structure that gives its end.
    return this.blobs.body(blobId, size, d.root, d.root ? d.header : null);
  }

  /** POP3's maildrop at login (maildrop.ts). */
  openMaildrop(mailboxId: number): Promise<MaildropSnapshot> {
    return this.run(() => {
      this.existing(mailboxId);
      return openMaildropRows((sql) => this.q(sql), this.blobs, (fn) => this.relaxed(fn), mailboxId);
    });
  }

  listKeywords(mailboxId: number): Promise<string[]> {
    return this.read(() => {
      this.existing(mailboxId);
      return this.qp('SELECT name FROM mailbox_keywords WHERE mailbox_id = ? ORDER BY id').all(mailboxId) as string[];
    });
  }

  headerIndex(mailboxId: number): Promise<Map<number, HeaderIndex | null>> {
    return this.read(() => {
      this.existing(mailboxId);
      const rows = this.q(
        `SELECT m.uid, b.indexed, b.idx_from, b.idx_to, b.idx_cc, b.idx_bcc, b.idx_subject, b.idx_sent_day
         FROM messages m JOIN blobs b ON b.id = m.blob_id WHERE m.mailbox_id = ? ORDER BY m.uid`,
      )
        .raw()
        .all(mailboxId) as [number, number, string | null, string | null, string | null, string | null, string | null, number | null][];
      const out = new Map<number, HeaderIndex | null>();
      for (const [uid, ok, from, to, cc, bcc, subject, sentDay] of rows) {
        out.set(uid, ok ? { from, to, cc, bcc, subject, sentDay } : null);
      }
      return out;
    });
  }

  listChangedSince(mailboxId: number, modseq: number): Promise<MessageMeta[]> {
    return this.read(() => {
      this.existing(mailboxId);
      const rows = this.q(`SELECT ${META_COLS} FROM messages WHERE mailbox_id = ? AND modseq > ? ORDER BY uid`)
        .raw()
        .all(mailboxId, modseq) as MetaRow[];
      return rows.map(meta);
    });
  }

  expungedSince(mailboxId: number, modseq: number): Promise<{ uids: number[]; complete: boolean }> {
    return this.read(() => {
      this.existing(mailboxId);
      const floor = this.q('SELECT tombstone_floor FROM mailboxes WHERE id = ?').pluck().get(mailboxId) as number;
      const uids = this.q('SELECT uid FROM expunged WHERE mailbox_id = ? AND modseq > ? ORDER BY uid').pluck().all(mailboxId, modseq) as number[];
      return { uids, complete: modseq >= floor };
    });
  }

  /**
   * Bodies never change, so the decoded part trees and header bytes of the
   * most recently opened ones are kept: message lists are fetched again and
   * again, and then need neither the blobs table nor JSON decoding.
   */
  private readonly described = new Map<number, { root: MimePart | null; header: Buffer | null; bytes: number }>();
  private describedBytes = 0;

  /** Keeps a body's decoded part tree and header bytes (most recently used last; the oldest leave first). */
  private remember(blobId: number, json: string | null, header: Buffer | null): void {
    if (this.described.has(blobId)) return;
    const bytes = (json?.length ?? 0) + (header?.length ?? 0);
    this.described.set(blobId, { root: loadStructure(json), header, bytes });
    this.describedBytes += bytes;
    while (this.described.size > DESCRIBED_CACHE_SIZE || this.describedBytes > DESCRIBED_CACHE_BYTES) {
      const [oldest, v] = this.described.entries().next().value as [number, { bytes: number }];
      this.described.delete(oldest);
      this.describedBytes -= v.bytes;
    }
  }

  private describedOf(blobId: number): { root: MimePart | null; header: Buffer | null } {
    const hit = this.described.get(blobId);
    if (!hit) return { root: null, header: null }; // the blob row vanished meanwhile: the file read will tell
    this.described.delete(blobId);
    this.described.set(blobId, hit);
    return hit;
  }
}
