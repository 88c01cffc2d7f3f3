// Import at scale from the local Dovecot peer: 1,000 messages in several
// folders (UID gaps, keywords, flags, 8-bit and large bodies, dates in other
// zones), checked message by message against what Dovecot serves:
// - `quire import maildir` of the Maildir Dovecot wrote;
// - `quire import imap://` over IMAP, killed midway (SIGKILL) and re-run:
//   resumes without duplicates; a third run copies nothing;
// - a renumbered import (target INBOX already holds mail) interrupted between
//   a batch's commit and its progress record does not duplicate that batch.
import { DOVECOT_PEER } from '../helpers/peer.js';
import { withTempStore } from '../helpers/temp-store.js';
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { SqliteMailStore } from '../../src/store/sqlite/index.js';
import type { MailStore } from '../../src/store/types.js';
import { readMaildir } from '../../src/cli/maildir.js';
import { importFolders } from '../../src/cli/transfer.js';
import { ImapClient, encodeName } from '../../src/cli/imap-client.js';
import { importImap } from '../../src/cli/imap-import.js';
import { formatDateTime, parseDateTime } from '../../src/wire/index.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PEER = DOVECOT_PEER;

function peer(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => execFile('bash', [PEER, ...args], { timeout: 300_000 }, (e, so, se) => resolve({ code: e ? 1 : 0, out: String(so) + String(se) })));
}

interface Expected {
  uidValidity: number;
  uidNext: number;
  msgs: Map<number, { flags: string[]; date: number; body: Buffer }>;
}

const FOLDERS: [string, number][] = [
  ['INBOX', 440],
  ['Lists/Work', 250],
  ['Archive', 200],
  ['Entwürfe', 150],
];
const KEYWORDS = ['$Label1', 'Work', 'Later', '$Forwarded', 'Project-X'];

let available = false;
let user = '';
let port = 10143;
let mailDir = '';
let expected = new Map<string, Expected>();

function message(folder: string, i: number): Buffer {
  const big = i % 97 === 0 ? 'x'.repeat(76) + '\r\n' : '';
  const lines = [
    `From: Sender ${i} <s${i}@example.com>`,
    `To: ${user}@example.com`,
    `Subject: ${folder} message ${i}${i % 5 === 0 ? ' =?utf-8?q?gr=C3=BC=C3=9Fe?=' : ''}`,
    `Message-ID: <${folder.replace(/\W/g, '')}.${i}@example.com>`,
    `Date: Mon, 4 Nov 2024 10:${String(i % 60).padStart(2, '0')}:00 +0100`,
    ...(i % 7 === 0 ? ['MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="b"', '', '--b', 'Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 8bit', '', `Grüße ${i}`, '--b--'] : ['', `Body ${i}`, '.dot line', 'caf\u00e9']),
  ];
  return Buffer.concat([Buffer.from(lines.join('\r\n') + '\r\n', 'utf8'), Buffer.from(big.repeat(i % 97 === 0 ? 2000 : 0))]);
}

async function snapshot(c: ImapClient): Promise<Map<string, Expected>> {
  const out = new Map<string, Expected>();
  for (const [folder] of FOLDERS) {
    const sel = await c.examine(encodeName(folder));
    const list = await c.listFrom(1);
    const msgs = new Map<number, { flags: string[]; date: number; body: Buffer }>();
    for (let i = 0; i < list.length; i += 200) {
      for (const m of await c.fetchMessages(list.slice(i, i + 200).map((x) => x.uid))) {
        msgs.set(m.uid, { flags: m.flags.filter((f) => f !== '\\Recent').sort(), date: parseDateTime(m.internalDate!)!.ms, body: m.body! });
      }
    }
    out.set(folder, { uidValidity: sel.uidValidity, uidNext: sel.uidNext!, msgs });
  }
  return out;
}

before(async () => {
  if (!existsSync(PEER) || (await peer(['start'])).code !== 0) return;
  user = `quirebig${process.pid}${Date.now() % 100000}`;
  if ((await peer(['adduser', user, 'pass'])).code !== 0) return;
  const env = Object.fromEntries((await peer(['env'])).out.trim().split(/\s+/).map((kv) => kv.split('=') as [string, string]));
  port = Number(env.DOVECOT_PEER_PORT ?? 10143);
  mailDir = path.join(env.DOVECOT_PEER_DIR ?? '/tmp/dovecot-peer', 'mail', user, 'Maildir');
  const c = await ImapClient.connect({ host: '127.0.0.1', port, security: 'plain' });
  try {
    await fill(c);
  } finally {
    c.destroy();
  }
  const total = [...expected.values()].reduce((n, e) => n + e.msgs.size, 0);
  assert.equal(total, 1000);
  available = true;
});

async function fill(c: ImapClient): Promise<void> {
  await c.login(user, 'pass');
  for (const [folder, n] of FOLDERS) {
    if (folder !== 'INBOX') await c.ok('CREATE ', `"${encodeName(folder)}"`);
    for (let i = 0; i < n; i += 50) {
      const batch = [];
      for (let k = i; k < Math.min(n, i + 50); k++) {
        const flags = [
          ...(k % 2 === 0 ? ['\\Seen'] : []),
          ...(k % 3 === 0 ? ['\\Answered'] : []),
          ...(k % 11 === 0 ? ['\\Flagged'] : []),
          ...(k % 13 === 0 ? ['\\Draft'] : []),
          ...KEYWORDS.filter((_, j) => (k + j) % (j + 3) === 0),
        ];
        batch.push({ flags, date: formatDateTime(Date.UTC(2019, 0, 1) + k * 86_400_000 + 3_723_000, ((k % 5) - 2) * 90), data: message(folder, k) });
      }
      await c.append(encodeName(folder), batch);
    }
  }
  // UID gaps and flag changes after APPEND.
  await c.ok('SELECT INBOX');
  const every = (from: number, to: number, step: number) => Array.from({ length: Math.floor((to - from) / step) + 1 }, (_, i) => from + i * step).join(',');
  await c.ok(`UID STORE ${every(1, 440, 11)} +FLAGS.SILENT (\\Deleted)`);
  await c.ok('EXPUNGE');
  await c.ok(`UID STORE ${every(2, 100, 7)} +FLAGS.SILENT (\\Deleted Later)`);
  await c.ok(`UID STORE ${every(3, 60, 3)} -FLAGS.SILENT (\\Seen)`);
  expected = await snapshot(c);
  await c.logout();
}

function tempStore(fn: (s: MailStore, userId: number, dir: string) => Promise<void>): Promise<void> {
  return withTempStore('quire-bigimport-', fn);
}

/** Every message of every folder: UIDVALIDITY, UIDs, bytes, flags and keywords, INTERNALDATE. */
async function compare(store: MailStore, userId: number, opts: { uidNext: boolean }): Promise<void> {
  for (const [folder, want] of expected) {
    const mb = await store.getMailbox(userId, folder);
    assert.ok(mb, folder);
    assert.equal(mb.uidValidity, want.uidValidity, `${folder} UIDVALIDITY`);
    if (opts.uidNext) assert.equal(mb.uidNext, want.uidNext, `${folder} UIDNEXT`);
    const got = await store.listMessages(mb.id);
    assert.deepEqual(got.map((m) => m.uid), [...want.msgs.keys()], `${folder} UIDs (no duplicates, none missing)`);
    for (const m of got) {
      const w = want.msgs.get(m.uid)!;
      assert.deepEqual(m.flags.slice().sort(), w.flags, `${folder} ${m.uid} flags`);
      assert.equal(m.internalDate, w.date, `${folder} ${m.uid} INTERNALDATE`);
      const b = (await store.openMessage(mb.id, m.uid))!;
      assert.ok((await b.read(0, b.size)).equals(w.body), `${folder} ${m.uid} bytes`);
    }
  }
}

test('Maildir written by Dovecot, 1,000 messages in 4 folders: imported message by message', async (t) => {
  if (!available) return t.skip('no Dovecot peer');
  await tempStore(async (store, userId) => {
    const folders = await readMaildir(mailDir);
    const s = await importFolders(store, userId, folders);
    assert.equal(s.imported, 1000);
    await compare(store, userId, { uidNext: false });
  });
});

function quire(args: string[], dataDir: string) {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('QUIRE_') && v !== undefined) env[k] = v;
  env.QUIRE_SQLITE_SYNCHRONOUS = 'NORMAL';
  // One process (not the tsx wrapper), so SIGKILL stops the importer itself.
  return spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), ...args, '--data', dataDir], { env, cwd: ROOT });
}

function finish(child: ReturnType<typeof quire>, stdin: string): Promise<{ code: number | null; signal: string | null; out: string; err: string }> {
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  child.stdin!.end(stdin);
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, out, err })));
}

test('quire import imap://: 1,000 messages, killed midway, resumed without duplicates, then nothing more to copy', async (t) => {
  if (!available) return t.skip('no Dovecot peer');
  const dir = await mkdtemp(path.join(tmpdir(), 'quire-imapimport-'));
  const data = path.join(dir, 'data');
  try {
    const add = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), 'user', 'add', 'alice', '--data', data], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(add.status, 0, add.stderr);
    const args = ['import', 'imap', `imap://${user}@127.0.0.1:${port}/`, '--plain', '--password-stdin', '--user', 'alice', '--batch', '40'];

    // First run: SIGKILL once at least 300 messages are committed.
    const child = quire(args, data);
    const done = finish(child, 'pass\n');
    const db = () => new Database(path.join(data, 'quire.sqlite3'), { readonly: true, fileMustExist: true });
    let seen = 0;
    const deadline = Date.now() + 40_000;
    while (child.exitCode === null && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 30));
      const d = db();
      try {
        seen = d.prepare('SELECT coalesce(sum(msg_count), 0) FROM mailboxes').pluck().get() as number;
      } finally {
        d.close();
      }
      if (seen >= 300) {
        child.kill('SIGKILL');
        break;
      }
    }
    const first = await done;
    assert.equal(first.signal, 'SIGKILL', `the first run was to be killed midway (saw ${seen}; ${first.err})`);
    const d = db();
    const partial = d.prepare('SELECT coalesce(sum(msg_count), 0) FROM mailboxes').pluck().get() as number;
    d.close();
    assert.ok(partial >= 300 && partial < 1000, `partial import: ${partial}`);

    // Second run: continues where it stopped.
    const second = await finish(quire(args, data), 'pass\n');
    assert.equal(second.code, 0, second.err);
    const m = /imported (\d+) message\(s\) into \d+ mailbox\(es\); (\d+) already present/.exec(second.out);
    assert.ok(m, second.out);
    assert.equal(Number(m[1]) + Number(m[2]), 1000);
    assert.equal(Number(m[2]), partial);

    // Third run: nothing new.
    const third = await finish(quire(args, data), 'pass\n');
    assert.equal(third.code, 0, third.err);
    assert.match(third.out, /imported 0 message\(s\).*; 1000 already present/);

    const store = await SqliteMailStore.open({ dataDir: data, synchronous: 'NORMAL' });
    try {
      await compare(store, (await store.getUser('alice'))!.id, { uidNext: true });
    } finally {
      await store.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a renumbered import killed between a batch commit and its progress record does not duplicate the batch', async (t) => {
  if (!available) return t.skip('no Dovecot peer');
  await tempStore(async (store, userId, dir) => {
    const inbox = (await store.getMailbox(userId, 'INBOX'))!;
    await store.appendMessages(inbox.id, [{ data: Buffer.from('Subject: already here\r\n\r\nx\r\n'), flags: [] }]);
    const source = { host: '127.0.0.1', port, security: 'plain' as const, user, password: 'pass' };
    const stateFile = path.join(dir, 'state.json');
    // The store commits the third batch, then the "process dies" before the state file is updated.
    let calls = 0;
    const crashing = new Proxy(store, {
      get(target, prop, recv) {
        if (prop === 'importMessages') {
          return async (...a: Parameters<MailStore['importMessages']>) => {
            const r = await target.importMessages(...a);
            if (a[1].length > 0 && ++calls === 3) throw new Error('simulated crash after commit');
            return r;
          };
        }
        const v = Reflect.get(target, prop, recv) as unknown;
        return typeof v === 'function' ? (v as (...x: unknown[]) => unknown).bind(target) : v;
      },
    });
    await assert.rejects(importImap(crashing, userId, source, { stateFile, batchMessages: 100 }), /simulated crash/);
    const s = await importImap(store, userId, source, { stateFile, batchMessages: 100 });
    assert.equal(s.imported + s.skipped, 1000);
    const got = await store.listMessages(inbox.id);
    const want = expected.get('INBOX')!;
    assert.equal(got.length, want.msgs.size + 1, 'every source message once, after the one already there');
    const bodies = await Promise.all(got.slice(1).map(async (m) => (await store.openMessage(inbox.id, m.uid))!.read(0, m.size)));
    assert.deepEqual(bodies.map((b) => b.toString('latin1')), [...want.msgs.values()].map((w) => w.body.toString('latin1')), 'same bytes in the same order');
    assert.notEqual(inbox.uidValidity, want.uidValidity, 'INBOX kept its own UIDVALIDITY');
    const again = await importImap(store, userId, source, { stateFile, batchMessages: 100 });
    assert.equal(again.imported, 0);
  });
});
