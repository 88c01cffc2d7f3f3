// Addresses, quota and UID-preserving import for the SQLite store. A layer
// between MessageReads (reads.ts) and SqliteMailStore (store.ts), so these
// features share the transaction plumbing without growing either file.
//
// Quota (RFC 9208): usage per user is kept by triggers (schema V4). The limit
// is checked by a TEMP trigger created on this connection: BEFORE INSERT ON
// messages it aborts with QUIRE_OVERQUOTA (mapped to StoreError OVERQUOTA by
// toStoreError) when the insert would pass a limit. Because it runs inside
// the writing transaction, APPEND, COPY, LMTP delivery and import are checked
// atomically with no race. A MOVE inserts before it deletes, so while a move
// runs the check is switched off through the SQL function quire_quota_exempt()
// (a user's usage does not change by moving between their own mailboxes).
// The permanent schema does not depend on that function, so other tools can
// still open the database.

import type Database from 'better-sqlite3';
import {
  StoreError,
  type AddressInfo,
  type AppendResult,
  type Change,
  type ChangeFeed,
  type CopyResult,
  type ImportInput,
  type ImportOptions,
  type MessageMeta,
  type QuotaInfo,
} from '../types.js';
import type { BlobFiles } from './blobs.js';
import { MAX_KEYWORDS_PER_MAILBOX, decodeFlags, encodeKeywords, parseFlags } from './flags.js';
import { MessageReads } from './reads.js';
import { localZoneAt } from './metadata.js';
import { emailIdOf } from '../objectid.js';
import { assignThreadId } from './threadids.js';
import { describeMessage } from '../structure.js';

/** Longest address in bytes (RFC 5321 §4.5.3.1.3 paths are at most 256 octets; leave room for quoting). */
export const MAX_ADDRESS_BYTES = 320;
/** Largest UID / UIDVALIDITY (RFC 9051 §2.3.1.1: 32-bit unsigned). */
const MAX_U32 = 0xffffffff;
/** Message written by the quota trigger; toStoreError maps it to OVERQUOTA. */
export const OVERQUOTA_MARK = 'QUIRE_OVERQUOTA';

const QUOTA_TRIGGER = `
CREATE TEMP TRIGGER IF NOT EXISTS quota_check BEFORE INSERT ON main.messages
WHEN quire_quota_exempt() = 0
BEGIN
  SELECT RAISE(ABORT, '${OVERQUOTA_MARK}')
  FROM main.quotas q JOIN main.mailboxes m ON m.user_id = q.user_id
  WHERE m.id = NEW.mailbox_id
    AND ((q.storage_limit IS NOT NULL AND q.storage_used + NEW.size > q.storage_limit)
      OR (q.message_limit IS NOT NULL AND q.messages_used + 1 > q.message_limit));
END;`;

interface QuotaRow {
  storage_limit: number | null;
  message_limit: number | null;
  storage_used: number;
  messages_used: number;
}

/** Lower-cased, validated address: "local@domain" or "@domain" (catch-all). */
export function normaliseAddress(address: string): string {
  const a = address.trim().toLowerCase();
  const at = a.lastIndexOf('@');
  // eslint-disable-next-line no-control-regex
  if (at < 0 || at === a.length - 1 || /[\s<>,;\x00-\x1f\x7f]/.test(a) || (a.slice(0, at).includes('@') && !a.startsWith('"'))) {
    throw new StoreError('CANNOT', `not an address: ${JSON.stringify(address)} (use local@domain, or @domain for a catch-all)`);
  }
  if (Buffer.byteLength(a) > MAX_ADDRESS_BYTES) throw new StoreError('LIMIT', 'address too long');
  return a;
}

function checkLimit(n: number | null | undefined, what: string): void {
  if (n === null || n === undefined) return;
  if (!Number.isSafeInteger(n) || n < 0) throw new StoreError('CANNOT', `${what} limit must be a whole number >= 0`);
}

export abstract class AddressOps extends MessageReads {
  /** > 0 while a MOVE runs in the current transaction (see the file comment). */
  protected quotaExempt = 0;

  protected constructor(db: Database.Database, blobs: BlobFiles, feed: ChangeFeed) {
    super(db, blobs, feed);
    db.function('quire_quota_exempt', { deterministic: false }, () => (this.quotaExempt > 0 ? 1 : 0));
    db.exec(QUOTA_TRIGGER);
  }

  protected override moveInTx(
    sourceMailboxId: number,
    uids: readonly number[],
    destMailboxId: number,
    emit: (c: Change) => void,
  ): CopyResult {
    this.quotaExempt++;
    try {
      return super.moveInTx(sourceMailboxId, uids, destMailboxId, emit);
    } finally {
      this.quotaExempt--;
    }
  }

  private requireUser(userId: number): void {
    if (!this.q('SELECT 1 FROM users WHERE id = ?').get(userId)) throw new StoreError('NONEXISTENT', 'no such user');
  }

  // ---- addresses

  addAddress(userId: number, address: string): Promise<AddressInfo> {
    return this.run(() => {
      const a = normaliseAddress(address);
      return this.write(() => {
        this.requireUser(userId);
        const owner = this.qp('SELECT user_id FROM addresses WHERE address = ?').get(a) as number | undefined;
        if (owner !== undefined) {
          throw new StoreError('ALREADYEXISTS', owner === userId ? `${a} is already this user's` : `${a} belongs to another user`);
        }
        this.q('INSERT INTO addresses (address, user_id, created_at) VALUES (?, ?, ?)').run(a, userId, Date.now());
        return { address: a, userId };
      });
    });
  }

  removeAddress(address: string): Promise<void> {
    return this.run(async () => {
      const a = normaliseAddress(address);
      const r = await this.write(() => this.q('DELETE FROM addresses WHERE address = ?').run(a));
      if (r.changes === 0) throw new StoreError('NONEXISTENT', `nobody owns ${a}`);
    });
  }

  listAddresses(userId?: number): Promise<AddressInfo[]> {
    return this.run(() => {
      const rows = (
        userId === undefined
          ? this.q('SELECT address, user_id FROM addresses ORDER BY address').all()
          : this.q('SELECT address, user_id FROM addresses WHERE user_id = ? ORDER BY address').all(userId)
      ) as { address: string; user_id: number }[];
      return rows.map((r) => ({ address: r.address, userId: r.user_id }));
    });
  }

  findAddress(address: string): Promise<AddressInfo | null> {
    return this.run(() => {
      const a = address.trim();
      const row = this.q('SELECT address, user_id FROM addresses WHERE address = ?').get(a) as
        | { address: string; user_id: number }
        | undefined;
      return row ? { address: row.address, userId: row.user_id } : null;
    });
  }

  // ---- quota

  getQuota(userId: number): Promise<QuotaInfo> {
    return this.run(() => this.quotaOf(userId));
  }

  private quotaOf(userId: number): QuotaInfo {
    const r = this.q('SELECT storage_limit, message_limit, storage_used, messages_used FROM quotas WHERE user_id = ?').get(userId) as
      | QuotaRow
      | undefined;
    if (!r) {
      this.requireUser(userId);
      return { storageLimit: null, messageLimit: null, storageUsed: 0, messagesUsed: 0 };
    }
    return { storageLimit: r.storage_limit, messageLimit: r.message_limit, storageUsed: r.storage_used, messagesUsed: r.messages_used };
  }

  setQuota(userId: number, limits: { storage?: number | null; messages?: number | null }): Promise<QuotaInfo> {
    return this.run(() => {
      checkLimit(limits.storage, 'storage');
      checkLimit(limits.messages, 'message');
      return this.write(() => {
        this.requireUser(userId);
        this.q('INSERT OR IGNORE INTO quotas (user_id) VALUES (?)').run(userId);
        if (limits.storage !== undefined) this.q('UPDATE quotas SET storage_limit = ? WHERE user_id = ?').run(limits.storage, userId);
        if (limits.messages !== undefined) this.q('UPDATE quotas SET message_limit = ? WHERE user_id = ?').run(limits.messages, userId);
        return this.quotaOf(userId);
      });
    });
  }

  // ---- import with given UIDs

  importMessages(mailboxId: number, items: ImportInput[], opts: ImportOptions = {}): Promise<AppendResult> {
    return this.run(async () => {
      const parsed = items.map((it) => parseFlags(it.flags));
      let prev = 0;
      for (const it of items) {
        if (!Number.isInteger(it.uid) || it.uid <= prev || it.uid > MAX_U32) {
          throw new StoreError('CANNOT', 'imported UIDs must be strictly ascending 32-bit numbers');
        }
        prev = it.uid;
      }
      for (const v of [opts.uidValidity, opts.uidNext]) {
        if (v !== undefined && (!Number.isInteger(v) || v < 1 || v > MAX_U32)) throw new StoreError('CANNOT', 'UIDVALIDITY/UIDNEXT out of range');
      }
      if (!this.mailboxById(mailboxId)) throw new StoreError('TRYCREATE', 'no such mailbox');
      const described = items.map((it) => describeMessage(it.data));
      const ids = items.length > 0 ? await this.allocBlobIds(items.length) : [];
      if (ids.length > 0) await this.blobs.writeAll(ids, items.map((it) => it.data));
      try {
        return await this.write((emit) => {
          const mb = this.mailboxById(mailboxId);
          if (!mb) throw new StoreError('TRYCREATE', 'no such mailbox');
          let uidNext = mb.uid_next;
          let uidValidity = mb.uid_validity;
          if (opts.uidValidity !== undefined && opts.uidValidity !== mb.uid_validity) {
            // Only a mailbox that never held a message: no client can have cached a UID of it.
            if (mb.uid_next !== 1 || mb.msg_count !== 0) {
              throw new StoreError('CANNOT', `mailbox ${mb.name} already has messages; its UIDVALIDITY cannot change`);
            }
            uidValidity = opts.uidValidity;
            this.q('UPDATE mailboxes SET uid_validity = ? WHERE id = ?').run(uidValidity, mailboxId);
            // Later mailboxes must still get greater values than any used so far (RFC 9051 §2.3.1.1).
            this.q("UPDATE meta SET value = max(value, ?) WHERE key = 'uidvalidity_last'").run(uidValidity);
          }
          if (items.length > 0 && items[0]!.uid < uidNext) {
            throw new StoreError('CANNOT', `UID ${items[0]!.uid} is below the mailbox's UIDNEXT ${uidNext}`);
          }
          const modseq = mb.highest_modseq + 1;
          const metas: MessageMeta[] = [];
          if (items.length > 0) {
            const kw = this.keywordResolver(mailboxId);
            const insMsg = this.q(
              `INSERT INTO messages (mailbox_id, uid, blob_id, sysflags, keywords, internal_date, size, modseq, internal_tz, save_date)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
            );
            const now = Date.now();
            items.forEach((it, i) => {
              const { sys, keywords } = parsed[i]!;
              const kwCol = encodeKeywords(kw(keywords));
              const date = it.internalDate ?? now;
              const tz = it.internalTz ?? localZoneAt(date);
              this.insertBody(ids[i]!, it.data.length, described[i]!);
              // RFC 8514 §3: an imported message is saved into this mailbox now.
              insMsg.run(mailboxId, it.uid, ids[i]!, sys, kwCol, date, it.data.length, modseq, tz, now);
              metas.push({ uid: it.uid, flags: decodeFlags(sys, kwCol), internalDate: date, internalTz: tz, saveDate: now, emailId: emailIdOf(ids[i]!), size: it.data.length, modseq });
            });
            // RFC 8474 §5.2: the THREADID is fixed as the message is stored (threadids.ts).
            for (const id of ids) assignThreadId((sql) => this.q(sql), mb.user_id, id);
            uidNext = items[items.length - 1]!.uid + 1;
          }
          uidNext = Math.max(uidNext, mb.uid_next, opts.uidNext ?? 0);
          if (metas.length > 0 || uidNext !== mb.uid_next) {
            this.q('UPDATE mailboxes SET uid_next = ?, highest_modseq = ? WHERE id = ?').run(uidNext, metas.length > 0 ? modseq : mb.highest_modseq, mailboxId);
          }
          if (metas.length > 0) emit({ kind: 'append', userId: mb.user_id, mailboxId, modseq, messages: metas });
          return { uidValidity, uids: metas.map((m) => m.uid) };
        });
      } catch (err) {
        if (ids.length > 0) await this.blobs.unlinkAll(ids).catch(() => undefined);
        throw err;
      }
    });
  }

  /** Canonical spellings of keywords in a mailbox, registering new ones (first-seen spelling, RFC 9051 §2.3.2). */
  protected keywordResolver(mailboxId: number): (keywords: readonly string[]) => string[] {
    const rows = this.q('SELECT lname, name FROM mailbox_keywords WHERE mailbox_id = ?').raw().all(mailboxId) as [string, string][];
    const map = new Map(rows);
    return (keywords) =>
      keywords.map((k) => {
        const lower = k.toLowerCase();
        const known = map.get(lower);
        if (known !== undefined) return known;
        if (map.size >= MAX_KEYWORDS_PER_MAILBOX) {
          throw new StoreError('LIMIT', `too many keywords in mailbox (at most ${MAX_KEYWORDS_PER_MAILBOX})`);
        }
        this.q('INSERT INTO mailbox_keywords (mailbox_id, lname, name) VALUES (?, ?, ?)').run(mailboxId, lower, k);
        map.set(lower, k);
        return k;
      });
  }
}
