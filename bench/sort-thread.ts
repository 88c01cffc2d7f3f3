// SORT and THREAD scenarios (issue 14): what a webmail asks of a big folder.
// The message list sorted by date, subject or sender, whole and as the first
// page (RFC 9394 / RFC 5267 PARTIAL 1:50), and the conversation view
// (THREAD REFERENCES). Registered in run.ts as the scenario "sort"; the
// helpers it needs (rows, repeats, a selected session) are handed in, so this
// file depends on nothing of run.ts.
import type { ImapClient } from './lib/imap.js';

export interface SortBenchKit<R> {
  /** The mailbox size and its label ("10k"). */
  size: number;
  label: string;
  row(group: string, name: string, unit: string): R;
  repeat(what: string, fn: (warm: boolean) => Promise<[R, number][]>, opts?: { warmup?: boolean; runs?: number }): Promise<void>;
  withSelected<T>(fn: (c: ImapClient) => Promise<T>): Promise<T>;
}

/** The commands timed, with a check of their answer (the number of results or threads). */
export const SORT_BENCH_COMMANDS: { key: string; cmd: string; check: (line: string, size: number) => string | null }[] = [
  { key: 'date', cmd: 'UID SORT (REVERSE DATE) UTF-8 ALL', check: sortCount },
  { key: 'date-partial', cmd: 'UID SORT RETURN (PARTIAL 1:50) (REVERSE DATE) UTF-8 ALL', check: partial50 },
  { key: 'subject', cmd: 'UID SORT (SUBJECT) UTF-8 ALL', check: sortCount },
  { key: 'subject-partial', cmd: 'UID SORT RETURN (PARTIAL 1:50) (SUBJECT) UTF-8 ALL', check: partial50 },
  { key: 'from', cmd: 'UID SORT (FROM) UTF-8 ALL', check: sortCount },
  { key: 'from-partial', cmd: 'UID SORT RETURN (PARTIAL 1:50) (FROM) UTF-8 ALL', check: partial50 },
  // Quire keeps whole-mailbox THREAD answers (same messages, same answer): after the warm-up every timed run is one.
  { key: 'thread', cmd: 'UID THREAD REFERENCES UTF-8 ALL', check: threadAnswer },
  // A search result is threaded anew every time (Quire keeps no answer for it): read and threaded on every run.
  { key: 'thread-search', cmd: 'UID THREAD REFERENCES UTF-8 UNDELETED', check: threadAnswer },
];

/**
 * Timed once, first of the scenario: the mailbox's first THREAD since the server started. Quire answers
 * it from the answer kept on disk by an earlier run when the mailbox has not changed since (schema
 * V_THREAD_ANSWERS; flags do not count), as Dovecot from its thread index files; the very first run on a
 * data directory computes it (bench/thread-first-ab.ts times both cases apart).
 */
const FIRST_THREAD = 'UID THREAD REFERENCES UTF-8 ALL';

function threadAnswer(line: string): string | null {
  return line.startsWith('* THREAD (') ? null : `not a THREAD answer: ${line.slice(0, 60)}`;
}

function sortCount(line: string, size: number): string | null {
  const n = line.startsWith('* SORT') ? line.split(' ').length - 2 : -1;
  return n === size ? null : `${n} results for ${size} messages`;
}

function partial50(line: string): string | null {
  return /^\* ESEARCH \(TAG "[^"]*"\) UID PARTIAL \(1:50 [0-9:,]+\)$/.test(line) ? null : `not a PARTIAL 1:50 answer: ${line.slice(0, 80)}`;
}

export async function scSortThread<R>(kit: SortBenchKit<R>): Promise<void> {
  const g = `SORT / THREAD (${kit.label})`;
  await kit.withSelected(async (c) => {
    const first = kit.row(g, `${FIRST_THREAD}, ${kit.label}, first THREAD of the mailbox since the server started`, 'ms');
    await kit.repeat(`${g}: thread-first`, async () => {
      c.collect = [];
      const x = await c.command(FIRST_THREAD);
      const bad = threadAnswer(c.collect.find((l) => l.startsWith('* THREAD')) ?? '');
      c.collect = null;
      if (bad) throw new Error(bad);
      return [[first, x.ms]];
    }, { warmup: false, runs: 1 }).catch(() => undefined);
    for (const { key, cmd, check } of SORT_BENCH_COMMANDS) {
      const r = kit.row(g, `${cmd}, ${kit.label}`, 'ms');
      // A failure is logged and noted in its row by repeat(); the other commands still run.
      await kit.repeat(`${g}: ${key}`, async () => {
        c.collect = [];
        const x = await c.command(cmd);
        const line = c.collect.find((l) => /^\* (SORT|ESEARCH|THREAD)\b/.test(l)) ?? '';
        c.collect = null;
        const bad = check(line, kit.size);
        if (bad) throw new Error(`${cmd}: ${bad}`);
        return [[r, x.ms]];
      }).catch(() => undefined);
    }
  });
}
