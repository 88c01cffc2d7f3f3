// The npm client imapflow against a real `quire serve`: STARTTLS required and
// the certificate verified, mailboxCreate, append x100, list, mailboxOpen,
// fetch (source, flags, envelope, bodyStructure, internalDate, size), flag
// add/remove/set, copy, move, delete (expunge), status, IDLE with a second
// connection, logout; then a restart and a byte-for-byte read back.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { ImapFlow, type FetchMessageObject } from 'imapflow';
import { makeMessage, type CorpusMessage } from './corpus.js';
import { sha256, startQuire, type QuireServer } from './harness.js';

const USER = { name: 'flowuser', password: 'imapflow-interop-pass-1' };
const TREE = ['Work', 'Work/Reports', 'Work/Reports/2024', 'Lists', 'Lists/Node', 'Ärger & Ölung', 'Lists/Node/日本'];
const TARGETS = ['INBOX', ...TREE];
const COUNT = 100;

interface Entry {
  i: number;
  sha: string;
  size: number;
  flags: string[];
  date: number;
}
type Model = Record<string, Record<string, Entry>>;

let server: QuireServer;

before(async () => {
  server = await startQuire([USER]);
});
after(async () => {
  await server?.dispose();
});

function client(): ImapFlow {
  return new ImapFlow({
    host: 'localhost',
    port: server.imapPort,
    secure: false,
    doSTARTTLS: true, // fail rather than log in without TLS
    tls: { ca: [readFileSync(server.certPath)], servername: 'localhost' },
    auth: { user: USER.name, pass: USER.password },
    logger: false,
    disableAutoIdle: true,
  });
}

const cleanFlags = (f: Set<string> | undefined) => [...(f ?? [])].filter((x) => x !== '\\Recent').sort();

/** Read every message of every folder back. */
async function snapshot(c: ImapFlow, folders: string[], corpus: Map<number, CorpusMessage>) {
  const snap: Model = {};
  const validity: Record<string, string> = {};
  for (const f of folders) {
    const box = await c.mailboxOpen(f, { readOnly: true });
    validity[f] = String(box.uidValidity);
    snap[f] = {};
    for await (const m of c.fetch('1:*', { uid: true, flags: true, envelope: true, bodyStructure: true, internalDate: true, size: true, source: true }, { uid: true })) {
      const source = m.source!;
      const i = Number(/^X-Interop-Seq: (\d+)\r$/m.exec(source.toString('latin1'))?.[1]);
      snap[f][String(m.uid)] = { i, sha: sha256(source), size: m.size!, flags: cleanFlags(m.flags), date: Math.round(new Date(m.internalDate!).getTime() / 1000) };
      checkParsed(m, corpus.get(i));
    }
  }
  await c.mailboxClose().catch(() => {});
  return { snap, validity };
}

/** ENVELOPE and BODYSTRUCTURE as imapflow parsed them agree with what was appended. */
function checkParsed(m: FetchMessageObject, c: CorpusMessage | undefined): void {
  assert.ok(c, `message UID ${m.uid} is one of ours`);
  assert.equal(m.envelope?.messageId, c.messageId, `ENVELOPE message-id of ${c.i}`);
  assert.equal(m.envelope?.from?.[0]?.address, `sender${c.i}@example.test`);
  if (c.kind !== 'utf8') assert.equal(m.envelope?.subject, c.subject, `ENVELOPE subject of ${c.i}`);
  else assert.equal(m.envelope?.subject, c.subject, `ENVELOPE subject (RFC 2047 decoded) of ${c.i}`);
  const bs = m.bodyStructure!;
  switch (c.kind) {
    case 'attachment': {
      assert.equal(bs.type, 'multipart/mixed');
      const att = bs.childNodes?.[1];
      assert.equal(att?.type, 'application/octet-stream', `attachment part of ${c.i}`);
      assert.equal(att?.encoding, 'base64');
      assert.equal(att?.disposition, 'attachment');
      assert.equal(att?.dispositionParameters?.filename, `blob${c.i}.bin`);
      break;
    }
    case 'alternative':
      assert.equal(bs.type, 'multipart/alternative');
      assert.deepEqual(bs.childNodes?.map((p) => p.type), ['text/plain', 'text/html']);
      break;
    case 'utf8':
      assert.equal(bs.type, 'text/plain');
      assert.equal(bs.parameters?.charset, 'utf-8');
      assert.equal(bs.encoding, '8bit');
      break;
    case 'latin1':
      assert.equal(bs.parameters?.charset, 'iso-8859-1');
      break;
    default:
      assert.equal(bs.type, 'text/plain');
  }
}

test('imapflow: full session, IDLE, restart, byte-for-byte verification', async (t) => {
  const corpus = new Map<number, CorpusMessage>();
  const model: Model = {};
  let c = client();
  await c.connect();
  t.after(() => c.close());

  await t.test('mailboxCreate a tree (mUTF-7 names) and list it', async () => {
    for (const f of TREE) {
      const r = await c.mailboxCreate(f);
      assert.equal(r.created, true, `created ${f}`);
    }
    const again = await c.mailboxCreate('Work');
    assert.equal(again.created, false, 'creating an existing mailbox reports created: false');
    const list = await c.list();
    const paths = list.map((l) => l.path);
    for (const f of [...TARGETS, 'Sent', 'Trash', 'Drafts']) assert.ok(paths.includes(f), `list has ${f}: ${paths.join(', ')}`);
    assert.equal(list.find((l) => l.path === 'Sent')?.specialUse, '\\Sent');
    assert.equal(list.find((l) => l.path === 'Work')?.delimiter, '/');
    assert.ok(list.find((l) => l.path === 'Work')?.flags.has('\\HasChildren'));
  });

  await t.test('append x100 (flags, internal dates, 8-bit, attachments)', async () => {
    for (const f of TARGETS) model[f] = {};
    for (let i = 0; i < COUNT; i++) {
      const m = makeMessage(i, 'flow');
      corpus.set(i, m);
      const f = i % 3 ? TARGETS[i % TARGETS.length]! : 'INBOX';
      const r = await c.append(f, m.raw, m.flags, m.internalDate);
      assert.ok(r && r.uid, `APPENDUID for message ${i} in ${f}`);
      model[f]![String(r.uid)] = { i, sha: sha256(m.raw), size: m.raw.length, flags: m.flags, date: m.internalDate.getTime() / 1000 };
    }
    const { snap } = await snapshot(c, TARGETS, corpus);
    assert.deepEqual(snap, model);
  });

  let maxInboxUid = 0;
  await t.test('flags add/remove/set, copy, move, delete', async () => {
    const box = await c.mailboxOpen('INBOX');
    assert.equal(box.exists, Object.keys(model.INBOX!).length);
    const uids = Object.keys(model.INBOX!).map(Number).sort((a, b) => a - b);
    maxInboxUid = uids.at(-1)!;
    const set = (us: number[]) => us.join(',');
    const apply = (us: number[], fn: (f: Set<string>) => void) => {
      for (const u of us) {
        const s = new Set(model.INBOX![String(u)]!.flags);
        fn(s);
        model.INBOX![String(u)]!.flags = [...s].sort();
      }
    };
    assert.equal(await c.messageFlagsAdd(set(uids.slice(0, 5)), ['\\Flagged', 'Important'], { uid: true }), true);
    apply(uids.slice(0, 5), (s) => (s.add('\\Flagged'), s.add('Important')));
    assert.equal(await c.messageFlagsRemove(set(uids.slice(3, 8)), ['\\Seen', 'Work', 'Important'], { uid: true }), true);
    apply(uids.slice(3, 8), (s) => (s.delete('\\Seen'), s.delete('Work'), s.delete('Important')));
    assert.equal(await c.messageFlagsSet(set(uids.slice(8, 12)), ['\\Answered', '$Forwarded', 'Projekt-X'], { uid: true }), true);
    apply(uids.slice(8, 12), (s) => (s.clear(), s.add('\\Answered'), s.add('$Forwarded'), s.add('Projekt-X')));
    assert.equal(await c.messageFlagsSet(set(uids.slice(12, 14)), [], { uid: true }), true);
    apply(uids.slice(12, 14), (s) => s.clear());

    const fetched = await c.fetchAll(set(uids.slice(0, 14)), { uid: true, flags: true }, { uid: true });
    for (const m of fetched) assert.deepEqual(cleanFlags(m.flags), model.INBOX![String(m.uid)]!.flags, `flags of UID ${m.uid}`);

    // copy keeps the source; flags and internal date travel with the copy
    const copied = await c.messageCopy(set(uids.slice(14, 18)), 'Work/Reports', { uid: true });
    assert.ok(copied && copied.uidMap, 'COPYUID');
    assert.equal(copied.uidMap.size, 4);
    for (const [s, d] of copied.uidMap) model['Work/Reports']![String(d)] = { ...model.INBOX![String(s)]! };

    const moved = await c.messageMove(set(uids.slice(18, 21)), 'Lists/Node', { uid: true });
    assert.ok(moved && moved.uidMap, 'MOVE with COPYUID');
    assert.equal(moved.uidMap.size, 3);
    for (const [s, d] of moved.uidMap) {
      model['Lists/Node']![String(d)] = model.INBOX![String(s)]!;
      delete model.INBOX![String(s)];
    }

    // delete the highest UID too, so that reuse after the restart would show
    const doomed = [uids[22]!, uids[25]!, maxInboxUid];
    assert.equal(await c.messageDelete(set(doomed), { uid: true }), true);
    for (const u of doomed) delete model.INBOX![String(u)];
    assert.equal(c.mailbox && c.mailbox.exists, Object.keys(model.INBOX!).length, 'EXISTS follows the expunges');
  });

  await t.test('status and a full read back', async () => {
    for (const f of TARGETS) {
      const st = await c.status(f, { messages: true, uidNext: true, unseen: true });
      assert.ok(st);
      assert.equal(st.messages, Object.keys(model[f]!).length, `STATUS MESSAGES of ${f}`);
      assert.equal(st.unseen, Object.values(model[f]!).filter((e) => !e.flags.includes('\\Seen')).length, `STATUS UNSEEN of ${f}`);
    }
    const { snap } = await snapshot(c, TARGETS, corpus);
    assert.deepEqual(snap, model);
  });

  await t.test('IDLE: an append on another connection arrives as EXISTS within 2 s', async () => {
    const idler = client();
    const other = client();
    await idler.connect();
    await other.connect();
    try {
      const box = await idler.mailboxOpen('INBOX');
      const before = box.exists;
      const exists = new Promise<{ count: number; prevCount: number }>((resolve) => idler.on('exists', resolve));
      const idling = idler.idle();
      await new Promise((r) => setTimeout(r, 200)); // IDLE is on the wire
      const m = makeMessage(500, 'flow-idle');
      const started = Date.now();
      const r = await other.append('INBOX', m.raw, ['\\Seen'], m.internalDate);
      assert.ok(r && r.uid);
      const ev = await Promise.race([exists, new Promise<null>((res) => setTimeout(() => res(null), 2000))]);
      assert.ok(ev, `no EXISTS within 2 s of the APPEND (${Date.now() - started} ms)`);
      assert.equal(ev.count, before + 1);
      model.INBOX![String(r.uid)] = { i: 500, sha: sha256(m.raw), size: m.raw.length, flags: ['\\Seen'], date: m.internalDate.getTime() / 1000 };
      corpus.set(500, m);
      await idler.noop(); // ends IDLE (DONE) and runs a command
      await idling;
    } finally {
      await idler.logout().catch(() => idler.close());
      await other.logout().catch(() => other.close());
    }
  });

  const status = await c.status('INBOX', { uidNext: true, uidValidity: true });
  const { validity } = await snapshot(c, TARGETS, corpus);
  await c.logout();

  await server.restart();

  await t.test('after a restart: everything is still there, byte for byte', async () => {
    c = client();
    await c.connect();
    const { snap, validity: v2 } = await snapshot(c, TARGETS, corpus);
    assert.deepEqual(v2, validity, 'UIDVALIDITY unchanged');
    assert.deepEqual(snap, model);
    const m = makeMessage(600, 'flow-after');
    const r = await c.append('INBOX', m.raw, [], m.internalDate);
    assert.ok(r && r.uid);
    assert.equal(String(r.uidValidity), validity.INBOX);
    assert.ok(r.uid > maxInboxUid, `UID ${r.uid} after restart is above every UID ever assigned (${maxInboxUid}, expunged)`);
    assert.ok(status && r.uid >= Number(status.uidNext), `UID ${r.uid} >= UIDNEXT ${status && status.uidNext} before restart`);
    await c.mailboxOpen('INBOX', { readOnly: true });
    const back = await c.fetchOne(String(r.uid), { source: true }, { uid: true });
    assert.ok(back && back.source);
    assert.equal(sha256(back.source), sha256(m.raw));
    await c.logout();
  });
});
