// Cluster mode is one server to its clients: many sessions spread over
// `quire serve --workers 2`, on two shared mailboxes, run a seeded mix of
// APPEND, STORE (their own keyword and \Seen), COPY, STORE \Deleted + UID
// EXPUNGE, FETCH and NOOP at the same time. Each session keeps its own
// picture of its mailbox from nothing but what the server told it, and
// every step is checked (RFC 9051 §7.4.1 EXPUNGE and §7.5.2 FETCH name known
// sequence numbers; §7.3.1 EXISTS never shrinks without EXPUNGE; §2.3.1.1
// UIDs ascend; §6.4.6 STORE answers the value it set). At the end, after a
// NOOP, each session's picture must equal the store's final state: the same
// UIDs in the same order, and the flags it was last told are the flags
// stored. Every acknowledged APPEND and COPY is there unless a session
// expunged it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, type Cluster, type WorkerClient } from '../helpers/cluster.js';
import { message } from '../helpers/imap.js';
import { prng } from '../helpers/rng.js';

const ALICE: [string, string] = ['alice', 'secret-a'];
const SESSIONS = 8;
const STEPS = 40;
const BOXES = ['INBOX', 'Work'];
const START_MESSAGES = 10;
/** Appends and copies stop above this many messages, expunges below the low mark. */
const HIGH = 30;
const LOW = 6;
const SEED = 11;
/** STORE, FETCH or COPY of a message another session expunged meanwhile may answer NO [EXPUNGEISSUED] (RFC 2180 §4.1, §4.2.1, §4.4; RFC 5530). */
const STORED = /^\S+ (OK|NO \[EXPUNGEISSUED\])/;

let cluster: Cluster;

before(async () => {
  cluster = await startCluster({ workers: 2, users: [ALICE] });
});

after(async () => {
  await cluster.stop();
});

/** What one session was told about its selected mailbox. */
class Picture {
  /** UIDs by sequence number - 1; 0 = not learnt yet. */
  uids: number[] = [];
  /** The flags last shown for a UID (\Recent left out: a per-session flag). */
  readonly flags = new Map<number, string[]>();
  readonly errors: string[] = [];
  constructor(readonly name: string) {}

  private error(what: string): void {
    this.errors.push(`${this.name}: ${what}`);
  }

  /** Applies the untagged lines of one reply, in order; returns the UIDs expunged by them. */
  apply(lines: readonly string[]): Set<number> {
    const gone = new Set<number>();
    for (const line of lines) {
      const m = /^\* (\d+) (EXISTS|EXPUNGE|FETCH)\b(.*)$/.exec(line);
      if (!m) continue;
      const n = Number(m[1]);
      if (m[2] === 'EXISTS') {
        if (n < this.uids.length) this.error(`* ${n} EXISTS while ${this.uids.length} known`);
        while (this.uids.length < n) this.uids.push(0);
      } else if (m[2] === 'EXPUNGE') {
        if (n < 1 || n > this.uids.length) {
          this.error(`* ${n} EXPUNGE with ${this.uids.length} known`);
          continue;
        }
        const [uid] = this.uids.splice(n - 1, 1);
        if (uid) {
          this.flags.delete(uid);
          gone.add(uid);
        }
      } else {
        if (n < 1 || n > this.uids.length) {
          this.error(`${line} with ${this.uids.length} known`);
          continue;
        }
        const uid = Number(/\bUID (\d+)/.exec(m[3]!)?.[1] ?? 0);
        const known = this.uids[n - 1]!;
        if (uid && known && uid !== known) this.error(`${line}: sequence ${n} is UID ${known}`);
        if (uid && !known) {
          const before = this.uids.slice(0, n - 1).filter(Boolean).pop();
          const after = this.uids.slice(n).find(Boolean);
          if ((before !== undefined && before >= uid) || (after !== undefined && after <= uid)) this.error(`${line}: UIDs out of order`);
          this.uids[n - 1] = uid;
        }
        const f = /\bFLAGS \(([^)]*)\)/.exec(m[3]!);
        const at = uid || known;
        if (f && at) this.flags.set(at, f[1]!.split(' ').filter((x) => x && x !== '\\Recent').sort());
      }
    }
    return gone;
  }
}

interface Ledger {
  /** UIDs acknowledged by APPENDUID / COPYUID, per mailbox. */
  acked: Map<string, Set<number>>;
  /** UIDs a session's UID EXPUNGE removed (it had flagged them \Deleted), per mailbox. */
  expunged: Map<string, Set<number>>;
}

async function runSession(c: WorkerClient, box: string, k: number, ledger: Ledger, rand: () => number): Promise<Picture> {
  const pic = new Picture(`session ${k} (worker ${c.slot}, ${box})`);
  const keyword = `$Own${k}`;
  const other = BOXES.find((b) => b !== box)!;
  /** Our keyword's state per UID, as we stored it. */
  const mine = new Map<number, boolean>();
  const run = async (cmd: string | Buffer) => {
    const r = await c.command(cmd);
    const gone = pic.apply(r.untagged);
    for (const u of gone) mine.delete(u);
    return { ...r, gone };
  };
  const pick = () => {
    const known = pic.uids.filter(Boolean);
    return known.length ? known[Math.floor(rand() * known.length)]! : 0;
  };
  const checkMine = (where: string) => {
    for (const [u, want] of mine) {
      const f = pic.flags.get(u);
      if (f && f.includes(keyword) !== want) pic.errors.push(`${pic.name}: ${where}: UID ${u} shows ${f.join(' ')} but we ${want ? 'stored' : 'removed'} ${keyword}`);
    }
  };
  const sel = await run(`SELECT ${box}`);
  assert.match(sel.tagged, /OK/);
  await run('FETCH 1:* (UID FLAGS)');
  for (let step = 0; step < STEPS; step++) {
    const x = rand();
    const n = pic.uids.length;
    if (x < 0.15) {
      if (n >= HIGH) continue;
      const to = rand() < 0.7 ? box : other;
      const r = await run(Buffer.from(`APPEND ${to} (${rand() < 0.5 ? '\\Seen' : ''}) {${message(k * 1000 + step).length}+}\r\n${message(k * 1000 + step)}`));
      const m = /APPENDUID \d+ (\d+)/.exec(r.tagged);
      assert.ok(m, r.tagged);
      ledger.acked.get(to)!.add(Number(m[1]));
    } else if (x < 0.4) {
      const u = pick();
      if (!u) continue;
      const add = !(mine.get(u) ?? false);
      mine.set(u, add);
      const r = await run(`UID STORE ${u} ${add ? '+' : '-'}FLAGS (${keyword})`);
      assert.match(r.tagged, STORED);
      if (!/ OK/.test(r.tagged)) mine.delete(u);
      else if (!r.gone.has(u) && pic.uids.includes(u)) {
        const f = pic.flags.get(u);
        if (!f || f.includes(keyword) !== add) pic.errors.push(`${pic.name}: STORE ${add ? '+' : '-'}${keyword} on UID ${u} answered ${f ? f.join(' ') : 'nothing'}`);
      }
    } else if (x < 0.5) {
      const u = pick();
      if (!u) continue;
      assert.match((await run(`UID STORE ${u} ${rand() < 0.5 ? '+' : '-'}FLAGS (\\Seen)`)).tagged, STORED);
    } else if (x < 0.6) {
      if (n >= HIGH) continue;
      const u = pick();
      if (!u) continue;
      const r = await run(`UID COPY ${u} ${other}`);
      assert.match(r.tagged, STORED);
      const m = /COPYUID \d+ \S+ (\d+)/.exec(r.tagged);
      // No COPYUID: the message had been expunged meanwhile (nothing copied).
      if (m) ledger.acked.get(other)!.add(Number(m[1]));
    } else if (x < 0.7) {
      if (n <= LOW) continue;
      const u = pick();
      if (!u) continue;
      const s = await run(`UID STORE ${u} +FLAGS (\\Deleted)`);
      assert.match(s.tagged, STORED);
      const r = await run(`UID EXPUNGE ${u}`);
      assert.match(r.tagged, /OK/);
      if (pic.uids.includes(u)) pic.errors.push(`${pic.name}: UID EXPUNGE ${u} ended OK and it is still there`);
      ledger.expunged.get(box)!.add(u);
    } else if (x < 0.9) {
      const want = pic.uids.length;
      const r = await run('FETCH 1:* (UID FLAGS)');
      // NO [EXPUNGEISSUED]: some were expunged and not announced yet (RFC 2180 §4.1.2).
      assert.match(r.tagged, STORED);
      if (!/ OK/.test(r.tagged)) continue;
      const seen = new Set(r.untagged.map((l) => Number(/^\* (\d+) FETCH \(UID/.exec(l)?.[1] ?? 0)));
      for (let s = 1; s <= Math.min(want, pic.uids.length); s++) if (!seen.has(s)) pic.errors.push(`${pic.name}: FETCH 1:* ended OK without sequence ${s}`);
      checkMine('FETCH 1:*');
    } else {
      assert.match((await run('NOOP')).tagged, /OK/);
    }
  }
  return pic;
}

test('sessions on two workers doing APPEND/STORE/COPY/EXPUNGE at once each end with the store\'s final state', { timeout: 300_000 }, async () => {
  const setup = await cluster.connectTo(ALICE);
  assert.match((await setup.command('CREATE Work')).tagged, /OK/);
  const ledger: Ledger = { acked: new Map(BOXES.map((b) => [b, new Set<number>()])), expunged: new Map(BOXES.map((b) => [b, new Set<number>()])) };
  for (const box of BOXES) {
    for (let i = 0; i < START_MESSAGES; i++) {
      const r = await setup.append(box, message(i), i % 3 === 0 ? '(\\Seen)' : '');
      ledger.acked.get(box)!.add(Number(/APPENDUID \d+ (\d+)/.exec(r.tagged)![1]));
    }
  }
  await setup.close();
  // Half the sessions on each worker.
  const perSlot = new Map<number, number>();
  const clients: WorkerClient[] = [];
  for (let i = 0; i < SESSIONS; i++) {
    const c = await cluster.connectTo(ALICE, (slot) => (perSlot.get(slot) ?? 0) < SESSIONS / 2);
    perSlot.set(c.slot, (perSlot.get(c.slot) ?? 0) + 1);
    clients.push(c);
  }
  assert.equal(perSlot.size, 2, 'sessions on both workers');
  const rand = prng(SEED);
  const seeds = clients.map(() => Math.floor(rand() * 2 ** 31));
  const pictures = await Promise.all(clients.map((c, k) => runSession(c, BOXES[k % BOXES.length]!, k, ledger, prng(seeds[k]!))));

  // Quiet now: every session catches up (cross-worker hints are immediate; the poll behind them runs every 500 ms).
  await new Promise((r) => setTimeout(r, 1200));
  for (let k = 0; k < clients.length; k++) {
    const pic = pictures[k]!;
    pic.apply((await clients[k]!.command('NOOP')).untagged);
    // Learn the UIDs of messages only announced by EXISTS (no flags asked: what was told stays as told).
    pic.apply((await clients[k]!.command('FETCH 1:* (UID)')).untagged);
  }
  const observer = await cluster.connectTo(ALICE);
  const final = new Map<string, { uids: number[]; flags: Map<number, string[]> }>();
  for (const box of BOXES) {
    assert.match((await observer.command(`EXAMINE ${box}`)).tagged, /OK/);
    const p = new Picture(`observer ${box}`);
    const r = await observer.command('UID FETCH 1:* (UID FLAGS)');
    // The observer's view starts from EXAMINE's EXISTS.
    p.apply([`* ${r.untagged.filter((l) => / FETCH /.test(l)).length} EXISTS`, ...r.untagged]);
    final.set(box, { uids: p.uids, flags: p.flags });
  }
  const errors = pictures.flatMap((p) => p.errors);
  for (let k = 0; k < pictures.length; k++) {
    const pic = pictures[k]!;
    const f = final.get(BOXES[k % BOXES.length]!)!;
    if (pic.uids.join(',') !== f.uids.join(',')) errors.push(`${pic.name}: ends with UIDs ${pic.uids.join(',')}, the store has ${f.uids.join(',')}`);
    for (const [u, flags] of pic.flags) {
      const stored = f.flags.get(u);
      if (stored && stored.join(' ') !== flags.join(' ')) errors.push(`${pic.name}: UID ${u} last told (${flags.join(' ')}), stored (${stored.join(' ')})`);
    }
  }
  for (const box of BOXES) {
    const have = new Set(final.get(box)!.uids);
    for (const u of ledger.acked.get(box)!) if (!ledger.expunged.get(box)!.has(u) && !have.has(u)) errors.push(`${box}: acknowledged UID ${u} is missing`);
    for (const u of have) if (!ledger.acked.get(box)!.has(u)) errors.push(`${box}: UID ${u} was never acknowledged`);
  }
  assert.deepEqual(errors, []);
  const ops = pictures.length * STEPS;
  console.log(`# ${pictures.length} sessions on 2 workers, ${ops} steps, final sizes ${BOXES.map((b) => `${b} ${final.get(b)!.uids.length}`).join(', ')}: 0 errors`);
  for (const c of clients) await c.close();
  await observer.close();
});
