// RFC 8474 §5.2 THREADID over a socket: the §5.2 example (a reply shares its
// parent's THREADID, MOVE keeps EMAILID and THREADID), a reply delivered
// before its parent, siblings of a missing root, a message in another
// mailbox, and stability: when a later message names two threads, neither
// changes (MUST NOT change once reported). SEARCH THREADID, also where the
// evaluator runs (with MODSEQ) and from a second session. Dovecot 2.3 does
// not offer OBJECTID, so there is nothing to compare with.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient } from '../helpers/imap.js';

let srv: TestServer;
const login: [string, string] = ['alice', 'secret-a'];
before(async () => { srv = await startTestServer(); });
after(async () => { await srv.stop(); });

const mail = (subject: string, id: string, refs = '') =>
  `From: a@example.com\r\nSubject: ${subject}\r\nMessage-ID: <${id}@example.com>\r\n${refs ? `References: ${refs.split(' ').map((r) => `<${r}@example.com>`).join(' ')}\r\n` : ''}\r\nbody\r\n`;

/** uid -> [EMAILID, THREADID] of every message of the selected mailbox. */
async function ids(c: RawClient): Promise<Map<number, [string, string]>> {
  const r = await c.command('UID FETCH 1:* (EMAILID THREADID)');
  const out = new Map<number, [string, string]>();
  for (const l of r.untagged) {
    const m = /UID (\d+) EMAILID \(([^\s)]+)\) THREADID \(([^\s)]+)\)/.exec(l);
    assert.ok(m, l);
    out.set(Number(m[1]), [m[2]!, m[3]!]);
  }
  return out;
}

test('RFC 8474 §5.2 example: a reply shares its parent\'s THREADID, another message has its own; MOVE keeps both ids', async () => {
  const c = await RawClient.connect(srv.port, { login });
  await c.command('CREATE t1');
  await c.command('CREATE t1foo');
  await c.append('t1', mail('Message A', 'a1'));
  await c.append('t1', mail('Re: Message A', 'a2', 'a1'));
  await c.append('t1', mail('Message C', 'c1'));
  await c.command('SELECT t1');
  const got = await ids(c);
  const [e1, t1] = got.get(1)!;
  const [e2, t2] = got.get(2)!;
  const [e3, t3] = got.get(3)!;
  assert.equal(t2, t1);
  assert.notEqual(t3, t1);
  // §5.2: THREADIDs and EMAILIDs never share a value.
  for (const t of [t1, t3]) for (const e of [e1, e2, e3]) assert.notEqual(t, e);
  assert.match(t1, /^[A-Za-z0-9_-]{1,255}$/); // objectid, §7
  const mv = await c.command('MOVE 2 t1foo');
  assert.match(mv.raw, /COPYUID \d+ 2 1/);
  await c.command('SELECT t1foo');
  assert.deepEqual((await ids(c)).get(1), [e2, t2]);
  await c.close();
});

test('a reply delivered before its parent, siblings of a missing root, and another mailbox share the thread; a later message naming two threads changes neither', async () => {
  const c = await RawClient.connect(srv.port, { login });
  await c.command('CREATE t2');
  await c.command('CREATE t2other');
  await c.append('t2', mail('Re: p', 'r1', 'p1')); // 1: reply first
  await c.append('t2', mail('p', 'p1')); // 2: its parent
  await c.append('t2', mail('Re: x', 's1', 'x0')); // 3, 4: siblings; <x0> never arrives
  await c.append('t2', mail('Re: x', 's2', 'x0'));
  await c.append('t2other', mail('Re: Re: p', 'r2', 'p1 r1')); // elsewhere
  await c.command('SELECT t2');
  const before = await ids(c);
  const tp = before.get(1)![1];
  const tx = before.get(3)![1];
  assert.equal(before.get(2)![1], tp);
  assert.equal(before.get(4)![1], tx);
  assert.notEqual(tp, tx);
  await c.command('EXAMINE t2other');
  assert.equal((await ids(c)).get(1)![1], tp, 'same conversation in another mailbox (§5.2 SHOULD)');
  // 5 names both threads (nearest reference last): it joins s2's; nothing reported before moves.
  await c.append('t2', mail('Re: both', 'm1', 'p1 s2'));
  await c.command('SELECT t2');
  const after = await ids(c);
  for (const [uid, v] of before) assert.deepEqual(after.get(uid), v, `UID ${uid} kept its ids`);
  assert.equal(after.get(5)![1], tx);
  // SEARCH THREADID (§6): the index's answer, the evaluator's (MODSEQ), a second session's, and an unknown id.
  assert.deepEqual((await c.command(`UID SEARCH THREADID ${tx}`)).untagged, ['* SEARCH 3 4 5']);
  const withModseq = (await c.command(`UID SEARCH MODSEQ 1 THREADID ${tp}`)).untagged.filter((l) => l.startsWith('* SEARCH'));
  assert.match(withModseq.join('\n'), /^\* SEARCH 1 2 \(MODSEQ \d+\)$/);
  assert.deepEqual((await c.command(`SEARCH NOT THREADID ${tp}`)).untagged, ['* SEARCH 3 4 5']);
  assert.deepEqual((await c.command('SEARCH THREADID T999999999')).untagged, ['* SEARCH']);
  assert.deepEqual((await c.command('SEARCH THREADID Mnot-a-thread')).untagged, ['* SEARCH']);
  const d = await RawClient.connect(srv.port, { login });
  await d.command('EXAMINE t2');
  assert.deepEqual(await ids(d), after);
  assert.deepEqual((await d.command(`UID SEARCH THREADID ${tp}`)).untagged, ['* SEARCH 1 2']);
  await c.close();
  await d.close();
});
