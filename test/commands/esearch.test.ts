// MULTISEARCH (RFC 7377): ESEARCH IN (...) over several mailboxes without
// selecting them; every source option, correlators, no answer for mailboxes
// without matches, RETURN options per mailbox, the state and SAVE rules.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient } from '../helpers/imap.js';

let srv: TestServer;
const login = ['alice', 'secret-a'] as [string, string];
const uv = new Map<string, string>();

before(async () => {
  srv = await startTestServer();
  const c = await RawClient.connect(srv.port, { login });
  const put = async (box: string, subject: string, flags = '') => c.append(box, `Subject: ${subject}\r\n\r\nx\r\n`, flags);
  for (const b of ['F1', 'F2', 'F2/a', 'F2/b', 'F2/b/c', 'F3']) await c.command(`CREATE ${b}`);
  await put('F1', 'apple', '(\\Seen)');
  await put('F1', 'banana');
  await put('F1', 'cherry');
  await put('F2/a', 'banana split');
  await put('F2/b/c', 'banana bread');
  await put('F3', 'nothing', '(\\Seen)');
  await put('INBOX', 'banana inbox');
  await c.command('SUBSCRIBE F2/a');
  for (const b of ['INBOX', 'F1', 'F2', 'F2/a', 'F2/b', 'F2/b/c', 'F3']) {
    const r = await c.command(`STATUS ${b} (UIDVALIDITY)`);
    uv.set(b, /UIDVALIDITY (\d+)/.exec(r.untagged[0]!)![1]!);
  }
  await c.close();
});
after(async () => {
  await srv.stop();
});

const line = (box: string, rest: string) => `* ESEARCH (TAG "X") MAILBOX ${box} UIDVALIDITY ${uv.get(box)}) UID ${rest}`;

async function es(c: RawClient, cmd: string): Promise<string[]> {
  const r = await c.command(cmd, 'X');
  assert.match(r.tagged, /^X OK/, `${cmd}: ${r.tagged}`);
  return r.untagged.filter((l) => l.startsWith('* ESEARCH'));
}

test('source options: mailboxes, subtree, subtree-one, personal, inboxes, subscribed; no answer without matches', async () => {
  const c = await RawClient.connect(srv.port, { login });
  assert.ok((await c.command('CAPABILITY')).untagged[0]!.split(' ').includes('MULTISEARCH'));
  const fix = (ls: string[]) => ls.map((l) => l.replace('(TAG "X") MAILBOX', '(TAG "X" MAILBOX'));
  const want = (...ls: string[]) => fix(ls);
  assert.deepEqual(await es(c, 'ESEARCH IN (mailboxes F1 subtree F2) UNSEEN'), want(line('F1', 'ALL 2:3'), line('F2/a', 'ALL 1'), line('F2/b/c', 'ALL 1')));
  assert.deepEqual(await es(c, 'ESEARCH IN (subtree-one F2) SUBJECT banana'), want(line('F2/a', 'ALL 1')));
  assert.deepEqual(await es(c, 'ESEARCH IN (mailboxes (F3 F1)) SUBJECT apple'), want(line('F1', 'ALL 1')));
  assert.deepEqual(await es(c, 'ESEARCH IN (inboxes) ALL'), want(line('INBOX', 'ALL 1')));
  // INBOX is subscribed from the start.
  assert.deepEqual(await es(c, 'ESEARCH IN (subscribed) ALL'), want(line('F2/a', 'ALL 1'), line('INBOX', 'ALL 1')));
  const personal = await es(c, 'ESEARCH IN (personal) RETURN (COUNT MIN) SUBJECT banana');
  assert.deepEqual(personal.sort(), want(line('F1', 'MIN 2 COUNT 1'), line('F2/a', 'MIN 1 COUNT 1'), line('F2/b/c', 'MIN 1 COUNT 1'), line('INBOX', 'MIN 1 COUNT 1')).sort());
  // Duplicates are searched once; unknown mailboxes are skipped; no matches anywhere: no responses.
  assert.deepEqual(await es(c, 'ESEARCH IN (mailboxes F1 mailboxes F1 mailboxes NoSuch) SUBJECT cherry'), want(line('F1', 'ALL 3')));
  assert.deepEqual(await es(c, 'ESEARCH IN (personal) SUBJECT "no such words"'), []);
  assert.deepEqual(await es(c, 'ESEARCH IN (personal ()) RETURN (COUNT) SUBJECT "no such words"'), []);
  await c.close();
});

test('selected, state and SAVE rules; searching does not change the selected mailbox', async () => {
  const c = await RawClient.connect(srv.port, { login });
  for (const bad of [
    'ESEARCH IN (selected) ALL',
    'ESEARCH ALL',
    'ESEARCH IN (selected-delayed) ALL',
    'ESEARCH IN (nosuch) ALL',
    'ESEARCH IN () ALL',
    'ESEARCH IN (personal (FOO)) ALL',
    'ESEARCH IN (personal) RETURN (SAVE) ALL',
    'ESEARCH IN (personal)',
  ]) assert.match((await c.command(bad)).tagged, /BAD/, bad);
  await c.command('SELECT F1');
  const fix = (l: string) => l.replace('(TAG "X") MAILBOX', '(TAG "X" MAILBOX');
  assert.deepEqual(await es(c, 'ESEARCH UNSEEN'), [fix(line('F1', 'ALL 2:3'))]);
  assert.deepEqual(await es(c, 'ESEARCH IN (selected mailboxes F2/a) SUBJECT banana'), [fix(line('F1', 'ALL 2')), fix(line('F2/a', 'ALL 1'))]);
  // SAVE with selected alone: "$" is set.
  const r = await c.command('ESEARCH IN (selected) RETURN (SAVE) SUBJECT cherry', 'X');
  assert.match(r.tagged, /OK/);
  assert.deepEqual((await c.command('UID SEARCH $')).untagged, ['* SEARCH 3']);
  // Still F1 selected.
  assert.deepEqual((await c.command('SEARCH ALL')).untagged, ['* SEARCH 1 2 3']);
  await c.close();
});
