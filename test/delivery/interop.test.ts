// LMTP driven by real third-party clients: Python's smtplib.LMTP (stdlib) and
// swaks (Debian package "swaks"). A missing client is skipped visibly, except
// under CI where it must be present.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startTestServer } from '../helpers/server.js';
import { startLmtp } from '../../src/delivery/server.js';
import { lmtpOptions } from './helpers.js';

function has(cmd: string, args: string[]): boolean {
  return spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
}

function skipReason(cmd: string, args: string[], pkg: string): string | false {
  if (has(cmd, args)) return false;
  if (process.env.CI) throw new Error(`${cmd} is required under CI (Debian package ${pkg})`);
  console.log(`# SKIP: ${cmd} not installed (apt-get install ${pkg})`);
  return `${cmd} not installed`;
}

function run(cmd: string, args: string[], input?: string): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = execFile(cmd, args, { timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, out: String(stdout), err: String(stderr) });
    });
    if (input !== undefined) p.stdin!.end(input);
  });
}

async function setup() {
  const ts = await startTestServer();
  const dir = await mkdtemp(path.join(tmpdir(), 'quire-lmtp-'));
  const sock = path.join(dir, 'lmtp.sock');
  const lmtp = await startLmtp(ts.store, lmtpOptions((o) => (o.socket = sock)));
  return {
    ts,
    port: lmtp.addresses.tcp[0]!.port,
    sock,
    async count(user: string) {
      const u = (await ts.store.getUser(user))!;
      return (await ts.store.mailboxStatus((await ts.store.getMailbox(u.id, 'INBOX'))!.id)).messages;
    },
    async stop() {
      await lmtp.close();
      await ts.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

// One transaction with three recipients; per-recipient replies after DATA are read with getreply().
const PY = `
import smtplib, sys, json
target = sys.argv[1]
c = smtplib.LMTP(target, int(sys.argv[2])) if not target.startswith('/') else smtplib.LMTP(target)
c.ehlo_or_helo_if_needed()
out = {"esmtp": sorted(c.esmtp_features.keys())}
c.mail('sender@example.org')
rcpts = ['alice@example.com', 'nobody@example.com', 'bob@example.com']
ok = []
out["rcpt"] = []
for r in rcpts:
    code, msg = c.rcpt(r)
    out["rcpt"].append(code)
    if code == 250: ok.append(r)
msg = b"From: sender@example.org\\r\\nSubject: via python\\r\\n\\r\\n.dot line\\r\\nbody\\r\\n"
code, _ = c.data(msg)
replies = [code]
for _ in ok[1:]:
    replies.append(c.getreply()[0])
out["data"] = replies
c.quit()
print(json.dumps(out))
`;

test('Python smtplib.LMTP over TCP and over the Unix socket', async (t) => {
  const skip = skipReason('python3', ['-c', 'import smtplib; smtplib.LMTP'], 'python3');
  if (skip) return t.skip(skip);
  const s = await setup();
  try {
    for (const args of [['127.0.0.1', String(s.port)], [s.sock]]) {
      const r = await run('python3', ['-c', PY, ...args]);
      assert.equal(r.code, 0, r.err);
      const out = JSON.parse(r.out) as { esmtp: string[]; rcpt: number[]; data: number[] };
      assert.ok(['pipelining', 'enhancedstatuscodes', '8bitmime', 'size'].every((f) => out.esmtp.includes(f)), out.esmtp.join(','));
      assert.deepEqual(out.rcpt, [250, 550, 250]);
      assert.deepEqual(out.data, [250, 250]);
    }
    assert.equal(await s.count('alice'), 2);
    assert.equal(await s.count('bob'), 2);
  } finally {
    await s.stop();
  }
});

test('swaks --protocol LMTP over TCP (pipelined) and over the Unix socket', async (t) => {
  const skip = skipReason('swaks', ['--version'], 'swaks');
  if (skip) return t.skip(skip);
  const s = await setup();
  try {
    const common = ['--protocol', 'LMTP', '--from', 'sender@example.org', '--h-Subject', 'via swaks', '--body', '.leading dot\n..two\nend', '--helo', 'swaks.test'];
    let r = await run('swaks', [...common, '--server', '127.0.0.1', '--port', String(s.port), '--to', 'alice@example.com,bob@example.com', '--pipeline']);
    assert.equal(r.code, 0, r.out + r.err);
    assert.match(r.out, /<-\s+250 2\.0\.0 <alice@example\.com> Saved/);
    assert.match(r.out, /<-\s+250 2\.0\.0 <bob@example\.com> Saved/);
    r = await run('swaks', [...common, '--socket', s.sock, '--to', 'alice@example.com']);
    assert.equal(r.code, 0, r.out + r.err);
    // An unknown recipient is refused at RCPT; swaks exits non-zero.
    r = await run('swaks', [...common, '--server', '127.0.0.1', '--port', String(s.port), '--to', 'nobody@example.com']);
    assert.notEqual(r.code, 0);
    assert.match(r.out, /550 5\.1\.1/);
    assert.equal(await s.count('alice'), 2);
    assert.equal(await s.count('bob'), 1);
    // The dot-stuffed body arrived unstuffed.
    const u = (await s.ts.store.getUser('alice'))!;
    const mb = (await s.ts.store.getMailbox(u.id, 'INBOX'))!;
    const [first] = await s.ts.store.listMessages(mb.id);
    const body = (await s.ts.store.openMessage(mb.id, first!.uid))!;
    const text = (await body.read(0, body.size)).toString('latin1');
    assert.match(text, /\r\n\r\n\.leading dot\r\n\.\.two\r\nend\r\n/);
  } finally {
    await s.stop();
  }
});
