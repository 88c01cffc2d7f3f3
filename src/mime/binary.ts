// Binary content at APPEND (issue 10 item 7). RFC 9051 §4.3: an ordinary
// literal may carry any octet except NUL, so a part stored with raw NULs could
// not be served by BODY[], BODY[TEXT] or BODY[n]. RFC 3516 §4.3 lets a server
// that cannot keep binary content convert it at APPEND; as Dovecot does, such
// leaf parts are rewritten to base64 before the message is stored. (Dovecot
// also converts binary-labelled parts without NULs; we keep those byte for
// byte, since any other octet is allowed in a literal.) BINARY[n]
// decodes them back to the exact bytes that were appended, and sizes, the
// part tree, RFC822.SIZE and the text index all derive from the stored form.
// Pure: imports only src/mime.
import { Header } from './header.js';
import { parseMessage, walkParts } from './parse.js';
import type { MimePart } from './types.js';

/** Base64 line length (RFC 2045 §6.8: at most 76 characters). */
const B64_LINE = 76;

/** Whether a leaf part must be re-encoded: NULs in its body. */
function needsEncoding(raw: Buffer, p: MimePart): boolean {
  if (p.children || p.message || p.opaque) return false; // containers keep their encoding (RFC 2046 §5.2.1)
  const nul = raw.indexOf(0, p.bodyStart);
  return nul >= 0 && nul < p.bodyEnd;
}

/**
 * The message with every NUL-carrying leaf part re-encoded as base64 (its
 * Content-Transfer-Encoding fields replaced by one saying so), or null when
 * nothing needs it — the common case, decided by one byte scan (a parse only
 * when the bytes contain a NUL).
 */
export function encodeBinaryParts(raw: Buffer): Buffer | null {
  if (raw.indexOf(0) < 0) return null;
  const root = parseMessage(raw);
  const parts = [...walkParts(root)].filter((p) => needsEncoding(raw, p)).sort((a, b) => a.headerStart - b.headerStart);
  if (parts.length === 0) return null;
  const out: Buffer[] = [];
  let pos = 0;
  for (const p of parts) {
    if (p.headerStart < pos) continue; // cannot happen for leaves; be safe
    out.push(raw.subarray(pos, p.headerStart));
    out.push(rewriteHeader(raw, p));
    const b64 = raw.subarray(p.bodyStart, p.bodyEnd).toString('base64');
    const lines: string[] = [];
    for (let i = 0; i < b64.length; i += B64_LINE) lines.push(b64.slice(i, i + B64_LINE));
    // The CRLF before a boundary belongs to the boundary (RFC 2046 §5.1.1); the root body ends with one.
    out.push(Buffer.from(lines.join('\r\n') + (p === root && lines.length > 0 ? '\r\n' : ''), 'latin1'));
    pos = p.bodyEnd;
  }
  out.push(raw.subarray(pos));
  return Buffer.concat(out);
}

/** The part's header without its Content-Transfer-Encoding fields, plus one saying base64, then the blank line. */
function rewriteHeader(raw: Buffer, p: MimePart): Buffer {
  const header = Header.parse(raw, p.headerStart, p.headerEnd);
  const chunks: Buffer[] = [];
  let pos = p.headerStart;
  let lastEnd = p.headerStart;
  for (const f of header.fields) {
    lastEnd = Math.max(lastEnd, f.end);
    if (f.lname !== 'content-transfer-encoding') continue;
    chunks.push(raw.subarray(pos, f.start));
    pos = f.end;
  }
  // Fields end where the blank line starts; keep everything up to it, then our field, then the rest (the blank line).
  chunks.push(raw.subarray(pos, lastEnd));
  const nl = lastEnd > p.headerStart && raw[lastEnd - 1] === 0x0a && raw[lastEnd - 2] !== 0x0d ? '\n' : '\r\n';
  chunks.push(Buffer.from(`Content-Transfer-Encoding: base64${nl}`, 'latin1'));
  const rest = raw.subarray(lastEnd, p.headerEnd);
  chunks.push(rest);
  if (rest.length === 0 && p.bodyEnd > p.bodyStart) chunks.push(Buffer.from(nl, 'latin1')); // a header without its blank line
  return Buffer.concat(chunks);
}
