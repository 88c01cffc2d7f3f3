// UTF8=ACCEPT (RFC 6855) pieces that several commands share: the UTF-8 check
// on quoted strings (§3), the APPEND "UTF8" data extension (§4), and the rule
// that a session which did not enable it cannot APPEND 8-bit header fields (§4).
import { isUtf8 } from 'node:buffer';
import type { Token } from '../wire/types.js';
import type { Session } from '../session/session.js';
import { bad, no } from './types.js';

/** The session enabled UTF8=ACCEPT (RFC 6855 §3). */
export function utf8Accepted(s: Session): boolean {
  return s.enabled.has('UTF8=ACCEPT');
}

/** Whether any quoted string in `tokens` (at any depth) carries 8-bit bytes that are not UTF-8. */
function badQuoted(tokens: readonly Token[]): boolean {
  for (const t of tokens) {
    if (t.kind === 'string') {
      if (!t.literal && !isUtf8(t.bytes)) return true;
    } else if (t.kind === 'list') {
      if (badQuoted(t.items)) return true;
    } else if (t.section && badQuoted(t.section)) {
      return true;
    }
  }
  return false;
}

/**
 * RFC 6855 §3: after ENABLE UTF8=ACCEPT, "the server MUST reject, with a BAD
 * response, any octet sequences with the high bit set that fail to comply
 * with the formal syntax requirements of UTF-8" in quoted strings. Run by the
 * dispatcher before a command parses its arguments.
 */
export function checkQuotedUtf8(s: Session, tokens: readonly Token[]): void {
  if (utf8Accepted(s) && badQuoted(tokens)) throw bad('Quoted string is not valid UTF-8');
}

/**
 * RFC 6855 §3: "Once an IMAP client has enabled UTF-8 support ... it MUST NOT
 * issue a SEARCH command that contains a charset specification"; the server
 * SHOULD answer BAD.
 */
export function refuseSearchCharset(s: Session): void {
  if (utf8Accepted(s)) throw bad('CHARSET is not allowed after ENABLE UTF8=ACCEPT (RFC 6855 §3)');
}

/**
 * RFC 6855 §4: utf8-literal = "UTF8" SP "(" literal8 ")". `t` is the token
 * after the UTF8 atom; returns the message bytes. Only for sessions that
 * enabled UTF8=ACCEPT (for the others the extension is refused: BAD).
 */
export function utf8AppendData(t: Token, s: Session): Buffer {
  if (!utf8Accepted(s)) throw bad('APPEND UTF8 needs ENABLE UTF8=ACCEPT (RFC 6855 §4)');
  const lit = t.kind === 'list' && t.items.length === 1 ? t.items[0] : undefined;
  if (!lit || lit.kind !== 'string' || !lit.literal || !lit.literal8) throw bad('UTF8 data must be ( literal8 )');
  return lit.bytes;
}

/** Offset of the end of the top-level header block (the blank line, or the whole message). */
function headerBlockEnd(data: Buffer): number {
  if (data[0] === 0x0a || (data[0] === 0x0d && data[1] === 0x0a)) return 0;
  for (let i = 0; i < data.length; i++) {
    if (data[i] !== 0x0a) continue;
    // LF followed by LF or CRLF ends the header (bare LFs are common in imported mail).
    if (data[i + 1] === 0x0a) return i;
    if (data[i + 1] === 0x0d && data[i + 2] === 0x0a) return i;
  }
  return data.length;
}

/** True when a byte of the top-level header fields has the high bit set. */
export function eightBitHeader(data: Buffer): boolean {
  const end = headerBlockEnd(data);
  for (let i = 0; i < end; i++) if (data[i]! > 0x7f) return true;
  return false;
}

/**
 * RFC 6855 §4: "If an IMAP server supports UTF8=ACCEPT and the IMAP client
 * has not issued the ENABLE UTF8=ACCEPT command, the server MUST reject, with
 * a NO response, an APPEND command that includes any 8-bit character in
 * message header fields." IMAP4rev2 sessions may (RFC 9051 Appendix E item
 * 16: message headers allow UTF-8), so the rule binds IMAP4rev1 sessions only.
 */
export function checkAppendHeaders(s: Session, data: Buffer): void {
  if (utf8Accepted(s) || s.rev2) return;
  if (eightBitHeader(data)) throw no('8-bit header fields need ENABLE UTF8=ACCEPT and APPEND UTF8 (RFC 6855 §4)', 'CANNOT');
}
