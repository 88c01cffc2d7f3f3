// Pipelined bursts answered in one write (src/server/output.ts): the output
// stays corked from one pipelined command to the next. Each command must
// still get its own complete answer in order, and a command whose output
// filled the socket's buffer must not leave the next one waiting for a
// 'drain' a corked socket never emits.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient, message } from '../helpers/imap.js';

let srv: TestServer;
/** Enough messages for `* SEARCH 1 2 ...` to pass OUTPUT_COALESCE_BYTES (64 KiB) in one piece. */
const MESSAGES = 14_000;

before(async () => {
  srv = await startTestServer();
  const inbox = (await srv.store.getMailbox((await srv.store.getUser('alice'))!.id, 'INBOX'))!;
  for (let i = 0; i < MESSAGES; i += 1000) {
    await srv.store.appendMessages(inbox.id, Array.from({ length: 1000 }, (_, k) => ({ data: Buffer.from(message(i + k + 1)), flags: k % 3 ? [] : ['\\Seen'] })));
  }
});

after(async () => {
  await srv.stop();
});

/** Reads lines until the tagged reply of `tag`; returns every line read. */
async function until(c: RawClient, tag: string): Promise<string[]> {
  return c.readUntil((l) => l.startsWith(`${tag} `), 30_000);
}

test('a pipelined burst: every command answered completely and in order', async () => {
  const c = await RawClient.connect(srv.port, { login: ['alice', 'secret-a'] });
  c.write('s SELECT INBOX\r\n');
  await until(c, 's');
  // One write from the client: the server has all of them in its decoder at once.
  c.write('a1 NOOP\r\na2 FETCH 1:3 (UID FLAGS)\r\na3 UID FETCH 5 (FLAGS)\r\na4 NOOP\r\n');
  const lines = await until(c, 'a4');
  const tagged = lines.filter((l) => /^a\d /.test(l));
  assert.deepEqual(tagged.map((l) => l.split(' ').slice(0, 2).join(' ')), ['a1 OK', 'a2 OK', 'a3 OK', 'a4 OK']);
  // (\Recent as well where this session claimed it: RFC 3501 §2.3.2; not what is tested here.)
  const fetches = lines.filter((l) => /^\* \d+ FETCH /.test(l)).map((l) => l.replace(/ ?\\Recent/, ''));
  assert.deepEqual(fetches, ['* 1 FETCH (UID 1 FLAGS (\\Seen))', '* 2 FETCH (UID 2 FLAGS ())', '* 3 FETCH (UID 3 FLAGS ())', '* 5 FETCH (UID 5 FLAGS ())']);
  // The FETCH responses of a2 come before its tagged reply, a3's after it.
  const at = (re: RegExp) => lines.findIndex((l) => re.test(l));
  assert.ok(at(/^\* 3 FETCH/) < at(/^a2 /));
  assert.ok(at(/^\* 5 FETCH/) > at(/^a2 /));
  await c.command('LOGOUT').catch(() => undefined);
});

test('a big answer inside a burst does not stall the command after it', async () => {
  const c = await RawClient.connect(srv.port, { login: ['alice', 'secret-a'] });
  c.write('s SELECT INBOX\r\n');
  await until(c, 's');
  // SEARCH ALL answers ~80 KB in one piece: written straight to the (corked) socket, over its
  // high-water mark. The NOOP behind it waits for the socket to drain, which needs it uncorked.
  c.write('b1 SEARCH ALL\r\nb2 NOOP\r\nb3 SEARCH ALL\r\nb4 NOOP\r\n');
  const lines = await until(c, 'b4');
  const searches = lines.filter((l) => l.startsWith('* SEARCH '));
  assert.equal(searches.length, 2);
  for (const s of searches) assert.equal(s.split(' ').length - 2, MESSAGES);
  assert.deepEqual(
    lines.filter((l) => /^b\d /.test(l)).map((l) => l.split(' ').slice(0, 2).join(' ')),
    ['b1 OK', 'b2 OK', 'b3 OK', 'b4 OK'],
  );
  await c.command('LOGOUT').catch(() => undefined);
});
