// The POP3 commands, one declarative entry each: name, the states it is valid
// in, the RFC sections it implements, and run(). The session checks the state
// centrally (RFC 1939 §3: a command in the wrong state gets -ERR).
//
//   RFC 1939 §4-§7  USER PASS QUIT STAT LIST RETR DELE NOOP RSET TOP UIDL
//   RFC 2449 §5     CAPA (and the RESP-CODES, PIPELINING, LOGIN-DELAY, EXPIRE,
//                   IMPLEMENTATION capabilities it lists)
//   RFC 2595 §4     STLS
//   RFC 5034 §4     AUTH (SASL), with AUTH-RESP-CODE: failures carry [AUTH]
//   RFC 6856 §2     UTF8
//   RFC 3206        the SYS/TEMP, SYS/PERM and AUTH response codes
// APOP (RFC 1939 §7) is not offered: it needs the password in the clear on the server.

import type { CommandLine } from './codec.js';
import { POP3_MAX_NUMBER_DIGITS, POP3_MAX_SASL_LINE_LENGTH, POP3_STREAM_CHUNK, POP3_WHOLE_READ_MAX } from './limits.js';
import type { LeasedBytes } from '../store/types.js';
import type { DropMessage } from './maildrop.js';
import { initialResponse, runSasl, saslMechanisms, startMechanism } from './sasl.js';
import { printable, type Pop3Session, type Pop3State } from './session.js';

export interface Pop3Command {
  name: string;
  states: readonly Exclude<Pop3State, 'update' | 'closed'>[];
  rfc: string;
  run(s: Pop3Session, cmd: CommandLine): void | Promise<void>;
}

const AUTHZ = ['authorization'] as const;
const TRANS = ['transaction'] as const;
const BOTH = ['authorization', 'transaction'] as const;

/** Longest user name accepted from USER (the store's names are far shorter). */
const MAX_USER_NAME = 255;

/** A message-number or line-count argument: digits only, bounded (never a number from arbitrary text). */
function parseNumber(arg: string | undefined): number | null {
  if (arg === undefined || arg.length === 0 || arg.length > POP3_MAX_NUMBER_DIGITS || !/^[0-9]+$/.test(arg)) return null;
  return Number(arg);
}

/**
 * Resolves "msg" (RFC 1939 §3: a message number of the snapshot, not marked
 * deleted). Writes -ERR and returns null otherwise.
 */
function message(s: Pop3Session, arg: string | undefined, extra: boolean): DropMessage | null {
  if (extra) {
    s.fail('Too many arguments');
    return null;
  }
  const n = parseNumber(arg);
  if (n === null) {
    s.fail(`Invalid message number: ${printable(arg ?? '')}`);
    return null;
  }
  const m = s.drop!.at(n);
  if (!m) {
    s.reply(`-ERR No such message: ${n}`);
    return null;
  }
  if (m.deleted) {
    s.reply(`-ERR Message ${n} is marked as deleted`);
    return null;
  }
  return m;
}

/** RFC 1939 §5 STAT / LIST, §7 UIDL: one listing line per message not marked deleted. */
function listing(s: Pop3Session, cmd: CommandLine, line: (n: number, m: DropMessage) => string, header: string): Promise<void> | void {
  const drop = s.drop!;
  if (cmd.args.length === 0) {
    const lines = function* () {
      for (let i = 0; i < drop.messages.length; i++) {
        const m = drop.messages[i]!;
        if (!m.deleted) yield line(i + 1, m);
      }
    };
    return s.multiline(header, lines());
  }
  const m = message(s, cmd.args[0], cmd.args.length > 1);
  if (m) s.reply(`+OK ${line(m.n, m)}`);
}

const commands: Pop3Command[] = [
  {
    name: 'CAPA',
    states: BOTH,
    rfc: 'RFC 2449 §5',
    run: (s) => s.multiline('+OK Capability list follows', s.capabilities()),
  },
  {
    name: 'USER',
    states: AUTHZ,
    rfc: 'RFC 1939 §7, RFC 6856 §2 (UTF8 USER)',
    run(s, cmd) {
      // LOGINDISABLED's equivalent: USER is not in CAPA and is refused with [AUTH] (RFC 3206 §4).
      if (!s.plaintextAllowed()) return s.fail('[AUTH] Plaintext authentication is not allowed without TLS (use STLS)');
      const name = cmd.rest;
      if (name.length === 0 || name.length > MAX_USER_NAME) return s.fail('Invalid user name');
      s.pendingUser = name;
      s.reply('+OK');
    },
  },
  {
    name: 'PASS',
    states: AUTHZ,
    rfc: 'RFC 1939 §7',
    async run(s, cmd) {
      if (!s.plaintextAllowed()) return s.fail('[AUTH] Plaintext authentication is not allowed without TLS (use STLS)');
      const name = s.pendingUser;
      if (name === null) return s.fail('USER first');
      // RFC 1939 §7: the password is the rest of the line, spaces included.
      const info = await s.auth.verify(name, cmd.rest, s.io.remoteAddress).catch(() => undefined);
      if (info === undefined) {
        s.pendingUser = null;
        return s.reply('-ERR [SYS/TEMP] Authentication is not available, try again later');
      }
      if (!info) return s.authFailed();
      await s.enterTransaction(info);
    },
  },
  {
    name: 'AUTH',
    states: AUTHZ,
    rfc: 'RFC 5034 §4, RFC 4616',
    async run(s, cmd) {
      if (cmd.args.length === 0) {
        // Without a mechanism: the list of mechanisms (RFC 1734's form, still used by Outlook).
        return s.multiline('+OK', s.plaintextAllowed() ? saslMechanisms() : []);
      }
      if (!s.plaintextAllowed()) return s.fail('[AUTH] Authentication is not allowed without TLS (use STLS)');
      if (cmd.args.length > 2) return s.fail('Too many arguments');
      const m = startMechanism(cmd.args[0]!);
      if (!m) return s.fail(`Unsupported mechanism ${printable(cmd.args[0]!)}`);
      const initial = initialResponse(cmd.args[1]);
      if (initial === 'invalid') return s.fail('Invalid base64 in initial response');
      const out = await runSasl(m, initial, {
        challenge: async (data) => {
          // RFC 5034 §4: "+" SP base64 (an empty challenge is "+ ").
          s.reply(`+ ${data.toString('base64')}`);
          return s.readLine(POP3_MAX_SASL_LINE_LENGTH);
        },
      });
      switch (out.type) {
        case 'cancelled':
          return s.fail('Authentication cancelled');
        case 'bad':
          return s.fail(out.text);
        case 'fail':
          // Charged like a wrong password when the identity is known (brute-force delay).
          if (out.authcid) await s.auth.verify(out.authcid, '', s.io.remoteAddress).catch(() => null);
          return s.authFailed();
        case 'password': {
          const info = await s.auth.verify(out.authcid, out.password, s.io.remoteAddress).catch(() => undefined);
          if (info === undefined) return s.reply('-ERR [SYS/TEMP] Authentication is not available, try again later');
          if (!info) return s.authFailed();
          return s.enterTransaction(info);
        }
        case 'verified': {
          const info = await s.store.getUser(out.authcid).catch(() => null);
          if (!info) return s.authFailed();
          return s.enterTransaction(info);
        }
      }
    },
  },
  {
    name: 'STLS',
    states: AUTHZ,
    rfc: 'RFC 2595 §4',
    async run(s, cmd) {
      if (cmd.args.length > 0) return s.fail('STLS takes no arguments');
      if (s.secure) return s.fail('Already using TLS');
      await s.startTls();
    },
  },
  {
    name: 'UTF8',
    states: AUTHZ,
    rfc: 'RFC 6856 §2',
    run(s) {
      s.utf8 = true;
      s.reply('+OK UTF8 enabled');
    },
  },
  {
    name: 'QUIT',
    states: BOTH,
    rfc: 'RFC 1939 §4 (AUTHORIZATION), §6 (UPDATE)',
    async run(s) {
      if (s.state === 'authorization') {
        s.reply('+OK Logging out');
        return s.close();
      }
      await s.update();
    },
  },
  {
    name: 'STAT',
    states: TRANS,
    rfc: 'RFC 1939 §5',
    // Arguments are ignored, as they are by Dovecot.
    run: (s) => s.reply(`+OK ${s.drop!.count} ${s.drop!.size}`),
  },
  {
    name: 'LIST',
    states: TRANS,
    rfc: 'RFC 1939 §5',
    run: (s, cmd) => listing(s, cmd, (n, m) => `${n} ${m.size}`, `+OK ${s.drop!.count} messages (${s.drop!.size} octets)`),
  },
  {
    name: 'UIDL',
    states: TRANS,
    rfc: 'RFC 1939 §7',
    run: (s, cmd) => listing(s, cmd, (n, m) => `${n} ${s.drop!.uidl(m)}`, '+OK Unique-id listing follows'),
  },
  {
    name: 'RETR',
    states: TRANS,
    rfc: 'RFC 1939 §5',
    async run(s, cmd) {
      const m = message(s, cmd.args[0], cmd.args.length > 1);
      if (!m) return;
      await send(s, m, undefined);
    },
  },
  {
    name: 'TOP',
    states: TRANS,
    rfc: 'RFC 1939 §7',
    async run(s, cmd) {
      if (cmd.args.length !== 2) return s.fail('TOP needs a message number and a line count');
      const m = message(s, cmd.args[0], false);
      if (!m) return;
      const arg = cmd.args[1]!;
      // A line count beyond 10 digits is still "all of it"; anything not a number is an error.
      const lines = /^[0-9]+$/.test(arg) ? (arg.length > POP3_MAX_NUMBER_DIGITS ? Infinity : Number(arg)) : null;
      if (lines === null) return s.fail(`Invalid line count: ${printable(arg)}`);
      await send(s, m, lines);
    },
  },
  {
    name: 'DELE',
    states: TRANS,
    rfc: 'RFC 1939 §5',
    run(s, cmd) {
      const m = message(s, cmd.args[0], cmd.args.length > 1);
      if (!m) return;
      s.drop!.markDeleted(m);
      s.count('dele');
      s.reply('+OK Marked for deletion');
    },
  },
  {
    name: 'NOOP',
    states: TRANS,
    rfc: 'RFC 1939 §5',
    run: (s) => s.reply('+OK'),
  },
  {
    name: 'RSET',
    states: TRANS,
    rfc: 'RFC 1939 §5',
    run(s) {
      s.drop!.reset();
      s.reply(`+OK ${s.drop!.count} messages (${s.drop!.size} octets)`);
    },
  },
];

/** RETR (bodyLines undefined) and TOP. A message expunged meanwhile (by IMAP) answers -ERR. */
async function send(s: Pop3Session, m: DropMessage, bodyLines: number | undefined): Promise<void> {
  const drop = s.drop!;
  const n = m.n;
  // The change feed told us (RFC 1939 §8 leaves it open; Dovecot answers -ERR).
  if (m.gone) return s.reply(`-ERR Message ${n} was removed by another session`);
  let head: LeasedBytes | null;
  const stored = drop.storedSize(m);
  try {
    // RETRs pipelined behind this one are read ahead (session.ts); a failed read-ahead is read again here.
    // The body's location came with the login snapshot: no store lookup per message.
    const ahead = bodyLines === undefined ? s.takePrefetched(n) : undefined;
    head = (ahead && (await s.timedRead(ahead).catch(() => undefined))) ?? null;
    if (!head && (stored <= POP3_WHOLE_READ_MAX || drop.ranged)) {
      head = await s.timedRead(drop.read(m, 0, Math.min(stored, stored <= POP3_WHOLE_READ_MAX ? stored : POP3_STREAM_CHUNK)));
      if (!head) return s.reply(`-ERR Message ${n} was removed by another session`);
    }
  } catch (err) {
    s.opts.log.warn('POP3 message could not be read', { id: s.id, uid: m.uid, error: String(err) });
    return s.reply('-ERR [SYS/TEMP] Message is not available, try again later');
  }
  let ok: boolean;
  try {
    ok = await s.sendMessage(bodyLines === undefined ? `+OK ${m.size} octets` : '+OK', m, head, bodyLines);
  } catch (err) {
    // The status line may be out already: the only clean answer left is closing the connection.
    s.opts.log.warn('POP3 message read failed while sending', { id: s.id, uid: m.uid, error: String(err) });
    return s.close();
  }
  if (!ok) return;
  if (bodyLines !== undefined) return s.count('top');
  s.count('retr', m.size);
  m.retrieved = true;
  if (s.opts.markSeen === 'retr' && !m.seen) {
    m.seen = true;
    await s.store.storeFlags(drop.mailboxId, [m.uid], 'add', ['\\Seen']).catch((err: unknown) => {
      s.opts.log.warn('POP3 could not set \\Seen', { id: s.id, uid: m.uid, error: String(err) });
    });
  }
}

export const COMMANDS: ReadonlyMap<string, Pop3Command> = new Map(commands.map((c) => [c.name, c]));
