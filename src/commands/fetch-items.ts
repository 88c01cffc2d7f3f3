// Rendering of FETCH data items (RFC 9051 §7.5.2). Message bytes stream to
// the socket in chunks with backpressure; nothing here holds a whole large
// message just to send BODY[] (STYLE.md habit 13).
import type { CommandContext } from './types.js';
import type { MessageBody, MessageMeta } from '../store/types.js';
import { formatDateTime } from '../wire/index.js';
import { flagsOf } from './format.js';
import { extractSection, messageStructure, renderEnvelope, renderBodyStructure, binarySection, previewText } from './mime-bridge.js';
import { nstring } from '../wire/index.js';

export interface SectionSpec {
  /** Part numbers, e.g. [1, 2] for "1.2"; [] for the whole message. */
  path: number[];
  kind: '' | 'HEADER' | 'HEADER.FIELDS' | 'HEADER.FIELDS.NOT' | 'TEXT' | 'MIME';
  fields?: string[];
}

export type FetchItem =
  | { kind: 'FLAGS' | 'UID' | 'INTERNALDATE' | 'RFC822.SIZE' | 'ENVELOPE' | 'BODY' | 'BODYSTRUCTURE' | 'RFC822' | 'RFC822.HEADER' | 'RFC822.TEXT' | 'PREVIEW' | 'MODSEQ' }
  | { kind: 'SAVEDATE' | 'EMAILID' | 'THREADID' }
  | { kind: 'BODY[]' | 'BINARY' | 'BINARY.SIZE'; peek: boolean; section: SectionSpec; partial?: { offset: number; length: number } };

/** Items answered from metadata alone. */
const META_ITEMS: ReadonlySet<string> = new Set(['FLAGS', 'UID', 'INTERNALDATE', 'RFC822.SIZE', 'MODSEQ', 'SAVEDATE', 'EMAILID', 'THREADID']);

/** Items whose answer needs the message bytes. */
export function needsBody(i: FetchItem): boolean {
  return !META_ITEMS.has(i.kind);
}

/** Items that set \Seen (RFC 9051 §6.4.5: BODY[...] and BINARY[...] without .PEEK; RFC 3501 RFC822 and RFC822.TEXT). */
export function setsSeen(i: FetchItem): boolean {
  if (i.kind === 'BODY[]' || i.kind === 'BINARY') return !i.peek;
  return i.kind === 'RFC822' || i.kind === 'RFC822.TEXT';
}

/** Sections at or below this size are rendered in memory; larger ones stream. */
const STREAM_THRESHOLD = 256 * 1024;
const STREAM_CHUNK = 64 * 1024;

function sectionName(i: Extract<FetchItem, { section: SectionSpec }>): string {
  const s = i.section;
  let t = s.path.join('.');
  if (s.kind) t += (t ? '.' : '') + s.kind;
  if (s.fields) t += ` (${s.fields.join(' ')})`;
  const base = i.kind === 'BODY[]' ? 'BODY' : i.kind;
  return `${base}[${t}]`;
}

/** The text of an item answered from metadata alone, or null for items that need the message. */
function metaItem(s: CommandContext['session'], item: FetchItem, meta: MessageMeta): string | null {
  switch (item.kind) {
    case 'UID': return `UID ${meta.uid}`;
    case 'FLAGS': return `FLAGS ${flagsOf(s, meta)}`;
    // RFC 9051 §2.3.3: in the zone the message was given (APPEND, delivery, import).
    case 'INTERNALDATE': return `INTERNALDATE "${formatDateTime(meta.internalDate, meta.internalTz ?? 0)}"`;
    case 'SAVEDATE': {
      // RFC 8514 §4.2; a message stored before save dates were kept answers its internal date (its arrival, as best known).
      const t = meta.saveDate ?? meta.internalDate;
      return `SAVEDATE "${formatDateTime(t, -new Date(t).getTimezoneOffset())}"`;
    }
    // RFC 8474 §5.1-5.2: parenthesised objectid; no THREADID is computed, so NIL.
    case 'EMAILID': return meta.emailId ? `EMAILID (${meta.emailId})` : 'EMAILID NIL';
    case 'THREADID': return 'THREADID NIL';
    case 'RFC822.SIZE': return `RFC822.SIZE ${meta.size}`;
    case 'MODSEQ': return `MODSEQ (${meta.modseq})`;
    default: return null;
  }
}

/**
 * One FETCH response for items that need no message bytes (the resync of a
 * caching client: UID FETCH 1:* (UID FLAGS)); the caller writes many at once.
 */
export function renderMetaLine(s: CommandContext['session'], seq: number, meta: MessageMeta, items: FetchItem[], seenNow: boolean): string {
  const parts = items.map((i) => metaItem(s, i, meta)!);
  // RFC 9051 §6.4.5: when FETCH sets \Seen, the new flags are reported too.
  if (seenNow && !items.some((i) => i.kind === 'FLAGS')) parts.push(`FLAGS ${flagsOf(s, meta)}`);
  return `* ${seq} FETCH (${parts.join(' ')})\r\n`;
}

export async function renderMessage(
  ctx: CommandContext,
  seq: number,
  meta: MessageMeta,
  body: MessageBody | null,
  items: FetchItem[],
  seenNow: boolean,
): Promise<void> {
  const out = ctx.out;
  const s = ctx.session;
  const parts: (string | Buffer)[] = [];
  let first = true;
  const add = (text: string | Buffer) => {
    if (!first) parts.push(' ');
    first = false;
    parts.push(text);
  };
  const flush = () => {
    if (parts.length === 0) return;
    // Adjacent text is joined before encoding: one Buffer per run of text, not per item.
    const bufs: Buffer[] = [];
    let text = '';
    for (const p of parts) {
      if (typeof p === 'string') text += p;
      else {
        if (text) bufs.push(Buffer.from(text, 'utf8'));
        text = '';
        bufs.push(p);
      }
    }
    if (text) bufs.push(Buffer.from(text, 'utf8'));
    out.raw(bufs.length === 1 ? bufs[0]! : Buffer.concat(bufs));
    parts.length = 0;
  };
  const literalHeader = (n: number, binary = false) => `${binary ? '~' : ''}{${n}}\r\n`;
  let flagsSent = false;
  // Decode BINARY sections first: an unknown encoding must fail the command
  // (NO [UNKNOWN-CTE], RFC 3516 §4.3) before any byte of this response is written.
  const binaries = new Map<FetchItem, Buffer>();
  for (const item of items) {
    if (item.kind === 'BINARY' || item.kind === 'BINARY.SIZE') binaries.set(item, await binarySection(body!, item.section.path));
  }
  parts.push(`* ${seq} FETCH (`);
  for (const item of items) {
    if (item.kind === 'RFC822' || (item.kind === 'BODY[]' && item.section.kind === '' && item.section.path.length === 0)) {
      // The whole message: streamed in chunks when large.
      const name = item.kind === 'BODY[]' ? sectionName(item) : 'RFC822';
      const partial = item.kind === 'BODY[]' ? item.partial : undefined;
      let start = 0;
      let end = body!.size;
      if (partial) {
        start = Math.min(partial.offset, body!.size);
        end = Math.min(start + partial.length, body!.size);
      }
      add(`${name}${partial ? `<${partial.offset}>` : ''} ${literalHeader(end - start)}`);
      if (end - start <= STREAM_THRESHOLD) {
        parts.push(await body!.read(start, end));
      } else {
        flush();
        for await (const chunk of body!.stream(start, end, STREAM_CHUNK)) {
          out.raw(chunk);
          await out.drain();
        }
      }
      continue;
    }
    switch (item.kind) {
      case 'UID': case 'FLAGS': case 'INTERNALDATE': case 'RFC822.SIZE': case 'MODSEQ': case 'SAVEDATE': case 'EMAILID': case 'THREADID':
        add(metaItem(s, item, meta)!);
        if (item.kind === 'FLAGS') flagsSent = true;
        break;
      case 'ENVELOPE': {
        const st = await messageStructure(body!);
        add('ENVELOPE ');
        parts.push(renderEnvelope(st));
        break;
      }
      case 'BODY':
      case 'BODYSTRUCTURE': {
        const st = await messageStructure(body!);
        add(`${item.kind} `);
        parts.push(renderBodyStructure(st, item.kind === 'BODYSTRUCTURE'));
        break;
      }
      case 'PREVIEW': {
        const st = await messageStructure(body!);
        add('PREVIEW ');
        parts.push(nstring(await previewText(body!, st)));
        break;
      }
      case 'BODY[]':
      case 'RFC822.HEADER':
      case 'RFC822.TEXT': {
        const section: SectionSpec =
          item.kind === 'RFC822.HEADER' ? { path: [], kind: 'HEADER' } : item.kind === 'RFC822.TEXT' ? { path: [], kind: 'TEXT' } : (item as { section: SectionSpec }).section;
        let data = await extractSection(body!, section);
        const partial = item.kind === 'BODY[]' ? item.partial : undefined;
        if (partial) data = data.subarray(Math.min(partial.offset, data.length), Math.min(partial.offset + partial.length, data.length));
        const name = item.kind === 'BODY[]' ? sectionName(item) : item.kind;
        add(`${name}${partial ? `<${partial.offset}>` : ''} ${literalHeader(data.length)}`);
        parts.push(data);
        break;
      }
      case 'BINARY':
      case 'BINARY.SIZE': {
        const bin = binaries.get(item)!;
        const name = sectionName(item);
        if (item.kind === 'BINARY.SIZE') {
          add(`${name} ${bin.length}`);
          break;
        }
        let data = bin;
        if (item.partial) data = data.subarray(Math.min(item.partial.offset, data.length), Math.min(item.partial.offset + item.partial.length, data.length));
        // RFC 3516 §4.2: literal8 when the content holds NUL.
        add(`${name}${item.partial ? `<${item.partial.offset}>` : ''} ${literalHeader(data.length, data.includes(0))}`);
        parts.push(data);
        break;
      }
    }
  }
  // RFC 9051 §6.4.5: when FETCH sets \Seen, the new flags are reported too.
  if (seenNow && !flagsSent) add(`FLAGS ${flagsOf(s, meta)}`);
  parts.push(')\r\n');
  flush();
}
