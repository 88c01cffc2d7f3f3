// Draining for the balancer (issue 13 item 5): after SIGTERM a single
// `quire serve` with shutdownDrainMs answers /readyz with 503 while it still
// serves (new sessions and a delivery in progress), so that HAProxy's health
// check takes the node out before the listeners close; the delivery is
// acknowledged and kept, and the process exits 0.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { RawClient } from '../helpers/imap.js';
import { httpGet, startServe, until } from './helpers.js';

test('SIGTERM: /readyz is 503 while sessions drain; the delivery in progress is acknowledged and kept', { timeout: 90_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'quire-drain-'));
  const data = join(dir, 'data');
  const srv = await startServe(data, join(dir, 'quire.log'), [], { QUIRE_SHUTDOWN_DRAIN: '3000' });
  try {
    assert.equal((await httpGet(srv.adminPort!, '/readyz')).status, 200);
    const s = net.connect(srv.lmtpPort, '127.0.0.1');
    let got = '';
    s.on('data', (d: Buffer) => (got += d.toString()));
    await until(() => /^220 /m.test(got), 'LMTP greeting');
    s.write(`LHLO test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<${srv.user}>\r\nDATA\r\n`);
    await until(() => /^354 /m.test(got), '354');
    s.write('Subject: drain\r\n\r\nhalf of it');
    srv.child.kill('SIGTERM');
    // The admin listener is still there and says "not ready" while the delivery holds the drain.
    let r = await httpGet(srv.adminPort!, '/readyz').catch(() => null);
    for (let i = 0; i < 40 && r?.status === 200; i++) {
      await new Promise((res) => setTimeout(res, 25));
      r = await httpGet(srv.adminPort!, '/readyz').catch(() => null);
    }
    assert.equal(r?.status, 503);
    assert.equal((await httpGet(srv.adminPort!, '/healthz')).status, 200);
    // Still serving during the drain delay: a new session logs in.
    const late = await RawClient.connect(srv.imapPort, { login: [srv.user!, srv.password!] });
    assert.match((await late.command('NOOP')).tagged, /OK/);
    s.write(' and the rest\r\n.\r\n');
    await until(() => /^250 /m.test(got.split('354')[1] ?? ''), 'the delivery acknowledged');
    assert.equal(await srv.exited, 0);
  } finally {
    if (srv.child.exitCode === null) srv.child.kill('SIGKILL');
  }
  // The acknowledged message is there after the restart.
  const again = await startServe(data, join(dir, 'quire2.log'));
  try {
    const c = await RawClient.connect(again.imapPort, { login: [srv.user!, srv.password!] });
    const sel = await c.command('SELECT INBOX');
    assert.ok(sel.untagged.some((l) => /^\* 1 EXISTS/.test(l)), sel.untagged.join('\n'));
    const f = await c.command('FETCH 1 BODY[TEXT]');
    assert.match(f.untagged.join('\n'), /half of it and the rest/);
  } finally {
    again.child.kill('SIGTERM');
    await again.exited;
  }
});
