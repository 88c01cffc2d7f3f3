// UTF8=ACCEPT (RFC 6855) pieces that several commands share: the UTF-8 check
// on quoted strings (§3), the refusal of SEARCH CHARSET after ENABLE (§3) and
// the APPEND "UTF8" data extension (§4).
//
// Deliberately not done: §4's "MUST reject, with a NO response, an APPEND
// command that includes any 8-bit character in message header fields" from a
// session that did not enable UTF8=ACCEPT. Legacy clients (mutt, imapsync,
// mail moved from local folders) append old mail with raw 8-bit headers every
// day, and Dovecot and Quire before UTF8=ACCEPT took it; refusing would make
// such mail impossible to move here. It is stored as sent (docs/rfc.md).
import { isUtf8 } from 'node:buffer';
import type { Token } from '../wire/types.js';
import type { Session } from '../session/session.js';
import { bad } from './types.js';

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

const WRAP_OPEN = Buffer.from('UTF8 (');
const WRAP_CLOSE = 0x29; // ")"

/**
 * The message of a plain APPEND literal in a UTF8=ACCEPT session. Python's
 * imaplib (3.11 at least), once UTF8=ACCEPT is enabled, puts "UTF8 (" and ")"
 * inside its {n} literal instead of around a ~{n} one, so the literal reads
 * `UTF8 (<message>)`. No message starts that way ("UTF8 (" is no header field),
 * so in such a session that frame is taken off rather than stored as part of
 * the message. Anything else is returned as it is.
 */
export function unwrapMisframedUtf8(data: Buffer, s: Session): Buffer {
  if (!utf8Accepted(s) || data.length < WRAP_OPEN.length + 1 || data[data.length - 1] !== WRAP_CLOSE) return data;
  if (!data.subarray(0, WRAP_OPEN.length).equals(WRAP_OPEN)) return data;
  return data.subarray(WRAP_OPEN.length, data.length - 1);
}

