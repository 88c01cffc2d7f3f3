// `quire import imap` keeps each message's INTERNALDATE zone (issue 15 item 5),
// with the Dovecot peer as the source: whatever date-time string Dovecot
// answers for a message, Quire answers after the import. (Dovecot's Maildir
// keeps the instant, not the zone APPEND gave: it answers in its own local
// zone, TZ of the peer; run the peer with e.g. TZ=America/St_Johns to see
// -0330 and -0230 by season.) The import runs with this process in a zone
// none of Dovecot's answers use, so the store's fallback (the local zone)
// cannot pass for the source's. imapflow hands INTERNALDATE over as a Date,
// without zone: src/cli/imap-source.ts reads the strings themselves.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { DOVECOT_PEER } from '../helpers/peer.js';
import { withTempStore } from '../helpers/temp-store.js';
import { ImapClient, encodeName } from '../../src/cli/imap-client.js';
import { importImap } from '../../src/cli/imap-import.js';
import { formatDateTime, parseDateTime } from '../../src/wire/index.js';

function peer(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => execFile('bash', [DOVECOT_PEER, ...args], { timeout: 300_000 }, (e, so, se) => resolve({ code: e ? 1 : 0, out: String(so) + String(se) })));
}

// Zones east and west, half hours, Chatham's +1245, UTC and -0000's stand-in.
const DATES = ['03-Dec-2026 10:00:00 +0530', '14-Feb-2025 23:59:59 -0800', '01-Jan-2020 00:00:00 +0000', '29-Feb-2024 12:30:00 +1245', ' 7-Jul-2023 07:07:07 -0330'];
const FOLDER = 'Zonen/Überall';

let available = false;
let user = '';
let port = 10143;
/** Dovecot's INTERNALDATE answers per folder, in UID order (the oracle). */
const oracle = new Map<string, string[]>();

before(async () => {
  if (!DOVECOT_PEER || !existsSync(DOVECOT_PEER) || (await peer(['start'])).code !== 0) return;
  user = `quirezone${process.pid}${Date.now() % 100000}`;
  if ((await peer(['adduser', user, 'pass'])).code !== 0) return;
  const env = Object.fromEntries((await peer(['env'])).out.trim().split(/\s+/).map((kv) => kv.split('=') as [string, string]));
  port = Number(env.DOVECOT_PEER_PORT ?? 10143);
  const c = await ImapClient.connect({ host: '127.0.0.1', port, security: 'plain' });
  try {
    await c.login(user, 'pass');
    await c.ok('CREATE ', `"${encodeName(FOLDER)}"`);
    const batch = DATES.map((date, i) => ({ flags: [], date, data: Buffer.from(`Subject: zone ${i}\r\nFrom: a@example.com\r\n\r\nbody ${i}\r\n`) }));
    await c.append('INBOX', batch);
    await c.append(encodeName(FOLDER), batch.slice(0, 2));
    for (const folder of ['INBOX', FOLDER]) {
      await c.ok('EXAMINE ', `"${encodeName(folder)}"`);
      const got = await c.fetchMessages((await c.listFrom(1)).map((m) => m.uid));
      oracle.set(folder, got.sort((a, b) => a.uid - b.uid).map((m) => m.internalDate!));
    }
    await c.logout();
  } finally {
    c.destroy();
  }
  available = true;
});

/** A zone whose offsets (with and without DST) none of Dovecot's answers use. */
function otherZone(): string {
  const used = new Set([...oracle.values()].flat().map((d) => parseDateTime(d)!.tzOffsetMinutes));
  return [765, 825].some((z) => used.has(z)) ? 'Asia/Kathmandu' : 'Pacific/Chatham';
}

test('import imap from Dovecot: every INTERNALDATE keeps the zone Dovecot answers (stored, and the same date-time back)', async (t) => {
  if (!available) return t.skip('no Dovecot peer');
  const savedTz = process.env.TZ;
  process.env.TZ = otherZone();
  try {
    await withTempStore('quire-zone-', async (store, userId, dir) => {
      const source = { host: '127.0.0.1', port, security: 'plain' as const, user, password: 'pass' };
      const s = await importImap(store, userId, source, { stateFile: path.join(dir, 'state.json') });
      assert.equal(s.imported, DATES.length + 2);
      for (const [folder, want] of oracle) {
        const mb = (await store.getMailbox(userId, folder))!;
        assert.ok(mb, folder);
        const msgs = await store.listMessages(mb.id);
        assert.equal(msgs.length, want.length);
        assert.deepEqual(
          msgs.map((m) => parseDateTime(formatDateTime(m.internalDate, m.internalTz ?? 0))),
          want.map((d) => parseDateTime(d)),
          `${folder}: INTERNALDATE as Dovecot answers it (zone included)`,
        );
      }
    });
  } finally {
    if (savedTz === undefined) delete process.env.TZ;
    else process.env.TZ = savedTz;
  }
});
