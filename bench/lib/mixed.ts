// The mixed-load scenario (`npm run bench -- mixed`): N concurrent clients on
// several users, each user's sessions sharing two mailboxes of ~30 messages,
// each client running a seeded random mix of commands in realistic
// proportions (reading dominates; flag changes, appends, copies and expunges
// by other sessions interleave), pipelining a little as real clients do.
//
// Every client keeps its own picture of the selected mailbox from what the
// server told it and counts each inconsistency as an error:
//  - EXPUNGE or FETCH for a sequence number it was never told about
//    (RFC 9051 §7.4.1, §7.5.1);
//  - EXISTS below the known count (expunges are announced, RFC 9051 §7.3.1);
//  - UIDs not ascending with sequence numbers, or a sequence number whose UID
//    changed without an EXPUNGE (RFC 9051 §2.3.1.1, §2.3.1.2);
//  - a message it knows missing from the answer to `FETCH 1:*` that ended OK
//    (it exists until the client is told it was expunged);
//  - a keyword it stored (each client owns one) not coming back as stored;
//  - a message it expunged with UID EXPUNGE still there after the OK;
//  - a SEARCH result naming a sequence number above the known count;
//  - nothing between LOGOUT's BYE and its tagged OK (RFC 9051 §6.1.3).
// Unexpected NO/BAD and dropped connections are counted apart ("failures").
//
// The server's CPU time is read from /proc (utime+stime of every process of
// the server, plus what they reaped from their exited children).
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { ImapClient, quote } from './imap.js';
import { Rng } from './rng.js';
import { imapDate } from './load.js';
import { SEARCH_FROM, type Corpus } from './corpus.js';
import { HOST } from './servers.js';

/** Users the mixed load runs on (created on both servers by the runner). */
export const MIXED_USERS = Array.from({ length: 20 }, (_, i) => `mix${i + 1}`);
/** Sessions per user (the mailboxes they share); users = clients / this. */
const CLIENTS_PER_USER = 10;
/** Even a few clients spread over more than one user. */
const MIN_USERS = 2;
/** The mailboxes of each user, ~MAILBOX_MESSAGES each at the start of a point. */
const MAILBOXES = ['INBOX', 'Work'];
const MAILBOX_MESSAGES = 30;
/** Appends and copies stop above this many messages, expunges below the low mark: the size stays near 30. */
const HIGH_MARK = 40;
const LOW_MARK = 22;
/** Messages up to this size are used for APPEND (the corpus' big attachments are not mixed-load traffic). */
const MAX_APPEND_BYTES = 40_000;
/** How long an IDLE lasts before DONE (ms). */
const IDLE_MS = [50, 250] as const;
/** Chance that a read command goes out with one or two more reads pipelined behind it. */
const PIPELINE_P = 0.25;
/** Connections opened at once while a point starts. */
const CONNECT_WINDOW = 16;
/** Each client's own keyword: K ranges over the sessions of one user. */
const keywordOf = (k: number) => `$MixK${k}`;

export type OpKind =
  | 'FETCH flags'
  | 'FETCH envelope'
  | 'FETCH body'
  | 'SEARCH'
  | 'NOOP'
  | 'IDLE'
  | 'SELECT'
  | 'STATUS/LIST'
  | 'STORE'
  | 'APPEND'
  | 'COPY'
  | 'EXPUNGE'
  | 'LOGIN'
  | 'LOGOUT';

/** Relative weights of each action (an action may send more than one command). */
const WEIGHTS: [Action, number][] = [
  ['fetchFlags', 16],
  ['fetchEnvelope', 14],
  ['fetchBody', 10],
  ['search', 10],
  ['noop', 14],
  ['idle', 2],
  ['select', 5],
  ['status', 3],
  ['store', 12],
  ['append', 4],
  ['copy', 3],
  ['expunge', 5],
];
type Action = 'fetchFlags' | 'fetchEnvelope' | 'fetchBody' | 'search' | 'noop' | 'idle' | 'select' | 'status' | 'store' | 'append' | 'copy' | 'expunge' | 'relogin';
/** The login/logout variant: this weight of `relogin` (LOGOUT, connect, LOGIN, SELECT) joins the mix. */
const RELOGIN_WEIGHT = 4;
const READS: Action[] = ['fetchFlags', 'fetchEnvelope', 'search', 'noop'];
/** Reads during which no EXPUNGE may arrive (non-UID FETCH, RFC 9051 §7.5.1): safe to pipeline behind each other. */
const SEQ_READS: Action[] = ['fetchFlags', 'fetchEnvelope'];

export interface MixedPointResult {
  clients: number;
  users: number;
  logins: boolean;
  seconds: number;
  ops: number;
  opsPerSec: number;
  cpuSeconds: number;
  cpuPer1000: number;
  /** Part of the server's CPU spent in the kernel (system calls: sockets, files, fsync). */
  systemShare: number;
  /** CPU the load generator (this process) used, in cores (1 = one core busy): near 1, the clients are the bottleneck. */
  clientCpuShare: number;
  errors: number;
  errorKinds: Record<string, number>;
  failures: number;
  /** First few errors and failures, for the log. */
  samples: string[];
  latency: Partial<Record<OpKind, { n: number; p50: number; p99: number }>>;
  overall: { p50: number; p99: number };
}

export interface MixedTarget {
  name: string;
  port: number;
  /** Several nodes of one store (bench/pg-mixed.ts): the port client `id` connects to (default: port). */
  portOf?: (id: number) => number;
  pids(): number[];
}

function portOf(t: MixedTarget, id: number): number {
  return t.portOf ? t.portOf(id) : t.port;
}

/** The users a point of `clients` clients spreads over (client i is user i % that). */
export function mixedUsers(clients: number): number {
  return Math.max(MIN_USERS, Math.ceil(clients / CLIENTS_PER_USER));
}

// ---------------------------------------------------------------- CPU from /proc

let clkTck = 0;
function ticksPerSecond(): number {
  if (!clkTck) {
    const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    clkTck = Number(r.stdout.trim()) || 100;
  }
  return clkTck;
}

/** CPU seconds used by `pids` (utime+stime) and by the children they reaped (cutime+cstime). */
export function cpuSeconds(pids: number[]): number {
  return cpuTimes(pids).total;
}

/** The same, split: user and kernel (system) seconds. */
export function cpuTimes(pids: number[]): { total: number; system: number } {
  let ticks = 0;
  let sys = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // Fields after "(comm)": state is field 3, utime 14, stime 15, cutime 16, cstime 17.
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
      sys += Number(f[12]) + Number(f[14]);
    } catch {
      // exited meanwhile (its time moved to its parent's cutime)
    }
  }
  return { total: ticks / ticksPerSecond(), system: sys / ticksPerSecond() };
}

// ---------------------------------------------------------------- response parsing

interface FetchData {
  seq: number;
  uid?: number;
  flags?: string[];
}

/** Top-level items of a FETCH response line (literals already elided to `{}` by ImapClient). */
export function parseFetch(line: string): FetchData | null {
  const m = /^\* (\d+) FETCH \(/.exec(line);
  if (!m) return null;
  const out: FetchData = { seq: Number(m[1]) };
  let i = m[0].length;
  const n = line.length;
  const skipValue = (): string => {
    const start = i;
    if (line[i] === '(') {
      let depth = 0;
      for (; i < n; i++) {
        const ch = line[i];
        if (ch === '"') {
          for (i++; i < n && line[i] !== '"'; i++) if (line[i] === '\\') i++;
        } else if (ch === '(') depth++;
        else if (ch === ')' && --depth === 0) {
          i++;
          break;
        }
      }
    } else if (line[i] === '"') {
      for (i++; i < n && line[i] !== '"'; i++) if (line[i] === '\\') i++;
      i++;
    } else while (i < n && line[i] !== ' ' && line[i] !== ')') i++;
    return line.slice(start, i);
  };
  while (i < n && line[i] !== ')') {
    if (line[i] === ' ') {
      i++;
      continue;
    }
    let name = '';
    while (i < n && line[i] !== ' ' && line[i] !== ')') {
      if (line[i] === '[') {
        const close = line.indexOf(']', i);
        name += line.slice(i, close + 1);
        i = close + 1;
      } else name += line[i++];
    }
    if (line[i] === ' ') i++;
    const v = skipValue();
    const up = name.toUpperCase();
    if (up === 'UID') out.uid = Number(v);
    else if (up === 'FLAGS') out.flags = v.slice(1, -1).split(' ').filter(Boolean);
  }
  return out;
}

// ---------------------------------------------------------------- one client

interface Stats {
  ops: number;
  lat: Map<OpKind, number[]>;
  errors: number;
  /** Errors per kind (the first word of each check). */
  byKind: Map<string, number>;
  failures: number;
  samples: string[];
  counting: boolean;
}

const MAX_SAMPLES = 12;
/** Lines of transcript kept per client for the first error's report. */
const TRAIL_LINES = 40;

class MixedClient {
  private c!: ImapClient;
  private readonly rng: Rng;
  private readonly keyword: string;
  /** UIDs by sequence number - 1 (0: not learnt yet). */
  private uids: number[] = [];
  private selecting = false;
  private mailbox = 'INBOX';
  /** Our keyword's state per UID in the selected mailbox: want = what we stored, pending while our STORE runs. */
  private readonly mine = new Map<number, { want: boolean; pending: boolean; last?: boolean }>();
  /** Sequence numbers with a FETCH response (with UID) during the current lone `FETCH 1:*`. */
  private fetchedSeqs: Set<number> | null = null;
  private loggingOut = false;
  /** Keywords the last FLAGS response defined (lower case). */
  private defined = new Set<string>();
  private byeSeen = false;
  private afterBye: string[] = [];
  stopped = false;

  constructor(
    private readonly t: MixedTarget,
    readonly id: number,
    private readonly user: string,
    slot: number,
    seed: number,
    private readonly actions: [Action, number][],
    private readonly corpus: Corpus,
    private readonly appendable: number[],
    private readonly stats: Stats,
  ) {
    this.rng = new Rng(seed, 'mixed-client', id);
    this.keyword = keywordOf(slot);
  }

  /** The last lines sent and received (the first error's sample shows them). */
  private readonly trail: string[] = [];
  private note(line: string): void {
    if (this.trail.length >= TRAIL_LINES) this.trail.shift();
    this.trail.push(line.length > 120 ? line.slice(0, 117) + '...' : line);
  }

  private sample(what: string): void {
    const s = this.stats.samples;
    if (s.length >= MAX_SAMPLES) return;
    s.push(s.length === 0 ? `${what}\n      last lines (C: sent, S: received):\n        ${this.trail.join('\n        ')}` : what);
  }

  private error(kind: string, what: string): void {
    this.stats.errors++;
    this.stats.byKind.set(kind, (this.stats.byKind.get(kind) ?? 0) + 1);
    // The first of each kind is kept even when the samples are full of another.
    if (this.stats.byKind.get(kind) === 1 && this.stats.samples.length >= MAX_SAMPLES) this.stats.samples.push(`${this.t.name} client ${this.id}: ${kind}: ${what}`);
    else this.sample(`${this.t.name} client ${this.id} (${this.user} ${this.mailbox}): ${what}`);
  }

  private failure(what: string): void {
    this.stats.failures++;
    this.sample(`${this.t.name} client ${this.id}: failure: ${what}`);
  }

  async connect(): Promise<void> {
    this.c = await ImapClient.connect(HOST, portOf(this.t, this.id));
    this.c.onUntagged = (l) => this.onUntagged(l);
    await this.c.login(this.user, 'pass');
    await this.select(this.rng.pick(MAILBOXES), false);
  }

  // ---- the view

  private onUntagged(line: string): void {
    this.note(`S: ${line}`);
    if (this.byeSeen) {
      this.afterBye.push(line);
      return;
    }
    if (line.startsWith('* BYE')) {
      if (this.loggingOut) this.byeSeen = true;
      else this.failure(`unexpected ${line.slice(0, 80)}`);
      return;
    }
    if (line.startsWith('* FLAGS (')) {
      this.defined = new Set(line.slice(9, line.lastIndexOf(')')).split(' ').filter(Boolean).map((f) => f.toLowerCase()));
      return;
    }
    const sp = line.indexOf(' ', 2);
    const num = Number(line.slice(2, sp));
    if (Number.isInteger(num) && sp > 2) {
      const what = line.slice(sp + 1, sp + 8);
      if (what.startsWith('EXISTS')) return this.onExists(num);
      if (what.startsWith('EXPUNGE')) return this.onExpunge(num);
      if (what.startsWith('FETCH')) return this.onFetch(line);
      return;
    }
    if (line.startsWith('* SEARCH') && !this.selecting) {
      const known = this.uids.length;
      // Only non-UID searches are checked (the tag of the command is not on the line; see search()).
      if (this.searchIsSeq) for (const s of line.slice(9).split(' ').filter(Boolean)) if (Number(s) > known || Number(s) < 1) this.error('search-range', `SEARCH result ${s} but ${known} messages known`);
    }
  }
  private searchIsSeq = false;

  private onExists(n: number): void {
    if (this.selecting) {
      // The new mailbox's EXISTS: what came before belonged to the old one; what follows applies.
      this.uids = new Array<number>(n).fill(0);
      this.selecting = false;
      return;
    }
    if (n < this.uids.length) {
      this.error('exists-below-known', `* ${n} EXISTS while ${this.uids.length} messages known and no EXPUNGE for the rest`);
      this.uids.length = n;
      return;
    }
    while (this.uids.length < n) this.uids.push(0);
  }

  private onExpunge(seq: number): void {
    if (this.selecting) return;
    if (seq < 1 || seq > this.uids.length) {
      this.error('expunge-unknown-seq', `* ${seq} EXPUNGE but only ${this.uids.length} messages known`);
      return;
    }
    const [uid] = this.uids.splice(seq - 1, 1);
    if (uid) this.mine.delete(uid);
  }

  private onFetch(line: string): void {
    if (this.selecting) return;
    const f = parseFetch(line);
    if (!f) return this.error('unparsable', `unparsable ${line.slice(0, 80)}`);
    if (f.seq < 1 || f.seq > this.uids.length) return this.error('fetch-unknown-seq', `* ${f.seq} FETCH but only ${this.uids.length} messages known`);
    if (f.uid !== undefined) {
      const known = this.uids[f.seq - 1]!;
      if (known && known !== f.uid) return this.error('uid-changed', `* ${f.seq} FETCH (UID ${f.uid}) but sequence ${f.seq} is UID ${known}`);
      if (!known) {
        // UIDs ascend with sequence numbers.
        for (let s = f.seq - 2; s >= 0; s--) {
          const u = this.uids[s]!;
          if (!u) continue;
          if (u >= f.uid) this.error('uid-order', `UID ${f.uid} at sequence ${f.seq} after UID ${u} at ${s + 1}`);
          break;
        }
        for (let s = f.seq; s < this.uids.length; s++) {
          const u = this.uids[s]!;
          if (!u) continue;
          if (u <= f.uid) this.error('uid-order', `UID ${f.uid} at sequence ${f.seq} before UID ${u} at ${s + 1}`);
          break;
        }
        this.uids[f.seq - 1] = f.uid;
      }
      this.fetchedSeqs?.add(f.seq);
    }
    if (f.flags)
      for (const fl of f.flags)
        if (!fl.startsWith('\\') && !this.defined.has(fl.toLowerCase())) {
          // RFC 9051 §7.5.2: a keyword in FETCH is one a FLAGS response defined.
          this.error('keyword-before-flags', `${line.slice(0, 80)} before a FLAGS response defined ${fl}`);
          this.defined.add(fl.toLowerCase());
        }
    const uid = this.uids[f.seq - 1];
    if (f.flags && uid) {
      const m = this.mine.get(uid);
      if (m) {
        const has = f.flags.includes(this.keyword);
        if (m.pending) m.last = has;
        else if (has !== m.want) this.error('keyword-lost', `UID ${uid}: our keyword ${m.want ? 'stored' : 'removed'} but FETCH shows ${f.flags.join(' ') || 'no flags'}`);
      }
    }
  }

  // ---- commands

  private record(kind: OpKind, ms: number): void {
    if (!this.stats.counting) return;
    this.stats.ops++;
    let l = this.stats.lat.get(kind);
    if (!l) this.stats.lat.set(kind, (l = []));
    l.push(ms);
  }

  /** Sends a command; NO is returned, not thrown. */
  private async cmd(kind: OpKind, text: string | Buffer, expectNo = false): Promise<{ ok: boolean; text: string }> {
    const tag = this.c.nextTag();
    const p = this.c.command(text, { tag, allowNo: true });
    this.note(`C: ${tag} ${typeof text === 'string' ? text : text.subarray(0, text.indexOf(13)).toString('latin1')}`);
    const r = await p;
    this.note(`S: ${r.tag} ${r.text}`);
    this.record(kind, r.ms);
    if (r.status === 'BAD' || (r.status === 'NO' && !expectNo && !/EXPUNGEISSUED/i.test(r.text)))
      this.failure(`${typeof text === 'string' ? text.slice(0, 60) : kind}: ${r.status} ${r.text.slice(0, 80)}`);
    return { ok: r.status === 'OK', text: r.text };
  }

  private async select(box: string, timed = true): Promise<void> {
    this.selecting = true;
    this.mine.clear();
    this.defined = new Set();
    this.mailbox = box;
    const r = await this.c.command(`SELECT ${quote(box)}`, { allowNo: true });
    if (this.selecting) {
      this.selecting = false;
      if (r.status === 'OK') this.error('select-no-exists', `SELECT ${box} without EXISTS`);
    }
    if (timed) this.record('SELECT', r.ms);
    if (r.status !== 'OK') this.failure(`SELECT ${box}: ${r.text}`);
  }

  private knownUid(): number {
    const known = this.uids.filter((u) => u > 0);
    return known.length ? this.rng.pick(known) : 0;
  }

  private seqRangeNewest(k: number): string {
    const n = this.uids.length;
    return `${Math.max(1, n - k + 1)}:${n}`;
  }

  /** One read command (pipelinable). */
  private read(a: Action, alone: boolean): Promise<unknown> {
    const n = this.uids.length;
    switch (a) {
      case 'fetchFlags': {
        if (n === 0) return this.cmd('NOOP', 'NOOP');
        if (!alone) return this.cmd('FETCH flags', 'FETCH 1:* (UID FLAGS)');
        const want = n;
        this.fetchedSeqs = new Set();
        return this.cmd('FETCH flags', 'FETCH 1:* (UID FLAGS)').then((r) => {
          const got = this.fetchedSeqs!;
          this.fetchedSeqs = null;
          if (r.ok) for (let s = 1; s <= want; s++) if (!got.has(s)) return this.error('fetch-missing', `FETCH 1:* ended OK without sequence ${s} of ${want}`);
        });
      }
      case 'fetchEnvelope':
        if (n === 0) return this.cmd('NOOP', 'NOOP');
        return this.cmd('FETCH envelope', `FETCH ${this.seqRangeNewest(this.rng.int(5, 20))} (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)`);
      case 'search': {
        const q = this.rng.pick(['SEARCH UNSEEN', 'SEARCH FLAGGED', `UID SEARCH FROM ${quote(SEARCH_FROM)}`, 'UID SEARCH SINCE 1-Jan-2020 NOT DELETED', 'SEARCH SUBJECT "re"']);
        this.searchIsSeq = q.startsWith('SEARCH');
        return this.cmd('SEARCH', q);
      }
      default:
        return this.cmd('NOOP', 'NOOP');
    }
  }

  async step(): Promise<void> {
    const a = this.pickAction();
    const n = this.uids.length;
    switch (a) {
      case 'fetchFlags':
      case 'fetchEnvelope':
      case 'search':
      case 'noop': {
        if (this.rng.chance(PIPELINE_P)) {
          // A real client's burst: a flags resync and a header list, then maybe a poll. Only
          // the last command may be one during which EXPUNGE is allowed (NOOP, UID SEARCH):
          // a sequence number after it would be ambiguous (RFC 9051 §5.5).
          const burst: Action[] = Array.from({ length: this.rng.int(1, 2) }, () => this.rng.pick(SEQ_READS));
          if (this.rng.chance(0.5)) burst.push(this.rng.pick(READS));
          await Promise.all(burst.map((x) => this.read(x, false)));
        } else await this.read(a, true);
        return;
      }
      case 'fetchBody': {
        const uid = this.knownUid();
        if (uid) await this.cmd('FETCH body', `UID FETCH ${uid} (UID BODY.PEEK[])`);
        else if (n) await this.cmd('FETCH body', `FETCH ${this.rng.int(1, n)} (UID BODY.PEEK[])`);
        return;
      }
      case 'idle': {
        const { done } = await this.c.idle();
        await new Promise((r) => setTimeout(r, this.rng.int(IDLE_MS[0], IDLE_MS[1])));
        this.c.write('DONE\r\n');
        const r = await done;
        this.record('IDLE', 0);
        if (r.status !== 'OK') this.failure(`IDLE: ${r.text}`);
        return;
      }
      case 'select':
        await this.select(this.mailbox === 'INBOX' ? 'Work' : 'INBOX');
        return;
      case 'status':
        if (this.rng.chance(0.5)) await this.cmd('STATUS/LIST', `STATUS ${this.mailbox === 'INBOX' ? 'Work' : 'INBOX'} (MESSAGES UNSEEN UIDNEXT)`);
        else await this.cmd('STATUS/LIST', 'LIST "" "*"');
        return;
      case 'store': {
        const uid = this.knownUid();
        if (!uid) return;
        if (this.rng.chance(0.5)) {
          // Our own keyword: what we store must come back.
          const m = this.mine.get(uid);
          const add = m ? !m.want : true;
          const entry = { want: add, pending: true, last: undefined as boolean | undefined };
          this.mine.set(uid, entry);
          const r = await this.cmd('STORE', `UID STORE ${uid} ${add ? '+' : '-'}FLAGS (${this.keyword})`);
          if (this.mine.get(uid) !== entry) return; // expunged meanwhile
          if (!r.ok) {
            this.mine.delete(uid);
            return;
          }
          entry.pending = false;
          if (entry.last !== undefined && entry.last !== add) this.error('keyword-lost', `UID ${uid}: STORE ${add ? '+' : '-'}FLAGS (${this.keyword}) answered flags ${entry.last ? 'with' : 'without'} it`);
        } else {
          const flag = this.rng.pick(['\\Seen', '\\Flagged', '\\Answered']);
          await this.cmd('STORE', `UID STORE ${uid} ${this.rng.chance(0.5) ? '+' : '-'}FLAGS${this.rng.chance(0.5) ? '.SILENT' : ''} (${flag})`);
        }
        return;
      }
      case 'append': {
        if (n >= HIGH_MARK) return;
        const i = this.rng.pick(this.appendable);
        const msg = this.corpus.message(i);
        const box = this.rng.chance(0.7) ? this.mailbox : this.mailbox === 'INBOX' ? 'Work' : 'INBOX';
        const flags = this.rng.pick(['', '\\Seen', '\\Flagged', '\\Seen \\Answered']);
        const head = Buffer.from(`APPEND ${quote(box)} (${flags}) "${imapDate(this.corpus.dates[i]!)}" {${msg.length}+}\r\n`);
        await this.cmd('APPEND', Buffer.concat([head, msg, Buffer.from('\r\n')]));
        return;
      }
      case 'copy': {
        if (n >= HIGH_MARK) return;
        const uid = this.knownUid();
        if (uid) await this.cmd('COPY', `UID COPY ${uid} ${this.rng.chance(0.5) ? 'Work' : 'INBOX'}`);
        return;
      }
      case 'expunge': {
        if (n <= LOW_MARK) return;
        const uid = this.knownUid();
        if (!uid) return;
        await this.cmd('STORE', `UID STORE ${uid} +FLAGS.SILENT (\\Deleted)`);
        const r = await this.cmd('EXPUNGE', `UID EXPUNGE ${uid}`);
        if (r.ok && this.uids.includes(uid)) this.error('expunged-still-there', `UID EXPUNGE ${uid} ended OK and the message is still there`);
        return;
      }
      case 'relogin':
        await this.logout(true);
        {
          const t0 = performance.now();
          this.c = await ImapClient.connect(HOST, portOf(this.t, this.id));
          this.c.onUntagged = (l) => this.onUntagged(l);
          await this.c.login(this.user, 'pass');
          this.record('LOGIN', performance.now() - t0);
        }
        await this.select(this.rng.pick(MAILBOXES));
        return;
    }
  }

  private pickAction(): Action {
    let total = 0;
    for (const [, w] of this.actions) total += w;
    let x = this.rng.float() * total;
    for (const [a, w] of this.actions) if ((x -= w) < 0) return a;
    return 'noop';
  }

  async logout(timed = false): Promise<void> {
    this.loggingOut = true;
    this.byeSeen = false;
    this.afterBye = [];
    const r = await this.c.command('LOGOUT', { allowNo: true }).catch(() => null);
    if (timed && r) this.record('LOGOUT', r.ms);
    if (r && this.afterBye.length) this.error('logout-after-bye', `LOGOUT: ${this.afterBye.length} response(s) between BYE and OK: ${this.afterBye[0]!.slice(0, 60)}`);
    if (r && !this.byeSeen) this.error('logout-no-bye', 'LOGOUT without BYE');
    this.c.destroy();
    this.loggingOut = false;
    this.byeSeen = false;
    this.uids = [];
    this.mine.clear();
  }
}

// ---------------------------------------------------------------- a point

function pct(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Empties and refills every user's mailboxes with MAILBOX_MESSAGES messages each (the same ones on both servers). */
export async function resetMailboxes(t: MixedTarget, users: string[], corpus: Corpus, appendable: number[], seed: number): Promise<void> {
  for (const u of users) {
    const c = await ImapClient.connect(HOST, t.port);
    try {
      await c.login(u, 'pass');
      await c.command('DELETE Work', { allowNo: true });
      await c.command('CREATE Work');
      await c.command('SELECT INBOX');
      await c.command('STORE 1:* +FLAGS.SILENT (\\Deleted)', { allowNo: true });
      await c.command('EXPUNGE');
      const rng = new Rng(seed, 'mixed-fill', u);
      for (const box of MAILBOXES) {
        const parts: Buffer[] = [Buffer.from(`APPEND ${box}`)];
        for (let k = 0; k < MAILBOX_MESSAGES; k++) {
          const i = rng.pick(appendable);
          const m = corpus.message(i);
          const flags = rng.chance(0.6) ? '\\Seen' : '';
          parts.push(Buffer.from(` (${flags}) "${imapDate(corpus.dates[i]!)}" {${m.length}+}\r\n`), m);
        }
        parts.push(Buffer.from('\r\n'));
        await c.command(Buffer.concat(parts));
      }
    } finally {
      await c.logout();
    }
  }
}

/** Corpus messages small enough for the mixed load's APPENDs. */
export function appendableMessages(corpus: Corpus): number[] {
  const out: number[] = [];
  for (let i = 0; i < corpus.count && out.length < 500; i++) if (corpus.lengths[i]! <= MAX_APPEND_BYTES) out.push(i);
  return out;
}

export async function runMixedPoint(
  t: MixedTarget,
  o: {
    clients: number;
    logins: boolean;
    seconds: number;
    seed: number;
    corpus: Corpus;
    log: (s: string) => void;
    /**
     * Each client waits this long between its steps (0: none, a closed loop). Paced, the load stays
     * below what the server can do, so CPU per operation does not depend on how many operations each
     * turn of a starved event loop batches (bench/mixed-ab.ts --pace on a loaded machine).
     */
    paceMs?: number;
    /** Called as the timed window opens and as it closes (bench/mixed-ab.ts attaches strace for exactly that window). */
    window?: (phase: 'start' | 'end') => Promise<void>;
    /**
     * IDLE of IDLE_MS in the mix (default true). Each one is a fixed wait: at 2% of the actions and
     * 150 ms on average it adds ~3 ms to every client's average operation, so with few clients the
     * throughput of any server is bounded by the waits (about clients / 3.1 ms). Without it (false),
     * the mix is issue 11's list of commands, a closed loop whose ops/s measures the server.
     */
    idle?: boolean;
  },
): Promise<MixedPointResult> {
  const users = mixedUsers(o.clients);
  if (users > MIXED_USERS.length) throw new Error(`${o.clients} clients need ${users} users; ${MIXED_USERS.length} exist`);
  const userNames = MIXED_USERS.slice(0, users);
  const appendable = appendableMessages(o.corpus);
  await resetMailboxes(t, userNames, o.corpus, appendable, o.seed);
  const stats: Stats = { ops: 0, lat: new Map(), errors: 0, byKind: new Map(), failures: 0, samples: [], counting: false };
  const base = o.idle === false ? WEIGHTS.filter(([a]) => a !== 'idle') : WEIGHTS;
  const actions: [Action, number][] = o.logins ? [...base, ['relogin', RELOGIN_WEIGHT]] : base;
  const clients = Array.from(
    { length: o.clients },
    (_, i) => new MixedClient(t, i, userNames[i % users]!, Math.floor(i / users), o.seed, actions, o.corpus, appendable, stats),
  );
  for (let i = 0; i < clients.length; i += CONNECT_WINDOW) await Promise.all(clients.slice(i, i + CONNECT_WINDOW).map((c) => c.connect()));
  let stop = false;
  const loops = clients.map(async (c) => {
    while (!stop) {
      try {
        await c.step();
        if (o.paceMs) await new Promise((r) => setTimeout(r, o.paceMs));
      } catch (e) {
        stats.failures++;
        if (stats.samples.length < MAX_SAMPLES) stats.samples.push(`${t.name} client ${c.id}: ${e instanceof Error ? e.message : e}`);
        // Start again on a fresh connection.
        try {
          await c.connect();
        } catch {
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    }
  });
  // A short warm-up (JIT, caches), then the timed window.
  await new Promise((r) => setTimeout(r, Math.min(2000, o.seconds * 200)));
  await o.window?.('start');
  const cpu0 = cpuTimes(t.pids());
  const self0 = process.cpuUsage();
  const t0 = performance.now();
  stats.counting = true;
  await new Promise((r) => setTimeout(r, o.seconds * 1000));
  stats.counting = false;
  const elapsed = (performance.now() - t0) / 1000;
  const cpu1 = cpuTimes(t.pids());
  await o.window?.('end');
  const cpu = cpu1.total - cpu0.total;
  const cpuSys = cpu1.system - cpu0.system;
  const self = process.cpuUsage(self0);
  stop = true;
  await Promise.all(loops);
  // LOGOUT is checked too (nothing between BYE and OK).
  await Promise.all(clients.map((c) => c.logout().catch(() => undefined)));
  const latency: MixedPointResult['latency'] = {};
  const all: number[] = [];
  for (const [k, xs] of stats.lat) {
    xs.sort((a, b) => a - b);
    if (k !== 'IDLE') all.push(...xs);
    latency[k] = { n: xs.length, p50: pct(xs, 50), p99: pct(xs, 99) };
  }
  all.sort((a, b) => a - b);
  return {
    clients: o.clients,
    users,
    logins: o.logins,
    seconds: elapsed,
    ops: stats.ops,
    opsPerSec: stats.ops / elapsed,
    cpuSeconds: cpu,
    cpuPer1000: (cpu * 1000) / Math.max(1, stats.ops),
    systemShare: cpu > 0 ? cpuSys / cpu : 0,
    clientCpuShare: (self.user + self.system) / 1e6 / elapsed,
    errors: stats.errors,
    errorKinds: Object.fromEntries(stats.byKind),
    failures: stats.failures,
    samples: stats.samples,
    latency,
    overall: { p50: pct(all, 50), p99: pct(all, 99) },
  };
}
