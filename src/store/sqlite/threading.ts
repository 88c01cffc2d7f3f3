// The SQLite store's thread index (schema V_THREAD_INDEX): every
// Message-ID a body names (its own, its References, or its In-Reply-To
// without them: RFC 5256 §4 step 1.A) and its base subject are interned once,
// at APPEND; the body's thread_keys row holds them as numbers, and
// thread_msgs repeats them per message in THREAD's order (sent date, UID),
// kept by triggers as messages come and go (COPY, MOVE and EXPUNGE need no
// code of their own). THREAD reads a mailbox's range of thread_msgs on the
// search thread and threads there (src/store/threading.ts), so a
// 100k-message THREAD costs the serving thread only the formatting of the
// answer.
import type Database from 'better-sqlite3';
import type { SortKeys } from '../../mime/index.js';
import { threadIndex, type ThreadAlgorithmName, type ThreadForest, type ThreadInput } from '../threading.js';

export interface ThreadQuery {
  mailboxId: number;
  maxUid: number;
  alg: ThreadAlgorithmName;
  /** Only these UIDs (ascending), or all up to maxUid. */
  uids: Uint32Array | null;
}

/** The exact set of messages a whole-mailbox answer was computed for (schema V_THREAD_ANSWERS). */
export interface ThreadKeepKey {
  mailboxId: number;
  alg: ThreadAlgorithmName;
  uidValidity: number;
  uidNext: number;
  count: number;
}

/**
 * The search thread's answer: the threads, or how many messages lack a thread index row (then nothing
 * was threaded). `keep`: a whole-mailbox answer just computed that may be kept across restarts
 * (keepThreadAnswer, by the serving thread's writer); `from`: where the answer came from.
 */
export type ThreadAnswer = { forest: ThreadForest; keep?: ThreadKeepKey; from?: 'computed' | 'memory' | 'kept' } | { missing: number };

/**
 * Mailboxes smaller than this have no answer kept on disk: threading them is a few milliseconds, and a
 * row per small mailbox and algorithm would only grow the database.
 */
export const THREAD_KEEP_MIN_MESSAGES = 1_000;
/**
 * Largest answer kept on disk (its nodes, 8 bytes a node: about 120k messages): a bigger one costs the
 * writer more than a few milliseconds to store on the serving thread, and its read more than threading.
 */
export const THREAD_KEEP_MAX_BYTES = 1024 * 1024;

type Prepare = (sql: string) => Database.Statement;

/** The interned number of a Message-ID or a base subject (inside the caller's transaction). */
function intern(q: Prepare, table: 'thread_msgids' | 'thread_subjects', col: 'msgid' | 'subject', value: string): number {
  const had = q(`SELECT id FROM ${table} WHERE ${col} = ?`).pluck().get(value) as number | undefined;
  if (had !== undefined) return had;
  return Number(q(`INSERT INTO ${table} (${col}) VALUES (?)`).run(value).lastInsertRowid);
}

/** What the thread index needs of a body's sort keys (src/mime/sortkeys.ts). */
type ThreadKeys = Pick<SortKeys, 'subject' | 'isReply' | 'date' | 'messageId' | 'references' | 'inReplyTo'>;

/**
 * Keeps a body's thread index row, from the keys sortKeysOf computed, and the rows of the messages
 * already stored with it (a body given its keys after its messages: the sort keys' backfill). Inside
 * the caller's transaction.
 */
export function storeThreadKeys(q: Prepare, blobId: number, k: ThreadKeys): void {
  const self = k.messageId ? intern(q, 'thread_msgids', 'msgid', k.messageId) : null;
  const subj = k.subject ? intern(q, 'thread_subjects', 'subject', k.subject) : 0;
  // RFC 5256 §4 step 1.A: the References ids, or the In-Reply-To id without any.
  const list = k.references ? k.references.split(' ') : k.inReplyTo ? [k.inReplyTo] : [];
  const refs = Buffer.alloc(4 * list.length);
  list.forEach((id, i) => refs.writeUInt32LE(intern(q, 'thread_msgids', 'msgid', id), 4 * i));
  q('INSERT OR REPLACE INTO thread_keys (blob_id, sent, subj, reply, msgid, refs) VALUES (?, ?, ?, ?, ?, ?)').run(blobId, k.date, subj, k.isReply ? 1 : 0, self, refs);
  q(
    `INSERT OR REPLACE INTO thread_msgs (mailbox_id, date, uid, subj, reply, msgid, refs)
     SELECT m.mailbox_id, coalesce(t.sent, m.internal_date), m.uid, t.subj, t.reply, t.msgid, t.refs
     FROM messages m JOIN thread_keys t ON t.blob_id = m.blob_id WHERE m.blob_id = ?`,
  ).run(blobId);
}

/**
 * Rebuilds the thread index rows of up to `max` messages of the mailbox that lack one (a store whose
 * index was lost; never the case for a store kept by this code), from their bodies' sort keys. Returns
 * how many messages were looked at past `afterUid`, and the last UID looked at.
 */
export function fillThreadRows(q: Prepare, mailboxId: number, afterUid: number, max: number): { seen: number; lastUid: number } {
  const uids = q('SELECT uid FROM messages WHERE mailbox_id = ? AND uid > ? ORDER BY uid LIMIT ?').pluck().all(mailboxId, afterUid, max) as number[];
  if (uids.length === 0) return { seen: 0, lastUid: afterUid };
  const lastUid = uids[uids.length - 1]!;
  const rows = q(
    `SELECT DISTINCT k.blob_id, k.subject, k.reply, k.sent, k.msgid, k.refs, k.irt FROM messages m JOIN sort_keys k ON k.blob_id = m.blob_id
     WHERE m.mailbox_id = ? AND m.uid > ? AND m.uid <= ? AND NOT EXISTS (SELECT 1 FROM thread_msgs t WHERE t.mailbox_id = m.mailbox_id AND t.uid = m.uid)`,
  ).raw().all(mailboxId, afterUid, lastUid) as [number, string, number, number | null, string | null, string, string | null][];
  for (const [id, subject, reply, sent, msgid, refs, irt] of rows) {
    storeThreadKeys(q, id, { subject, isReply: reply === 1, date: sent, messageId: msgid, references: refs, inReplyTo: irt });
  }
  return { seen: uids.length, lastUid };
}

/** Thread index rows read per statement on the search thread (one text of about 30 bytes a row). */
const THREAD_READ_PAGE = 20_000;

/**
 * A page of thread_msgs as one text (rows joined by ",", fields by " ": date, UID, subject id, reply,
 * Message-ID id, references as hex): one value per page instead of an array per row, which at 100k
 * rows costs ten times the read itself.
 */
const PAGE_SQL = `SELECT count(*), group_concat(r, ',') FROM (
  SELECT date || ' ' || uid || ' ' || subj || ' ' || reply || ' ' || coalesce(msgid, 0) || ' ' || hex(refs) AS r
  FROM thread_msgs WHERE mailbox_id = ? AND (date, uid) > (?, ?) ORDER BY date, uid LIMIT ?)`;

/** Growable columns of the rows read. */
class Columns {
  n = 0;
  date = new Float64Array(1024);
  uid = new Uint32Array(1024);
  subj = new Uint32Array(1024);
  reply = new Uint8Array(1024);
  self = new Uint32Array(1024);
  refStart = new Uint32Array(1025);
  refs = new Uint32Array(1024);
  nrefs = 0;
  row(): void {
    if (this.n + 1 < this.uid.length) return;
    const grow = <T extends Float64Array | Uint32Array | Uint8Array>(a: T, len: number): T => {
      const b = new (a.constructor as new (n: number) => T)(len);
      b.set(a);
      return b;
    };
    const len = this.uid.length * 2;
    this.date = grow(this.date, len);
    this.uid = grow(this.uid, len);
    this.subj = grow(this.subj, len);
    this.reply = grow(this.reply, len);
    this.self = grow(this.self, len);
    this.refStart = grow(this.refStart, len + 1);
  }
  ref(id: number): void {
    if (this.nrefs === this.refs.length) {
      const b = new Uint32Array(this.refs.length * 2);
      b.set(this.refs);
      this.refs = b;
    }
    this.refs[this.nrefs++] = id;
  }
}

/** Parses one page (PAGE_SQL) into `c`, character by character (no intermediate strings). */
function parsePage(text: string, c: Columns): void {
  const len = text.length;
  let i = 0;
  const num = (): number => {
    let neg = false;
    if (text.charCodeAt(i) === 45) {
      neg = true;
      i++;
    }
    let v = 0;
    for (; i < len; i++) {
      const d = text.charCodeAt(i) - 48;
      if (d < 0 || d > 9) break;
      v = v * 10 + d;
    }
    i++; // the separator
    return neg ? -v : v;
  };
  const hex = (ch: number) => (ch <= 57 ? ch - 48 : ch - 55);
  while (i < len) {
    c.row();
    const r = c.n;
    c.date[r] = num();
    c.uid[r] = num();
    c.subj[r] = num();
    c.reply[r] = num();
    c.self[r] = num();
    // References: 8 hex digits per id, little-endian bytes.
    while (i < len && text.charCodeAt(i) !== 44) {
      let v = 0;
      for (let k = 0; k < 4; k++) v += (hex(text.charCodeAt(i + 2 * k)) * 16 + hex(text.charCodeAt(i + 2 * k + 1))) * 2 ** (8 * k);
      c.ref(v);
      i += 8;
    }
    i++; // ","
    c.n++;
    c.refStart[c.n] = c.nrefs;
  }
}

/**
 * THREAD answers of whole mailboxes kept on the search thread (most recently used): a mailbox whose
 * messages are the same set answers again without reading or threading (a webmail redraws its thread
 * view far more often than mail arrives). At most this many, each 8 bytes per message.
 */
const THREAD_CACHE_ENTRIES = 8;
const cache = new Map<string, ThreadForest>();

/**
 * What identifies the set of messages a whole-mailbox THREAD sees: the mailbox (its UIDVALIDITY, as ids
 * may be reused after a DELETE), the next UID (any APPEND, COPY or MOVE into it raises it), the count
 * (any EXPUNGE lowers it, with no APPEND since, for that would raise the next UID) and the session's
 * highest UID when it has not seen the newest messages yet. Bodies and their keys never change.
 */
function cacheKey(statement: Prepare, req: ThreadQuery): string | null {
  if (req.uids) return null;
  const mb = statement('SELECT uid_validity, uid_next, msg_count FROM mailboxes WHERE id = ?').raw().get(req.mailboxId) as [number, number, number] | undefined;
  if (!mb) return null;
  const upTo = Math.min(req.maxUid, mb[1] - 1);
  return `${req.mailboxId}/${mb[0]}/${mb[1]}/${mb[2]}/${upTo === mb[1] - 1 ? '*' : upTo}/${req.alg}`;
}

/** The mailbox row's identity of its message set, when `req` asks for the whole mailbox (every UID up to UIDNEXT - 1). */
function wholeMailboxKey(statement: Prepare, req: ThreadQuery): ThreadKeepKey | null {
  if (req.uids) return null;
  const mb = statement('SELECT uid_validity, uid_next, msg_count FROM mailboxes WHERE id = ?').raw().get(req.mailboxId) as [number, number, number] | undefined;
  if (!mb || req.maxUid < mb[1] - 1) return null;
  return { mailboxId: req.mailboxId, alg: req.alg, uidValidity: mb[0], uidNext: mb[1], count: mb[2] };
}

/**
 * The answer kept on disk for exactly this message set (schema V_THREAD_ANSWERS), or null: a row of
 * another UIDVALIDITY, UIDNEXT or count, or a malformed one, is never used.
 */
function keptAnswer(statement: Prepare, k: ThreadKeepKey): ThreadForest | null {
  const row = statement('SELECT roots, nodes FROM thread_answers WHERE mailbox_id = ? AND alg = ? AND uid_validity = ? AND uid_next = ? AND msg_count = ?')
    .raw()
    .get(k.mailboxId, k.alg, k.uidValidity, k.uidNext, k.count) as [number, Buffer] | undefined;
  if (!row) return null;
  const [roots, blob] = row;
  if (blob.length % 4 !== 0 || blob.length > THREAD_KEEP_MAX_BYTES) return null;
  // Copied into a buffer of its own (aligned, and handed over to the serving thread whole).
  const nodes = new Uint32Array(blob.length / 4);
  new Uint8Array(nodes.buffer).set(blob);
  if (!validForest(roots, nodes, k.count, k.uidNext)) return null;
  return { roots, nodes };
}

/**
 * Whether `nodes` is a well-formed preorder forest of `roots` threads (src/store/threading.ts
 * ThreadForest) of exactly `count` messages, each UID once and below `uidNext` (checked in a bitmap:
 * a mailbox whose UIDNEXT is past BITMAP_MAX_UID is always computed): a damaged row is recomputed,
 * never sent.
 */
function validForest(roots: number, nodes: Uint32Array, count: number, uidNext: number): boolean {
  if (nodes.length % 2 !== 0 || uidNext - 1 > BITMAP_MAX_UID) return false;
  const seen = new Uint8Array(((uidNext - 1) >>> 3) + 1);
  let open = roots;
  let messages = 0;
  for (let p = 0; p < nodes.length; p += 2) {
    if (open === 0) return false;
    open += nodes[p + 1]! - 1;
    const uid = nodes[p]!;
    if (uid === 0) continue;
    if (uid >= uidNext || (seen[uid >>> 3]! & (1 << (uid & 7))) !== 0) return false;
    seen[uid >>> 3]! |= 1 << (uid & 7);
    messages++;
  }
  return open === 0 && messages === count;
}

/**
 * Whether a just-computed whole-mailbox answer is worth keeping on disk (THREAD_KEEP_MIN_MESSAGES,
 * THREAD_KEEP_MAX_BYTES).
 */
function keepable(k: ThreadKeepKey, f: ThreadForest): boolean {
  return k.count >= THREAD_KEEP_MIN_MESSAGES && f.nodes.byteLength <= THREAD_KEEP_MAX_BYTES;
}

/**
 * Stores a whole-mailbox answer the search thread computed (ThreadAnswer.keep), on the store's writer
 * connection, only if the mailbox still holds exactly that message set: a change committed since the
 * search thread's read makes the INSERT a no-op, and the triggers drop the row at any later change.
 * Replaces the mailbox's earlier answer for the algorithm. Returns whether a row was written.
 */
export function keepThreadAnswer(q: Prepare, k: ThreadKeepKey, f: ThreadForest): boolean {
  if (!keepable(k, f)) return false;
  const blob = Buffer.from(f.nodes.buffer, f.nodes.byteOffset, f.nodes.byteLength);
  const r = q(
    `INSERT OR REPLACE INTO thread_answers (mailbox_id, alg, uid_validity, uid_next, msg_count, roots, nodes)
     SELECT id, ?, uid_validity, uid_next, msg_count, ?, ? FROM mailboxes WHERE id = ? AND uid_validity = ? AND uid_next = ? AND msg_count = ?`,
  ).run(k.alg, f.roots, blob, k.mailboxId, k.uidValidity, k.uidNext, k.count);
  return r.changes > 0;
}

/**
 * The threads of a mailbox from its thread index (run on the search thread): kept in memory, kept on
 * disk (a whole mailbox after a restart), or read and threaded.
 */
export function threadFromIndex(statement: Prepare, req: ThreadQuery): ThreadAnswer {
  // One read transaction: the key, the kept row, the pages and the counts see the same commit.
  statement('BEGIN').run();
  let key: string | null;
  let whole: ThreadKeepKey | null = null;
  let answer: ThreadAnswer | null = null;
  let from: 'computed' | 'kept' = 'computed';
  try {
    key = cacheKey(statement, req);
    const hit = key ? cache.get(key) : undefined;
    if (key && hit) {
      cache.delete(key);
      cache.set(key, hit);
      // A copy: the answer's buffer is handed over to the serving thread.
      return { forest: { roots: hit.roots, nodes: hit.nodes.slice() }, from: 'memory' };
    }
    whole = key ? wholeMailboxKey(statement, req) : null;
    const kept = whole && whole.count >= THREAD_KEEP_MIN_MESSAGES ? keptAnswer(statement, whole) : null;
    if (kept) {
      answer = { forest: kept };
      from = 'kept';
    } else answer = threadUncached(statement, req);
  } finally {
    statement('COMMIT').run();
  }
  if (key && 'forest' in answer) {
    cache.set(key, { roots: answer.forest.roots, nodes: answer.forest.nodes.slice() });
    if (cache.size > THREAD_CACHE_ENTRIES) cache.delete(cache.keys().next().value as string);
    if (from === 'computed' && whole && keepable(whole, answer.forest)) return { forest: answer.forest, keep: whole, from };
    return { forest: answer.forest, from };
  }
  return answer;
}

/** Reads the mailbox's thread index in sent-date order and threads it (inside the caller's read transaction). */
function threadUncached(statement: Prepare, req: ThreadQuery): ThreadAnswer {
  const c = new Columns();
  let stored: number;
  let bySubject: number[] = [];
  {
    // In sent-date order (RFC 5256 §2.2: date, then sequence number): the table's own order, a page at a time.
    const page = statement(PAGE_SQL).raw();
    for (let after: [number, number] = [-Number.MAX_VALUE, 0]; ;) {
      const [count, text] = page.get(req.mailboxId, after[0], after[1], THREAD_READ_PAGE) as [number, string | null];
      if (count === 0 || text === null) break;
      parsePage(text, c);
      after = [c.date[c.n - 1]!, c.uid[c.n - 1]!];
      if (count < THREAD_READ_PAGE) break;
    }
    // The mailbox's count (the rows above maxUid are skipped below, and counted here alike).
    const mb = statement('SELECT msg_count, sort_indexed FROM mailboxes WHERE id = ?').raw().get(req.mailboxId) as [number, number] | undefined;
    stored = mb?.[0] ?? 0;
    // ORDEREDSUBJECT: (base subject, sent date, sequence) as SORT (SUBJECT DATE) orders them (sorting.ts).
    if (req.alg === 'ORDEREDSUBJECT') {
      // Along the subject index when the mailbox's rows are all in it (schema V_SORT_LARGE); a smaller mailbox's rows are sorted.
      const indexed = mb?.[1] === 2;
      bySubject = statement(`SELECT uid FROM messages WHERE mailbox_id = ?${indexed ? ' AND sort_ix = 1' : ''} AND +uid <= ? ORDER BY sort_subject, sort_date, uid`)
        .pluck()
        .all(req.mailboxId, req.maxUid) as number[];
    }
  }
  // Every message has its row, or nothing is threaded (the caller rebuilds them first).
  if (stored !== c.n) return { missing: Math.abs(stored - c.n) };
  return { forest: threadColumns(c, req, bySubject) };
}

/** Threads the rows read (in (date, UID) order) that `req` keeps. */
function threadColumns(c: Columns, req: ThreadQuery, bySubject: readonly number[]): ThreadForest {
  for (let r = 1; r < c.n; r++) {
    // The pages came in (date, UID) order; a violation would be a broken index.
    if (c.date[r - 1]! > c.date[r]! || (c.date[r - 1] === c.date[r] && c.uid[r - 1]! >= c.uid[r]!)) throw new Error('thread index out of order');
  }
  const only = req.uids ? uidMembership(req.uids) : null;
  const keep = (r: number) => c.uid[r]! <= req.maxUid && (!only || only(c.uid[r]!));
  let n = 0;
  let refCount = 0;
  for (let r = 0; r < c.n; r++) {
    if (!keep(r)) continue;
    n++;
    refCount += c.refStart[r + 1]! - c.refStart[r]!;
  }
  const input: ThreadInput = {
    count: n,
    uid: new Uint32Array(n),
    self: new Uint32Array(n),
    refStart: new Uint32Array(n + 1),
    refIds: new Uint32Array(refCount),
    subject: new Uint32Array(n),
    reply: new Uint8Array(n),
  };
  let i = 0;
  let w = 0;
  for (let r = 0; r < c.n; r++) {
    if (!keep(r)) continue;
    input.uid[i] = c.uid[r]!;
    input.self[i] = c.self[r]!;
    for (let k = c.refStart[r]!; k < c.refStart[r + 1]!; k++) input.refIds[w++] = c.refs[k]!;
    input.refStart[i + 1] = w;
    input.subject[i] = c.subj[r]!;
    input.reply[i] = c.reply[r]!;
    i++;
  }
  let subjectOrder: Uint32Array | undefined;
  if (req.alg === 'ORDEREDSUBJECT') {
    const posOf = new Map<number, number>();
    for (let p = 0; p < n; p++) posOf.set(input.uid[p]!, p);
    subjectOrder = new Uint32Array(n);
    let k = 0;
    for (const u of bySubject) {
      const p = posOf.get(u);
      if (p !== undefined) subjectOrder[k++] = p;
    }
  }
  return threadIndex(req.alg, input, subjectOrder);
}

/** Highest UID for which a restriction is looked up in a bitmap (2 MiB) rather than a Set. */
const BITMAP_MAX_UID = 16_000_000;

/** Membership in a restriction: a bitmap when its UIDs are small enough (a Set lookup per row cost more than the threading of it). */
function uidMembership(uids: Uint32Array): (uid: number) => boolean {
  let max = 0;
  for (const u of uids) if (u > max) max = u;
  if (max > BITMAP_MAX_UID) {
    const set = new Set(uids);
    return (u) => set.has(u);
  }
  const bits = new Uint8Array((max >>> 3) + 1);
  for (const u of uids) bits[u >>> 3]! |= 1 << (u & 7);
  return (u) => u <= max && (bits[u >>> 3]! & (1 << (u & 7))) !== 0;
}

/** Rows of the warm-up mailbox (warmUp): conversations of a few messages, some replies, some subjects shared. */
const WARM_ROWS = 2_000;

/**
 * Runs the reading and threading code on a made-up mailbox, so that the first THREAD a client asks for
 * runs compiled code: cold, V8's first pass over 10k messages was several times a warm one (a cold 10k
 * THREAD REFERENCES took 1.7 s on a loaded machine where Dovecot took 0.4 s). Called once as the search
 * thread starts, off the serving thread; tens of milliseconds. The made-up mailbox takes every branch a
 * real one does (a profile of the first real THREAD after the warm-up showed RFC 5256 §4 step 5's
 * subject merge as its largest cost when the warm-up had no dummy threads: code compiled for other
 * branches, thrown away at the first dummy): conversations whose first message is missing (a dummy
 * root of two or more), whose first message's subject is a reply, and messages without a Message-ID.
 */
export function warmUp(rounds = 2, size = WARM_ROWS): void {
  const rows: string[] = [];
  const hex = (id: number) => Buffer.from(Uint32Array.of(id).buffer).toString('hex').toUpperCase();
  for (let i = 0; i < size; i++) {
    const conv = Math.floor(i / 4);
    const at = i % 4;
    // A conversation's first message has Message-ID 4*conv+1; each later one cites it and its predecessor.
    let refs = at === 0 ? '' : `${hex(4 * conv + 1)}${hex(4 * conv + at)}`;
    let self = 4 * conv + at + 1;
    // Every third conversation lacks its first message (another id), and its third cites only the missing
    // first: a dummy root with two children (§4 steps 1-3), merged by subject with other threads (step 5).
    if (conv % 3 === 1 && at === 0) self = 4 * size + conv + 1;
    if (conv % 3 === 1 && at === 2) refs = hex(4 * conv + 1);
    // Some messages without a Message-ID (0).
    if (conv % 7 === 3 && at === 3) self = 0;
    // Some conversations start with a reply subject ("Re: ..."), so a non-reply merges above them (step 5.C).
    const reply = at === 0 ? (conv % 5 === 2 ? 1 : 0) : 1;
    rows.push(`${1_700_000_000 + i * 60} ${i + 1} ${1 + (conv % 500)} ${reply} ${self} ${refs}`);
  }
  const text = rows.join(',');
  const order = Array.from({ length: size }, (_, i) => i + 1);
  for (let k = 0; k < rounds; k++) {
    for (const alg of ['REFERENCES', 'REFS', 'ORDEREDSUBJECT'] as const) {
      const c = new Columns();
      parsePage(text, c);
      const f = threadColumns(c, { mailboxId: 0, maxUid: 0xffffffff, alg, uids: k % 2 ? Uint32Array.from(order.filter((u) => u % 3 !== 0)) : null }, order);
      // What a kept answer's read runs (keptAnswer): its check, on this answer.
      if (k % 2 === 0 && !validForest(f.roots, f.nodes, size, size + 1)) throw new Error('thread warm-up: an invalid forest');
    }
  }
}
