// contrib/systemd/quire.service as far as this machine allows: systemd's
// own parser accepts every line (no "ignoring" warnings), its offline
// security analysis rates it OK, and the one capability it grants
// (CAP_NET_BIND_SERVICE, ambient) is enough for an unprivileged user to run
// `quire serve` on a port below 1024; without it the bind fails with a
// message naming the address and the reason.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { have, ROOT, SERVE_START_MS, until } from './helpers.js';
import { runProcess } from '../helpers/process.js';
import { spawn } from 'node:child_process';

const UNIT = join(ROOT, 'contrib/systemd/quire.service');
const NOBODY = 65534;
/** A privileged port for the capability test (ops' own choice; 143/993 may be taken on a shared machine). */
const LOW_PORT = 1019;
const isRoot = process.getuid?.() === 0;

function unitForThisMachine(): string {
  const dir = mkdtempSync(join(tmpdir(), 'quire-unit-'));
  const f = join(dir, 'quire.service');
  // ExecStart must name an existing executable for verify: node stands in for the installed quire.
  writeFileSync(f, readFileSync(UNIT, 'utf8').replace(/^ExecStart=\S+/m, `ExecStart=${process.execPath}`));
  return f;
}

test('systemd accepts the unit and rates its hardening OK', { skip: !have('systemd-analyze') && 'systemd-analyze not installed' }, () => {
  const unit = readFileSync(UNIT, 'utf8');
  for (const line of ['ProtectSystem=strict', 'NoNewPrivileges=true', 'User=quire', 'LimitNOFILE=65536', 'AmbientCapabilities=CAP_NET_BIND_SERVICE', 'ExecReload=/bin/kill -HUP $MAINPID']) {
    assert.ok(unit.includes(`\n${line}\n`), line);
  }
  const f = unitForThisMachine();
  const v = spawnSync('systemd-analyze', ['verify', f], { encoding: 'utf8' });
  assert.equal(v.status, 0, v.stderr);
  assert.equal(v.stderr.trim(), '', 'no line of the unit is ignored or invalid');
  const s = spawnSync('systemd-analyze', ['security', '--offline=true', f], { encoding: 'utf8' });
  const m = /Overall exposure level for \S+: ([\d.]+) (\w+)/.exec(s.stdout + s.stderr);
  assert.ok(m, s.stdout + s.stderr);
  assert.ok(Number(m[1]) < 4, `exposure ${m[1]} ${m[2]}`);
});

function greeting(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('data', (d) => {
      resolve(d.toString());
      s.destroy();
    });
    s.once('error', reject);
  });
}

test('an unprivileged user binds a port below 1024 with CAP_NET_BIND_SERVICE only', { skip: (!isRoot || !have('setpriv')) && 'needs root and setpriv to drop to an unprivileged user', timeout: 60_000 + SERVE_START_MS }, async () => {
  const data = mkdtempSync(join(tmpdir(), 'quire-cap-'));
  chownSync(data, NOBODY, NOBODY);
  const args = ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'serve', '--data', data, '--pop3-port', 'off', '--pop3s-port', 'off', '--imap-port', String(LOW_PORT), '--imaps-port', 'off', '--lmtp-port', 'off', '--admin-port', 'off'];
  const env: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: data };
  const drop = ['--reuid', String(NOBODY), '--regid', String(NOBODY), '--clear-groups'];

  // Without the capability: refused, with the address and the reason.
  const denied = await runProcess('setpriv', [...drop, process.execPath, ...args], { cwd: ROOT, env });
  assert.notEqual(denied.code, 0);
  assert.match(denied.stderr, new RegExp(`quire: cannot listen on 127\\.0\\.0\\.1:${LOW_PORT}: permission denied \\(EACCES\\): ports below 1024 need root or the CAP_NET_BIND_SERVICE capability`));
  // Nothing was created for a start that failed: no first user to lose.
  assert.ok(!existsSync(join(data, 'first-user-password.txt')));

  // With it (as the unit grants it): serving.
  const child = spawn('setpriv', [...drop, '--inh-caps', '+net_bind_service', '--ambient-caps', '+net_bind_service', process.execPath, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('close', r));
  try {
    // How long the start takes is not checked: tsx compiles the sources first, slowly on a loaded machine.
    await until(() => /Quire is running/.test(out) || child.exitCode !== null, 'serve to start', SERVE_START_MS);
    assert.match(out, new RegExp(`IMAP \\(STARTTLS\\): +127\\.0\\.0\\.1:${LOW_PORT}`), out + err);
    assert.match(await greeting(LOW_PORT), /^\* OK/);
    assert.match(out, /First start: created user "[^"]+" with password:/, 'the failed start before created no user');
  } finally {
    child.kill('SIGTERM');
  }
  assert.equal(await exited, 0, err);
});
