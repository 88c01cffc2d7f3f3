// Python's imaplib as a real UTF8=ACCEPT client (RFC 6855): ENABLE, a UTF-8
// mailbox tree, APPEND (imaplib's own UTF8 framing, see src/commands/utf8.ts
// unwrapMisframedUtf8), STATUS, SELECT, SEARCH without CHARSET (and imaplib's
// refusal of one), FETCH; then a legacy imaplib session on the same mailbox:
// modified UTF-7 names, the RFC 6857 downgraded ENVELOPE, CHARSET UTF-8 search.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { INTEROP_DIR, requireTool, runTool } from './harness.js';
import { decodeEncodedWords } from '../../src/mime/index.js';

let ts: TestServer;
before(async () => {
  ts = await startTestServer();
});
after(async () => {
  await ts.stop();
});

test('imaplib with UTF8=ACCEPT, and a legacy imaplib session beside it', async (t) => {
  if (!requireTool(t, 'python3')) return;
  const run = await runTool('python3', [join(INTEROP_DIR, 'imaplib_utf8.py')], {
    env: { QUIRE_PORT: String(ts.port), QUIRE_USER: 'alice', QUIRE_PASS: 'secret-a', PYTHONIOENCODING: 'utf-8' },
    timeoutMs: 60_000,
  });
  const out = JSON.parse(run.stdout.trim().split('\n').pop() || '{}');
  assert.equal(out.ok, true, `${out.error}\n${out.trace}\n${run.stderr}`);
  const r = out.r;
  assert.ok(r.caps.includes('UTF8=ACCEPT'), r.caps.join(' '));
  assert.deepEqual(r.enable, ['OK', 'UTF8=ACCEPT', true]);
  assert.equal(r.create, 'OK');
  assert.match(r.list, /\(\\HasChildren\) "\/" "Entwürfe"/);
  assert.match(r.list, /\(\\HasNoChildren\) "\/" "Entwürfe\/日本"/);
  assert.match(r.append, /^\[APPENDUID \d+ 1\]/);
  assert.match(r.status, /"Entwürfe\/日本" \(MESSAGES 1\)/);
  assert.equal(r.select, 'OK');
  assert.equal(r.search, '1');
  assert.match(r.searchCharset, /^refused/);
  assert.equal(r.bodySame, true, 'the stored message is what imaplib appended');
  assert.ok(r.fetch.includes('Grüße aus München') && r.fetch.includes('jörg') && r.fetch.includes('例え.jp'), r.fetch);

  assert.match(r.legacyList, /"\/" Entw&APw-rfe\/&ZeVnLA-/);
  assert.equal(r.legacySelect, 'OK');
  assert.ok(!/[^\x00-\x7f]/.test(r.legacyEnvelope), r.legacyEnvelope);
  const subject = /ENVELOPE \((?:NIL|"[^"]*") "([^"]*)"/.exec(r.legacyEnvelope)![1]!;
  assert.equal(decodeEncodedWords(subject), 'Grüße aus München');
  assert.match(r.legacyEnvelope, /"yamada" "xn--r8jz45g\.jp"/);
  assert.equal(r.legacySearch, '1');
});
