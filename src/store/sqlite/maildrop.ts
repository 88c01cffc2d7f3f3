// MailStore.openMaildrop for the SQLite store: POP3's snapshot at login
// (RFC 1939 §4) in one pass over the mailbox's rows joined with their bodies'
// bare-LF counts (schema V_POP3_SIZE), read in UID ranges with a turn for the
// event loop between them (STYLE.md habit 14: 100k messages must not stall
// it). Bodies stored before V_POP3_SIZE are counted from their files once
// (a few at a time) and the counts kept, so the next login reads none.
import type Database from 'better-sqlite3';
import type { BlobFiles } from './blobs.js';
import { FLAG_SEEN } from './schema.js';
import { countBareLf } from '../structure.js';
import type { MaildropSnapshot } from '../types.js';

/** Rows per query: ~2 ms of work each, then the event loop gets a turn. */
export const MAILDROP_CHUNK = 5000;
/** Legacy bodies counted at once (file reads in flight). */
const COUNT_CONCURRENCY = 8;

type Row = [uid: number, blobId: number, size: number, sysflags: number, bareLf: number | null];

export async function openMaildrop(
  q: (sql: string) => Database.Statement,
  blobs: BlobFiles,
  relaxed: (fn: () => void) => Promise<void>,
  mailboxId: number,
): Promise<MaildropSnapshot> {
  const uids: number[] = [];
  const blobIds: number[] = [];
  const stored: number[] = [];
  const sizes: number[] = [];
  const seen: boolean[] = [];
  const unknown: number[] = [];
  const stmt = q(
    `SELECT m.uid, m.blob_id, m.size, m.sysflags, b.bare_lf FROM messages m JOIN blobs b ON b.id = m.blob_id
     WHERE m.mailbox_id = ? AND m.uid > ? ORDER BY m.uid LIMIT ${MAILDROP_CHUNK}`,
  ).raw();
  for (let after = 0; ; ) {
    const rows = stmt.all(mailboxId, after) as Row[];
    for (const [uid, blobId, size, sysflags, bareLf] of rows) {
      if (bareLf === null) unknown.push(uids.length);
      uids.push(uid);
      blobIds.push(blobId);
      stored.push(size);
      sizes.push(size + (bareLf ?? 0));
      seen.push((sysflags & FLAG_SEEN) !== 0);
    }
    if (rows.length < MAILDROP_CHUNK) break;
    after = rows[rows.length - 1]![0];
    await new Promise((r) => setImmediate(r));
  }
  const body = (i: number) => blobs.body(blobIds[i]!, stored[i]!);
  if (unknown.length > 0) {
    const counted: [number, number][] = [];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < unknown.length) {
        const i = unknown[next++]!;
        // A body expunged meanwhile stays uncounted: RETR answers -ERR for it anyway.
        const bytes = await blobs.readWhole(blobIds[i]!, stored[i]!).catch(() => null);
        if (!bytes) continue;
        const n = countBareLf(bytes);
        sizes[i] = stored[i]! + n;
        counted.push([blobIds[i]!, n]);
      }
    };
    await Promise.all(Array.from({ length: Math.min(COUNT_CONCURRENCY, unknown.length) }, worker));
    // Kept for the next login; losing this on power failure only means counting again.
    if (counted.length > 0) {
      await relaxed(() => {
        const up = q('UPDATE blobs SET bare_lf = ? WHERE id = ? AND bare_lf IS NULL');
        for (const [id, n] of counted) up.run(n, id);
      }).catch(() => undefined);
    }
  }
  return {
    uids,
    sizes,
    seen,
    body,
    readWhole: (i) => blobs.readWhole(blobIds[i]!, stored[i]!),
    readLeased: (i, start, end) => blobs.lend(blobIds[i]!, Math.max(0, start), Math.min(end, stored[i]!)),
  };
}
