// PREVIEW (RFC 8970): plain-text, UTF-8, no transfer encoding, at most 200
// characters (§3.3 SHOULD; 256 is the hard MUST NOT), "" when there is no
// text to show (§3.2).

import { decodeBytes, decodeCharset, LEGACY_HEADER_CHARSET } from './header.js';
import { getParam } from './params.js';
import { decodeTransferEncoding } from './transfer.js';
import type { MimePart } from './types.js';

/** RFC 8970 §3.3: the server SHOULD limit preview text to 200 characters. */
export const PREVIEW_MAX_CHARS = 200;
/** Raw body bytes looked at for a preview: plenty for 200 characters, bounds the work per message. */
export const PREVIEW_MAX_INPUT = 64 * 1024;

function isAttachment(p: MimePart): boolean {
  return p.disposition?.type === 'attachment';
}

function isText(p: MimePart, subtype: string): boolean {
  return p.type === 'text' && p.subtype === subtype && !p.children && !isAttachment(p) && !p.opaque;
}

/** Picks the part a preview is made from: the first text/plain, else the first text/html. */
export function previewPart(root: MimePart): MimePart | null {
  const find = (p: MimePart, subtype: string): MimePart | null => {
    if (isText(p, subtype)) return p;
    if (p.children) {
      for (const c of p.children) {
        const r = find(c, subtype);
        if (r) return r;
      }
    }
    if (p.message && !isAttachment(p)) return find(p.message, subtype);
    return null;
  };
  return find(root, 'plain') ?? find(root, 'html');
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };

/** Crude HTML to text: drops head/script/style and tags, decodes common entities. */
export function htmlToText(html: string): string {
  return html
    .replace(/<!--[\s\S]*?(-->|$)/g, ' ')
    .replace(/<(head|script|style|title)\b[\s\S]*?(<\/\1\s*>|$)/gi, ' ')
    .replace(/<[^>]*>?/g, ' ')
    .replace(/&(#x[0-9a-f]{1,6}|#[0-9]{1,7}|[a-z]{2,8});/gi, (m, e: string) => {
      if (e[0] === '#') {
        const cp = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
        return cp > 0 && cp <= 0x10ffff ? String.fromCodePoint(cp) : ' ';
      }
      return ENTITIES[e.toLowerCase()] ?? m;
    });
}

/** Collapses whitespace and control characters, trims, cuts to `max` characters (code points). */
export function normalizePreview(text: string, max = PREVIEW_MAX_CHARS): string {
  const s = text
    .replace(/[\u0000-\u001f\u007f\u00a0\u2000-\u200b\u2028\u2029\ufeff\s]+/g, ' ')
    .trim();
  const cps = Array.from(s);
  return cps.length <= max ? s : cps.slice(0, max).join('').trimEnd();
}

/** The PREVIEW text of a message ("" when none can be made). */
export function buildPreview(raw: Buffer, root: MimePart, max = PREVIEW_MAX_CHARS): string {
  const part = previewPart(root);
  if (!part) return '';
  const body = raw.subarray(part.bodyStart, Math.min(part.bodyEnd, part.bodyStart + PREVIEW_MAX_INPUT));
  const decoded = decodeTransferEncoding(body, part.encoding);
  if (!decoded) return '';
  const charset = getParam(part.params, 'charset');
  let text = charset ? decodeCharset(decoded, charset) : null;
  if (text === null) text = decodeBytes(decoded, LEGACY_HEADER_CHARSET);
  if (part.subtype === 'html') text = htmlToText(text);
  return normalizePreview(text, max);
}
