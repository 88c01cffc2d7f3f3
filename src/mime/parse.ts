// The MIME part tree of a message with byte offsets (RFC 5322, RFC 2045,
// RFC 2046). Lenient by design: any byte sequence yields a tree; limits turn
// the rest of an oversized message into an opaque leaf instead of an error.
//
// Part numbering (RFC 9051 §6.4.5) is applied by section.ts over this tree:
// the root is the message; a multipart's children are 1, 2, ...; a
// message/rfc822 part's `message` is the embedded message.

import { buildEnvelope } from './envelope.js';
import { findHeaderEnd, Header } from './header.js';
import { getParam, parseLanguageList, parseStructured, stripComments } from './params.js';
import type { Disposition, MimeLimits, MimePart } from './types.js';

/** Nesting deeper than this is never seen in legitimate mail and only costs recursion (and stack). */
export const MAX_MIME_DEPTH = 20;
/** Parts per message: enough for big digests and mailing-list archives, bounds BODYSTRUCTURE size. */
export const MAX_MIME_PARTS = 1000;
/** Header bytes parsed into fields per part: RFC 5322 lines are ≤ 998 bytes; 256 KiB leaves room for long Received chains. */
export const MAX_HEADER_BYTES = 256 * 1024;

export const DEFAULT_LIMITS: MimeLimits = Object.freeze({
  maxDepth: MAX_MIME_DEPTH,
  maxParts: MAX_MIME_PARTS,
  maxHeaderBytes: MAX_HEADER_BYTES,
});

const LF = 0x0a;
const CR = 0x0d;

interface Ctx {
  raw: Buffer;
  limits: MimeLimits;
  parts: number;
}

/** Counts LF bytes in [start, end): RFC 9051 body-fld-lines. */
export function countLines(raw: Buffer, start: number, end: number): number {
  let n = 0;
  let pos = raw.indexOf(LF, start);
  while (pos >= 0 && pos < end) {
    n++;
    pos = raw.indexOf(LF, pos + 1);
  }
  return n;
}

/** Parses a whole message. Never throws on any input. */
export function parseMessage(raw: Buffer, limits?: Partial<MimeLimits>): MimePart {
  const ctx: Ctx = { raw, limits: { ...DEFAULT_LIMITS, ...limits }, parts: 0 };
  return parseEntity(ctx, 0, raw.length, 0, false, true);
}

const IDENTITY_ENCODINGS = new Set(['7bit', '8bit', 'binary']);

function leaf(start: number, end: number, type: string, subtype: string): MimePart {
  return {
    headerStart: start,
    headerEnd: start,
    bodyStart: start,
    bodyEnd: end,
    type,
    subtype,
    params: [],
    encoding: '7bit',
    id: null,
    description: null,
    disposition: null,
    language: null,
    location: null,
    md5: null,
    size: end - start,
    lines: 0,
  };
}

function makeOpaque(part: MimePart): void {
  part.type = 'application';
  part.subtype = 'octet-stream';
  part.params = [];
  part.opaque = true;
  part.lines = 0;
  delete part.children;
  delete part.message;
}

/**
 * Parses the entity (header + body) in [start, end).
 * @param inDigest the parent is multipart/digest (default type message/rfc822, RFC 2046 §5.1.5)
 * @param isMessage the entity is a message (root or embedded): it gets an ENVELOPE
 */
function parseEntity(ctx: Ctx, start: number, end: number, depth: number, inDigest: boolean, isMessage: boolean): MimePart {
  const { raw, limits } = ctx;
  ctx.parts++;
  const { fieldsEnd, bodyStart } = findHeaderEnd(raw, start, end);
  const header = Header.parse(raw, start, fieldsEnd, limits.maxHeaderBytes);

  let type = inDigest ? 'message' : 'text';
  let subtype = inDigest ? 'rfc822' : 'plain';
  let params: MimePart['params'] = [];
  const ct = header.get('content-type');
  if (ct !== null) {
    const sv = parseStructured(ct);
    const m = /^([^/\s]+)\/([^/\s]+)$/.exec(sv.value);
    // RFC 2045 §5.2: an invalid Content-Type means the default (text/plain; charset=us-ascii).
    if (m) {
      type = m[1]!.toLowerCase();
      subtype = m[2]!.toLowerCase();
      params = sv.params;
    } else {
      type = 'text';
      subtype = 'plain';
    }
  }
  const cte = header.get('content-transfer-encoding');
  const encoding = cte ? stripComments(cte).trim().toLowerCase() || '7bit' : '7bit';
  let disposition: Disposition | null = null;
  const cd = header.get('content-disposition');
  if (cd !== null) {
    const sv = parseStructured(cd);
    if (sv.value.length > 0) disposition = { type: sv.value.toLowerCase(), params: sv.params };
  }
  const lang = header.get('content-language');
  const language = lang === null ? null : parseLanguageList(lang);

  const part: MimePart = {
    headerStart: start,
    headerEnd: bodyStart,
    bodyStart,
    bodyEnd: end,
    type,
    subtype,
    params,
    encoding,
    id: header.get('content-id'),
    description: header.get('content-description'),
    disposition,
    language: language && language.length > 0 ? language : null,
    location: header.get('content-location')?.replace(/\s+/g, '') ?? null,
    md5: header.get('content-md5'),
    size: end - bodyStart,
    lines: 0,
  };
  if (isMessage) part.envelope = buildEnvelope(header);

  if (type === 'multipart') {
    if (depth >= limits.maxDepth || ctx.parts >= limits.maxParts) makeOpaque(part);
    else part.children = splitMultipart(ctx, part, depth, subtype === 'digest');
  } else if (type === 'message' && (subtype === 'rfc822' || subtype === 'global')) {
    part.lines = countLines(raw, bodyStart, end);
    if (depth >= limits.maxDepth || ctx.parts >= limits.maxParts) makeOpaque(part);
    else if (IDENTITY_ENCODINGS.has(encoding)) part.message = parseEntity(ctx, bodyStart, end, depth + 1, false, true);
    // else: an encoded message/rfc822 (RFC 2046 §5.2.1 forbids it) is not looked into.
  } else if (type === 'text') {
    part.lines = countLines(raw, bodyStart, end);
  }
  return part;
}

/**
 * Finds the next boundary delimiter line (RFC 2046 §5.1.1) at or after
 * `from`: "--" boundary ["--"] *LWSP, then CRLF / LF / end. Returns the line
 * start, the byte after its line break, and whether it closes the multipart.
 */
function findBoundary(
  raw: Buffer,
  needle: Buffer,
  from: number,
  end: number,
): { line: number; next: number; close: boolean } | null {
  let pos = from;
  while (pos < end) {
    const idx = raw.indexOf(needle, pos);
    if (idx < 0 || idx + needle.length > end) return null;
    pos = idx + 1;
    if (idx !== from && raw[idx - 1] !== LF) continue;
    let p = idx + needle.length;
    let close = false;
    if (p + 2 <= end && raw[p] === 0x2d && raw[p + 1] === 0x2d) {
      close = true;
      p += 2;
    }
    while (p < end && (raw[p] === 0x20 || raw[p] === 0x09)) p++;
    if (p === end) return { line: idx, next: end, close };
    if (raw[p] === LF) return { line: idx, next: p + 1, close };
    if (raw[p] === CR && p + 1 < end && raw[p + 1] === LF) return { line: idx, next: p + 2, close };
    if (raw[p] === CR && p + 1 === end) return { line: idx, next: end, close };
  }
  return null;
}

/** The body-part end before a delimiter line: its preceding CRLF belongs to the delimiter (RFC 2046 §5.1.1). */
function endBefore(raw: Buffer, partStart: number, line: number): number {
  let e = line;
  if (e > partStart && raw[e - 1] === LF) {
    e--;
    if (e > partStart && raw[e - 1] === CR) e--;
  }
  return e;
}

function splitMultipart(ctx: Ctx, part: MimePart, depth: number, digest: boolean): MimePart[] {
  const { raw, limits } = ctx;
  const start = part.bodyStart;
  const end = part.bodyEnd;
  const boundary = getParam(part.params, 'boundary');
  const children: MimePart[] = [];
  // The boundary came from a header decoded as UTF-8 (or ASCII): encode it back the same way.
  const needle = Buffer.from('--' + (boundary ?? ''), 'utf8');
  const first = boundary ? findBoundary(raw, needle, start, end) : null;
  if (!boundary || !first) {
    // No usable boundary: the whole body is one text part (what readers display).
    children.push(wholeBodyChild(ctx, start, end));
    return children;
  }
  let cur: { line: number; next: number; close: boolean } | null = first;
  while (cur && !cur.close) {
    const partStart = cur.next;
    if (ctx.parts >= limits.maxParts) {
      // Out of budget: the rest of this multipart is one opaque leaf.
      ctx.parts++;
      const rest = leaf(partStart, end, 'application', 'octet-stream');
      rest.opaque = true;
      children.push(rest);
      break;
    }
    const nextB = findBoundary(raw, needle, partStart, end);
    const partEnd = nextB ? endBefore(raw, partStart, nextB.line) : end; // missing close delimiter: runs to the end
    children.push(parseEntity(ctx, partStart, partEnd, depth + 1, digest, false));
    cur = nextB;
  }
  if (children.length === 0) {
    // Only a close delimiter: RFC 9051 needs at least one body; give an empty text part.
    children.push(wholeBodyChild(ctx, first.line, first.line));
  }
  return children;
}

function wholeBodyChild(ctx: Ctx, start: number, end: number): MimePart {
  ctx.parts++;
  const p = leaf(start, end, 'text', 'plain');
  p.lines = countLines(ctx.raw, start, end);
  return p;
}

/** Iterates over every part of the tree (depth-first, pre-order), embedded messages included. */
export function* walkParts(part: MimePart): Generator<MimePart> {
  yield part;
  if (part.children) for (const c of part.children) yield* walkParts(c);
  if (part.message) yield* walkParts(part.message);
}
