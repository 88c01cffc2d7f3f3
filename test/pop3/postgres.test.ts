// POP3 over the PostgreSQL store (issue 13 with issue 17): a real POP3
// listener on a PG-backed store, real sockets. LIST and STAT give the exact
// size of the CRLF form RETR sends (RFC 1939 §11) for bodies stored with bare
// LFs, one of them across blob chunks; RETR sends those bytes exactly; DELE
// then QUIT expunges (RFC 1939 §6 UPDATE state), which another node of the
// same schema sees; RSET and a dropped connection expunge nothing.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Authenticator } from '../../src/auth/authenticator.js';
import { loadConfig, toPop3Options } from '../../src/cli/config.js';
import { provisionUser } from '../../src/cli/users.js';
import { startPop3, type RunningPop3 } from '../../src/pop3/server.js';
import { openPostgresStore, type PgMailStore } from '../../src/store/postgres/index.js';
import type { Logger } from '../../src/server/options.js';
import { PG_URL, dropSchema, freshSchema, pgSkip } from '../helpers/pg.js';
import { MAILDROP_BODIES, crlfForm } from '../store/keys-maildrop-contract.js';
import { Pop3Client, pop3Tls } from './helpers.js';

const skip = await pgSkip();
const schema = freshSchema('pop3');
let store: PgMailStore;
let pop3: RunningPop3;
let port = 0;
let dir = '';
const errors: string[] = [];

before(async () => {
  if (skip) return;
  dir = await mkdtemp(path.join(tmpdir(), 'quire-pop3-pg-'));
  store = await openPostgresStore({ url: PG_URL, schema, poolSize: 4 });
  const config = loadConfig({ env: {}, flags: { data: dir } });
  const log: Logger = { debug() {}, info() {}, warn() {}, error: (m, f) => void errors.push(`${m} ${JSON.stringify(f ?? {})}`) };
  const material = await pop3Tls();
  const po = toPop3Options(config, { key: material.key, cert: material.cert }, log)!;
  po.pop3 = [{ host: '127.0.0.1', port: 0 }];
  po.pop3s = [];
  pop3 = await startPop3(store, new Authenticator(store, { baseDelayMs: 20, maxDelayMs: 100 }), po);
  port = pop3.addresses.pop3[0]!.port;
});

after(async () => {
  if (skip) return;
  await pop3?.close();
  await store?.close();
  await dropSchema(schema);
  await rm(dir, { recursive: true, force: true });
  assert.deepEqual(errors, [], 'no unexpected POP3 errors');
});

/** The message as RETR sent it: stuffing undone, terminator removed. */
function unstuffed(raw: Buffer): Buffer {
  const lines = raw.toString('latin1').split('\r\n');
  lines.splice(-2);
  return Buffer.from(lines.map((l) => (l.startsWith('.') ? l.slice(1) : l)).join('\r\n') + '\r\n', 'latin1');
}

async function login(name: string): Promise<Pop3Client> {
  const c = await Pop3Client.connect(port);
  assert.match(await c.line(), /^\+OK /);
  assert.match(await c.login(name, 'pw-pop3-pg'), /^\+OK /);
  return c;
}

test('a PostgreSQL-backed server serves POP3: exact LIST sizes, exact RETR bytes, DELE + QUIT expunges', { skip, timeout: 60_000 }, async () => {
  const u = await provisionUser(store, 'popper', 'pw-pop3-pg');
  const inbox = (await store.getMailbox(u.id, 'INBOX'))!;
  await store.appendMessages(inbox.id, MAILDROP_BODIES.map((data) => ({ data, flags: [] })));
  const want = MAILDROP_BODIES.map(crlfForm);

  let c = await login('popper');
  assert.equal(await c.cmd('STAT'), `+OK ${want.length} ${want.reduce((a, b) => a + b.length, 0)}`);
  assert.deepEqual((await c.cmdMulti('LIST')).lines, want.map((b, i) => `${i + 1} ${b.length}`));
  for (let i = 1; i <= want.length; i++) {
    assert.equal(await c.cmd(`RETR ${i}`), `+OK ${want[i - 1]!.length} octets`);
    const got = unstuffed(await c.multilineRaw());
    assert.ok(got.equals(want[i - 1]!), `RETR ${i} byte for byte`);
  }
  // RSET undoes DELE; a dropped connection (no QUIT) expunges nothing (RFC 1939 §6).
  assert.match(await c.cmd('DELE 1'), /^\+OK/);
  assert.match(await c.cmd('RSET'), /^\+OK/);
  assert.match(await c.cmd('DELE 2'), /^\+OK/);
  c.close();
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(await store.listUids(inbox.id), [1, 2, 3, 4]);

  // Another node of the same schema hears the expunge of the UPDATE state.
  const other = await openPostgresStore({ url: PG_URL, schema, poolSize: 2 });
  try {
    const heard: number[] = [];
    other.feed.subscribe(u.id, (ch) => {
      if (ch.kind === 'expunge' && ch.mailboxId === inbox.id) heard.push(...ch.uids);
    });
    await other.getUserById(u.id);
    c = await login('popper');
    assert.match(await c.cmd('DELE 1'), /^\+OK/);
    assert.match(await c.cmd('DELE 3'), /^\+OK/);
    assert.match(await c.cmd('RETR 1'), /^-ERR/);
    assert.match(await c.cmd('QUIT'), /^\+OK/);
    await c.waitClosed();
    assert.deepEqual(await store.listUids(inbox.id), [2, 4]);
    const deadline = Date.now() + 5000;
    while (heard.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(heard.sort((a, b) => a - b), [1, 3]);
  } finally {
    await other.close();
  }
  // The next session numbers what is left 1..n, sizes still exact.
  c = await login('popper');
  assert.deepEqual((await c.cmdMulti('LIST')).lines, [`1 ${want[1]!.length}`, `2 ${want[3]!.length}`]);
  assert.equal(await c.cmd('RETR 2'), `+OK ${want[3]!.length} octets`);
  assert.ok(unstuffed(await c.multilineRaw()).equals(want[3]!));
  assert.match(await c.cmd('QUIT'), /^\+OK/);
});
