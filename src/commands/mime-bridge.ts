// Where FETCH and SEARCH meet src/mime: the part tree of a stored message,
// its sections, its decoded text. The tree is parsed at most once per opened
// message and command.
import {
  addressSearchText,
  parseMessage, envelopeOf, formatEnvelope, formatBodyStructure, sectionBytes, sectionRange, binaryContent,
  previewPart, PREVIEW_MAX_INPUT, buildPreview, Header, decodeEncodedWords, searchHeaderText, searchBodyText,
  sentDayOf, downgradeEnvelope, type MimePart,
} from '../mime/index.js';
import type { MailStore, MessageBody } from '../store/types.js';
import type { MessageContent } from '../search/evaluate.js';
import type { SectionSpec } from './fetch-items.js';
import { no } from './types.js';

export interface ParsedMessage {
  root: MimePart;
  /** The whole message; read from the store on first use. */
  raw(): Promise<Buffer>;
}

const cache = new WeakMap<MessageBody, ParsedMessage>();

/**
 * The part tree of a stored message: the one the store computed at APPEND
 * when it has it (no message bytes are read then), else parsed now.
 */
export async function messageStructure(body: MessageBody): Promise<ParsedMessage> {
  return structureNow(body) ?? parsedNow(body);
}

/** The part tree when the store has it (no parsing, no await: a message list's ENVELOPE and BODYSTRUCTURE), else null. */
export function structureNow(body: MessageBody): ParsedMessage | null {
  let p = cache.get(body);
  if (p) return p;
  if (!body.structure) return null;
  let rawP: Promise<Buffer> | null = null;
  p = { root: body.structure, raw: () => (rawP ??= body.read(0, body.size)) };
  cache.set(body, p);
  return p;
}

/** The store's part tree as a ParsedMessage for one use, not cached (null when the store has none). */
export function localStructure(body: MessageBody): ParsedMessage | null {
  if (!body.structure) return null;
  let rawP: Promise<Buffer> | null = null;
  return { root: body.structure, raw: () => (rawP ??= body.read(0, body.size)) };
}

async function parsedNow(body: MessageBody): Promise<ParsedMessage> {
  let p = cache.get(body);
  if (!p) {
    let rawP: Promise<Buffer> | null = null;
    const raw = () => (rawP ??= body.read(0, body.size));
    if (body.structure) {
      p = { root: body.structure, raw };
    } else {
      const bytes = await raw();
      p = { root: parseMessage(bytes), raw };
    }
    cache.set(body, p);
  }
  return p;
}

/** Top-level HEADER.FIELDS answers kept per part tree: a message list asks for the same few fields every time. */
const MAX_FIELD_LISTS_PER_MESSAGE = 4;

/**
 * Formatted ENVELOPE / BODY / BODYSTRUCTURE and HEADER.FIELDS bytes per part
 * tree (trees are shared by the store's cache, and leave memory with it).
 */
const formatted = new WeakMap<
  MimePart,
  { envelope?: Buffer; body?: Buffer; bodystructure?: Buffer; fields?: Map<string, Buffer>; envelope7?: Buffer; body7?: Buffer; bodystructure7?: Buffer }
>();

function memo(root: MimePart) {
  let f = formatted.get(root);
  if (!f) {
    f = {};
    formatted.set(root, f);
  }
  return f;
}

/** True when a byte of `b` has the high bit set. */
function eightBit(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i]! > 0x7f) return true;
  return false;
}

/**
 * ENVELOPE as UTF-8 bytes, formatted once per part tree. `downgrade` (a session
 * with neither UTF8=ACCEPT nor IMAP4rev2) gets the 7-bit form of RFC 6857 §3
 * when the plain form has any 8-bit byte.
 */
export function renderEnvelope(p: ParsedMessage, downgrade = false): Buffer {
  const f = memo(p.root);
  const env = p.root.envelope ?? envelopeOf(p.root);
  const plain = (f.envelope ??= Buffer.from(formatEnvelope(env), 'utf8'));
  if (!downgrade || !eightBit(plain)) return plain;
  return (f.envelope7 ??= Buffer.from(formatEnvelope(downgradeEnvelope(env)), 'utf8'));
}

/** BODY (extended = false) or BODYSTRUCTURE as UTF-8 bytes, formatted once per part tree; `downgrade` as for renderEnvelope. */
export function renderBodyStructure(p: ParsedMessage, extended: boolean, downgrade = false): Buffer {
  const f = memo(p.root);
  const plain = extended
    ? (f.bodystructure ??= Buffer.from(formatBodyStructure(p.root, true), 'utf8'))
    : (f.body ??= Buffer.from(formatBodyStructure(p.root, false), 'utf8'));
  if (!downgrade || !eightBit(plain)) return plain;
  return extended
    ? (f.bodystructure7 ??= Buffer.from(formatBodyStructure(p.root, true, true), 'utf8'))
    : (f.body7 ??= Buffer.from(formatBodyStructure(p.root, false, true), 'utf8'));
}

const prefixes = new WeakMap<MessageBody, Promise<Buffer>>();

/** The bytes up to the end of the top-level header, read once per opened message. */
function headerPrefix(body: MessageBody, p: ParsedMessage): Promise<Buffer> {
  let r = prefixes.get(body);
  if (!r) {
    // The store usually keeps the header bytes; only long headers come from the file.
    r = body.header && body.header.length === p.root.headerEnd ? Promise.resolve(body.header) : body.read(0, p.root.headerEnd);
    prefixes.set(body, r);
  }
  return r;
}

/**
 * Start the reads a FETCH of `sections` will need, so several messages' file
 * reads run at once while responses are still written in order; undefined
 * when there is nothing to read ahead (the store gave the tree and the header
 * bytes, as for nearly every message list).
 */
export function prefetch(body: MessageBody, sections: readonly SectionSpec[]): Promise<void> | undefined {
  if (body.structure && body.header) return undefined;
  return messageStructure(body).then((p) => {
    if (sections.some((s) => s.path.length === 0 && s.kind.startsWith('HEADER'))) void headerPrefix(body, p).catch(() => undefined);
  });
}

/** BODY[section] bytes, reading only the byte range the section needs where it can. */
export async function extractSection(body: MessageBody, s: SectionSpec): Promise<Buffer> {
  const p = await messageStructure(body);
  const spec = { path: s.path, text: s.kind, fields: s.fields };
  if (s.path.length === 0 && (s.kind === 'HEADER.FIELDS' || s.kind === 'HEADER.FIELDS.NOT')) {
    const f = memo(p.root);
    const key = `${s.kind} ${s.fields!.join(' ').toLowerCase()}`;
    const hit = f.fields?.get(key);
    if (hit) return hit;
    const bytes = sectionBytes(await headerPrefix(body, p), p.root, spec);
    f.fields ??= new Map();
    if (f.fields.size >= MAX_FIELD_LISTS_PER_MESSAGE) f.fields.delete(f.fields.keys().next().value as string);
    f.fields.set(key, bytes);
    return bytes;
  }
  if (s.path.length === 0 && s.kind === 'HEADER') {
    // The top-level header: the offsets are absolute, so a prefix of the message is enough.
    return sectionBytes(await headerPrefix(body, p), p.root, spec);
  }
  if (s.kind !== 'HEADER.FIELDS' && s.kind !== 'HEADER.FIELDS.NOT') {
    const r = sectionRange(p.root, spec);
    if (!r) return Buffer.alloc(0);
    return body.read(r.start, r.end);
  }
  return sectionBytes(await p.raw(), p.root, spec);
}

/** BINARY[path] content (RFC 3516); NO [UNKNOWN-CTE] when the encoding is not known. */
export async function binarySection(body: MessageBody, path: number[]): Promise<Buffer> {
  const p = await messageStructure(body);
  const r = binaryContent(await p.raw(), p.root, path);
  if (r.kind === 'unknown-cte') throw no(`Unknown Content-Transfer-Encoding ${r.encoding.slice(0, 40)}`, 'UNKNOWN-CTE');
  if (r.kind === 'nonexistent') return Buffer.alloc(0);
  return r.data;
}

/** PREVIEW (RFC 8970) text, reading no further into the message than the preview needs. */
export async function previewText(body: MessageBody, p: ParsedMessage): Promise<string> {
  const part = previewPart(p.root);
  if (!part) return '';
  const prefix = await body.read(0, Math.min(part.bodyEnd, part.bodyStart + PREVIEW_MAX_INPUT));
  return buildPreview(prefix, p.root);
}

/** Text accessors for SEARCH's content keys (decoded header values, decoded text parts). */
export async function searchContent(store: MailStore, mailboxId: number, uid: number): Promise<MessageContent | null> {
  const body = await store.openMessage(mailboxId, uid);
  if (!body) return null;
  const parsed = await messageStructure(body);
  const root = parsed.root;
  const raw = await parsed.raw();
  const header = Header.parse(raw, root.headerStart, root.headerEnd);
  let bodyText: string | null = null;
  return {
    headerValues: (field) => header.getAll(field).map((v) => decodeEncodedWords(v)),
    // FROM/TO/CC/BCC keys: the parsed, canonical form (addressSearchText), as the store's header index holds it.
    addressValues: (field) => header.getAll(field).map((v) => addressSearchText(v)),
    headerText: () => searchHeaderText(raw, root),
    bodyText: () => (bodyText ??= searchBodyText(raw, root)),
    sentDay: () => sentDayOf(header.get('Date')),
  };
}
