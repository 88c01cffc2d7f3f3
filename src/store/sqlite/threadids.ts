// RFC 8474 §5.2 THREADID in the SQLite store (schema V_THREAD_IDS). A body's
// thread is fixed when it is delivered, from the thread index row its sort
// keys gave it (threading.ts: its own Message-ID and its reference list as
// interned ids): the thread of its nearest reference that one of the user's
// bodies already named, else the thread of a body that named this one's
// Message-ID (a reply that came first), else a new thread numbered by this
// body's blob id (blob ids are never reused, so neither are thread ids).
// Every id it names is then linked to that thread, unless already linked:
// a link, like a thread id, never changes (§5.2 "MUST NOT change the
// THREADID of a message once reported"), so when a message joins two
// threads they stay two. Copies share the body, hence the THREADID (§5.2:
// same EMAILID, same THREADID); the links are per user, so messages of one
// conversation in different mailboxes share it too (§5.2 SHOULD).
import type Database from 'better-sqlite3';

type Prepare = (sql: string) => Database.Statement;

/** Bodies given a thread id per background batch (each a few indexed lookups). */
export const THREAD_ID_BACKFILL_BATCH = 100;


/**
 * Gives body `blobId` of user `userId` its thread (inside the caller's write transaction), unless it has
 * one; returns it, or null when the body has no thread index row yet (stored before the sort keys and not
 * backfilled: it is given one when they are).
 */
export function assignThreadId(q: Prepare, userId: number, blobId: number): number | null {
  const row = q('SELECT msgid, refs, thread_id FROM thread_keys WHERE blob_id = ?').raw().get(blobId) as [number | null, Buffer, number | null] | undefined;
  if (!row) return null;
  const [self, refs, have] = row;
  if (have !== null) return have;
  const named: number[] = [];
  for (let off = 0; off + 4 <= refs.length; off += 4) named.push(refs.readUInt32LE(off));
  // Nearest reference first (the last of References, RFC 5256 §4 step 1.A order), then this body's own id.
  const order = [...named].reverse();
  if (self !== null) order.push(self);
  const find = q('SELECT thread_id FROM thread_links WHERE user_id = ? AND msgid = ?').pluck();
  let thread: number | null = null;
  for (const id of order) {
    thread = (find.get(userId, id) as number | undefined) ?? null;
    if (thread !== null) break;
  }
  thread ??= blobId;
  const link = q('INSERT OR IGNORE INTO thread_links (user_id, msgid, thread_id) VALUES (?, ?, ?)');
  if (self !== null) link.run(userId, self, thread);
  for (const id of named) link.run(userId, id, thread);
  q('UPDATE thread_keys SET thread_id = ? WHERE blob_id = ?').run(thread, blobId);
  return thread;
}

