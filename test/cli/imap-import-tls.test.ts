// `quire import imap` (imapflow) from a source with a self-signed
// certificate: refused without trust, accepted with --ca-file naming that
// certificate, or with --insecure; messages, flags and dates arrive.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { startTestServer } from '../helpers/server.js';
import { RawClient, message } from '../helpers/imap.js';
import { runProcess } from '../helpers/process.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';

const ROOT = new URL('../../', import.meta.url).pathname;

function quire(args: string[], stdin?: string) {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('QUIRE_') && v !== undefined) env[k] = v;
  return runProcess(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args], { cwd: ROOT, env, stdin });
}

test('import over TLS from a self-signed source: refused, then --ca-file, then --insecure', { timeout: 90_000 }, async () => {
  const src = await startTestServer();
  try {
    const c = await RawClient.connect(src.port, { login: ['alice', 'secret-a'] });
    for (let i = 1; i <= 3; i++) assert.match((await c.append('INBOX', message(i), '(\\Flagged Work) "02-Jan-2025 03:04:05 +0000"')).tagged, /OK/);
    await c.command('LOGOUT');
    const dir = mkdtempSync(join(tmpdir(), 'quire-imptls-'));
    const data = join(dir, 'data');
    const ca = join(dir, 'source-cert.pem');
    writeFileSync(ca, src.cert);
    assert.equal((await quire(['user', 'add', 'bob', '--data', data])).code, 0);
    const url = `imaps://alice@127.0.0.1:${src.tlsPort}/`;

    const refused = await quire(['import', 'imap', url, '--password-stdin', '--user', 'bob', '--data', data], 'secret-a\n');
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /cannot connect to 127\.0\.0\.1:\d+: .*(self[- ]signed|certificate)/i);

    const trusted = await quire(['import', 'imap', url, '--ca-file', ca, '--password-stdin', '--user', 'bob', '--data', data], 'secret-a\n');
    assert.equal(trusted.code, 0, trusted.stderr);
    assert.match(trusted.stdout, /^imported 3 message\(s\) into \d+ mailbox\(es\)\n$/);

    const insecure = await quire(['import', 'imap', url, '--insecure', '--password-stdin', '--user', 'bob', '--data', data], 'secret-a\n');
    assert.equal(insecure.code, 0, insecure.stderr);
    assert.match(insecure.stdout, /imported 0 message\(s\).*; 3 already present/);

    const wrong = await quire(['import', 'imap', url, '--insecure', '--password-stdin', '--user', 'bob', '--data', data], 'wrong\n');
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.stderr, /authentication failed for alice/);

    const store = await openSqliteStore({ dataDir: data });
    try {
      const bob = (await store.getUser('bob'))!;
      const inbox = (await store.getMailbox(bob.id, 'INBOX'))!;
      const msgs = await store.listMessages(inbox.id);
      assert.deepEqual(msgs.map((m) => m.uid), [1, 2, 3]);
      assert.deepEqual(msgs[0]!.flags.slice().sort(), ['Work', '\\Flagged']);
      assert.equal(msgs[0]!.internalDate, Date.UTC(2025, 0, 2, 3, 4, 5));
      const b = (await store.openMessage(inbox.id, 2))!;
      assert.equal((await b.read(0, b.size)).toString(), message(2));
    } finally {
      await store.close();
    }
  } finally {
    await src.stop();
  }
});
