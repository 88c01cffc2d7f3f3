// \Recent for IMAP4rev1 sessions (RFC 3501 §2.3.2): a new message is recent
// in exactly one session, the first that learns of it, and never after.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient, message } from '../helpers/imap.js';

let srv: TestServer;
before(async () => { srv = await startTestServer(); });
after(async () => { await srv.stop(); });

test('a message arriving while two rev1 sessions have the mailbox selected is recent in exactly one', async () => {
  const a = await RawClient.connect(srv.port, { login: ['alice', 'secret-a'] });
  const b = await RawClient.connect(srv.port, { login: ['alice', 'secret-a'] });
  await a.command('CREATE Rc');
  assert.match((await a.command('SELECT Rc')).untagged.join('\n'), /\* 0 RECENT/);
  await b.command('SELECT Rc');
  const w = await RawClient.connect(srv.port, { login: ['alice', 'secret-a'] });
  await w.append('Rc', message(1));
  const ra = await a.command('NOOP');
  const rb = await b.command('NOOP');
  const recentOf = (lines: string[]) => Number(/\* (\d+) RECENT/.exec(lines.join('\n'))?.[1]);
  assert.ok(ra.untagged.includes('* 1 EXISTS') && rb.untagged.includes('* 1 EXISTS'));
  assert.equal(recentOf(ra.untagged) + recentOf(rb.untagged), 1, `${ra.raw}\n${rb.raw}`);
  const fa = await a.command('FETCH 1 FLAGS');
  const fb = await b.command('FETCH 1 FLAGS');
  const flagged = [fa, fb].filter((r) => r.untagged[0].includes('\\Recent')).length;
  assert.equal(flagged, 1);
  // A later session never sees it as recent.
  const c = await RawClient.connect(srv.port, { login: ['alice', 'secret-a'] });
  assert.match((await c.command('SELECT Rc')).untagged.join('\n'), /\* 0 RECENT/);
  for (const x of [a, b, c, w]) await x.close();
});

test('an IDLE rev1 session that claims a new message reports it in RECENT', async () => {
  const a = await RawClient.connect(srv.port, { login: ['alice', 'secret-a'] });
  await a.command('CREATE Rc2');
  await a.command('SELECT Rc2');
  a.write('i1 IDLE\r\n');
  assert.match(await a.readLine(), /^\+ /);
  const w = await RawClient.connect(srv.port, { login: ['alice', 'secret-a'] });
  await w.append('Rc2', message(1));
  const lines = await a.readUntil((l) => /RECENT/.test(l), 3000);
  assert.ok(lines.includes('* 1 EXISTS'));
  assert.ok(lines.includes('* 1 RECENT'), lines.join('\n'));
  a.write('DONE\r\n');
  assert.match((await a.collect('i1')).tagged, /^i1 OK/);
  await a.close();
  await w.close();
});
