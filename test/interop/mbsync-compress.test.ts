// mbsync (isync 1.4+) turns on COMPRESS=DEFLATE whenever the server offers
// it (it has no option to ask for it; 1.5 adds one to refuse it). A two-way
// sync over STARTTLS with compression: the server's log shows COMPRESS was
// negotiated on each run, and both sides end with the same messages.
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { requireTool, runTool, scratchDir } from './harness.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient } from '../helpers/imap.js';

let srv: TestServer;
let scratch: string;
const started: string[] = [];

before(async () => {
  srv = await startTestServer({
    users: [['sync', 'sync-pass-1']],
    tweak: (o) => {
      const base = o.log;
      o.log = {
        debug: (m) => { if (m === 'compression started') started.push(m); },
        info() {},
        warn() {},
        error: (m, f) => base.error(m, f),
      };
    },
  });
  scratch = scratchDir('mbsync-z');
});
after(async () => {
  await srv?.stop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

const body = (i: number, tag: string) => `From: a@example.com\r\nTo: sync@example.com\r\nSubject: ${tag} ${i}\r\nMessage-ID: <${tag}-${i}@example.com>\r\n\r\n${'compressible text line\r\n'.repeat(200)}`;

test('mbsync: two-way sync with COMPRESS=DEFLATE negotiated', async (t) => {
  if (!requireTool(t, 'mbsync', 'isync')) return;
  const c = await RawClient.connect(srv.port, { login: ['sync', 'sync-pass-1'] });
  for (let i = 0; i < 10; i++) assert.match((await c.append('INBOX', body(i, 'server'))).tagged, /OK/);
  await c.close();

  const mail = join(scratch, 'mail');
  mkdirSync(mail, { recursive: true });
  const certPath = join(scratch, 'cert.pem');
  writeFileSync(certPath, srv.cert);
  const cfg = join(scratch, 'mbsyncrc');
  writeFileSync(cfg, [
    'IMAPAccount q', 'Host localhost', `Port ${srv.port}`, 'User sync', 'Pass sync-pass-1',
    'SSLType STARTTLS', 'SystemCertificates no', `CertificateFile ${certPath}`, '',
    'IMAPStore q-remote', 'Account q', '',
    'MaildirStore local', `Path ${mail}/`, `Inbox ${mail}/INBOX`, 'SubFolders Verbatim', '',
    'Channel q', 'Far :q-remote:', 'Near :local:', 'Patterns *', 'Create Both', 'Expunge Both', 'Sync All', 'SyncState *', '',
  ].join('\n'));
  const sync = async (what: string) => {
    const r = await runTool('mbsync', ['-c', cfg, '-a'], { timeoutMs: 60_000 });
    assert.equal(r.code, 0, `mbsync (${what}) failed:\n${r.stdout}\n${r.stderr}`);
  };

  await sync('first');
  assert.ok(started.length >= 1, 'mbsync sent COMPRESS DEFLATE');
  const files = () => ['new', 'cur'].flatMap((d) => readdirSync(join(mail, 'INBOX', d)).map((f) => join(mail, 'INBOX', d, f)));
  assert.equal(files().length, 10, 'server messages reached the Maildir');
  // A local message goes up.
  writeFileSync(join(mail, 'INBOX', 'new', `${Date.now()}.local.localhost`), body(0, 'local').replace(/\r\n/g, '\n'));
  const before2 = started.length;
  await sync('second');
  assert.ok(started.length > before2, 'the second run compressed, too');
  const v = await RawClient.connect(srv.port, { login: ['sync', 'sync-pass-1'] });
  await v.command('SELECT INBOX');
  const s = await v.command('SEARCH HEADER Message-ID <local-0@example.com>');
  assert.match(s.untagged.join('\n'), /^\* SEARCH \d+/m, 'local message reached the server');
  const st = await v.command('STATUS INBOX (MESSAGES)');
  assert.match(st.untagged.join('\n'), /MESSAGES 11/);
  await v.close();
  assert.ok(files().some((f) => readFileSync(f, 'latin1').includes('<server-9@example.com>')));
});
