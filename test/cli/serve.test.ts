// `quire serve` end to end: first start creates a user and a certificate,
// prints how to connect, accepts a connection, and stops cleanly on SIGTERM.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ready = existsSync(join(ROOT, 'src/store/sqlite/index.ts')) && existsSync(join(ROOT, 'src/server/index.ts'));
if (!ready) console.log('# SKIP serve.test.ts: src/store/sqlite/index.ts or src/server/index.ts does not exist yet');

function startServe(data: string, extra: string[] = []) {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('QUIRE_') && v !== undefined) env[k] = v;
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'serve', '--data', data, '--imap-port', '0', '--imaps-port', '0', '--lmtp-port', '0', '--pop3-port', '0', '--pop3s-port', '0', '--log-level', 'warn', ...extra], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const started = new Promise<string>((resolve, reject) => {
    // Generous: two workers compile the sources under tsx on a shared machine (the start's duration is not checked).
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`serve did not start:\n${stdout}\n${stderr}`));
    }, 120_000);
    const check = () => {
      if (/^\n?Quire is running\.[\s\S]*\n\n$/m.test(stdout)) {
        clearTimeout(timer);
        resolve(stdout);
      }
    };
    child.stdout.on('data', check);
    void exited.then((code) => reject(new Error(`serve exited with ${code}:\n${stdout}\n${stderr}`)));
  });
  return { child, started, exited, stderr: () => stderr };
}

function greeting(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    s.once('data', (d) => {
      resolve(d.toString());
      s.destroy();
    });
    s.once('error', reject);
  });
}

test('quire serve: first start, greeting, clean stop, second start reuses everything', { skip: !ready && 'store or server not available yet' }, async () => {
  const data = mkdtempSync(join(tmpdir(), 'quire-serve-'));
  const first = startServe(data, ['--workers', '2']);
  const out = await first.started;
  assert.match(out, /First start: created user "[^"]+" with password:\n {2}\S{20,}/);
  assert.match(out, /SHA-256: +([0-9A-F]{2}:){31}[0-9A-F]{2}/);
  const fp1 = /SHA-256: +(\S+)/.exec(out)![1];
  const port = Number(/IMAP \(STARTTLS\): +127\.0\.0\.1:(\d+)/.exec(out)![1]);
  assert.match(await greeting(port), /^\* OK/);
  // POP3 beside IMAP (src/pop3): both listeners announced, the plain one greets with +OK.
  const pop3 = Number(/POP3 \(STLS\): +127\.0\.0\.1:(\d+)/.exec(out)![1]);
  assert.match(out, /POP3S \(TLS\): +127\.0\.0\.1:\d+/);
  assert.match(await greeting(pop3), /^\+OK /);
  first.child.kill('SIGTERM');
  assert.equal(await first.exited, 0, first.stderr());

  // The first start ran a cluster of two workers; this one a single process.
  const second = startServe(data, ['--workers', '1']);
  const out2 = await second.started;
  assert.doesNotMatch(out2, /workers:/);
  assert.doesNotMatch(out2, /First start/);
  assert.equal(/SHA-256: +(\S+)/.exec(out2)![1], fp1, 'certificate reused');
  second.child.kill('SIGINT');
  assert.equal(await second.exited, 0, second.stderr());
});
