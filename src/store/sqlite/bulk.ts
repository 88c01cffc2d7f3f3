// Store-to-store copy for `quire migrate` (issue 13 item 6): reading a
// mailbox's whole state (exportMailbox, exportCredentials) and writing it
// back with UIDs, MODSEQs, tombstones, EMAILIDs and MAILBOXID as they were
// (bulkImport), so that a CONDSTORE/QRESYNC client (RFC 7162 §3.2.5.2, §3.2.10)
// re-selecting with its cached UIDVALIDITY and HIGHESTMODSEQ sees nothing to
// resync. A layer of the SQLite store between accounts.ts and store.ts.
//
// EMAILID (RFC 8474 §5.1) is "M<blob id>" here, so an EMAILID of that form
// is kept by storing the body under that blob id when the id is free in this
// store (never handed out, or handed out in a block whose owner is gone
// without using it); a body already stored under it with the same bytes (a
// copy of the message in another mailbox, copied earlier) is shared, as the
// source shared it. Otherwise the body gets a fresh id: still one per
// source EMAILID within a batch, so copies keep sharing.
import { promises as fs } from 'node:fs';
import { describeMessage } from '../structure.js';
import { StoreError, type BulkImportBatch, type BulkMessage, type Change, type CredentialInfo, type MailboxState, type MessageMeta } from '../types.js';
import { decodeFlags, encodeKeywords, parseFlags } from './flags.js';
import { blobIdOfEmailId, emailIdOf } from '../objectid.js';
import { assignThreadId } from './threadids.js';
import { ThreadIdOps } from './threadid-ops.js';

const MAX_U32 = 0xffffffff;

interface BodyPlan {
  /** The blob the message will reference. */
  id: number;
  /** True when this batch writes the body (else it is already stored). */
  fresh: boolean;
  data: Buffer;
}

export abstract class BulkOps extends ThreadIdOps {
  exportMailbox(mailboxId: number): Promise<MailboxState> {
    return this.run(() => {
      const mb = this.mailboxById(mailboxId);
      if (!mb) throw new StoreError('NONEXISTENT', 'no such mailbox');
      const objectId = this.q('SELECT object_id FROM mailboxes WHERE id = ?').pluck().get(mailboxId) as string;
      const expunged = (this.q('SELECT uid, modseq FROM expunged WHERE mailbox_id = ? ORDER BY uid').raw().all(mailboxId) as [number, number][]).map(([uid, modseq]) => ({ uid, modseq }));
      return { uidValidity: mb.uid_validity, uidNext: mb.uid_next, highestModseq: mb.highest_modseq, objectId, expunged, tombstoneFloor: mb.tombstone_floor };
    });
  }

  exportCredentials(userId: number): Promise<CredentialInfo[]> {
    return this.run(() => {
      const rows = this.q('SELECT user_id, kind, name, secret, created_at, last_used FROM credentials WHERE user_id = ? ORDER BY kind, name').all(userId) as {
        user_id: number;
        kind: string;
        name: string;
        secret: string;
        created_at: number;
        last_used: number | null;
      }[];
      return rows.map((r) => ({ userId: r.user_id, kind: r.kind, name: r.name, secret: r.secret, createdAt: new Date(r.created_at), lastUsed: r.last_used === null ? null : new Date(r.last_used) }));
    });
  }

  bulkImport(mailboxId: number, batch: BulkImportBatch): Promise<void> {
    return this.run(async () => {
      const msgs = batch.messages;
      let prev = 0;
      for (const m of msgs) {
        if (!Number.isInteger(m.uid) || m.uid <= prev || m.uid > MAX_U32) throw new StoreError('CANNOT', 'imported UIDs must be strictly ascending 32-bit numbers');
        if (!Number.isSafeInteger(m.modseq) || m.modseq < 1) throw new StoreError('CANNOT', `UID ${m.uid}: MODSEQ out of range`);
        prev = m.uid;
      }
      const st = batch.state ?? {};
      for (const v of [st.uidValidity, st.uidNext]) if (v !== undefined && (!Number.isInteger(v) || v < 1 || v > MAX_U32)) throw new StoreError('CANNOT', 'UIDVALIDITY/UIDNEXT out of range');
      for (const v of [st.highestModseq, st.tombstoneFloor]) if (v !== undefined && (!Number.isSafeInteger(v) || v < 0)) throw new StoreError('CANNOT', 'MODSEQ out of range');
      if (!this.mailboxById(mailboxId)) throw new StoreError('TRYCREATE', 'no such mailbox');
      const parsed = msgs.map((m) => parseFlags(m.flags));
      const plans = await this.planBodies(msgs);
      const fresh = plans.filter((p, i) => p.fresh && plans.findIndex((q) => q.id === p.id) === i);
      if (fresh.length > 0) await this.blobs.writeAll(fresh.map((p) => p.id), fresh.map((p) => p.data));
      try {
        await this.write((emit: (c: Change) => void) => {
          const mb = this.mailboxById(mailboxId);
          if (!mb) throw new StoreError('TRYCREATE', 'no such mailbox');
          const empty = mb.msg_count === 0 && mb.uid_next === 1 && (this.q('SELECT count(*) FROM expunged WHERE mailbox_id = ?').pluck().get(mailboxId) as number) === 0;
          if (st.uidValidity !== undefined && st.uidValidity !== mb.uid_validity) {
            if (!empty) throw new StoreError('CANNOT', `mailbox ${mb.name} already has messages; its UIDVALIDITY cannot change`);
            this.q('UPDATE mailboxes SET uid_validity = ? WHERE id = ?').run(st.uidValidity, mailboxId);
            // Mailboxes created later must still get greater values (RFC 9051 §2.3.1.1).
            this.q("UPDATE meta SET value = max(value, ?) WHERE key = 'uidvalidity_last'").run(st.uidValidity);
          }
          if (st.objectId !== undefined) {
            const cur = this.q('SELECT object_id FROM mailboxes WHERE id = ?').pluck().get(mailboxId) as string;
            if (cur !== st.objectId) {
              if (!empty) throw new StoreError('CANNOT', `mailbox ${mb.name} already has messages; its MAILBOXID cannot change`);
              if (this.q('SELECT 1 FROM mailboxes WHERE object_id = ?').get(st.objectId)) throw new StoreError('ALREADYEXISTS', `MAILBOXID ${st.objectId} belongs to another mailbox`);
              this.q('UPDATE mailboxes SET object_id = ? WHERE id = ?').run(st.objectId, mailboxId);
            }
          }
          const top = Math.max(mb.uid_next - 1, (this.q('SELECT max(uid) FROM expunged WHERE mailbox_id = ?').pluck().get(mailboxId) as number | null) ?? 0);
          if (msgs.length > 0 && msgs[0]!.uid <= top) throw new StoreError('CANNOT', `UID ${msgs[0]!.uid} is not above the mailbox's UIDs (${top})`);
          const insMsg = this.q(
            `INSERT INTO messages (mailbox_id, uid, blob_id, sysflags, keywords, internal_date, size, modseq, internal_tz, save_date)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          );
          const kw = this.keywordResolver(mailboxId);
          const metas: MessageMeta[] = [];
          const written = new Set<number>();
          let highest = mb.highest_modseq;
          this.quotaExempt++;
          try {
            msgs.forEach((m, i) => {
              const plan = plans[i]!;
              if (plan.fresh && !written.has(plan.id)) {
                this.insertBody(plan.id, plan.data.length, describeMessage(plan.data));
                written.add(plan.id);
              }
              const { sys, keywords } = parsed[i]!;
              const kwCol = encodeKeywords(kw(keywords));
              insMsg.run(mailboxId, m.uid, plan.id, sys, kwCol, m.internalDate, m.data.length, m.modseq, m.internalTz, m.saveDate);
              metas.push({ uid: m.uid, flags: decodeFlags(sys, kwCol), internalDate: m.internalDate, internalTz: m.internalTz, saveDate: m.saveDate, emailId: emailIdOf(plan.id), size: m.data.length, modseq: m.modseq });
              highest = Math.max(highest, m.modseq);
            });
            // RFC 8474 §5.2: the THREADID is fixed as the message is stored (threadids.ts).
            for (const id of written) assignThreadId((sql) => this.q(sql), mb.user_id, id);
          } finally {
            this.quotaExempt--;
          }
          const insTomb = this.q('INSERT OR IGNORE INTO expunged (mailbox_id, uid, modseq) VALUES (?, ?, ?)');
          const held = this.q('SELECT 1 FROM messages WHERE mailbox_id = ? AND uid = ?');
          for (const t of st.expunged ?? []) {
            if (!Number.isInteger(t.uid) || t.uid < 1 || t.uid > MAX_U32 || !Number.isSafeInteger(t.modseq) || t.modseq < 1) throw new StoreError('CANNOT', 'tombstone out of range');
            if (held.get(mailboxId, t.uid)) throw new StoreError('CANNOT', `UID ${t.uid} is in the mailbox; it cannot be a tombstone`);
            insTomb.run(mailboxId, t.uid, t.modseq);
            highest = Math.max(highest, t.modseq);
          }
          const lastTomb = (this.q('SELECT max(uid) FROM expunged WHERE mailbox_id = ?').pluck().get(mailboxId) as number | null) ?? 0;
          const uidNext = Math.max(mb.uid_next, prev + 1, lastTomb + 1, st.uidNext ?? 0);
          highest = Math.max(highest, st.highestModseq ?? 0, st.tombstoneFloor ?? 0);
          this.q('UPDATE mailboxes SET uid_next = ?, highest_modseq = ?, tombstone_floor = max(tombstone_floor, ?) WHERE id = ?').run(uidNext, highest, st.tombstoneFloor ?? 0, mailboxId);
          if (metas.length > 0) emit({ kind: 'append', userId: mb.user_id, mailboxId, modseq: highest, messages: metas });
        });
      } catch (err) {
        if (fresh.length > 0) await this.blobs.unlinkAll(fresh.map((p) => p.id)).catch(() => undefined);
        throw err;
      }
    });
  }

  /** Which blob each message references: its EMAILID's when free or holding the same bytes, else a fresh id; one per EMAILID. */
  private async planBodies(msgs: readonly BulkMessage[]): Promise<BodyPlan[]> {
    const byEmail = new Map<string, BodyPlan>();
    // Per wanted blob id: 'same' (it holds this very body: share it), 'taken' (another body), 'candidate' (free here?).
    const state = new Map<number, 'same' | 'taken' | 'candidate'>();
    for (const m of msgs) {
      const n = m.emailId ? blobIdOfEmailId(m.emailId) : null;
      if (n === null || state.has(n)) continue;
      const size = this.q('SELECT size FROM blobs WHERE id = ?').pluck().get(n) as number | undefined;
      if (size === undefined) state.set(n, 'candidate');
      else {
        const same = size === m.data.length && (await fs.readFile(this.blobs.pathOf(n)).then((b) => b.equals(m.data), () => false));
        state.set(n, same ? 'same' : 'taken');
      }
    }
    const claimed = await this.claimBlobIds([...state].filter(([, v]) => v === 'candidate').map(([n]) => n));
    const shared = new Map([...state].map(([n, v]) => [n, v === 'same'] as const));
    const need: BulkMessage[] = [];
    const plans: (BodyPlan | null)[] = msgs.map((m) => {
      const n = m.emailId ? blobIdOfEmailId(m.emailId) : null;
      const known = m.emailId ? byEmail.get(m.emailId) : undefined;
      if (known) return known;
      let p: BodyPlan | null = null;
      if (n !== null && shared.get(n) === true) p = { id: n, fresh: false, data: m.data };
      else if (n !== null && claimed.has(n)) p = { id: n, fresh: true, data: m.data };
      if (p && m.emailId) byEmail.set(m.emailId, p);
      if (!p) need.push(m);
      return p;
    });
    const ids = need.length > 0 ? await this.allocBlobIds(need.length) : [];
    let k = 0;
    return plans.map((p, i) => {
      if (p) return p;
      const m = msgs[i]!;
      const again = m.emailId ? byEmail.get(m.emailId) : undefined;
      if (again) return again;
      const q = { id: ids[k++]!, fresh: true, data: m.data };
      if (m.emailId) byEmail.set(m.emailId, q);
      return q;
    });
  }

  /**
   * Reserves those of `ids` that no body holds, none waits in blob_trash and no live reservation covers (in this store's blob id
   * space, store.ts allocBlobIds), moving blob_next past them; returns the ones reserved.
   */
  private claimBlobIds(ids: number[]): Promise<Set<number>> {
    if (ids.length === 0) return Promise.resolve(new Set());
    const sorted = [...new Set(ids)].sort((a, b) => a - b);
    return this.relaxed(() => {
      const got: number[] = [];
      const inBlobs = this.q('SELECT 1 FROM blobs WHERE id = ?');
      // A body expunged a moment ago whose file is still to be unlinked (purgeTrash): the id is not free yet.
      const inTrash = this.q('SELECT 1 FROM blob_trash WHERE id = ?');
      const covered = this.q('SELECT 1 FROM blob_reservations WHERE start <= ? AND end > ?');
      for (const n of sorted) if (!inBlobs.get(n) && !inTrash.get(n) && !covered.get(n, n)) got.push(n);
      // One reservation row per run of consecutive ids.
      const ins = this.q('INSERT INTO blob_reservations (start, end, owner) VALUES (?, ?, ?)');
      for (let i = 0; i < got.length; ) {
        let j = i;
        while (j + 1 < got.length && got[j + 1] === got[j]! + 1) j++;
        ins.run(got[i], got[j]! + 1, this.blobs.owner);
        i = j + 1;
      }
      if (got.length > 0) this.q("UPDATE meta SET value = max(value, ?) WHERE key = 'blob_next'").run(got[got.length - 1]! + 1);
      return new Set(got);
    });
  }
}
