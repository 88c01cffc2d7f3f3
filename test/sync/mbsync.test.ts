// mbsync (Debian package isync): two-way sync between Quire and a local
// Maildir, several rounds, while another IMAP session changes flags, expunges
// and appends on the server between runs and the local side changes flags,
// deletes and adds files. After each round both sides must hold exactly the
// expected messages (by Message-ID, none lost, none duplicated) with the
// expected flags, and a session that kept the mailbox selected throughout
// must have been told every change (its view equals the server's).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient, message } from '../helpers/imap.js';
import { flagsToInfo, imapState, maildirMessages, maildirState, Observer, requireTool, run, sorted, type State } from './common.js';

let srv: TestServer;
let scratch: string;
before(async () => {
  srv = await startTestServer();
  scratch = mkdtempSync(join(tmpdir(), 'quire-mbsync-'));
});
after(async () => {
  await srv.stop();
  rmSync(scratch, { recursive: true, force: true });
});

const LOGIN: [string, string] = ['alice', 'secret-a'];
const BOX = 'Synced';
const id = (n: number) => `<m${n}@example.com>`;

test('mbsync: three two-way rounds with concurrent server and local changes converge, nothing lost or duplicated', { timeout: 60_000 }, async (t) => {
  if (!requireTool(t, 'mbsync', 'isync')) return;
  const mail = join(scratch, 'mail');
  mkdirSync(mail, { recursive: true });
  const cfg = join(scratch, 'mbsyncrc');
  writeFileSync(
    cfg,
    [
      'IMAPAccount quire',
      'Host 127.0.0.1',
      `Port ${srv.port}`,
      `User ${LOGIN[0]}`,
      `Pass ${LOGIN[1]}`,
      // Plain IMAP on loopback (the test server allows LOGIN there); the TLS
      // paths of mbsync are covered by test/interop.
      'SSLType None',
      'AuthMechs LOGIN',
      '',
      'IMAPStore remote',
      'Account quire',
      '',
      'MaildirStore local',
      `Path ${mail}/`,
      `Inbox ${mail}/INBOX`,
      '',
      'Channel c',
      `Far :remote:${BOX}`,
      `Near :local:${BOX}`,
      'Create Near',
      'Expunge Both',
      'Sync All',
      'SyncState *',
      '',
    ].join('\n'),
  );
  const folder = join(mail, BOX);
  const sync = async (round: string) => {
    const r = await run('mbsync', ['-c', cfg, 'c'], { timeoutMs: 30_000, env: { ...process.env, HOME: scratch } });
    assert.equal(r.code, 0, `mbsync (${round}) failed:\n${r.out}`);
  };

  // The server side as the other client sees it.
  const other = await RawClient.connect(srv.port, { login: LOGIN });
  const ok = async (cmd: string) => {
    const r = await other.command(cmd);
    assert.match(r.tagged, /^\S+ OK/, `${cmd}: ${r.raw}`);
  };
  await ok(`CREATE ${BOX}`);
  const expected: State = new Map();
  const seedFlags: Record<number, string> = { 1: '', 2: '\\Seen', 3: '', 4: '\\Flagged', 5: '\\Seen \\Answered', 6: '' };
  for (let n = 1; n <= 6; n++) {
    const r = await other.append(BOX, message(n), seedFlags[n] ? `(${seedFlags[n]})` : '');
    assert.match(r.tagged, /OK/);
    expected.set(id(n), seedFlags[n].split(' ').filter(Boolean).sort());
  }
  await ok(`SELECT ${BOX}`);
  const watcher = await Observer.open(srv.port, LOGIN, BOX);

  const converged = async (round: string) => {
    const server = await imapState(srv.port, LOGIN, BOX);
    const local = maildirState(folder);
    assert.deepEqual(sorted(server), sorted(expected), `${round}: server holds exactly the expected messages and flags`);
    assert.deepEqual(sorted(local), sorted(expected), `${round}: the Maildir holds exactly the expected messages and flags`);
    assert.deepEqual(sorted(await watcher.catchUp()), sorted(expected), `${round}: the watching session was told every change`);
  };
  /** Change a local message's flags the way a Maildir MUA does: rename into cur/ with new info. */
  const setLocalFlags = (messageId: string, flags: string[]) => {
    const m = maildirMessages(folder).find((x) => x.messageId === messageId);
    assert.ok(m, `${messageId} is in the Maildir`);
    const base = m.file.slice(4).replace(/:2,[A-Za-z]*$/, '');
    renameSync(join(folder, m.file), join(folder, 'cur', `${base}:2,${flagsToInfo(flags)}`));
  };
  const deleteLocal = (messageId: string) => {
    const m = maildirMessages(folder).find((x) => x.messageId === messageId);
    assert.ok(m, `${messageId} is in the Maildir`);
    unlinkSync(join(folder, m.file));
  };
  const addLocal = (n: number) => {
    writeFileSync(join(folder, 'new', `${Date.now()}.q${n}.localhost`), message(n).replace(/\r\n/g, '\n'));
  };

  // Round 0: the initial download.
  await sync('initial');
  await converged('initial');

  // Round 1: the server side changes flags, expunges and appends; the local
  // side marks one message read, deletes one and adds one.
  await ok('UID STORE 1 +FLAGS (\\Flagged)');
  await ok('UID STORE 2 -FLAGS (\\Seen)');
  await ok('UID STORE 3 +FLAGS.SILENT (\\Deleted)');
  await ok('UID EXPUNGE 3');
  assert.match((await other.append(BOX, message(7))).tagged, /OK/);
  expected.set(id(1), ['\\Flagged']);
  expected.set(id(2), []);
  expected.delete(id(3));
  expected.set(id(7), []);
  setLocalFlags(id(6), ['\\Seen']);
  expected.set(id(6), ['\\Seen']);
  deleteLocal(id(4));
  expected.delete(id(4));
  addLocal(8);
  expected.set(id(8), []);
  await sync('round 1');
  await converged('round 1');

  // Round 2: the server expunges a message that was changed locally before the
  // sync only in flags of another; the local side flags the server's new
  // message and deletes an old one; the server adds two more.
  await ok('UID STORE 5 +FLAGS.SILENT (\\Deleted)');
  await ok('EXPUNGE');
  expected.delete(id(5));
  assert.match((await other.append(BOX, message(9), '(\\Seen)')).tagged, /OK/);
  assert.match((await other.append(BOX, message(10))).tagged, /OK/);
  expected.set(id(9), ['\\Seen']);
  expected.set(id(10), []);
  setLocalFlags(id(7), ['\\Flagged', '\\Answered']);
  expected.set(id(7), ['\\Answered', '\\Flagged']);
  deleteLocal(id(1));
  expected.delete(id(1));
  await sync('round 2');
  await converged('round 2');

  // Round 3: both sides change different messages; the server's session
  // flags and unflags (net change only); the local side deletes the message it
  // uploaded and adds another; a no-op sync afterwards changes nothing.
  await ok('NOOP'); // learn of mbsync's uploads first: 1:* means the messages this session knows
  await ok('STORE 1:* -FLAGS.SILENT (\\Seen)');
  for (const [k, v] of expected) expected.set(k, v.filter((f) => f !== '\\Seen'));
  await ok(`UID STORE 2 +FLAGS (\\Draft)`);
  expected.set(id(2), ['\\Draft']);
  deleteLocal(id(8));
  expected.delete(id(8));
  addLocal(11);
  expected.set(id(11), []);
  await sync('round 3');
  await converged('round 3');
  await sync('no-op');
  await converged('no-op');

  await watcher.close();
  await other.close();
});
