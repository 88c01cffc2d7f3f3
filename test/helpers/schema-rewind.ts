// Undo scripts for the SQLite schema migrations that come after V11 (the sort
// keys, schema version 15, the last released version), newest first, so that
// a test can turn a store made by this code into one an older Quire left and
// watch it migrate. Each entry names what its migration added (schema.ts).
const SORT_INDEXES: [string, string][] = [
  ['subject', 'sort_subject'], ['from', 'sort_from'], ['to', 'sort_to'], ['cc', 'sort_cc'], ['dfrom', 'sort_dfrom'],
  ['dto', 'sort_dto'], ['date', 'sort_date'], ['arrival', 'internal_date'], ['size', 'size'],
];

export const UNDO_AFTER_SORT_KEYS = [
  // V_SORT_LARGE: full sort indexes again, and the unconditional key-filling trigger
  'DROP TRIGGER messages_sort_ix_ai', 'DROP TRIGGER mailboxes_sort_indexed',
  ...SORT_INDEXES.map(([k]) => `DROP INDEX messages_sort_${k}`),
  'ALTER TABLE messages DROP COLUMN sort_ix', 'ALTER TABLE mailboxes DROP COLUMN sort_indexed',
  ...SORT_INDEXES.map(([k, col]) => `CREATE INDEX messages_sort_${k} ON messages (mailbox_id, ${col}, uid)`),
  'DROP TRIGGER messages_sort_ai',
  `CREATE TRIGGER messages_sort_ai AFTER INSERT ON messages BEGIN
  UPDATE messages SET (sort_subject, sort_from, sort_to, sort_cc, sort_dfrom, sort_dto, sort_date) =
    (SELECT subject, addr_from, addr_to, addr_cc, disp_from, disp_to, coalesce(sent, NEW.internal_date)
     FROM sort_keys WHERE blob_id = NEW.blob_id)
  WHERE mailbox_id = NEW.mailbox_id AND uid = NEW.uid;
END`,
  // V_THREAD_ANSWERS
  ...['thread_msgs_answers_ai', 'thread_msgs_answers_ad', 'thread_msgs_answers_au', 'messages_answers_ai', 'messages_answers_ad', 'messages_answers_au',
    'mailboxes_answers_au', 'mailboxes_answers_ad'].map((t) => `DROP TRIGGER ${t}`),
  'DROP TABLE thread_answers',
  // V_THREAD_IDS (dropped with thread_keys below: its indexes and column)
  'DROP TABLE thread_links', 'DROP INDEX thread_keys_thread', 'DROP INDEX thread_keys_unthreaded',
  // V_URLAUTH_KEYS
  'DROP TRIGGER mailboxes_urlauth_keys_ad', 'DROP TABLE urlauth_keys',
  // V_THREAD_INDEX
  'DROP TRIGGER messages_thread_ai', 'DROP TRIGGER messages_thread_ad', 'DROP TRIGGER blobs_thread_keys_ad',
  'DROP TABLE thread_msgs', 'DROP TABLE thread_keys', 'DROP TABLE thread_subjects', 'DROP TABLE thread_msgids',
  // V_POP3_SIZE
  'ALTER TABLE blobs DROP COLUMN bare_lf',
].join('; ') + ';';

/** V11 (the sort keys) itself. */
export const UNDO_SORT_KEYS = [
  'DROP TRIGGER messages_sort_ai', 'DROP TRIGGER blobs_sort_keys_ad', 'DROP TABLE sort_keys',
  ...['subject', 'from', 'to', 'cc', 'dfrom', 'dto', 'date', 'arrival', 'size', 'pending'].map((k) => `DROP INDEX messages_sort_${k}`),
  ...['subject', 'from', 'to', 'cc', 'dfrom', 'dto', 'date'].map((k) => `ALTER TABLE messages DROP COLUMN sort_${k}`),
].join('; ') + ';';
