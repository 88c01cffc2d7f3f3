// Per-user records beside the mail: credentials written by src/auth (SCRAM
// verifiers, application passwords) and RFC 5464 annotations, with the
// RFC 6154 §4 special use they expose. A layer of the SQLite store between
// the sort keys (sorting.ts) and the store itself (store.ts).
import { StoreError, type Annotation, type CredentialInfo, type SpecialUse } from '../types.js';
import { SortOps } from './sorting.js';

export abstract class AccountOps extends SortOps {
  // ---- credentials (src/auth)

  listCredentials(userId: number, kind: string): Promise<CredentialInfo[]> {
    return this.run(() =>
      (this.q('SELECT * FROM credentials WHERE user_id = ? AND kind = ? ORDER BY name').all(userId, kind) as CredentialRow[]).map(credentialInfo),
    );
  }

  setCredential(userId: number, kind: string, name: string, secret: string): Promise<void> {
    return this.run(async () => {
      await this.write(() => {
        if (!this.q('SELECT 1 FROM users WHERE id = ?').get(userId)) throw new StoreError('NONEXISTENT', 'no such user');
        this.q(
          `INSERT INTO credentials (user_id, kind, name, secret, created_at) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (user_id, kind, name) DO UPDATE SET secret = excluded.secret, created_at = excluded.created_at, last_used = NULL`,
        ).run(userId, kind, name, secret, Date.now());
      });
    });
  }

  deleteCredential(userId: number, kind: string, name?: string): Promise<boolean> {
    return this.run(async () => {
      const r = await this.write(() =>
        name === undefined
          ? this.q('DELETE FROM credentials WHERE user_id = ? AND kind = ?').run(userId, kind)
          : this.q('DELETE FROM credentials WHERE user_id = ? AND kind = ? AND name = ?').run(userId, kind, name),
      );
      return r.changes > 0;
    });
  }

  touchCredential(userId: number, kind: string, name: string, at: Date): Promise<void> {
    return this.run(async () => {
      await this.write(() => this.q('UPDATE credentials SET last_used = ? WHERE user_id = ? AND kind = ? AND name = ?').run(at.getTime(), userId, kind, name));
    });
  }

  // ---- annotations (RFC 5464)

  getAnnotations(userId: number, mailboxId: number | null, entries: string[], depth: 0 | 1 | 'infinity'): Promise<Annotation[]> {
    return this.run(() => {
      if (mailboxId !== null && !this.mailboxById(mailboxId)) throw new StoreError('NONEXISTENT', 'no such mailbox');
      const box = mailboxId ?? 0;
      const out = new Map<string, Buffer>();
      const exact = this.q('SELECT entry, value FROM annotations WHERE user_id = ? AND mailbox_id = ? AND entry = ?').raw();
      // Descendants by prefix range, never LIKE (entry names may hold "_").
      const below = this.q('SELECT entry, value FROM annotations WHERE user_id = ? AND mailbox_id = ? AND entry > ? AND entry < ? ORDER BY entry').raw();
      for (const e of entries) {
        for (const [k, v] of exact.all(userId, box, e) as [string, Buffer][]) out.set(k, v);
        if (depth === 0) continue;
        for (const [k, v] of below.all(userId, box, `${e}/`, `${e}0`) as [string, Buffer][]) {
          if (depth === 1 && k.slice(e.length + 1).includes('/')) continue;
          out.set(k, v);
        }
      }
      return [...out].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([entry, value]) => ({ entry, value }));
    });
  }

  setAnnotations(
    userId: number,
    mailboxId: number | null,
    items: { entry: string; value: Buffer | null }[],
    limits: { maxEntries: number; maxPerUser: number },
  ): Promise<void> {
    return this.run(async () => {
      await this.write((emit) => {
        if (mailboxId !== null && !this.mailboxById(mailboxId)) throw new StoreError('NONEXISTENT', 'no such mailbox');
        const box = mailboxId ?? 0;
        const del = this.q('DELETE FROM annotations WHERE user_id = ? AND mailbox_id = ? AND entry = ?');
        const put = this.q('INSERT INTO annotations (user_id, mailbox_id, entry, value) VALUES (?, ?, ?, ?) ON CONFLICT (user_id, mailbox_id, entry) DO UPDATE SET value = excluded.value');
        for (const it of items) {
          if (it.value === null) del.run(userId, box, it.entry);
          else put.run(userId, box, it.entry, it.value);
        }
        const here = this.qp('SELECT count(*) FROM annotations WHERE user_id = ? AND mailbox_id = ?').get(userId, box) as number;
        const all = this.qp('SELECT count(*) FROM annotations WHERE user_id = ?').get(userId) as number;
        // Thrown inside the transaction: nothing of this command is kept (RFC 5464 §4.3).
        if (here > limits.maxEntries || all > limits.maxPerUser) throw new StoreError('LIMIT', 'too many annotations');
        // Published after the commit like every change (RFC 5465 §5.6, §5.7 NOTIFY MailboxMetadataChange).
        if (items.length) emit({ kind: 'annotation', userId, mailboxId, entries: [...new Set(items.map((it) => it.entry))] });
      });
    });
  }

  setSpecialUse(mailboxId: number, use: SpecialUse | null): Promise<void> {
    return this.run(async () => {
      await this.write((emit) => {
        const mb = this.mailboxById(mailboxId);
        if (!mb) throw new StoreError('NONEXISTENT', 'no such mailbox');
        this.q('UPDATE mailboxes SET special_use = ? WHERE id = ?').run(use, mailboxId);
        emit({ kind: 'annotation', userId: mb.user_id, mailboxId, entries: ['/private/specialuse'] });
      });
    });
  }
}

interface CredentialRow {
  user_id: number;
  kind: string;
  name: string;
  secret: string;
  created_at: number;
  last_used: number | null;
}

function credentialInfo(r: CredentialRow): CredentialInfo {
  return { userId: r.user_id, kind: r.kind, name: r.name, secret: r.secret, createdAt: new Date(r.created_at), lastUsed: r.last_used === null ? null : new Date(r.last_used) };
}
