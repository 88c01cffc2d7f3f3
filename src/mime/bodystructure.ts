// BODY and BODYSTRUCTURE (RFC 9051 §7.5.2, grammar §9: body, body-type-1part,
// body-type-mpart, body-ext-1part, body-ext-mpart). Built from the stored
// part tree alone; no access to the raw message needed.
//
// Conventions (checked against Dovecot, see test/fixtures/mime/dovecot/):
// lower-case quoted type/subtype/encoding, "7bit" when absent, a text/* part
// without charset gets ("charset" "us-ascii") (RFC 2045 §5.2 default),
// dispositions and languages as lists, NIL for absent values.

import { EMPTY_ENVELOPE, formatEnvelope } from './envelope.js';
import { downgradeEnvelope, downgradeText } from './downgrade.js';
import { imapNString, imapString } from './imapstring.js';
import type { MimeParam, MimePart } from './types.js';

/** RFC 2231 ext-value in UTF-8 for a parameter value that is not 7-bit printable. */
function ext2231(value: string): string {
  let out = "utf-8''";
  for (const b of Buffer.from(value, 'utf8')) {
    const safe = (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || '!#$&+-.^_`|~'.includes(String.fromCharCode(b));
    out += safe ? String.fromCharCode(b) : '%' + b.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

/**
 * body-fld-param. Values that are not printable ASCII (decoded RFC 2231 or raw
 * 8-bit) are sent RFC 2231-encoded as `name*` so every client gets 7-bit text.
 */
export function formatParams(params: MimeParam[]): string {
  if (params.length === 0) return 'NIL';
  return (
    '(' +
    params
      .map(([n, v]) => (/^[\x20-\x7e]*$/.test(v) ? `${imapString(n)} ${imapString(v)}` : `${imapString(n + '*')} ${imapString(ext2231(v))}`))
      .join(' ') +
    ')'
  );
}

function contentParams(part: MimePart): MimeParam[] {
  // The default charset goes after the parameters that were given (as Dovecot sends it).
  if (part.type === 'text' && !part.params.some((p) => p[0] === 'charset')) return [...part.params, ['charset', 'us-ascii']];
  return part.params;
}

function formatDisposition(part: MimePart): string {
  const d = part.disposition;
  return d ? `(${imapString(d.type)} ${formatParams(d.params)})` : 'NIL';
}

function formatLanguage(part: MimePart, t: Text): string {
  const l = part.language;
  return l && l.length > 0 ? '(' + l.map((x) => imapString(t(x))).join(' ') + ')' : 'NIL';
}

/** How free text is rendered: as it is, or downgraded to 7 bits (RFC 6857 §3, src/mime/downgrade.ts). */
type Text = (s: string) => string;
const asIs: Text = (s) => s;
const nt = (t: Text, s: string | null) => imapNString(s === null ? null : t(s));

const EMPTY_TEXT_BODY = '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0)';
const EMPTY_TEXT_BODY_EXT = '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL)';

/**
 * The BODY (extended=false) or BODYSTRUCTURE (extended=true) value of `part`,
 * ready for the wire: a JS string whose literals count UTF-8 bytes (send with
 * Buffer.from(s, 'utf8')). For a whole message pass the root. `downgrade`
 * renders non-ASCII text as encoded-words and embedded envelopes downgraded
 * (RFC 6857 §3), for sessions without UTF8=ACCEPT or IMAP4rev2; parameter
 * values are RFC 2231-encoded in both forms.
 */
export function formatBodyStructure(part: MimePart, extended: boolean, downgrade = false): string {
  return format(part, extended, downgrade ? downgradeText : asIs, downgrade);
}

function format(part: MimePart, extended: boolean, t: Text, downgrade: boolean): string {
  if (part.children && part.children.length > 0) {
    let s = '(' + part.children.map((c) => format(c, extended, t, downgrade)).join('') + ' ' + imapString(part.subtype);
    if (extended) s += ` ${formatParams(part.params)} ${formatDisposition(part)} ${formatLanguage(part, t)} ${nt(t, part.location)}`;
    return s + ')';
  }
  let s =
    `(${imapString(part.type)} ${imapString(part.subtype)} ${formatParams(contentParams(part))} ` +
    `${nt(t, part.id)} ${nt(t, part.description)} ${imapString(part.encoding)} ${part.size}`;
  if (part.type === 'message' && (part.subtype === 'rfc822' || part.subtype === 'global')) {
    // body-type-msg: envelope, body and lines are mandatory; an embedded
    // message we did not look into (encoded) gets an empty stand-in.
    const m = part.message;
    const e = m?.envelope ?? EMPTY_ENVELOPE;
    const env = formatEnvelope(downgrade ? downgradeEnvelope(e) : e);
    const body = m ? format(m, extended, t, downgrade) : extended ? EMPTY_TEXT_BODY_EXT : EMPTY_TEXT_BODY;
    s += ` ${env} ${body} ${part.lines}`;
  } else if (part.type === 'text') {
    s += ` ${part.lines}`;
  }
  if (extended) s += ` ${nt(t, part.md5)} ${formatDisposition(part)} ${formatLanguage(part, t)} ${nt(t, part.location)}`;
  return s + ')';
}
