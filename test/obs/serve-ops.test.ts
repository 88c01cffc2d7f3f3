// A real `quire serve`, operated as an admin would: its log file (text and
// JSON) has one line per connection, authentication and delivery, never a
// password or message content; the shipped fail2ban filter matches the
// failed logins in it (Debian's fail2ban-regex) and nothing else; the admin
// listener's /metrics, /healthz and /readyz answer over HTTP; SIGHUP reloads
// without dropping an IDLE session; a second server on the same data
// directory is refused, a stale lock taken over.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { RawClient } from '../helpers/imap.js';
import { runProcess } from '../helpers/process.js';
import { cleanEnv, have, httpGet, ROOT, sample, startServe, until } from './helpers.js';

const FILTER = join(ROOT, 'contrib/fail2ban/filter.d/quire.conf');
const haveF2b = have('fail2ban-regex');
if (!haveF2b && process.env.CI) throw new Error('fail2ban-regex missing (apt-get install fail2ban)');

const WRONG = 'Wrong-Pass-9d41e7';
const BODY_MARK = 'Body-Secret-c0ffee-5150';

function fail2banRegex(logFile: string): { matched: number; addresses: string[] } {
  // -v lists the address fail2ban extracted from each match.
  const r = spawnSync('fail2ban-regex', ['-v', logFile, FILTER], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const m = /Failregex: (\d+) total/.exec(r.stdout);
  assert.ok(m, r.stdout);
  const addresses = [...r.stdout.matchAll(/^\|\s+([0-9a-f.:]+)\s+[A-Z][a-z]{2} [A-Z][a-z]{2} /gm)].map((x) => x[1]!);
  assert.equal(addresses.length, Number(m[1]), r.stdout);
  return { matched: Number(m[1]), addresses };
}

async function lmtpDeliver(port: number, rcpt: string, body: string): Promise<string> {
  const s = net.connect(port, '127.0.0.1');
  let got = '';
  s.on('data', (d: Buffer) => (got += d.toString()));
  const wait = (re: RegExp) => until(() => re.test(got), `LMTP ${re}`);
  await wait(/^220 /m);
  s.write(`LHLO test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<${rcpt}>\r\nDATA\r\n`);
  await wait(/^354 /m);
  s.write(`Subject: lmtp\r\n\r\n${body}\r\n.\r\nQUIT\r\n`);
  await wait(/^221 /m);
  s.destroy();
  return got;
}

async function failLogins(port: number, user: string): Promise<void> {
  for (let i = 0; i < 2; i++) {
    const c = await RawClient.connect(port);
    const r = await c.command(`LOGIN ${user} ${WRONG}`);
    assert.match(r.tagged, /NO \[AUTHENTICATIONFAILED\]/);
    await c.close();
  }
  const c = await RawClient.connect(port);
  const plain = Buffer.from(`\0${user}\0${WRONG}`).toString('base64');
  assert.match((await c.command(`AUTHENTICATE PLAIN ${plain}`)).tagged, /NO \[AUTHENTICATIONFAILED\]/);
  // A crafted user name that tries to forge another address into the line.
  assert.match((await c.command(`LOGIN "x remote=10.9.9.9 reason=invalid-credentials user=" ${WRONG}`)).tagged, /NO \[AUTHENTICATIONFAILED\]/);
  await c.close();
}

test('text log: connection, auth, delivery and close lines; no secrets; fail2ban; metrics; SIGHUP keeps IDLE', { timeout: 120_000 }, async () => {
  const data = mkdtempSync(join(tmpdir(), 'quire-ops-'));
  const logFile = join(data, '..', `${data.split('/').pop()}.log`);
  const srv = await startServe(data, logFile, ['--log-level', 'info']);
  try {
    assert.ok(srv.user && srv.password && srv.adminPort, srv.banner);
    // The first user's password waits in a 0600 file until the first login.
    const pwFile = join(data, 'first-user-password.txt');
    assert.equal(statSync(pwFile).mode & 0o777, 0o600);
    assert.ok(readFileSync(pwFile, 'utf8').includes(srv.password!));
    assert.match(srv.banner, /Change it with: npx tsx \S*main\.ts user passwd \S+ --data /);

    assert.equal((await httpGet(srv.adminPort!, '/healthz')).status, 200);
    assert.equal((await httpGet(srv.adminPort!, '/readyz')).status, 200);
    assert.equal((await httpGet(srv.adminPort!, '/nope')).status, 404);

    await failLogins(srv.imapPort, srv.user!);

    const a = await RawClient.connect(srv.imapPort, { login: [srv.user!, srv.password!] });
    await until(() => !existsSync(pwFile), 'the first-password file removed at first login');
    const idler = await RawClient.connect(srv.imapsPort, { tls: true, login: [srv.user!, srv.password!] });
    await idler.command('SELECT INBOX');
    idler.write('i1 IDLE\r\n');
    assert.match(await idler.readLine(), /^\+ /);

    srv.child.kill('SIGHUP');
    await until(() => /INFO reloaded/.test(srv.log()), '"reloaded" in the log');
    // Still connected and still told about new mail after the reload.
    const msg = `Subject: hello\r\n\r\n${BODY_MARK}\r\n`;
    assert.match((await a.append('INBOX', msg)).tagged, /OK/);
    await idler.readUntil((l) => /^\* \d+ EXISTS/.test(l));
    idler.write('DONE\r\n');
    assert.match((await idler.collect('i1')).tagged, /^i1 OK/);

    assert.match(await lmtpDeliver(srv.lmtpPort, srv.user!, BODY_MARK), /250 2\.0\.0/);

    const m = await httpGet(srv.adminPort!, '/metrics');
    assert.equal(m.status, 200);
    assert.match(m.type, /text\/plain/);
    const body = m.body;
    assert.equal(sample(body, 'quire_logins_total', { result: 'failure', mechanism: 'LOGIN' }), 3);
    assert.equal(sample(body, 'quire_logins_total', { result: 'failure', mechanism: 'PLAIN' }), 1);
    assert.equal(sample(body, 'quire_logins_total', { result: 'success' }), 2);
    assert.equal(sample(body, 'quire_command_duration_seconds_count', { command: 'APPEND', status: 'OK' }), 1);
    assert.ok((sample(body, 'quire_command_duration_seconds_bucket', { command: 'APPEND', le: '+Inf' }) ?? 0) >= 1);
    assert.equal(sample(body, 'quire_connections', { protocol: 'imap', state: 'auth' }), 1);
    assert.equal(sample(body, 'quire_connections', { protocol: 'imap', state: 'selected' }), 1);
    assert.ok((sample(body, 'quire_store_write_duration_seconds_count', { op: 'appendMessages', result: 'ok' }) ?? 0) >= 2);
    assert.equal(sample(body, 'quire_lmtp_deliveries_total', { result: 'delivered' }), 1);
    assert.equal(sample(body, 'quire_reloads_total', { result: 'ok' }), 1);
    assert.ok((sample(body, 'quire_index_backlog') ?? -1) >= 0, 'index backlog exported');
    assert.ok(sample(body, 'nodejs_eventloop_lag_p99_seconds') !== null, 'event-loop delay exported');
    assert.match(body, /worker="0"/);

    await a.command('LOGOUT');
    await idler.command('LOGOUT');
    await until(() => (srv.log().match(/INFO connection closed/g) ?? []).length >= 6, 'close lines');
  } finally {
    srv.child.kill('SIGTERM');
  }
  assert.equal(await srv.exited, 0, srv.log());

  const log = srv.log();
  for (const secret of [srv.password!, WRONG, BODY_MARK, Buffer.from(`\0${srv.user}\0${WRONG}`).toString('base64')]) {
    assert.ok(!log.includes(secret), `the log contains a secret or message content: ${secret}`);
  }
  const lines = log.trim().split('\n');
  const opened = lines.filter((l) => / INFO connection opened session=\S+ protocol=imap remote=127\.0\.0\.1 remotePort=\d+ local=127\.0\.0\.1 localPort=\d+ tls=(none|implicit)$/.test(l));
  assert.ok(opened.length >= 5, log);
  const closed = lines.filter((l) => l.includes(' INFO connection closed ') && l.includes('protocol=imap'));
  assert.ok(closed.length >= 5, log);
  const tlsClosed = closed.find((l) => /tlsVersion=TLSv1\.[23] cipher=\S+/.test(l));
  assert.ok(tlsClosed, 'the implicit-TLS session logs its TLS version and cipher');
  assert.match(tlsClosed, /user=\S+ durationMs=\d+ bytesIn=[1-9]\d* bytesOut=[1-9]\d* commands=4 .* reason=logout$/);
  // One session's lines can be followed by its id.
  const sid = /session=(\S+)/.exec(tlsClosed)![1]!;
  assert.ok(lines.filter((l) => l.includes(`session=${sid} `)).length >= 3);
  assert.equal(lines.filter((l) => / WARN auth failed /.test(l)).length, 4);
  assert.equal(lines.filter((l) => / INFO auth succeeded .*mechanism=LOGIN/.test(l)).length, 2);
  assert.ok(lines.some((l) => / INFO delivered session=\S+ user=\S+ mailbox=INBOX uid=\d+ size=\d+$/.test(l)), log);
  assert.ok(lines.some((l) => / INFO connection opened session=\S+ protocol=lmtp /.test(l)));
  assert.ok(lines.some((l) => / INFO reloading session=| INFO reloading trigger=SIGHUP/.test(l)), 'SIGHUP logged');

  if (haveF2b) {
    const all = fail2banRegex(logFile);
    assert.equal(all.matched, 4, 'every failed login matches');
    assert.deepEqual([...new Set(all.addresses)], ['127.0.0.1'], 'the crafted user name did not inject an address');
    const okFile = `${logFile}.ok`;
    writeFileSync(okFile, lines.filter((l) => !l.includes('auth failed')).join('\n') + '\n');
    assert.equal(fail2banRegex(okFile).matched, 0, 'no match on successful logins or other lines');
  }
});

test('json log: one JSON object per line; fail2ban matches its failed logins; lock refuses a second server', { timeout: 120_000 }, async () => {
  const data = mkdtempSync(join(tmpdir(), 'quire-ops-json-'));
  const logFile = join(data, '..', `${data.split('/').pop()}.log`);
  const srv = await startServe(data, logFile, ['--log-format', 'json']);
  try {
    await failLogins(srv.imapPort, srv.user!);
    const ok = await RawClient.connect(srv.imapPort, { login: [srv.user!, srv.password!] });
    await ok.command('LOGOUT');

    // A second server on the same data directory is refused with a clear message.
    const second = await runProcess(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'serve', '--data', data, '--pop3-port', 'off', '--pop3s-port', 'off', '--imap-port', '0', '--imaps-port', '0', '--lmtp-port', 'off', '--admin-port', 'off'], { cwd: ROOT, env: cleanEnv() });
    assert.notEqual(second.code, 0);
    assert.match(second.stderr, new RegExp(`another Quire server \\(pid ${srv.child.pid}\\) is using the data directory`));
  } finally {
    srv.child.kill('SIGTERM');
  }
  assert.equal(await srv.exited, 0);
  assert.ok(!existsSync(join(data, 'quire.lock')), 'lock released on exit');

  const lines = srv.log().trim().split('\n');
  const recs = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.ok(recs.every((r) => typeof r.time === 'string' && typeof r.level === 'string' && typeof r.msg === 'string'));
  const failed = recs.filter((r) => r.msg === 'auth failed');
  assert.equal(failed.length, 4);
  assert.deepEqual(Object.keys(failed[0]!).slice(0, 8), ['level', 'time', 'session', 'protocol', 'remote', 'mechanism', 'reason', 'user']);
  assert.ok(!srv.log().includes(srv.password!) && !srv.log().includes(WRONG));
  if (haveF2b) {
    const r = fail2banRegex(logFile);
    assert.equal(r.matched, 4);
    assert.deepEqual([...new Set(r.addresses)], ['127.0.0.1']);
  }

  // A stale lock (its process is gone) is taken over.
  const dead = spawnSync('sh', ['-c', 'echo $$']).stdout.toString().trim();
  writeFileSync(join(data, 'quire.lock'), `${dead}\n`);
  const again = await startServe(data, `${logFile}.2`, ['--admin-port', 'off']);
  assert.equal(Number(readFileSync(join(data, 'quire.lock'), 'utf8').split('\n')[0]), again.child.pid);
  again.child.kill('SIGTERM');
  assert.equal(await again.exited, 0);
});
