// Quire's POP3 answers compared line by line with Dovecot's POP3 (the shared
// reference peer, users testuser70-79) on the same messages with the same
// UIDs and UIDVALIDITY: listings, UIDLs, RETR and TOP bodies byte for byte,
// DELE/RSET bookkeeping, and the status (+OK/-ERR) of error cases. Texts of
// -ERR lines and of status lines that carry no data are server prose and are
// compared by status only.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DOVECOT_PEER } from '../helpers/peer.js';
import { provisionUser } from '../../src/cli/users.js';
import { makeMessage } from '../interop/corpus.js';
import { Pop3Client, startPop3TestServer, type Pop3TestServer } from './helpers.js';

const PEER_POP3 = 10110;
const PEER_IMAP = 10143;
const USER = 'testuser72';
const COUNT = 12;

function reachable(port: number): Promise<boolean> {
  return new Promise((r) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => { s.destroy(); r(true); });
    s.once('error', () => r(false));
  });
}

function run(cmd: string, args: string[]): Promise<number | null> {
  return new Promise((resolve) => {
    const c = spawn(cmd, args, { stdio: 'ignore' });
    c.on('close', resolve);
    c.on('error', () => resolve(-1));
  });
}

/** The messages: corpus messages (some without a final line end) and one needing byte-stuffing everywhere. */
function messages(): Buffer[] {
  const out = Array.from({ length: COUNT - 1 }, (_, i) => makeMessage(i, 'dove').raw);
  out.push(Buffer.from('From: dots@example.com\r\nSubject: dots\r\n\r\n.\r\n..\r\n.x\r\n\r\nend\r\n'));
  return out;
}

let srv: Pop3TestServer | undefined;
let skip: string | false = false;

before(async () => {
  if (!DOVECOT_PEER) skip = 'no dovecot-peer (set DOVECOT_PEER_BIN)';
  else if (!(await reachable(PEER_POP3))) skip = 'Dovecot peer POP3 not running on 10110';
  if (skip) return;
  // Empty the peer's maildrop, then deliver the messages.
  const d = await Pop3Client.connect(PEER_POP3);
  await d.line();
  assert.match(await d.login(USER, 'pass'), /^\+OK/);
  const n = Number((await d.cmd('STAT')).split(' ')[1]);
  for (let i = 1; i <= n; i++) await d.cmd(`DELE ${i}`);
  await d.cmd('QUIT');
  const dir = mkdtempSync(path.join(tmpdir(), 'quire-pop3-dove-'));
  try {
    for (const [i, m] of messages().entries()) {
      const f = path.join(dir, `${i}.eml`);
      writeFileSync(f, m);
      assert.equal(await run(DOVECOT_PEER, ['deliver', USER, f]), 0, 'dovecot-peer deliver');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // The same messages in Quire under Dovecot's UIDs and UIDVALIDITY (from its UIDLs, %08Xu%08Xv).
  const p = await Pop3Client.connect(PEER_POP3);
  await p.line();
  await p.login(USER, 'pass');
  const uidls = (await p.cmdMulti('UIDL')).lines.map((l) => l.split(' ')[1]!);
  await p.cmd('QUIT');
  assert.equal(uidls.length, COUNT);
  srv = await startPop3TestServer();
  const u = await provisionUser(srv.store, USER, 'pass');
  const inbox = (await srv.store.getMailbox(u.id, 'INBOX'))!;
  const uidValidity = parseInt(uidls[0]!.slice(8), 16);
  await srv.store.importMessages(inbox.id, messages().map((data, i) => ({ data, flags: [], uid: parseInt(uidls[i]!.slice(0, 8), 16) })), { uidValidity });
});
after(async () => {
  await srv?.stop();
});

/** A command and how its answer is compared. */
type Step = { cmd: string; multi?: boolean; exact?: boolean };

const SCRIPT: Step[] = [
  { cmd: 'STAT', exact: true },
  { cmd: 'LIST', multi: true },
  { cmd: 'LIST 3', exact: true },
  { cmd: 'UIDL', multi: true },
  { cmd: 'UIDL 5', exact: true },
  ...Array.from({ length: COUNT }, (_, i) => ({ cmd: `RETR ${i + 1}`, multi: true, exact: true })),
  ...Array.from({ length: COUNT }, (_, i) => ({ cmd: `TOP ${i + 1} 0`, multi: true })),
  ...Array.from({ length: COUNT }, (_, i) => ({ cmd: `TOP ${i + 1} 3`, multi: true })),
  { cmd: `TOP ${COUNT} 1`, multi: true },
  { cmd: 'DELE 2' },
  { cmd: 'DELE 2' },
  { cmd: 'RETR 2' },
  { cmd: 'LIST 2' },
  { cmd: 'STAT', exact: true },
  { cmd: 'LIST', multi: true },
  { cmd: 'UIDL', multi: true },
  { cmd: 'RSET' },
  { cmd: 'STAT', exact: true },
  { cmd: 'NOOP' },
  { cmd: 'RETR 0' },
  { cmd: `RETR ${COUNT + 1}` },
  { cmd: 'RETR abc' },
  { cmd: 'LIST 99999999999999999999' },
  { cmd: 'TOP 1' },
  { cmd: 'TOP 1 x' },
  { cmd: 'RETR' },
  { cmd: 'USER x' },
  { cmd: 'FOOBAR' },
];

async function transcript(port: number): Promise<string[]> {
  const c = await Pop3Client.connect(port);
  const out: string[] = [];
  out.push(`greeting ${(await c.line()).slice(0, 3)}`);
  out.push(`login ${(await c.login(USER, 'pass')).slice(0, 3)}`);
  for (const s of SCRIPT) {
    const status = await c.cmd(s.cmd);
    const ok = status.startsWith('+OK');
    // Single lines carrying data (STAT, LIST n, UIDL n, "+OK n octets") exactly; prose by status.
    out.push(`${s.cmd} => ${s.exact && ok ? status : status.split(' ')[0]}`);
    if (s.multi && ok) out.push(...(await c.multilineRaw()).toString('latin1').split('\r\n').map((l) => `  ${l}`));
  }
  out.push(`QUIT ${(await c.cmd('QUIT')).slice(0, 3)}`);
  c.close();
  return out;
}

test('the same commands on the same messages: Quire answers as Dovecot does, line by line', async (t) => {
  if (skip || !srv) return t.skip(skip || 'not started');
  const dovecot = await transcript(PEER_POP3);
  const quire = await transcript(srv.pop3Port);
  assert.ok(dovecot.length > 200, 'a real transcript');
  for (let i = 0; i < Math.max(dovecot.length, quire.length); i++) assert.equal(quire[i], dovecot[i], `line ${i}: ${dovecot.slice(Math.max(0, i - 3), i + 1).join(' | ')}`);
});
