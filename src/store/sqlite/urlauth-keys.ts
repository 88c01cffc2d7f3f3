// RFC 4467 §2.4 / §7 mailbox access keys: one secret per (user, mailbox,
// mechanism), created on first GENURLAUTH, replaced by RESETKEY <mailbox>,
// all removed by RESETKEY without arguments. The keys never leave the
// store except to src/commands/urlauth.ts, which computes the INTERNAL
// mechanism's HMAC with them. A layer of the SQLite store between the
// account records (accounts.ts) and the store itself (store.ts).
import { randomBytes } from 'node:crypto';
import { StoreError } from '../types.js';
import { AccountOps } from './accounts.js';

/** Bytes of a new mailbox access key: HMAC-SHA1's block-size-sized secret is more than its 160-bit output needs. */
export const URLAUTH_KEY_BYTES = 32;

export abstract class UrlAuthKeyOps extends AccountOps {
  urlAuthKey(userId: number, mailboxId: number, mech: string, create: boolean): Promise<Buffer | null> {
    return this.run(async () => {
      const get = () => this.qp('SELECT key FROM urlauth_keys WHERE user_id = ? AND mailbox_id = ? AND mech = ?').get(userId, mailboxId, mech) as Buffer | undefined;
      const have = get();
      if (have) return have;
      if (!create) {
        if (!this.mailboxById(mailboxId)) throw new StoreError('NONEXISTENT', 'no such mailbox');
        return null;
      }
      return this.write(() => {
        const mb = this.mailboxById(mailboxId);
        if (!mb || mb.user_id !== userId) throw new StoreError('NONEXISTENT', 'no such mailbox');
        // Another session may have created it since the read above: keep the first one (its URLs stay valid).
        this.q('INSERT INTO urlauth_keys (user_id, mailbox_id, mech, key, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING').run(
          userId,
          mailboxId,
          mech,
          randomBytes(URLAUTH_KEY_BYTES),
          Date.now(),
        );
        return get()!;
      });
    });
  }

  resetUrlAuthKeys(userId: number, mailboxId: number | null, mech: string): Promise<void> {
    return this.run(async () => {
      await this.write((emit) => {
        // Published after the commit: sessions with the mailbox selected are told (RFC 4467 §6.3).
        if (mailboxId === null) {
          this.q('DELETE FROM urlauth_keys WHERE user_id = ?').run(userId);
        } else {
          const mb = this.mailboxById(mailboxId);
          if (!mb || mb.user_id !== userId) throw new StoreError('NONEXISTENT', 'no such mailbox');
          this.q(
            `INSERT INTO urlauth_keys (user_id, mailbox_id, mech, key, created_at) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (user_id, mailbox_id, mech) DO UPDATE SET key = excluded.key, created_at = excluded.created_at`,
          ).run(userId, mailboxId, mech, randomBytes(URLAUTH_KEY_BYTES), Date.now());
        }
        emit({ kind: 'urlauth-key', userId, mailboxId });
      });
    });
  }
}
