// `npm test`: every test/**/*.test.ts (or the files given as arguments) through
// Node's test runner (node:test run(), one child process per file, as
// `node --test` does), in two phases:
//   1. every file not listed in TIMED, QUIRE_TEST_CONCURRENCY at a time (default 3;
//      most files spend their time waiting on sockets, child processes and
//      PostgreSQL), the known long ones first (LONG) so that none of them starts
//      last and leaves the other slots idle;
//   2. the files in TIMED one at a time, on an otherwise idle machine: they
//      measure time (event-loop stalls, deadlines, timeouts) and must not share
//      the cores with other test files.
// A passing file prints one line with its duration; a failing one prints all
// its output through the spec reporter. The closing lines are the counts of
// Node's runner and a plain "N passed, N failed" line; the exit code is 1 when
// anything failed. The slowest files are listed at the end, to keep LONG right.
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { run } from 'node:test';
import { spec } from 'node:test/reporters';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

/**
 * Timing-sensitive files: run last, one at a time, nothing else running. Each measures time against a bound
 * of its own: event-loop stalls, the login deadline, POP3's pre-auth timeout (also over PostgreSQL), an IDLE
 * push through the compressor, each fuzz case's time.
 */
const TIMED = [
  'test/server/eventloop.test.ts',
  'test/server/connection-limits.test.ts',
  'test/pop3/pop3.test.ts',
  'test/store/postgres-imap-timed.test.ts',
  'test/server/compress.test.ts',
  'test/fuzz/replay.test.ts',
];

/** The longest files of phase 1, longest first (from the runner's own report of the slowest files). */
const LONG = [
  'test/interop/pop3.test.ts',
  'test/interop/debian.test.ts',
  'test/store/postgres-imap.test.ts',
  'test/store/postgres-imap-2.test.ts',
  'test/store/postgres-imap-3.test.ts',
  'test/cli/migrate-postgres.test.ts',
  'test/cli/migrate.test.ts',
  'test/obs/install.test.ts',
  'test/cli/cli.test.ts',
  'test/delivery/lmtp.test.ts',
  'test/cli/import.test.ts',
  'test/auth/policy.test.ts',
  'test/auth/userdb.test.ts',
];

interface Counts {
  tests: number;
  pass: number;
  fail: number;
  cancelled: number;
  skipped: number;
  todo: number;
}

interface FileResult {
  file: string;
  ms: number;
  ok: boolean;
}

function findTests(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((n) => {
      const p = path.join(dir, n);
      return statSync(p).isDirectory() ? findTests(p) : n.endsWith('.test.ts') ? [p] : [];
    });
}

const counts: Counts = { tests: 0, pass: 0, fail: 0, cancelled: 0, skipped: 0, todo: 0 };
const results: FileResult[] = [];

/** Runs one file in its own child process; prints a line (passed) or everything (failed). */
async function runFile(abs: string): Promise<void> {
  const rel = path.relative(ROOT, abs);
  const events: { type: string; data: Record<string, unknown> }[] = [];
  const t0 = performance.now();
  let ok = true;
  for await (const ev of run({ files: [abs] }) as AsyncIterable<{ type: string; data: Record<string, unknown> }>) {
    events.push(ev);
    if (ev.type === 'test:fail' && !ev.data.todo) ok = false;
    if (ev.type === 'test:diagnostic' && ev.data.nesting === 0) {
      const m = /^(tests|pass|fail|cancelled|skipped|todo) (\d+)$/.exec(String(ev.data.message));
      if (m) counts[m[1] as keyof Counts] += Number(m[2]);
    }
  }
  const ms = performance.now() - t0;
  results.push({ file: rel, ms, ok });
  if (ok) {
    process.stdout.write(`ok ${rel} (${(ms / 1000).toFixed(1)} s)\n`);
    return;
  }
  process.stdout.write(`not ok ${rel} (${(ms / 1000).toFixed(1)} s):\n`);
  await new Promise<void>((resolve) => Readable.from(events).compose(new spec()).on('end', resolve).pipe(process.stdout, { end: false }));
}

/** Runs `files` with at most `n` at a time, in the order given. */
async function pool(files: string[], n: number): Promise<void> {
  const queue = [...files];
  await Promise.all(
    Array.from({ length: Math.min(n, queue.length) }, async () => {
      for (let f = queue.shift(); f !== undefined; f = queue.shift()) await runFile(f);
    }),
  );
}

const args = process.argv.slice(2);
const all = args.length > 0 ? args.map((a) => path.resolve(a)) : findTests(path.join(ROOT, 'test'));
const rank = (f: string) => {
  const i = LONG.indexOf(path.relative(ROOT, f));
  return i < 0 ? LONG.length : i;
};
if (args.length === 0) {
  const known = new Set(all.map((f) => path.relative(ROOT, f)));
  for (const f of [...TIMED, ...LONG]) if (!known.has(f)) process.stdout.write(`# test/run.ts lists ${f}, which does not exist\n`);
}
const timed = all.filter((f) => TIMED.includes(path.relative(ROOT, f)));
const rest = all.filter((f) => !timed.includes(f)).sort((a, b) => rank(a) - rank(b));
const concurrency = Math.max(1, Number(process.env.QUIRE_TEST_CONCURRENCY ?? 3));

const t0 = performance.now();
await pool(rest, concurrency);
const t1 = performance.now();
await pool(timed, 1);
const t2 = performance.now();

const slowest = [...results].sort((a, b) => b.ms - a.ms).slice(0, 12);
process.stdout.write(`# slowest files:\n${slowest.map((r) => `#   ${(r.ms / 1000).toFixed(1).padStart(6)} s  ${r.file}`).join('\n')}\n`);
process.stdout.write(`# phase 1: ${rest.length} files, ${concurrency} at a time, ${((t1 - t0) / 1000).toFixed(0)} s; phase 2 (timing-sensitive): ${timed.length} files, one at a time, ${((t2 - t1) / 1000).toFixed(0)} s\n`);
const failedFiles = results.filter((r) => !r.ok).map((r) => r.file);
if (failedFiles.length > 0) process.stdout.write(`# failed files:\n${failedFiles.map((f) => `#   ${f}`).join('\n')}\n`);
for (const k of ['tests', 'pass', 'fail', 'cancelled', 'skipped', 'todo'] as const) process.stdout.write(`# ${k} ${counts[k]}\n`);
process.stdout.write(`# duration_ms ${(t2 - t0).toFixed(0)}\n`);
// A file that fails without a failing test (it crashed, or exited non-zero) still counts.
const failed = Math.max(counts.fail, failedFiles.length);
process.stdout.write(`suite: ${counts.pass} passed, ${failed} failed, ${counts.skipped} skipped\n`);
process.exitCode = failed > 0 ? 1 : 0;
