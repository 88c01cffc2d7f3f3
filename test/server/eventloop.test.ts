// Event-loop delay under hostile input (issue 10) and big views (issue 14: SORT and THREAD of a
// 100k-message mailbox): a real server, a mailbox
// of a few thousand messages, a probe connection doing NOOPs back to back,
// and on other connections one hostile input after another (huge literals
// announced, deep parentheses, giant sequence sets with FETCH / STORE /
// SEARCH / COPY, long SEARCH programs, LIST patterns over many mailboxes,
// ID floods, AUTHENTICATE garbage, pipelined floods). A blocked event loop
// delays every NOOP in flight, so the worst NOOP round trip minus the
// baseline is the longest stall the attack caused; the baseline is the
// worst round trip of an undisturbed second just before each attack (the
// scheduling noise of that moment). It must stay under QUIRE_ELD_THRESHOLD_MS (default 50 ms). The
// in-process event-loop delay histogram (perf_hooks) is reported beside it.
//
// Robust on a shared machine: a case over the threshold is run again (up to
// three times) and judged by the smallest of its worst stalls (a real stall
// repeats, a scheduling hiccup rarely does). Hostile clients keep no more than a small
// tail of what they receive, so the test's own work stays negligible.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { message } from '../helpers/imap.js';
import { threadCorpus } from '../helpers/thread-corpus.js';

const THRESHOLD_MS = Number(process.env.QUIRE_ELD_THRESHOLD_MS ?? 50);
/** Runs of a case over the threshold before it fails: a real stall repeats every time, scheduler noise on a loaded machine rarely three times. */
const ATTEMPTS = 3;
const MESSAGES = 3000;
const MAILBOXES = 300;

let srv: TestServer;

/** A client that sends raw bytes and waits for a string to appear, keeping only a tail of the input. */
class Hostile {
  private tail = '';
  private waiters: (() => void)[] = [];
  received = 0;
  closed = false;
  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.received += d.length;
      this.tail = (this.tail + d.toString('latin1')).slice(-8192);
      this.wake();
    });
    socket.on('close', () => { this.closed = true; this.wake(); });
    socket.on('error', () => {});
  }
  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
  static async open(login = true): Promise<Hostile> {
    const s = await new Promise<net.Socket>((resolve, reject) => {
      const c = net.connect(srv.port, '127.0.0.1', () => resolve(c));
      c.once('error', reject);
    });
    const h = new Hostile(s);
    await h.until('\r\n');
    if (login) {
      h.send('L LOGIN alice secret-a\r\n');
      await h.until('L OK');
    }
    return h;
  }
  send(data: string | Buffer): void {
    if (!this.closed) this.socket.write(data);
  }
  /** Waits until `s` has been received (or the socket closed), at most `ms`. */
  async until(s: string, ms = 30_000): Promise<boolean> {
    const end = Date.now() + ms;
    while (!this.tail.includes(s)) {
      if (this.closed || Date.now() > end) return false;
      await new Promise<void>((r) => {
        const t = setTimeout(r, 200);
        this.waiters.push(() => { clearTimeout(t); r(); });
      });
    }
    this.tail = this.tail.slice(this.tail.indexOf(s) + s.length);
    return true;
  }
  close(): void {
    this.socket.destroy();
  }
}

/** The probe: NOOPs back to back on a logged-in connection, recording each round trip. */
class Probe {
  private running = false;
  private done: Promise<void> = Promise.resolve();
  rtts: number[] = [];
  private constructor(private readonly h: Hostile) {}
  static async open(): Promise<Probe> {
    const h = await Hostile.open();
    h.send('S SELECT INBOX\r\n');
    await h.until('S OK');
    return new Probe(h);
  }
  start(): void {
    this.running = true;
    this.rtts = [];
    this.done = (async () => {
      let n = 0;
      while (this.running) {
        const tag = `P${++n}`;
        const t0 = performance.now();
        this.h.send(`${tag} NOOP\r\n`);
        if (!(await this.h.until(`${tag} OK`, 60_000))) throw new Error('probe connection lost');
        this.rtts.push(performance.now() - t0);
      }
    })();
  }
  async stop(): Promise<number[]> {
    this.running = false;
    await this.done;
    return this.rtts;
  }
  close(): void {
    this.h.close();
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

let probe: Probe;
let baseline = 0;

before(async () => {
  srv = await startTestServer({ tweak: (o) => { o.limits.maxConnectionsPerUserAddress = 1000; o.limits.maxConnectionsPerUser = 1000; o.limits.maxPreAuthConnectionsPerAddress = 1000; } });
  const user = (await srv.store.getUser('alice'))!;
  const inbox = (await srv.store.getMailbox(user.id, 'INBOX'))!;
  const flags = [[], ['\\Seen'], ['\\Flagged'], ['$Label']];
  for (let i = 0; i < MESSAGES; i += 500) {
    await srv.store.appendMessages(inbox.id, Array.from({ length: 500 }, (_, k) => ({ data: Buffer.from(message(i + k + 1, { body: `word${(i + k) % 97} text ${'x'.repeat((i + k) % 300)}` })), flags: flags[(i + k) % 4]! })));
  }
  await srv.store.createMailbox(user.id, 'Target');
  for (let i = 0; i < MAILBOXES; i++) await srv.store.createMailbox(user.id, `Folders/Level${i % 10}/Box${i}`);
  probe = await Probe.open();
  probe.start();
  await new Promise((r) => setTimeout(r, 1000));
  baseline = median(await probe.stop());
});

after(async () => {
  probe?.close();
  await srv.stop();
});

/** How long the probe runs undisturbed before each attack: its worst round trip there is the noise floor of this moment. */
const CONTROL_MS = 1000;

/**
 * Runs `attack` while the probe runs; returns the worst stall (worst round trip during the attack minus
 * the worst of the undisturbed control window just before it, which holds this moment's scheduling noise
 * on a shared machine) and the loop-delay maximum.
 */
async function measure(attack: () => Promise<void>): Promise<{ stall: number; eld: number; probes: number; control: number }> {
  probe.start();
  await new Promise((r) => setTimeout(r, CONTROL_MS));
  const control = Math.max(baseline, ...(await probe.stop()));
  const h = monitorEventLoopDelay({ resolution: 5 });
  probe.start();
  h.enable();
  try {
    await attack();
    // Let the server finish whatever the attack left running.
    await new Promise((r) => setTimeout(r, 100));
  } finally {
    h.disable();
  }
  const rtts = await probe.stop();
  return { stall: Math.max(0, Math.max(0, ...rtts) - control), eld: h.max / 1e6, probes: rtts.length, control };
}

async function judge(name: string, attack: () => Promise<void>): Promise<void> {
  let r = await measure(attack);
  for (let attempt = 1; attempt < ATTEMPTS && r.stall > THRESHOLD_MS; attempt++) {
    const again = await measure(attack);
    if (again.stall < r.stall) r = again;
  }
  console.log(`# ${name}: worst stall ${r.stall.toFixed(1)} ms over ${r.probes} NOOPs (baseline ${baseline.toFixed(1)} ms, control worst ${r.control.toFixed(1)} ms, loop delay max ${r.eld.toFixed(1)} ms)`);
  assert.ok(r.probes > 0, 'the probe kept running');
  assert.ok(r.stall <= THRESHOLD_MS, `${name}: a NOOP on another connection waited ${r.stall.toFixed(1)} ms beyond the baseline (limit ${THRESHOLD_MS} ms; QUIRE_ELD_THRESHOLD_MS)`);
}

/** Runs `cmd` on a fresh logged-in connection with INBOX selected and waits for its tagged reply. */
async function selected(cmds: string[], opts: { select?: string } = {}): Promise<void> {
  const h = await Hostile.open();
  h.send(`S SELECT ${opts.select ?? 'INBOX'}\r\n`);
  await h.until('S OK');
  let n = 0;
  for (const c of cmds) h.send(`H${++n} ${c}\r\n`);
  await h.until(`H${n} `, 120_000);
  h.close();
}

test('huge literals announced (synchronizing and LITERAL+) and left unsent', async () => {
  await judge('huge literals', async () => {
    const hs = await Promise.all(Array.from({ length: 20 }, () => Hostile.open()));
    hs.forEach((h, i) => h.send(i % 2 ? 'A APPEND INBOX {60000000}\r\n' : `A APPEND INBOX {60000000+}\r\n${'x'.repeat(100_000)}`));
    await new Promise((r) => setTimeout(r, 500));
    for (const h of hs) h.close();
  });
});

test('deep parentheses and over-long lines', async () => {
  await judge('deep parentheses', async () => {
    const h = await Hostile.open();
    h.send(`D1 SEARCH ${'('.repeat(60_000)}\r\n`);
    h.send(`D2 FETCH 1 ${'(FLAGS '.repeat(9_000)}\r\n`);
    h.send(`D3 NOOP ${'x'.repeat(200_000)}\r\n`);
    h.send('D4 NOOP\r\n');
    await h.until('D4 ', 30_000);
    h.close();
  });
});

test('giant sequence sets: FETCH, STORE, SEARCH, COPY over 1:4294967295 on a mailbox of thousands', async () => {
  await judge('FETCH 1:4294967295', () => selected(['FETCH 1:4294967295 (FLAGS UID)', 'UID FETCH 1:4294967295 (FLAGS)', 'FETCH 1:* (ENVELOPE)']));
  await judge('STORE 1:4294967295', () => selected(['STORE 1:4294967295 +FLAGS.SILENT (\\Seen $Hostile)', 'STORE 1:4294967295 -FLAGS.SILENT ($Hostile)']));
  await judge('SEARCH 1:4294967295', () => selected(['SEARCH 1:4294967295', 'UID SEARCH UID 1:4294967295 NOT DELETED', 'SEARCH BODY word42']));
  const ranges = Array.from({ length: 6000 }, (_, i) => `${i * 2 + 1}:${i * 2 + 1}`).join(',');
  await judge('FETCH of a many-range sequence set', () => selected([`FETCH ${ranges} (FLAGS)`]));
  await judge('COPY 1:4294967295', () => selected(['COPY 1:4294967295 Target']));
});

// A UID set of more than 64 ranges compiled to a correlated json_each, parsed again for every message:
// 6,000 ranges over 3,000 messages delayed a NOOP on another connection ~2.8 s.
test('UID SEARCH of a many-range UID set', async () => {
  const ranges = Array.from({ length: 6000 }, (_, i) => `${i * 2 + 1}:${i * 2 + 1}`).join(',');
  await judge('UID SEARCH of a many-range UID set', () => selected([`UID SEARCH UID ${ranges}`]));
});

test('long SEARCH programs', async () => {
  const ors = `${'OR FROM sender1 '.repeat(60)}ALL`;
  const keys = Array.from({ length: 900 }, (_, i) => `NOT SUBJECT m${i}`).join(' ');
  await judge('long SEARCH programs', () => selected([`SEARCH ${ors}`, `SEARCH ${keys}`, `SEARCH ${'NOT '.repeat(60)}ALL`]));
  // Many UID range tests per message: compiled SQL whose cost is keys × messages (found by the search fuzzer).
  const odd = Array.from({ length: 20 }, (_, i) => 2 * i + 1).join(',');
  await judge('SEARCH with thousands of range tests', () => selected([`SEARCH ${Array.from({ length: 200 }, () => `(OR SEEN UID ${odd})`).join(' ')}`]));
});

test('LIST over many mailboxes with ordinary patterns', async () => {
  await judge('LIST patterns', () => selected(['LIST "" "*"', 'LIST "" "%/%/%"', 'LIST "Folders/" "*Box1*"', 'LSUB "" "*"', 'LIST (SUBSCRIBED) "" "*" RETURN (CHILDREN STATUS (MESSAGES))']));
});

test('LIST with backtracking-prone patterns over many mailboxes', async () => {
  // With the backtracking matcher of before, the first froze the server 8 s and a long one for hours.
  await judge('LIST hostile patterns', () => selected(['LIST "" "%*%*%*%*%*x"', `LIST "" "${'%*'.repeat(100)}x"`, `LIST "" "${'*a'.repeat(300)}"`]));
});

test('ID floods, AUTHENTICATE garbage and pipelined floods', async () => {
  const pairs = Array.from({ length: 30 }, (_, i) => `"k${i}" "${'v'.repeat(200)}"`).join(' ');
  await judge('ID flood', async () => {
    const h = await Hostile.open(false);
    for (let i = 0; i < 200; i++) h.send(`I${i} ID (${pairs})\r\n`);
    await h.until('I199 ', 60_000);
    h.close();
  });
  await judge('AUTHENTICATE garbage', async () => {
    const hs = await Promise.all(Array.from({ length: 30 }, () => Hostile.open(false)));
    for (const h of hs) h.send(`A AUTHENTICATE PLAIN\r\n${'%%%%'.repeat(1500)}\r\nB AUTHENTICATE XYZZY\r\nC AUTHENTICATE PLAIN ${'='.repeat(3000)}\r\n`);
    await Promise.all(hs.map((h) => h.until('C ', 30_000)));
    for (const h of hs) h.close();
  });
  await judge('pipelined floods', async () => {
    const h = await Hostile.open();
    h.send('S SELECT INBOX\r\n' + 'F NOOP\r\n'.repeat(20_000) + Array.from({ length: 200 }, (_, i) => `G${i} FETCH 1:* (FLAGS)\r\n`).join('') + 'Z NOOP\r\n');
    await h.until('Z ', 120_000);
    h.close();
  });
});

// src/auth/password.ts MAX_CONCURRENT_HASHES: unbounded, 30 at once starved the loop 200-400 ms on 2 cores.
test('a storm of failed logins (scrypt on every attempt)', async () => {
  await judge('failed-login storm', async () => {
    const hs = await Promise.all(Array.from({ length: 30 }, () => Hostile.open(false)));
    for (const h of hs) h.send(`C AUTHENTICATE PLAIN ${Buffer.from('\0alice\0wrong').toString('base64')}\r\n`);
    await Promise.all(hs.map((h) => h.until('C ', 30_000)));
    for (const h of hs) h.close();
  });
});

// Found by `npm run fuzz -- search`: SQLite prepared 100 × (OR NEW OLD) for 4.6 s on the event loop.
test('a SEARCH program too costly to prepare is refused with NO [LIMIT], without stalling others', async () => {
  const a = Array.from({ length: 27 }, (_, i) => 4 * i + 1).join(',');
  const b = Array.from({ length: 27 }, (_, i) => 4 * i + 3).join(',');
  const program = Array.from({ length: 100 }, () => `(OR UID ${a} NOT UID ${b})`).join(' ');
  let refused = false;
  await judge('SEARCH too costly', async () => {
    const h = await Hostile.open();
    h.send('S SELECT INBOX\r\n');
    await h.until('S OK');
    h.send(`X SEARCH ${program}\r\n`);
    refused = await h.until('X NO [LIMIT]', 30_000);
    h.close();
  });
  assert.ok(refused, 'answered NO [LIMIT]');
  // A long but cheap program still runs.
  const h = await Hostile.open();
  h.send('S SELECT INBOX\r\n');
  await h.until('S OK');
  h.send(`Y SEARCH ${Array.from({ length: 5 }, () => `(OR UID ${a} NOT UID ${b})`).join(' ')}\r\n`);
  assert.ok(await h.until('Y OK', 30_000));
  h.close();
});

// Issue 14: a whole SORT and THREAD of a 100k-message mailbox ran 175-585 ms on the event loop. The
// mailbox: 5,000 conversation messages (test/helpers/thread-corpus.ts) and 19 copies of them (copies
// share their bodies' keys and Message-IDs, so THREAD sees 20 messages per id: duplicate handling at scale).
test('SORT and THREAD of a 100k-message mailbox', async () => {
  const user = (await srv.store.getUser('alice'))!;
  const big = await srv.store.createMailbox(user.id, 'Big');
  const msgs = threadCorpus(14, 5000);
  for (let i = 0; i < msgs.length; i += 1000) {
    await srv.store.appendMessages(big.id, msgs.slice(i, i + 1000).map((m, k) => ({ data: Buffer.from(m.raw), flags: [], internalDate: Date.UTC(2024, 0, 1) + (i + k) * 60_000 })));
  }
  const first = await srv.store.listUids(big.id);
  for (let c = 0; c < 19; c++) await srv.store.copyMessages(big.id, first, big.id);
  assert.equal((await srv.store.listUids(big.id)).length, 100_000);
  const big100k = (cmds: string[]) => selected(cmds, { select: 'Big' });
  // SELECT's first listing of the mailbox is not what is measured here: done once before.
  await big100k(['NOOP']);
  // Every case is judged (and logged) before the test fails on any of them.
  const failed: string[] = [];
  const each = async (name: string, cmds: string[]) => judge(name, () => big100k(cmds)).catch((e: Error) => { failed.push(e.message); });
  await each('100k THREAD REFERENCES', ['UID THREAD REFERENCES UTF-8 ALL', 'THREAD REFERENCES UTF-8 ALL']);
  await each('100k THREAD REFS and ORDEREDSUBJECT', ['UID THREAD REFS UTF-8 ALL', 'UID THREAD ORDEREDSUBJECT UTF-8 ALL']);
  await each('100k THREAD of a search result', ['UID THREAD REFERENCES UTF-8 NOT SUBJECT nothing-like-this']);
  await each('100k SORT (DATE), (SUBJECT), (FROM)', ['UID SORT (REVERSE DATE) UTF-8 ALL', 'UID SORT (SUBJECT) UTF-8 ALL', 'SORT (FROM) UTF-8 ALL']);
  await each('100k SORT RETURN (PARTIAL 1:50)', ['UID SORT RETURN (PARTIAL 1:50) (REVERSE DATE) UTF-8 ALL', 'UID SORT RETURN (PARTIAL -1:-50) (SUBJECT) UTF-8 UNSEEN']);
  await each('100k SEARCH ALL', ['UID SEARCH ALL', 'SEARCH ALL', 'UID SEARCH RETURN (COUNT) UNDELETED']);
  // THREAD of a mailbox that changed since its last THREAD: nothing is kept, the whole mailbox is threaded.
  let extra = 0;
  await judge('100k THREAD REFERENCES of a changed mailbox', async () => {
    await srv.store.appendMessages(big.id, [{ data: Buffer.from(message(200_000 + ++extra)), flags: [] }]);
    await big100k(['UID THREAD REFERENCES UTF-8 ALL']);
  }).catch((e: Error) => { failed.push(e.message); });
  // Last (it expunges some of the mailbox): the first SELECT of the mailbox (its listing is read as after a
  // restart) while another session appends and expunges, then what the selecting session was told must add up.
  const sqlite = srv.store as unknown as { dropSnapshots(): void };
  let selecting: Lines | null = null;
  let writer: Lines | null = null;
  await judge('100k first SELECT while another session appends and expunges', async () => {
    selecting?.close();
    writer?.close();
    writer = await Lines.open();
    await writer.command('SELECT Big');
    selecting = await Lines.open();
    sqlite.dropSnapshots();
    const selected = selecting.command('SELECT Big');
    let done = false;
    void selected.then(() => { done = true; });
    // Appends (at the top, read last) and expunges of the oldest messages (read first) and of new ones.
    for (let i = 0, last = 0; !done || i < 4; i++) {
      const raw = message(300_000 + i);
      const ok = await writer.command(`APPEND Big {${raw.length}+}\r\n${raw}`);
      const uid = Number(/APPENDUID \d+ (\d+)/.exec(ok)?.[1]);
      const gone = i % 2 ? first[i]! : last;
      last = uid;
      if (gone) await writer.command(`UID STORE ${gone} +FLAGS.SILENT (\\Deleted)`), await writer.command(`UID EXPUNGE ${gone}`);
    }
    await selected;
  }).catch((e: Error) => { failed.push(e.message); });
  assert.deepEqual(failed, []);
  await checkSelectAddsUp(selecting!, await srv.store.listUids(big.id));
  selecting!.close();
  writer!.close();
});

/** A client that keeps every line it receives (small answers only). */
class Lines {
  private buf = '';
  private waiters: (() => void)[] = [];
  readonly lines: string[] = [];
  private n = 0;
  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf += d.toString('latin1');
      for (let i; (i = this.buf.indexOf('\r\n')) >= 0; ) {
        this.lines.push(this.buf.slice(0, i));
        this.buf = this.buf.slice(i + 2);
      }
      const w = this.waiters;
      this.waiters = [];
      for (const f of w) f();
    });
    socket.on('error', () => {});
  }
  static async open(): Promise<Lines> {
    const s = await new Promise<net.Socket>((resolve, reject) => {
      const c = net.connect(srv.port, '127.0.0.1', () => resolve(c));
      c.once('error', reject);
    });
    const l = new Lines(s);
    await l.command('LOGIN alice secret-a');
    return l;
  }
  /** Sends a command and resolves with its tagged OK (rejects on anything else). */
  async command(cmd: string): Promise<string> {
    const tag = `T${++this.n}`;
    this.socket.write(`${tag} ${cmd}\r\n`);
    for (let seen = 0; ; ) {
      for (; seen < this.lines.length; seen++) {
        const l = this.lines[seen]!;
        if (l.startsWith(`${tag} `)) {
          if (!l.startsWith(`${tag} OK`)) throw new Error(`${cmd.slice(0, 40)}: ${l}`);
          return l;
        }
      }
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }
  close(): void {
    this.socket.destroy();
  }
}

/**
 * What the selecting session was told (SELECT's EXISTS and UIDNEXT, then EXPUNGE and EXISTS as they
 * came) must be what the mailbox holds: after a NOOP, FETCH 1:* (UID) shows every message once, in UID
 * order, those counted by SELECT's EXISTS below its UIDNEXT, and exactly the store's UIDs.
 */
async function checkSelectAddsUp(c: Lines, stored: number[]): Promise<void> {
  // The expunges told after SELECT come with the NOOP (FETCH may not send them: RFC 9051 §7.5.1).
  await c.command('NOOP');
  await c.command('FETCH 1:* (UID)');
  let count = 0;
  let uidNext = 0;
  // Per sequence number: whether the message was counted by SELECT's EXISTS (told before its UIDNEXT).
  const model: boolean[] = [];
  let fetched: number[] = [];
  const rounds: number[][] = [];
  for (const l of c.lines) {
    let m: RegExpExecArray | null;
    if ((m = /^\* (\d+) EXISTS$/.exec(l))) {
      count = Number(m[1]);
      while (model.length < count) model.push(uidNext === 0);
    } else if ((m = /^\* (\d+) EXPUNGE$/.exec(l))) {
      model.splice(Number(m[1]) - 1, 1);
      count--;
    } else if ((m = /^\* OK \[UIDNEXT (\d+)\]/.exec(l))) uidNext = Number(m[1]);
    else if ((m = /^\* (\d+) FETCH \(UID (\d+)\)$/.exec(l))) {
      const seq = Number(m[1]);
      const uid = Number(m[2]);
      assert.ok(seq <= count, `FETCH of sequence number ${seq} beyond EXISTS ${count}`);
      if (model[seq - 1]) assert.ok(uid < uidNext, `message ${seq} (UID ${uid}), counted by SELECT's EXISTS, is below its UIDNEXT ${uidNext}`);
      fetched[seq - 1] = uid;
    } else if (/^T\d+ OK /.test(l) && fetched.length) {
      rounds.push(fetched);
      fetched = [];
    }
  }
  assert.equal(rounds.length, 1);
  const told = rounds[0]!;
  for (let i = 1; i < told.length; i++) assert.ok(told[i]! > told[i - 1]!, `UIDs ascend, none twice (${told[i - 1]}, ${told[i]})`);
  assert.equal(count, stored.length, 'EXISTS less EXPUNGEs = the messages stored');
  assert.deepEqual(told, stored, "the session's messages are the stored ones");
}
