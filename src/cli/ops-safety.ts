// Safe failures for `quire serve`: one server per data directory (a lock
// file with the owner's pid; a stale lock from a dead process is taken
// over), the first user's password kept in a 0600 file until it is used or
// changed, and a banner command that actually runs on this installation.

import cluster from 'node:cluster';
import { accessSync, constants, closeSync, openSync, readFileSync, realpathSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { chmod, rm, writeFile } from 'node:fs/promises';
import { delimiter, isAbsolute, join, relative, resolve } from 'node:path';

/** Lock file of a running server, in the data directory. */
export const LOCK_FILE = 'quire.lock';
/** Where the first user's generated password waits until first login or `quire user passwd`. */
export const FIRST_PASSWORD_FILE = 'first-user-password.txt';
/** Longest lock file read (it holds a pid and a line of text). */
const MAX_LOCK_BYTES = 4096;

/** An error whose message is meant for the admin as is (printed without a stack). */
export class OpsError extends Error {}
export class LockError extends OpsError {}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
}

function readLockPid(path: string): number | null {
  try {
    const text = readFileSync(path, 'utf8').slice(0, MAX_LOCK_BYTES);
    const pid = Number.parseInt(text, 10);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/**
 * Takes the data directory's lock, or throws LockError naming the running
 * server's pid. A lock left by a process that no longer exists (or by this
 * very pid, e.g. pid 1 in a restarted container) is taken over. Cluster
 * workers do not lock: their primary holds the lock. Returns the release.
 */
export function acquireDataLock(dataDir: string): () => void {
  if (cluster.isWorker) return () => {};
  const path = join(dataDir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, 'wx', 0o600);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code !== 'EEXIST') throw new LockError(`cannot create the lock file ${path}: ${describeFsError(e)}`);
      const pid = readLockPid(path);
      if (pid !== null && pid !== process.pid && pidAlive(pid)) {
        throw new LockError(`another Quire server (pid ${pid}) is using the data directory ${dataDir}; stop it first (or remove ${path} if pid ${pid} is not a Quire server)`);
      }
      try {
        unlinkSync(path); // stale: its process is gone
      } catch (u) {
        if ((u as NodeJS.ErrnoException).code !== 'ENOENT') throw new LockError(`cannot remove the stale lock file ${path}: ${describeFsError(u as NodeJS.ErrnoException)}`);
      }
      continue;
    }
    writeSync(fd, `${process.pid}\nquire serve, started ${new Date().toISOString()}\n`);
    closeSync(fd);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      if (readLockPid(path) === process.pid) {
        try {
          unlinkSync(path);
        } catch {
          // already gone
        }
      }
    };
    process.once('exit', release);
    return release;
  }
  throw new LockError(`cannot take the lock file ${path}: another server keeps recreating it`);
}

/** The reason of a filesystem error in words an admin recognises, with the code. */
export function describeFsError(e: NodeJS.ErrnoException): string {
  const words: Record<string, string> = {
    EROFS: 'read-only file system',
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    ENOSPC: 'no space left on device',
    ENOENT: 'no such file or directory',
    ENOTDIR: 'not a directory',
    EDQUOT: 'disk quota exceeded',
  };
  const w = e.code ? words[e.code] : undefined;
  return w ? `${w} (${e.code})` : e.message;
}

/** Writes the first user's password to a 0600 file in the data directory; returns its path. */
export async function writeFirstPassword(dataDir: string, user: string, password: string): Promise<string> {
  const path = join(dataDir, FIRST_PASSWORD_FILE);
  await writeFile(path, `user: ${user}\npassword: ${password}\n(this file is deleted at the first login of ${user} or by \`quire user passwd ${user}\`)\n`, { mode: 0o600 });
  await chmod(path, 0o600);
  return path;
}

/** Removes the first-password file if it is about `user` (first login, password changed, user deleted). */
export async function clearFirstPassword(dataDir: string, user: string): Promise<boolean> {
  const path = join(dataDir, FIRST_PASSWORD_FILE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8').slice(0, MAX_LOCK_BYTES);
  } catch {
    return false;
  }
  if (text.split('\n')[0] !== `user: ${user}`) return false;
  await rm(path, { force: true });
  return true;
}

function onPathAs(name: string, target: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      if (statSync(p).isFile() && realpathSync(p) === target) return true;
    } catch {
      // not here
    }
  }
  return false;
}

function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:=@+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * How to run `quire` on this installation, for banners and messages: `quire`
 * when that name on PATH is this program, `npx tsx src/cli/main.ts` from a
 * source checkout, otherwise `node <path of main.js>`.
 */
export function quireCommand(): string {
  const script = process.argv[1] ? resolve(process.argv[1]) : '';
  let real = script;
  try {
    real = realpathSync(script);
  } catch {
    // keep as is
  }
  if (real && onPathAs('quire', real)) return 'quire';
  const rel = relative(process.cwd(), script);
  const shown = rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : script;
  if (script.endsWith('.ts')) return `npx tsx ${shellQuote(shown)}`;
  return `node ${shellQuote(shown)}`;
}

/** ` --data DIR` when the data directory is not the default one of the working directory. */
export function dataFlag(dataDir: string): string {
  return resolve(dataDir) === resolve('data') ? '' : ` --data ${shellQuote(dataDir)}`;
}

/** A message for a listener that cannot bind (EADDRINUSE, EACCES), or null for other errors. */
export function listenErrorMessage(err: unknown): string | null {
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
  // A cluster worker's listen is done by the primary on its behalf: the error names syscall 'bind'.
  if (!(err instanceof Error) || (e.syscall !== 'listen' && e.syscall !== 'bind')) return null;
  const where = e.address !== undefined ? `${e.address.includes(':') ? `[${e.address}]` : e.address}:${e.port ?? '?'}` : 'the address';
  if (e.code === 'EADDRINUSE') return `cannot listen on ${where}: address already in use (another server, or another Quire, is on this port; choose another port or stop it)`;
  if (e.code === 'EACCES') {
    const low = typeof e.port === 'number' && e.port < 1024 ? ': ports below 1024 need root or the CAP_NET_BIND_SERVICE capability (contrib/systemd/quire.service grants it)' : '';
    return `cannot listen on ${where}: permission denied (EACCES)${low}`;
  }
  if (e.code === 'EADDRNOTAVAIL') return `cannot listen on ${where}: no such local address (EADDRNOTAVAIL)`;
  return null;
}

/** better-sqlite3's native module is missing (its install script was skipped or failed): say how to fix it. */
export function nativeModuleError(err: Error): Error | null {
  if (!/Could not locate the bindings file|better_sqlite3\.node|NODE_MODULE_VERSION/.test(err.message)) return null;
  return new OpsError(
    'the SQLite module (better-sqlite3) has no native build for this Node.js. npm skips install scripts unless allowed: ' +
      'reinstall with `npm install -g --allow-scripts=better-sqlite3 quire-mail` (in a checkout: `npm rebuild better-sqlite3`); ' +
      'where no prebuilt binary fits, it compiles, which needs a C++ toolchain and Python (Debian: apt-get install build-essential python3).',
  );
}
