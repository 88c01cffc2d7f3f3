// The SQLite store's thread index (schema V_THREAD_INDEX): every Message-ID
// a body names (its own, its References, or its In-Reply-To without them:
// RFC 5256 §4 step 1.A) is interned once, at APPEND, into thread_msgids, and
// the body's row in thread_keys holds its own id and its reference list as
// numbers. A body is shared by its copies (COPY, MOVE), and its row goes
// with it (the blobs trigger), so COPY and EXPUNGE keep the index without
// work of their own. THREAD reads the index on the search thread and threads
// there (src/store/threading.ts), so a 100k-message THREAD costs the serving
// thread only the formatting of the answer.
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

/** The search thread's answer: the threads, or how many messages lack a thread index row (then nothing was threaded). */
export type ThreadAnswer = { forest: ThreadForest } | { missing: number };

type Prepare = (sql: string) => Database.Statement;

/** The interned number of a Message-ID (inside the caller's transaction). */
function intern(q: Prepare, msgid: string): number {
  const had = q('SELECT id FROM thread_msgids WHERE msgid = ?').pluck().get(msgid) as number | undefined;
  if (had !== undefined) return had;
  return Number(q('INSERT INTO thread_msgids (msgid) VALUES (?)').run(msgid).lastInsertRowid);
}

/** Keeps a body's thread index row, from the keys sortKeysOf computed (inside the caller's transaction). */
export function storeThreadKeys(q: Prepare, blobId: number, k: Pick<SortKeys, 'isReply' | 'messageId' | 'references' | 'inReplyTo'>): void {
  const self = k.messageId ? intern(q, k.messageId) : null;
  // RFC 5256 §4 step 1.A: the References ids, or the In-Reply-To id without any.
  const list = k.references ? k.references.split(' ') : k.inReplyTo ? [k.inReplyTo] : [];
  const refs = Buffer.alloc(4 * list.length);
  list.forEach((id, i) => refs.writeUInt32LE(intern(q, id), 4 * i));
  q('INSERT OR REPLACE INTO thread_keys (blob_id, reply, msgid, refs) VALUES (?, ?, ?, ?)').run(blobId, k.isReply ? 1 : 0, self, refs);
}

/** Gives the bodies of the mailbox that have sort keys but no thread index row one (a store whose index was lost). */
export function fillThreadKeys(q: Prepare, mailboxId: number, max: number): number {
  const rows = q(
    `SELECT k.blob_id, k.reply, k.msgid, k.refs, k.irt FROM messages m JOIN sort_keys k ON k.blob_id = m.blob_id
     WHERE m.mailbox_id = ? AND NOT EXISTS (SELECT 1 FROM thread_keys t WHERE t.blob_id = m.blob_id) LIMIT ?`,
  ).raw().all(mailboxId, max) as [number, number, string | null, string, string | null][];
  for (const [id, reply, msgid, refs, irt] of rows) storeThreadKeys(q, id, { isReply: reply === 1, messageId: msgid, references: refs, inReplyTo: irt });
  return rows.length;
}

type Row = [number, number | null, number | null, number | null, Buffer | null, string | null, number];

/** Reads the mailbox's thread index in sent-date order and threads it (run on the search thread). */
export function threadFromIndex(statement: Prepare, req: ThreadQuery): ThreadAnswer {
  // In sent-date order (RFC 5256 §2.2: date, then sequence number) along the date index.
  const rows = statement(
    `SELECT m.uid, m.sort_date, t.reply, t.msgid, t.refs, m.sort_subject, t.blob_id IS NULL
     FROM messages m INDEXED BY messages_sort_date LEFT JOIN thread_keys t ON t.blob_id = m.blob_id
     WHERE m.mailbox_id = ? AND +m.uid <= ? ORDER BY m.sort_date, m.uid`,
  ).raw().all(req.mailboxId, req.maxUid) as Row[];
  const only = req.uids ? new Set(req.uids) : null;
  let n = 0;
  let refCount = 0;
  let missing = 0;
  for (const r of rows) {
    if (only && !only.has(r[0])) continue;
    if (r[6]) missing++;
    n++;
    refCount += (r[4]?.length ?? 0) >> 2;
  }
  if (missing > 0) return { missing };
  const input: ThreadInput = {
    count: n,
    uid: new Uint32Array(n),
    self: new Uint32Array(n),
    refStart: new Uint32Array(n + 1),
    refIds: new Uint32Array(refCount),
    subject: new Uint32Array(n),
    reply: new Uint8Array(n),
  };
  const subjects = new Map<string, number>([['', 0]]);
  let i = 0;
  let w = 0;
  for (const [uid, , reply, msgid, refs, subject] of rows) {
    if (only && !only.has(uid)) continue;
    input.uid[i] = uid;
    input.self[i] = msgid ?? 0;
    if (refs) for (let k = 0; k + 4 <= refs.length; k += 4) input.refIds[w++] = refs.readUInt32LE(k);
    input.refStart[i + 1] = w;
    const s = subject ?? '';
    let sid = subjects.get(s);
    if (sid === undefined) subjects.set(s, (sid = subjects.size));
    input.subject[i] = sid;
    input.reply[i] = reply === 1 ? 1 : 0;
    i++;
  }
  let subjectOrder: Uint32Array | undefined;
  if (req.alg === 'ORDEREDSUBJECT') {
    // (base subject, sent date, sequence) as SORT (SUBJECT DATE) orders them (sorting.ts).
    const posOf = new Map<number, number>();
    for (let p = 0; p < n; p++) posOf.set(input.uid[p]!, p);
    const uids = statement('SELECT uid FROM messages WHERE mailbox_id = ? AND +uid <= ? ORDER BY sort_subject, sort_date, uid').pluck().all(req.mailboxId, req.maxUid) as number[];
    subjectOrder = new Uint32Array(n);
    let k = 0;
    for (const u of uids) {
      const p = posOf.get(u);
      if (p !== undefined) subjectOrder[k++] = p;
    }
  }
  return { forest: threadIndex(req.alg, input, subjectOrder) };
}
