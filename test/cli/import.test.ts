// quire import / export: Maildir (Dovecot layout) round trip keeping every
// byte, flag, keyword, UID, UIDVALIDITY and date; resume; mbox both ways; the
// CLI commands; and a real Dovecot's Maildir with several folders.
import { DOVECOT_PEER } from '../helpers/peer.js';
import { withTempStore } from '../helpers/temp-store.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MailStore } from '../../src/store/types.js';
import { flagsFromName, parseUidList, readMaildir } from '../../src/cli/maildir.js';
import { exportMaildir, exportMbox, importFolders } from '../../src/cli/transfer.js';
import { parseMbox } from '../../src/cli/mbox.js';
import { RawClient } from '../helpers/imap.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

async function tmp(prefix: string) {
  return mkdtemp(path.join(tmpdir(), prefix));
}

function withStore(fn: (s: MailStore, userId: number, dir: string) => Promise<void>) {
  return withTempStore('quire-import-', fn);
}

interface Fixture {
  folder: string;
  dir: string;
  keywords: string[];
  uidValidity: number;
  uidNext: number;
  files: { sub: 'cur' | 'new'; name: string; uid: number | null; body: string; mtime: number }[];
}

const FIXTURES: Fixture[] = [
  {
    folder: 'INBOX',
    dir: '',
    keywords: ['$Label1', 'Work'],
    uidValidity: 1_500_000_000,
    uidNext: 12,
    files: [
      { sub: 'cur', name: '1500000001.M1P1.host,S=60:2,S', uid: 3, body: 'From: a@example.com\nSubject: one\n\nplain body\n', mtime: 1_500_000_001 },
      { sub: 'cur', name: '1500000002.M2P1.host:2,FRSab', uid: 7, body: 'Subject: two\n\n\u00e9 8-bit and a long line\nFrom the start\n>From quoted\n', mtime: 1_500_000_002 },
      { sub: 'cur', name: '1500000003.M3P1.host:2,DPT', uid: 9, body: 'Subject: three\n\n', mtime: 1_500_000_003 },
      { sub: 'new', name: '1500000004.M4P1.host', uid: null, body: 'Subject: new, not in the uidlist\n\nx\n', mtime: 1_500_000_004 },
    ],
  },
  {
    folder: 'Lists/Entwürfe',
    dir: '.Lists.Entw&APw-rfe',
    keywords: ['Urgent'],
    uidValidity: 1_500_000_100,
    uidNext: 3,
    files: [{ sub: 'cur', name: '1500000100.M9P1.host:2,Sa', uid: 2, body: 'Subject: nested\n\nbody\n', mtime: 1_500_000_100 }],
  },
];

async function writeFixture(root: string): Promise<void> {
  for (const f of FIXTURES) {
    const dir = path.join(root, f.dir);
    for (const sub of ['cur', 'new', 'tmp']) await mkdir(path.join(dir, sub), { recursive: true });
    await writeFile(path.join(dir, 'dovecot-keywords'), f.keywords.map((k, i) => `${i} ${k}\n`).join(''));
    const listed = f.files.filter((x) => x.uid !== null);
    await writeFile(path.join(dir, 'dovecot-uidlist'), `3 V${f.uidValidity} N${f.uidNext} Gabc\n` + listed.map((x) => `${x.uid} W100 :${x.name.split(':')[0]}\n`).join(''));
    for (const x of f.files) {
      const p = path.join(dir, x.sub, x.name);
      await writeFile(p, Buffer.from(x.body, 'latin1'));
      await utimes(p, x.mtime, x.mtime);
    }
  }
  await mkdir(path.join(root, '.Lists', 'cur'), { recursive: true }); // the parent exists as an empty folder
}

/** uid → {bytes, flags (sorted), mtime} of a Maildir folder as Quire exported it. */
async function readBack(dir: string): Promise<Map<number, { body: string; flags: string[]; mtime: number }>> {
  const out = new Map<number, { body: string; flags: string[]; mtime: number }>();
  const uidlist = parseUidList(await readFile(path.join(dir, 'dovecot-uidlist'), 'utf8'));
  const kw = new Map((await readFile(path.join(dir, 'dovecot-keywords'), 'utf8')).split('\n').filter(Boolean).map((l) => [Number(l.split(' ')[0]), l.split(' ')[1]!] as [number, string]));
  for (const name of await readdir(path.join(dir, 'cur'))) {
    const p = path.join(dir, 'cur', name);
    out.set(uidlist.byBase.get(name.split(':')[0]!)!, {
      body: (await readFile(p)).toString('latin1'),
      flags: flagsFromName(name, kw).sort(),
      mtime: Math.floor((await stat(p)).mtimeMs / 1000),
    });
  }
  return out;
}

const LETTERS: Record<string, string> = { S: '\\Seen', R: '\\Answered', F: '\\Flagged', D: '\\Draft', T: '\\Deleted', P: '$Forwarded' };

test('Maildir → Quire → Maildir keeps every byte, flag, keyword, UID, UIDVALIDITY and date', async () => {
  await withStore(async (store, userId, dir) => {
    const src = path.join(dir, 'src');
    await writeFixture(src);
    const folders = await readMaildir(src);
    assert.deepEqual(folders.map((f) => f.name), ['INBOX', 'Lists', 'Lists/Entwürfe']);
    const s = await importFolders(store, userId, folders);
    assert.deepEqual(s, { folders: 3, imported: 5, skipped: 0 });

    const inbox = (await store.getMailbox(userId, 'INBOX'))!;
    assert.equal(inbox.uidValidity, 1_500_000_000);
    assert.equal(inbox.uidNext, 13, 'the file in new/ got UID 12, after the uidlist\'s N12');
    const msgs = await store.listMessages(inbox.id);
    assert.deepEqual(msgs.map((m) => m.uid), [3, 7, 9, 12]);
    assert.deepEqual(msgs[1]!.flags.slice().sort(), ['$Label1', 'Work', '\\Answered', '\\Flagged', '\\Seen'].sort());
    assert.equal(msgs[0]!.internalDate, 1_500_000_001_000);
    const body = (await store.openMessage(inbox.id, 3))!;
    assert.equal((await body.read(0, body.size)).toString(), 'From: a@example.com\r\nSubject: one\r\n\r\nplain body\r\n', 'stored with CRLF');

    const out = path.join(dir, 'out');
    await exportMaildir(store, userId, out);
    for (const f of FIXTURES) {
      const back = await readBack(path.join(out, f.dir));
      const list = parseUidList(await readFile(path.join(out, f.dir, 'dovecot-uidlist'), 'utf8'));
      assert.equal(list.uidValidity, f.uidValidity);
      assert.ok(list.uidNext! >= f.uidNext);
      let nextUid = f.uidNext;
      for (const x of f.files) {
        const uid = x.uid ?? nextUid++;
        const got = back.get(uid);
        assert.ok(got, `${f.folder} uid ${uid}`);
        assert.equal(got.body, x.body, 'bytes');
        assert.equal(got.mtime, x.mtime, 'date');
        const info = x.name.includes(':2,') ? x.name.split(':2,')[1]! : '';
        const want = [...info].map((c) => LETTERS[c] ?? f.keywords[c.charCodeAt(0) - 97]!).sort();
        assert.deepEqual(got.flags, want, `${f.folder} ${x.name} flags`);
      }
      assert.equal(back.size, f.files.length);
    }
  });
});

test('an interrupted import resumes without duplicates; a second run adds nothing', async () => {
  await withStore(async (store, userId, dir) => {
    const src = path.join(dir, 'src');
    await writeFixture(src);
    const folders = await readMaildir(src);
    const partial = folders.map((f) => (f.name === 'INBOX' ? { ...f, messages: f.messages.slice(0, 2), uidNext: undefined } : f));
    await importFolders(store, userId, partial.slice(0, 1));
    assert.deepEqual(await importFolders(store, userId, folders), { folders: 3, imported: 3, skipped: 2 });
    assert.deepEqual(await importFolders(store, userId, folders), { folders: 3, imported: 0, skipped: 5 });
    const inbox = (await store.getMailbox(userId, 'INBOX'))!;
    assert.deepEqual((await store.listMessages(inbox.id)).map((m) => m.uid), [3, 7, 9, 12]);
  });
});

test('mbox: From-line splitting, mboxrd unescaping, Status/X-Status/X-Keywords; export and re-import agree', async () => {
  const mbox = [
    'From alice@example.com Thu Nov 14 10:00:00 2024',
    'Subject: first',
    'Status: RO',
    'X-Status: AF',
    'X-Keywords: $Label1 Work',
    '',
    '>From the start',
    '>>From double',
    '',
    'From bob@example.com Fri Nov 15 11:30:00 2024',
    'Subject: second',
    '',
    'body',
    '',
  ].join('\n');
  const msgs = parseMbox(Buffer.from(mbox));
  assert.equal(msgs.length, 2);
  assert.deepEqual(msgs[0]!.flags, ['\\Seen', '\\Answered', '\\Flagged', '$Label1', 'Work']);
  assert.equal(msgs[0]!.data.toString(), 'Subject: first\n\nFrom the start\n>From double\n');
  assert.equal(msgs[0]!.internalDate, Date.UTC(2024, 10, 14, 10, 0, 0));
  assert.equal(msgs[1]!.data.toString(), 'Subject: second\n\nbody\n');
  assert.deepEqual(msgs[1]!.flags, []);
  assert.equal(parseMbox(Buffer.from(mbox), 'mboxo')[0]!.data.toString(), 'Subject: first\n\nFrom the start\n>>From double\n');

  await withStore(async (store, userId, dir) => {
    const file = path.join(dir, 'in.mbox');
    await writeFile(file, mbox);
    const { readMbox } = await import('../../src/cli/mbox.js');
    const m = await readMbox(file, 'mboxrd');
    await importFolders(store, userId, [{ name: 'Old', messages: m.map((x, i) => ({ uid: i + 1, flags: x.flags, internalDate: x.internalDate!, read: async () => x.data })) }]);
    const out = path.join(dir, 'out');
    await exportMbox(store, userId, out);
    const again = parseMbox(await readFile(path.join(out, 'Old.mbox')));
    assert.deepEqual(again.map((x) => x.data.toString()), msgs.map((x) => x.data.toString()));
    assert.deepEqual(again.map((x) => x.flags.sort()), msgs.map((x) => x.flags.sort()));
    assert.deepEqual(again.map((x) => x.internalDate), msgs.map((x) => x.internalDate));
  });
});

function cli(args: string[]): { code: number; out: string; err: string } {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('QUIRE_') && v !== undefined) env[k] = v;
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), ...args], { cwd: ROOT, env, encoding: 'utf8' });
  return { code: r.status ?? 1, out: r.stdout, err: r.stderr };
}

test('quire import maildir / export maildir / export mbox / import mbox on the command line', async () => {
  const dir = await tmp('quire-import-cli-');
  try {
    const data = path.join(dir, 'data');
    const src = path.join(dir, 'src');
    await writeFixture(src);
    let r = cli(['user', 'add', 'carol', '--data', data]);
    assert.equal(r.code, 0, r.err);
    r = cli(['import', 'maildir', src, '--user', 'carol', '--data', data]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /imported 5 message\(s\) into 3 mailbox\(es\)/);
    r = cli(['import', 'maildir', src, '--user', 'carol', '--data', data]);
    assert.match(r.out, /imported 0 message\(s\).*5 already present/);
    r = cli(['export', 'maildir', path.join(dir, 'out'), '--user', 'carol', '--data', data]);
    assert.equal(r.code, 0, r.err);
    assert.ok(existsSync(path.join(dir, 'out', '.Lists.Entw&APw-rfe', 'dovecot-uidlist')));
    r = cli(['export', 'mbox', path.join(dir, 'mbox'), '--user', 'carol', '--data', data]);
    assert.equal(r.code, 0, r.err);
    assert.ok(existsSync(path.join(dir, 'mbox', 'Lists', 'Entwürfe.mbox')));
    cli(['user', 'add', 'dave', '--data', data]);
    r = cli(['import', 'mbox', path.join(dir, 'mbox'), '--user', 'dave', '--data', data]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /imported 5 message\(s\)/);
    r = cli(['user', 'alias', 'add', 'carol', 'Carol@Example.com', '--data', data]);
    assert.equal(r.code, 0, r.err);
    r = cli(['user', 'alias', 'list', '--data', data]);
    assert.equal(r.out, 'carol@example.com\tcarol\n');
    r = cli(['user', 'quota', 'carol', '--messages', '100', '--storage', '1M', '--data', data]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^carol: storage .* of 1\.0 MiB, messages 5 of 100$/m);
    r = cli(['user', 'alias', 'del', 'carol@example.com', '--data', data]);
    assert.equal(r.code, 0, r.err);
    r = cli(['import', 'maildir', src, '--user', 'nobody', '--data', data]);
    assert.equal(r.code, 1);
    assert.match(r.err, /no such user/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

// The peer lives in shared/ beside the checkout (CI clones elsewhere with a copy of shared/ beside it).
const PEER = DOVECOT_PEER;

function peer(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => execFile('bash', [PEER, ...args], { timeout: 300_000 }, (e, so, se) => resolve({ code: e ? 1 : 0, out: String(so) + String(se) })));
}

test('import from a local Dovecot Maildir with several folders, compared with what Dovecot serves', async (t) => {
  if (!existsSync(PEER) || (await peer(['start'])).code !== 0) {
    console.log('# SKIP: the Dovecot peer could not be started');
    return t.skip('no Dovecot peer');
  }
  const user = `quireimp${process.pid}${Date.now() % 100000}`;
  assert.equal((await peer(['adduser', user, 'pass'])).code, 0);
  const env = Object.fromEntries((await peer(['env'])).out.trim().split(/\s+/).map((kv) => kv.split('=') as [string, string]));
  const port = Number(env.DOVECOT_PEER_PORT ?? 10143);
  const mailDir = path.join(env.DOVECOT_PEER_DIR ?? '/tmp/dovecot-peer', 'mail', user, 'Maildir');
  const dir = await tmp('quire-dovecot-');
  try {
    for (let i = 1; i <= 3; i++) {
      const f = path.join(dir, `m${i}.eml`);
      await writeFile(f, `From: sender${i}@example.com\nTo: ${user}@example.com\nSubject: delivered ${i}\nMessage-ID: <d${i}@example.com>\n\nBody ${i}\n.line with dot\n`);
      assert.equal((await peer(['deliver', user, f])).code, 0);
    }
    const c = await RawClient.connect(port, { login: [user, 'pass'] });
    await c.command('CREATE "Lists/Work"');
    await c.command('CREATE Archive');
    await c.command('SELECT INBOX');
    await c.command('STORE 1 +FLAGS (\\Seen $Label1)');
    await c.command('STORE 2 +FLAGS (\\Flagged \\Answered Custom)');
    await c.command('COPY 1:2 "Lists/Work"');
    await c.command('MOVE 3 Archive');
    await c.append('Archive', 'Subject: appended\r\n\r\nhello\r\n', '(\\Seen \\Draft Later)');
    const expected = new Map<string, { uidValidity: number; msgs: { uid: number; flags: string[]; body: string }[] }>();
    for (const mb of ['INBOX', 'Lists/Work', 'Archive']) {
      const sel = await c.command(`EXAMINE "${mb}"`);
      const uidValidity = Number(/UIDVALIDITY (\d+)/.exec(sel.raw)![1]);
      const f = await c.command('UID FETCH 1:* (UID FLAGS BODY.PEEK[])');
      const msgs = f.untagged
        .filter((l) => /^\* \d+ FETCH/.test(l))
        .map((l) => {
          const uid = Number(/UID (\d+)/.exec(l)![1]);
          const flags = /FLAGS \(([^)]*)\)/.exec(l)![1]!.split(' ').filter((x) => x && x !== '\\Recent').sort();
          const body = l.slice(l.indexOf('}\r\n') + 3).replace(/\)$/, '');
          return { uid, flags, body };
        });
      expected.set(mb, { uidValidity, msgs });
    }
    await c.command('LOGOUT');
    await c.close();

    await withStore(async (store, userId) => {
      const folders = await readMaildir(mailDir);
      await importFolders(store, userId, folders);
      for (const [name, want] of expected) {
        const mb = (await store.getMailbox(userId, name))!;
        assert.ok(mb, name);
        assert.equal(mb.uidValidity, want.uidValidity, `${name} UIDVALIDITY`);
        const got = await store.listMessages(mb.id);
        assert.deepEqual(got.map((m) => m.uid), want.msgs.map((m) => m.uid), `${name} UIDs`);
        for (const [i, m] of got.entries()) {
          assert.deepEqual(m.flags.slice().sort(), want.msgs[i]!.flags, `${name} ${m.uid} flags`);
          const b = (await store.openMessage(mb.id, m.uid))!;
          assert.equal((await b.read(0, b.size)).toString('utf8'), want.msgs[i]!.body, `${name} ${m.uid} bytes as Dovecot serves them`);
        }
      }
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
