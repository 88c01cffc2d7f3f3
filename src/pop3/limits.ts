// Per-connection limits of the POP3 listener, each with its reason. The
// admin-facing ones (connections, bad commands, pre-login timeout) come from
// the shared server limits in the configuration; these are protocol-fixed.

/**
 * Longest command line in bytes, CRLF included. RFC 2449 §4 requires at least
 * 255; we allow some room for long user names and SASL initial responses,
 * still small enough that nothing is buffered for an unauthenticated client.
 */
export const POP3_MAX_LINE_LENGTH = 1024;

/**
 * Longest SASL continuation line (RFC 5034 §4): unlike commands these are not
 * bound by RFC 2449's 255 octets; OAuth bearer tokens (RFC 7628) run to a few KiB.
 */
export const POP3_MAX_SASL_LINE_LENGTH = 16 * 1024;

/** Most challenge/response rounds of one AUTH (PLAIN needs one, SCRAM two). */
export const POP3_MAX_SASL_ROUNDS = 5;

/**
 * Most commands one connection may issue. A full download of a 100k-message
 * maildrop with UIDL, LIST, RETR and DELE per message is about 300k; a
 * connection that goes on past this is not a mail client.
 */
export const POP3_MAX_COMMANDS_PER_CONNECTION = 1_000_000;

/** Invalid or unknown commands tolerated before authentication (a real client sends none, or one probing CAPA). */
export const POP3_PRE_AUTH_MAX_BAD = 5;

/**
 * Unprocessed pipelined input (bytes) held before we stop reading from the
 * socket until the backlog is handled (RFC 2449 §6.6 PIPELINING: the server
 * processes each command in turn; TCP flow control does the rest).
 */
export const POP3_MAX_PIPELINE_BACKLOG = 64 * 1024;

/** RFC 1939 §3: the inactivity autologout timer MUST be at least 10 minutes. */
export const POP3_IDLE_TIMEOUT_MS = 10 * 60_000;

/**
 * How long a client may leave a response unread (the socket not draining)
 * before it is disconnected: the same 10 minutes, counted while we wait to write.
 */
export const POP3_OUTPUT_STALL_TIMEOUT_MS = 10 * 60_000;

/** Chunk size when streaming a message to the client. */
export const POP3_STREAM_CHUNK = 512 * 1024;

/** Messages flagged or expunged per store call in the UPDATE state (keeps each transaction and event-loop turn short). */
export const POP3_UPDATE_BATCH = 1000;

/** Users whose last login time is remembered for LOGIN-DELAY (least recently used dropped). */
export const POP3_LOGIN_DELAY_TRACKED = 100_000;

/** Longest message-number argument in digits (RFC 1939 §3 msg numbers; 10 digits covers 2^32). */
export const POP3_MAX_NUMBER_DIGITS = 10;


/** Time allowed for the TLS handshake on the implicit-TLS port and after STLS. */
export const POP3_TLS_HANDSHAKE_MS = 30_000;

/**
 * Messages read ahead while an earlier one is sent (the file reads overlap
 * the network writes): the RETRs pipelined behind the current one and, in a
 * download in message order, the messages after it. 64 (48-64 kept ahead,
 * about 1-1.3 MB of average mail, 2-3 ms of sending on loopback) so that a
 * wake-up of the body-reading thread that waits for a core on a busy machine
 * is covered by what is already read: at 32 with refills at half (16-32
 * ahead), a download's RETRs waited on reads a quarter of their time
 * (readWaitMs in the logout log, issue 17). And the bytes such read-ahead may
 * hold: bounded, since a client that pipelines but stops reading would
 * otherwise make us hold its mail in memory (they are in the store's shared
 * slabs while there is room: src/store/sqlite/body-reads.ts BODY_SLABS).
 */
export const POP3_PREFETCH_MESSAGES = 64;
export const POP3_PREFETCH_BYTES = 4 * 1024 * 1024;
/** Read-ahead is topped up once this many of its places are free: one request to the body-reading thread per this many messages, not one per message. */
export const POP3_PREFETCH_REFILL = 16;
/** Messages up to this size are read whole (one read) instead of streamed in POP3_STREAM_CHUNK pieces. */
export const POP3_WHOLE_READ_MAX = 1024 * 1024;

/**
 * Responses to pipelined commands held back (corked) at most, then handed to
 * the kernel in one system call: a dozen 20 KB messages per writev instead of
 * one each (issue 17's POP3 download). Bounded so a long pipeline still
 * streams, and never held while the client is not reading (congestion uncorks).
 */
export const POP3_CORK_BYTES = 256 * 1024;
