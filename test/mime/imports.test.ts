// src/mime imports nothing else from src/ (STYLE.md "Layout").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

test('src/mime imports only itself, node: and npm packages', () => {
  const dir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'mime');
  for (const f of readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
    const src = readFileSync(join(dir, f), 'utf8');
    for (const m of src.matchAll(/(?:from|import)\s*\(?\s*['"]([^'"]+)['"]/g)) {
      const spec = m[1]!;
      if (spec.startsWith('.')) assert.ok(/^\.\/[\w-]+\.js$/.test(spec), `${f}: ${spec}`);
    }
  }
});
