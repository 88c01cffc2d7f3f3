// A data directory the admin may not write (here: owned by root, used by an
// unprivileged user): the reading commands work and show the real data;
// writing commands fail naming the directory and the reason; nothing in it
// changes.
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runProcess } from '../helpers/process.js';
import { cleanEnv, have, ROOT } from './helpers.js';

const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;

function quire(args: string[], opts: { asNobody?: boolean; stdin?: string } = {}) {
  const node = [process.execPath, '--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args];
  const [cmd, ...rest] = opts.asNobody ? ['setpriv', '--reuid', String(NOBODY), '--regid', String(NOBODY), '--clear-groups', ...node] : node;
  return runProcess(cmd!, rest, { cwd: ROOT, env: { ...cleanEnv(), HOME: tmpdir() }, stdin: opts.stdin });
}

function snapshot(dir: string): string {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => {
      const p = join(e.parentPath, e.name);
      return `${p} ${statSync(p).size} ${statSync(p).mtimeMs}`;
    })
    .sort()
    .join('\n');
}

test('reading commands work on a read-only data directory; writes are refused with the path and reason', { skip: (!isRoot || !have('setpriv')) && 'needs root and setpriv', timeout: 120_000 }, async () => {
  const data = mkdtempSync(join(tmpdir(), 'quire-rodata-'));
  assert.equal((await quire(['user', 'add', 'alice', '--data', data, '--password-stdin'], { stdin: 'alice-pass-1\n' })).code, 0);
  const mbox = join(data, '..', `${data.split('/').pop()}.mbox`);
  writeFileSync(mbox, 'From a@example.org Thu Jan  1 00:00:00 2026\nSubject: kept\n\nread-only body\n');
  assert.equal((await quire(['import', 'mbox', mbox, '--user', 'alice', '--data', data])).code, 0);
  // Readable by everyone, writable by root only (as a mounted snapshot or another user's directory would be).
  chmodSync(data, 0o755);
  for (const e of readdirSync(data, { recursive: true, withFileTypes: true })) chmodSync(join(e.parentPath, e.name), e.isDirectory() ? 0o755 : 0o644);
  const before = snapshot(data);

  const list = await quire(['user', 'list', '--data', data], { asNobody: true });
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, /^alice\t/);
  const stats = await quire(['mailbox', 'stats', 'INBOX', '--user', 'alice', '--data', data], { asNobody: true });
  assert.equal(stats.code, 0, stats.stderr);
  assert.match(stats.stdout, /^INBOX\t1\t/m);
  assert.equal((await quire(['mailbox', 'list', '--user', 'alice', '--data', data], { asNobody: true })).code, 0);
  const out = mkdtempSync(join(tmpdir(), 'quire-roexp-'));
  chownSync(out, NOBODY, NOBODY);
  const exp = await quire(['export', 'mbox', out, '--user', 'alice', '--data', data], { asNobody: true });
  assert.equal(exp.code, 0, exp.stderr);
  assert.match(readFileSync(join(out, 'INBOX.mbox'), 'utf8'), /read-only body/);
  const doc = await quire(['doctor', '--data', data], { asNobody: true });
  assert.equal(doc.code, 0, doc.stdout + doc.stderr);

  const add = await quire(['user', 'add', 'bob', '--data', data], { asNobody: true });
  assert.notEqual(add.code, 0);
  assert.equal(add.stderr, `quire: cannot write to the data directory: ${data}: permission denied (EACCES)\n`);
  const pw = await quire(['user', 'passwd', 'alice', '--data', data], { asNobody: true });
  assert.notEqual(pw.code, 0);
  assert.match(pw.stderr, new RegExp(`the data directory is read-only \\(${data}: permission denied \\(EACCES\\)\\): setPasswordHash needs to write`));
  const rep = await quire(['doctor', '--repair', '--data', data], { asNobody: true });
  assert.notEqual(rep.code, 0);
  assert.match(rep.stderr, /doctor --repair needs to write/);

  assert.equal(snapshot(data), before, 'nothing in the data directory changed');
});
