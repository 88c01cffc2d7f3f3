// The flag codec is the SQLite store's (src/store/sqlite/flags.ts: the same
// system-flag bits, the same keyword column and limits), so both backends
// validate and spell flags alike. That module loads no database driver.
export { MAX_KEYWORDS_PER_MAILBOX, decodeFlags, encodeKeywords, parseFlags, splitKeywords, type ParsedFlags } from '../sqlite/flags.js';
// Likewise the name rules every writer shares (mailbox names, addresses).
export { checkMailboxName } from '../sqlite/rows.js';
export { normaliseAddress } from '../sqlite/addresses.js';
