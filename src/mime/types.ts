// Shared types of the MIME module.

import type { MimeParam } from './params.js';

export type { MimeParam };

/** RFC 9051 §7.5.2 address structure; strings in raw header form (no RFC 2047 decoding). */
export interface Address {
  /** Display name (phrase, quoting removed), or null. */
  name: string | null;
  /** Obsolete source route ("@a,@b"), or null. */
  adl: string | null;
  /** Local part, or the group name (host null), or null at the end of a group. */
  mailbox: string | null;
  /** Domain, or null for group markers. */
  host: string | null;
}

/** RFC 9051 §7.5.2 ENVELOPE: raw, unfolded header values. */
export interface Envelope {
  date: string | null;
  subject: string | null;
  from: Address[] | null;
  /** Defaults to `from` when the header is missing (RFC 9051 §7.5.2). */
  sender: Address[] | null;
  /** Defaults to `from` when the header is missing. */
  replyTo: Address[] | null;
  to: Address[] | null;
  cc: Address[] | null;
  bcc: Address[] | null;
  inReplyTo: string | null;
  messageId: string | null;
}

export interface Disposition {
  /** Lower-cased disposition type ("inline", "attachment", ...). */
  type: string;
  params: MimeParam[];
}

/**
 * One node of the part tree. All offsets are absolute byte positions in the
 * raw message: header = [headerStart, headerEnd) including the blank line,
 * body = [bodyStart, bodyEnd). headerEnd === bodyStart always (kept as two
 * names for readability at call sites).
 */
export interface MimePart {
  headerStart: number;
  headerEnd: number;
  bodyStart: number;
  bodyEnd: number;
  /** Lower-cased media type and subtype. */
  type: string;
  subtype: string;
  /** Content-Type parameters: lower-cased names, RFC 2231-decoded values. */
  params: MimeParam[];
  /** Lower-cased Content-Transfer-Encoding, "7bit" when absent. */
  encoding: string;
  id: string | null;
  description: string | null;
  disposition: Disposition | null;
  language: string[] | null;
  location: string | null;
  md5: string | null;
  /** Body size in bytes (bodyEnd - bodyStart). */
  size: number;
  /** Number of LF-terminated lines in the body (RFC 9051 body-fld-lines). */
  lines: number;
  /** Sub-parts of a multipart (always at least one). */
  children?: MimePart[];
  /** The embedded message of a message/rfc822 or message/global part. */
  message?: MimePart;
  /** ENVELOPE of a message-level node (the root and every `message`). */
  envelope?: Envelope;
  /** True when a limit was reached and this part was not looked into. */
  opaque?: boolean;
}

/** Parsing limits; past a limit the remainder becomes an opaque leaf, never an error. */
export interface MimeLimits {
  /** Deepest nesting of multipart / message parts. */
  maxDepth: number;
  /** Most parts in one message (all levels together). */
  maxParts: number;
  /** Bytes of one header block parsed into fields; fields past this are ignored. */
  maxHeaderBytes: number;
}
