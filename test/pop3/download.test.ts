// Issue 17's download path over a real socket and a real SQLite store: a
// 1,000-message maildrop fetched pipelined (as fetchmail does) and one
// command at a time (as getmail does), byte for byte; each small RETR
// response leaves as one segment (one writev: status line, body,
// terminator), so a client is never left waiting on a partial response
// (Nagle + delayed ACK); large bodies go in pieces through memory the store
// lends and reuses (src/store/sqlite/body-reads.ts), with lines starting
// with "." at the piece boundaries.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { provisionUser } from '../../src/cli/users.js';
import { encodeMultiline } from '../../src/pop3/codec.js';
import { POP3_STREAM_CHUNK } from '../../src/pop3/limits.js';
import { BODY_SLAB_BYTES, BODY_SLABS } from '../../src/store/sqlite/body-reads.js';
import type { LeasedBytes } from '../../src/store/types.js';
import { startPop3TestServer, type Pop3TestServer } from './helpers.js';

/** The maildrop of the "Done when". */
const COUNT = 1000;
/**
 * A download of COUNT messages one RETR at a time must end within this: a
 * normal run takes well under a few seconds even on a loaded machine; one
 * delayed-ACK stall (40 ms) per message would take over 40 s.
 */
const SEQUENTIAL_BOUND_MS = 20_000;

let srv: Pop3TestServer;
let msgs: Buffer[] = [];

function message(i: number): Buffer {
  const lines = [`From: sender${i}@example.com`, `Subject: message ${i}`, `Message-ID: <m${i}@example.com>`, ''];
  const n = 20 + (i % 37) * 7;
  for (let k = 0; k < n; k++) lines.push(k % 11 === 3 ? `.dot line ${k} of ${i}` : `line ${k} of message ${i} ${'x'.repeat(k % 60)}`);
  // Every 7th ends without a final line end (the terminator adds one).
  return Buffer.from(lines.join('\r\n') + (i % 7 === 0 ? '' : '\r\n'));
}

before(async () => {
  srv = await startPop3TestServer();
  const u = await provisionUser(srv.store, 'dl', 'pw');
  const mb = (await srv.store.getMailbox(u.id, 'INBOX'))!;
  msgs = Array.from({ length: COUNT }, (_, i) => message(i));
  for (let i = 0; i < COUNT; i += 200) await srv.store.appendMessages(mb.id, msgs.slice(i, i + 200).map((data) => ({ data, flags: [] })));
});
after(async () => {
  await srv?.stop();
  assert.deepEqual(srv.pop3Errors, [], 'no unexpected POP3 errors');
});

/** A POP3 client that logs in, then runs RETR 1..count with `window` in flight; records the data events of each response. */
function download(port: number, user: string, count: number, window: number): Promise<{ bodies: Buffer[]; events: number[]; ms: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const s = net.connect(port, '127.0.0.1');
    s.setNoDelay(true);
    let buf = Buffer.alloc(0);
    let step = 0;
    let sent = 0;
    const bodies: Buffer[] = [];
    const events: number[] = [];
    let inResponse = false;
    let eventsNow = 0;
    const pump = () => {
      while (sent < count && sent - bodies.length < window) s.write(`RETR ${++sent}\r\n`);
    };
    s.on('error', reject);
    s.on('data', (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      if (inResponse || step === 3) eventsNow++;
      for (;;) {
        if (step < 3) {
          const nl = buf.indexOf('\r\n');
          if (nl < 0) return;
          const line = buf.subarray(0, nl).toString();
          buf = buf.subarray(nl + 2);
          if (!line.startsWith('+OK')) return reject(new Error(line));
          if (step === 0) s.write(`USER ${user}\r\n`);
          if (step === 1) s.write('PASS pw\r\n');
          if (++step === 3) {
            pump();
            eventsNow = 0;
          }
          continue;
        }
        if (step === 4) return;
        inResponse = true;
        const end = buf.indexOf('\r\n.\r\n');
        if (end < 0) return;
        bodies.push(Buffer.from(buf.subarray(0, end + 5)));
        events.push(eventsNow);
        buf = buf.subarray(end + 5);
        inResponse = false;
        eventsNow = buf.length > 0 ? 1 : 0;
        if (bodies.length === count) {
          step = 4;
          s.end('QUIT\r\n');
          return resolve({ bodies, events, ms: performance.now() - t0 });
        }
        pump();
      }
    });
  });
}

function expected(i: number): Buffer {
  return Buffer.concat([Buffer.from(`+OK ${msgs[i]!.length} octets\r\n`), encodeMultiline(msgs[i]!)]);
}

test('1,000 pipelined RETRs (16 in flight): every response byte for byte, in order', async () => {
  const r = await download(srv.pop3Port, 'dl', COUNT, 16);
  for (let i = 0; i < COUNT; i++) assert.ok(r.bodies[i]!.equals(expected(i)), `RETR ${i + 1}`);
});

test('1,000 RETRs one at a time finish within a bound a per-message stall would miss by far; each response arrives as one segment', async () => {
  const r = await download(srv.pop3Port, 'dl', COUNT, 1);
  for (let i = 0; i < COUNT; i++) assert.ok(r.bodies[i]!.equals(expected(i)), `RETR ${i + 1}`);
  assert.ok(r.ms < SEQUENTIAL_BOUND_MS, `${COUNT} sequential RETRs took ${r.ms.toFixed(0)} ms`);
  // Each response (at most a few KB) is one writev: the client reads it in one piece.
  const split = r.events.filter((e) => e !== 1).length;
  assert.equal(split, 0, `${split} responses arrived in more than one read`);
});

test('large bodies: sent in pieces of lent memory, dots stuffed across piece boundaries; slabs are reused, and reads beyond them still come back whole', async () => {
  const u = await provisionUser(srv.store, 'big', 'pw');
  const mb = (await srv.store.getMailbox(u.id, 'INBOX'))!;
  // Lines of 100 bytes, one starting with "." right at each piece boundary.
  const big = (k: number, size: number) => {
    const b = Buffer.alloc(size, 'a');
    for (let p = 98; p < size; p += 100) b.write('\r\n', p, 'latin1');
    for (let p = POP3_STREAM_CHUNK; p < size; p += POP3_STREAM_CHUNK) b[p - (p % 100)] = 0x2e;
    b.write(`Subject: ${k}\r\n`, 0, 'latin1');
    return b;
  };
  const sizes = [3 * POP3_STREAM_CHUNK + 12_345, 2 * 1024 * 1024];
  const bigs = sizes.map((s, k) => big(k, s));
  const half = Math.floor(BODY_SLAB_BYTES * 0.6);
  const mids = Array.from({ length: BODY_SLABS + 3 }, (_, k) => big(10 + k, half));
  await srv.store.appendMessages(mb.id, [...bigs, ...mids].map((data) => ({ data, flags: [] })));
  const r = await download(srv.pop3Port, 'big', bigs.length, 1);
  bigs.forEach((b, i) => assert.ok(r.bodies[i]!.equals(Buffer.concat([Buffer.from(`+OK ${b.length} octets\r\n`), encodeMultiline(b)])), `RETR ${i + 1}`));

  // The store's side: more lent reads held at once than there are slabs.
  const drop = await srv.store.openMaildrop(mb.id);
  assert.ok(drop.readLeased, 'the SQLite store lends');
  const held: LeasedBytes[] = [];
  for (let k = 0; k < mids.length; k++) held.push((await drop.readLeased!(bigs.length + k, 0, half))!);
  held.forEach((l, k) => assert.ok(l.bytes.equals(mids[k]!), `lent read ${k}`));
  const inSlabs = held.filter((l) => l.bytes.buffer instanceof SharedArrayBuffer).length;
  assert.ok(inSlabs >= 1 && inSlabs <= BODY_SLABS, `${inSlabs} reads in slabs`);
  for (const l of held) l.release();
  const again = (await drop.readLeased!(bigs.length, 0, half))!;
  assert.ok(again.bytes.buffer instanceof SharedArrayBuffer, 'a released slab is lent again');
  assert.ok(again.bytes.equals(mids[0]!));
  again.release();
});
