// Admin commands that talk to the running server over its control socket
// (src/cli/ops-control.ts): `quire who`, `quire kick USER`, `quire reload`,
// `quire stats`.

import type { Command } from 'commander';
import type { SessionInfo } from '../server/index.js';
import type { AdminHelpers } from './mail-admin.js';
import { controlRequest, NoServerError, type ControlStats } from './ops-control.js';
import { backup, restore } from './ops-backup.js';

function pad(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}

/** Ends the sessions of `user` on the running server, if one runs; resolves to how many (0 when no server runs). */
export async function kickIfRunning(dataDir: string, user: string): Promise<number> {
  try {
    return await controlRequest<number>(dataDir, { cmd: 'kick', user });
  } catch (err) {
    if (err instanceof NoServerError) return 0;
    throw err;
  }
}

/**
 * `quire backup` / `restore` copy a SQLite data directory; a PostgreSQL store
 * is backed up with PostgreSQL's own tools (docs/postgres.md, "Backup").
 */
function refusePostgres(h: AdminHelpers, opts: Record<string, unknown>, what: 'backup' | 'restore'): void {
  const store = h.storeOf?.(opts);
  if (store?.kind !== 'postgres') return;
  const schema = (() => {
    try {
      return new URL(store.url).searchParams.get('schema') ?? 'quire';
    } catch {
      return 'quire';
    }
  })();
  throw new Error(
    `quire ${what} copies a SQLite data directory; this store is in PostgreSQL. ` +
      (what === 'backup'
        ? `Back it up with PostgreSQL's tools: pg_dump --format=custom --schema=${schema} DBNAME > quire.dump (or continuous archiving), ` +
          'and, with bodies in files (store.blobs), copy that directory after the dump, within an hour of it (docs/postgres.md, "Backup").'
        : `Restore a pg_dump with pg_restore --schema=${schema} into a database without that schema (docs/postgres.md, "Backup").`),
  );
}

export function registerOpsCommands(program: Command, h: AdminHelpers): void {
  h.addStoreOptions(program.command('who').description('sessions on the running server: user, address, protocol, state, since, mailbox'))
    .option('--json', 'print JSON')
    .action(async (opts: Record<string, unknown>) => {
      const list = await controlRequest<SessionInfo[]>(h.dataDir(opts), { cmd: 'who' });
      if (opts.json) {
        process.stdout.write(JSON.stringify(list, null, 2) + '\n');
        return;
      }
      const rows = [['USER', 'REMOTE', 'PROTO', 'STATE', 'SINCE', 'MAILBOX', 'SESSION']];
      for (const s of list) rows.push([s.user ?? '-', s.remote, s.protocol + (s.tls ? '/tls' : ''), s.state, new Date(s.since).toISOString(), s.mailbox ?? '-', s.session]);
      process.stdout.write(pad(rows));
    });

  h.addStoreOptions(program.command('kick').argument('<user>', 'user name').description("end all of a user's sessions on the running server")).action(
    async (user: string, opts: Record<string, unknown>) => {
      const n = await controlRequest<number>(h.dataDir(opts), { cmd: 'kick', user });
      process.stdout.write(`kicked ${n} session${n === 1 ? '' : 's'} of ${user}\n`);
    },
  );

  h.addStoreOptions(program.command('reload').description('make the running server re-read its configuration and TLS certificate (like SIGHUP)')).action(
    async (opts: Record<string, unknown>) => {
      const ok = await controlRequest<boolean>(h.dataDir(opts), { cmd: 'reload' });
      if (!ok) throw new Error('reload failed; the server keeps its previous configuration (see its log)');
      process.stdout.write('reloaded\n');
    },
  );

  h.addStoreOptions(program.command('stats').description('figures of the running server (sessions, logins, commands, deliveries, memory)'))
    .option('--json', 'print JSON')
    .action(async (opts: Record<string, unknown>) => {
      const s = await controlRequest<ControlStats>(h.dataDir(opts), { cmd: 'stats' });
      if (opts.json) {
        process.stdout.write(JSON.stringify(s, null, 2) + '\n');
        return;
      }
      const states = Object.entries(s.sessionsByState).map(([k, v]) => `${k} ${v}`).join(', ');
      process.stdout.write(
        [
          `pid            ${s.pid}`,
          `uptime         ${s.uptimeSeconds} s`,
          `workers        ${s.workers}`,
          `sessions       ${s.sessions}${states ? ` (${states})` : ''}`,
          `logins         ${s.logins.success} ok, ${s.logins.failure} failed`,
          `commands       ${s.commands}`,
          `deliveries     ${s.deliveries}`,
          `memory (RSS)   ${(s.rssBytes / 1024 / 1024).toFixed(1)} MiB`,
        ].join('\n') + '\n',
      );
    });

  h.addStoreOptions(program.command('backup').argument('<dir>', 'new, empty directory for the backup').description('consistent copy of the store (database and message bodies) while the server keeps running'))
    .action(async (dir: string, opts: Record<string, unknown>) => {
      refusePostgres(h, opts, 'backup');
      const r = await backup(h.dataDir(opts), dir, (m) => process.stderr.write(`${m}\n`));
      process.stdout.write(`backup in ${r.dir}: ${r.messages} messages, ${r.bodies} bodies, ${r.bytes} bytes (verified)\n`);
    });

  h.addStoreOptions(program.command('restore').argument('<dir>', 'a directory made by `quire backup`').description('restore a backup into a new data directory (the server must not be running on it)'))
    .action(async (dir: string, opts: Record<string, unknown>) => {
      refusePostgres(h, opts, 'restore');
      const r = await restore(dir, h.dataDir(opts), (m) => process.stderr.write(`${m}\n`));
      process.stdout.write(`restored into ${r.dir}: ${r.messages} messages, ${r.bodies} bodies, ${r.bytes} bytes (verified)\n`);
    });
}
