// `quire backup` of a running server under APPEND load, and `quire restore`:
// the restored store holds every message acknowledged before the backup
// started, each byte for byte as the server has it, nothing that the source
// does not have, and passes the integrity checks; a second backup after the
// load restores exactly the source.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import type { MailStore } from '../../src/store/types.js';
import { RawClient } from '../helpers/imap.js';
import { runProcess } from '../helpers/process.js';
import { cleanEnv, ROOT, startServe } from './helpers.js';

function quire(args: string[]) {
  return runProcess(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args], { cwd: ROOT, env: cleanEnv() });
}

/** user/mailbox/uid -> bytes, for every message in a store. */
async function contents(dataDir: string): Promise<Map<string, Buffer>> {
  const store: MailStore = await openSqliteStore({ dataDir });
  const out = new Map<string, Buffer>();
  try {
    for (const u of await store.listUsers()) {
      for (const mb of await store.listMailboxes(u.id)) {
        for (const m of await store.listMessages(mb.id)) {
          const body = await store.openMessage(mb.id, m.uid);
          assert.ok(body, `${u.name}/${mb.name}/${m.uid} has a body`);
          out.set(`${u.name}/${mb.name}/${m.uid}`, await body.read(0, body.size));
        }
      }
    }
  } finally {
    await store.close();
  }
  return out;
}

function message(i: number): string {
  // Varied sizes, some bodies over 64 KiB (more than one read chunk).
  const filler = `line ${i} ${'x'.repeat(60)}\r\n`.repeat(1 + ((i * 37) % 1200));
  return `From: load@example.org\r\nSubject: load ${i}\r\nMessage-ID: <load-${i}@example.org>\r\n\r\n${filler}`;
}

test('backup under APPEND load restores byte for byte', { timeout: 180_000 }, async () => {
  const data = mkdtempSync(join(tmpdir(), 'quire-bk-'));
  const srv = await startServe(data, `${data}.log`, ['--admin-port', 'off', '--log-level', 'warn']);
  const acked = new Map<string, string>();
  let stop = false;
  let n = 0;
  const writers: Promise<void>[] = [];
  try {
    const clients = await Promise.all([0, 1, 2].map(() => RawClient.connect(srv.imapPort, { login: [srv.user!, srv.password!] })));
    // A warm store first, then load while the backup runs.
    for (let i = 0; i < 60; i++) {
      const r = await clients[0]!.append('INBOX', message(n));
      assert.match(r.tagged, /OK \[APPENDUID \d+ \d+\]/);
      acked.set(`INBOX/${/APPENDUID \d+ (\d+)/.exec(r.tagged)![1]}`, message(n++));
    }
    for (const c of clients) {
      writers.push(
        (async () => {
          while (!stop) {
            const i = n++;
            const r = await c.append('INBOX', message(i));
            if (/OK/.test(r.tagged)) acked.set(`INBOX/${/APPENDUID \d+ (\d+)/.exec(r.tagged)![1]}`, message(i));
          }
        })(),
      );
    }
    await new Promise((r) => setTimeout(r, 300));
    const ackedBefore = new Map(acked);
    const bk = join(mkdtempSync(join(tmpdir(), 'quire-bk-out-')), 'backup');
    const b = await quire(['backup', bk, '--data', data]);
    assert.equal(b.code, 0, b.stderr);
    assert.match(b.stdout, /^backup in \S+: \d+ messages, \d+ bodies, \d+ bytes \(verified\)\n$/);
    const appendsDuringBackup = n;
    await new Promise((r) => setTimeout(r, 200));
    stop = true;
    await Promise.all(writers);
    assert.ok(appendsDuringBackup > ackedBefore.size, 'appends kept flowing during the backup');

    const restored = join(mkdtempSync(join(tmpdir(), 'quire-rs-')), 'data');
    const r = await quire(['restore', bk, '--data', restored]);
    assert.equal(r.code, 0, r.stderr);
    const back = await contents(restored);
    for (const [k, v] of ackedBefore) assert.equal(back.get(`${srv.user}/${k}`)?.toString('latin1'), v, `${k} acknowledged before the backup is in it, byte for byte`);
    for (const [k, v] of back) {
      const [, mb, uid] = k.split('/');
      assert.equal(v.toString('latin1'), acked.get(`${mb}/${uid}`), `${k} in the backup is a message the server acknowledged, byte for byte`);
    }
    assert.ok(back.size >= ackedBefore.size);

    // The doctor finds nothing wrong with the restored store.
    const doc = await quire(['doctor', '--data', restored]);
    assert.equal(doc.code, 0, doc.stdout + doc.stderr);

    // Restoring over an existing store is refused.
    const again = await quire(['restore', bk, '--data', restored]);
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /already holds a store/);

    // A quiet backup restores exactly what the source holds.
    for (const c of clients) await c.command('LOGOUT');
    const bk2 = join(mkdtempSync(join(tmpdir(), 'quire-bk-out-')), 'b2');
    assert.equal((await quire(['backup', bk2, '--data', data])).code, 0);
    srv.child.kill('SIGTERM');
    assert.equal(await srv.exited, 0);
    const restored2 = join(mkdtempSync(join(tmpdir(), 'quire-rs-')), 'data');
    assert.equal((await quire(['restore', bk2, '--data', restored2])).code, 0);
    const src = await contents(data);
    const copy = await contents(restored2);
    assert.equal(copy.size, src.size);
    for (const [k, v] of src) assert.ok(copy.get(k)?.equals(v), `${k} equal`);
    assert.equal(src.size, acked.size);
  } finally {
    stop = true;
    srv.child.kill('SIGTERM');
  }
});
