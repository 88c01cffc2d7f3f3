// The npm package as `npm install -g quire-mail` installs it: `npm pack`
// builds it (prepare) and ships dist/, contrib/ and docs/ but no sources or
// tests; laid out as a global install (package under lib/node_modules, the
// bin linked into bin/ on PATH), `quire --version` runs and `quire serve`
// starts, its banner naming the `quire` command that is on PATH.
// (The dependencies come from this checkout: the test must not need the
// network; README's quickstart covers installing them from the registry.)
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { cleanEnv, ROOT, until } from './helpers.js';

test('npm pack ships a runnable `quire` command', { timeout: 180_000 }, async () => {
  const out = mkdtempSync(join(tmpdir(), 'quire-pack-'));
  const pack = spawnSync('npm', ['pack', '--json', '--pack-destination', out], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(pack.status, 0, pack.stderr);
  const info = JSON.parse(pack.stdout.slice(pack.stdout.indexOf('['))) as { filename: string; files: { path: string }[] }[];
  const files = info[0]!.files.map((f) => f.path);
  for (const f of ['dist/cli/main.js', 'dist/server/index.js', 'dist/store/sqlite/text-worker.js', 'contrib/systemd/quire.service', 'contrib/fail2ban/filter.d/quire.conf', 'contrib/fail2ban/jail.d/quire.conf', 'docs/config.md', 'README.md', 'package.json']) {
    assert.ok(files.includes(f), `${f} is in the package`);
  }
  assert.ok(!files.some((f) => f.startsWith('src/') || f.startsWith('test/') || f.endsWith('.map')), 'no sources, tests or source maps');

  // A global install's layout: <prefix>/lib/node_modules/quire-mail and <prefix>/bin/quire -> its bin.
  const prefix = join(out, 'prefix');
  const pkgDir = join(prefix, 'lib/node_modules/quire-mail');
  mkdirSync(pkgDir, { recursive: true });
  assert.equal(spawnSync('tar', ['xzf', join(out, info[0]!.filename), '-C', pkgDir, '--strip-components=1']).status, 0);
  symlinkSync(join(ROOT, 'node_modules'), join(pkgDir, 'node_modules'));
  const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { bin: { quire: string } };
  const main = join(pkgDir, pkg.bin.quire);
  assert.match(readFileSync(main, 'utf8'), /^#!\/usr\/bin\/env node\n/);
  mkdirSync(join(prefix, 'bin'));
  symlinkSync(main, join(prefix, 'bin/quire'));
  chmodSync(main, 0o755);
  const env = { ...cleanEnv(), PATH: `${join(prefix, 'bin')}:${process.env.PATH ?? ''}` };

  const v = spawnSync('quire', ['--version'], { env, encoding: 'utf8', cwd: out });
  assert.equal(v.status, 0, v.stderr);
  assert.equal(v.stdout.trim(), (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version);

  const data = join(out, 'data');
  const child = spawn('quire', ['serve', '--data', data, '--pop3-port', 'off', '--pop3s-port', 'off', '--imap-port', '0', '--imaps-port', '0', '--lmtp-port', 'off', '--admin-port', 'off'], { env, cwd: out, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('close', r));
  try {
    await until(() => /Quire is running[\s\S]*\n\n$/.test(stdout) || child.exitCode !== null, 'quire serve to start', 60_000);
    // ./data under the working directory is the default: the command needs no --data.
    assert.match(stdout, /\nChange it with: quire user passwd \S+\n/, stdout + stderr);
    assert.ok(existsSync(join(data, 'quire.sqlite3')));
  } finally {
    child.kill('SIGTERM');
  }
  assert.equal(await exited, 0, stderr);
});
