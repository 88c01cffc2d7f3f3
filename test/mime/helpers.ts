// Shared helpers for the MIME tests.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MimePart } from '../../src/mime/index.js';

export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'mime');

export function fixture(name: string): Buffer {
  return readFileSync(join(FIXTURES, name));
}

export function fixtureNames(): string[] {
  return readdirSync(FIXTURES)
    .filter((f) => f.endsWith('.eml'))
    .sort();
}

/** Dovecot's recorded answers for one fixture: item -> wire text (`\\`, CR, LF unescaped; bytes as latin1). */
export function dovecotAnswers(name: string): Record<string, string> {
  const text = readFileSync(join(FIXTURES, 'dovecot', name.replace(/\.eml$/, '.txt')), 'latin1');
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    if (!line) continue;
    const tab = line.indexOf('\t');
    out[line.slice(0, tab)] = line.slice(tab + 1).replace(/\\([rn\\])/g, (_, c: string) => (c === 'r' ? '\r' : c === 'n' ? '\n' : '\\'));
  }
  return out;
}

/** Wire text (UTF-8) as a latin1 string, to compare with recorded bytes. */
export function wire(s: string): string {
  return Buffer.from(s, 'utf8').toString('latin1');
}

export const text = (raw: Buffer, start: number, end: number): string => raw.subarray(start, end).toString('utf8');
export const body = (raw: Buffer, p: MimePart): string => text(raw, p.bodyStart, p.bodyEnd);
export const head = (raw: Buffer, p: MimePart): string => text(raw, p.headerStart, p.headerEnd);

/** Checks the offset invariants of a tree; returns [part count, max depth]. */
export function checkTree(raw: Buffer, root: MimePart, fail: (msg: string) => void): [number, number] {
  let count = 0;
  let maxDepth = 0;
  const visit = (p: MimePart, lo: number, hi: number, depth: number) => {
    count++;
    maxDepth = Math.max(maxDepth, depth);
    if (!(lo <= p.headerStart && p.headerStart <= p.headerEnd && p.headerEnd === p.bodyStart && p.bodyStart <= p.bodyEnd && p.bodyEnd <= hi && hi <= raw.length))
      fail(`bad offsets ${JSON.stringify([lo, p.headerStart, p.headerEnd, p.bodyStart, p.bodyEnd, hi])}`);
    if (p.size !== p.bodyEnd - p.bodyStart) fail('size');
    if (p.type !== p.type.toLowerCase() || p.subtype !== p.subtype.toLowerCase()) fail('case');
    if (p.type === 'multipart' && (!p.children || p.children.length === 0)) fail('multipart without children');
    if (p.children) {
      let prev = p.bodyStart;
      for (const c of p.children) {
        if (c.headerStart < prev) fail('children overlap');
        visit(c, p.bodyStart, p.bodyEnd, depth + 1);
        prev = c.bodyEnd;
      }
    }
    if (p.message) {
      if (p.message.headerStart !== p.bodyStart || p.message.bodyEnd !== p.bodyEnd) fail('message range');
      visit(p.message, p.bodyStart, p.bodyEnd, depth + 1);
    }
  };
  visit(root, 0, raw.length, 0);
  if (root.headerStart !== 0 || root.bodyEnd !== raw.length) fail('root range');
  return [count, maxDepth];
}
