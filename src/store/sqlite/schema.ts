// Schema of the embedded SQLite store and its migrations, in one place.
// The schema version lives in `PRAGMA user_version`; MIGRATIONS[i] moves a
// database from version i to i + 1 and runs inside one transaction.
//
// Derived state is maintained by triggers so no code path can forget it:
// per-mailbox counters (messages, unseen, deleted, total size) for STATUS,
// and blob reference counts for COPY sharing bodies. A blob whose refcount
// drops to zero moves to blob_trash in the same transaction; its file is
// unlinked after the commit (and again at open if the process died first).

import type Database from 'better-sqlite3';
import { FTS_SCHEMA, moveFullTextOut } from './fulltext.js';

/** System flag bits in messages.sysflags. */
export const FLAG_SEEN = 1;
export const FLAG_ANSWERED = 2;
export const FLAG_FLAGGED = 4;
export const FLAG_DELETED = 8;
export const FLAG_DRAFT = 16;

const V1 = `
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value INTEGER NOT NULL
) WITHOUT ROWID;

-- User names compare case-insensitively (ASCII, SQLite NOCASE): "Alice" and
-- "alice" are the same account.
CREATE TABLE users (
  id            INTEGER PRIMARY KEY,
  name          TEXT NOT NULL UNIQUE COLLATE NOCASE,
  password_hash TEXT NOT NULL,
  created_at    INTEGER NOT NULL
);

CREATE TABLE mailboxes (
  id             INTEGER PRIMARY KEY,
  user_id        INTEGER NOT NULL REFERENCES users(id),
  name           TEXT NOT NULL,
  uid_validity   INTEGER NOT NULL,
  uid_next       INTEGER NOT NULL DEFAULT 1,
  highest_modseq INTEGER NOT NULL DEFAULT 1,
  recent_uid     INTEGER NOT NULL DEFAULT 0,
  special_use    TEXT,
  msg_count      INTEGER NOT NULL DEFAULT 0,
  unseen_count   INTEGER NOT NULL DEFAULT 0,
  deleted_count  INTEGER NOT NULL DEFAULT 0,
  total_size     INTEGER NOT NULL DEFAULT 0,
  UNIQUE (user_id, name)
);

-- Highest UIDVALIDITY a name has carried before it was deleted or renamed
-- away, so a mailbox renamed onto that name can be given a greater one.
CREATE TABLE retired_names (
  user_id      INTEGER NOT NULL,
  name         TEXT NOT NULL,
  uid_validity INTEGER NOT NULL,
  PRIMARY KEY (user_id, name)
) WITHOUT ROWID;

-- RFC 9051 §6.3.9: independent of mailbox existence.
CREATE TABLE subscriptions (
  user_id INTEGER NOT NULL REFERENCES users(id),
  name    TEXT NOT NULL,
  PRIMARY KEY (user_id, name)
) WITHOUT ROWID;

CREATE TABLE blobs (
  id       INTEGER PRIMARY KEY,
  size     INTEGER NOT NULL,
  refcount INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE blob_trash (
  id INTEGER PRIMARY KEY
);

-- Blob ids are handed out in blocks so files can be written before the
-- transaction that references them commits. A block whose owner (process +
-- store instance) is gone is scanned at open for files that never got a row.
CREATE TABLE blob_reservations (
  start INTEGER PRIMARY KEY,
  end   INTEGER NOT NULL,
  owner TEXT NOT NULL
);

-- keywords: the mailbox's spelling of each keyword, space separated, sorted
-- case-insensitively; '' when none.
CREATE TABLE messages (
  mailbox_id    INTEGER NOT NULL REFERENCES mailboxes(id),
  uid           INTEGER NOT NULL,
  blob_id       INTEGER NOT NULL REFERENCES blobs(id),
  sysflags      INTEGER NOT NULL DEFAULT 0,
  keywords      TEXT NOT NULL DEFAULT '',
  internal_date INTEGER NOT NULL,
  size          INTEGER NOT NULL,
  modseq        INTEGER NOT NULL,
  PRIMARY KEY (mailbox_id, uid)
) WITHOUT ROWID;
CREATE INDEX messages_modseq ON messages (mailbox_id, modseq);
CREATE INDEX messages_blob ON messages (blob_id);

-- Keywords known in a mailbox, in first-seen spelling and order.
CREATE TABLE mailbox_keywords (
  id         INTEGER PRIMARY KEY,
  mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id),
  lname      TEXT NOT NULL,
  name       TEXT NOT NULL,
  UNIQUE (mailbox_id, lname)
);

-- Expunge tombstones (for QRESYNC VANISHED (EARLIER)).
CREATE TABLE expunged (
  mailbox_id INTEGER NOT NULL,
  uid        INTEGER NOT NULL,
  modseq     INTEGER NOT NULL,
  PRIMARY KEY (mailbox_id, uid)
) WITHOUT ROWID;

CREATE TRIGGER messages_ai AFTER INSERT ON messages BEGIN
  UPDATE mailboxes SET
    msg_count = msg_count + 1,
    unseen_count = unseen_count + ((NEW.sysflags & ${FLAG_SEEN}) = 0),
    deleted_count = deleted_count + ((NEW.sysflags & ${FLAG_DELETED}) != 0),
    total_size = total_size + NEW.size
  WHERE id = NEW.mailbox_id;
  UPDATE blobs SET refcount = refcount + 1 WHERE id = NEW.blob_id;
END;

CREATE TRIGGER messages_ad AFTER DELETE ON messages BEGIN
  UPDATE mailboxes SET
    msg_count = msg_count - 1,
    unseen_count = unseen_count - ((OLD.sysflags & ${FLAG_SEEN}) = 0),
    deleted_count = deleted_count - ((OLD.sysflags & ${FLAG_DELETED}) != 0),
    total_size = total_size - OLD.size
  WHERE id = OLD.mailbox_id;
  UPDATE blobs SET refcount = refcount - 1 WHERE id = OLD.blob_id;
END;

CREATE TRIGGER messages_au_flags AFTER UPDATE OF sysflags ON messages
WHEN OLD.sysflags != NEW.sysflags BEGIN
  UPDATE mailboxes SET
    unseen_count = unseen_count - ((OLD.sysflags & ${FLAG_SEEN}) = 0) + ((NEW.sysflags & ${FLAG_SEEN}) = 0),
    deleted_count = deleted_count - ((OLD.sysflags & ${FLAG_DELETED}) != 0) + ((NEW.sysflags & ${FLAG_DELETED}) != 0)
  WHERE id = NEW.mailbox_id;
END;

CREATE TRIGGER blobs_unreferenced AFTER UPDATE OF refcount ON blobs
WHEN NEW.refcount <= 0 BEGIN
  DELETE FROM blobs WHERE id = NEW.id;
  INSERT OR IGNORE INTO blob_trash (id) VALUES (NEW.id);
END;

INSERT INTO meta (key, value) VALUES ('uidvalidity_last', 0), ('blob_next', 1);
`;

// V2: the MIME part tree (src/mime serializeStructure) is computed once at
// APPEND and kept with the body it describes, so FETCH ENVELOPE/BODYSTRUCTURE
// and section offsets never re-parse the message.
const V2 = `
ALTER TABLE blobs ADD COLUMN structure TEXT;
`;

// V3: QRESYNC (RFC 7162) needs expunged UIDs by modseq; tombstones are
// pruned past EXPUNGE_TOMBSTONES_KEPT per mailbox and the highest pruned
// modseq is remembered, so a resync from before it knows to fall back.
const V3 = `
ALTER TABLE mailboxes ADD COLUMN tombstone_floor INTEGER NOT NULL DEFAULT 0;
CREATE INDEX expunged_modseq ON expunged (mailbox_id, modseq);
`;

// V4: addresses and aliases a user owns ("@domain" = the domain's catch-all),
// and per-user quota (RFC 9208). Usage is kept by triggers like the mailbox
// counters, so no code path can forget it; the limit itself is checked by a
// per-connection trigger (see addresses.ts) so a MOVE can be exempted.
const V4 = `
CREATE TABLE addresses (
  address    TEXT PRIMARY KEY COLLATE NOCASE,
  user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  created_at INTEGER NOT NULL
);
CREATE INDEX addresses_user ON addresses (user_id);

CREATE TABLE quotas (
  user_id       INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
  storage_limit INTEGER,
  message_limit INTEGER,
  storage_used  INTEGER NOT NULL DEFAULT 0,
  messages_used INTEGER NOT NULL DEFAULT 0
);
INSERT INTO quotas (user_id, storage_used, messages_used)
  SELECT u.id,
    (SELECT coalesce(sum(b.total_size), 0) FROM mailboxes b WHERE b.user_id = u.id),
    (SELECT coalesce(sum(b.msg_count), 0) FROM mailboxes b WHERE b.user_id = u.id)
  FROM users u;

CREATE TRIGGER users_quota_ai AFTER INSERT ON users BEGIN
  INSERT INTO quotas (user_id) VALUES (NEW.id);
END;

CREATE TRIGGER messages_quota_ai AFTER INSERT ON messages BEGIN
  UPDATE quotas SET storage_used = storage_used + NEW.size, messages_used = messages_used + 1
  WHERE user_id = (SELECT user_id FROM mailboxes WHERE id = NEW.mailbox_id);
END;

CREATE TRIGGER messages_quota_ad AFTER DELETE ON messages BEGIN
  UPDATE quotas SET storage_used = storage_used - OLD.size, messages_used = messages_used - 1
  WHERE user_id = (SELECT user_id FROM mailboxes WHERE id = OLD.mailbox_id);
END;
`;

// V5: the SEARCH header index (src/store/structure.ts describeMessage), kept
// with the body like the structure, so FROM/TO/CC/BCC/SUBJECT/SENT* searches
// never open message files. NULL for bodies stored before V5.
const V5 = `
ALTER TABLE blobs ADD COLUMN idx_from TEXT;
ALTER TABLE blobs ADD COLUMN idx_to TEXT;
ALTER TABLE blobs ADD COLUMN idx_cc TEXT;
ALTER TABLE blobs ADD COLUMN idx_bcc TEXT;
ALTER TABLE blobs ADD COLUMN idx_subject TEXT;
ALTER TABLE blobs ADD COLUMN idx_sent_day INTEGER;
ALTER TABLE blobs ADD COLUMN indexed INTEGER NOT NULL DEFAULT 0;
`;

// V6: the top-level header bytes (up to MAX_STORED_HEADER), so a message list
// (BODY.PEEK[HEADER.FIELDS (...)]) needs no file reads. NULL: read the file.
const V6 = `
ALTER TABLE blobs ADD COLUMN header BLOB;
`;

// V7: the full-text index for SEARCH BODY/TEXT (see fulltext.ts). Bodies
// stored before it are indexed in the background (blobs.fts = 0 meanwhile:
// SEARCH reads them).
const V7 = FTS_SCHEMA;

// V8: partial indexes over the few messages with a flag that clients search
// for and the server looks up: \Flagged (SEARCH FLAGGED), no \Seen (UNSEEN,
// SELECT's first unseen), \Deleted (EXPUNGE). Each holds only the messages in
// its set, so it stays small and costs nothing on STORE of other flags. The
// conditions are spelled exactly as search.ts writes them: SQLite uses a
// partial index only for a query that contains its WHERE term.
const V8 = `
CREATE INDEX messages_flagged ON messages (mailbox_id, uid) WHERE (sysflags & ${FLAG_FLAGGED}) != 0;
CREATE INDEX messages_unseen ON messages (mailbox_id, uid) WHERE (sysflags & ${FLAG_SEEN}) = 0;
CREATE INDEX messages_deleted ON messages (mailbox_id, uid) WHERE (sysflags & ${FLAG_DELETED}) != 0;
`;

// V9: the bodies waiting for the full-text index, found without scanning the
// blobs table (the indexing thread asks for them after every APPEND).
const V9 = `
CREATE INDEX blobs_fts_pending ON blobs (id) WHERE fts = 0;
`;

// V10: FTS5 tuning for a mail store, where bodies are deleted in bulk (EXPUNGE,
// DELETE) on the server's thread. By default a segment with 10% deleted rows
// is rewritten by the DELETE itself, which on a 100k-message index held the
// write lock for 6-22 s at a time; with deletemerge off, deleted rows are
// dropped by the ordinary incremental merges instead. crisismerge at its
// maximum likewise keeps one-off emergency merges (unbounded work) out of
// the indexing thread's short transactions: automerge (incremental, bounded
// by what was written) keeps the segment count down.
const V10 = `
INSERT INTO blob_text (blob_text, rank) VALUES ('deletemerge', 0);
INSERT INTO blob_text (blob_text, rank) VALUES ('crisismerge', 1000);
`;

// harden-app (issue 10 item 8): the SEARCH header index holds FROM/TO/CC/BCC as
// parsed addresses now (structure.ts addressSearchText), not raw text with
// comments. Rows indexed before are marked unindexed: SEARCH reads those
// messages (correct, slower) until `quire doctor --repair` describes them again.
const V_ADDRESS_INDEX = `
UPDATE blobs SET indexed = 0 WHERE indexed = 1;
`;

// V_AUTH (issue 16): per-user credentials besides the password hash, opaque
// to the store and written by src/auth: the SCRAM verifier (kind
// 'scram-sha-256', name ''; RFC 5802 §5.1 StoredKey/ServerKey/salt/iterations)
// and named application passwords (kind 'app'). Users created before this get
// their verifier at their next successful password login or `quire user passwd`.
// IF NOT EXISTS: tests that rewind a store's user_version re-run it on a database that has the table.
const V_AUTH = `
CREATE TABLE IF NOT EXISTS credentials (
  user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  kind       TEXT NOT NULL,
  name       TEXT NOT NULL,
  secret     TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  last_used  INTEGER,
  PRIMARY KEY (user_id, kind, name)
) WITHOUT ROWID;
`;

// V11 (SORT/THREAD, RFC 5256, RFC 5957): the sort and thread keys of a body
// (src/mime/sortkeys.ts) are computed once at APPEND and kept in a narrow
// table beside the body (reading them never walks the body row's overflow
// pages); a trigger copies the sort keys into each message row that
// references the body (APPEND, COPY, MOVE, import alike), where an index per
// key answers SORT ... PARTIAL 1:50 of a 100k-message mailbox from the first
// index entries. sort_date is the sent date, or INTERNALDATE when the message
// has none (RFC 5256 §2.2). Rows stored before V11 have NULL keys and are
// filled in bounded batches (sorting.ts): in the background of a running
// server and before any SORT/THREAD of their mailbox.
const V11 = `
CREATE TABLE sort_keys (
  blob_id  INTEGER PRIMARY KEY,
  subject  TEXT NOT NULL,
  addr_from TEXT NOT NULL,
  addr_to  TEXT NOT NULL,
  addr_cc  TEXT NOT NULL,
  disp_from TEXT NOT NULL,
  disp_to  TEXT NOT NULL,
  sent     INTEGER,
  reply    INTEGER NOT NULL,
  msgid    TEXT,
  refs     TEXT NOT NULL,
  irt      TEXT
);
CREATE TRIGGER blobs_sort_keys_ad AFTER DELETE ON blobs BEGIN
  DELETE FROM sort_keys WHERE blob_id = OLD.id;
END;
ALTER TABLE messages ADD COLUMN sort_subject TEXT;
ALTER TABLE messages ADD COLUMN sort_from TEXT;
ALTER TABLE messages ADD COLUMN sort_to TEXT;
ALTER TABLE messages ADD COLUMN sort_cc TEXT;
ALTER TABLE messages ADD COLUMN sort_dfrom TEXT;
ALTER TABLE messages ADD COLUMN sort_dto TEXT;
ALTER TABLE messages ADD COLUMN sort_date INTEGER;
CREATE INDEX messages_sort_subject ON messages (mailbox_id, sort_subject, uid);
CREATE INDEX messages_sort_from ON messages (mailbox_id, sort_from, uid);
CREATE INDEX messages_sort_to ON messages (mailbox_id, sort_to, uid);
CREATE INDEX messages_sort_cc ON messages (mailbox_id, sort_cc, uid);
CREATE INDEX messages_sort_dfrom ON messages (mailbox_id, sort_dfrom, uid);
CREATE INDEX messages_sort_dto ON messages (mailbox_id, sort_dto, uid);
CREATE INDEX messages_sort_date ON messages (mailbox_id, sort_date, uid);
CREATE INDEX messages_sort_arrival ON messages (mailbox_id, internal_date, uid);
CREATE INDEX messages_sort_size ON messages (mailbox_id, size, uid);
CREATE INDEX messages_sort_pending ON messages (blob_id) WHERE sort_date IS NULL;
CREATE TRIGGER messages_sort_ai AFTER INSERT ON messages BEGIN
  UPDATE messages SET (sort_subject, sort_from, sort_to, sort_cc, sort_dfrom, sort_dto, sort_date) =
    (SELECT subject, addr_from, addr_to, addr_cc, disp_from, disp_to, coalesce(sent, NEW.internal_date)
     FROM sort_keys WHERE blob_id = NEW.blob_id)
  WHERE mailbox_id = NEW.mailbox_id AND uid = NEW.uid;
END;
`;


// V_OBJECT_ATTRS (issue 15): what IMAP extensions report about messages and mailboxes.
// internal_tz: the INTERNALDATE's zone in minutes east of UTC (RFC 9051 §2.3.3:
// the zone APPEND gave, LMTP's local zone, an import source's); messages
// stored before it keep 0 (+0000, what was returned until then).
// save_date: when the message came into this mailbox (RFC 8514 §3: APPEND,
// COPY, MOVE, delivery, import); NULL for messages stored before it, which
// answer their internal date instead.
// object_id: the mailbox's MAILBOXID (RFC 8474 §4): random, kept across
// RENAME, never reused (the row id could be reused after a DELETE).
const V_OBJECT_ATTRS = `
ALTER TABLE messages ADD COLUMN internal_tz INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN save_date INTEGER;
ALTER TABLE mailboxes ADD COLUMN object_id TEXT;
UPDATE mailboxes SET object_id = 'F' || lower(hex(randomblob(12)));
CREATE UNIQUE INDEX mailboxes_object_id ON mailboxes (object_id);
`;

// V_ANNOTATIONS (issue 15): RFC 5464 annotations, per user, on a mailbox (mailbox_id) or on the
// server (mailbox_id 0). Keyed by mailbox id, so they follow RENAME; DELETE
// removes them with the mailbox's rows. /private/specialuse is not stored
// here: it is mailboxes.special_use.
const V_ANNOTATIONS = `
CREATE TABLE annotations (
  user_id    INTEGER NOT NULL,
  mailbox_id INTEGER NOT NULL,
  entry      TEXT NOT NULL,
  value      BLOB NOT NULL,
  PRIMARY KEY (user_id, mailbox_id, entry)
) WITHOUT ROWID;
`;

// V_POP3_SIZE (issue 17): bare_lf, the number of LF bytes not preceded by CR
// in a body, so that POP3 gives the exact size of the CRLF form it sends
// (RFC 1939 §11: size + bare_lf) without reading the body. NULL for bodies
// stored before it: counted from the file when a POP3 session first lists
// them, and kept.
const V_POP3_SIZE = `
ALTER TABLE blobs ADD COLUMN bare_lf INTEGER;
`;

// V_THREAD_INDEX (issue 14): the thread index (src/store/sqlite/threading.ts).
// Every Message-ID and base subject a body names is interned once
// (thread_msgids, thread_subjects); a body's thread_keys row holds its own
// id, its reference list (References, or In-Reply-To without them: RFC 5256
// §4 step 1.A) as little-endian 32-bit ids, its base subject's id (0 =
// empty), whether that subject was a reply (§4 step 5) and its sent date.
// It is written with the sort keys (at APPEND, and by the sort keys'
// backfill for bodies stored before them). thread_msgs is the same per
// message, keyed in THREAD's order (sent date or INTERNALDATE, RFC 5256
// §2.2, then UID), so THREAD of a 100k-message mailbox is one sequential
// read of a narrow table; triggers keep it as messages come and go (APPEND,
// COPY, MOVE, EXPUNGE, import alike). Interned ids are never deleted (a
// later message may name them again).
const V_THREAD_INDEX = `
CREATE TABLE thread_msgids (
  id    INTEGER PRIMARY KEY,
  msgid TEXT NOT NULL UNIQUE
);
CREATE TABLE thread_subjects (
  id      INTEGER PRIMARY KEY,
  subject TEXT NOT NULL UNIQUE
);
CREATE TABLE thread_keys (
  blob_id INTEGER PRIMARY KEY,
  sent    INTEGER,
  subj    INTEGER NOT NULL,
  reply   INTEGER NOT NULL,
  msgid   INTEGER,
  refs    BLOB NOT NULL
);
CREATE TRIGGER blobs_thread_keys_ad AFTER DELETE ON blobs BEGIN
  DELETE FROM thread_keys WHERE blob_id = OLD.id;
END;
CREATE TABLE thread_msgs (
  mailbox_id INTEGER NOT NULL,
  date       INTEGER NOT NULL,
  uid        INTEGER NOT NULL,
  subj       INTEGER NOT NULL,
  reply      INTEGER NOT NULL,
  msgid      INTEGER,
  refs       BLOB NOT NULL,
  PRIMARY KEY (mailbox_id, date, uid)
) WITHOUT ROWID;
CREATE UNIQUE INDEX thread_msgs_uid ON thread_msgs (mailbox_id, uid);
CREATE TRIGGER messages_thread_ai AFTER INSERT ON messages BEGIN
  INSERT OR REPLACE INTO thread_msgs (mailbox_id, date, uid, subj, reply, msgid, refs)
    SELECT NEW.mailbox_id, coalesce(t.sent, NEW.internal_date), NEW.uid, t.subj, t.reply, t.msgid, t.refs
    FROM thread_keys t WHERE t.blob_id = NEW.blob_id;
END;
CREATE TRIGGER messages_thread_ad AFTER DELETE ON messages BEGIN
  DELETE FROM thread_msgs WHERE mailbox_id = OLD.mailbox_id AND uid = OLD.uid;
END;
`;

// V_URLAUTH_KEYS (issue 15): RFC 4467 §2.4 mailbox access keys, per user,
// mailbox and URLAUTH mechanism (only INTERNAL today). Created by the first
// GENURLAUTH of a mailbox, replaced by RESETKEY <mailbox>, removed by RESETKEY;
// the trigger drops a deleted mailbox's keys, so a later mailbox given the
// same row id never inherits them (its URLs would validate again otherwise).
const V_URLAUTH_KEYS = `
CREATE TABLE urlauth_keys (
  user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  mailbox_id INTEGER NOT NULL,
  mech       TEXT NOT NULL,
  key        BLOB NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (user_id, mailbox_id, mech)
) WITHOUT ROWID;
CREATE TRIGGER mailboxes_urlauth_keys_ad AFTER DELETE ON mailboxes BEGIN
  DELETE FROM urlauth_keys WHERE mailbox_id = OLD.id;
END;
`;

// V_THREAD_IDS (issue 15): RFC 8474 §5.2 THREADID. thread_keys.thread_id is
// a body's thread (so every message with its EMAILID has the same THREADID),
// set when it is delivered and never changed (§5.2 "MUST NOT change ... once
// reported"); NULL for bodies stored before it until the background backfill
// (threadids.ts) reaches them, in blob id (arrival) order. thread_links maps
// each Message-ID a user's bodies name (their own and their references) to
// the thread that named it first: a new body joins the thread of its nearest
// reference, else of a body that already referred to it, else founds one
// numbered by its own blob id (never reused). Two threads a later message
// links are not merged: each keeps its id.
const V_THREAD_IDS = `
ALTER TABLE thread_keys ADD COLUMN thread_id INTEGER;
CREATE INDEX thread_keys_thread ON thread_keys (thread_id) WHERE thread_id IS NOT NULL;
CREATE INDEX thread_keys_unthreaded ON thread_keys (blob_id) WHERE thread_id IS NULL;
CREATE TABLE thread_links (
  user_id   INTEGER NOT NULL,
  msgid     INTEGER NOT NULL,
  thread_id INTEGER NOT NULL,
  PRIMARY KEY (user_id, msgid)
) WITHOUT ROWID;
`;

// V_THREAD_ANSWERS (issue 14): whole-mailbox THREAD answers kept across
// restarts (threading.ts keptAnswer), as Dovecot keeps its thread index on
// disk: per mailbox and algorithm, the forest (src/store/threading.ts
// ThreadForest: its nodes as little-endian 32-bit words) of the exact set of
// messages it was computed for (UIDVALIDITY, UIDNEXT, message count). A row is
// read only when the mailbox row still has those three values; triggers drop
// a mailbox's rows besides whenever its messages or their thread index rows
// come or go (APPEND, COPY/MOVE in, EXPUNGE, import, the CLI), its UIDVALIDITY
// changes or it is deleted, so no stale answer outlives the change that made
// it stale. Flag changes touch none of this. Derived data: written without an
// fsync by the serving thread's writer after the search thread computed it.
const V_THREAD_ANSWERS = `
CREATE TABLE thread_answers (
  id           INTEGER PRIMARY KEY,
  mailbox_id   INTEGER NOT NULL,
  alg          TEXT NOT NULL,
  uid_validity INTEGER NOT NULL,
  uid_next     INTEGER NOT NULL,
  msg_count    INTEGER NOT NULL,
  roots        INTEGER NOT NULL,
  nodes        BLOB NOT NULL,
  UNIQUE (mailbox_id, alg)
);
CREATE TRIGGER thread_msgs_answers_ai AFTER INSERT ON thread_msgs BEGIN
  DELETE FROM thread_answers WHERE mailbox_id = NEW.mailbox_id;
END;
CREATE TRIGGER thread_msgs_answers_ad AFTER DELETE ON thread_msgs BEGIN
  DELETE FROM thread_answers WHERE mailbox_id = OLD.mailbox_id;
END;
CREATE TRIGGER thread_msgs_answers_au AFTER UPDATE ON thread_msgs BEGIN
  DELETE FROM thread_answers WHERE mailbox_id IN (OLD.mailbox_id, NEW.mailbox_id);
END;
CREATE TRIGGER messages_answers_ai AFTER INSERT ON messages BEGIN
  DELETE FROM thread_answers WHERE mailbox_id = NEW.mailbox_id;
END;
CREATE TRIGGER messages_answers_ad AFTER DELETE ON messages BEGIN
  DELETE FROM thread_answers WHERE mailbox_id = OLD.mailbox_id;
END;
CREATE TRIGGER messages_answers_au AFTER UPDATE OF mailbox_id, uid, sort_subject, sort_date ON messages BEGIN
  DELETE FROM thread_answers WHERE mailbox_id IN (OLD.mailbox_id, NEW.mailbox_id);
END;
CREATE TRIGGER mailboxes_answers_au AFTER UPDATE OF uid_validity ON mailboxes BEGIN
  DELETE FROM thread_answers WHERE mailbox_id = OLD.id;
END;
CREATE TRIGGER mailboxes_answers_ad AFTER DELETE ON mailboxes BEGIN
  DELETE FROM thread_answers WHERE mailbox_id = OLD.id;
END;
`;

// V_SORT_LARGE (issue 11): what an inserted or deleted message row costs.
// Message rows come with their sort keys (APPEND, COPY, MOVE, delivery: from
// the body just described or from the source row); the trigger that filled
// them in by an UPDATE right after the INSERT runs only for rows inserted
// without them (import, copies of rows stored before V11). And the nine sort
// indexes hold only the rows of mailboxes of SORT_INDEX_MIN_MESSAGES or more
// (messages.sort_ix = 1): below that a SORT reads the mailbox's rows and
// sorts them (a millisecond), and every APPEND, COPY and EXPUNGE there no
// longer writes nine index pages (measured: about 300 µs of a row's 450-500
// on the serving thread, and half of its WAL pages). mailboxes.sort_indexed:
// 0 its rows are not in the sort indexes; 1 new rows go in and older ones
// are being put in (sorting.ts indexMailboxSort); 2 all are in. A mailbox
// that shrinks again stays indexed.
export const SORT_INDEX_MIN_MESSAGES = 2_000;
const SORT_INDEX_KEYS: [string, string][] = [
  ['subject', 'sort_subject'], ['from', 'sort_from'], ['to', 'sort_to'], ['cc', 'sort_cc'], ['dfrom', 'sort_dfrom'],
  ['dto', 'sort_dto'], ['date', 'sort_date'], ['arrival', 'internal_date'], ['size', 'size'],
];
const V_SORT_LARGE = `
DROP TRIGGER messages_sort_ai;
CREATE TRIGGER messages_sort_ai AFTER INSERT ON messages WHEN NEW.sort_date IS NULL BEGIN
  UPDATE messages SET (sort_subject, sort_from, sort_to, sort_cc, sort_dfrom, sort_dto, sort_date) =
    (SELECT subject, addr_from, addr_to, addr_cc, disp_from, disp_to, coalesce(sent, NEW.internal_date)
     FROM sort_keys WHERE blob_id = NEW.blob_id)
  WHERE mailbox_id = NEW.mailbox_id AND uid = NEW.uid;
END;
${SORT_INDEX_KEYS.map(([k]) => `DROP INDEX messages_sort_${k};`).join('\n')}
ALTER TABLE messages ADD COLUMN sort_ix INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN sort_indexed INTEGER NOT NULL DEFAULT 0;
UPDATE mailboxes SET sort_indexed = 2 WHERE msg_count >= ${SORT_INDEX_MIN_MESSAGES};
UPDATE messages SET sort_ix = 1 WHERE mailbox_id IN (SELECT id FROM mailboxes WHERE sort_indexed = 2);
${SORT_INDEX_KEYS.map(([k, col]) => `CREATE INDEX messages_sort_${k} ON messages (mailbox_id, ${col}, uid) WHERE sort_ix = 1;`).join('\n')}
CREATE TRIGGER messages_sort_ix_ai AFTER INSERT ON messages
WHEN NEW.sort_ix = 0 AND (SELECT sort_indexed FROM mailboxes WHERE id = NEW.mailbox_id) > 0 BEGIN
  UPDATE messages SET sort_ix = 1 WHERE mailbox_id = NEW.mailbox_id AND uid = NEW.uid;
END;
CREATE TRIGGER mailboxes_sort_indexed AFTER UPDATE OF msg_count ON mailboxes
WHEN NEW.sort_indexed = 0 AND NEW.msg_count >= ${SORT_INDEX_MIN_MESSAGES} BEGIN
  UPDATE mailboxes SET sort_indexed = 1 WHERE id = NEW.id;
END;
`;

// Append-only: a store at version n runs MIGRATIONS[n..] at its next open, so
// a migration never moves once released (the last release ended at V11, schema
// version 15). Tests that rewind a store undo the later ones first
// (test/helpers/schema-rewind.ts).
export const MIGRATIONS: readonly string[] = [V1, V2, V3, V4, V5, V6, V7, V8, V9, V10, V_ADDRESS_INDEX, V_AUTH, V_OBJECT_ATTRS, V_ANNOTATIONS, V11, V_POP3_SIZE, V_THREAD_INDEX, V_URLAUTH_KEYS, V_THREAD_IDS, V_THREAD_ANSWERS, V_SORT_LARGE];
/** The schema version a store has right after V11 (the sort keys): the version of the last release. */
export const SORT_KEYS_VERSION = MIGRATIONS.indexOf(V11) + 1;
export const SCHEMA_VERSION = MIGRATIONS.length;

/** Brings the database to SCHEMA_VERSION; refuses a database from a newer Quire. */
export function migrate(db: Database.Database): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > SCHEMA_VERSION) {
    throw new Error(`database schema version ${current} is newer than this Quire (${SCHEMA_VERSION})`);
  }
  for (let v = current; v < SCHEMA_VERSION; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    }).immediate();
  }
  // The full-text index out of this database into its own file (fulltext.ts): at every open, idempotent.
  moveFullTextOut(db);
}
