// Issue 10 item 4: export never writes outside its target directory, whatever
// the mailbox names (names stored before CREATE refused "." / ".." levels,
// simulated by writing them into the database directly); the store and the
// IMAP import refuse or escape such names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import Database from 'better-sqlite3';
import { withTempStore } from '../helpers/temp-store.js';
import { exportMaildir, exportMbox } from '../../src/cli/transfer.js';
import { folderDir } from '../../src/cli/maildir.js';
import { safeLevels, within, UnsafeNameError } from '../../src/cli/fs-names.js';
import { targetName } from '../../src/cli/imap-import.js';
import { DB_FILE } from '../../src/store/sqlite/store.js';

const HOSTILE = ['../../escaped', '..', '.', '/abs/olute', 'a/../../b', 'x/./y', 'nul\0byte', 'deep/..', 'trail/'];

/** Everything below `dir`, relative, sorted. */
async function tree(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    out.push(prefix + e.name);
    if (e.isDirectory()) out.push(...(await tree(path.join(dir, e.name), `${prefix}${e.name}/`)));
  }
  return out.sort();
}

test('export mbox / maildir: hostile legacy names are skipped, nothing is written outside the target', async () => {
  await withTempStore('quire-export-paths-', async (store, userId, dir) => {
    for (const n of HOSTILE) await assert.rejects(store.createMailbox(userId, n), /CANNOT|empty|control/i, n);
    const db = new Database(path.join(dir, 'data', DB_FILE));
    const ins = db.prepare('INSERT INTO mailboxes (user_id, name, uid_validity) VALUES (?, ?, ?)');
    HOSTILE.forEach((n, i) => ins.run(userId, n, 1000 + i));
    db.close();
    await store.createMailbox(userId, 'Good/Child');
    // The target sits two levels down so that "../../escaped" would land inside dir, where we look.
    const out = path.join(dir, 'a', 'b', 'out');
    await mkdir(out, { recursive: true });
    const before = (await tree(dir)).filter((p) => !p.startsWith('data'));

    const mbox = await exportMbox(store, userId, out);
    assert.equal(mbox.skipped.length, HOSTILE.length, mbox.skipped.join('\n'));
    const mboxFiles = await tree(out);
    assert.ok(mboxFiles.includes('Good/Child.mbox') && mboxFiles.includes('INBOX.mbox'), mboxFiles.join());
    const maildirOut = path.join(out, 'maildir');
    const md = await exportMaildir(store, userId, maildirOut);
    assert.equal(md.skipped.length, HOSTILE.length, md.skipped.join('\n'));
    assert.ok((await tree(maildirOut)).includes('.Good.Child/cur'));

    const after = (await tree(dir)).filter((p) => !p.startsWith('data'));
    const outside = after.filter((p) => !before.includes(p) && !p.startsWith('a/b/out/'));
    assert.deepEqual(outside, [], 'nothing written outside the target directory');
  });
});

test('name-to-path helpers refuse every level that is not one plain component', () => {
  for (const n of HOSTILE) assert.throws(() => safeLevels(n), UnsafeNameError, n);
  assert.deepEqual(safeLevels('A/B c/.hidden/x..y'), ['A', 'B c', '.hidden', 'x..y']);
  assert.throws(() => folderDir('.'), UnsafeNameError); // would be "..", the parent directory
  assert.throws(() => folderDir('a/..'), UnsafeNameError);
  assert.equal(folderDir('A/B'), '.A.B');
  assert.throws(() => within('/tmp/x', '..', 'y'), UnsafeNameError);
  assert.throws(() => within('/tmp/x', '/etc/passwd'), UnsafeNameError);
  assert.throws(() => within('/tmp/x', ''), UnsafeNameError);
  assert.equal(within('/tmp/x', 'a', 'b.mbox'), path.resolve('/tmp/x/a/b.mbox'));
});

test('IMAP import: remote names that Quire refuses are escaped, never used as they are', () => {
  const t = (name: string, delimiter: string | null = '/') => targetName({ name, delimiter, attributes: [] } as never);
  assert.equal(t('../../escaped'), '_../_../escaped');
  assert.equal(t('a/./b'), 'a/_./b');
  assert.equal(t('/abs'), '_/abs');
  assert.equal(t('a\x01b'), 'a_b');
  assert.equal(t('x.y.z', '.'), 'x/y/z');
  assert.equal(t('a/b.c', '.'), 'a_b/c');
  assert.equal(t('inbox.Sub', '.'), 'INBOX/Sub');
});
