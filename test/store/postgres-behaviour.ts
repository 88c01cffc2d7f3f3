// Existing IMAP (and POP3) behaviour tests (real sockets, two connections where a
// command touches a selected mailbox) run again over the PostgreSQL store:
// each file in a child process with QUIRE_TEST_STORE=postgres, which makes
// test/helpers/server.ts open a fresh PostgreSQL schema instead of a SQLite
// directory. A file passing there passes on both backends. The files are
// shared out between test/store/postgres-imap*.test.ts so that `npm test`
// (test/run.ts) runs the groups beside other files instead of one long chain;
// postgres-imap-timed.test.ts holds those that measure time (POP3's pre-auth
// timeout), which test/run.ts runs alone.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { pgSkip } from '../helpers/pg.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * Behaviour files whose every test is backend-neutral (sort.test.ts pokes into SQLite files, so it is not
 * here), by the test file that runs them (test/store/<name>.test.ts runs GROUPS[name]).
 */
export const GROUPS = {
  'postgres-imap': ['test/commands/idle.test.ts', 'test/commands/append.test.ts', 'test/commands/store.test.ts', 'test/commands/condstore.test.ts', 'test/commands/copymove.test.ts'],
  'postgres-imap-2': ['test/commands/expunge.test.ts', 'test/commands/replace.test.ts', 'test/commands/search.test.ts', 'test/commands/session-updates.test.ts', 'test/commands/select.test.ts'],
  // The store methods added after the PostgreSQL store (URLAUTH keys, annotation changes) beside FETCH and the scripts.
  'postgres-imap-3': ['test/commands/fetch.test.ts', 'test/scripts/multi.test.ts', 'test/commands/urlauth.test.ts', 'test/commands/metadata.test.ts', 'test/commands/notify.test.ts'],
  // The POP3 maildrop; its pre-auth timeout is timing-sensitive.
  'postgres-imap-timed': ['test/pop3/pop3.test.ts'],
} as const;

/**
 * Runs `file`'s tests in a child process (the file itself, not under `--test`: one process, its TAP on
 * stdout) over PostgreSQL.
 */
function run(file: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', file], {
      cwd: ROOT,
      // Without NODE_TEST_CONTEXT: a child of a test file run by `--test` otherwise reports to its parent's
      // runner in the runner's own format instead of printing TAP.
      env: { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_TEST_CONTEXT')), QUIRE_TEST_STORE: 'postgres' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', (code) => resolve({ code, out }));
  });
}

/** The tests of one group: each behaviour file, one after the other, over PostgreSQL. */
export async function behaviourOverPostgres(group: keyof typeof GROUPS): Promise<void> {
  const skip = await pgSkip();
  describe('IMAP behaviour over the PostgreSQL store', { skip }, () => {
    for (const file of GROUPS[group]) {
      test(file, { timeout: 300_000 }, async () => {
        const r = await run(file);
        const failed = r.out.split('\n').filter((l) => /^\s*not ok /.test(l));
        assert.equal(r.code, 0, `${file} over PostgreSQL:\n${failed.join('\n')}\n${r.out.slice(-4000)}`);
        assert.match(r.out, /^# pass [1-9]/m);
        assert.match(r.out, /^# fail 0$/m);
      });
    }
  });
}
