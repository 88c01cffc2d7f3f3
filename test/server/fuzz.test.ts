// Hostile input over a real socket: random command lines built from IMAP
// pieces, in every state, must only ever produce tagged/untagged answers or
// a clean BYE, never a crash, an unexpected-error log (SERVERBUG) or a hang,
// and other users' sessions keep working meanwhile (STYLE.md habit 4).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient, message } from '../helpers/imap.js';
import { prng as rng } from '../helpers/rng.js';

let srv: TestServer;
before(async () => { srv = await startTestServer(); });
after(async () => { await srv.stop(); });


const COMMANDS = ['CAPABILITY', 'NOOP', 'ID', 'ENABLE', 'SELECT', 'EXAMINE', 'CREATE', 'DELETE', 'RENAME', 'SUBSCRIBE', 'UNSUBSCRIBE',
  'LIST', 'LSUB', 'STATUS', 'APPEND', 'CHECK', 'CLOSE', 'UNSELECT', 'EXPUNGE', 'SEARCH', 'FETCH', 'STORE', 'COPY', 'MOVE',
  'UID FETCH', 'UID SEARCH', 'UID STORE', 'UID COPY', 'UID MOVE', 'UID EXPUNGE', 'NAMESPACE', 'GETQUOTA', 'GETQUOTAROOT', 'SETQUOTA', 'XYZZY'];
const ATOMS = ['INBOX', 'inbox', 'Fz', 'Fz/Sub', '1', '*', '1:*', '$', '0', '4294967296', '2,4:3', 'FLAGS', '+FLAGS.SILENT', '\\Seen', '\\Bogus',
  '$Label', 'BODY[]', 'BODY.PEEK[HEADER.FIELDS (From)]', 'BINARY[1]<0.5>', 'BODY[1.2.3.MIME]', 'ENVELOPE', 'BODYSTRUCTURE', 'ALL',
  'RETURN', 'CHARSET', 'UTF-8', 'KOI8-R', 'NOT', 'OR', 'HEADER', 'SUBJECT', 'TEXT', 'SINCE', '1-Jan-2020', '31-Feb-2020', 'MODSEQ',
  'CHANGEDSINCE', 'UNCHANGEDSINCE', 'VANISHED', 'QRESYNC', 'CONDSTORE', 'IMAP4rev2', 'NIL', 'MESSAGES', 'UIDNEXT', 'HIGHESTMODSEQ',
  '%', '&AGE-', '&Jjo-', '..', '~', '"', '\\', ']', '[', '<1.2>', 'STORAGE', '""'];

function piece(r: () => number, depth: number): string {
  const x = r();
  if (x < 0.55) return ATOMS[Math.floor(r() * ATOMS.length)]!;
  if (x < 0.7) return `"${ATOMS[Math.floor(r() * ATOMS.length)]!.replace(/["\\]/g, '')}"`;
  if (x < 0.8 && depth < 4) return `(${Array.from({ length: Math.floor(r() * 4) }, () => piece(r, depth + 1)).join(' ')})`;
  if (x < 0.88) return `{${Math.floor(r() * 6)}+}\r\n${'abcdef'.slice(0, Math.floor(r() * 6))}`;
  if (x < 0.94) return String(Math.floor(r() * 100));
  return Array.from({ length: 1 + Math.floor(r() * 8) }, () => String.fromCharCode(33 + Math.floor(r() * 94))).join('');
}

async function session(seed: number, login: boolean, select: boolean, lines: number): Promise<void> {
  const r = rng(seed);
  const c = await RawClient.connect(srv.port, login ? { login: ['alice', 'secret-a'] } : {});
  if (select) await c.command('SELECT Fz');
  let sent = 0;
  for (let i = 0; i < lines; i++) {
    const cmd = COMMANDS[Math.floor(r() * COMMANDS.length)]!;
    const args = Array.from({ length: Math.floor(r() * 5) }, () => piece(r, 0)).join(' ');
    c.write(`f${i} ${cmd}${args ? ' ' + args : ''}\r\n`);
    sent++;
  }
  // Whatever happened, the connection ends in a tagged answer to a final NOOP or a BYE: never silence.
  c.write('zz NOOP\r\n');
  const lines2 = await c.readUntil((l) => l.startsWith('zz ') || l.startsWith('* BYE'), 20_000).catch((e: Error) => {
    throw new Error(`seed ${seed}: ${e.message}`);
  });
  assert.ok(lines2.length > 0 && sent > 0);
  await c.close();
}

test('random command lines in every state never crash the server or log an unexpected error', async () => {
  const setup = await RawClient.connect(srv.port, { login: ['alice', 'secret-a'] });
  await setup.command('CREATE Fz');
  for (let i = 1; i <= 5; i++) await setup.append('Fz', message(i));
  await setup.close();
  // Bob idles in his INBOX throughout: his session must stay responsive.
  const bob = await RawClient.connect(srv.port, { login: ['bob', 'secret-b'] });
  await bob.command('SELECT INBOX');
  const base = Number(process.env.QUIRE_FUZZ_SEED ?? 7);
  for (let k = 0; k < 30; k++) {
    await session(base * 1000 + k, k % 3 !== 0, k % 3 === 2, 40);
    const t0 = Date.now();
    assert.match((await bob.command('NOOP')).tagged, / OK/);
    assert.ok(Date.now() - t0 < 2000, 'other users are not stalled');
  }
  await bob.close();
  assert.deepEqual(srv.errors, [], 'no SERVERBUG');
});

test('raw garbage bytes get BAD or BYE, never a crash', async () => {
  const r = rng(99);
  for (let k = 0; k < 20; k++) {
    const s = net.connect(srv.port, '127.0.0.1');
    await new Promise((res) => s.once('data', res));
    const junk = Buffer.from(Array.from({ length: 200 + Math.floor(r() * 2000) }, () => Math.floor(r() * 256)));
    s.write(junk);
    s.write('\r\nzz LOGOUT\r\n');
    await new Promise<void>((res) => { s.on('close', () => res()); s.on('error', () => res()); setTimeout(() => { s.destroy(); res(); }, 5000); });
  }
  const c = await RawClient.connect(srv.port, { login: ['alice', 'secret-a'] });
  assert.match((await c.command('NOOP')).tagged, / OK/);
  await c.close();
  assert.deepEqual(srv.errors, []);
});

test('a client that pipelines commands without reading answers does not grow server memory without bound', async () => {
  const c = await RawClient.connect(srv.port, { login: ['alice', 'secret-a'] });
  c.socket.pause(); // stop reading
  // Each LIST answers with ~7 lines; 100,000 of them would queue tens of MB if the server kept going.
  c.socket.write('x LIST "" "*"\r\n'.repeat(100_000));
  await new Promise((r) => setTimeout(r, 2000));
  const queued = srv.server.bufferedOutputBytes();
  assert.ok(queued < 256 * 1024, `output queued for the non-reading client: ${queued} bytes`);
  // Other users are unaffected meanwhile.
  const bob = await RawClient.connect(srv.port, { login: ['bob', 'secret-b'] });
  assert.match((await bob.command('NOOP')).tagged, / OK/);
  await bob.close();
  c.socket.destroy();
});
