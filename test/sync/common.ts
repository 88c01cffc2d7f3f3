// Shared pieces of the sync-client tests (mbsync, interimap): running a
// Debian tool without blocking the in-process server, reading a mailbox's
// state over IMAP and a Maildir's state from disk, and a session that stays
// selected throughout to check that its own view follows every change.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { RawClient } from '../helpers/imap.js';

/** Message-ID -> system flags (sorted), the part of a message every sync client carries. */
export type State = Map<string, string[]>;

const SYSTEM = ['\\Answered', '\\Deleted', '\\Draft', '\\Flagged', '\\Seen'];

export function onPath(tool: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((d) => d && existsSync(join(d, tool)));
}

/**
 * True when `tool` can run. Otherwise the test is skipped with a message,
 * except under CI, where a missing client is a failure (it must be installed).
 */
export function requireTool(t: TestContext, tool: string, pkg: string): boolean {
  if (onPath(tool)) return true;
  const why = `${tool} not installed (Debian package ${pkg})`;
  if (process.env.CI) assert.fail(`${why}; CI must install it`);
  console.log(`# SKIP ${why}`);
  t.skip(why);
  return false;
}

/** Run a command asynchronously (the server under test lives in this process). */
export function run(cmd: string, args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => {
      out += `\n[killed after ${opts.timeoutMs ?? 30_000} ms]`;
      p.kill('SIGKILL');
    }, opts.timeoutMs ?? 30_000);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

const FETCH_RE = /^\* (\d+) FETCH \((.*)\)$/s;

/** Parse `* n FETCH (UID u FLAGS (...) BODY[HEADER.FIELDS (MESSAGE-ID)] {n}...)` lines. */
export function parseFetches(lines: readonly string[]): { seq: number; uid: number; flags: string[]; messageId: string }[] {
  const out = [];
  for (const l of lines) {
    const m = FETCH_RE.exec(l);
    if (!m) continue;
    const uid = /\bUID (\d+)/.exec(m[2]);
    const flags = /\bFLAGS \(([^)]*)\)/.exec(m[2]);
    const id = /Message-ID:\s*(<[^>\r\n]*>)/i.exec(m[2]);
    if (!uid || !flags || !id) continue;
    out.push({ seq: Number(m[1]), uid: Number(uid[1]), flags: flags[1].split(' ').filter(Boolean), messageId: id[1] });
  }
  return out;
}

const systemOnly = (flags: readonly string[]) => flags.filter((f) => SYSTEM.includes(f)).sort();

/** A mailbox's state read by a fresh session; fails on a duplicated Message-ID. */
export async function imapState(port: number, login: [string, string], box: string): Promise<State> {
  const c = await RawClient.connect(port, { login });
  try {
    const sel = await c.command(`EXAMINE ${box}`);
    assert.match(sel.tagged, /OK/, `EXAMINE ${box}: ${sel.tagged}`);
    const r = await c.command('FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])');
    const state: State = new Map();
    const exists = Number(/\* (\d+) EXISTS/.exec(sel.untagged.join('\n'))?.[1] ?? 0);
    const msgs = parseFetches(r.untagged);
    assert.equal(msgs.length, exists, `every message of ${login[0]}/${box} has a Message-ID:\n${r.raw}`);
    for (const m of msgs) {
      assert.ok(!state.has(m.messageId), `duplicated ${m.messageId} in ${login[0]}/${box}`);
      state.set(m.messageId, systemOnly(m.flags));
    }
    return state;
  } finally {
    await c.close();
  }
}

/** Maildir info letters (Maildir spec) for the system flags. */
const LETTER: Record<string, string> = { D: '\\Draft', F: '\\Flagged', R: '\\Answered', S: '\\Seen', T: '\\Deleted' };

export function flagsToInfo(flags: readonly string[]): string {
  return Object.entries(LETTER)
    .filter(([, f]) => flags.includes(f))
    .map(([l]) => l)
    .join('');
}

export interface MaildirMessage {
  /** Path relative to the folder (cur/... or new/...). */
  file: string;
  messageId: string;
  flags: string[];
}

/** The messages of a Maildir folder (cur/ and new/); fails on a duplicated Message-ID. */
export function maildirMessages(folder: string): MaildirMessage[] {
  const out: MaildirMessage[] = [];
  for (const sub of ['cur', 'new']) {
    const dir = join(folder, sub);
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir)) {
      const text = readFileSync(join(dir, name), 'latin1');
      const head = text.split(/\r?\n\r?\n/)[0];
      const id = /^Message-ID:\s*(<[^>\r\n]*>)/im.exec(head);
      assert.ok(id, `${sub}/${name} has a Message-ID`);
      // mbsync also writes info on files it puts in new/ (unseen messages with other flags).
      const info = /:2,([A-Za-z]*)$/.exec(name)?.[1] ?? '';
      const flags = [...info].map((l) => LETTER[l]).filter(Boolean).sort();
      out.push({ file: `${sub}/${name}`, messageId: id[1], flags });
    }
  }
  return out;
}

export function maildirState(folder: string): State {
  const state: State = new Map();
  for (const m of maildirMessages(folder)) {
    assert.ok(!state.has(m.messageId), `duplicated ${m.messageId} in the Maildir ${folder}`);
    state.set(m.messageId, m.flags);
  }
  return state;
}

export const sorted = (s: State) => [...s.entries()].sort((a, b) => a[0].localeCompare(b[0]));

/**
 * A session that keeps the mailbox selected across every round: after a NOOP
 * its own view (EXISTS, EXPUNGE, FETCH FLAGS applied to what it knew) must
 * equal a fresh session's. This checks what the server *tells* a session that
 * watches another client sync, not only the final store.
 */
export class Observer {
  /** Sequence-ordered (uid, messageId, flags) as this session believes them. */
  private msgs: { uid: number; messageId: string; flags: string[] }[] = [];

  private constructor(private readonly c: RawClient) {}

  static async open(port: number, login: [string, string], box: string): Promise<Observer> {
    const c = await RawClient.connect(port, { login });
    const o = new Observer(c);
    const sel = await c.command(`SELECT ${box}`);
    assert.match(sel.tagged, /OK/);
    const r = await c.command('FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])');
    o.msgs = parseFetches(r.untagged).map((m) => ({ uid: m.uid, messageId: m.messageId, flags: m.flags }));
    return o;
  }

  /**
   * NOOP, then apply its untagged responses the way a client must: EXPUNGE
   * n removes the nth message, EXISTS grows the list (new messages fetched by
   * UID afterwards), FETCH FLAGS replaces flags of message n.
   */
  async catchUp(): Promise<State> {
    const r = await this.c.command('NOOP');
    let exists = this.msgs.length;
    for (const l of r.untagged) {
      let m: RegExpExecArray | null;
      if ((m = /^\* (\d+) EXPUNGE$/.exec(l))) {
        const n = Number(m[1]);
        assert.ok(n >= 1 && n <= this.msgs.length, `EXPUNGE ${n} is a valid sequence number (have ${this.msgs.length})`);
        this.msgs.splice(n - 1, 1);
        exists--;
      } else if ((m = /^\* (\d+) EXISTS$/.exec(l))) {
        const n = Number(m[1]);
        assert.ok(n >= this.msgs.length, `EXISTS ${n} does not shrink the mailbox (have ${this.msgs.length})`);
        exists = n;
      } else if ((m = /^\* (\d+) FETCH \((.*)\)$/.exec(l))) {
        const n = Number(m[1]);
        const flags = /FLAGS \(([^)]*)\)/.exec(m[2]);
        const uid = /UID (\d+)/.exec(m[2]);
        if (n > this.msgs.length) continue; // about a message announced by this EXISTS, fetched below
        if (uid) assert.equal(Number(uid[1]), this.msgs[n - 1].uid, `FETCH ${n} names the UID this session has at ${n}`);
        if (flags) this.msgs[n - 1].flags = flags[1].split(' ').filter(Boolean);
      }
    }
    if (exists > this.msgs.length) {
      const f = await this.c.command(`FETCH ${this.msgs.length + 1}:${exists} (UID FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])`);
      for (const m of parseFetches(f.untagged)) this.msgs.push({ uid: m.uid, messageId: m.messageId, flags: m.flags });
      assert.equal(this.msgs.length, exists, 'every announced message could be fetched');
    }
    // The session's numbering must agree with the server's.
    const check = await this.c.command('FETCH 1:* (UID)');
    const uids = check.untagged.map((l) => Number(/UID (\d+)/.exec(l)?.[1])).filter((n) => n > 0);
    assert.deepEqual(uids, this.msgs.map((m) => m.uid), 'sequence numbers of the watching session match the server');
    const state: State = new Map();
    for (const m of this.msgs) state.set(m.messageId, systemOnly(m.flags));
    return state;
  }

  async close() {
    await this.c.close();
  }
}
