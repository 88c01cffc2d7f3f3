// Two users on one server: bob must see none of alice's mailboxes or
// messages, whatever names he tries, and alice's data must come out of bob's
// attempts untouched. Raw commands over implicit TLS (the exact bytes matter).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { sha256, startQuire, type QuireServer } from './harness.js';
import { listNames, quote, RawImap, type Reply } from './rawimap.js';

const ALICE = { name: 'alice', password: 'alice-interop-pass-1' };
const BOB = { name: 'bob', password: 'bob-interop-pass-1' };
const MARK = 'ALICE-PRIVATE-7f3a';

// alice's mailboxes (modified UTF-7 on the wire): "Geheim/Tief" under "Geheim", 日本語
const ALICE_BOXES = ['Secret', 'Secret/Deep', 'Geheim', 'Geheim/Tief', '&ZeVnLIqe-', 'Projects', 'Projects/2024'];

let server: QuireServer;
let ca: Buffer;

before(async () => {
  server = await startQuire([ALICE, BOB]);
  ca = readFileSync(server.certPath);
});
after(async () => {
  await server?.dispose();
});

async function login(u: { name: string; password: string }): Promise<RawImap> {
  const c = await RawImap.tls(server.imapsPort, ca);
  const r = await c.cmd(`LOGIN ${quote(u.name)} ${quote(u.password)}`);
  assert.equal(r.status, 'OK', `LOGIN ${u.name}: ${r.text}`);
  return c;
}

function msg(owner: string, n: number): string {
  return `From: ${owner}@example.test\r\nTo: ${owner}@example.test\r\nSubject: ${owner === 'alice' ? MARK : 'bob-own'} ${n}\r\nMessage-ID: <${owner}.${n}@example.test>\r\n\r\n${owner === 'alice' ? MARK : 'bob body'} ${n}\r\n`;
}

/**
 * bob's session. The server hangs up after too many BAD commands (a sane
 * limit), so a closed connection counts as a refusal and is reopened.
 */
class Bob {
  conn!: RawImap;
  transcripts: string[] = [];
  reconnects = 0;
  /** Run after every (re)login, e.g. to SELECT again. */
  onLogin: (c: RawImap) => Promise<void> = async () => {};

  async open(): Promise<void> {
    if (this.conn) this.transcripts.push(this.conn.transcript);
    this.conn = await login(BOB);
    await this.onLogin(this.conn);
  }
  async cmd(command: string): Promise<Reply> {
    return this.guard(() => this.conn.cmd(command));
  }
  async append(mailbox: string, message: string): Promise<Reply> {
    return this.guard(() => this.conn.append(mailbox, message));
  }
  private async guard(f: () => Promise<Reply>): Promise<Reply> {
    try {
      return await f();
    } catch (e) {
      if (!this.conn.closed) throw e;
      this.reconnects++;
      await this.open();
      return { status: 'BYE', text: 'connection closed by the server', untagged: [] };
    }
  }
  transcript(): string {
    return [...this.transcripts, this.conn.transcript].join('\n');
  }
}

/** Everything alice has: names, and per mailbox the UIDs, flags and body hashes. */
async function aliceState(): Promise<Record<string, string[]>> {
  const a = await login(ALICE);
  try {
    const names = listNames((await a.cmd('LIST "" "*"')).untagged).sort();
    const state: Record<string, string[]> = { '': names };
    for (const n of names) {
      const sel = await a.cmd(`EXAMINE ${quote(n)}`);
      if (sel.status !== 'OK') continue;
      const f = await a.cmd('UID FETCH 1:* (UID FLAGS BODY.PEEK[])');
      state[n] = f.untagged
        .filter((l) => /^\* \d+ FETCH/.test(l))
        .map((l) => {
          const flags = (/FLAGS \(([^)]*)\)/.exec(l)?.[1] ?? '').split(' ').filter((x) => x !== '\\Recent').sort();
          const body = /BODY\[\] \{\d+\}\r\n([\s\S]*)$/.exec(l)?.[1] ?? '';
          return `${/UID (\d+)/.exec(l)?.[1]} ${flags.join(' ')} ${sha256(Buffer.from(body, 'latin1'))}`;
        });
    }
    return state;
  } finally {
    await a.close();
  }
}

test('a second user sees nothing of the first, whatever the name', async (t) => {
  // alice's world
  const a = await login(ALICE);
  for (const b of ALICE_BOXES) assert.equal((await a.cmd(`CREATE ${quote(b)}`)).status, 'OK', `alice CREATE ${b}`);
  for (const [i, b] of ['INBOX', ...ALICE_BOXES].entries()) {
    for (let k = 0; k < 3; k++) assert.equal((await a.append(quote(b), msg('alice', i * 10 + k), '\\Seen $Secret')).status, 'OK');
  }
  await a.close();
  const before = await aliceState();
  assert.ok(before['']!.includes('Secret/Deep'));

  const b = new Bob();
  await b.open();
  assert.equal((await b.append('INBOX', msg('bob', 1))).status, 'OK');
  const bobOwn = listNames((await b.cmd('LIST "" "*"')).untagged).sort();
  const aliceOnly = ALICE_BOXES.filter((n) => !bobOwn.includes(n));

  await t.test("LIST patterns and references never show alice's names", async () => {
    assert.deepEqual(bobOwn, ['Archive', 'Drafts', 'INBOX', 'Junk', 'Sent', 'Trash'], 'bob has only his default mailboxes');
    const tries: [string, string][] = [
      ['""', '"*"'], ['""', '"%"'], ['""', '"*Secret*"'], ['""', '"Secret/*"'], ['""', '"%/%"'],
      ['"~alice"', '"*"'], ['""', '"~alice/*"'], ['""', '"~alice*"'], ['"~"', '"*"'], ['""', '"~*"'],
      ['"#"', '"*"'], ['""', '"#*"'], ['""', '"#shared/*"'], ['""', '"#public/*"'], ['""', '"#user/alice/*"'],
      ['"/"', '"*"'], ['""', '"/*"'], ['""', '"../*"'], ['""', '"../alice/*"'], ['"../alice/"', '"*"'],
      ['""', '"alice/*"'], ['""', '"user/alice/*"'], ['""', '"*/*/*"'], ['""', '"&ZeVnLIqe-"'], ['""', '"*&ZeVnLIqe-*"'],
      ['"Secret"', '"*"'], ['""', '"INBOX/../*"'], ['""', '"inbox*"'],
    ];
    for (const [ref, pat] of tries) {
      for (const cmd of ['LIST', 'LSUB']) {
        const r = await b.cmd(`${cmd} ${ref} ${pat}`);
        const names = listNames(r.untagged).filter((n) => n !== '');
        for (const n of names) assert.ok(bobOwn.includes(n), `${cmd} ${ref} ${pat} showed ${JSON.stringify(n)} (${r.status} ${r.text})`);
      }
    }
    const ext = await b.cmd('LIST (SUBSCRIBED) "" "*" RETURN (STATUS (MESSAGES))');
    for (const n of listNames(ext.untagged)) assert.ok(bobOwn.includes(n), `LIST-EXTENDED showed ${n}`);
  });

  await t.test('NAMESPACE offers no other-users or shared namespace', async () => {
    const r = await b.cmd('NAMESPACE');
    assert.equal(r.status, 'OK');
    assert.match(r.untagged.join('\n'), /^\* NAMESPACE \(\("[^"]*" "\/"\)\) NIL NIL$/m);
  });

  // Names that could reach alice's mailboxes in a careless implementation.
  const names = [
    ...aliceOnly, 'secret', 'SECRET', 'Secret/', 'Secret/Deep/', '/Secret', '//Secret', './Secret', 'Secret/./Deep', 'Secret/../Secret',
    '~alice/Secret', '~alice/INBOX', '~alice', '~ALICE/INBOX', '../alice/Secret', '../alice/INBOX', '../../alice/INBOX', '../INBOX',
    'alice/Secret', 'alice/INBOX', 'user/alice/INBOX', 'user.alice.Secret', '#alice/Secret', '#shared/Secret', '#public/Secret', '#user/alice/INBOX',
    'Secret%', 'Sec*', '*', '%', 'INBOX/../Secret', 'INBOX/../../alice/INBOX',
    '&ZeVnLIqe', '&ZeVnLIqe-/', '&AFM-ecret', '&AFMAZQBjAHIAZQB0-', '&AC4ALg-/alice/INBOX', '&AH4-alice/INBOX', '&-Secret', 'Secret&AC8-Deep', 'Geheim&AC8-Tief',
    'Secret\\Deep',
  ];

  await t.test('SELECT / EXAMINE / STATUS / APPEND / DELETE / RENAME of those names all fail', async () => {
    const failures: string[] = [];
    const expectFail = (what: string, r: Reply) => {
      if (r.status === 'OK') failures.push(`${what} -> OK ${r.text} ${r.untagged.join(' | ')}`);
      if (r.untagged.join('\n').includes(MARK)) failures.push(`${what} leaked message data`);
    };
    for (const n of names) {
      const q = quote(n);
      expectFail(`SELECT ${q}`, await b.cmd(`SELECT ${q}`));
      expectFail(`EXAMINE ${q}`, await b.cmd(`EXAMINE ${q}`));
      expectFail(`STATUS ${q}`, await b.cmd(`STATUS ${q} (MESSAGES UIDNEXT UIDVALIDITY SIZE)`));
      expectFail(`APPEND ${q}`, await b.append(q, msg('bob', 99)));
      expectFail(`DELETE ${q}`, await b.cmd(`DELETE ${q}`));
      expectFail(`RENAME ${q}`, await b.cmd(`RENAME ${q} "Stolen"`));
    }
    assert.deepEqual(failures, []);
  });

  await t.test('COPY and MOVE from bob INBOX to those names fail', async () => {
    b.onLogin = async (c) => assert.equal((await c.cmd('SELECT INBOX')).status, 'OK');
    assert.equal((await b.cmd('SELECT INBOX')).status, 'OK');
    const failures: string[] = [];
    for (const n of names) {
      for (const c of ['COPY 1', 'UID COPY 1:*', 'MOVE 1', 'UID MOVE 1:*']) {
        const r = await b.cmd(`${c} ${quote(n)}`);
        if (r.status === 'OK') failures.push(`${c} ${quote(n)} -> OK ${r.text}`);
      }
    }
    assert.deepEqual(failures, []);
    b.onLogin = async () => {};
    assert.equal((await b.cmd('UNSELECT')).status, 'OK');
  });

  await t.test('every case of INBOX is bob INBOX and holds only bob mail', async () => {
    for (const n of ['INBOX', 'inbox', 'InBoX', 'iNBOX']) {
      const r = await b.cmd(`SELECT ${quote(n)}`);
      assert.equal(r.status, 'OK', `SELECT ${n}`);
      assert.ok(r.untagged.includes('* 1 EXISTS'), `SELECT ${n}: ${r.untagged.join(' | ')}`);
      const f = await b.cmd('FETCH 1:* (BODY.PEEK[])');
      assert.match(f.untagged.join('\n'), /bob body 1/);
      assert.doesNotMatch(f.untagged.join('\n'), new RegExp(MARK));
      const s = await b.cmd(`STATUS ${quote(n)} (MESSAGES)`);
      assert.match(s.untagged.join('\n'), /\(MESSAGES 1\)/);
    }
    assert.equal((await b.cmd('UNSELECT')).status, 'OK');
  });

  await t.test('bob may create his own "Secret"; it is his, not alice\'s', async () => {
    assert.equal((await b.cmd('CREATE "Secret/Deep"')).status, 'OK');
    const sel = await b.cmd('SELECT "Secret/Deep"');
    assert.equal(sel.status, 'OK');
    assert.ok(sel.untagged.includes('* 0 EXISTS'), `bob's Secret/Deep is empty: ${sel.untagged.join(' | ')}`);
    assert.equal((await b.cmd('UNSELECT')).status, 'OK');
    assert.equal((await b.cmd('RENAME "Secret" "Mine"')).status, 'OK');
    assert.equal((await b.cmd('DELETE "Mine/Deep"')).status, 'OK');
    assert.equal((await b.cmd('DELETE "Mine"')).status, 'OK');
  });

  await t.test('AUTHENTICATE PLAIN cannot authorize as another user', async () => {
    const c = await RawImap.tls(server.imapsPort, ca);
    const ir = Buffer.from(`alice\0bob\0${BOB.password}`).toString('base64');
    const r = await c.cmd(`AUTHENTICATE PLAIN ${ir}`);
    assert.notEqual(r.status, 'OK', `authzid alice with bob's credentials: ${r.status} ${r.text}`);
    const cross = await c.cmd(`LOGIN ${quote('alice')} ${quote(BOB.password)}`);
    assert.notEqual(cross.status, 'OK');
    c.write('A9 LOGOUT\r\n');
    await c.close();
  });

  await t.test('IDLE: alice is not told about bob mail', async () => {
    const a2 = await login(ALICE);
    assert.equal((await a2.cmd('SELECT INBOX')).status, 'OK');
    a2.write('I1 IDLE\r\n');
    assert.match(await a2.line(), /^\+/);
    const mark = a2.transcript.length;
    assert.equal((await b.append('INBOX', msg('bob', 2))).status, 'OK');
    assert.equal((await b.cmd('SELECT INBOX')).status, 'OK');
    assert.equal((await b.cmd('STORE 1 +FLAGS (\\Flagged)')).status, 'OK');
    assert.equal((await b.cmd('EXPUNGE')).status, 'OK');
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(a2.transcript.slice(mark), '', 'nothing pushed to alice');
    a2.write('DONE\r\n');
    assert.match(await a2.line(), /^I1 OK/);
    await a2.close();
  });

  assert.doesNotMatch(b.transcript(), new RegExp(MARK), "alice's mail never reached bob's connections");
  t.diagnostic(`bob's connection was closed by the server ${b.reconnects} times (too many BAD commands)`);
  await b.conn.close();

  await t.test("alice's data is untouched", async () => {
    assert.deepEqual(await aliceState(), before);
  });
});
