// Rendering of FETCH data items (RFC 9051 §7.5.2). Message bytes stream to
// the socket in chunks with backpressure; nothing here holds a whole large
// message just to send BODY[] (STYLE.md habit 13).
import type { CommandContext } from './types.js';
import type { MailStore, MessageBody, MessageMeta } from '../store/types.js';
import { formatDateTime } from '../wire/index.js';
import { flagsOf, flagList, flagListRecent } from './format.js';
import { extractSection, messageStructure, localStructure, renderEnvelope, renderBodyStructure, binarySection, previewText, type ParsedMessage } from './mime-bridge.js';
import { nstring } from '../wire/index.js';
import { fetchHead } from './uidonly.js';

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
    // RFC 8474 §5.1-5.2: parenthesised objectid; THREADID NIL where the store keeps none (withThreadIds).
    case 'EMAILID': return meta.emailId ? `EMAILID (${meta.emailId})` : 'EMAILID NIL';
    case 'THREADID': return meta.threadId ? `THREADID (${meta.threadId})` : 'THREADID NIL';
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
  return `* ${fetchHead(s, seq, meta.uid)} (${parts.join(' ')})\r\n`;
}

const META_UID = 0;
const META_FLAGS = 1;
const META_INTERNALDATE = 2;
const META_SIZE = 3;
const META_MODSEQ = 4;

/** Bytes of a rendered line besides the flags (sequence number, UID, INTERNALDATE, size, modseq and item names). */
const META_LINE_FIXED_MAX = 160;
/**
 * Byte chunks meta lines are written into: the first is small (from Node's
 * shared pool: a 30-message mailbox costs no big allocation), each next one
 * twice the last, up to the largest (a big batch leaves in a few of them).
 */
const META_FIRST_CHUNK_BYTES = 4 * 1024;
const META_CHUNK_BYTES = 256 * 1024;

const ascii = (t: string) => Buffer.from(t, 'latin1');
const B_FETCH = ascii(' FETCH (');
const B_UIDFETCH = ascii(' UIDFETCH ('); // RFC 9586 §3
const B_END = ascii(')\r\n');
const B_SPACE = ascii(' ');
const B_ITEM: Record<number, Buffer> = {
  [META_UID]: ascii('UID '),
  [META_FLAGS]: ascii('FLAGS '),
  [META_INTERNALDATE]: ascii('INTERNALDATE "'),
  [META_SIZE]: ascii('RFC822.SIZE '),
  [META_MODSEQ]: ascii('MODSEQ ('),
};

/** Writes the decimal digits of `n` (an integer below 2^53) at `p`; returns the position after them. */
function putNum(b: Buffer, p: number, n: number): number {
  if (n < 10) {
    b[p] = 48 + n;
    return p + 1;
  }
  let digits = 1;
  for (let p10 = 10; p10 <= n; p10 *= 10) digits++;
  let k = p + digits - 1;
  if (n <= 0x7fffffff) {
    // Small integers: integer division.
    for (let x = n; x > 0; k--) {
      const q = (x / 10) | 0;
      b[k] = 48 + (x - q * 10);
      x = q;
    }
  } else {
    for (let x = n; x > 0; k--) {
      const q = Math.floor(x / 10);
      b[k] = 48 + (x - q * 10);
      x = q;
    }
  }
  return p + digits;
}

/** Copies `src` (a few bytes) to `b` at `p`; returns the position after it. */
function putBytes(b: Buffer, p: number, src: Buffer): number {
  for (let k = 0; k < src.length; k++) b[p++] = src[k]!;
  return p;
}

/** Flag arrays remembered by identity per writer (see flagsOf). */
const FLAG_SLOTS = 4;

/** Flag lists as bytes, one per shared frozen flags array of the store, without and with \Recent. */
const flagBytes = new WeakMap<readonly string[], Buffer>();
const flagBytesRecent = new WeakMap<readonly string[], Buffer>();

/**
 * Many FETCH responses with the same metadata-only items (the flags resync of
 * a caching client: UID FETCH 1:* (FLAGS) over a whole mailbox), written as
 * bytes straight into large chunks: no string per line, no encoding at write,
 * little garbage. Returns null when an item needs the message bytes.
 */
export class MetaLineWriter {
  private buf: Buffer = Buffer.allocUnsafe(0);
  private pos = 0;
  private readonly slotKeys: (readonly string[] | null)[] = new Array<readonly string[] | null>(2 * FLAG_SLOTS).fill(null);
  private readonly slotVals: Buffer[] = new Array<Buffer>(2 * FLAG_SLOTS);
  private readonly nextSlot = [0, 0];
  private readonly needsFlags: boolean;
  private chunkBytes = META_FIRST_CHUNK_BYTES / 2;

  private constructor(
    private readonly codes: number[],
    private readonly recent: ReadonlySet<number> | null,
    /** UIDONLY (RFC 9586 §3): `* <uid> UIDFETCH (`. */
    private readonly uidOnly = false,
  ) {
    this.needsFlags = codes.includes(META_FLAGS);
    // The constant bytes before each item's value, separators included: " FETCH (UID ", " FLAGS ", ...
    this.heads = codes.map((c, k) => Buffer.concat([k === 0 ? (uidOnly ? B_UIDFETCH : B_FETCH) : B_SPACE, B_ITEM[c]!]));
  }
  private readonly heads: Buffer[];

  static for(s: CommandContext['session'], items: FetchItem[]): MetaLineWriter | null {
    const codes: number[] = [];
    for (const i of items) {
      switch (i.kind) {
        case 'UID': codes.push(META_UID); break;
        case 'FLAGS': codes.push(META_FLAGS); break;
        case 'INTERNALDATE': codes.push(META_INTERNALDATE); break;
        case 'RFC822.SIZE': codes.push(META_SIZE); break;
        case 'MODSEQ': codes.push(META_MODSEQ); break;
        default: return null;
      }
    }
    const view = s.selected;
    return new MetaLineWriter(codes, s.recentEnabled && view ? view.recent : null, s.uidOnly);
  }

  private flagsOf(m: MessageMeta): Buffer {
    const f = m.flags;
    const recent = this.recent !== null && this.recent.has(m.uid);
    // The last few flag arrays seen (a mailbox has a handful of flag combinations): identity checks before the WeakMap.
    // Slots 0..FLAG_SLOTS-1 without \Recent, FLAG_SLOTS.. with it.
    const base = recent ? FLAG_SLOTS : 0;
    const keys = this.slotKeys;
    for (let k = base; k < base + FLAG_SLOTS; k++) if (keys[k] === f) return this.slotVals[k]!;
    if (!Object.isFrozen(f)) return Buffer.from(recent ? flagListRecent(f) : flagList(f), 'utf8');
    const map = recent ? flagBytesRecent : flagBytes;
    let b = map.get(f);
    if (b === undefined) map.set(f, (b = Buffer.from(recent ? flagListRecent(f) : flagList(f), 'utf8')));
    const slot = base + this.nextSlot[recent ? 1 : 0]!;
    this.nextSlot[recent ? 1 : 0] = (slot - base + 1) % FLAG_SLOTS;
    keys[slot] = f;
    this.slotVals[slot] = b;
    return b;
  }

  /** Appends the response for message `meta` at sequence number `seq`; `out` receives full chunks. */
  line(seq: number, meta: MessageMeta, out: (chunk: Buffer) => void): void {
    const fb = this.needsFlags ? this.flagsOf(meta) : null;
    const need = META_LINE_FIXED_MAX + (fb ? fb.length : 0);
    if (this.pos + need > this.buf.length) {
      this.take(out);
      this.chunkBytes = Math.min(META_CHUNK_BYTES, this.chunkBytes * 2);
      this.buf = Buffer.allocUnsafe(Math.max(this.chunkBytes, need));
    }
    // Locals, not fields, while the line is written (the hot loop of a flags resync).
    const b = this.buf;
    let p = this.pos;
    b[p++] = 42; // "* "
    b[p++] = 32;
    p = putNum(b, p, this.uidOnly ? meta.uid : seq);
    const codes = this.codes;
    const heads = this.heads;
    for (let k = 0; k < codes.length; k++) {
      p = putBytes(b, p, heads[k]!);
      switch (codes[k]) {
        case META_UID: p = putNum(b, p, meta.uid); break;
        case META_FLAGS: p = putBytes(b, p, fb!); break;
        case META_INTERNALDATE:
          p += b.write(formatDateTime(meta.internalDate, meta.internalTz ?? 0), p, 'latin1');
          b[p++] = 34;
          break;
        case META_SIZE: p = putNum(b, p, meta.size); break;
        default:
          p = putNum(b, p, meta.modseq);
          b[p++] = 41;
      }
    }
    this.pos = putBytes(b, p, B_END);
  }

  /** Hands over what is written so far. */
  take(out: (chunk: Buffer) => void): void {
    if (this.pos > 0) out(this.buf.subarray(0, this.pos));
    this.buf = this.buf.subarray(this.pos);
    this.pos = 0;
  }
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
    // Adjacent text is joined; the connection gathers the pieces of the whole
    // command into one write (no Buffer per response here).
    let text = '';
    for (const p of parts) {
      if (typeof p === 'string') text += p;
      else {
        if (text) out.raw(text);
        text = '';
        out.raw(p);
      }
    }
    if (text) out.raw(text);
    parts.length = 0;
  };
  const literalHeader = (n: number, binary = false) => `${binary ? '~' : ''}{${n}}\r\n`;
  let flagsSent = false;
  // The part tree, once per response; from the store's tree without touching the per-body cache (a WeakMap
  // entry per message of a list is garbage the collector has to trace).
  let structure: ParsedMessage | null = null;
  // Decode BINARY sections first: an unknown encoding must fail the command
  // (NO [UNKNOWN-CTE], RFC 3516 §4.3) before any byte of this response is written.
  const binaries = new Map<FetchItem, Buffer>();
  for (const item of items) {
    if (item.kind === 'BINARY' || item.kind === 'BINARY.SIZE') binaries.set(item, await binarySection(body!, item.section.path));
  }
  parts.push(`* ${fetchHead(s, seq, meta.uid)} (`);
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
        const st = structure ?? (structure = localStructure(body!) ?? (await messageStructure(body!)));
        add('ENVELOPE ');
        parts.push(renderEnvelope(st, !s.utf8Names)); // RFC 6857 downgrade without UTF8=ACCEPT / IMAP4rev2
        break;
      }
      case 'BODY':
      case 'BODYSTRUCTURE': {
        const st = structure ?? (structure = localStructure(body!) ?? (await messageStructure(body!)));
        add(`${item.kind} `);
        parts.push(renderBodyStructure(st, item.kind === 'BODYSTRUCTURE', !s.utf8Names));
        break;
      }
      case 'PREVIEW': {
        const st = structure ?? (structure = localStructure(body!) ?? (await messageStructure(body!)));
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

/** Messages whose THREADIDs one store call looks up. */
const THREAD_ID_LOOKUP_BATCH = 2000;

/**
 * RFC 8474 §5.2: `metas` with their THREADIDs when `items` ask for them (one store call per batch; the
 * store fixes a THREADID before it is first reported). Unchanged otherwise, and where the store keeps none.
 */
export async function withThreadIds(store: MailStore, mailboxId: number, metas: MessageMeta[], items: readonly FetchItem[]): Promise<MessageMeta[]> {
  if (!store.threadIds || metas.length === 0 || !items.some((i) => i.kind === 'THREADID')) return metas;
  const ids = new Map<number, string>();
  // Bounded statements: a SEARCH MODSEQ ... THREADID of a 100k-message mailbox asks for every message.
  for (let i = 0; i < metas.length; i += THREAD_ID_LOOKUP_BATCH) {
    for (const [uid, t] of await store.threadIds(mailboxId, metas.slice(i, i + THREAD_ID_LOOKUP_BATCH).map((m) => m.uid))) ids.set(uid, t);
  }
  return metas.map((m) => (ids.has(m.uid) ? { ...m, threadId: ids.get(m.uid)! } : m));
}
