// Issue 13's "done when": three `quire serve --store postgres://...` nodes on
// one PostgreSQL schema behind a real HAProxy (send-proxy-v2, roundrobin,
// health check on each node's /readyz).
//
// 1. Sessions of one user on the three nodes: APPEND, STORE and EXPUNGE made
//    on one are pushed, in order, to IDLE sessions on the other two (one with
//    QRESYNC: FETCH with MODSEQ, VANISHED). imapflow through the balancer
//    gets another node's APPEND during IDLE, and its own APPEND reaches the
//    raw sessions. mbsync (a second user) syncs both ways through it.
// 2. kill -9 of a node in the middle of an APPEND stream (two streams on the
//    victim, one of them with a literal half sent, and one on a survivor):
//    every APPEND that got OK is there byte for byte, nothing half written
//    is visible, every visible message is one that was sent whole, UIDs are
//    unique and go on above everything committed; HAProxy marks the node
//    DOWN and new connections land on the survivors; the QRESYNC client
//    of the dead node resyncs there (same UIDVALIDITY, only what changed
//    since its MODSEQ comes back), imapflow's CHANGEDSINCE sees only what
//    changed, and mbsync's next run is incremental (same UIDVALIDITY).
// Fixed port: the balancer's frontend, 33001 (this file's range 33000-33999).
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { ImapFlow } from 'imapflow';
import { openPostgresStore } from '../../src/store/postgres/index.js';
import { provisionUser } from '../../src/cli/users.js';
import { loadOrCreateTls } from '../../src/cli/tls.js';
import { dropSchema, freshSchema, pgSkip, pgStoreUrl, PG_URL } from '../helpers/pg.js';
import { have } from '../obs/helpers.js';
import { runTool } from '../interop/harness.js';
import { connectVia, startBalancer, startPgNode, type NodeClient, type PgNode } from './pg-nodes.js';

const FRONT_PORT = 33001;
const ALICE: [string, string] = ['alice', 'alice-pass-1'];
const BOB: [string, string] = ['bob', 'bob-pass-1'];
/** Acknowledged APPENDs of the victim's streams before the kill. */
const ACKS_BEFORE_KILL = 12;
const pgSkipped = await pgSkip();
const missing = ['haproxy', 'mbsync'].filter((c) => !have(c));
if (missing.length && process.env.CI) throw new Error(`missing in CI: ${missing.join(', ')} (apt-get install haproxy isync)`);
const skip = pgSkipped || (missing.length ? `not installed: ${missing.join(', ')}` : false);

const schema = freshSchema('pgnodes_ha');
const dir = mkdtempSync(path.join(tmpdir(), 'quire-pg-haproxy-'));
after(async () => {
  await dropSchema(schema).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

/** A message of stream `s`, number `i`: every fourth one is 300 KiB (more than one PostgreSQL body chunk). */
function streamMessage(s: string, i: number): string {
  const line = `stream ${s} message ${i} ${'x'.repeat(50)}\r\n`;
  const lines = i % 4 === 0 ? Math.ceil((300 * 1024) / line.length) : 20;
  return `From: ${s}@example.com\r\nTo: alice@example.com\r\nSubject: ${s} ${i}\r\nMessage-ID: <${s}-${i}@cluster.test>\r\n\r\n${line.repeat(lines)}`;
}

const uidOf = (tagged: string) => Number(/APPENDUID \d+ (\d+)/.exec(tagged)?.[1] ?? NaN);

/** Appends stream `s` on `c` until the connection dies or `stop()` says so; the OK'd ones by UID. */
async function appendStream(c: NodeClient, s: string, acked: Map<number, string>, stop: () => boolean): Promise<number> {
  let i = 0;
  let last = 0;
  for (; !stop(); i++) {
    const m = streamMessage(s, i);
    let r;
    try {
      r = await c.append('INBOX', m);
    } catch {
      return i; // the node died under this APPEND: its outcome is unknown
    }
    assert.match(r.tagged, /^\S+ OK/, r.tagged);
    const uid = uidOf(r.tagged);
    assert.ok(!acked.has(uid), `UID ${uid} handed out twice`);
    assert.ok(uid > last, `UIDs ascend on stream ${s}: ${uid} after ${last}`);
    last = uid;
    acked.set(uid, m);
  }
  return i;
}

/** The untagged lines of `c` (IDLE) until `pred`. */
const pushed = (c: NodeClient, pred: (l: string) => boolean) => c.readUntil(pred, 10_000);

/** UID -> whole message of every message in INBOX, read back through `c` (selected). */
async function readAll(c: NodeClient): Promise<Map<number, string>> {
  const got = new Map<number, string>();
  const s = await c.command('UID SEARCH ALL');
  const uids = (/^\* SEARCH(.*)$/m.exec(s.raw)?.[1] ?? '').trim().split(/\s+/).filter(Boolean).map(Number);
  for (const u of uids) {
    const r = await c.command(`UID FETCH ${u} BODY.PEEK[]`);
    const m = /BODY\[\] \{(\d+)\}\r\n/.exec(r.raw);
    assert.ok(m, r.raw.slice(0, 300));
    const at = m.index + m[0].length;
    got.set(u, r.raw.slice(at, at + Number(m[1])));
  }
  return got;
}

test('three PostgreSQL nodes behind HAProxy: pushes across nodes, imapflow and mbsync, kill -9 mid-APPEND', { skip, timeout: 120_000 }, async () => {
  const t0 = Date.now();
  const url = pgStoreUrl(schema);
  const store = await openPostgresStore({ url: PG_URL, schema, poolSize: 2 });
  for (const [u, p] of [ALICE, BOB]) await provisionUser(store, u, p);
  await store.close();
  const datas = ['n1', 'n2', 'n3'].map((n) => path.join(dir, n));
  for (const d of datas) mkdirSync(d);
  // One certificate for the three nodes (clients see one service).
  const tlsMat = await loadOrCreateTls({ dataDir: datas[0]!, tls: { cert: null, key: null } });
  const args = ['--proxy-protocol-from', '127.0.0.1/32', '--tls-cert', tlsMat.certPath, '--tls-key', tlsMat.keyPath];
  const nodes: PgNode[] = await Promise.all(datas.map((d, i) => startPgNode(`quire-n${i + 1}`, url, d, args)));
  const [n1, n2, n3] = nodes as [PgNode, PgNode, PgNode];
  const lb = await startBalancer(dir, FRONT_PORT, nodes);
  const flows: ImapFlow[] = [];
  const flow = () => {
    const f = new ImapFlow({
      host: '127.0.0.1', port: FRONT_PORT, secure: false, doSTARTTLS: true,
      tls: { ca: [tlsMat.cert], servername: 'localhost' },
      auth: { user: ALICE[0], pass: ALICE[1] }, logger: false, disableAutoIdle: true, qresync: true,
    });
    f.on('error', () => undefined);
    flows.push(f);
    return f;
  };
  try {
    console.log(`# three nodes and HAProxy up after ${Date.now() - t0} ms`);
    // ---- 1. pushes across nodes
    const s1 = await connectVia(FRONT_PORT, ALICE, (x) => x === n1.name);
    const s2 = await connectVia(FRONT_PORT, ALICE, (x) => x === n2.name);
    const s3 = await connectVia(FRONT_PORT, ALICE, (x) => x === n3.name);
    await s1.command('ENABLE QRESYNC');
    for (const s of [s1, s2, s3]) assert.match((await s.command('SELECT INBOX')).tagged, /OK/);
    for (const s of [s1, s2]) {
      s.write('i1 IDLE\r\n');
      assert.match(await s.readLine(), /^\+ /);
    }
    for (let i = 1; i <= 3; i++) assert.match((await s3.append('INBOX', streamMessage('push', i))).tagged, /OK/);
    await s3.command('NOOP');
    assert.match((await s3.command('STORE 1 +FLAGS (\\Flagged)')).tagged, /OK/);
    assert.match((await s3.command('STORE 2 +FLAGS (\\Deleted)')).tagged, /OK/);
    assert.match((await s3.command('EXPUNGE')).tagged, /OK/);
    // In order on both: three EXISTS, the \Flagged FETCH, the \Deleted FETCH, then the expunge.
    const q = await pushed(s1, (l) => /^\* VANISHED 2$/.test(l));
    const p = await pushed(s2, (l) => /^\* 2 EXPUNGE$/.test(l));
    const order = (lines: string[], res: RegExp[]) => res.map((re) => lines.findIndex((l) => re.test(l)));
    const qo = order(q, [/^\* 3 EXISTS$/, /^\* 1 FETCH \(.*UID 1.*\\Flagged.*\)|^\* 1 FETCH \(.*\\Flagged.*UID 1/, /^\* 2 FETCH .*\\Deleted/, /^\* VANISHED 2$/]);
    assert.ok(qo.every((x, k) => x >= 0 && (k === 0 || x > qo[k - 1]!)), `QRESYNC session on node 1, in order: ${q.join(' | ')}`);
    assert.ok(q.filter((l) => / FETCH /.test(l)).every((l) => /MODSEQ \(\d+\)/.test(l)), 'MODSEQ in every FETCH (RFC 7162 §3.2.4)');
    const po = order(p, [/^\* 3 EXISTS$/, /^\* 1 FETCH \(.*FLAGS \(.*\\Flagged.*\)\)$/, /^\* 2 FETCH .*\\Deleted/, /^\* 2 EXPUNGE$/]);
    assert.ok(po.every((x, k) => x >= 0 && (k === 0 || x > po[k - 1]!)), `session on node 2, in order: ${p.join(' | ')}`);

    // imapflow through the balancer: another node's APPEND arrives during its IDLE; its own APPEND reaches s1.
    const f1 = flow();
    await f1.connect();
    const box = await f1.mailboxOpen('INBOX');
    const uidValidity = Number(box.uidValidity);
    const exists = new Promise<number>((resolve) => f1.on('exists', (e: { count: number }) => resolve(e.count)));
    void f1.idle();
    assert.match((await s3.append('INBOX', streamMessage('push', 4))).tagged, /OK/);
    assert.equal(await exists, 3, 'imapflow IDLE got the EXISTS of an APPEND on another node');
    const fa = await f1.append('INBOX', streamMessage('flow', 1), ['\\Seen']);
    assert.ok(fa && fa.uid, 'APPENDUID to imapflow');
    await pushed(s1, (l) => l === '* 4 EXISTS');
    await pushed(s2, (l) => l === '* 4 EXISTS');
    const flowModseq = Number((await f1.status('INBOX', { highestModseq: true })).highestModseq);

    // mbsync (bob) both ways through the balancer.
    const bobS = await connectVia(FRONT_PORT, BOB);
    for (let i = 0; i < 5; i++) assert.match((await bobS.append('INBOX', streamMessage('bob', i))).tagged, /OK/);
    const mail = path.join(dir, 'maildir');
    mkdirSync(mail);
    const cfg = path.join(dir, 'mbsyncrc');
    writeFileSync(cfg, [
      'IMAPAccount q', 'Host localhost', `Port ${FRONT_PORT}`, `User ${BOB[0]}`, `Pass ${BOB[1]}`,
      'SSLType STARTTLS', 'SystemCertificates no', `CertificateFile ${tlsMat.certPath}`, '',
      'IMAPStore q-remote', 'Account q', '',
      'MaildirStore local', `Path ${mail}/`, `Inbox ${mail}/INBOX`, 'SubFolders Verbatim', '',
      'Channel q', 'Far :q-remote:', 'Near :local:', 'Patterns INBOX', 'Create Both', 'Expunge Both', 'Sync All', 'SyncState *', '',
    ].join('\n'));
    const mbsync = async (what: string) => {
      const r = await runTool('mbsync', ['-c', cfg, '-a'], { timeoutMs: 30_000 });
      assert.equal(r.code, 0, `mbsync (${what}):\n${r.stdout}\n${r.stderr}`);
    };
    const local = () => ['new', 'cur'].flatMap((d) => readdirSync(path.join(mail, 'INBOX', d)).map((f) => readFileSync(path.join(mail, 'INBOX', d, f), 'latin1')));
    await mbsync('first');
    assert.equal(local().length, 5);
    writeFileSync(path.join(mail, 'INBOX', 'new', `${Date.now()}.local.localhost`), streamMessage('bob-local', 0).replace(/\r\n/g, '\n'));
    await mbsync('second');
    await bobS.command('SELECT INBOX');
    assert.match((await bobS.command('SEARCH HEADER Message-ID <bob-local-0@cluster.test>')).raw, /^\* SEARCH \d+/m, 'the local message went up');
    const bobValidity = /^UIDVALIDITY (\d+)/m.exec(readFileSync(path.join(mail, 'INBOX', '.mbsyncstate'), 'latin1'));

    // ---- 2. kill -9 of node 2 in the middle of APPEND streams
    for (const s of [s1, s2]) {
      s.write('DONE\r\n');
      await s.readUntil((l) => l.startsWith('i1 '));
    }
    // A QRESYNC client on the node about to die: its state is UIDVALIDITY, HIGHESTMODSEQ and the UIDs it knows.
    const sq = await connectVia(FRONT_PORT, ALICE, (x) => x === n2.name);
    await sq.command('ENABLE QRESYNC');
    const sel = await sq.command('SELECT INBOX');
    const validity = Number(/UIDVALIDITY (\d+)/.exec(sel.raw)![1]);
    const modseq0 = Number(/HIGHESTMODSEQ (\d+)/.exec(sel.raw)?.[1] ?? assert.fail(sel.raw));
    const known = ((/^\* SEARCH(.*)$/m.exec((await sq.command('UID SEARCH ALL')).raw)?.[1]) ?? '').trim().split(/\s+/).map(Number);
    assert.equal(validity, uidValidity);
    sq.write('i2 IDLE\r\n');
    await sq.readLine();

    const acked = new Map<number, string>();
    const v1 = await connectVia(FRONT_PORT, ALICE, (x) => x === n2.name);
    const v2 = await connectVia(FRONT_PORT, ALICE, (x) => x === n2.name);
    const half = await connectVia(FRONT_PORT, ALICE, (x) => x === n2.name);
    const sv = await connectVia(FRONT_PORT, ALICE, (x) => x === n3.name);
    let survivorStop = false;
    const streams = [appendStream(v1, 'v1', acked, () => false), appendStream(v2, 'v2', acked, () => false)];
    const survivor = appendStream(sv, 'sv', acked, () => survivorStop);
    // A synchronizing literal of which half is sent when the node dies.
    const halfMsg = streamMessage('half', 0);
    half.write(`h1 APPEND INBOX {${halfMsg.length}}\r\n`);
    assert.match(await half.readLine(), /^\+ /);
    half.write(halfMsg.slice(0, halfMsg.length >> 1));
    const deadline = Date.now() + 20_000;
    while ([...acked.values()].filter((m) => /^From: v[12]@/.test(m)).length < ACKS_BEFORE_KILL && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 30)));
    n2.child.kill('SIGKILL');
    const sent = await Promise.all(streams);
    assert.equal(await n2.exited, null, 'node 2 died of the signal');
    console.log(`# node 2 killed after ${sent.join(' + ')} APPENDs sent on it, ${acked.size} acknowledged in all`);
    // The balancer notices (health check on /readyz) and new connections land on the survivors.
    const downBy = Date.now() + 10_000;
    while ((await lb.status()).get('quire/n2') !== 'DOWN' && Date.now() < downBy) await new Promise((r) => setTimeout(r, 50));
    assert.equal((await lb.status()).get('quire/n2'), 'DOWN', 'HAProxy marked the dead node DOWN');
    const after1 = await Promise.all([0, 1, 2, 3].map(() => connectVia(FRONT_PORT, ALICE)));
    assert.ok(after1.every((c) => c.node === n1.name || c.node === n3.name), 'every new connection on a survivor');
    assert.deepEqual(new Set(after1.map((c) => c.node)).size, 2, 'roundrobin over both survivors');
    for (const c of after1) await c.close();
    survivorStop = true;
    await survivor;

    // What is in the mailbox: every acknowledged APPEND byte for byte; every message one that was sent whole.
    const check = await connectVia(FRONT_PORT, ALICE);
    await check.command('SELECT INBOX');
    const all = await readAll(check);
    for (const [uid, m] of acked) assert.equal(all.get(uid), m, `acknowledged UID ${uid} present byte for byte`);
    const sentWhole = (m: string) => {
      const id = /^Message-ID: <([a-z0-9-]+)-(\d+)@cluster\.test>\r$/m.exec(m);
      return id !== null && streamMessage(id[1]!, Number(id[2])) === m;
    };
    for (const [uid, m] of all) {
      assert.ok(sentWhole(m), `UID ${uid} is a message sent whole: ${m.slice(0, 120)}`);
    }
    assert.ok(![...all.values()].some((m) => m.includes('half-0@')), 'the half-sent APPEND is not visible');
    const ids = [...all.values()].map((m) => /^Message-ID: (.*)\r$/m.exec(m)?.[1]);
    assert.equal(new Set(ids).size, ids.length, 'every message once');
    // UIDs go on above everything committed (nothing reused), across both survivors.
    const top = Math.max(...all.keys());
    const next = await check.append('INBOX', streamMessage('after', 0));
    assert.ok(uidOf(next.tagged) > top, `UID after the kill ${uidOf(next.tagged)} > ${top}`);
    const other = await connectVia(FRONT_PORT, ALICE, (x) => x !== check.node);
    const next2 = await other.append('INBOX', streamMessage('after', 1));
    assert.ok(uidOf(next2.tagged) > uidOf(next.tagged), 'and on the other survivor above that');
    // A flag change of a message the QRESYNC client knew, while it is away.
    await other.command('SELECT INBOX');
    assert.match((await other.command(`UID STORE ${known[0]} +FLAGS (\\Answered)`)).tagged, /OK/);

    // The QRESYNC client of the dead node: reconnect through the balancer, resync from its state.
    assert.ok(sq.closed && s2.closed, 'the dead node\'s sessions were cut');
    const back = await connectVia(FRONT_PORT, ALICE);
    assert.notEqual(back.node, n2.name);
    await back.command('ENABLE QRESYNC');
    const rs = await back.command(`SELECT INBOX (QRESYNC (${validity} ${modseq0} ${known.join(',')}))`);
    assert.match(rs.tagged, /OK/, rs.raw);
    assert.match(rs.raw, new RegExp(`UIDVALIDITY ${validity}\\]`), 'same UIDVALIDITY: no full resync');
    const refetched = rs.untagged.map((l) => /^\* \d+ FETCH \(.*UID (\d+)/.exec(l)?.[1]).filter(Boolean).map(Number);
    const changed = [...all.keys(), uidOf(next.tagged), uidOf(next2.tagged)].filter((u) => !known.includes(u));
    // RFC 7162 §3.2.5.1: flag changes and expunges of the known UIDs only; the new ones it learns from EXISTS and fetches by UID.
    assert.deepEqual(refetched, [known[0]!], 'only the known message that changed since its MODSEQ');
    assert.match(rs.raw, new RegExp(`^\\* ${known.length + changed.length} EXISTS`, 'm'));
    const fresh = await back.command(`UID FETCH ${Math.max(...known) + 1}:* (UID)`);
    const freshUids = fresh.untagged.map((l) => Number(/UID (\d+)/.exec(l)?.[1])).sort((a, b) => a - b);
    assert.deepEqual(freshUids, changed.sort((a, b) => a - b), 'the new messages, by UID above what it knew');
    assert.ok(!rs.untagged.some((l) => l.startsWith('* VANISHED')), 'nothing it knew vanished');

    // imapflow: a new connection (the old one may have been on node 2) with CHANGEDSINCE from what it had.
    const f2 = flow();
    await f2.connect();
    const box2 = await f2.mailboxOpen('INBOX');
    assert.equal(Number(box2.uidValidity), uidValidity);
    const since: number[] = [];
    for await (const m of f2.fetch('1:*', { uid: true, flags: true }, { uid: true, changedSince: BigInt(flowModseq) })) since.push(m.uid);
    assert.deepEqual(since.sort((a, b) => a - b), [known[0]!, ...changed].sort((a, b) => a - b), 'CHANGEDSINCE: only what changed');
    // mbsync: the next run is incremental (same UIDVALIDITY; a changed one fails the run).
    const bob2 = await connectVia(FRONT_PORT, BOB); // bob's first session may have been on node 2
    assert.match((await bob2.append('INBOX', streamMessage('bob', 99))).tagged, /OK/);
    await bob2.close();
    await mbsync('after the kill');
    const bobNow = /^UIDVALIDITY (\d+)/m.exec(readFileSync(path.join(mail, 'INBOX', '.mbsyncstate'), 'latin1'));
    assert.equal(bobNow?.[1], bobValidity?.[1]);
    assert.equal(local().length, 7, 'five, the local one, and the new one: nothing twice');
    for (const c of [s1, s3, check, other, back]) await c.close();
    console.log(`# whole test ${Date.now() - t0} ms`);
  } finally {
    for (const f of flows) await f.logout().catch(() => f.close());
    lb.child.kill('SIGTERM');
    for (const n of nodes) if (n.child.exitCode === null && n.child.signalCode === null) n.child.kill('SIGTERM');
    for (const n of [n1, n3]) assert.equal(await n.exited, 0, n.out());
  }
});
