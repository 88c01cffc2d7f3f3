// The text SEARCH's content keys look in (RFC 9051 §6.4.4): BODY matches the
// decoded text of the body, TEXT the header fields as well. One definition,
// used both by the evaluator (reading a message) and by the store's full-text
// index (filled at APPEND), so the index can never disagree with a reading.
import { Header, decodeEncodedWords, decodeBytes, decodeCharset, fieldValue, LEGACY_HEADER_CHARSET } from './header.js';
import { getParam } from './params.js';
import { walkParts } from './parse.js';
import { decodeTransferEncoding } from './transfer.js';
import type { MimePart } from './types.js';

/** Bytes of one part that SEARCH decodes; longer parts are searched in their first bytes. */
export const SEARCH_BODY_LIMIT = 16 * 1024 * 1024;

function headerLines(raw: Buffer, part: MimePart): string {
  const h = Header.parse(raw, part.headerStart, part.headerEnd);
  return h.fields.map((f) => `${f.name}: ${decodeEncodedWords(fieldValue(raw, f))}`).join('\n');
}

function partText(raw: Buffer, part: MimePart): string {
  const body = raw.subarray(part.bodyStart, Math.min(part.bodyEnd, part.bodyStart + SEARCH_BODY_LIMIT));
  const decoded = decodeTransferEncoding(body, part.encoding) ?? body;
  const charset = getParam(part.params, 'charset');
  return (charset ? decodeCharset(decoded, charset) : null) ?? decodeBytes(decoded, LEGACY_HEADER_CHARSET);
}

/** Every top-level header field, "Name: decoded value", one per line (TEXT). */
export function searchHeaderText(raw: Buffer, root: MimePart): string {
  return headerLines(raw, root);
}

/** The decoded text of the body (BODY, and TEXT beside the header). */
export function searchBodyText(raw: Buffer, root: MimePart): string {
  const texts: string[] = [];
  for (const p of walkParts(root)) {
    // RFC 9051 §6.4.4 BODY: an attached message's header is part of the body.
    if (p !== root && p.envelope) texts.push(headerLines(raw, p));
    if (p.children || p.message) continue;
    // Text parts, message/* parts not looked into (delivery-status, partial, encoded rfc822), a non-text root.
    if (p.type === 'text' || p.type === 'message' || p === root) texts.push(partText(raw, p));
  }
  return texts.join('\n');
}
