// The control socket of a real `quire serve`: `quire who` lists sessions
// with user, address, protocol, state, since and mailbox; `quire stats`
// counts them; `quire kick` ends a user's sessions (the IDLE client gets
// BYE); `quire reload` reloads; `quire user del` of a logged-in user ends
// that user's sessions; the socket is 0600; with no server the commands say so.
import assert from 'node:assert/strict';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { RawClient } from '../helpers/imap.js';
import { runProcess } from '../helpers/process.js';
import { cleanEnv, ROOT, startServe, until } from './helpers.js';

function quire(args: string[], stdin?: string) {
  return runProcess(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args], { cwd: ROOT, env: cleanEnv(), stdin });
}

test('who, stats, kick, reload and user del over the control socket', { timeout: 120_000 }, async () => {
  const data = mkdtempSync(join(tmpdir(), 'quire-ctl-'));
  const srv = await startServe(data, `${data}.log`, ['--admin-port', 'off']);
  try {
    assert.equal(statSync(join(data, 'quire.sock')).mode & 0o777, 0o600);
    assert.equal((await quire(['user', 'add', 'bob', '--data', data, '--password-stdin'], 'bob-secret-1\n')).code, 0);

    const a = await RawClient.connect(srv.imapsPort, { tls: true, login: [srv.user!, srv.password!] });
    await a.command('SELECT INBOX');
    a.write('i1 IDLE\r\n');
    assert.match(await a.readLine(), /^\+ /);
    const b = await RawClient.connect(srv.imapPort, { login: ['bob', 'bob-secret-1'] });
    const anon = await RawClient.connect(srv.imapPort);

    const who = await quire(['who', '--data', data]);
    assert.equal(who.code, 0, who.stderr);
    const lines = who.stdout.trim().split('\n');
    assert.match(lines[0]!, /^USER +REMOTE +PROTO +STATE +SINCE +MAILBOX +SESSION$/);
    assert.ok(lines.some((l) => new RegExp(`^${srv.user} +127\\.0\\.0\\.1 +imap/tls +idle +\\d{4}-\\d\\d-\\d\\dT\\S+ +INBOX +\\S+$`).test(l)), who.stdout);
    assert.ok(lines.some((l) => /^bob +127\.0\.0\.1 +imap +auth +\S+ +- +\S+$/.test(l)), who.stdout);
    assert.ok(lines.some((l) => /^- +127\.0\.0\.1 +imap +notauth /.test(l)), who.stdout);
    const whoJson = JSON.parse((await quire(['who', '--data', data, '--json'])).stdout) as { user: string | null; session: string }[];
    assert.equal(whoJson.length, 3);

    const stats = JSON.parse((await quire(['stats', '--data', data, '--json'])).stdout) as { sessions: number; sessionsByState: Record<string, number>; logins: { success: number }; pid: number };
    assert.equal(stats.sessions, 3);
    assert.deepEqual(stats.sessionsByState, { idle: 1, auth: 1, notauth: 1 });
    assert.equal(stats.logins.success, 2);
    assert.equal(stats.pid, srv.child.pid);
    assert.match((await quire(['stats', '--data', data])).stdout, /^sessions +3 \(/m);

    // kick: the IDLE client is told and disconnected.
    const kick = await quire(['kick', srv.user!, '--data', data]);
    assert.equal(kick.stdout, `kicked 1 session of ${srv.user}\n`);
    assert.match(await a.readLine(), /^\* BYE Disconnected by an administrator/);
    await until(() => a.closed, 'the kicked connection to close');

    const reload = await quire(['reload', '--data', data]);
    assert.equal(reload.code, 0, reload.stderr);
    assert.equal(reload.stdout, 'reloaded\n');
    assert.match(srv.log(), /INFO reloaded trigger="control socket"/);

    // Deleting a logged-in user ends their sessions.
    const del = await quire(['user', 'del', 'bob', '--data', data]);
    assert.equal(del.code, 0, del.stderr);
    assert.equal(del.stdout, 'deleted user bob (ended 1 session)\n');
    await until(() => b.closed, "bob's connection to close");
    assert.match((await anon.command('NOOP')).tagged, /OK/, 'other sessions stay');
    await anon.close();
  } finally {
    srv.child.kill('SIGTERM');
  }
  assert.equal(await srv.exited, 0);
  const none = await quire(['who', '--data', data]);
  assert.notEqual(none.code, 0);
  assert.match(none.stderr, /no running server for /);
});
