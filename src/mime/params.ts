// Structured MIME header values: `value *(";" attribute "=" value)` as used by
// Content-Type and Content-Disposition (RFC 2045 §5.1, RFC 2183 §2), with
// RFC 2231 parameter continuations and charset/language decoding, and
// comma-separated lists (Content-Language, RFC 3282).

import { decodeCharset, LEGACY_HEADER_CHARSET } from './header.js';

/** A parameter: lower-cased name, decoded value. Order is kept. */
export type MimeParam = [name: string, value: string];

export interface StructuredValue {
  /** The main value (e.g. "text/plain"), trimmed, comments removed, case kept. */
  value: string;
  params: MimeParam[];
}

/** Removes RFC 5322 comments outside quoted strings (nesting allowed). */
export function stripComments(s: string): string {
  if (!s.includes('(')) return s;
  let out = '';
  let depth = 0;
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (quoted) {
      out += ch;
      if (ch === '\\' && i + 1 < s.length) out += s[++i];
      else if (ch === '"') quoted = false;
    } else if (depth > 0) {
      if (ch === '\\') i++;
      else if (ch === '(') depth++;
      else if (ch === ')') depth--;
    } else if (ch === '(') {
      depth = 1;
      out += ' ';
    } else {
      if (ch === '"') quoted = true;
      out += ch;
    }
  }
  return out;
}

interface RawParam {
  name: string;
  value: string;
  quoted: boolean;
}

/** Splits `value; a=b; c="d"` leniently: unquoted values run to the next ";". */
function splitParams(s: string): { value: string; raw: RawParam[] } {
  let i = 0;
  const n = s.length;
  let value = '';
  while (i < n && s[i] !== ';') value += s[i++];
  const raw: RawParam[] = [];
  while (i < n) {
    i++; // skip ';'
    let name = '';
    while (i < n && s[i] !== '=' && s[i] !== ';') name += s[i++];
    name = name.trim();
    if (i >= n || s[i] === ';') continue; // attribute without value: ignored
    i++; // skip '='
    while (i < n && (s[i] === ' ' || s[i] === '\t')) i++;
    let v = '';
    let quoted = false;
    if (s[i] === '"') {
      quoted = true;
      i++;
      while (i < n && s[i] !== '"') {
        if (s[i] === '\\' && i + 1 < n) i++;
        v += s[i++];
      }
      i++; // closing quote (if any)
      while (i < n && s[i] !== ';') i++; // junk after the quoted string
    } else {
      while (i < n && s[i] !== ';') v += s[i++];
      v = v.trim();
    }
    if (name.length > 0 && !/[\s"]/.test(name)) raw.push({ name: name.toLowerCase(), value: v, quoted });
  }
  return { value: value.trim(), raw };
}

function percentDecode(s: string): Buffer {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x25 && /^[0-9A-Fa-f]{2}$/.test(s.slice(i + 1, i + 3))) {
      out.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (c < 0x80) out.push(c);
    else out.push(...Buffer.from(s[i]!, 'utf8'));
  }
  return Buffer.from(out);
}

/**
 * RFC 2231: joins `name*0`, `name*1*`, ... continuations and decodes
 * `name*=charset'lang'%XX` values; the result is stored under `name`. When
 * both a plain and an RFC 2231 form exist, the RFC 2231 form wins.
 */
function combine2231(raw: RawParam[]): MimeParam[] {
  interface Group {
    sections: Map<number, { value: string; extended: boolean }>;
    single?: { value: string; extended: boolean };
  }
  const order: string[] = [];
  const plain = new Map<string, string>();
  const groups = new Map<string, Group>();
  for (const p of raw) {
    const m = /^([^*]+)\*(?:(\d{1,3})(\*)?|)$/.exec(p.name);
    // "name*" matches with m[2] undefined; "name*3*" gives m[2]="3", m[3]="*".
    if (!m) {
      if (!plain.has(p.name)) {
        plain.set(p.name, p.value);
        if (!order.includes(p.name)) order.push(p.name);
      }
      continue;
    }
    const base = m[1]!;
    let g = groups.get(base);
    if (!g) {
      g = { sections: new Map() };
      groups.set(base, g);
    }
    if (!order.includes(base)) order.push(base);
    if (m[2] === undefined) g.single ??= { value: p.value, extended: true };
    else {
      const idx = Number(m[2]);
      if (!g.sections.has(idx)) g.sections.set(idx, { value: p.value, extended: m[3] === '*' });
    }
  }
  const out: MimeParam[] = [];
  for (const name of order) {
    const g = groups.get(name);
    if (!g) {
      out.push([name, plain.get(name)!]);
      continue;
    }
    let pieces: { value: string; extended: boolean }[];
    if (g.sections.size > 0) {
      pieces = [];
      // Sections must be consecutive from 0 (§3); stop at the first gap.
      for (let i = 0; g.sections.has(i); i++) pieces.push(g.sections.get(i)!);
      if (pieces.length === 0) pieces = [...g.sections.entries()].sort((a, b) => a[0] - b[0]).map((e) => e[1]);
    } else pieces = [g.single!];
    let charset: string | null = null;
    const bufs: Buffer[] = [];
    pieces.forEach((p, i) => {
      let v = p.value;
      if (p.extended) {
        if (i === 0) {
          const q1 = v.indexOf("'");
          const q2 = q1 >= 0 ? v.indexOf("'", q1 + 1) : -1;
          if (q2 >= 0) {
            charset = v.slice(0, q1) || null;
            v = v.slice(q2 + 1);
          }
        }
        bufs.push(percentDecode(v));
      } else bufs.push(Buffer.from(v, 'utf8'));
    });
    const bytes = Buffer.concat(bufs);
    let value: string | null = null;
    if (charset) value = decodeCharset(bytes, charset);
    if (value === null) {
      const utf8 = bytes.toString('utf8');
      value = utf8.includes('\ufffd') ? (decodeCharset(bytes, LEGACY_HEADER_CHARSET) ?? utf8) : utf8;
    }
    out.push([name, value]);
  }
  return out;
}

/** Parses a Content-Type / Content-Disposition style value. */
export function parseStructured(headerValue: string): StructuredValue {
  const { value, raw } = splitParams(stripComments(headerValue));
  return { value: value.replace(/\s+/g, ''), params: combine2231(raw) };
}

/** Looks up a parameter by (lower-case) name. */
export function getParam(params: MimeParam[], name: string): string | undefined {
  return params.find((p) => p[0] === name)?.[1];
}

/** Content-Language (RFC 3282): comma-separated language tags. */
export function parseLanguageList(headerValue: string): string[] {
  return stripComments(headerValue)
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}
