// What a second session is told, and when, about changes it never saw
// happen: three defects found by the mixed-load benchmark (issue 11), each
// reproduced with two sessions over real sockets.
//  - RFC 9051 §7.5.1 / §7.4.1: no EXPUNGE or EXISTS for a message the session
//    was never told about (appended and expunged between two of its commands).
//  - RFC 9051 §7.3.5, §7.5.2: a keyword appears in FETCH only after a FLAGS
//    response that defines it.
//  - RFC 9051 §6.1.3: LOGOUT is `* BYE` and then the tagged OK, nothing between.
// Dovecot (the reference peer) behaves the same in each case.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient, message } from '../helpers/imap.js';

let srv: TestServer;
const login = ['alice', 'secret-a'] as [string, string];
before(async () => { srv = await startTestServer(); });
after(async () => { await srv.stop(); });

let n = 0;
/** Two sessions (IMAP4rev2) with the same new mailbox selected; `count` messages in it first. */
async function pair(count = 0): Promise<{ a: RawClient; b: RawClient; box: string }> {
  const box = `Su${++n}`;
  const b = await RawClient.connect(srv.port, { login });
  await b.command('ENABLE IMAP4rev2');
  await b.command(`CREATE ${box}`);
  for (let i = 1; i <= count; i++) await b.append(box, message(i));
  const a = await RawClient.connect(srv.port, { login });
  await a.command('ENABLE IMAP4rev2');
  await a.command(`SELECT ${box}`);
  await b.command(`SELECT ${box}`);
  return { a, b, box };
}

test('a message appended and expunged between two commands of a session produces neither EXPUNGE nor EXISTS there', async () => {
  const { a, b, box } = await pair();
  await b.append(box, message(1), '(\\Deleted)');
  await b.command('EXPUNGE');
  const r = await a.command('NOOP');
  assert.deepEqual(r.untagged, [], r.raw);
  // The session still works with the right count.
  await b.append(box, message(2));
  assert.deepEqual((await a.command('NOOP')).untagged, ['* 1 EXISTS']);
  await a.close();
  await b.close();
});

test('known messages expunged and unseen ones appended-then-expunged: EXPUNGE only for known ones, EXISTS counts what is left', async () => {
  const { a, b, box } = await pair(2);
  // A knows UIDs 1, 2. B appends 3 (\Deleted) and 4, marks 1 \Deleted, expunges 1 and 3.
  await b.append(box, message(3), '(\\Deleted)');
  await b.append(box, message(4));
  await b.command('STORE 1 +FLAGS.SILENT (\\Deleted)');
  await b.command('EXPUNGE');
  const r = await a.command('NOOP');
  assert.deepEqual(r.untagged, ['* 1 EXPUNGE', '* 2 EXISTS'], r.raw);
  assert.deepEqual((await a.command('UID FETCH 1:* (UID)')).untagged, ['* 1 FETCH (UID 2)', '* 2 FETCH (UID 4)']);
  await a.close();
  await b.close();
});

test('FETCH sends the FLAGS response defining a new keyword before a message that carries it', async () => {
  const { a, b } = await pair(1);
  await b.command('STORE 1 +FLAGS.SILENT ($Fresh1)');
  const r = await a.command('FETCH 1 (FLAGS)');
  const flagsAt = r.untagged.findIndex((l) => l.startsWith('* FLAGS (') && l.includes('$Fresh1'));
  const fetchAt = r.untagged.findIndex((l) => /^\* 1 FETCH .*\$Fresh1/.test(l));
  assert.ok(flagsAt >= 0, `no FLAGS response with the new keyword: ${r.raw}`);
  assert.ok(fetchAt > flagsAt, `FETCH showed the keyword before FLAGS defined it: ${r.raw}`);
  assert.equal(r.untagged.filter((l) => l.startsWith('* FLAGS (')).length, 1, r.raw);
  // The metadata-only path (many messages in one write) and the message path (ENVELOPE) both do it.
  await b.command('STORE 1 +FLAGS.SILENT ($Fresh2)');
  const r2 = await a.command('FETCH 1 (FLAGS ENVELOPE)');
  const f2 = r2.untagged.findIndex((l) => l.startsWith('* FLAGS (') && l.includes('$Fresh2'));
  const m2 = r2.untagged.findIndex((l) => /^\* 1 FETCH .*\$Fresh2/.test(l));
  assert.ok(f2 >= 0 && m2 > f2, r2.raw);
  await a.close();
  await b.close();
});

test('LOGOUT: * BYE and then the tagged OK, with pending mailbox updates not sent between them', async () => {
  const { a, b, box } = await pair(1);
  await b.command('STORE 1 +FLAGS.SILENT (\\Flagged)');
  await b.append(box, message(2));
  a.write('z LOGOUT\r\n');
  const lines: string[] = [];
  for (;;) {
    const l = await a.readLine();
    lines.push(l);
    if (l.startsWith('z ')) break;
  }
  assert.deepEqual(lines, ['* BYE Logging out', 'z OK LOGOUT completed'], lines.join('\n'));
  await b.close();
});
