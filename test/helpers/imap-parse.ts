// A small, strict parser for IMAP response values (RFC 9051 §9: nil,
// number, quoted, literal, literal8, lists) and validators for ENVELOPE and
// BODY / BODYSTRUCTURE values, for tests that check the server's output is
// well-formed. Works on latin1 strings (one char per byte).

export type Value = null | string | { num: number } | Value[];

export class ParseError extends Error {}

/** Parses one value at s[i]; returns it and the index after it. */
export function parseValue(s: string, i: number): [Value, number] {
  const c = s[i];
  if (c === '(') {
    const out: Value[] = [];
    i++;
    if (s[i] === ')') return [out, i + 1];
    for (;;) {
      const [v, j] = parseValue(s, i);
      out.push(v);
      i = j;
      if (s[i] === ')') return [out, i + 1];
      if (s[i] === ' ') i++;
      // body-type-mpart: parts follow each other without SP
      else if (!(Array.isArray(v) && s[i] === '(')) throw new ParseError(`expected SP or ) at ${i}`);
    }
  }
  if (c === '"') {
    let out = '';
    for (let j = i + 1; j < s.length; j++) {
      const ch = s[j]!;
      if (ch === '"') return [out, j + 1];
      if (ch === '\\') {
        const n = s[++j];
        if (n !== '"' && n !== '\\') throw new ParseError(`bad escape at ${j}`);
        out += n;
        continue;
      }
      if (ch === '\r' || ch === '\n' || ch === '\0') throw new ParseError(`CR/LF/NUL in quoted string at ${j}`);
      out += ch;
    }
    throw new ParseError('unterminated quoted string');
  }
  const lit = /^~?\{(\d+)\}\r\n/.exec(s.slice(i, i + 24));
  if (lit) {
    const start = i + lit[0].length;
    const end = start + Number(lit[1]);
    if (end > s.length) throw new ParseError('short literal');
    const data = s.slice(start, end);
    if (!lit[0].startsWith('~') && data.includes('\0')) throw new ParseError('NUL in literal');
    return [data, end];
  }
  const m = /^[^\s()"{}\[\]]+/.exec(s.slice(i, i + 100));
  if (!m) throw new ParseError(`unexpected ${JSON.stringify(s.slice(i, i + 20))} at ${i}`);
  if (m[0] === 'NIL') return [null, i + 3];
  if (/^\d+$/.test(m[0])) return [{ num: Number(m[0]) }, i + m[0].length];
  throw new ParseError(`unexpected atom ${m[0]} at ${i}`);
}

/** Parses a whole value; the string must hold exactly one. */
export function parseAll(s: string): Value {
  const [v, j] = parseValue(s, 0);
  if (j !== s.length) throw new ParseError(`trailing data at ${j}: ${JSON.stringify(s.slice(j, j + 20))}`);
  return v;
}

const isStr = (v: Value): v is string => typeof v === 'string';
const isNStr = (v: Value) => v === null || typeof v === 'string';
const isNum = (v: Value) => v !== null && typeof v === 'object' && !Array.isArray(v) && typeof v.num === 'number';
const isList = (v: Value): v is Value[] => Array.isArray(v);

function need(ok: boolean, what: string): void {
  if (!ok) throw new ParseError(what);
}

function checkAddresses(v: Value, what: string): void {
  if (v === null) return;
  need(isList(v) && v.length > 0, `${what}: address list`);
  for (const a of v as Value[]) need(isList(a) && a.length === 4 && a.every(isNStr), `${what}: address`);
}

/** RFC 9051 envelope. */
export function checkEnvelope(v: Value): void {
  need(isList(v) && v.length === 10, 'envelope: 10 fields');
  const e = v as Value[];
  need(isNStr(e[0]!) && isNStr(e[1]!), 'envelope date/subject');
  ['from', 'sender', 'reply-to', 'to', 'cc', 'bcc'].forEach((w, k) => checkAddresses(e[2 + k]!, w));
  need(isNStr(e[8]!) && isNStr(e[9]!), 'envelope in-reply-to/message-id');
}

function checkParams(v: Value): void {
  need(v === null || (isList(v) && v.length > 0 && v.length % 2 === 0 && v.every(isStr)), 'body-fld-param');
}

function checkDsp(v: Value): void {
  need(v === null || (isList(v) && v.length === 2 && isStr(v[0]!) && (checkParams(v[1]!), true)), 'body-fld-dsp');
}

function checkLang(v: Value): void {
  need(v === null || isStr(v) || (isList(v) && v.length > 0 && v.every(isStr)), 'body-fld-lang');
}

/** RFC 9051 body (BODY when extended is false, BODYSTRUCTURE when true); depth-limited. */
export function checkBody(v: Value, extended: boolean, depth = 0): void {
  need(depth < 200, 'too deep');
  need(isList(v) && v.length > 0, 'body: list');
  const b = v as Value[];
  if (isList(b[0]!)) {
    let n = 0;
    while (n < b.length && isList(b[n]!)) checkBody(b[n++]!, extended, depth + 1);
    need(isStr(b[n]!), 'multipart subtype');
    const ext = b.slice(n + 1);
    if (extended) {
      need(ext.length === 4, `body-ext-mpart: 4 fields, got ${ext.length}`);
      checkParams(ext[0]!);
      checkDsp(ext[1]!);
      checkLang(ext[2]!);
      need(isNStr(ext[3]!), 'location');
    } else need(ext.length === 0, 'BODY multipart has no extension data');
    return;
  }
  need(b.length >= 7, 'body-type-1part fields');
  need(isStr(b[0]!) && isStr(b[1]!), 'media type');
  checkParams(b[2]!);
  need(isNStr(b[3]!) && isNStr(b[4]!) && isStr(b[5]!) && isNum(b[6]!), 'body-fields');
  const type = (b[0] as string).toLowerCase();
  const sub = (b[1] as string).toLowerCase();
  let k = 7;
  if (type === 'message' && (sub === 'rfc822' || sub === 'global')) {
    checkEnvelope(b[7]!);
    checkBody(b[8]!, extended, depth + 1);
    need(isNum(b[9]!), 'message lines');
    k = 10;
  } else if (type === 'text') {
    need(isNum(b[7]!), 'text lines');
    k = 8;
  }
  const ext = b.slice(k);
  if (extended) {
    need(ext.length === 4, `body-ext-1part: 4 fields, got ${ext.length}`);
    need(isNStr(ext[0]!), 'md5');
    checkDsp(ext[1]!);
    checkLang(ext[2]!);
    need(isNStr(ext[3]!), 'location');
  } else need(ext.length === 0, 'BODY part has no extension data');
}

export interface PartInfo {
  path: string;
  kind: 'multipart' | 'message' | 'leaf';
}

/** Every numbered part of a body structure value (RFC 9051 §6.4.5 numbering). */
export function partPaths(v: Value, prefix = ''): PartInfo[] {
  const b = v as Value[];
  const p = (n: number) => (prefix ? `${prefix}.${n}` : String(n));
  if (isList(b[0]!)) {
    const out: PartInfo[] = [];
    for (let n = 0; n < b.length && isList(b[n]!); n++) out.push(...numbered(b[n]!, p(n + 1)));
    return out;
  }
  return numbered(v, p(1));
}

function numbered(v: Value, path: string): PartInfo[] {
  const b = v as Value[];
  if (isList(b[0]!)) return [{ path, kind: 'multipart' }, ...partPaths(v, path)];
  const t = `${String(b[0]).toLowerCase()}/${String(b[1]).toLowerCase()}`;
  if ((t === 'message/rfc822' || t === 'message/global') && isList(b[8] ?? null)) return [{ path, kind: 'message' }, ...partPaths(b[8]!, path)];
  return [{ path, kind: 'leaf' }];
}
