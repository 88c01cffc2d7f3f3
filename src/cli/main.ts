#!/usr/bin/env node
// The `quire` command: the composition root. It reads configuration, opens
// the store, builds the authenticator and starts the server; admin
// subcommands manage users through the same store API the server uses.

import { Command, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { Authenticator } from '../auth/authenticator.js';
import type { MailStore } from '../store/types.js';
import { StoreError } from '../store/types.js';
import { ConfigError, configToJson, loadConfig, toLmtpOptions, toServerOptions, type QuireConfig } from './config.js';
import { createLogger, LOG_LEVELS, type LevelLogger } from './log.js';
import { toPop3Options } from './config.js';
import { loadOrCreateTls } from './tls.js';
import { registerMailAdmin } from './mail-admin.js';
import { registerTransfer } from './transfer.js';
import { registerMailboxAdmin } from './mailbox-admin.js';
import { registerDoctor } from './doctor.js';
import { changePassword, checkPassword, firstUserName, generatePassword, provisionUser, removeUser } from './users.js';

/** How long a clean shutdown may take before we exit anyway. */
const SHUTDOWN_TIMEOUT_MS = 10_000;
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
  if (create) {
    await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  } else {
    const s = await stat(config.dataDir).catch(() => null);
    if (!s?.isDirectory()) throw new UsageError(`no data directory at ${config.dataDir} (create a user with \`quire user add\` or start \`quire serve\` first)`);
  }
  // Loaded lazily so that `quire --help` does not load the native SQLite module.
  const { openSqliteStore } = await import('../store/sqlite/index.js');
  return openSqliteStore({ dataDir: config.dataDir, synchronous: config.sqlite.synchronous });
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

async function readPasswordFromStdin(): Promise<string> {
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
  const bad = checkPassword(pw);
  if (bad) throw new UsageError(`${bad} (read from stdin)`);
  return pw;
}

function addStoreOptions(cmd: Command): Command {
  return cmd
    .option('-d, --data <dir>', 'data directory (default: ./data, or QUIRE_DATA)')
    .option('-c, --config <file>', 'JSON config file (default: <data>/quire.json if present, or QUIRE_CONFIG)');
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
    // POP3 (src/pop3)
    .option('--pop3-host <hosts>', 'address(es) of the POP3 (STLS) listener, comma-separated (default 127.0.0.1)')
    .option('--pop3-port <port>', 'port of the POP3 (STLS) listener, or "off" (default 1110)')
    .option('--pop3s-host <hosts>', 'address(es) of the POP3 implicit-TLS listener, comma-separated (default 127.0.0.1)')
    .option('--pop3s-port <port>', 'port of the POP3 implicit-TLS listener, or "off" (default 1995)');
}

function formatAddr(a: { host: string; port: number }): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

async function serve(flags: Record<string, unknown>): Promise<void> {
  const config = configure(flags, undefined);
  const log = createLogger({ level: config.logLevel });
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const tls = await loadOrCreateTls(config, log);
  const store = await openStore(config, true);
  let firstUser: { name: string; password: string } | null = null;
  let pop3Lines: string[] = [];
  let server: { close(): Promise<void>; addresses: { imap: { host: string; port: number }[]; imaps: { host: string; port: number }[] } };
  let lmtp: Awaited<ReturnType<typeof import('../delivery/server.js').startLmtp>> | null = null;
  let pop3: import('../pop3/server.js').RunningPop3 | null = null;
  try {
    if ((await store.countUsers()) === 0) {
      let osName: string | undefined;
      try {
        osName = userInfo().username;
      } catch {
        osName = undefined;
      }
      const name = firstUserName(osName);
      const password = generatePassword();
      await provisionUser(store, name, password);
      firstUser = { name, password };
      log.info('created first user', { user: name });
    }
    store.startBackgroundWork?.((err) => log.warn('full-text indexing failed', { err: String(err) }));
    const auth = new Authenticator(store, { baseDelayMs: config.auth.failureDelayMs, maxDelayMs: config.auth.maxFailureDelayMs });
    const { startServer } = await import('../server/index.js');
    server = await startServer(store, auth, toServerOptions(config, tls, log));
    const lmtpOptions = toLmtpOptions(config, log);
    if (lmtpOptions) {
      const { startLmtp } = await import('../delivery/server.js');
      lmtp = await startLmtp(store, lmtpOptions).catch(async (err: unknown) => {
        await server.close().catch(() => {});
        throw err;
      });
    }
    // POP3 (src/pop3/server.ts), on the same store and authenticator.
    const pop3Mod = await import('../pop3/server.js');
    pop3 = await pop3Mod.startPop3IfConfigured(store, auth, toPop3Options(config, tls, log)).catch(async (err: unknown) => {
      await lmtp?.close().catch(() => {});
      await server.close().catch(() => {});
      throw err;
    });
    pop3Lines = pop3Mod.pop3Banner(pop3);
  } catch (err) {
    await store.close().catch(() => {});
    throw err;
  }

  const out: string[] = ['', 'Quire is running.'];
  for (const a of server.addresses.imap) out.push(`  IMAP (STARTTLS):   ${formatAddr(a)}`);
  for (const a of server.addresses.imaps) out.push(`  IMAPS (TLS):       ${formatAddr(a)}`);
  for (const a of lmtp?.addresses.tcp ?? []) out.push(`  LMTP:              ${formatAddr(a)}`);
  if (lmtp?.addresses.socket) out.push(`  LMTP socket:       ${lmtp.addresses.socket}`);
  out.push(...pop3Lines);
  out.push(`  data directory:    ${config.dataDir}`);
  if (tls.selfSigned) {
    out.push(`  TLS certificate:   self-signed (${tls.certPath})`);
    out.push(`  SHA-256:           ${tls.fingerprint256}`);
    out.push('  Your mail client will warn about the certificate; accept it only if the fingerprint matches.');
  } else {
    out.push(`  TLS certificate:   ${tls.certPath} (SHA-256 ${tls.fingerprint256})`);
  }
  if (config.plaintextAuth !== 'never') out.push(`  Login without TLS: ${config.plaintextAuth === 'loopback' ? 'allowed from loopback only' : 'allowed everywhere (!)'}`);
  if (firstUser) {
    out.push('');
    out.push(`First start: created user "${firstUser.name}" with password:`);
    out.push(`  ${firstUser.password}`);
    out.push(`This password is shown only once. Change it with \`quire user passwd ${firstUser.name}\`.`);
  }
  out.push('');

  let closing = false;
  const shutdown = (signal: string): void => {
    if (closing) {
      log.warn('second signal, exiting immediately', { signal });
      process.exit(1);
    }
    closing = true;
    log.info('shutting down', { signal });
    const timer = setTimeout(() => {
      log.error('shutdown timed out, exiting', { timeoutMs: SHUTDOWN_TIMEOUT_MS });
      process.exit(1);
    }, SHUTDOWN_TIMEOUT_MS);
    timer.unref();
    void (async () => {
      let code = 0;
      try {
        await lmtp?.close();
        await pop3?.close();
        await server.close();
      } catch (err) {
        code = 1;
        log.error('error while closing the server', { err });
      }
      try {
        // The store closes last: sessions may still be writing while the server drains.
        await store.close();
      } catch (err) {
        code = 1;
        log.error('error while closing the store', { err });
      }
      log.info('stopped');
      process.exit(code);
    })();
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  // The banner last: whoever waits for it may signal us at once, and the handlers are in place.
  process.stdout.write(out.join('\n') + '\n');
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
      const password = opts.passwordStdin ? await readPasswordFromStdin() : generatePassword();
      await withStore(opts, true, (store) => provisionUser(store, name, password));
      process.stdout.write(`created user ${name}\n`);
      if (!opts.passwordStdin) process.stdout.write(`password: ${password}\n`);
    });

  addStoreOptions(user.command('passwd').argument('<name>', 'user name').description("set a user's password"))
    .option('--password-stdin', 'read the new password from standard input instead of generating one')
    .action(async (name: string, opts: Record<string, unknown>) => {
      const password = opts.passwordStdin ? await readPasswordFromStdin() : generatePassword();
      await withStore(opts, false, (store) => changePassword(store, name, password));
      process.stdout.write(`changed password of ${name}\n`);
      if (!opts.passwordStdin) process.stdout.write(`password: ${password}\n`);
    });

  addStoreOptions(user.command('del').alias('delete').argument('<name>', 'user name').description('delete a user and all their mail')).action(
    async (name: string, opts: Record<string, unknown>) => {
      await withStore(opts, false, (store) => removeUser(store, name));
      process.stdout.write(`deleted user ${name}\n`);
    },
  );

  addStoreOptions(user.command('list').alias('ls').description('list users (name and creation time, tab-separated)')).action(async (opts: Record<string, unknown>) => {
    const users = await withStore(opts, false, (store) => store.listUsers());
    for (const u of users) process.stdout.write(`${u.name}\t${u.createdAt.toISOString()}\n`);
  });

  const admin = { addStoreOptions, withStore, dataDir: (flags: Record<string, unknown>) => configure(flags).dataDir };
  registerMailAdmin(program, user, admin);
  registerTransfer(program, admin);
  registerMailboxAdmin(program, admin);
  registerDoctor(program, admin);

  return program;
}

function reportError(err: unknown): void {
  if (err instanceof ConfigError) process.stderr.write(`quire: configuration error: ${err.message}\n`);
  else if (err instanceof StoreError || err instanceof UsageError) process.stderr.write(`quire: ${err.message}\n`);
  else if (err instanceof Error) process.stderr.write(`quire: ${process.env.QUIRE_LOG_STACKS ? (err.stack ?? err.message) : err.message}\n`);
  else process.stderr.write(`quire: ${String(err)}\n`);
}

try {
  await buildProgram().parseAsync(process.argv);
} catch (err) {
  reportError(err);
  process.exitCode = 1;
}
