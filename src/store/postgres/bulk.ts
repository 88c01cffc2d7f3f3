// Store-to-store copy for `quire migrate` (issue 13 item 6) in the
// PostgreSQL store, with the SQLite store's semantics (src/store/sqlite/bulk.ts):
// exportMailbox / exportCredentials read a mailbox's whole state and a
// user's credentials; bulkImport writes a batch back with UIDs, MODSEQs,
// tombstones, EMAILIDs and MAILBOXID as they were, so that a
// CONDSTORE/QRESYNC client (RFC 7162 §3.2.5.2, §3.2.10) re-selecting with
// its cached UIDVALIDITY and HIGHESTMODSEQ sees nothing to resync. One batch
// is one write transaction of the mailbox's user (base.ts: user row, then
// mailbox row locked; retried on serialization failures; durable at COMMIT).
//
// EMAILID (RFC 8474 §5.1) is "M<blob id>" here too. An EMAILID of that form
// is kept by storing the body under that blob id when the id was never
// handed out by the blobs id sequence (claimBlobIds moves the sequence past
// it; an id handed out before, even one whose body is gone, is never given
// to other bytes: every node caches a body's part tree by its id). A body
// already stored under it with the same bytes (a copy of the message in
// another mailbox, copied earlier) is shared, as the source shared it.
// Otherwise the body gets a fresh id: one per source EMAILID within a batch,
// so copies keep sharing.
import { assignThreadIds } from './threadids.js';
import { StoreError, type BulkImportBatch, type BulkMessage, type CredentialInfo, type MailboxState, type MessageMeta } from '../types.js';
import { PgThreadIdOps } from './threadid-ops.js';
import { KeywordTable, MAX_UID } from './messages.js';
import { decodeFlags, encodeKeywords, parseFlags } from './flags.js';
import { blobIdOfEmailId, emailIdOf } from '../objectid.js';

interface BodyPlan {
  /** The blob the message references: a kept id, a shared one, or null (a fresh one from the sequence). */
  id: number | null;
  /** True when this batch writes the body (else it is already stored under `id`). */
  fresh: boolean;
  data: Buffer;
}


export abstract class PgBulkOps extends PgThreadIdOps {
  exportMailbox(mailboxId: number): Promise<MailboxState> {
    return this.run(async () => {
      if (!Number.isSafeInteger(mailboxId)) throw new StoreError('NONEXISTENT', 'no such mailbox');
      const mb = await this.existing(this.db, mailboxId);
      const t = await this.db.query<{ uid: number; modseq: number }>('SELECT uid, modseq FROM expunged WHERE mailbox_id = $1 ORDER BY uid', [mailboxId]);
      return {
        uidValidity: mb.uid_validity,
        uidNext: mb.uid_next,
        highestModseq: mb.highest_modseq,
        objectId: mb.object_id,
        expunged: t.rows.map((r) => ({ uid: r.uid, modseq: r.modseq })),
        tombstoneFloor: mb.tombstone_floor,
      };
    });
  }

  exportCredentials(userId: number): Promise<CredentialInfo[]> {
    return this.run(async () => {
      const r = await this.db.query<{ user_id: number; kind: string; name: string; secret: string; created_at: number; last_used: number | null }>(
        'SELECT user_id, kind, name, secret, created_at, last_used FROM credentials WHERE user_id = $1 ORDER BY kind COLLATE "C", name COLLATE "C"',
        [userId],
      );
      return r.rows.map((x) => ({ userId: x.user_id, kind: x.kind, name: x.name, secret: x.secret, createdAt: new Date(x.created_at), lastUsed: x.last_used === null ? null : new Date(x.last_used) }));
    });
  }

  bulkImport(mailboxId: number, batch: BulkImportBatch): Promise<void> {
    return this.run(async () => {
      const msgs = batch.messages;
      let prev = 0;
      for (const m of msgs) {
        if (!Number.isInteger(m.uid) || m.uid <= prev || m.uid > MAX_UID) throw new StoreError('CANNOT', 'imported UIDs must be strictly ascending 32-bit numbers');
        if (!Number.isSafeInteger(m.modseq) || m.modseq < 1) throw new StoreError('CANNOT', `UID ${m.uid}: MODSEQ out of range`);
        prev = m.uid;
      }
      const st = batch.state ?? {};
      for (const v of [st.uidValidity, st.uidNext]) if (v !== undefined && (!Number.isInteger(v) || v < 1 || v > MAX_UID)) throw new StoreError('CANNOT', 'UIDVALIDITY/UIDNEXT out of range');
      for (const v of [st.highestModseq, st.tombstoneFloor]) if (v !== undefined && (!Number.isSafeInteger(v) || v < 0)) throw new StoreError('CANNOT', 'MODSEQ out of range');
      for (const t of st.expunged ?? []) {
        if (!Number.isInteger(t.uid) || t.uid < 1 || t.uid > MAX_UID || !Number.isSafeInteger(t.modseq) || t.modseq < 1) throw new StoreError('CANNOT', 'tombstone out of range');
      }
      if (!Number.isSafeInteger(mailboxId)) throw new StoreError('TRYCREATE', 'no such mailbox');
      const userId = await this.ownerOf(mailboxId, 'TRYCREATE');
      const parsed = msgs.map((m) => parseFlags(m.flags));
      const plans = await this.planBodies(msgs);
      // One body row per distinct plan (copies within the batch share it).
      const fresh = [...new Set(plans.filter((p) => p.fresh))];
      const described = this.describe(fresh.map((p) => ({ data: p.data })));
      const shared = [...new Set(plans.filter((p) => !p.fresh).map((p) => p.id!))];
      const blobOf = new Map<BodyPlan, number>();
      await this.write(
        userId,
        async (tx, emit) => {
          const mb = await this.existing(tx, mailboxId, 'TRYCREATE', true);
          const tombs = (await tx.query<{ n: number; top: number | null }>('SELECT count(*) AS n, max(uid) AS top FROM expunged WHERE mailbox_id = $1', [mailboxId])).rows[0]!;
          const empty = mb.msg_count === 0 && mb.uid_next === 1 && tombs.n === 0;
          if (st.uidValidity !== undefined && st.uidValidity !== mb.uid_validity) {
            if (!empty) throw new StoreError('CANNOT', `mailbox ${mb.name} already has messages; its UIDVALIDITY cannot change`);
            await tx.query('UPDATE mailboxes SET uid_validity = $2 WHERE id = $1', [mailboxId, st.uidValidity]);
            // Mailboxes created later must still get greater values (RFC 9051 §2.3.1.1).
            await tx.query(`UPDATE meta SET value = GREATEST(value, $1) WHERE key = 'uidvalidity_last'`, [st.uidValidity]);
          }
          if (st.objectId !== undefined && st.objectId !== mb.object_id) {
            if (!empty) throw new StoreError('CANNOT', `mailbox ${mb.name} already has messages; its MAILBOXID cannot change`);
            if ((await tx.query('SELECT 1 FROM mailboxes WHERE object_id = $1', [st.objectId])).rowCount) throw new StoreError('ALREADYEXISTS', `MAILBOXID ${st.objectId} belongs to another mailbox`);
            await tx.query('UPDATE mailboxes SET object_id = $2 WHERE id = $1', [mailboxId, st.objectId]);
          }
          const top = Math.max(mb.uid_next - 1, tombs.top ?? 0);
          if (msgs.length > 0 && msgs[0]!.uid <= top) throw new StoreError('CANNOT', `UID ${msgs[0]!.uid} is not above the mailbox's UIDs (${top})`);
          // Shared bodies must still be there (an expunge elsewhere may have dropped one since the plan): hold them.
          if (shared.length > 0) {
            const held = await tx.query('SELECT id FROM blobs WHERE id = ANY($1::bigint[]) FOR KEY SHARE', [shared]);
            if (held.rowCount !== shared.length) throw new StoreError('UNAVAILABLE', 'a body being shared was removed meanwhile; run the copy again');
          }
          const ids = await this.insertBodies(tx, fresh, described, fresh.map((p) => p.id));
          fresh.forEach((p, i) => blobOf.set(p, ids[i]!));
          const kw = new KeywordTable(tx, mailboxId);
          const cols: unknown[][] = [[], [], [], [], [], [], [], [], []];
          const metas: MessageMeta[] = [];
          let highest = mb.highest_modseq;
          for (let i = 0; i < msgs.length; i++) {
            const m = msgs[i]!;
            const plan = plans[i]!;
            const blobId = plan.fresh ? blobOf.get(plan)! : plan.id!;
            const { sys, keywords } = parsed[i]!;
            const kwCol = encodeKeywords(await kw.resolve(keywords));
            [m.uid, blobId, sys, kwCol, m.internalDate, m.internalTz, m.saveDate, m.data.length, m.modseq].forEach((v, c) => cols[c]!.push(v));
            metas.push({ uid: m.uid, flags: decodeFlags(sys, kwCol), internalDate: m.internalDate, internalTz: m.internalTz, saveDate: m.saveDate, emailId: emailIdOf(blobId), size: m.data.length, modseq: m.modseq });
            highest = Math.max(highest, m.modseq);
          }
          // Quota is not checked: the source already held the mail (the triggers still count the usage).
          await this.insertMessages(tx, mailboxId, cols);
          await assignThreadIds(tx, mb.user_id, ids); // RFC 8474 §5.2 (threadids.ts)
          const tomb = st.expunged ?? [];
          if (tomb.length > 0) {
            const clash = await tx.query<{ uid: number }>('SELECT uid FROM messages WHERE mailbox_id = $1 AND uid = ANY($2::bigint[]) ORDER BY uid LIMIT 1', [mailboxId, tomb.map((t) => t.uid)]);
            if (clash.rows[0]) throw new StoreError('CANNOT', `UID ${clash.rows[0].uid} is in the mailbox; it cannot be a tombstone`);
            await tx.query(
              `INSERT INTO expunged (mailbox_id, uid, modseq) SELECT $1, u, s FROM unnest($2::bigint[], $3::bigint[]) AS t(u, s) ON CONFLICT (mailbox_id, uid) DO NOTHING`,
              [mailboxId, tomb.map((t) => t.uid), tomb.map((t) => t.modseq)],
            );
            for (const t of tomb) highest = Math.max(highest, t.modseq);
          }
          const lastTomb = (await tx.query<{ top: number | null }>('SELECT max(uid) AS top FROM expunged WHERE mailbox_id = $1', [mailboxId])).rows[0]!.top ?? 0;
          const uidNext = Math.max(mb.uid_next, prev + 1, lastTomb + 1, st.uidNext ?? 0);
          highest = Math.max(highest, st.highestModseq ?? 0, st.tombstoneFloor ?? 0);
          await tx.query('UPDATE mailboxes SET uid_next = $2, highest_modseq = $3, tombstone_floor = GREATEST(tombstone_floor, $4) WHERE id = $1', [mailboxId, uidNext, highest, st.tombstoneFloor ?? 0]);
          if (metas.length > 0) emit({ kind: 'append', userId: mb.user_id, mailboxId, modseq: highest, messages: metas });
        },
      );
    });
  }

  /** Which blob each message references: its EMAILID's when never handed out or holding the same bytes, else a fresh one; one per EMAILID. */
  private async planBodies(msgs: readonly BulkMessage[]): Promise<BodyPlan[]> {
    // Per wanted blob id: 'same' (it holds this very body: share it), 'taken' (another body), 'candidate' (free here?).
    const state = new Map<number, 'same' | 'taken' | 'candidate'>();
    for (const m of msgs) {
      const n = m.emailId ? blobIdOfEmailId(m.emailId) : null;
      if (n === null || state.has(n)) continue;
      const r = await this.db.query<{ size: number }>('SELECT size FROM blobs WHERE id = $1', [n]);
      const size = r.rows[0]?.size;
      if (size === undefined) state.set(n, 'candidate');
      else {
        const same = size === m.data.length && (await this.blobs.read(n, 0, size).then((b) => b.equals(m.data), () => false));
        state.set(n, same ? 'same' : 'taken');
      }
    }
    const claimed = await this.claimBlobIds([...state].filter(([, v]) => v === 'candidate').map(([n]) => n));
    const byEmail = new Map<string, BodyPlan>();
    return msgs.map((m) => {
      const known = m.emailId ? byEmail.get(m.emailId) : undefined;
      if (known) return known;
      const n = m.emailId ? blobIdOfEmailId(m.emailId) : null;
      let p: BodyPlan;
      if (n !== null && state.get(n) === 'same') p = { id: n, fresh: false, data: m.data };
      else if (n !== null && claimed.has(n)) p = { id: n, fresh: true, data: m.data };
      else p = { id: null, fresh: true, data: m.data };
      if (m.emailId) byEmail.set(m.emailId, p);
      return p;
    });
  }

  /**
   * Takes those of `ids` that the blobs id sequence never handed out (above its last value) and moves the
   * sequence past them, so no APPEND on any node gets them; returns the ones taken. In a short transaction of
   * its own holding the blobs table against inserts (SHARE ROW EXCLUSIVE: every insert in flight finishes
   * first, none starts), so no nextval() runs between the look and the move. An id taken by a copy that then
   * fails is simply never used.
   */
  private async claimBlobIds(ids: number[]): Promise<Set<number>> {
    if (ids.length === 0) return new Set();
    const sorted = [...new Set(ids)].sort((a, b) => a - b);
    return this.write(null, async (tx) => {
      await tx.query('LOCK TABLE blobs IN SHARE ROW EXCLUSIVE MODE');
      const seq = (await tx.query<{ s: string }>(`SELECT pg_get_serial_sequence('blobs', 'id') AS s`)).rows[0]!.s;
      const cur = (await tx.query<{ last_value: number; is_called: boolean }>(`SELECT last_value, is_called FROM ${seq}`)).rows[0]!;
      const handedOut = cur.is_called ? cur.last_value : cur.last_value - 1;
      const got = sorted.filter((n) => n > handedOut);
      if (got.length > 0) await tx.query('SELECT setval($1::regclass, $2)', [seq, got[got.length - 1]!]);
      return new Set(got);
    });
  }
}
