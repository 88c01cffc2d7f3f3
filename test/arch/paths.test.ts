// Nothing in the repository names an absolute path of a particular machine
// (the Dovecot peer and shared/ are found relative to the repository root or
// through an environment variable: test/helpers/peer.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../helpers/peer.js';

test('no source, test, bench or doc file names an absolute path outside the repository', () => {
  const files = execFileSync('git', ['ls-files', 'src', 'test', 'bench', 'docs', 'contrib', 'scripts', '.ci', 'README.md'], { cwd: REPO_ROOT, encoding: 'utf8' })
    .split('\n')
    .filter((f) => f && !f.startsWith('test/fixtures/') && f !== 'test/arch/paths.test.ts');
  const bad: string[] = [];
  for (const f of files) {
    let text: string;
    try {
      text = readFileSync(path.join(REPO_ROOT, f), 'utf8');
    } catch {
      continue;
    }
    text.split('\n').forEach((line, i) => {
      if (line.includes('/work/') || /["'`]\/[A-Za-z0-9_.-]+\/shared\//.test(line)) bad.push(`${f}:${i + 1}: ${line.trim()}`);
    });
  }
  assert.deepEqual(bad, []);
});
