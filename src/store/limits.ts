// Limits that every store backend enforces for every writer (IMAP, LMTP, the
// CLI, import). Pure constants: the CLI's config module imports them without
// loading a backend.

/**
 * Default mailbox-count limit per user (config `mailboxes.maxPerUser`): far
 * above any real folder tree (thousands of mailing-list folders), low enough
 * that LIST, the mailbox cache and a scripted CREATE loop stay bounded
 * (issue 10 item 11). INBOX is always allowed.
 */
export const DEFAULT_MAX_MAILBOXES_PER_USER = 10_000;
