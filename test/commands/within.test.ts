// WITHIN (RFC 5032): SEARCH OLDER / YOUNGER by INTERNALDATE relative to now,
// answered by the store's index and by the evaluator alike; bad intervals.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient } from '../helpers/imap.js';
import { withinTarget } from '../../src/search/meta.js';

let srv: TestServer;
const login = ['alice', 'secret-a'] as [string, string];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function imapDate(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `"${p(d.getUTCDate())}-${MONTHS[d.getUTCMonth()]}-${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000"`;
}

before(async () => {
  srv = await startTestServer();
  const c = await RawClient.connect(srv.port, { login });
  await c.command('CREATE W');
  const now = Date.now();
  await c.append('W', 'Subject: ten days\r\n\r\nx\r\n', imapDate(now - 10 * 86_400_000));
  await c.append('W', 'Subject: two hours\r\n\r\nx\r\n', imapDate(now - 2 * 3_600_000));
  await c.append('W', 'Subject: a minute\r\n\r\nx\r\n', imapDate(now - 60_000));
  await c.close();
});
after(async () => {
  await srv.stop();
});

test('OLDER and YOUNGER select by INTERNALDATE against now, to the second', async () => {
  const c = await RawClient.connect(srv.port, { login });
  assert.ok((await c.command('CAPABILITY')).untagged[0]!.split(' ').includes('WITHIN'));
  await c.command('EXAMINE W');
  const cases: [string, string][] = [
    ['YOUNGER 3600', '* SEARCH 3'],
    ['YOUNGER 86400', '* SEARCH 2 3'],
    ['OLDER 86400', '* SEARCH 1'],
    ['OLDER 3600', '* SEARCH 1 2'],
    ['OLDER 1000000000', '* SEARCH'],
    ['NOT YOUNGER 86400', '* SEARCH 1'],
    ['OLDER 3600 YOUNGER 86400', '* SEARCH 2'],
    // Through the evaluator (MODSEQ makes the search read metadata itself).
    ['YOUNGER 3600 MODSEQ 1', '* SEARCH 3 (MODSEQ'],
  ];
  for (const [q, want] of cases) {
    const r = await c.command(`SEARCH ${q}`);
    assert.match(r.tagged, /OK/, q);
    assert.ok(r.untagged.some((l) => l.startsWith(want)), `${q}: ${r.raw}`);
  }
  for (const q of ['OLDER', 'OLDER 0', 'YOUNGER -5', 'YOUNGER x', 'OLDER 99999999999']) assert.match((await c.command(`SEARCH ${q}`)).tagged, /BAD/, q);
  await c.close();
});

test('the target time is now less the interval, in whole seconds', () => {
  assert.equal(withinTarget(60, 1_700_000_000_999), 1_699_999_940_000);
});
