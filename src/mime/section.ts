// FETCH body sections (RFC 9051 §6.4.5 BODY[<section>]) and BINARY
// (RFC 3516) over a parsed part tree.
//
// Part numbers: the parts of a multipart are 1, 2, ...; a message that is
// not multipart has one part, 1, its body (the message node itself), and so
// has any other non-multipart part ("2.1" of a leaf "2" is "2"); the
// parts of a message/rfc822 (or message/global) part are numbered under it
// the same way, applied to the embedded message.

import { parseHeaderFields } from './header.js';
import { decodeTransferEncoding } from './transfer.js';
import type { MimePart } from './types.js';

export type SectionText = '' | 'HEADER' | 'HEADER.FIELDS' | 'HEADER.FIELDS.NOT' | 'MIME' | 'TEXT';

export interface SectionSpec {
  /** Part numbers, e.g. [2, 1] for "2.1"; [] for the whole message. */
  path: number[];
  text: SectionText;
  /** Field names for HEADER.FIELDS / HEADER.FIELDS.NOT. */
  fields?: string[];
}

export interface ByteRange {
  start: number;
  end: number;
}

function isMessagePart(p: MimePart): boolean {
  return p.type === 'message' && (p.subtype === 'rfc822' || p.subtype === 'global');
}

/** Resolves a part number path to its node; null when no such part exists. [] is the root. */
export function resolvePart(root: MimePart, path: readonly number[]): MimePart | null {
  let cur = root;
  let atMessage = true; // cur is a message whose body was not entered yet
  let final = false; // cur is a leaf reached as "part 1 of itself": nothing lies below
  const isLeaf = (p: MimePart) => !p.children && !p.message;
  for (const n of path) {
    if (!Number.isInteger(n) || n < 1 || final) return null;
    if (!atMessage) {
      if (cur.children) {
        const c = cur.children[n - 1];
        if (!c) return null;
        cur = c;
        continue;
      }
      // A part that is neither multipart nor message has one part, 1: itself
      // (the rule for non-multipart messages applied to parts, as Dovecot does), once.
      if (!cur.message) {
        if (n !== 1) return null;
        final = true;
        continue;
      }
      cur = cur.message;
      atMessage = true;
    }
    if (cur.children) {
      const c = cur.children[n - 1];
      if (!c) return null;
      cur = c;
    } else if (n !== 1) return null;
    else final = isLeaf(cur);
    atMessage = false;
  }
  return cur;
}

/** The message a HEADER / TEXT / HEADER.FIELDS section applies to, or null. */
function targetMessage(root: MimePart, path: readonly number[]): MimePart | null {
  if (path.length === 0) return root;
  const p = resolvePart(root, path);
  return p && isMessagePart(p) && p.message ? p.message : null;
}

/**
 * The byte range of a contiguous section ('' / HEADER / TEXT / MIME); null
 * when the part does not exist or the section does not apply (answered as
 * an empty string). HEADER.FIELDS[.NOT] are not contiguous: use sectionBytes.
 */
export function sectionRange(root: MimePart, spec: SectionSpec): ByteRange | null {
  switch (spec.text) {
    case '': {
      if (spec.path.length === 0) return { start: root.headerStart, end: root.bodyEnd };
      const p = resolvePart(root, spec.path);
      return p ? { start: p.bodyStart, end: p.bodyEnd } : null;
    }
    case 'MIME': {
      if (spec.path.length === 0) return null;
      const p = resolvePart(root, spec.path);
      return p ? { start: p.headerStart, end: p.headerEnd } : null;
    }
    case 'HEADER': {
      const m = targetMessage(root, spec.path);
      return m ? { start: m.headerStart, end: m.headerEnd } : null;
    }
    case 'TEXT': {
      const m = targetMessage(root, spec.path);
      return m ? { start: m.bodyStart, end: m.bodyEnd } : null;
    }
    default:
      return null;
  }
}

const EMPTY = Buffer.alloc(0);
const CRLF = Buffer.from('\r\n');

/**
 * HEADER.FIELDS / HEADER.FIELDS.NOT of a header block: the selected fields'
 * original bytes (folding kept) in message order, then the blank line.
 */
export function headerFieldsBytes(raw: Buffer, msg: MimePart, names: readonly string[], not: boolean): Buffer {
  const want = new Set(names.map((n) => n.toLowerCase()));
  const out: Buffer[] = [];
  for (const f of parseHeaderFields(raw, msg.headerStart, msg.headerEnd)) {
    if (want.has(f.lname) === not) continue;
    const bytes = raw.subarray(f.start, f.end);
    out.push(bytes);
    if (bytes[bytes.length - 1] !== 0x0a) out.push(CRLF); // last field of a header without blank line
  }
  out.push(CRLF);
  return Buffer.concat(out);
}

/** The bytes of a section; an empty buffer when it does not exist (RFC 9051 §6.4.5). Contiguous sections are subarrays of raw. */
export function sectionBytes(raw: Buffer, root: MimePart, spec: SectionSpec): Buffer {
  if (spec.text === 'HEADER.FIELDS' || spec.text === 'HEADER.FIELDS.NOT') {
    const m = targetMessage(root, spec.path);
    return m ? headerFieldsBytes(raw, m, spec.fields ?? [], spec.text === 'HEADER.FIELDS.NOT') : EMPTY;
  }
  const r = sectionRange(root, spec);
  return r ? raw.subarray(r.start, r.end) : EMPTY;
}

export type BinaryResult =
  | { kind: 'ok'; data: Buffer }
  /** RFC 3516 §4.2: answer NO [UNKNOWN-CTE]. */
  | { kind: 'unknown-cte'; encoding: string }
  | { kind: 'nonexistent' };

/**
 * BINARY[path] (RFC 3516): the part's content with its transfer encoding
 * removed. [] is the whole message; multipart and message parts are returned
 * as they are (they cannot be encoded other than 7bit/8bit/binary).
 */
export function binaryContent(raw: Buffer, root: MimePart, path: readonly number[]): BinaryResult {
  if (path.length === 0) return { kind: 'ok', data: raw.subarray(root.headerStart, root.bodyEnd) };
  const p = resolvePart(root, path);
  if (!p) return { kind: 'nonexistent' };
  const body = raw.subarray(p.bodyStart, p.bodyEnd);
  if (p.children || p.message) return { kind: 'ok', data: body };
  const data = decodeTransferEncoding(body, p.encoding);
  return data ? { kind: 'ok', data } : { kind: 'unknown-cte', encoding: p.encoding };
}

/** BINARY.SIZE[path] (RFC 3516 §4.3): the decoded size, or why there is none. */
export function binarySize(
  raw: Buffer,
  root: MimePart,
  path: readonly number[],
): { kind: 'ok'; size: number } | { kind: 'unknown-cte'; encoding: string } | { kind: 'nonexistent' } {
  const r = binaryContent(raw, root, path);
  return r.kind === 'ok' ? { kind: 'ok', size: r.data.length } : r;
}

/**
 * Parses a section text such as "1.2.HEADER.FIELDS", "3.MIME", "TEXT", "2"
 * or "" into a path and text (field names come separately). Null when the
 * section is not valid RFC 9051 section-spec syntax.
 */
export function parseSectionText(s: string): { path: number[]; text: SectionText } | null {
  const parts = s.length === 0 ? [] : s.split('.');
  const path: number[] = [];
  let i = 0;
  while (i < parts.length && /^[1-9][0-9]{0,8}$/.test(parts[i]!)) path.push(Number(parts[i++]));
  const rest = parts.slice(i).join('.').toUpperCase();
  if (rest === '') return { path, text: '' };
  if (rest === 'MIME') return path.length > 0 ? { path, text: 'MIME' } : null;
  if (rest === 'HEADER' || rest === 'TEXT' || rest === 'HEADER.FIELDS' || rest === 'HEADER.FIELDS.NOT') return { path, text: rest };
  return null;
}
