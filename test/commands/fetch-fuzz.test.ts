// Property test through a real server: random and mutated messages are
// APPENDed to Quire and fetched back over a socket. For every message:
// BODY[] is exactly the appended bytes, RFC822.SIZE is their length,
// ENVELOPE / BODY / BODYSTRUCTURE parse as valid RFC 9051 syntax, and for
// every part BODY[n] succeeds and BINARY.SIZE[n] equals the length of
// BINARY[n] (or both fail with [UNKNOWN-CTE]). Seeded: QUIRE_FUZZ_SEED=n
// reproduces a run, QUIRE_FUZZ_COUNT=n changes its size.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { ByteClient } from '../helpers/bytes-client.js';
import { checkBody, checkEnvelope, parseValue, partPaths, type Value } from '../helpers/imap-parse.js';
import { fixture, fixtureNames } from '../mime/helpers.js';
import { prng as rng } from '../helpers/rng.js';

const SEED = Number(process.env.QUIRE_FUZZ_SEED ?? 20240601);
const COUNT = Number(process.env.QUIRE_FUZZ_COUNT ?? 120);


const rand = rng(SEED);
const int = (n: number) => Math.floor(rand() * n);
const pick = <T>(a: readonly T[]): T => a[int(a.length)]!;

const TYPES = ['text/plain', 'text/html', 'application/octet-stream', 'image/png', 'message/rfc822', 'message/global', 'message/delivery-status', 'text/calendar'];
const ENCODINGS = ['7bit', '8bit', 'binary', 'base64', 'quoted-printable', 'x-uuencode', 'BASE64', 'Quoted-Printable'];
const CHARSETS = ['utf-8', 'iso-8859-1', 'koi8-r', 'shift_jis', 'iso-2022-jp', 'gb2312', 'bogus-charset'];
const WORDS = ['hello', 'Grüße', 'Привет', '你好', '=?utf-8?B?SGk=?=', '=?iso-8859-1?q?caf=E9?=', '"quoted"', 'a;b', '(comment)', '<x@y>', '\\', '', ' '];

function text(): string {
  let s = '';
  for (let i = int(8); i > 0; i--) s += pick(WORDS) + pick([' ', '\r\n', '\n', '=', '=\r\n', '--b1', '\t']);
  return s;
}

function header(): string {
  const fields = ['From: ' + pick(['a@example.com', `"${pick(WORDS)}" <a@b.c>`, 'group: a@b.c, c@d;', '', '<@r:x@y>', text()]), 'Subject: ' + text().replace(/\r?\n/g, '\r\n '), 'To: ' + pick(['x@y', 'undisclosed-recipients:;', text()])];
  if (rand() < 0.5) fields.push('Date: ' + pick(['Mon, 1 Jan 2024 00:00:00 +0000', 'garbage', '']));
  if (rand() < 0.5) fields.push('Message-ID: ' + pick(['<m@x>', '', 'no brackets']));
  return fields.filter(() => rand() < 0.9).join('\r\n');
}

let boundaryN = 0;

/** A random entity (header + body) nested at most `depth` levels. */
function entity(depth: number): string {
  const params = rand() < 0.3 ? `; name*0*=${pick(CHARSETS)}''%E2%82%AC; name*1="${pick(WORDS)}"` : rand() < 0.5 ? `; charset=${pick(CHARSETS)}` : '';
  if (depth > 0 && rand() < 0.4) {
    const b = `b${++boundaryN}${pick(['', ' x', '=='])}`;
    const parts: string[] = [];
    for (let i = 1 + int(3); i > 0; i--) parts.push(entity(depth - 1));
    const close = rand() < 0.85 ? `\r\n--${b}--${pick(['', '  ', ' junk'])}\r\n${pick(['', 'epilogue'])}` : '';
    const sep = pick(['\r\n', '\n']);
    return `Content-Type: multipart/${pick(['mixed', 'alternative', 'digest', 'related', 'signed'])}; boundary="${b}"${params}\r\n\r\n${pick(['', 'preamble\r\n'])}--${b}${sep}` + parts.join(`\r\n--${b}${sep}`) + close;
  }
  const type = pick(TYPES);
  if ((type === 'message/rfc822' || type === 'message/global') && depth > 0) {
    return `Content-Type: ${type}\r\n${rand() < 0.2 ? 'Content-Transfer-Encoding: base64\r\n' : ''}\r\n${header()}\r\n${entity(depth - 1)}`;
  }
  const enc = pick(ENCODINGS);
  let body: string;
  if (/base64/i.test(enc)) body = Buffer.from(text()).toString('base64').replace(/(.{76})/g, '$1\r\n') + pick(['', '!!', '=', '\r\n']);
  else body = text();
  const disp = rand() < 0.3 ? `Content-Disposition: ${pick(['attachment', 'inline', 'ATTACHMENT'])}; filename=${pick(['"a b.txt"', 'plain.txt', '"unterminated', '=?utf-8?q?x?='])}\r\n` : '';
  return `Content-Type: ${type}${params}\r\nContent-Transfer-Encoding: ${enc}\r\n${disp}${rand() < 0.05 ? '' : '\r\n'}${body}`;
}

function randomMessage(): Buffer {
  const m = `${header()}\r\nMIME-Version: 1.0\r\n${entity(3)}`;
  let s = rand() < 0.2 ? m.replace(/\r\n/g, '\n') : m;
  if (rand() < 0.2) s = s.slice(0, int(s.length + 1));
  return Buffer.from(s, 'utf8');
}

const SNIPPETS = ['\r\n', '\n', '\r\n\r\n', '--b1\r\n', '--b1--\r\n', 'Content-Type: multipart/mixed; boundary=b1\r\n', 'Content-Type: message/rfc822\r\n\r\n', 'Content-Transfer-Encoding: base64\r\n', '=?utf-8?B?', '\xff\xfe', '"', '(', ';', '{5}\r\n'];

function mutate(src: Buffer): Buffer {
  let b = Buffer.from(src);
  for (let k = 1 + int(4); k > 0; k--) {
    const at = int(b.length + 1);
    switch (int(5)) {
      case 0: // flip bytes
        for (let i = 0; i < 4 && b.length; i++) b[int(b.length)] = int(256);
        break;
      case 1: // truncate
        b = b.subarray(0, at);
        break;
      case 2: // insert a snippet
        b = Buffer.concat([b.subarray(0, at), Buffer.from(pick(SNIPPETS), 'latin1'), b.subarray(at)]);
        break;
      case 3: // delete a range
        b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + int(40)))]);
        break;
      default: // duplicate a range
        b = Buffer.concat([b.subarray(0, at), b.subarray(at, at + int(200)), b.subarray(at)]);
    }
  }
  // NUL needs literal8 on APPEND; keep to plain literals.
  for (let i = 0; i < b.length; i++) if (b[i] === 0) b[i] = 1;
  return b.length ? b : Buffer.from('x');
}

/** The FETCH data items of one answer, parsed: name -> value. */
function fetchItems(s: string): Map<string, Value> {
  const out = new Map<string, Value>();
  let i = 0;
  while (i < s.length) {
    const m = /^[A-Z0-9.]+(\[[^\]]*\](<\d+>)?)? /.exec(s.slice(i));
    if (!m) throw new Error(`bad item at ${i}: ${JSON.stringify(s.slice(i, i + 40))}`);
    i += m[0].length;
    const [v, j] = parseValue(s, i);
    out.set(m[0].trim(), v);
    i = j;
    if (i < s.length) {
      assert.equal(s[i], ' ', `SP between items at ${i}`);
      i++;
    }
  }
  return out;
}

let srv: TestServer;
let c: ByteClient;
const messages: { label: string; data: Buffer }[] = [];

before(async () => {
  const corpus = fixtureNames();
  for (let n = 0; n < COUNT; n++) {
    if (n % 2 === 0) messages.push({ label: `random #${n}`, data: randomMessage() });
    else {
      const name = pick(corpus);
      messages.push({ label: `mutated ${name} #${n}`, data: mutate(fixture(name)) });
    }
  }
  srv = await startTestServer();
  c = await ByteClient.connect(srv.port, ['alice', 'secret-a']);
  for (const m of messages) assert.match(await c.append('INBOX', m.data), /^OK/, m.label);
  assert.match((await c.command('SELECT INBOX')).status, /^OK/);
});

after(async () => {
  c.close();
  await srv.stop();
});

test(`${COUNT} random and mutated messages round-trip through FETCH (seed ${SEED})`, async () => {
  let parts = 0;
  for (let k = 0; k < messages.length; k++) {
    const { label, data } = messages[k]!;
    const seq = k + 1;
    const ctx = `${label} (seed ${SEED}, message ${seq})`;
    const whole = await c.fetch(seq, 'RFC822.SIZE BODY.PEEK[]');
    assert.equal(whole, `RFC822.SIZE ${data.length} BODY[] {${data.length}}\r\n${data.toString('latin1')}`, ctx);

    const items = fetchItems(await c.fetch(seq, 'ENVELOPE BODY BODYSTRUCTURE'));
    assert.doesNotThrow(() => checkEnvelope(items.get('ENVELOPE')!), ctx);
    assert.doesNotThrow(() => checkBody(items.get('BODY')!, false), ctx);
    assert.doesNotThrow(() => checkBody(items.get('BODYSTRUCTURE')!, true), ctx);

    for (const p of partPaths(items.get('BODYSTRUCTURE')!)) {
      parts++;
      const sec = await c.fetch(seq, `BODY.PEEK[${p.path}] BODY.PEEK[${p.path}.MIME]`);
      assert.doesNotThrow(() => fetchItems(sec), `${ctx} BODY[${p.path}]`);
      if (p.kind !== 'leaf') continue;
      const size = await c.fetch(seq, `BINARY.SIZE[${p.path}]`);
      const bin = await c.fetch(seq, `BINARY.PEEK[${p.path}]`);
      if (/^NO /.test(size) || /^NO /.test(bin)) {
        assert.match(size, /^NO \[UNKNOWN-CTE\]/, `${ctx} BINARY.SIZE[${p.path}]`);
        assert.match(bin, /^NO \[UNKNOWN-CTE\]/, `${ctx} BINARY[${p.path}]`);
        continue;
      }
      const n = Number(/^BINARY\.SIZE\[[\d.]+\] (\d+)$/.exec(size)?.[1]);
      const lit = /^BINARY\[[\d.]+\] ~?\{(\d+)\}\r\n/.exec(bin);
      assert.ok(lit, `${ctx} BINARY[${p.path}]: ${bin.slice(0, 80)}`);
      assert.equal(bin.length - lit[0].length, Number(lit[1]), `${ctx} BINARY[${p.path}] literal length`);
      assert.equal(n, Number(lit[1]), `${ctx} BINARY.SIZE[${p.path}] vs BINARY`);
    }
  }
  assert.ok(parts > COUNT, `parts checked: ${parts}`);
});

test('the syntax checks reject malformed values', () => {
  const bad = [
    '("text" "plain" NIL NIL NIL "7bit" 5)', // text without lines
    '("text" "plain" ("charset") NIL NIL "7bit" 5 1)', // odd parameter list
    '(("text" "plain" NIL NIL NIL "7bit" 5 1) "mixed" NIL NIL NIL NIL NIL)', // too many extension fields
    '("message" "rfc822" NIL NIL NIL "7bit" 5 NIL ("text" "plain" NIL NIL NIL "7bit" 0 0) 0)', // envelope missing
  ];
  for (const b of bad) assert.throws(() => checkBody(parseValue(b, 0)[0], b.includes('"mixed"')), b);
  assert.throws(() => parseValue('"a\rb"', 0));
  assert.throws(() => parseValue('{5}\r\nab', 0));
  assert.throws(() => checkEnvelope(parseValue('(NIL NIL NIL)', 0)[0]));
  assert.doesNotThrow(() => checkBody(parseValue('(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 5 1)("image" "png" NIL NIL NIL "base64" 8) "mixed")', 0)[0], false));
});
