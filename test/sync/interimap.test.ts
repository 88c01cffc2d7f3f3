// interimap (Debian package interimap): QRESYNC-based two-way sync between two
// IMAP accounts, here Quire's alice ("local") and Quire's bob ("remote") on
// one server. interimap depends on exactly the multi-client machinery under
// test: SELECT (QRESYNC ...) with VANISHED (EARLIER) and changed FLAGS,
// HIGHESTMODSEQ, UID STORE/EXPUNGE, UIDPLUS, LIST-STATUS. Between runs other
// sessions change flags, expunge and append on both sides; after each round
// both accounts must hold exactly the expected messages (by Message-ID, none
// lost or duplicated) and flags, a session watching each side must have been
// told every change, and `interimap --repair` must find nothing to repair.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient, message } from '../helpers/imap.js';
import { imapState, Observer, requireTool, run, sorted, type State } from './common.js';

let srv: TestServer;
let scratch: string;
before(async () => {
  srv = await startTestServer();
  scratch = mkdtempSync(join(tmpdir(), 'quire-interimap-'));
});
after(async () => {
  await srv.stop();
  rmSync(scratch, { recursive: true, force: true });
});

const ALICE: [string, string] = ['alice', 'secret-a'];
const BOB: [string, string] = ['bob', 'secret-b'];
const BOX = 'Synced';
const id = (n: number) => `<m${n}@example.com>`;

async function session(login: [string, string]) {
  const c = await RawClient.connect(srv.port, { login });
  const ok = async (cmd: string) => {
    const r = await c.command(cmd);
    assert.match(r.tagged, /^\S+ OK/, `${login[0]}: ${cmd}: ${r.raw}`);
    return r;
  };
  const append = async (n: number, flags = '') => {
    const r = await c.append(BOX, message(n), flags ? `(${flags})` : '');
    assert.match(r.tagged, /OK/, r.raw);
  };
  return { c, ok, append };
}

test('interimap: Quire alice <-> Quire bob, three rounds with changes on both sides, converge; --repair finds nothing', { timeout: 60_000 }, async (t) => {
  if (!requireTool(t, 'interimap', 'interimap')) return;
  const cfg = join(scratch, 'config');
  const account = (login: [string, string]) => ['type = imap', 'host = 127.0.0.1', `port = ${srv.port}`, 'STARTTLS = NO', `username = ${login[0]}`, `password = ${login[1]}`, 'compress = NO'];
  writeFileSync(cfg, [`database = ${join(scratch, 'interimap.db')}`, `list-mailbox = ${BOX}`, '', '[local]', ...account(ALICE), '', '[remote]', ...account(BOB), ''].join('\n'));
  // interimap needs an absolute --config path; its other state goes under HOME.
  const env = { ...process.env, HOME: scratch, XDG_DATA_HOME: join(scratch, 'data'), XDG_CONFIG_HOME: join(scratch, 'config.d') };
  const sync = async (round: string, extra: string[] = []) => {
    const r = await run('interimap', [`--config=${cfg}`, ...extra], { timeoutMs: 30_000, env });
    assert.equal(r.code, 0, `interimap (${round}) failed:\n${r.out}`);
    if (process.env.QUIRE_SYNC_TRACE) console.log(`--- interimap ${round}\n${r.out}`);
    return r.out;
  };

  const a = await session(ALICE);
  const b = await session(BOB);
  await a.ok(`CREATE ${BOX}`);
  const expected: State = new Map();
  const seed: Record<number, string> = { 1: '', 2: '\\Seen', 3: '', 4: '\\Flagged', 5: '\\Seen \\Answered', 6: '' };
  for (let n = 1; n <= 6; n++) {
    await a.append(n, seed[n]);
    expected.set(id(n), seed[n].split(' ').filter(Boolean).sort());
  }

  // Round 0: bob's mailbox is created and filled.
  await sync('initial');
  const converged = async (round: string, watchers: Observer[]) => {
    assert.deepEqual(sorted(await imapState(srv.port, ALICE, BOX)), sorted(expected), `${round}: alice holds exactly the expected messages`);
    assert.deepEqual(sorted(await imapState(srv.port, BOB, BOX)), sorted(expected), `${round}: bob holds exactly the expected messages`);
    for (const w of watchers) assert.deepEqual(sorted(await w.catchUp()), sorted(expected), `${round}: a watching session was told every change`);
  };
  await converged('initial', []);
  await a.ok(`SELECT ${BOX}`);
  await b.ok(`SELECT ${BOX}`);
  const watchers = [await Observer.open(srv.port, ALICE, BOX), await Observer.open(srv.port, BOB, BOX)];

  // Round 1: alice flags, unflags and expunges; bob unflags, expunges and
  // appends; alice appends. (Bob's copies were appended by interimap in the
  // initial run: it must have learnt their modseqs then, or it now takes them
  // for changes, "resolves" a conflict on UID 2 by union and brings \\Seen back.)
  await a.ok('UID STORE 1 +FLAGS (\\Flagged)');
  await a.ok('UID STORE 2 -FLAGS (\\Seen)');
  await a.ok('UID STORE 3 +FLAGS.SILENT (\\Deleted)');
  await a.ok('UID EXPUNGE 3');
  await b.ok('UID STORE 5 -FLAGS (\\Answered)');
  await b.ok('UID STORE 4 +FLAGS.SILENT (\\Deleted)');
  await b.ok('UID EXPUNGE 4');
  await b.append(7);
  await a.append(8, '\\Draft');
  expected.set(id(1), ['\\Flagged']);
  expected.delete(id(3));
  expected.set(id(2), []);
  expected.set(id(5), ['\\Seen']);
  expected.delete(id(4));
  expected.set(id(7), []);
  expected.set(id(8), ['\\Draft']);
  await sync('round 1');
  await converged('round 1', watchers);

  // Round 2: alice expunges two (one of them just synced from bob); bob
  // answers the message alice added; both append.
  await a.ok('NOOP');
  const msgs = await a.ok('UID SEARCH ALL');
  assert.match(msgs.untagged.join('\n'), /SEARCH/);
  const uidOf = async (s: typeof a, n: number) => {
    const r = await s.ok(`UID SEARCH HEADER Message-ID ${JSON.stringify(id(n))}`);
    const m = /^\* SEARCH (\d+)$/.exec(r.untagged.find((l) => l.startsWith('* SEARCH')) ?? '');
    assert.ok(m, `${id(n)} found once: ${r.raw}`);
    return Number(m[1]);
  };
  await a.ok(`UID STORE ${await uidOf(a, 5)},${await uidOf(a, 7)} +FLAGS.SILENT (\\Deleted)`);
  await a.ok('EXPUNGE');
  expected.delete(id(5));
  expected.delete(id(7));
  await b.ok('NOOP');
  await b.ok(`UID STORE ${await uidOf(b, 8)} +FLAGS (\\Answered)`);
  expected.set(id(8), ['\\Answered', '\\Draft']);
  await a.append(9, '\\Seen');
  await b.append(10, '\\Flagged');
  expected.set(id(9), ['\\Seen']);
  expected.set(id(10), ['\\Flagged']);
  await sync('round 2');
  await converged('round 2', watchers);

  // Round 3: a conflict (both sides change the same message's flags: the
  // union wins, per interimap's documentation), bob expunges what alice
  // flagged in round 1, and a no-op run afterwards.
  await a.ok('NOOP');
  await b.ok('NOOP');
  await a.ok(`UID STORE ${await uidOf(a, 2)} +FLAGS (\\Flagged)`);
  await b.ok(`UID STORE ${await uidOf(b, 2)} +FLAGS (\\Seen)`);
  expected.set(id(2), ['\\Flagged', '\\Seen']);
  await b.ok(`UID STORE ${await uidOf(b, 1)} +FLAGS.SILENT (\\Deleted)`);
  await b.ok('EXPUNGE');
  expected.delete(id(1));
  await sync('round 3');
  await converged('round 3', watchers);
  await sync('no-op');
  await converged('no-op', watchers);

  // A full comparison of both sides through interimap's own eyes.
  const repair = await sync('repair', ['--repair']);
  assert.doesNotMatch(repair, /WARNING|missing|duplicate/i, `--repair found anomalies:\n${repair}`);
  await converged('after --repair', watchers);

  for (const w of watchers) await w.close();
  await a.c.close();
  await b.c.close();
});
