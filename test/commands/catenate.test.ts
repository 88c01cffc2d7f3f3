// CATENATE (RFC 4469) over real sockets: TEXT literals and relative URLs of
// the user's own mailboxes (RFC 4469 §3), sections and ;PARTIAL= (RFC 5550
// §5), MULTIAPPEND all-or-nothing (RFC 3502), REPLACE with CATENATE (RFC 8508
// §5), [BADURL url] and [TOOBIG], and a second session seeing the result.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient } from '../helpers/imap.js';
import { MAX_CATENATE_PARTS } from '../../src/commands/catenate.js';
import { parseImapUrl, UrlError } from '../../src/commands/imapurl.js';

let srv: TestServer;
const login = ['alice', 'secret-a'] as [string, string];
before(async () => {
  srv = await startTestServer({ tweak: (o) => { o.limits.maxMessageSize = 100_000; } });
});
after(async () => { await srv.stop(); });

const SOURCE =
  'From: a@example.com\r\nTo: b@example.com\r\nSubject: hi\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n' +
  '--XX\r\nContent-Type: text/plain\r\n\r\nhello\r\n--XX\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAECAw==\r\n--XX--\r\n';

const lit = (s: string) => `{${Buffer.byteLength(s)}+}\r\n${s}`;

async function setup(c: RawClient, box: string): Promise<number> {
  await c.command(`CREATE ${box}`);
  const r = await c.command(`APPEND ${box} ${lit(SOURCE)}`);
  return Number(/APPENDUID (\d+) /.exec(r.tagged)![1]);
}

async function body(c: RawClient, box: string, uid: number): Promise<string> {
  await c.command(`EXAMINE ${box}`);
  const r = await c.command(`UID FETCH ${uid} BODY.PEEK[]`);
  const m = /BODY\[\] \{(\d+)\}\r\n([\s\S]*)\)$/.exec(r.untagged.join('\n'));
  assert.ok(m, r.untagged.join('\n'));
  assert.equal(Buffer.byteLength(m[2]!), Number(m[1]));
  return m[2]!;
}

test('CATENATE joins TEXT literals and URL parts byte for byte; the source stays unseen; another session sees the message', async () => {
  const c = await RawClient.connect(srv.port, { login });
  const v = await setup(c, 'Cat1');
  const r = await c.command(
    `APPEND Cat1 (\\Flagged) CATENATE (TEXT ${lit('Subject: fwd\r\n\r\n')} URL "/Cat1/;UID=1/;SECTION=1" TEXT ${lit('|')} URL "/Cat1;UIDVALIDITY=${v}/;UID=1/;SECTION=1.MIME" URL "/cat1/;uid=1/;section=2/;partial=2.3")`,
    'a1',
  );
  // The mailbox name is case-sensitive except INBOX: "cat1" names nothing.
  assert.match(r.tagged, /^a1 NO \[BADURL \/cat1\/;uid=1\/;section=2\/;partial=2.3\] /);
  const ok = await c.command(
    `APPEND Cat1 (\\Flagged) CATENATE (TEXT ${lit('Subject: fwd\r\n\r\n')} URL "/Cat1/;UID=1/;SECTION=1" TEXT ${lit('|')} URL "/Cat1;UIDVALIDITY=${v}/;UID=1/;SECTION=1.MIME" URL "/Cat1/;uid=1/;section=2/;partial=2.3")`,
    'a2',
  );
  assert.match(ok.tagged, new RegExp(`^a2 OK \\[APPENDUID ${v} 2\\] `));
  const w = await RawClient.connect(srv.port, { login });
  assert.equal(await body(w, 'Cat1', 2), 'Subject: fwd\r\n\r\nhello|Content-Type: text/plain\r\n\r\nECA');
  const f = await w.command('UID FETCH 1:2 FLAGS');
  // RFC 4469 §3: catenating a part does not set \Seen on its message.
  assert.deepEqual(f.untagged.map((l) => l.replace(/ ?\\Recent/, '')), ['* 1 FETCH (UID 1 FLAGS ())', '* 2 FETCH (UID 2 FLAGS (\\Flagged))']);
  // The whole message, its HEADER and TEXT, HEADER.FIELDS with a percent-encoded field list.
  await c.command('SELECT Cat1');
  const h = await c.command(`APPEND Cat1 CATENATE (URL ";UID=1/;SECTION=HEADER.FIELDS%20(SUBJECT)" URL ";UID=1/;SECTION=TEXT" URL "/Cat1/;UID=1")`, 'a3');
  assert.match(h.tagged, /^a3 OK \[APPENDUID \d+ 3\] /);
  const text = SOURCE.slice(SOURCE.indexOf('\r\n\r\n') + 4);
  assert.equal(await body(w, 'Cat1', 3), `Subject: hi\r\n\r\n${text}${SOURCE}`);
  await c.close();
  await w.close();
});

test('MULTIAPPEND with CATENATE: all or nothing; a missing part is empty; INBOX in any case', async () => {
  const c = await RawClient.connect(srv.port, { login });
  await setup(c, 'Cat2');
  await c.command(`APPEND INBOX ${lit('Subject: in\r\n\r\nbox\r\n')}`);
  const bad = await c.command(`APPEND Cat2 CATENATE (URL "/Cat2/;UID=1/;SECTION=1") CATENATE (URL "/Cat2/;UID=9")`, 'm1');
  assert.match(bad.tagged, /^m1 NO \[BADURL \/Cat2\/;UID=9\] /);
  const st = await c.command('STATUS Cat2 (MESSAGES)');
  assert.deepEqual(st.untagged, ['* STATUS Cat2 (MESSAGES 1)']);
  const ok = await c.command(`APPEND Cat2 CATENATE (URL "/Cat2/;UID=1/;SECTION=7") ${lit('plain\r\n')} CATENATE (URL "/inbox/;UID=1/;SECTION=TEXT")`, 'm2');
  assert.match(ok.tagged, /^m2 OK \[APPENDUID \d+ 2:4\] /);
  const w = await RawClient.connect(srv.port, { login });
  assert.equal(await body(w, 'Cat2', 2), '');
  assert.equal(await body(w, 'Cat2', 3), 'plain\r\n');
  assert.equal(await body(w, 'Cat2', 4), 'box\r\n');
  await c.close();
  await w.close();
});

test('BADURL for URLs naming nothing of the session; BAD for CATENATE syntax', async () => {
  const c = await RawClient.connect(srv.port, { login });
  const v = await setup(c, 'Cat3');
  const bads = [
    'imap://alice@localhost/Cat3/;UID=1', // absolute: outside RFC 4469 §3
    '//alice@localhost/Cat3/;UID=1',
    '/Nope/;UID=1',
    `/Cat3;UIDVALIDITY=${v + 1}/;UID=1`,
    '/Cat3/;UID=1;urlauth=anonymous:internal:0104904ff6b0ae01b82bf9707524019b55cb76f2b7',
    '/Cat3',
    '/Cat3?SUBJECT%20x',
    ';UID=1', // relative to the selected mailbox: none is selected
    '/Cat3/;UID=1/;SECTION=1/;PARTIAL=0.0',
    '/Cat3/;UID=1/;SECTION=x',
    '/Cat3/;UID=0',
  ];
  for (const u of bads) {
    const r = await c.command(`APPEND Cat3 CATENATE (URL "${u}")`, 'b1');
    assert.equal(r.tagged.slice(0, `b1 NO [BADURL ${u}] `.length), `b1 NO [BADURL ${u}] `, u);
  }
  // "]" cannot appear in the code's text (RFC 4469 §5 url-resp-text): percent-encoded there.
  assert.match((await c.command('APPEND Cat3 CATENATE (URL "/Ca]t/;UID=1")', 'b2')).tagged, /^b2 NO \[BADURL \/Ca%5Dt\/;UID=1\] /);
  for (const cmd of ['APPEND Cat3 CATENATE ()', 'APPEND Cat3 CATENATE (FOO "x")', 'APPEND Cat3 CATENATE (TEXT "x")', 'APPEND Cat3 CATENATE (URL)', 'APPEND Cat3 CATENATE URL "/Cat3/;UID=1"']) {
    assert.match((await c.command(cmd, 'b3')).tagged, /^b3 BAD /, cmd);
  }
  const many = Array.from({ length: MAX_CATENATE_PARTS + 1 }, () => 'URL "/Cat3/;UID=1"').join(' ');
  assert.match((await c.command(`APPEND Cat3 CATENATE (${many})`, 'b4')).tagged, /^b4 BAD \[LIMIT\] /);
  assert.deepEqual((await c.command('STATUS Cat3 (MESSAGES)')).untagged, ['* STATUS Cat3 (MESSAGES 1)']);
  await c.close();
});

test('TOOBIG before any part is read when the result passes the APPENDLIMIT; literal8 TEXT', async () => {
  const c = await RawClient.connect(srv.port, { login });
  await c.command('CREATE Cat4');
  const big = 'x'.repeat(60_000);
  await c.command(`APPEND Cat4 ${lit(`Subject: big\r\n\r\n${big}`)}`);
  const r = await c.command('APPEND Cat4 CATENATE (URL "/Cat4/;UID=1" URL "/Cat4/;UID=1")', 't1');
  assert.match(r.tagged, /^t1 NO \[TOOBIG\] /);
  const ok = await c.command('APPEND Cat4 CATENATE (TEXT ~{5+}\r\nab\0cd URL "/Cat4/;UID=1/;PARTIAL=0.10")', 't2');
  assert.match(ok.tagged, /^t2 OK /);
  const w = await RawClient.connect(srv.port, { login });
  await w.command('EXAMINE Cat4');
  const b = await w.command('UID FETCH 2 BINARY.PEEK[]');
  assert.match(b.untagged[0]!, /BINARY\[\] ~\{15\}\r\nab\0cdSubject: /);
  await c.close();
  await w.close();
});

test('REPLACE with CATENATE: the new message is built from the one it replaces', async () => {
  const c = await RawClient.connect(srv.port, { login });
  await setup(c, 'Cat5');
  await c.command('SELECT Cat5');
  const r = await c.command(`UID REPLACE 1 Cat5 CATENATE (TEXT ${lit('Subject: edited\r\n\r\n')} URL ";UID=1/;SECTION=1")`, 'r1');
  assert.match(r.tagged, /^r1 OK /);
  const w = await RawClient.connect(srv.port, { login });
  assert.equal(await body(w, 'Cat5', 2), 'Subject: edited\r\n\r\nhello');
  assert.deepEqual((await w.command('UID FETCH 1 FLAGS')).untagged, []);
  await c.close();
  await w.close();
});

test('CATENATE is advertised', async () => {
  const c = await RawClient.connect(srv.port, { login });
  assert.match((await c.command('CAPABILITY')).untagged[0]!, / CATENATE /);
  await c.close();
});

test('URL parser: the RFC 5092 / RFC 4467 forms and their refusals (pure)', () => {
  const u = parseImapUrl('imap://fred%40x;AUTH=*@mail.example.com:143/Sent%20Items;UIDVALIDITY=7/;UID=20/;SECTION=1.2/;PARTIAL=0.1024;EXPIRE=2030-01-01T00:00:00Z;URLAUTH=submit+joe:internal:91354a473744909de610943775f92038', false);
  assert.equal(u.user, 'fred@x');
  assert.equal(u.host, 'mail.example.com');
  assert.equal(u.port, 143);
  assert.equal(u.mailbox, 'Sent Items');
  assert.equal(u.uidValidity, 7);
  assert.equal(u.uid, 20);
  assert.deepEqual(u.section, { path: [1, 2], kind: '' });
  assert.deepEqual(u.partial, { offset: 0, length: 1024 });
  assert.equal(u.expire, Date.UTC(2030, 0, 1));
  assert.equal(u.access, 'submit+joe');
  assert.equal(u.mech, 'internal');
  assert.equal(u.rump, 'imap://fred%40x;AUTH=*@mail.example.com:143/Sent%20Items;UIDVALIDITY=7/;UID=20/;SECTION=1.2/;PARTIAL=0.1024;EXPIRE=2030-01-01T00:00:00Z;URLAUTH=submit+joe');
  assert.equal(parseImapUrl('/a/b%C3%A9/;UID=3', true).mailbox, 'a/bé');
  for (const [s, rel] of [
    ['imap://host/INBOX/;UID=1;URLAUTH=anonymous', false], // no user
    ['imap://u@host/INBOX', false],
    ['imap://u@host/INBOX/;UID=1;URLAUTH=anonymous/;SECTION=1', false],
    ['imap://u@host/INBOX/;UID=1;SECTION=1', false],
    ['imap://u@host/INBOX/;UID=1/;PARTIAL=1/;SECTION=1', false],
    ['imap://u@host/INBOX/;UID=1;EXPIRE=2030-13-01;URLAUTH=anonymous', false],
    ['imap://u@host/INBOX/;UID=1;URLAUTH=anonymous:internal:abc', false],
    ['/INBOX/;UID=1', false],
    ['/IN%ZZ/;UID=1', true],
    ['/IN%FF/;UID=1', true],
    ['/INBOX/;UID=1 ', true],
    ['/INBOX/;UID=4294967296', true],
    ['x'.repeat(5000), true],
  ] as [string, boolean][]) {
    assert.throws(() => parseImapUrl(s, rel), UrlError, s.slice(0, 80));
  }
});

test('URL parser: random and mutated URLs only ever give a UrlError or a URL (seeded)', async () => {
  const { prng } = await import('../helpers/rng.js');
  const rnd = prng(4469);
  const alphabet = '/;=:.%@+?()[]*&~AaBbUuIiDdSsEeCcTtPpRrLlNnXx0123456789-_ \x00\x7f\xff';
  const seeds = [
    'imap://u@h:143/INBOX;UIDVALIDITY=5/;UID=3/;SECTION=1.2.HEADER.FIELDS%20(A%20B)/;PARTIAL=0.9;EXPIRE=2030-01-01T00:00:00Z;URLAUTH=user+x:internal:0123456789abcdef0123456789abcdef',
    '/a/b/;UID=1/;SECTION=TEXT',
    ';UID=1/;PARTIAL=3',
  ];
  for (let n = 0; n < 20_000; n++) {
    let s = seeds[n % seeds.length]!;
    const edits = 1 + Math.floor(rnd() * 4);
    for (let e = 0; e < edits; e++) {
      const at = Math.floor(rnd() * (s.length + 1));
      const ch = alphabet[Math.floor(rnd() * alphabet.length)]!;
      const op = rnd();
      s = op < 0.4 ? s.slice(0, at) + ch + s.slice(at) : op < 0.8 ? s.slice(0, at) + s.slice(at + 1) : s.slice(0, at) + ch + s.slice(at + 1);
    }
    for (const rel of [true, false]) {
      try {
        const u = parseImapUrl(s, rel);
        assert.ok(u.uid >= 1 && u.uid <= 0xffffffff, s);
        if (u.rump !== undefined) assert.ok(s.startsWith(u.rump), s);
      } catch (e) {
        if (!(e instanceof UrlError)) throw new Error(`${JSON.stringify(s)}: ${String(e)}`);
      }
    }
  }
});
