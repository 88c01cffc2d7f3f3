// Default decoder limits. Every limit is a named constant with its reason
// (STYLE.md habit 5). The server picks PRE_AUTH_DECODER_LIMITS until login
// succeeds and then switches with CommandDecoder.setLimits().

import type { DecoderLimits } from './types.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** Post-auth line length: long UID sets and SEARCH programs from real clients fit; RFC 7162 §4 asks for at least 8192. */
export const MAX_LINE_LENGTH = 64 * KiB;
/** Pre-auth line length: LOGIN / AUTHENTICATE / STARTTLS need little; keeps unauthenticated memory small. */
export const PRE_AUTH_LINE_LENGTH = 8 * KiB;
/**
 * Longest tag. RFC 9051 §9 sets none; clients use a few characters ("A1",
 * "12"). A longer tag is answered with an untagged BAD that does not echo it:
 * reflecting kilobytes of client text is an ingredient of cross-protocol
 * attacks (ALPACA, 2021). Dovecot echoes any length.
 */
export const MAX_TAG_LENGTH = 64;
/**
 * Longest line of an ID command (RFC 2971 §3.3: at most 30 pairs, fields of
 * 30 octets, values of 1024, ~32 KB quoted), accepted even before login where
 * other lines are limited to PRE_AUTH_LINE_LENGTH. Only a line that starts
 * with "<tag> ID " gets it; the ID command itself checks the RFC 2971 shape.
 */
export const ID_LINE_LENGTH = 34 * KiB;
/** Largest literal (APPENDLIMIT, RFC 7889): one message must exist in memory once while it is stored. */
export const MAX_LITERAL_SIZE = 64 * MiB;
/** Pre-auth literal: a user name or password never needs more. */
export const PRE_AUTH_LITERAL_SIZE = 8 * KiB;
/** RFC 7888 §5 LITERAL-: non-synchronizing literals above 4096 bytes must be refused. */
export const MAX_NON_SYNC_LITERAL = 4096;
/** One command with its literals: an APPEND of one maximal message plus its line. */
export const MAX_COMMAND_SIZE = MAX_LITERAL_SIZE + 1 * MiB;
/** Pre-auth command: line plus a couple of small literals. */
export const PRE_AUTH_COMMAND_SIZE = 32 * KiB;
/** List nesting: real commands nest 3-4 deep (SEARCH, FETCH BODY[HEADER.FIELDS (...)]); bounds recursion in command parsers. */
export const MAX_DEPTH = 32;
/** Tokens per command: a 64 KiB line has at most ~32k tokens; bounds per-command allocations. */
export const MAX_TOKENS = 100_000;
/**
 * An unwanted non-synchronizing literal up to this size is read and thrown
 * away (RFC 7888 §4 lets the server either discard it or close); above it the
 * decoder reports a fatal error and the server answers `* BYE`.
 */
export const MAX_DISCARD_LITERAL = 64 * MiB;

export const DEFAULT_DECODER_LIMITS: Readonly<DecoderLimits> = Object.freeze({
  maxLineLength: MAX_LINE_LENGTH,
  maxLiteralSize: MAX_LITERAL_SIZE,
  maxNonSyncLiteral: MAX_NON_SYNC_LITERAL,
  maxCommandSize: MAX_COMMAND_SIZE,
  maxDepth: MAX_DEPTH,
  maxTokens: MAX_TOKENS,
  maxDiscardLiteral: MAX_DISCARD_LITERAL,
});

export const PRE_AUTH_DECODER_LIMITS: Readonly<DecoderLimits> = Object.freeze({
  maxLineLength: PRE_AUTH_LINE_LENGTH,
  maxLiteralSize: PRE_AUTH_LITERAL_SIZE,
  maxNonSyncLiteral: MAX_NON_SYNC_LITERAL,
  maxCommandSize: PRE_AUTH_COMMAND_SIZE,
  maxDepth: 8,
  maxTokens: 1000,
  maxDiscardLiteral: 64 * KiB,
});
