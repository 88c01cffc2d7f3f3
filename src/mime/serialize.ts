// Compact JSON form of a part tree so the store can parse a message once at
// APPEND and keep the result. Short keys; defaults omitted; versioned.

import type { Address, Envelope, MimeParam, MimePart } from './types.js';

/** Bump when the stored shape changes; older versions are then re-parsed by the store. */
export const STRUCTURE_VERSION = 1;

type AddrJ = [string | null, string | null, string | null, string | null];
type EnvJ = [
  string | null,
  string | null,
  AddrJ[] | null,
  AddrJ[] | null,
  AddrJ[] | null,
  AddrJ[] | null,
  AddrJ[] | null,
  AddrJ[] | null,
  string | null,
  string | null,
];

interface PartJ {
  o: [number, number, number]; // headerStart, bodyStart, bodyEnd
  t?: string; // "type/subtype", omitted for text/plain
  p?: MimeParam[];
  e?: string; // encoding, omitted for 7bit
  i?: string;
  d?: string;
  x?: [string, MimeParam[]]; // disposition
  l?: string[];
  lo?: string;
  m?: string;
  n?: number; // lines
  c?: PartJ[];
  g?: PartJ; // embedded message
  v?: EnvJ;
  q?: 1; // opaque
}

const addrJ = (l: Address[] | null): AddrJ[] | null => (l ? l.map((a) => [a.name, a.adl, a.mailbox, a.host]) : null);

function envJ(e: Envelope): EnvJ {
  return [e.date, e.subject, addrJ(e.from), addrJ(e.sender), addrJ(e.replyTo), addrJ(e.to), addrJ(e.cc), addrJ(e.bcc), e.inReplyTo, e.messageId];
}

function toJ(p: MimePart): PartJ {
  const j: PartJ = { o: [p.headerStart, p.bodyStart, p.bodyEnd] };
  const t = `${p.type}/${p.subtype}`;
  if (t !== 'text/plain') j.t = t;
  if (p.params.length) j.p = p.params;
  if (p.encoding !== '7bit') j.e = p.encoding;
  if (p.id !== null) j.i = p.id;
  if (p.description !== null) j.d = p.description;
  if (p.disposition) j.x = [p.disposition.type, p.disposition.params];
  if (p.language) j.l = p.language;
  if (p.location !== null) j.lo = p.location;
  if (p.md5 !== null) j.m = p.md5;
  if (p.lines) j.n = p.lines;
  if (p.children) j.c = p.children.map(toJ);
  if (p.message) j.g = toJ(p.message);
  if (p.envelope) j.v = envJ(p.envelope);
  if (p.opaque) j.q = 1;
  return j;
}

/** Serialises a part tree (as returned by parseMessage) to compact JSON. */
export function serializeStructure(root: MimePart): string {
  return JSON.stringify({ v: STRUCTURE_VERSION, r: toJ(root) });
}

class BadStructure extends Error {
  constructor(what: string) {
    super(`invalid stored MIME structure: ${what}`);
    this.name = 'BadStructure';
  }
}

const isStr = (x: unknown): x is string => typeof x === 'string';
const isNStr = (x: unknown): x is string | null => x === null || typeof x === 'string';
const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x) && x >= 0;

function params(x: unknown): MimeParam[] {
  if (x === undefined) return [];
  if (!Array.isArray(x) || !x.every((p) => Array.isArray(p) && p.length === 2 && isStr(p[0]) && isStr(p[1]))) throw new BadStructure('params');
  return x as MimeParam[];
}

function addrs(x: unknown): Address[] | null {
  if (x === null) return null;
  if (!Array.isArray(x)) throw new BadStructure('address list');
  return x.map((a) => {
    if (!Array.isArray(a) || a.length !== 4 || !a.every(isNStr)) throw new BadStructure('address');
    return { name: a[0], adl: a[1], mailbox: a[2], host: a[3] };
  });
}

function fromEnvJ(x: unknown): Envelope {
  if (!Array.isArray(x) || x.length !== 10) throw new BadStructure('envelope');
  const s = (v: unknown) => {
    if (!isNStr(v)) throw new BadStructure('envelope field');
    return v;
  };
  return {
    date: s(x[0]),
    subject: s(x[1]),
    from: addrs(x[2]),
    sender: addrs(x[3]),
    replyTo: addrs(x[4]),
    to: addrs(x[5]),
    cc: addrs(x[6]),
    bcc: addrs(x[7]),
    inReplyTo: s(x[8]),
    messageId: s(x[9]),
  };
}

function fromJ(j: unknown, depth: number): MimePart {
  if (depth > 200 || typeof j !== 'object' || j === null) throw new BadStructure('part');
  const o = j as Record<string, unknown>;
  const off = o.o;
  if (!Array.isArray(off) || off.length !== 3 || !off.every(isNum) || !(off[0] <= off[1] && off[1] <= off[2])) throw new BadStructure('offsets');
  const [hs, bs, be] = off as [number, number, number];
  const t = o.t === undefined ? 'text/plain' : o.t;
  if (!isStr(t) || !t.includes('/')) throw new BadStructure('type');
  const slash = t.indexOf('/');
  const optStr = (k: string): string | null => {
    const v = o[k];
    if (v === undefined) return null;
    if (!isStr(v)) throw new BadStructure(k);
    return v;
  };
  const part: MimePart = {
    headerStart: hs,
    headerEnd: bs,
    bodyStart: bs,
    bodyEnd: be,
    type: t.slice(0, slash),
    subtype: t.slice(slash + 1),
    params: params(o.p),
    encoding: optStr('e') ?? '7bit',
    id: optStr('i'),
    description: optStr('d'),
    disposition: null,
    language: null,
    location: optStr('lo'),
    md5: optStr('m'),
    size: be - bs,
    lines: 0,
  };
  if (o.x !== undefined) {
    if (!Array.isArray(o.x) || o.x.length !== 2 || !isStr(o.x[0])) throw new BadStructure('disposition');
    part.disposition = { type: o.x[0], params: params(o.x[1]) };
  }
  if (o.l !== undefined) {
    if (!Array.isArray(o.l) || !o.l.every(isStr)) throw new BadStructure('language');
    part.language = o.l;
  }
  if (o.n !== undefined) {
    if (!isNum(o.n)) throw new BadStructure('lines');
    part.lines = o.n;
  }
  if (o.c !== undefined) {
    if (!Array.isArray(o.c) || o.c.length === 0) throw new BadStructure('children');
    part.children = o.c.map((c) => fromJ(c, depth + 1));
  }
  if (o.g !== undefined) part.message = fromJ(o.g, depth + 1);
  if (o.v !== undefined) part.envelope = fromEnvJ(o.v);
  if (o.q === 1) part.opaque = true;
  return part;
}

/**
 * Restores a tree from serializeStructure's output. Throws (an Error named
 * "BadStructure") when the text is not a structure of the current version:
 * the store should then re-parse the message.
 */
export function deserializeStructure(json: string): MimePart {
  let o: unknown;
  try {
    o = JSON.parse(json);
  } catch {
    throw new BadStructure('not JSON');
  }
  if (typeof o !== 'object' || o === null || (o as { v?: unknown }).v !== STRUCTURE_VERSION) throw new BadStructure('version');
  return fromJ((o as { r: unknown }).r, 0);
}
