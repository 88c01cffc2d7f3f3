// SAVEDATE (RFC 8514) and INTERNALDATE answers compared with the reference
// Dovecot peer: the same session script runs against both servers and the
// answers are compared after normalising what legitimately differs (the
// instant of saving, UIDVALIDITY, the zone Dovecot drops: docs/rfc.md).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient, message } from '../helpers/imap.js';
import { DOVECOT_IMAP_PORT, peerAdvertises } from '../helpers/peer.js';
import { formatDateTime, parseDateTime } from '../../src/wire/index.js';

/** This branch's Dovecot user (coordination: testuser80-89). */
const DOVECOT_USER: [string, string] = ['testuser80', 'pass'];

let srv: TestServer;
let dovecot = false;
before(async () => {
  srv = await startTestServer();
  dovecot = await peerAdvertises(DOVECOT_USER, 'SAVEDATE');
});
after(async () => { await srv.stop(); });

const instant = (quoted: string) => parseDateTime(quoted.replace(/^"|"$/g, ''))!.ms;

/** Runs the script on one server; returns its answers with the save instants checked and replaced. */
async function script(port: number, login: [string, string], box: string, t0: number): Promise<string[]> {
  const c = await RawClient.connect(port, { login });
  const out: string[] = [];
  const norm = (lines: string[]) =>
    lines.map((l) =>
      l
        .replace(/SAVEDATE ("[^"]+")/g, (_, d: string) => {
          const t = instant(d);
          // Saved during this run (seconds are truncated on the wire).
          assert.ok(t >= Math.floor(t0 / 1000) * 1000 && t <= Date.now() + 1000, `${d} is the time of saving`);
          return 'SAVEDATE <now>';
        })
        .replace(/INTERNALDATE ("[^"]+")/g, (_, d: string) => `INTERNALDATE <${new Date(instant(d)).toISOString()}>`),
    );
  try {
    await c.command(`DELETE ${box}`);
    await c.command(`DELETE ${box}2`);
    await c.command(`CREATE ${box}`);
    await c.command(`CREATE ${box}2`);
    await c.append(box, message(1), '"01-Jan-2000 10:00:00 +0100"');
    await c.append(box, message(2), '"15-Jun-2010 23:30:00 +0000"');
    await c.command(`SELECT ${box}`);
    out.push(...norm((await c.command('FETCH 1:* (INTERNALDATE SAVEDATE)')).untagged));
    const today = formatDateTime(Date.now(), 0 - new Date().getTimezoneOffset()).trim().split(' ')[0]!;
    for (const q of [`SAVEDON ${today}`, `SAVEDSINCE ${today}`, `SAVEDBEFORE ${today}`, 'SAVEDBEFORE 2-Jan-2000', 'SAVEDATESUPPORTED', 'ON 15-Jun-2010', 'BEFORE 1-Jan-2001']) {
      out.push(`${q}: ${(await c.command(`SEARCH ${q}`)).untagged.join(' ')}`);
    }
    await c.command(`COPY 1 ${box}2`);
    await c.command(`MOVE 2 ${box}2`);
    await c.command(`SELECT ${box}2`);
    out.push(...norm((await c.command('FETCH 1:* (INTERNALDATE SAVEDATE)')).untagged));
    out.push(`SAVEDON ${today}: ${(await c.command(`SEARCH SAVEDON ${today}`)).untagged.join(' ')}`);
    await c.command('UNSELECT');
    await c.command(`DELETE ${box}`);
    await c.command(`DELETE ${box}2`);
  } finally {
    await c.close();
  }
  return out;
}

test('SAVEDATE and INTERNALDATE answers equal Dovecot\'s (instants compared; Dovecot drops the zone)', async (t) => {
  if (!dovecot) {
    t.skip('the Dovecot peer is not reachable');
    return;
  }
  const box = `SaveCmp${process.pid}`;
  const t0 = Date.now();
  const theirs = await script(DOVECOT_IMAP_PORT, DOVECOT_USER, box, t0);
  const ours = await script(srv.port, ['alice', 'secret-a'], box, t0);
  assert.deepEqual(ours, theirs);
  // And the lines say what RFC 8514 requires, not just what both happen to do.
  assert.ok(ours.includes('SAVEDBEFORE 2-Jan-2000: * SEARCH'), ours.join('\n'));
  assert.ok(ours.includes('SAVEDATESUPPORTED: * SEARCH 1 2'), ours.join('\n'));
  assert.equal(ours.filter((l) => l.includes('SAVEDATE <now>')).length, 4);
});
