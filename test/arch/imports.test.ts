// The import rules of STYLE.md, checked mechanically: wire and mime import
// nothing of ours; store imports only mime and itself; commands take only
// types from store; only cli imports everything.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

const SRC = path.resolve(import.meta.dirname, '../../src');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = path.join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

interface Imp { from: string; to: string; typeOnly: boolean }

function imports(): Imp[] {
  const out: Imp[] = [];
  for (const f of files(SRC)) {
    const text = readFileSync(f, 'utf8');
    const re = /^\s*(import|export)\s+(type\s+)?[^'";]*?from\s+['"](\.[^'"]+)['"]|^\s*import\s*\(\s*['"](\.[^'"]+)['"]\s*\)|await import\(\s*['"](\.[^'"]+)['"]\s*\)/gm;
    for (const m of text.matchAll(re)) {
      const spec = m[3] ?? m[4] ?? m[5];
      const target = path.resolve(path.dirname(f), spec);
      out.push({ from: path.relative(SRC, f), to: path.relative(SRC, target), typeOnly: !!m[2] });
    }
  }
  return out;
}

const area = (p: string) => p.split(path.sep)[0];

const ALLOWED: Record<string, string[]> = {
  wire: ['wire'],
  mime: ['mime'],
  store: ['store', 'mime'],
  search: ['search', 'wire', 'mime', 'store'],
  auth: ['auth', 'store'],
  session: ['session', 'wire', 'store'],
  commands: ['commands', 'wire', 'session', 'search', 'auth', 'mime', 'store', 'server'],
  server: ['server', 'wire', 'session', 'commands', 'store', 'auth', 'obs'],
  delivery: ['delivery', 'store', 'mime', 'server', 'auth', 'obs'],
  // obs: logging, metrics, the admin HTTP listener; takes only types from server/store.
  obs: ['obs', 'server', 'store'],
  bus: ['bus', 'store'],
  // POP3 is a sibling protocol room: its own codec, commands and session; never IMAP's wire, commands or session.
  pop3: ['pop3', 'store', 'mime', 'server', 'auth', 'obs'],
  cli: ['cli', 'wire', 'mime', 'store', 'search', 'auth', 'session', 'commands', 'server', 'delivery', 'obs', 'bus', 'pop3'],
};

test('every import respects the layout rules of STYLE.md', () => {
  const bad: string[] = [];
  const all = imports();
  assert.ok(all.length > 50, 'the import scanner finds the imports');
  for (const i of all) {
    const a = area(i.from);
    const b = area(i.to);
    const allowed = ALLOWED[a];
    if (!allowed) { bad.push(`${i.from}: unknown area ${a}`); continue; }
    if (!allowed.includes(b)) bad.push(`${i.from} -> ${i.to}`);
    // commands and session may take only types from store and server (the store is injected).
    if ((a === 'commands' || a === 'session' || a === 'search' || a === 'obs') && (b === 'store' || b === 'server') && !i.typeOnly) bad.push(`${i.from} -> ${i.to} (value import; types only)`);
  }
  assert.deepEqual(bad, []);
});

test('POP3 never reaches IMAP\'s rooms, not even through src/server', () => {
  // Shared needs (options, TLS, limits) live in server/ or auth/; the IMAP
  // listener files there import IMAP's wire/commands/session, so the check
  // follows imports transitively from every pop3/ file.
  const all = imports();
  const edges = new Map<string, string[]>();
  for (const i of all) {
    const to = i.to.endsWith('.js') ? i.to.slice(0, -3) + '.ts' : i.to;
    edges.set(i.from, [...(edges.get(i.from) ?? []), to]);
  }
  const starts = [...edges.keys()].filter((f) => area(f) === 'pop3');
  assert.ok(starts.length >= 5, 'the pop3 room exists');
  const bad: string[] = [];
  for (const start of starts) {
    const seen = new Set<string>([start]);
    const stack: string[][] = [[start]];
    while (stack.length > 0) {
      const chain = stack.pop()!;
      for (const next of edges.get(chain[chain.length - 1]!) ?? []) {
        if (seen.has(next)) continue;
        seen.add(next);
        if (['wire', 'commands', 'session'].includes(area(next))) bad.push([...chain, next].join(' -> '));
        else stack.push([...chain, next]);
      }
    }
  }
  assert.deepEqual(bad, []);
});
