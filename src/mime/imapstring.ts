// A small local encoder for IMAP strings (RFC 9051 §4.3, §9 "string",
// "nstring"): a quoted string when that is safe, otherwise a literal.
// Output is a JS string whose literal sizes count UTF-8 bytes: send it with
// Buffer.from(text, 'utf8').

/** Longest value sent as a quoted string; longer ones go as literals. */
export const MAX_QUOTED_LENGTH = 1000;

/** RFC 9051 quoted: TEXT-CHAR (no CR, LF, NUL), 7-bit; `"` and `\` escaped. */
const QUOTABLE = /^[\x20-\x7e]*$/;

/** Encodes `s` as an IMAP string. NUL (never allowed, RFC 9051 §4.3) is dropped. */
export function imapString(s: string): string {
  if (s.includes('\0')) s = s.replace(/\0/g, '');
  if (s.length <= MAX_QUOTED_LENGTH && QUOTABLE.test(s)) return '"' + s.replace(/[\\"]/g, (c) => '\\' + c) + '"';
  return `{${Buffer.byteLength(s, 'utf8')}}\r\n${s}`;
}

/** nstring: NIL for null. */
export function imapNString(s: string | null | undefined): string {
  return s === null || s === undefined ? 'NIL' : imapString(s);
}
