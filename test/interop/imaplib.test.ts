// Python's imaplib against a real `quire serve`: STARTTLS with certificate
// verification, CREATE of a folder tree (with non-ASCII names), APPEND x100
// (8-bit bodies, base64 attachments, flags, internal dates), LIST, SELECT,
// FETCH, every STORE form, UID COPY, UID MOVE, EXPUNGE, UID EXPUNGE, LOGOUT;
// then a restart and a second imaplib run that reads everything back.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { INTEROP_DIR, requireTool, runTool, startQuire, type QuireServer } from './harness.js';

const USER = { name: 'pyuser', password: 'imaplib-interop-pass-1' };
const SCRIPT = join(INTEROP_DIR, 'imaplib_session.py');

type Msg = { flags: string[]; size: number; date: number; sha: string; bodyLength: number };
type Snap = Record<string, Record<string, Msg>>;
type ListEntry = { name: string; raw: string; attrs: string[] };

let server: QuireServer | undefined;

before(async () => {
  server = await startQuire([USER]);
});
after(async () => {
  await server?.dispose();
});

async function python(mode: string, extra: Record<string, string> = {}): Promise<any> {
  const r = await runTool('python3', [SCRIPT], {
    env: {
      QUIRE_HOST: 'localhost',
      QUIRE_PORT: String(server!.imapPort),
      QUIRE_USER: USER.name,
      QUIRE_PASS: USER.password,
      QUIRE_CAFILE: server!.certPath,
      QUIRE_MODE: mode,
      PYTHONIOENCODING: 'utf-8',
      ...extra,
    },
    timeoutMs: 60_000,
  });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  let out: any;
  try {
    out = JSON.parse(line);
  } catch {
    assert.fail(`imaplib script (${mode}) printed no JSON (exit ${r.code}):\n${r.stdout}\n${r.stderr}\n${server!.log}`);
  }
  assert.equal(out.ok, true, `imaplib script (${mode}) failed: ${out.error}\n${out.trace}\nserver log:\n${server!.log}`);
  return out;
}

test('imaplib: full session, restart, byte-for-byte verification', async (t) => {
  if (!requireTool(t, 'python3')) return;

  const s = await python('session');
  const ev = s.events;

  await t.test('STARTTLS and LOGIN', () => {
    assert.ok(ev.capsBeforeTls.includes('STARTTLS'), `STARTTLS advertised: ${ev.capsBeforeTls}`);
    assert.ok(ev.capsAfterLogin.includes('UIDPLUS') && ev.capsAfterLogin.includes('MOVE') && !ev.capsAfterLogin.includes('STARTTLS'), `caps after login: ${ev.capsAfterLogin}`);
  });

  await t.test('CREATE a folder tree and LIST it', () => {
    for (const [name, typ] of Object.entries(ev.create as Record<string, string>)) {
      if (name === 'Projects (again)') assert.match(typ, /^NO \[ALREADYEXISTS\]/, 'CREATE of an existing name');
      else assert.equal(typ, 'OK', `CREATE ${name}`);
    }
    const names = (ev.list as ListEntry[]).map((l) => l.name);
    for (const f of [...s.folders, 'Deep', 'Deep/A', 'Deep/A/B', 'Deep/A/B/C', 'Sent', 'Trash']) assert.ok(names.includes(f), `LIST shows ${f}: ${names.join(', ')}`);
    assert.equal(new Set(names).size, names.length, 'no duplicates in LIST');
    const raw = Object.fromEntries((ev.list as ListEntry[]).map((l) => [l.name, l.raw]));
    assert.equal(raw['Projekte/Übersicht'], 'Projekte/&ANw-bersicht', 'modified UTF-7 on the wire');
    assert.equal(raw['日本語'], '&ZeVnLIqe-');
    const attrs = Object.fromEntries((ev.list as ListEntry[]).map((l) => [l.name, l.attrs]));
    assert.ok(attrs['Projects'].includes('\\HasChildren'), `Projects attrs ${attrs['Projects']}`);
    assert.ok(attrs['Projects/Beta'].includes('\\HasNoChildren'));
    assert.deepEqual(
      (ev.listPercent as ListEntry[]).map((l) => l.name).sort(),
      ['Projects/Alpha', 'Projects/Beta'],
      '% does not match the hierarchy separator',
    );
  });

  await t.test('APPEND x100 with APPENDUID, then FETCH returns every byte, flag and date', () => {
    assert.equal(ev.appended.length, 100);
    const validity = new Map<string, number>();
    for (const a of ev.appended) {
      if (validity.has(a.folder)) assert.equal(a.validity, validity.get(a.folder), `APPENDUID validity stable in ${a.folder}`);
      validity.set(a.folder, a.validity);
    }
    for (const [f, v] of validity) assert.equal(s.validityAfterAppend[f], v, `UIDVALIDITY of ${f} matches APPENDUID`);
    assert.deepEqual(s.snapAfterAppend, s.modelAfterAppend);
  });

  await t.test('BODY.PEEK[] keeps \\Seen unset, BODY[] sets it', () => {
    assert.deepEqual(ev.peek.got, ev.peek.want);
    assert.ok(ev.peek.readUid, 'the corpus has an unseen message to read');
    assert.ok(s.snap.INBOX[String(ev.peek.readUid)].flags.includes('\\Seen'), 'BODY[] set \\Seen');
  });

  await t.test('STORE +FLAGS / -FLAGS / FLAGS / .SILENT / by sequence number', () => {
    assert.match(ev.permanentFlags, /\\\*/, 'PERMANENTFLAGS allows new keywords');
    const st = ev.store;
    for (const kind of ['add', 'remove', 'replace', 'clear']) {
      assert.ok(st[kind].length > 0, `${kind}: untagged FETCH sent`);
      for (const r of st[kind]) assert.deepEqual(r.flags, r.want, `${kind}: FETCH FLAGS of UID ${r.uid}`);
    }
    assert.equal(st.silentResponses, 0, '.SILENT sends no FETCH to the client that stored');
    assert.equal(st.bySequence.length, 1);
    assert.equal(st.bySequence[0].seq, 1);
    assert.ok(st.bySequence[0].flags.includes('$Label2'));
  });

  await t.test('UID COPY, UID MOVE, EXPUNGE, UID EXPUNGE', () => {
    assert.equal(ev.copy.map.length, 4, 'COPYUID maps every copied message');
    assert.deepEqual(ev.copy.map.map((p: number[]) => p[0]), ev.copy.src);
    assert.equal(ev.move.map.length, 3, 'MOVE reports COPYUID');
    assert.equal(ev.move.expungeCount, 3, 'MOVE expunges the source messages');
    assert.equal(ev.expunge.typ, 'OK');
    assert.equal(ev.expunge.seqs.length, 3, `EXPUNGE responses: ${ev.expunge.seqs}`);
    assert.equal(ev.uidExpunge.typ, 'OK');
    assert.equal(ev.uidExpunge.seqs.length, 1, 'UID EXPUNGE removes only the given UID');
    assert.equal(ev.logout, 'BYE');
  });

  await t.test('state after the session equals what the client asked for', () => {
    assert.deepEqual(s.snap, s.model);
    for (const f of s.folders) {
      assert.equal(s.status[f].MESSAGES, Object.keys(s.model[f]).length, `STATUS MESSAGES ${f}`);
      assert.equal(s.status[f].UIDVALIDITY, s.validity[f], `STATUS UIDVALIDITY ${f}`);
      const unseen = Object.values(s.model[f] as Record<string, Msg>).filter((m) => !m.flags.includes('\\Seen')).length;
      assert.equal(s.status[f].UNSEEN, unseen, `STATUS UNSEEN ${f}`);
    }
    assert.ok(s.status.INBOX.UIDNEXT > ev.maxInboxUidBeforeRestart, 'UIDNEXT beyond every assigned UID');
  });

  await server!.restart();
  const v = await python('verify', { QUIRE_FOLDERS: JSON.stringify(s.folders) });

  await t.test('after a restart: same folders, UIDVALIDITY, bytes, flags, dates', () => {
    const names = (v.list as ListEntry[]).map((l) => l.name).sort();
    assert.deepEqual(names, (ev.list as ListEntry[]).map((l) => l.name).sort());
    assert.deepEqual(v.validity, s.validity, 'UIDVALIDITY unchanged');
    assert.deepEqual(v.statusBefore, s.status, 'STATUS unchanged');
    assert.deepEqual(v.snap as Snap, s.model as Snap);
  });

  await t.test('after a restart: UIDs are not reused', () => {
    const a = v.appendAfterRestart;
    assert.ok(a, 'APPENDUID after restart');
    assert.equal(a.validity, s.validity.INBOX);
    assert.ok(a.uid > ev.maxInboxUidBeforeRestart, `new UID ${a.uid} > highest ever assigned ${ev.maxInboxUidBeforeRestart} (it was expunged)`);
    assert.ok(a.uid >= s.status.INBOX.UIDNEXT, `new UID ${a.uid} >= UIDNEXT before restart ${s.status.INBOX.UIDNEXT}`);
    assert.equal(a.readBack, a.sha, 'message appended after restart reads back');
  });
});
