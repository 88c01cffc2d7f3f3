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
  cli: ['cli', 'wire', 'mime', 'store', 'search', 'auth', 'session', 'commands', 'server', 'delivery', 'obs', 'bus'],
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
