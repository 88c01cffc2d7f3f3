// SEARCH on From/To/Cc/Bcc/Subject and SENT* (and message-list FETCH) is answered from the store's
// header index, without opening message files: proven by removing the body
// files from disk, after which only content keys (BODY) fail.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient, message } from '../helpers/imap.js';

let srv: TestServer;
// The body cache off: what is proven is that no file is read, and cached bodies would answer without one.
before(async () => { srv = await startTestServer({ storeOptions: { bodyCacheBytes: 0 } }); });
after(async () => { await srv.stop(); });

test('header keys use the index; content keys need the message', async () => {
  const c = await RawClient.connect(srv.port, { login: ['alice', 'secret-a'] });
  await c.command('CREATE Ix');
  await c.append('Ix', message(1, { from: '=?utf-8?q?J=C3=BCrgen?= <j@example.com>', subject: 'Quarterly report' }));
  await c.append('Ix', message(2, { from: 'Other <o@example.org>', subject: '=?iso-8859-1?q?Gr=FC=DFe?=' }));
  await c.command('SELECT Ix');
  assert.equal((await c.command('SEARCH BODY "message 2"')).untagged[0], '* SEARCH 2');
  await rm(path.join(srv.dataDir, 'blobs'), { recursive: true, force: true });
  assert.equal((await c.command('SEARCH CHARSET UTF-8 FROM "jürgen"')).untagged[0], '* SEARCH 1');
  assert.equal((await c.command('SEARCH SUBJECT "GRÜSSE"')).untagged[0], '* SEARCH', 'ß is not folded to SS');
  assert.equal((await c.command('SEARCH CHARSET UTF-8 SUBJECT "grüße"')).untagged[0], '* SEARCH 2');
  assert.equal((await c.command('SEARCH OR SUBJECT quarterly TO alice')).untagged[0], '* SEARCH 1 2');
  assert.equal((await c.command('SEARCH SENTON 7-Feb-1994')).untagged[0], '* SEARCH 1 2');
  assert.equal((await c.command('SEARCH SENTBEFORE 7-Feb-1994')).untagged[0], '* SEARCH');
  // Message lists need no file either: ENVELOPE, BODYSTRUCTURE and header fields come from the store.
  const list = await c.command('FETCH 1:2 (ENVELOPE BODYSTRUCTURE BODY.PEEK[HEADER.FIELDS (Subject)])');
  assert.match(list.tagged, / OK/);
  assert.match(list.untagged[0]!, /ENVELOPE \("Mon, 7 Feb 1994 21:52:25 -0800" "Quarterly report"/);
  assert.ok(list.untagged[1]!.includes('Subject: =?iso-8859-1?q?Gr=FC=DFe?=\r\n\r\n'), list.raw);
  // A content key must read the (now missing) files: it cannot succeed.
  const body = await c.command('SEARCH BODY "message 2"');
  assert.notEqual(body.untagged[0], '* SEARCH 2');
  await c.close();
});
