// Reading an `strace -f -o FILE` trace in tests that check the order of
// system calls (durability: a body's syncs before the commit that names it).

/** The lines of a trace, with the two lookups every such test needs. */
export function traceLines(text: string): {
  lines: string[];
  /** Index of the line where the call begun at line i returned (strace splits calls other threads interrupt). */
  done: (i: number) => number;
  /** Index of the first line at or after `from` that `re` matches, or -1. */
  at: (re: RegExp, from?: number) => number;
} {
  const lines = text.split('\n');
  const pidOf = (l: string) => l.split(' ')[0];
  const done = (i: number) => {
    if (!lines[i]!.includes('<unfinished ...>')) return i;
    const call = /^\d+ +(\w+)\(/.exec(lines[i]!)![1];
    return lines.findIndex((l, k) => k > i && pidOf(l) === pidOf(lines[i]!) && l.includes(`<... ${call} resumed>`));
  };
  const at = (re: RegExp, from = 0) => lines.findIndex((l, k) => k >= from && re.test(l));
  return { lines, done, at };
}
