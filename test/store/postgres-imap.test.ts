// Existing IMAP (and POP3) behaviour tests (real sockets, two connections where a
// command touches a selected mailbox) run again over the PostgreSQL store:
// each file below in a child process with QUIRE_TEST_STORE=postgres, which
// makes test/helpers/server.ts open a fresh PostgreSQL schema instead of a
// SQLite directory. A file passing here passes on both backends.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { pgSkip } from '../helpers/pg.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const skip = await pgSkip();

/** Behaviour files whose every test is backend-neutral (sort.test.ts pokes into SQLite files, so it is not here). */
const FILES = [
  'test/commands/idle.test.ts',
  'test/commands/append.test.ts',
  'test/commands/store.test.ts',
  'test/commands/condstore.test.ts',
  'test/commands/copymove.test.ts',
  'test/commands/expunge.test.ts',
  'test/commands/replace.test.ts',
  'test/commands/search.test.ts',
  'test/commands/session-updates.test.ts',
  'test/commands/select.test.ts',
  'test/commands/fetch.test.ts',
  'test/scripts/multi.test.ts',
  // The store methods added after the PostgreSQL store (URLAUTH keys, annotation changes, the POP3 maildrop).
  'test/commands/urlauth.test.ts',
  'test/commands/metadata.test.ts',
  'test/commands/notify.test.ts',
  'test/pop3/pop3.test.ts',
];

function run(file: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--test', file], {
      cwd: ROOT,
      // Without NODE_TEST_CONTEXT: a child of a test file run by `--test` otherwise refuses to run its own tests.
      env: { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_TEST_CONTEXT')), QUIRE_TEST_STORE: 'postgres' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', (code) => resolve({ code, out }));
  });
}

describe('IMAP behaviour over the PostgreSQL store', { skip }, () => {
  for (const file of FILES) {
    test(file, { timeout: 300_000 }, async () => {
      const r = await run(file);
      const failed = r.out.split('\n').filter((l) => /^\s*not ok /.test(l));
      assert.equal(r.code, 0, `${file} over PostgreSQL:\n${failed.join('\n')}\n${r.out.slice(-4000)}`);
      assert.match(r.out, /^# pass [1-9]/m);
    });
  }
});
