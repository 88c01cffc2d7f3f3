// Header parsing for RFC 5322 messages and MIME parts: field splitting with
// byte offsets (RFC 5322 §2.2), unfolding (§2.2.3), RFC 2047 encoded-word
// decoding, and decoding of raw 8-bit header bytes (RFC 6532 UTF-8 first,
// then a legacy charset fallback). Pure functions; never throws on input.

import iconv from 'iconv-lite';

/** One header field; offsets are absolute positions in the raw message. */
export interface HeaderField {
  /** Field name as written (whitespace before the colon removed, RFC 5322 §4.5.3 obs-optional). */
  name: string;
  /** Lower-cased name, for matching. */
  lname: string;
  /** First byte of the field's first line. */
  start: number;
  /** Byte after the field's last line terminator (or the header end if unterminated). */
  end: number;
  /** Byte after the colon. */
  valueStart: number;
}

/** Charset used when raw 8-bit header bytes are not valid UTF-8. */
export const LEGACY_HEADER_CHARSET = 'windows-1252';

const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const HT = 0x09;
const COLON = 0x3a;

/**
 * Finds the end of a header block starting at `start` (limited to `end`).
 * Returns `{ fieldsEnd, bodyStart }`: fieldsEnd is the start of the blank
 * line, bodyStart the byte after it. Without a blank line the whole range is
 * header (RFC 5322 §2.1: the body is optional), both are `end`.
 */
export function findHeaderEnd(raw: Buffer, start: number, end: number): { fieldsEnd: number; bodyStart: number } {
  let pos = start;
  while (pos < end) {
    if (raw[pos] === LF) return { fieldsEnd: pos, bodyStart: pos + 1 };
    if (raw[pos] === CR && pos + 1 < end && raw[pos + 1] === LF) return { fieldsEnd: pos, bodyStart: pos + 2 };
    const nl = raw.indexOf(LF, pos);
    if (nl < 0 || nl >= end) break;
    pos = nl + 1;
  }
  return { fieldsEnd: end, bodyStart: end };
}

/**
 * Splits the header lines in [start, end) into fields. Parsing stops at a
 * blank line, at `end`, or once `maxBytes` bytes were examined (the rest of
 * an oversized header is ignored, not an error). Lines that are neither a
 * field nor a continuation are skipped.
 */
export function parseHeaderFields(raw: Buffer, start: number, end: number, maxBytes = Infinity): HeaderField[] {
  const fields: HeaderField[] = [];
  const stop = Math.min(end, start + maxBytes);
  let pos = start;
  let cur: HeaderField | null = null;
  while (pos < stop) {
    const nl = raw.indexOf(LF, pos);
    const lineEnd = nl < 0 || nl >= end ? end : nl + 1;
    const first = raw[pos];
    if (first === LF || (first === CR && pos + 1 < end && raw[pos + 1] === LF)) break; // blank line
    if ((first === SP || first === HT) && cur) {
      cur.end = lineEnd; // RFC 5322 §2.2.3 folding
    } else {
      cur = null;
      let c = pos;
      while (c < lineEnd && raw[c] !== COLON && raw[c] !== LF && raw[c] !== CR) c++;
      if (c < lineEnd && raw[c] === COLON) {
        // Trailing blanks before the colon (RFC 5322 §4.5.2 obs-optional), trimmed by a
        // loop: /[ \t]+$/ is quadratic on a long run of blanks followed by a non-blank.
        let nameEnd = c;
        while (nameEnd > pos && (raw[nameEnd - 1] === SP || raw[nameEnd - 1] === HT)) nameEnd--;
        const name = raw.toString('latin1', pos, nameEnd);
        if (name.length > 0 && /^[\x21-\x39\x3b-\x7e]+$/.test(name)) {
          cur = { name, lname: name.toLowerCase(), start: pos, end: lineEnd, valueStart: c + 1 };
          fields.push(cur);
        }
      }
    }
    pos = lineEnd;
  }
  return fields;
}

/** Raw value bytes of a field, still folded. */
export function rawFieldValue(raw: Buffer, f: HeaderField): Buffer {
  return raw.subarray(f.valueStart, f.end);
}

/**
 * The field's value unfolded (CR and LF removed, RFC 5322 §2.2.3), trimmed,
 * decoded from bytes to text (UTF-8, else the legacy fallback). Encoded words
 * are NOT decoded: this is the "raw form" ENVELOPE and BODYSTRUCTURE need.
 */
export function fieldValue(raw: Buffer, f: HeaderField, fallbackCharset = LEGACY_HEADER_CHARSET): string {
  return unfold(decodeBytes(rawFieldValue(raw, f), fallbackCharset)).trim();
}

/** Removes CR and LF characters (unfolding keeps the whitespace that follows). */
export function unfold(s: string): string {
  return s.replace(/[\r\n]/g, '');
}

const utf8Fatal = new TextDecoder('utf-8', { fatal: true });

/** Bytes to text: pure ASCII as is, valid UTF-8 (RFC 6532) as UTF-8, anything else via `fallbackCharset`. */
export function decodeBytes(buf: Buffer, fallbackCharset = LEGACY_HEADER_CHARSET): string {
  let ascii = true;
  for (let i = 0; i < buf.length; i++) {
    if (buf[i]! >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) return buf.toString('latin1');
  try {
    return utf8Fatal.decode(buf);
  } catch {
    return decodeCharset(buf, fallbackCharset) ?? buf.toString('latin1');
  }
}

/** Normalises a MIME charset label for iconv-lite (RFC 2231 §5 language suffix removed). */
export function normalizeCharset(label: string): string {
  let c = label.trim().toLowerCase();
  const star = c.indexOf('*');
  if (star >= 0) c = c.slice(0, star);
  // 8-bit bytes labelled us-ascii are common; decode them leniently.
  if (c === 'us-ascii' || c === 'ascii' || c === 'unknown-8bit' || c === 'x-unknown' || c === 'default') return LEGACY_HEADER_CHARSET;
  if (c === 'utf8') return 'utf-8';
  return c;
}

/** Whether `label` can be decoded (iconv-lite, else the WHATWG TextDecoder). */
export function charsetKnown(label: string): boolean {
  const cs = normalizeCharset(label);
  try {
    if (iconv.encodingExists(cs)) return true;
    new TextDecoder(cs);
    return true;
  } catch {
    return false;
  }
}

/** Decodes bytes in `label`; null when the charset is unknown. */
export function decodeCharset(buf: Buffer, label: string): string | null {
  const cs = normalizeCharset(label);
  try {
    if (iconv.encodingExists(cs)) return iconv.decode(buf, cs);
  } catch {
    return null;
  }
  // Charsets iconv-lite lacks (ISO-2022-JP, ISO-2022-KR, ...) through the WHATWG decoder.
  try {
    return new TextDecoder(cs).decode(buf);
  } catch {
    return null;
  }
}

const ENCODED_WORD = /=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=/g;
const B64_TEXT = /^[A-Za-z0-9+/]*={0,2}$/;

function decodeWordPayload(enc: string, text: string): Buffer | null {
  if (enc === 'b' || enc === 'B') {
    if (!B64_TEXT.test(text) || text.length % 4 === 1) return null;
    return Buffer.from(text, 'base64');
  }
  // RFC 2047 §4.2: "_" is SPACE, "=XX" a hex octet.
  const out: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 0x5f) out.push(SP);
    else if (ch === 0x3d && i + 2 < text.length && /^[0-9A-Fa-f]{2}$/.test(text.slice(i + 1, i + 3))) {
      out.push(parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (ch === 0x3d) return null;
    else out.push(ch & 0xff);
  }
  return Buffer.from(out);
}

/**
 * Decodes RFC 2047 encoded words in an (unfolded) header value. Whitespace
 * between adjacent encoded words is dropped (§6.2); adjacent words in the
 * same charset are joined as bytes before decoding, so a multi-byte
 * character split across words survives. Malformed words (bad encoding,
 * unknown charset) stay literally.
 */
export function decodeEncodedWords(value: string): string {
  if (!value.includes('=?')) return value;
  let out = '';
  let last = 0;
  let pendingCharset: string | null = null;
  let pending: Buffer[] = [];
  const flush = () => {
    if (pendingCharset !== null) {
      out += decodeCharset(Buffer.concat(pending), pendingCharset) ?? '';
      pendingCharset = null;
      pending = [];
    }
  };
  ENCODED_WORD.lastIndex = 0;
  for (let m = ENCODED_WORD.exec(value); m; m = ENCODED_WORD.exec(value)) {
    const [whole, charset, enc, text] = m as unknown as [string, string, string, string];
    const bytes = charsetKnown(charset) ? decodeWordPayload(enc, text) : null;
    const gap = value.slice(last, m.index);
    if (bytes === null) {
      flush();
      out += gap + whole;
    } else {
      const adjacent = pendingCharset !== null && /^[ \t]*$/.test(gap);
      if (!adjacent) {
        flush();
        out += gap;
      }
      const cs = normalizeCharset(charset);
      if (pendingCharset !== null && pendingCharset !== cs) flush();
      pendingCharset = cs;
      pending.push(bytes);
    }
    last = m.index + whole.length;
  }
  flush();
  return out + value.slice(last);
}

/** A parsed header block with convenience accessors. */
export class Header {
  constructor(
    readonly raw: Buffer,
    readonly fields: HeaderField[],
  ) {}

  /** Parses the header of the part whose header occupies [start, end). */
  static parse(raw: Buffer, start: number, end: number, maxBytes = Infinity): Header {
    return new Header(raw, parseHeaderFields(raw, start, end, maxBytes));
  }

  /** First field named `name` (case-insensitive). */
  field(name: string): HeaderField | undefined {
    const l = name.toLowerCase();
    return this.fields.find((f) => f.lname === l);
  }

  /** Unfolded raw value of the first field named `name`, or null. */
  get(name: string): string | null {
    const f = this.field(name);
    return f ? fieldValue(this.raw, f) : null;
  }

  /** Unfolded raw values of every field named `name`. */
  getAll(name: string): string[] {
    const l = name.toLowerCase();
    return this.fields.filter((f) => f.lname === l).map((f) => fieldValue(this.raw, f));
  }

  /** Value of the first field named `name` with RFC 2047 words decoded (for SEARCH, display). */
  getDecoded(name: string): string | null {
    const v = this.get(name);
    return v === null ? null : decodeEncodedWords(v);
  }
}
