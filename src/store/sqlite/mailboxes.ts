// Users, mailboxes and subscriptions: the account-level CRUD of the SQLite
// store (see store.ts for the design choices on names and UIDVALIDITY). A
// layer between the bulk operations (bulk.ts) and the store itself (store.ts).
import { randomBytes } from 'node:crypto';
import { StoreError, type MailboxInfo, type MailboxStatus, type SpecialUse, type UserInfo } from '../types.js';
import { DEFAULT_MAX_MAILBOXES_PER_USER } from '../limits.js';
import { BulkOps } from './bulk.js';
import { mailboxStatusOf } from '../status.js';
import type { MailboxRow } from './messages.js';
import { MAILBOX_SELECT, checkMailboxName, mailboxInfo, userInfo, type MailboxInfoRow, type UserRow } from './rows.js';

/** A mailbox with more messages than this is emptied in steps before DELETE removes it (see drainMailbox). */
const DELETE_IN_ONE = 1000;

export abstract class MailboxOps extends BulkOps {
  /** Most mailboxes one user may have (SqliteStoreOptions.maxMailboxesPerUser); INBOX is always allowed. */
  protected maxMailboxesPerUser = DEFAULT_MAX_MAILBOXES_PER_USER;

  // ---- users

  createUser(name: string, passwordHash: string): Promise<UserInfo> {
    return this.run(() => {
      if (name.length === 0) throw new StoreError('CANNOT', 'empty user name');
      return this.write(() => {
        if (this.q('SELECT 1 FROM users WHERE name = ?').get(name)) {
          throw new StoreError('ALREADYEXISTS', `user ${name} exists`);
        }
        const row = this.q('INSERT INTO users (name, password_hash, created_at) VALUES (?, ?, ?) RETURNING *')
          .get(name, passwordHash, Date.now()) as UserRow;
        return userInfo(row);
      });
    });
  }

  getUser(name: string): Promise<UserInfo | null> {
    return this.run(() => {
      const row = this.q('SELECT * FROM users WHERE name = ?').get(name) as UserRow | undefined;
      return row ? userInfo(row) : null;
    });
  }

  getUserById(id: number): Promise<UserInfo | null> {
    return this.run(() => {
      const row = this.q('SELECT * FROM users WHERE id = ?').get(id) as UserRow | undefined;
      return row ? userInfo(row) : null;
    });
  }

  setPasswordHash(userId: number, passwordHash: string): Promise<void> {
    return this.run(async () => {
      const r = await this.write(() => this.q('UPDATE users SET password_hash = ? WHERE id = ?').run(passwordHash, userId));
      if (r.changes === 0) throw new StoreError('NONEXISTENT', 'no such user');
    });
  }

  deleteUser(userId: number): Promise<void> {
    return this.run(async () => {
      await this.write((emit) => {
        if (!this.q('SELECT 1 FROM users WHERE id = ?').get(userId)) {
          throw new StoreError('NONEXISTENT', 'no such user');
        }
        const boxes = this.q('SELECT id, name FROM mailboxes WHERE user_id = ? ORDER BY name').all(userId) as {
          id: number;
          name: string;
        }[];
        for (const b of boxes) {
          this.dropMailboxRows(b.id);
          emit({ kind: 'mailbox-delete', userId, mailboxId: b.id, name: b.name });
        }
        this.q('DELETE FROM subscriptions WHERE user_id = ?').run(userId);
        this.q('DELETE FROM retired_names WHERE user_id = ?').run(userId);
        this.q('DELETE FROM credentials WHERE user_id = ?').run(userId);
        this.q('DELETE FROM annotations WHERE user_id = ?').run(userId);
        this.q('DELETE FROM users WHERE id = ?').run(userId);
      });
      await this.purgeTrash();
    });
  }

  listUsers(): Promise<UserInfo[]> {
    return this.run(() => (this.q('SELECT * FROM users ORDER BY name').all() as UserRow[]).map(userInfo));
  }

  countUsers(): Promise<number> {
    return this.run(() => this.qp('SELECT count(*) FROM users').get() as number);
  }

  // ---- mailboxes

  listMailboxes(userId: number): Promise<MailboxInfo[]> {
    return this.read(() =>
      (this.q(`${MAILBOX_SELECT} WHERE m.user_id = ? ORDER BY m.name`).all(userId) as MailboxInfoRow[]).map(
        mailboxInfo,
      ),
    );
  }

  getMailbox(userId: number, name: string): Promise<MailboxInfo | null> {
    return this.read(() => {
      const row = this.q(`${MAILBOX_SELECT} WHERE m.user_id = ? AND m.name = ?`).get(userId, name) as
        | MailboxInfoRow
        | undefined;
      return row ? mailboxInfo(row) : null;
    });
  }

  getMailboxById(mailboxId: number): Promise<MailboxInfo | null> {
    return this.read(() => {
      const row = this.q(`${MAILBOX_SELECT} WHERE m.id = ?`).get(mailboxId) as MailboxInfoRow | undefined;
      return row ? mailboxInfo(row) : null;
    });
  }

  createMailbox(userId: number, name: string, specialUse: SpecialUse | null = null): Promise<MailboxInfo> {
    return this.run(async () => {
      checkMailboxName(name);
      const id = await this.write((emit) => {
        if (!this.q('SELECT 1 FROM users WHERE id = ?').get(userId)) {
          throw new StoreError('NONEXISTENT', 'no such user');
        }
        if (this.mailboxByName(userId, name)) throw new StoreError('ALREADYEXISTS', `mailbox ${name} exists`);
        const mailboxId = this.insertMailbox(userId, name, specialUse);
        emit({ kind: 'mailbox-create', userId, mailboxId, name });
        return mailboxId;
      });
      return mailboxInfo(this.q(`${MAILBOX_SELECT} WHERE m.id = ?`).get(id) as MailboxInfoRow);
    });
  }

  deleteMailbox(userId: number, name: string): Promise<void> {
    return this.run(async () => {
      if (name === 'INBOX') throw new StoreError('CANNOT', 'INBOX cannot be deleted');
      // A big mailbox is emptied first in short transactions (the event loop stays free); then the row goes in one.
      const found = this.mailboxByName(userId, name);
      if (found && found.msg_count > DELETE_IN_ONE) await this.drainMailbox(found.id);
      await this.write((emit) => {
        const mb = this.mailboxByName(userId, name);
        if (!mb) throw new StoreError('NONEXISTENT', `no mailbox ${name}`);
        this.retireName(userId, name, mb.uid_validity);
        this.dropMailboxRows(mb.id);
        emit({ kind: 'mailbox-delete', userId, mailboxId: mb.id, name });
      });
      await this.purgeTrash();
    });
  }

  renameMailbox(userId: number, from: string, to: string): Promise<void> {
    return this.run(async () => {
      checkMailboxName(to);
      if (from === 'INBOX') return this.renameInbox(userId, to);
      await this.write((emit) => {
        const mb = this.mailboxByName(userId, from);
        if (!mb) throw new StoreError('NONEXISTENT', `no mailbox ${from}`);
        if (to.startsWith(`${from}/`)) throw new StoreError('CANNOT', 'cannot rename a mailbox to its own child');
        const prefix = `${from}/`;
        const children = this.q('SELECT * FROM mailboxes WHERE user_id = ? AND substr(name, 1, ?) = ? ORDER BY name')
          .all(userId, prefix.length, prefix) as MailboxRow[];
        const moves = [mb, ...children].map((m) => ({ mb: m, newName: to + m.name.slice(from.length) }));
        for (const { newName } of moves) {
          if (this.mailboxByName(userId, newName)) throw new StoreError('ALREADYEXISTS', `mailbox ${newName} exists`);
          if (newName === 'INBOX') throw new StoreError('CANNOT', 'cannot rename onto INBOX');
          checkMailboxName(newName);
        }
        const retired = this.qp('SELECT uid_validity FROM retired_names WHERE user_id = ? AND name = ?');
        const isSubscribed = this.q('SELECT 1 FROM subscriptions WHERE user_id = ? AND name = ?');
        for (const { mb: m, newName } of moves) {
          this.retireName(userId, m.name, m.uid_validity);
          const prev = retired.get(userId, newName) as number | undefined;
          const uidValidity = prev !== undefined && prev >= m.uid_validity ? this.nextUidValidity() : m.uid_validity;
          this.q('UPDATE mailboxes SET name = ?, uid_validity = ? WHERE id = ?').run(newName, uidValidity, m.id);
          emit({ kind: 'mailbox-rename', userId, mailboxId: m.id, oldName: m.name, name: newName });
          if (isSubscribed.get(userId, m.name)) {
            this.q('DELETE FROM subscriptions WHERE user_id = ? AND name = ?').run(userId, m.name);
            this.q('INSERT OR IGNORE INTO subscriptions (user_id, name) VALUES (?, ?)').run(userId, newName);
            emit({ kind: 'subscription', userId, name: m.name, subscribed: false });
            emit({ kind: 'subscription', userId, name: newName, subscribed: true });
          }
        }
      });
    });
  }

  /** RFC 9051 §6.3.6: INBOX's messages move to a new mailbox; INBOX stays, empty; its children are unaffected. */
  private async renameInbox(userId: number, to: string): Promise<void> {
    await this.write((emit) => {
      const inbox = this.mailboxByName(userId, 'INBOX');
      if (!inbox) throw new StoreError('NONEXISTENT', 'no INBOX');
      if (this.mailboxByName(userId, to)) throw new StoreError('ALREADYEXISTS', `mailbox ${to} exists`);
      const destId = this.insertMailbox(userId, to, null);
      emit({ kind: 'mailbox-create', userId, mailboxId: destId, name: to });
      const uids = this.qp('SELECT uid FROM messages WHERE mailbox_id = ? ORDER BY uid').all(inbox.id) as number[];
      if (uids.length > 0) this.moveInTx(inbox.id, uids, destId, emit);
    });
  }

  setSubscribed(userId: number, name: string, subscribed: boolean): Promise<void> {
    return this.run(async () => {
      await this.write((emit) => {
        if (!this.q('SELECT 1 FROM users WHERE id = ?').get(userId)) {
          throw new StoreError('NONEXISTENT', 'no such user');
        }
        const r = subscribed
          ? this.q('INSERT OR IGNORE INTO subscriptions (user_id, name) VALUES (?, ?)').run(userId, name)
          : this.q('DELETE FROM subscriptions WHERE user_id = ? AND name = ?').run(userId, name);
        if (r.changes > 0) emit({ kind: 'subscription', userId, name, subscribed });
      });
    });
  }

  listSubscriptions(userId: number): Promise<string[]> {
    return this.run(
      () => this.qp('SELECT name FROM subscriptions WHERE user_id = ? ORDER BY name').all(userId) as string[],
    );
  }

  mailboxStatus(mailboxId: number): Promise<MailboxStatus> {
    return this.read(() => {
      const mb = this.mailboxById(mailboxId);
      if (!mb) throw new StoreError('NONEXISTENT', 'no such mailbox');
      const recent = this.qp('SELECT count(*) FROM messages WHERE mailbox_id = ? AND uid > ?').get(mailboxId, mb.recent_uid) as number;
      return mailboxStatusOf(mb, recent);
    });
  }

  claimRecent(mailboxId: number): Promise<number> {
    return this.run(async () => {
      const read = () => {
        const mb = this.mailboxById(mailboxId);
        if (!mb) throw new StoreError('NONEXISTENT', 'no such mailbox');
        return mb;
      };
      const mb = read();
      if (mb.recent_uid >= mb.uid_next - 1) return mb.recent_uid + 1;
      // Losing a recent mark on power failure only shows a message as \Recent twice.
      return this.relaxed(() => {
        const cur = read();
        this.q('UPDATE mailboxes SET recent_uid = ? WHERE id = ?').run(cur.uid_next - 1, mailboxId);
        return cur.recent_uid + 1;
      });
    });
  }

  // ---- helpers

  private insertMailbox(userId: number, name: string, specialUse: SpecialUse | null): number {
    if (name !== 'INBOX') {
      const n = this.qp('SELECT COUNT(*) FROM mailboxes WHERE user_id = ?').get(userId) as number;
      if (n >= this.maxMailboxesPerUser) throw new StoreError('LIMIT', `too many mailboxes (at most ${this.maxMailboxesPerUser})`);
    }
    const uidValidity = this.nextUidValidity();
    // RFC 8474 §4: MAILBOXID is 96 random bits, so no mailbox (even after a DELETE) gets another's.
    const objectId = 'F' + randomBytes(12).toString('hex');
    return this.qp('INSERT INTO mailboxes (user_id, name, uid_validity, special_use, object_id) VALUES (?, ?, ?, ?, ?) RETURNING id').get(userId, name, uidValidity, specialUse, objectId) as number;
  }

  /** RFC 9051 §2.3.1.1: a name's UIDVALIDITY only ever grows. Call inside a write transaction. */
  private nextUidValidity(): number {
    const last = this.qp("SELECT value FROM meta WHERE key = 'uidvalidity_last'").get() as number;
    const v = Math.max(Math.floor(Date.now() / 1000), last + 1);
    if (v > 0xffffffff) throw new StoreError('LIMIT', 'UIDVALIDITY space exhausted');
    this.q("UPDATE meta SET value = ? WHERE key = 'uidvalidity_last'").run(v);
    return v;
  }

  private retireName(userId: number, name: string, uidValidity: number): void {
    this.q(
        `INSERT INTO retired_names (user_id, name, uid_validity) VALUES (?, ?, ?)
         ON CONFLICT (user_id, name) DO UPDATE SET uid_validity = max(uid_validity, excluded.uid_validity)`,
      ).run(userId, name, uidValidity);
  }

  /** Deletes a mailbox and everything in it; the blob triggers queue unreferenced bodies for unlinking. */
  private dropMailboxRows(mailboxId: number): void {
    this.q('DELETE FROM messages WHERE mailbox_id = ?').run(mailboxId);
    this.q('DELETE FROM expunged WHERE mailbox_id = ?').run(mailboxId);
    this.q('DELETE FROM mailbox_keywords WHERE mailbox_id = ?').run(mailboxId);
    this.q('DELETE FROM annotations WHERE mailbox_id = ?').run(mailboxId); // RFC 5464 §3.4: they go with the mailbox
    this.q('DELETE FROM mailboxes WHERE id = ?').run(mailboxId);
  }
}
