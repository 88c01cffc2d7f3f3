// Issue 10 (a): a selected session that sends no command while others change
// the mailbox holds O(messages) of queued state, not O(changes), and is then
// told a view consistent with the mailbox (RFC 9051 §7.5.1 EXPUNGE/EXISTS
// rules, §7.5.2 FETCH FLAGS: the current flags). The limit beyond that is
// MAX_PENDING_UPDATES (docs/limits.md).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient, message } from '../helpers/imap.js';
import { SelectedView } from '../../src/session/view.js';

let srv: TestServer;
const login = ['alice', 'secret-a'] as [string, string];
before(async () => { srv = await startTestServer(); });
after(async () => { await srv.stop(); });

const FLAGS = ['\\Seen', '\\Flagged', '\\Answered', '$Work', '\\Draft'];

/** A's queued entries as the server reports them (SessionInfo.pendingUpdates), the largest among sessions with `box` selected. */
function pendingOf(box: string): number {
  const infos = srv.server.sessions!().filter((s) => s.mailbox === box);
  return Math.max(0, ...infos.map((s) => s.pendingUpdates ?? 0));
}

test('a silent session queues O(messages) while another makes thousands of changes, then gets a consistent view', async () => {
  const box = 'Silent';
  const initial = 30;
  const b = await RawClient.connect(srv.port, { login });
  await b.command('ENABLE IMAP4rev2');
  await b.command(`CREATE ${box}`);
  for (let i = 1; i <= initial; i++) await b.append(box, message(i));
  const a = await RawClient.connect(srv.port, { login });
  await a.command('ENABLE IMAP4rev2');
  const sel = await a.command(`SELECT ${box}`);
  assert.ok(sel.untagged.includes(`* ${initial} EXISTS`), sel.raw);
  await b.command(`SELECT ${box}`);

  // Thousands of flag changes, pipelined, cycling over every message.
  const changes = 6000;
  let cmds = '';
  for (let i = 0; i < changes; i++) {
    const seq = (i % initial) + 1;
    const round = Math.floor(i / initial);
    const f = FLAGS[(round + seq) % FLAGS.length]!;
    cmds += `s${i} STORE ${seq} ${round % 3 === 0 ? '-' : '+'}FLAGS.SILENT (${f})\r\n`;
  }
  b.write(cmds);
  const r = await b.collect(`s${changes - 1}`);
  assert.match(r.tagged, /OK/);
  // Some appends, some expunges of known and of new messages, more flag changes after them.
  for (let i = 1; i <= 10; i++) await b.append(box, message(100 + i), i % 2 ? '(\\Deleted)' : '');
  await b.command('UID STORE 2,5,7 +FLAGS.SILENT (\\Deleted)');
  await b.command('EXPUNGE');
  for (let i = 0; i < 300; i++) b.write(`u${i} STORE ${(i % 20) + 1} ${i % 2 ? '+' : '-'}FLAGS.SILENT (\\Flagged)\r\n`);
  await b.collect('u299');

  const pending = pendingOf(box);
  // One entry per message at most (30 known + 5 new ones left), never one per change.
  assert.ok(pending > 0 && pending <= initial + 10, `pending ${pending}`);

  // A's model before: UIDs 1..30. Apply what NOOP tells it.
  const model: number[] = Array.from({ length: initial }, (_, i) => i + 1);
  const flagsBySeq = new Map<number, string>();
  const noop = await a.command('NOOP');
  let exists = -1;
  for (const l of noop.untagged) {
    let m: RegExpExecArray | null;
    if ((m = /^\* (\d+) EXPUNGE$/.exec(l))) {
      const seq = Number(m[1]);
      assert.ok(seq >= 1 && seq <= model.length, `EXPUNGE of unknown seq ${seq}: ${noop.raw}`);
      model.splice(seq - 1, 1);
    } else if ((m = /^\* (\d+) EXISTS$/.exec(l))) {
      exists = Number(m[1]);
    } else if ((m = /^\* (\d+) FETCH \(UID (\d+) FLAGS \(([^)]*)\)\)$/.exec(l))) {
      const seq = Number(m[1]);
      assert.ok(!flagsBySeq.has(seq), `duplicate FETCH for seq ${seq}: ${noop.raw}`);
      flagsBySeq.set(seq, `${m[2]} ${m[3]}`);
    }
  }
  assert.ok(exists >= 0, `no EXISTS: ${noop.raw}`);
  const truth = await b.command('UID FETCH 1:* (UID FLAGS)');
  const actual = truth.untagged.map((l) => /^\* \d+ FETCH \(UID (\d+) FLAGS \(([^)]*)\)\)$/.exec(l) ?? /^\* \d+ FETCH \(FLAGS \(([^)]*)\) UID (\d+)\)$/.exec(l)).filter((m) => m !== null);
  assert.equal(exists, actual.length, `EXISTS ${exists} vs ${truth.raw}`);
  // The EXPUNGEs left exactly the known survivors, in order, before the new ones.
  const truthUids = actual.map((m) => Number(m![1]));
  assert.deepEqual(model, truthUids.filter((u) => u <= initial));
  for (const [seq, v] of flagsBySeq) {
    assert.ok(seq <= exists, `FETCH seq ${seq} beyond EXISTS ${exists}`);
    const [uid, flags] = [Number(v.split(' ')[0]), v.slice(v.indexOf(' ') + 1)];
    assert.equal(truthUids[seq - 1], uid, `seq ${seq} is UID ${truthUids[seq - 1]}, FETCH said ${uid}`);
    const t = actual[seq - 1]![2]!;
    assert.deepEqual(flags.split(' ').filter(Boolean).sort(), t.split(' ').filter(Boolean).sort(), `flags of UID ${uid}`);
  }
  // Every known survivor whose flags changed was told its final flags.
  for (let seq = 1; seq <= model.length; seq++) assert.ok(flagsBySeq.has(seq), `no FETCH FLAGS for seq ${seq}: ${noop.raw}`);
  assert.equal(pendingOf(box), 0);
  // Nothing more to tell.
  assert.deepEqual((await a.command('NOOP')).untagged, []);
  await a.close();
  await b.close();
});

test('past MAX_PENDING_UPDATES the view reports overflow (the connection then ends with BYE [LIMIT])', () => {
  const view = new SelectedView(1, 'INBOX', false, 1, [1, 2, 3, 4, 5], 10);
  view.maxPending = 8;
  const meta = (uid: number, modseq: number) => ({ uid, flags: ['\\Seen'], internalDate: 0, size: 1, modseq });
  let modseq = 10;
  for (let i = 0; i < 1000; i++) {
    modseq++;
    view.enqueue({ kind: 'flags', userId: 1, mailboxId: 1, modseq, messages: [meta((i % 5) + 1, modseq)] });
  }
  assert.equal(view.pendingEntries, 5);
  assert.equal(view.overflowed, false);
  for (let uid = 6; uid <= 9; uid++) view.enqueue({ kind: 'append', userId: 1, mailboxId: 1, modseq: ++modseq, messages: [meta(uid, modseq)] });
  assert.equal(view.overflowed, true);
});
