// imapflow (npm) with `qresync: true` resynchronising against Quire the way an
// offline-capable client does (RFC 7162 §3.2.5): open the mailbox, remember
// UIDVALIDITY and HIGHESTMODSEQ, go offline; another session changes flags,
// expunges and appends; reopen with `{ uidValidity, changedSince }` and check
// that imapflow receives exactly the vanished UIDs ('expunge' events with
// vanished/earlier) and exactly the changed flags ('flags' events with UID and
// MODSEQ), and then, online and idling, live VANISHED and FETCH updates.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ImapFlow } from 'imapflow';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient, message } from '../helpers/imap.js';

let srv: TestServer;
before(async () => {
  srv = await startTestServer();
});
after(async () => {
  await srv.stop();
});

const BOX = 'QresyncBox';

function flow(): ImapFlow {
  return new ImapFlow({
    host: '127.0.0.1',
    port: srv.port,
    secure: false,
    doSTARTTLS: false, // LOGIN without TLS is allowed on loopback (test server default)
    auth: { user: 'alice', pass: 'secret-a' },
    qresync: true,
    logger: false,
  });
}

interface Events {
  expunge: { uid?: number; seq?: number; vanished?: boolean; earlier?: boolean }[];
  flags: { uid?: number; seq: number; modseq?: bigint; flags: string[] }[];
}

function listen(c: ImapFlow): Events {
  const ev: Events = { expunge: [], flags: [] };
  c.on('expunge', (e) => ev.expunge.push({ uid: e.uid, seq: e.seq, vanished: e.vanished, earlier: e.earlier }));
  c.on('flags', (e) => ev.flags.push({ uid: e.uid, seq: e.seq, modseq: e.modseq, flags: [...e.flags].sort() }));
  return ev;
}

async function ok(c: RawClient, cmd: string) {
  const r = await c.command(cmd);
  assert.match(r.tagged, /^\S+ OK/, `${cmd}: ${r.raw}`);
  return r;
}

/** Wait until `cond` holds (events arrive asynchronously while idling). */
async function until(cond: () => boolean, what: string, ms = 5000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('imapflow qresync: reopen after going offline reports exactly the vanished UIDs and changed flags', async () => {
  // Seed five messages (UIDs 1..5).
  const other = await RawClient.connect(srv.port, { login: ['alice', 'secret-a'] });
  await ok(other, `CREATE ${BOX}`);
  for (let i = 1; i <= 5; i++) assert.match((await other.append(BOX, message(i))).tagged, /OK/);

  // First session: open, read the state a client would cache, go offline.
  const first = flow();
  await first.connect();
  assert.ok(first.enabled.has('QRESYNC'), 'imapflow enabled QRESYNC');
  const opened = await first.mailboxOpen(BOX);
  assert.equal(opened.exists, 5);
  const uidValidity = opened.uidValidity;
  const modseq = opened.highestModseq;
  assert.ok(typeof modseq === 'bigint' && modseq > 0n, 'HIGHESTMODSEQ reported');
  const cache = new Map<number, string[]>();
  for await (const m of first.fetch('1:*', { uid: true, flags: true })) cache.set(m.uid, [...(m.flags ?? [])].sort());
  assert.deepEqual([...cache.keys()], [1, 2, 3, 4, 5]);
  await first.logout();

  // While it is offline another client: flags on 2 and 4, expunges 3 and 5, appends one.
  await ok(other, `SELECT ${BOX}`);
  await ok(other, 'UID STORE 2 +FLAGS (\\Seen)');
  await ok(other, 'UID STORE 4 +FLAGS (\\Flagged $Label1)');
  await ok(other, 'UID STORE 3,5 +FLAGS.SILENT (\\Deleted)');
  await ok(other, 'EXPUNGE');
  assert.match((await other.append(BOX, message(6))).tagged, /OK \[APPENDUID \d+ 6\]/);
  // A change to a message and its later expunge: only the expunge must be reported.
  await ok(other, 'UID STORE 1 +FLAGS (\\Answered)');
  await ok(other, 'UID STORE 1 -FLAGS (\\Answered)');

  // Reopen with the cached state.
  const second = flow();
  const ev = listen(second);
  await second.connect();
  const re = await second.mailboxOpen(BOX, { uidValidity, changedSince: modseq });
  assert.equal((re as { qresync?: boolean }).qresync, true, 'QRESYNC accepted (same UIDVALIDITY, HIGHESTMODSEQ present)');
  assert.equal(re.uidValidity, uidValidity);
  assert.equal(re.exists, 4);
  // (imapflow keeps updating the mailbox object; keep the value SELECT gave.)
  const reopenedModseq = re.highestModseq ?? 0n;
  assert.ok(reopenedModseq > modseq, 'HIGHESTMODSEQ grew');
  // Exactly the two expunged UIDs, as VANISHED (EARLIER), each once.
  assert.deepEqual(
    ev.expunge.sort((a, b) => (a.uid ?? 0) - (b.uid ?? 0)),
    [
      { uid: 3, seq: undefined, vanished: true, earlier: true },
      { uid: 5, seq: undefined, vanished: true, earlier: true },
    ],
  );
  // Exactly the existing messages whose modseq moved past `modseq`: 1 (changed
  // and changed back), 2 and 4, and the new 6 (the default known-UID set is
  // 1:UIDNEXT-1, RFC 7162 §3.2.5.1); not the untouched ones.
  const changed = ev.flags.sort((a, b) => (a.uid ?? 0) - (b.uid ?? 0));
  assert.deepEqual(
    changed.map((f) => [f.uid, f.seq, f.flags]),
    [
      [1, 1, []],
      [2, 2, ['\\Seen']],
      [4, 3, ['$Label1', '\\Flagged']],
      [6, 4, []],
    ],
  );
  for (const f of changed) assert.ok(f.modseq !== undefined && f.modseq > modseq, `MODSEQ for UID ${f.uid} is newer than the cached one`);
  // Apply to the cache: it must now equal the server's state.
  for (const e of ev.expunge) cache.delete(e.uid!);
  for (const f of changed) cache.set(f.uid!, f.flags);
  const uidNext = re.uidNext;
  for await (const m of second.fetch(`${Math.max(...cache.keys()) + 1}:*`, { uid: true, flags: true }, { uid: true })) cache.set(m.uid, [...(m.flags ?? [])].sort());
  const truth = new Map<number, string[]>();
  for await (const m of second.fetch('1:*', { uid: true, flags: true })) truth.set(m.uid, [...(m.flags ?? [])].sort());
  assert.deepEqual([...cache.entries()].sort((a, b) => a[0] - b[0]), [...truth.entries()]);
  assert.deepEqual([...truth.keys()], [1, 2, 4, 6]);
  assert.equal(uidNext, 7);

  // Online: while imapflow idles, another session's expunge arrives as VANISHED
  // (not EARLIER) and a flag change as FETCH with UID and MODSEQ.
  ev.expunge.length = 0;
  ev.flags.length = 0;
  const idling = second.idle();
  await new Promise((r) => setTimeout(r, 100));
  await ok(other, 'UID STORE 6 +FLAGS (\\Seen)');
  await until(() => ev.flags.length >= 1, "the 'flags' event for UID 6");
  await ok(other, 'UID STORE 2 +FLAGS.SILENT (\\Deleted)');
  await ok(other, 'UID EXPUNGE 2');
  await until(() => ev.expunge.length >= 1, "the 'expunge' event for UID 2");
  assert.deepEqual(ev.expunge, [{ uid: 2, seq: undefined, vanished: true, earlier: false }]);
  assert.equal(ev.flags[0].uid, 6);
  assert.deepEqual(ev.flags[0].flags, ['\\Seen']);
  assert.ok(ev.flags[0].modseq !== undefined && ev.flags[0].modseq > reopenedModseq);
  // UID 2's \Deleted may be told before its expunge, nothing else.
  for (const f of ev.flags.slice(1)) assert.deepEqual([f.uid, f.flags], [2, ['\\Deleted', '\\Seen']]);
  assert.equal(second.mailbox && second.mailbox.exists, 3);
  await second.logout();
  await idling.catch(() => undefined);

  // A reopen with a stale UIDVALIDITY gets no resync data (RFC 7162 §3.2.5.1).
  const third = flow();
  const ev3 = listen(third);
  await third.connect();
  const r3 = await third.mailboxOpen(BOX, { uidValidity: BigInt(uidValidity) + 1n, changedSince: modseq });
  assert.notEqual((r3 as { qresync?: boolean }).qresync, true);
  assert.deepEqual(ev3.expunge, []);
  assert.deepEqual(ev3.flags, []);
  await third.logout();
  await other.close();
});
