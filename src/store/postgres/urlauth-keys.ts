// RFC 4467 §2.4 / §7 mailbox access keys in the PostgreSQL store, as the
// SQLite store's (src/store/sqlite/urlauth-keys.ts): one secret per (user,
// mailbox, mechanism), created on first GENURLAUTH, replaced by RESETKEY
// <mailbox>, all of the user's removed by RESETKEY without arguments; gone
// with the mailbox and the user (foreign keys, schema v3-pop3-urlauth).
// Writes go through the user's write transaction (base.ts): serialised with
// the user's other writers on every node, retried, durable at COMMIT.
import { randomBytes } from 'node:crypto';
import { StoreError } from '../types.js';
import { PgMaildropOps } from './maildrop.js';
import type { Queryable } from './blobs.js';

/** Bytes of a new mailbox access key (as the SQLite store's URLAUTH_KEY_BYTES). */
export const PG_URLAUTH_KEY_BYTES = 32;

export abstract class PgUrlAuthKeyOps extends PgMaildropOps {
  /** NONEXISTENT unless the mailbox exists and is the user's. */
  private async ownMailbox(q: Queryable, userId: number, mailboxId: number): Promise<void> {
    if (!Number.isSafeInteger(mailboxId)) throw new StoreError('NONEXISTENT', 'no such mailbox');
    const r = await q.query<{ user_id: number }>('SELECT user_id FROM mailboxes WHERE id = $1', [mailboxId]);
    if (r.rows[0]?.user_id !== userId) throw new StoreError('NONEXISTENT', 'no such mailbox');
  }

  private async keyOf(q: Queryable, userId: number, mailboxId: number, mech: string): Promise<Buffer | null> {
    const r = await q.query<{ key: Buffer }>('SELECT key FROM urlauth_keys WHERE user_id = $1 AND mailbox_id = $2 AND mech = $3', [userId, mailboxId, mech]);
    return r.rows[0]?.key ?? null;
  }

  urlAuthKey(userId: number, mailboxId: number, mech: string, create: boolean): Promise<Buffer | null> {
    return this.run(async () => {
      await this.ownMailbox(this.db, userId, mailboxId);
      const have = await this.keyOf(this.db, userId, mailboxId, mech);
      if (have || !create) return have;
      return this.write(userId, async (tx) => {
        await this.ownMailbox(tx, userId, mailboxId);
        // Another session (or node) may have created it since the read above: keep the first one (its URLs stay valid).
        await tx.query('INSERT INTO urlauth_keys (user_id, mailbox_id, mech, key, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING', [
          userId,
          mailboxId,
          mech,
          randomBytes(PG_URLAUTH_KEY_BYTES),
          Date.now(),
        ]);
        return (await this.keyOf(tx, userId, mailboxId, mech))!;
      });
    });
  }

  resetUrlAuthKeys(userId: number, mailboxId: number | null, mech: string): Promise<void> {
    return this.run(async () => {
      await this.write(userId, async (tx, emit) => {
        // Journalled and published after the commit: sessions with the mailbox selected are told (RFC 4467 §6.3).
        if (mailboxId === null) {
          await tx.query('DELETE FROM urlauth_keys WHERE user_id = $1', [userId]);
        } else {
          await this.ownMailbox(tx, userId, mailboxId);
          await tx.query(
            `INSERT INTO urlauth_keys (user_id, mailbox_id, mech, key, created_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (user_id, mailbox_id, mech) DO UPDATE SET key = excluded.key, created_at = excluded.created_at`,
            [userId, mailboxId, mech, randomBytes(PG_URLAUTH_KEY_BYTES), Date.now()],
          );
        }
        emit({ kind: 'urlauth-key', userId, mailboxId });
      });
    });
  }
}
