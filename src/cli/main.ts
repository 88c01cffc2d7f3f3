#!/usr/bin/env node
// The `quire` command: the composition root. It reads configuration, opens
// the store, builds the authenticator and starts the server; admin
// subcommands manage users through the same store API the server uses.

import { Command, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { buildAuthenticator } from './auth-config.js';
import { registerAppPasswords } from './app-passwords.js';
import type { MailStore } from '../store/types.js';
import { StoreError } from '../store/types.js';
import { ConfigError, configToJson, loadConfig, toLmtpOptions, toServerOptions, type QuireConfig } from './config.js';
import { createLogger, LOG_FORMATS, LOG_LEVELS, type LevelLogger } from './log.js';
import { warnAboutDescriptorLimit } from './fdlimit.js';
import { loadOrCreateTls } from './tls.js';
import { registerMailAdmin } from './mail-admin.js';
import { registerTransfer } from './transfer.js';
import { registerMigrate } from './migrate.js';
import { registerMailboxAdmin } from './mailbox-admin.js';
import { registerDoctor } from './doctor.js';
import { changePassword, checkPassword, firstUserName, generatePassword, provisionUser, removeUser } from './users.js';
import { serveLogger, serverReloader, startServeOps, type ServeOps } from './ops-serve.js';
import { acquireDataLock, clearFirstPassword, dataFlag, listenErrorMessage, nativeModuleError, OpsError, quireCommand, writeFirstPassword } from './ops-safety.js';
import { instrumentStore } from '../obs/metrics.js';
import { kickIfRunning, registerOpsCommands } from './ops-commands.js';
import { openReadOnlyStore, readOnlyReason } from './ops-readonly.js';
import { join } from 'node:path';
import { sessionEvents } from '../obs/session.js';

/** Longest password read from stdin (it is checked again by checkPassword). */
const MAX_STDIN_PASSWORD_BYTES = 64 * 1024;

/** An error whose message is meant for the user as is (no stack). */
class UsageError extends Error {}

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

function configure(flags: Record<string, unknown>, log?: LevelLogger): QuireConfig {
  const warnings: string[] = [];
  const config = loadConfig({ flags, onWarning: (m) => warnings.push(m) });
  const l = log ?? createLogger({ level: config.logLevel });
  for (const w of warnings) l.warn(w);
  return config;
}

async function openStore(config: QuireConfig, create: boolean): Promise<MailStore> {
  if (config.store.kind === 'postgres') {
    // A node of a shared PostgreSQL store (src/cli/store-open.ts): the data directory is not needed to reach it.
    const { openStore: open } = await import('./store-open.js');
    return open({ data: config.dataDir, store: config.store, maxMailboxesPerUser: config.mailboxes.maxPerUser, followOthers: false });
  }
  if (create) {
    await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  } else {
    const s = await stat(config.dataDir).catch(() => null);
    if (!s?.isDirectory()) throw new UsageError(`no data directory at ${config.dataDir} (create a user with \`quire user add\` or start \`quire serve\` first)`);
  }
  // Loaded lazily so that `quire --help` does not load the native SQLite module.
  const { openSqliteStore, DB_FILE } = await import('../store/sqlite/index.js').catch((err: Error) => {
    throw nativeModuleError(err) ?? err;
  });
  // A data directory we may not write (ops): the reading commands still work, writes are refused with the reason.
  const ro = readOnlyReason(config.dataDir, join(config.dataDir, DB_FILE));
  if (ro && create) throw new UsageError(`cannot write to the data directory: ${ro}`);
  if (ro) return openReadOnlyStore(config.dataDir, DB_FILE, ro, (o) => openSqliteStore({ ...o, synchronous: config.sqlite.synchronous, durability: config.sqlite.durability, maxMailboxesPerUser: config.mailboxes.maxPerUser }));
  return openSqliteStore({ dataDir: config.dataDir, synchronous: config.sqlite.synchronous, durability: config.sqlite.durability, maxMailboxesPerUser: config.mailboxes.maxPerUser });
}

async function withStore<T>(flags: Record<string, unknown>, create: boolean, fn: (store: MailStore) => Promise<T>): Promise<T> {
  const config = configure(flags);
  const store = await openStore(config, create);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

async function readPasswordFromStdin(minLength = 1): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of process.stdin) {
    const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    total += b.length;
    if (total > MAX_STDIN_PASSWORD_BYTES) throw new UsageError('password on stdin is too long');
    chunks.push(b);
  }
  // One trailing line break is the terminator of `echo` / a here-string, not part of the password.
  const pw = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  const bad = checkPassword(pw, minLength);
  if (bad) throw new UsageError(`${bad} (read from stdin)`);
  return pw;
}

function addStoreOptions(cmd: Command): Command {
  return cmd
    .option('-d, --data <dir>', 'data directory (default: ./data, or QUIRE_DATA)')
    .option('-c, --config <file>', 'JSON config file (default: <data>/quire.json if present, or QUIRE_CONFIG)')
    .option('--store <url>', 'the store: "sqlite" (in the data directory, default) or postgres://USER@HOST/DB[?schema=NAME] (or QUIRE_STORE)');
}

function addServeOptions(cmd: Command): Command {
  return cmd
    .option('--imap-host <hosts>', 'address(es) of the STARTTLS listener, comma-separated (default 127.0.0.1)')
    .option('--imap-port <port>', 'port of the STARTTLS listener, or "off" (default 1143)')
    .option('--imaps-host <hosts>', 'address(es) of the implicit-TLS listener, comma-separated (default 127.0.0.1)')
    .option('--imaps-port <port>', 'port of the implicit-TLS listener, or "off" (default 1993)')
    .option('--tls-cert <file>', 'PEM certificate chain (default: generated self-signed in <data>/tls)')
    .option('--tls-key <file>', 'PEM private key')
    .addOption(new Option('--plaintext-auth <where>', 'allow login without TLS (default loopback)').choices(['never', 'loopback', 'always']))
    .addOption(new Option('--log-level <level>', 'log level (default info)').choices([...LOG_LEVELS]))
    .option('--lmtp-host <hosts>', 'address(es) of the LMTP listener, comma-separated (default 127.0.0.1)')
    .option('--lmtp-port <port>', 'port of the LMTP listener, or "off" (default 2424)')
    .option('--lmtp-socket <path>', 'also listen for LMTP on this Unix socket')
    // ops: log format and the HTTP admin listener
    .addOption(new Option('--log-format <format>', 'log format on stderr (default text)').choices([...LOG_FORMATS]))
    .option('--admin-host <host>', 'address of the HTTP admin listener: /metrics, /healthz, /readyz (default 127.0.0.1)')
    .option('--admin-port <port>', 'port of the HTTP admin listener, or "off" (default 9143)')
    .option('--workers <n>', 'serving processes (default 0: one per core; 1 = a single process)')
    // POP3 (src/pop3)
    .option('--pop3-host <hosts>', 'address(es) of the POP3 (STLS) listener, comma-separated (default 127.0.0.1)')
    .option('--pop3-port <port>', 'port of the POP3 (STLS) listener, or "off" (default 1110)')
    .option('--pop3s-host <hosts>', 'address(es) of the POP3 implicit-TLS listener, comma-separated (default 127.0.0.1)')
    .option('--pop3s-port <port>', 'port of the POP3 implicit-TLS listener, or "off" (default 1995)')
    // PROXY protocol (src/server/proxy-protocol.ts)
    .option('--proxy-protocol-from <cidrs>', 'load balancers allowed to send PROXY v1/v2 headers, comma-separated ADDR/PREFIX; every listener then requires them (default: off)');
}

async function serve(flags: Record<string, unknown>): Promise<void> {
  // The process model (one process, or a cluster of workers) lives in serve.ts.
  const { serve: run } = await import('./serve.js');
  await run(flags, { configure });
}

function buildProgram(): Command {
  const program = new Command('quire')
    .description('Quire: an IMAP4rev2/IMAP4rev1 mail server with an embedded SQLite store')
    .version(version())
    .showHelpAfterError()
    .configureOutput({ outputError: (s, write) => write(s) });

  addServeOptions(addStoreOptions(program.command('serve').description('start the IMAP server (creates a first user on first start)')))
    .action(async (opts: Record<string, unknown>) => serve(opts));

  addServeOptions(addStoreOptions(program.command('config').description('print the effective configuration as JSON (same options as serve)'))).action(
    (opts: Record<string, unknown>) => {
      const config = configure(opts);
      process.stderr.write(config.configFile ? `# config file: ${config.configFile}\n` : '# no config file\n');
      process.stdout.write(JSON.stringify(configToJson(config), null, 2) + '\n');
    },
  );

  const user = program.command('user').description('manage users');

  addStoreOptions(user.command('add').argument('<name>', 'user name').description('create a user with the default mailboxes'))
    .option('--password-stdin', 'read the password from standard input instead of generating one')
    .action(async (name: string, opts: Record<string, unknown>) => {
      const password = opts.passwordStdin ? await readPasswordFromStdin(configure(opts).auth.minPasswordLength) : generatePassword();
      await withStore(opts, true, (store) => provisionUser(store, name, password));
      process.stdout.write(`created user ${name}\n`);
      if (!opts.passwordStdin) process.stdout.write(`password: ${password}\n`);
    });

  addStoreOptions(user.command('passwd').argument('<name>', 'user name').description("set a user's password"))
    .option('--password-stdin', 'read the new password from standard input instead of generating one')
    .action(async (name: string, opts: Record<string, unknown>) => {
      const password = opts.passwordStdin ? await readPasswordFromStdin(configure(opts).auth.minPasswordLength) : generatePassword();
      await withStore(opts, false, (store) => changePassword(store, name, password));
      await clearFirstPassword(configure(opts).dataDir, name);
      process.stdout.write(`changed password of ${name}\n`);
      if (!opts.passwordStdin) process.stdout.write(`password: ${password}\n`);
    });

  addStoreOptions(user.command('del').alias('delete').argument('<name>', 'user name').description('delete a user and all their mail')).action(
    async (name: string, opts: Record<string, unknown>) => {
      await withStore(opts, false, (store) => removeUser(store, name));
      // A running server ends the deleted user's sessions (ops).
      const kicked = await kickIfRunning(configure(opts).dataDir, name);
      await clearFirstPassword(configure(opts).dataDir, name);
      process.stdout.write(`deleted user ${name}${kicked ? ` (ended ${kicked} session${kicked === 1 ? '' : 's'})` : ''}\n`);
    },
  );

  addStoreOptions(user.command('list').alias('ls').description('list users (name and creation time, tab-separated)')).action(async (opts: Record<string, unknown>) => {
    const users = await withStore(opts, false, (store) => store.listUsers());
    for (const u of users) process.stdout.write(`${u.name}\t${u.createdAt.toISOString()}\n`);
  });

  const admin = { addStoreOptions, withStore, dataDir: (flags: Record<string, unknown>) => configure(flags).dataDir, storeOf: (flags: Record<string, unknown>) => configure(flags).store };
  registerMailAdmin(program, user, admin);
  registerAppPasswords(user, admin);
  registerTransfer(program, admin);
  registerMigrate(program, admin);
  registerMailboxAdmin(program, admin);
  registerDoctor(program, admin);
  registerOpsCommands(program, admin);

  return program;
}

function reportError(err: unknown): void {
  const listen = listenErrorMessage(err);
  if (listen) process.stderr.write(`quire: ${listen}\n`);
  else if (err instanceof ConfigError) process.stderr.write(`quire: configuration error: ${err.message}\n`);
  else if (err instanceof StoreError || err instanceof UsageError || err instanceof OpsError) process.stderr.write(`quire: ${err.message}\n`);
  else if (err instanceof Error) process.stderr.write(`quire: ${process.env.QUIRE_LOG_STACKS ? (err.stack ?? err.message) : err.message}\n`);
  else process.stderr.write(`quire: ${String(err)}\n`);
}

try {
  await buildProgram().parseAsync(process.argv);
} catch (err) {
  reportError(err);
  process.exitCode = 1;
}
