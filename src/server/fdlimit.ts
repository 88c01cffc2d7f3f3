// The file-descriptor limit against the connection caps: every connection
// holds one descriptor, so a cap above RLIMIT_NOFILE is a promise the
// process cannot keep (accept() then fails with EMFILE, for logged-in users
// as much as for anyone). `quire serve` warns at start; the reading of
// /proc/self/limits happens in src/cli, this module only judges.

/** Descriptors the process needs besides connections: SQLite database, WAL and shm (per thread), listeners, stdio, logs. */
export const RESERVED_DESCRIPTORS = 64;

/** The soft "Max open files" limit from the text of /proc/self/limits (Linux), or null when absent or unlimited. */
export function parseOpenFilesLimit(procLimits: string): number | null {
  for (const line of procLimits.split('\n')) {
    if (!line.startsWith('Max open files')) continue;
    const soft = line.slice('Max open files'.length).trim().split(/\s+/)[0];
    if (soft === undefined || soft === 'unlimited') return null;
    const n = Number(soft);
    return Number.isSafeInteger(n) ? n : null;
  }
  return null;
}

/** The warning to log when `softLimit` descriptors cannot hold `connections` connections, or null when they can. */
export function descriptorLimitWarning(softLimit: number | null, connections: number): string | null {
  if (softLimit === null) return null;
  const needed = connections + RESERVED_DESCRIPTORS;
  if (softLimit >= needed) return null;
  return `the file-descriptor limit (RLIMIT_NOFILE soft limit ${softLimit}) is below the ${needed} the connection caps need ` +
    `(${connections} connections + ${RESERVED_DESCRIPTORS}); raise it (systemd LimitNOFILE=, ulimit -n) or lower limits.maxConnections`;
}
