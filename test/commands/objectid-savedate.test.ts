// INTERNALDATE with its zone (RFC 9051 §2.3.3), SAVEDATE (RFC 8514) and
// OBJECTID (RFC 8474) over real sockets, with a second session where another
// writer's messages must carry the same attributes, and LMTP delivery.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import Database from 'better-sqlite3';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient, message } from '../helpers/imap.js';
import { LmtpClient, startTestLmtp } from '../delivery/helpers.js';
import { formatDateTime } from '../../src/wire/index.js';

let srv: TestServer;
const login = ['alice', 'secret-a'] as [string, string];
before(async () => { srv = await startTestServer(); });
after(async () => { await srv.stop(); });

let n = 0;
const fresh = (p: string) => `${p}${++n}`;

function field(line: string, name: string): string {
  const m = new RegExp(`${name} (\\("[^"]*"\\)|"[^"]*"|\\([^)]*\\)|NIL)`).exec(line);
  assert.ok(m, `${name} in ${line}`);
  return m[1]!;
}

test('INTERNALDATE keeps the zone APPEND gave; COPY and MOVE keep it; SEARCH ON compares the day as written', async () => {
  const c = await RawClient.connect(srv.port, { login });
  const a = fresh('Tz');
  const b = fresh('TzB');
  await c.command(`CREATE ${a}`);
  await c.command(`CREATE ${b}`);
  // 04:30 UTC on 3 Dec, written on 2 Dec in -0500; 22:30 UTC on 2 Dec, written on 3 Dec in +0300.
  assert.match((await c.append(a, message(1), '"02-Dec-2026 23:30:00 -0500"')).tagged, / OK /);
  assert.match((await c.append(a, message(2), '"03-Dec-2026 01:30:00 +0300"')).tagged, / OK /);
  assert.match((await c.append(a, message(3), '" 7-Jul-1996 02:44:25 +0530"')).tagged, / OK /);
  await c.command(`SELECT ${a}`);
  const f = await c.command('FETCH 1:* INTERNALDATE');
  assert.deepEqual(f.untagged, [
    '* 1 FETCH (INTERNALDATE " 2-Dec-2026 23:30:00 -0500")',
    '* 2 FETCH (INTERNALDATE " 3-Dec-2026 01:30:00 +0300")',
    '* 3 FETCH (INTERNALDATE " 7-Jul-1996 02:44:25 +0530")',
  ]);
  // RFC 9051 §6.4.4: "disregarding time and timezone" — the day of the date as written.
  assert.deepEqual((await c.command('SEARCH ON 2-Dec-2026')).untagged, ['* SEARCH 1']);
  assert.deepEqual((await c.command('SEARCH ON 3-Dec-2026')).untagged, ['* SEARCH 2']);
  assert.deepEqual((await c.command('SEARCH BEFORE 3-Dec-2026')).untagged, ['* SEARCH 1 3']);
  assert.deepEqual((await c.command('SEARCH SINCE 3-Dec-2026')).untagged, ['* SEARCH 2']);
  // The same answer from the in-memory evaluator (a content key forces it).
  assert.deepEqual((await c.command('SEARCH ON 2-Dec-2026 HEADER Subject ""')).untagged, ['* SEARCH 1']);
  await c.command(`COPY 1 ${b}`);
  await c.command(`MOVE 2 ${b}`);
  await c.command(`EXAMINE ${b}`);
  assert.deepEqual((await c.command('FETCH 1:* INTERNALDATE')).untagged, [
    '* 1 FETCH (INTERNALDATE " 2-Dec-2026 23:30:00 -0500")',
    '* 2 FETCH (INTERNALDATE " 3-Dec-2026 01:30:00 +0300")',
  ]);
  await c.close();
});

test('LMTP delivery stores the server\'s local zone; APPEND without a date likewise', async () => {
  const saved = process.env.TZ;
  process.env.TZ = 'America/New_York';
  const { lmtp, port } = await startTestLmtp(srv.store);
  try {
    const l = await LmtpClient.connect(port);
    await l.line();
    await l.reply(l.send('LHLO client.test\r\n') as never);
    assert.match(await l.cmd('MAIL FROM:<s@example.org>'), /^250/);
    assert.match(await l.cmd('RCPT TO:<bob@example.com>'), /^250/);
    assert.match(await l.cmd('DATA'), /^354/);
    assert.match(await l.cmd(`${message(9)}.`), /^250/);
    const c = await RawClient.connect(srv.port, { login: ['bob', 'secret-b'] });
    await c.append('INBOX', message(10));
    await c.command('EXAMINE INBOX');
    const lines = (await c.command('FETCH 1:* INTERNALDATE')).untagged;
    assert.equal(lines.length, 2);
    for (const line of lines) {
      const shown = field(line, 'INTERNALDATE');
      // New York is -0500 or -0400 (DST), and the text is that zone's wall-clock time.
      const zone = /([+-]\d{4})"$/.exec(shown)![1]!;
      assert.ok(zone === '-0500' || zone === '-0400', shown);
      const ms = Date.parse(shown.slice(1, -1).trim().replace(/^(\d+)-(\w+)-(\d+) /, '$2 $1 $3 '));
      assert.ok(Math.abs(Date.now() - ms) < 600_000, shown);
      assert.equal(shown, `"${formatDateTime(ms, zone === '-0500' ? -300 : -240)}"`);
    }
    await c.close();
    await l.cmd('QUIT');
  } finally {
    await lmtp.close();
    if (saved === undefined) delete process.env.TZ;
    else process.env.TZ = saved;
  }
});

test('SAVEDATE: set at APPEND whatever INTERNALDATE says; a COPY/MOVE gets its own; SAVED* and SAVEDATESUPPORTED search', async () => {
  const c = await RawClient.connect(srv.port, { login });
  const a = fresh('Sv');
  const b = fresh('SvB');
  await c.command(`CREATE ${a}`);
  await c.command(`CREATE ${b}`);
  const t0 = Date.now();
  await c.append(a, message(1), '" 1-Jan-2000 10:00:00 +0100"');
  await c.append(a, message(2));
  await c.command(`SELECT ${a}`);
  const f = (await c.command('FETCH 1:* (SAVEDATE INTERNALDATE)')).untagged;
  const saved1 = field(f[0]!, 'SAVEDATE');
  assert.equal(field(f[0]!, 'INTERNALDATE'), '" 1-Jan-2000 10:00:00 +0100"');
  const savedMs = Date.parse(saved1.slice(1, -1).trim().replace(/^(\d+)-(\w+)-(\d+) /, '$2 $1 $3 '));
  assert.ok(savedMs >= Math.floor(t0 / 1000) * 1000 - 1000 && savedMs <= Date.now() + 1000, saved1);
  const today = formatDateTime(Date.now(), -new Date().getTimezoneOffset()).trim().split(' ')[0]!;
  assert.deepEqual((await c.command(`SEARCH SAVEDON ${today}`)).untagged, ['* SEARCH 1 2']);
  assert.deepEqual((await c.command(`SEARCH SAVEDSINCE ${today}`)).untagged, ['* SEARCH 1 2']);
  assert.deepEqual((await c.command(`SEARCH SAVEDBEFORE ${today}`)).untagged, ['* SEARCH']);
  assert.deepEqual((await c.command('SEARCH SAVEDBEFORE 1-Jan-2001')).untagged, ['* SEARCH']);
  assert.deepEqual((await c.command('SEARCH BEFORE 1-Jan-2001')).untagged, ['* SEARCH 1']);
  assert.deepEqual((await c.command('SEARCH SAVEDATESUPPORTED')).untagged, ['* SEARCH 1 2']);
  assert.deepEqual((await c.command(`SEARCH NOT SAVEDON ${today} HEADER Subject ""`)).untagged, ['* SEARCH']);
  // A second session watches the copy arrive with its own save date.
  const w = await RawClient.connect(srv.port, { login });
  await w.command(`SELECT ${b}`);
  await new Promise((r) => setTimeout(r, 1100));
  await c.command(`COPY 1 ${b}`);
  const after = (await c.command('FETCH 1 SAVEDATE')).untagged;
  assert.equal(field(after[0]!, 'SAVEDATE'), saved1, 'the source keeps its save date');
  await w.command('NOOP');
  const copy = (await w.command('FETCH 1 (SAVEDATE INTERNALDATE)')).untagged;
  assert.equal(field(copy[0]!, 'INTERNALDATE'), '" 1-Jan-2000 10:00:00 +0100"');
  assert.notEqual(field(copy[0]!, 'SAVEDATE'), saved1, 'a copy is saved anew (RFC 8514 §3)');
  await c.command(`MOVE 2 ${b}`);
  await w.command('NOOP');
  const moved = (await w.command('FETCH 2 SAVEDATE')).untagged;
  assert.notEqual(field(moved[0]!, 'SAVEDATE'), field(f[1]!, 'SAVEDATE'));
  assert.match((await c.command('SEARCH SAVEDON')).tagged, / BAD /);
  assert.match((await c.command('SEARCH SAVEDON 32-Jan-2020')).tagged, / BAD /);
  await c.close();
  await w.close();
});

test('OBJECTID: MAILBOXID in CREATE, SELECT, STATUS and LIST-STATUS, kept across RENAME, never reused', async () => {
  const c = await RawClient.connect(srv.port, { login });
  const name = fresh('Obj');
  const cr = await c.command(`CREATE ${name}`, 'k1');
  const id = /^k1 OK \[MAILBOXID \(([A-Za-z0-9_-]{1,255})\)\] /.exec(cr.tagged)?.[1];
  assert.ok(id, cr.tagged);
  const sel = await c.command(`SELECT ${name}`);
  assert.ok(sel.untagged.includes(`* OK [MAILBOXID (${id})] Ok`), sel.untagged.join('\n'));
  await c.command('UNSELECT');
  assert.deepEqual((await c.command(`STATUS ${name} (MAILBOXID MESSAGES)`)).untagged, [`* STATUS ${name} (MAILBOXID (${id}) MESSAGES 0)`]);
  const l = await c.command(`LIST "" ${name} RETURN (STATUS (MAILBOXID))`);
  assert.ok(l.untagged.includes(`* STATUS ${name} (MAILBOXID (${id}))`), l.untagged.join('\n'));
  await c.command(`RENAME ${name} ${name}x`);
  assert.deepEqual((await c.command(`STATUS ${name}x (MAILBOXID)`)).untagged, [`* STATUS ${name}x (MAILBOXID (${id}))`]);
  await c.command(`DELETE ${name}x`);
  const again = await c.command(`CREATE ${name}x`, 'k2');
  const id2 = /MAILBOXID \(([^)]+)\)/.exec(again.tagged)?.[1];
  assert.ok(id2 && id2 !== id, again.tagged);
  // RFC 8474 §4.1: renaming INBOX creates a new mailbox with a new id; INBOX keeps its own.
  const inbox = /MAILBOXID \(([^)]+)\)/.exec((await c.command('STATUS INBOX (MAILBOXID)')).untagged[0]!)![1];
  await c.command(`RENAME INBOX ${name}in`);
  assert.equal(/MAILBOXID \(([^)]+)\)/.exec((await c.command('STATUS INBOX (MAILBOXID)')).untagged[0]!)![1], inbox);
  assert.notEqual(/MAILBOXID \(([^)]+)\)/.exec((await c.command(`STATUS ${name}in (MAILBOXID)`)).untagged[0]!)![1], inbox);
  const caps = (await c.command('CAPABILITY')).untagged[0]!;
  assert.match(caps, / OBJECTID( |$)/);
  assert.match(caps, / SAVEDATE( |$)/);
  await c.close();
});

test('OBJECTID: EMAILID shared by COPY and MOVE, distinct per APPEND; SEARCH EMAILID; THREADID per thread', async () => {
  const c = await RawClient.connect(srv.port, { login });
  const a = fresh('Em');
  const b = fresh('EmB');
  await c.command(`CREATE ${a}`);
  await c.command(`CREATE ${b}`);
  await c.append(a, message(1));
  await c.append(a, message(1)); // the same bytes again: another message
  await c.command(`SELECT ${a}`);
  const f = (await c.command('FETCH 1:2 (EMAILID THREADID)')).untagged;
  const e1 = /EMAILID \(([A-Za-z0-9_-]+)\)/.exec(f[0]!)![1]!;
  const e2 = /EMAILID \(([A-Za-z0-9_-]+)\)/.exec(f[1]!)![1]!;
  assert.notEqual(e1, e2);
  // RFC 8474 §5.2: the same Message-ID twice is one conversation (test/commands/threadid.test.ts has the rest).
  const t1 = /THREADID \(([A-Za-z0-9_-]+)\)/.exec(f[0]!)![1]!;
  assert.equal(/THREADID \(([A-Za-z0-9_-]+)\)/.exec(f[1]!)![1]!, t1);
  assert.notEqual(t1, e1);
  assert.deepEqual((await c.command(`SEARCH THREADID ${t1}`)).untagged, ['* SEARCH 1 2']);
  assert.deepEqual((await c.command(`SEARCH EMAILID ${e2}`)).untagged, ['* SEARCH 2']);
  assert.deepEqual((await c.command('SEARCH EMAILID M0')).untagged, ['* SEARCH']);
  assert.deepEqual((await c.command('SEARCH THREADID T999999999')).untagged, ['* SEARCH']);
  assert.match((await c.command('SEARCH EMAILID "a b"')).tagged, / BAD /);
  // A second session sees the copy with the same EMAILID as the original.
  const w = await RawClient.connect(srv.port, { login });
  await w.command(`SELECT ${b}`);
  await c.command(`COPY 1 ${b}`);
  await c.command(`MOVE 2 ${b}`);
  await w.command('NOOP');
  const got = (await w.command('FETCH 1:* (UID EMAILID)')).untagged;
  assert.deepEqual(got, [`* 1 FETCH (UID 1 EMAILID (${e1}))`, `* 2 FETCH (UID 2 EMAILID (${e2}))`]);
  assert.deepEqual((await w.command(`UID SEARCH EMAILID ${e1}`)).untagged, ['* SEARCH 1']);
  await c.close();
  await w.close();
});

test('messages stored before save dates were kept answer their internal date for SAVEDATE and SAVED* (RFC 8514 §4.3)', async () => {
  const c = await RawClient.connect(srv.port, { login });
  const a = fresh('Old');
  await c.command(`CREATE ${a}`);
  await c.append(a, message(1), '"01-Jan-2001 10:00:00 +0000"');
  await c.append(a, message(2));
  // What schema V11 leaves for a message stored before it: no save date, zone +0000.
  const db = new Database(path.join(srv.dataDir, 'quire.sqlite3'));
  try {
    db.prepare(`UPDATE messages SET save_date = NULL WHERE uid = 1 AND mailbox_id = (SELECT id FROM mailboxes WHERE name = ?)`).run(a);
  } finally {
    db.close();
  }
  await c.command(`SELECT ${a}`);
  const f = (await c.command('FETCH 1:2 SAVEDATE')).untagged;
  // Shown, like every save date, in the server's zone.
  const t = Date.UTC(2001, 0, 1, 10);
  assert.equal(f[0], `* 1 FETCH (SAVEDATE "${formatDateTime(t, 0 - new Date(t).getTimezoneOffset())}")`);
  assert.notEqual(field(f[1]!, 'SAVEDATE'), 'NIL');
  assert.deepEqual((await c.command('SEARCH SAVEDBEFORE 2-Jan-2001')).untagged, ['* SEARCH 1']);
  assert.deepEqual((await c.command('SEARCH SAVEDATESUPPORTED')).untagged, ['* SEARCH 1 2']);
  await c.close();
});

