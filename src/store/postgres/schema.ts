// Schema migrations of the PostgreSQL store. Each migration runs once, in
// order, in its own transaction, under a transaction-level advisory lock so
// that several nodes starting at once migrate one after the other; the
// names applied are kept in schema_migrations. Append new migrations at the
// end with a unique name; never edit one that has shipped.
//
// Layout (mirrors the SQLite store, src/store/sqlite/schema.ts):
// - users.journal_seq: the per-user change counter. Every write transaction
//   locks its user's row first (FOR UPDATE), so per-user journal sequence
//   numbers are handed out in commit order (journal.ts) and lock order is
//   always user row, then mailbox rows: no deadlock between writers.
// - mailboxes: UIDNEXT and HIGHESTMODSEQ counters (RFC 9051 §2.3.1.1,
//   RFC 7162 §3.1.1), taken in the same transaction as the write; counts
//   maintained by triggers on messages.
// - blobs + blob_chunks: bodies in 256 KiB rows (blobs.ts); blob_text: the
//   full-text index (fulltext.ts).
import type pg from 'pg';

export interface Migration {
  name: string;
  sql: string;
}

/** Bits of messages.sysflags (the same as the SQLite store's). */
export const FLAG_SEEN = 1;
export const FLAG_ANSWERED = 2;
export const FLAG_FLAGGED = 4;
export const FLAG_DELETED = 8;
export const FLAG_DRAFT = 16;

const V1_BASE = `
CREATE TABLE meta (key text PRIMARY KEY, value bigint NOT NULL);
INSERT INTO meta (key, value) VALUES ('uidvalidity_last', 0);

CREATE TABLE users (
  id bigserial PRIMARY KEY,
  name text NOT NULL,
  password_hash text NOT NULL,
  created_at bigint NOT NULL,
  journal_seq bigint NOT NULL DEFAULT 0,
  storage_limit bigint,
  message_limit bigint,
  storage_used bigint NOT NULL DEFAULT 0,
  messages_used bigint NOT NULL DEFAULT 0
);
-- User names are case-insensitive in ASCII (as the SQLite store's COLLATE NOCASE).
CREATE UNIQUE INDEX users_name ON users (lower(name));

CREATE TABLE credentials (
  user_id bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  kind text NOT NULL,
  name text NOT NULL,
  secret text NOT NULL,
  created_at bigint NOT NULL,
  last_used bigint,
  PRIMARY KEY (user_id, kind, name)
);

CREATE TABLE addresses (
  address text PRIMARY KEY,
  user_id bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  created_at bigint NOT NULL
);
CREATE INDEX addresses_user ON addresses (user_id);

CREATE TABLE mailboxes (
  id bigserial PRIMARY KEY,
  user_id bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  name text NOT NULL,
  uid_validity bigint NOT NULL,
  uid_next bigint NOT NULL DEFAULT 1,
  highest_modseq bigint NOT NULL DEFAULT 1,
  recent_uid bigint NOT NULL DEFAULT 0,
  special_use text,
  object_id text NOT NULL UNIQUE,
  msg_count bigint NOT NULL DEFAULT 0,
  unseen_count bigint NOT NULL DEFAULT 0,
  deleted_count bigint NOT NULL DEFAULT 0,
  total_size bigint NOT NULL DEFAULT 0,
  tombstone_floor bigint NOT NULL DEFAULT 0,
  UNIQUE (user_id, name)
);

CREATE TABLE retired_names (
  user_id bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  name text NOT NULL,
  uid_validity bigint NOT NULL,
  PRIMARY KEY (user_id, name)
);

CREATE TABLE subscriptions (
  user_id bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  name text NOT NULL,
  PRIMARY KEY (user_id, name)
);

CREATE TABLE mailbox_keywords (
  mailbox_id bigint NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
  id bigserial,
  lname text NOT NULL,
  name text NOT NULL,
  PRIMARY KEY (mailbox_id, lname)
);

CREATE TABLE blobs (
  id bigserial PRIMARY KEY,
  size bigint NOT NULL,
  structure text,
  header bytea,
  idx_from text, idx_to text, idx_cc text, idx_bcc text, idx_subject text,
  idx_sent_day bigint,
  sort_subject text, sort_from text, sort_to text, sort_cc text, sort_dfrom text, sort_dto text,
  sort_sent bigint, sort_reply boolean NOT NULL DEFAULT false,
  msgid text, refs text, irt text
);

CREATE TABLE blob_chunks (
  blob_id bigint NOT NULL REFERENCES blobs(id) ON DELETE CASCADE,
  seq integer NOT NULL,
  data bytea NOT NULL,
  PRIMARY KEY (blob_id, seq)
);

CREATE TABLE messages (
  mailbox_id bigint NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
  uid bigint NOT NULL,
  blob_id bigint NOT NULL REFERENCES blobs(id),
  sysflags integer NOT NULL,
  keywords text NOT NULL DEFAULT '',
  internal_date bigint NOT NULL,
  internal_tz integer NOT NULL DEFAULT 0,
  save_date bigint,
  size bigint NOT NULL,
  modseq bigint NOT NULL,
  PRIMARY KEY (mailbox_id, uid)
);
CREATE INDEX messages_modseq ON messages (mailbox_id, modseq);
CREATE INDEX messages_blob ON messages (blob_id);

CREATE TABLE expunged (
  mailbox_id bigint NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
  uid bigint NOT NULL,
  modseq bigint NOT NULL,
  PRIMARY KEY (mailbox_id, uid)
);
CREATE INDEX expunged_modseq ON expunged (mailbox_id, modseq);

CREATE TABLE annotations (
  user_id bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  mailbox_id bigint NOT NULL,
  entry text COLLATE "C" NOT NULL,
  value bytea NOT NULL,
  PRIMARY KEY (user_id, mailbox_id, entry)
);

-- Counters of a mailbox and its user's quota usage, kept by the rows' own
-- triggers (the mailbox and user rows are already locked by the writer).
CREATE FUNCTION quire_messages_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    UPDATE mailboxes SET msg_count = msg_count + 1,
      unseen_count = unseen_count + (CASE WHEN NEW.sysflags & ${FLAG_SEEN} = 0 THEN 1 ELSE 0 END),
      deleted_count = deleted_count + (CASE WHEN NEW.sysflags & ${FLAG_DELETED} <> 0 THEN 1 ELSE 0 END),
      total_size = total_size + NEW.size
    WHERE id = NEW.mailbox_id;
    RETURN NEW;
  ELSIF TG_OP = 'DELETE' THEN
    UPDATE mailboxes SET msg_count = msg_count - 1,
      unseen_count = unseen_count - (CASE WHEN OLD.sysflags & ${FLAG_SEEN} = 0 THEN 1 ELSE 0 END),
      deleted_count = deleted_count - (CASE WHEN OLD.sysflags & ${FLAG_DELETED} <> 0 THEN 1 ELSE 0 END),
      total_size = total_size - OLD.size
    WHERE id = OLD.mailbox_id;
    RETURN OLD;
  ELSE
    IF OLD.sysflags <> NEW.sysflags THEN
      UPDATE mailboxes SET
        unseen_count = unseen_count - (CASE WHEN OLD.sysflags & ${FLAG_SEEN} = 0 THEN 1 ELSE 0 END) + (CASE WHEN NEW.sysflags & ${FLAG_SEEN} = 0 THEN 1 ELSE 0 END),
        deleted_count = deleted_count - (CASE WHEN OLD.sysflags & ${FLAG_DELETED} <> 0 THEN 1 ELSE 0 END) + (CASE WHEN NEW.sysflags & ${FLAG_DELETED} <> 0 THEN 1 ELSE 0 END)
      WHERE id = NEW.mailbox_id;
    END IF;
    RETURN NEW;
  END IF;
END $$;
CREATE TRIGGER messages_count AFTER INSERT OR DELETE OR UPDATE OF sysflags ON messages
  FOR EACH ROW EXECUTE FUNCTION quire_messages_count();

-- Quota usage per user (RFC 9208): a copy counts again. A whole mailbox
-- dropped by ON DELETE CASCADE runs the row triggers too.
CREATE FUNCTION quire_messages_quota() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    UPDATE users SET storage_used = storage_used + NEW.size, messages_used = messages_used + 1
    WHERE id = (SELECT user_id FROM mailboxes WHERE id = NEW.mailbox_id);
    RETURN NEW;
  ELSE
    UPDATE users SET storage_used = storage_used - OLD.size, messages_used = messages_used - 1
    WHERE id = (SELECT user_id FROM mailboxes WHERE id = OLD.mailbox_id);
    RETURN OLD;
  END IF;
END $$;
CREATE TRIGGER messages_quota AFTER INSERT OR DELETE ON messages
  FOR EACH ROW EXECUTE FUNCTION quire_messages_quota();

-- The change journal (journal.ts): one row per committed write transaction
-- of a user, its change records as JSON, in per-user sequence order.
CREATE TABLE journal (
  user_id bigint NOT NULL,
  seq bigint NOT NULL,
  at timestamptz NOT NULL DEFAULT now(),
  changes jsonb NOT NULL,
  PRIMARY KEY (user_id, seq)
);
CREATE INDEX journal_at ON journal (at);
`;

// The full-text index (fulltext.ts): the exact lower-cased search text of
// each body, header and body apart. The trigram GIN index is added by
// ensureTrigramIndex when pg_trgm can be created (it is optional).
const V2_FULLTEXT = `
CREATE TABLE blob_text (
  blob_id bigint PRIMARY KEY REFERENCES blobs(id) ON DELETE CASCADE,
  header text NOT NULL,
  body text NOT NULL
);
`;

// POP3 sizes and URLAUTH keys (the SQLite store's V_POP3_SIZE and
// V_URLAUTH_KEYS). blobs.bare_lf: the LF bytes not preceded by CR, so POP3
// gives the exact size of the CRLF form it sends (RFC 1939 §11: size +
// bare_lf) without reading the body; NULL for bodies stored before it
// (maildrop.ts counts those once and keeps the count). urlauth_keys: RFC
// 4467 §2.4 mailbox access keys per user, mailbox and mechanism
// (urlauth-keys.ts), gone with the mailbox and with the user.
const V3_POP3_URLAUTH = `
ALTER TABLE blobs ADD COLUMN bare_lf bigint;
CREATE TABLE urlauth_keys (
  user_id bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  mailbox_id bigint NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
  mech text NOT NULL,
  key bytea NOT NULL,
  created_at bigint NOT NULL,
  PRIMARY KEY (user_id, mailbox_id, mech)
);
CREATE INDEX urlauth_keys_mailbox ON urlauth_keys (mailbox_id);
`;

// v4-thread-ids (issue 15): RFC 8474 §5.2 THREADID (threadids.ts). blobs.thread_id is a body's thread,
// fixed when it is stored; thread_links maps each Message-ID a user's bodies name to the thread that named
// it first. Bodies stored before it keep NULL until first FETCHed or reached by the background pass.
const V4_THREAD_IDS = `
ALTER TABLE blobs ADD COLUMN thread_id bigint;
CREATE INDEX blobs_thread ON blobs (thread_id) WHERE thread_id IS NOT NULL;
CREATE INDEX blobs_unthreaded ON blobs (id) WHERE thread_id IS NULL;
CREATE TABLE thread_links (
  user_id bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  msgid text NOT NULL,
  thread_id bigint NOT NULL,
  PRIMARY KEY (user_id, msgid)
);
`;

export const MIGRATIONS: readonly Migration[] = [
  { name: 'v1-base', sql: V1_BASE },
  { name: 'v2-fulltext', sql: V2_FULLTEXT },
  { name: 'v3-pop3-urlauth', sql: V3_POP3_URLAUTH },
  { name: 'v4-thread-ids', sql: V4_THREAD_IDS },
];

/** The advisory lock key that serialises migrations between nodes (any constant; "quire" in ASCII). */
const MIGRATION_LOCK = 0x7175697265;

/** Applies the migrations not yet applied to the current schema (search_path). */
export async function migrate(client: pg.PoolClient | pg.Client, schema: string): Promise<void> {
  await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
  await client.query(`SET search_path TO ${quoteIdent(schema)}, public`);
  await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`);
  for (const m of MIGRATIONS) {
    await client.query('BEGIN');
    try {
      await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      const done = await client.query('SELECT 1 FROM schema_migrations WHERE name = $1', [m.name]);
      if (done.rowCount === 0) {
        await client.query(m.sql);
        await client.query('INSERT INTO schema_migrations (name) VALUES ($1)', [m.name]);
      }
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }
}

/** A schema name as an SQL identifier (names come from configuration; quoted, never interpolated raw). */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
