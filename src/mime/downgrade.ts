// The downgrade of RFC 6857 ("Post-Delivery Message Downgrading for
// Internationalized Email Messages") for what the server itself renders from
// header fields: ENVELOPE and BODYSTRUCTURE. A session that enabled neither
// UTF8=ACCEPT (RFC 6855) nor IMAP4rev2 gets these in 7-bit form (RFC 9051
// Appendix D / §6.3.1: no UTF-8 in quoted strings for such a client; RFC 6855
// §7: "Implementations that choose to perform downgrading SHOULD use one of
// the standardized algorithms provided in RFC 6857 or RFC 6858").
//
// The rules (RFC 6857 §3, applied to the parsed values):
// - unstructured text (Subject, Content-Description, and the other values ENVELOPE
//   and BODYSTRUCTURE carry as text) with non-ASCII becomes RFC 2047 encoded-words
//   in UTF-8;
// - an address's non-ASCII display name becomes encoded-words;
// - a non-ASCII domain becomes its IDNA A-label form (xn--...);
// - an address whose local part is non-ASCII (or whose domain has no A-label
//   form) cannot be written in 7 bits: it becomes an empty group whose display
//   name is the encoded-word form of the whole original address
//   (`=?UTF-8?B?...?= :;`), so the reader still sees who it was;
// - group names are encoded like display names.
// Message bytes (BODY[], BODY[HEADER], RFC822) are served as stored, as
// Dovecot does: rewriting them would change RFC822.SIZE and every section
// offset under the client's cache (RFC 6855 §7 on surrogate messages).

import { domainToASCII } from 'node:url';
import type { Address, Envelope } from './types.js';

/** RFC 2047 §2: an encoded-word is at most 75 characters. */
const MAX_ENCODED_WORD = 75;
/** "=?UTF-8?B?" + "?=" */
const WORD_OVERHEAD = 12;
/** Most UTF-8 bytes per encoded-word: base64 of this fits in 75 - 12 characters. */
const MAX_WORD_BYTES = Math.floor((MAX_ENCODED_WORD - WORD_OVERHEAD) / 4) * 3;

/** True when `s` is 7-bit (no code point above U+007F). */
export function isAscii(s: string): boolean {
  // eslint-disable-next-line no-control-regex
  return !/[^\x00-\x7f]/.test(s);
}

/**
 * `text` as RFC 2047 "B" encoded-words in UTF-8, split between characters
 * (never inside one: RFC 2047 §5 (3)) so that each word is at most 75
 * characters; words are separated by a space, which decoders drop between
 * adjacent encoded-words (RFC 2047 §6.2).
 */
export function encodeWords(text: string): string {
  const words: string[] = [];
  let chunk = '';
  let bytes = 0;
  for (const ch of text) {
    const n = Buffer.byteLength(ch, 'utf8');
    if (bytes + n > MAX_WORD_BYTES && chunk) {
      words.push(chunk);
      chunk = '';
      bytes = 0;
    }
    chunk += ch;
    bytes += n;
  }
  if (chunk || words.length === 0) words.push(chunk);
  return words.map((w) => `=?UTF-8?B?${Buffer.from(w, 'utf8').toString('base64')}?=`).join(' ');
}

/**
 * Unstructured text with non-ASCII (RFC 6857 §3): the run of words from the
 * first to the last one that is not 7-bit becomes encoded-words; 7-bit words
 * before and after stay readable. 7-bit text is returned unchanged.
 */
export function downgradeText(s: string): string;
export function downgradeText(s: string | null): string | null;
export function downgradeText(s: string | null): string | null {
  if (s === null || isAscii(s)) return s;
  const parts = s.split(/(\s+)/); // words at even indexes, their separators at odd ones
  let first = -1;
  let last = -1;
  for (let i = 0; i < parts.length; i += 2) {
    if (!isAscii(parts[i]!)) {
      if (first < 0) first = i;
      last = i;
    }
  }
  const head = parts.slice(0, first).join('');
  const tail = parts.slice(last + 1).join('');
  return head + encodeWords(parts.slice(first, last + 1).join('')) + tail;
}

/** The A-label form of a domain (IDNA, UTS #46 as node:url implements it), or null when it has none. */
function asciiDomain(host: string): string | null {
  if (isAscii(host)) return host;
  if (host.startsWith('[')) return null; // a domain literal with 8-bit bytes: no 7-bit form
  const a = domainToASCII(host);
  return a && isAscii(a) ? a : null;
}

/** The original address as text, for the display name of the group that stands in for it. */
function addressText(a: Address): string {
  const spec = `${a.mailbox ?? ''}@${a.host ?? ''}`;
  return a.name ? `${a.name} <${spec}>` : spec;
}

/** One address list downgraded (RFC 6857 §3); 7-bit lists are returned as they are. */
export function downgradeAddresses(list: Address[] | null): Address[] | null {
  if (!list || list.every((a) => [a.name, a.adl, a.mailbox, a.host].every((v) => v === null || isAscii(v)))) return list;
  const out: Address[] = [];
  for (const a of list) {
    if (a.host === null) {
      // A group start (name in `mailbox`) or end marker.
      out.push({ ...a, mailbox: downgradeText(a.mailbox) });
      continue;
    }
    const host = asciiDomain(a.host);
    const localOk = a.mailbox === null || isAscii(a.mailbox);
    const adlOk = a.adl === null || isAscii(a.adl);
    if (host === null || !localOk || !adlOk) {
      // No 7-bit form of the address itself: an empty group named after it.
      out.push({ name: null, adl: null, mailbox: encodeWords(addressText(a)), host: null });
      out.push({ name: null, adl: null, mailbox: null, host: null });
      continue;
    }
    out.push({ name: downgradeText(a.name), adl: a.adl, mailbox: a.mailbox, host });
  }
  return out;
}

/** ENVELOPE with every value in 7-bit form (RFC 6857 §3). */
export function downgradeEnvelope(env: Envelope): Envelope {
  return {
    date: downgradeText(env.date),
    subject: downgradeText(env.subject),
    from: downgradeAddresses(env.from),
    sender: downgradeAddresses(env.sender),
    replyTo: downgradeAddresses(env.replyTo),
    to: downgradeAddresses(env.to),
    cc: downgradeAddresses(env.cc),
    bcc: downgradeAddresses(env.bcc),
    inReplyTo: downgradeText(env.inReplyTo),
    messageId: downgradeText(env.messageId),
  };
}
