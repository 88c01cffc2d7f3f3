// Loading a corpus into each server.
//
// Quire: MULTIAPPEND over IMAP with LITERAL+ literals, several commands in
// flight (the server's normal, durable write path).
// Dovecot: Maildir files written directly (file name carries size and flags,
// mtime is the internal date), then `doveadm force-resync` builds the index
// and assigns UIDs in file-name (= corpus) order. Verified afterwards by
// comparing the Message-ID of the first and last UID on both servers.
import { promises as fs, utimesSync } from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { scryptSync, randomBytes } from 'node:crypto';
import { ImapClient, quote } from './imap.js';
import { FLAG_ANSWERED, FLAG_FLAGGED, FLAG_SEEN, flagList, type Corpus } from './corpus.js';
import { HOST, doveadm, type DovecotPeer } from './servers.js';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

export function imapDate(ms: number): string {
  const d = new Date(ms);
  const p2 = (n: number) => String(n).padStart(2, '0');
  return `${p2(d.getUTCDate())}-${MONTHS[d.getUTCMonth()]}-${d.getUTCFullYear()} ${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())} +0000`;
}

/** One MULTIAPPEND command (without tag) for messages [from, to) with LITERAL+ literals. */
export function multiAppend(mailbox: string, corpus: Corpus, from: number, to: number, withFlags = true): Buffer {
  const parts: Buffer[] = [Buffer.from(`APPEND ${quote(mailbox)}`)];
  for (let i = from; i < to; i++) {
    const m = corpus.message(i);
    const flags = withFlags ? flagList(corpus.flags[i]!).join(' ') : '';
    parts.push(Buffer.from(` (${flags}) "${imapDate(corpus.dates[i]!)}" {${m.length}+}\r\n`), m);
  }
  parts.push(Buffer.from('\r\n'));
  return Buffer.concat(parts);
}

/** Most bytes / messages in one MULTIAPPEND while loading. */
const BATCH_BYTES = 8 << 20;
const BATCH_MSGS = 200;
/** Commands in flight while loading. */
const WINDOW = 3;

/**
 * APPENDs messages [from, to) of the corpus to `mailbox` over `c`, MULTIAPPEND
 * batches with up to WINDOW commands in flight. Returns the elapsed ms.
 */
export async function appendRange(
  c: ImapClient,
  mailbox: string,
  corpus: Corpus,
  from: number,
  to: number,
  opts: { multi: boolean; withFlags?: boolean; progress?: (done: number) => void },
): Promise<number> {
  const t0 = performance.now();
  const inflight = new Set<Promise<unknown>>();
  let i = from;
  let done = 0;
  while (i < to) {
    let j = i;
    let bytes = 0;
    const maxMsgs = opts.multi ? BATCH_MSGS : 1;
    while (j < to && j - i < maxMsgs && (bytes === 0 || bytes + corpus.lengths[j]! < BATCH_BYTES)) bytes += corpus.lengths[j++]!;
    const n = j - i;
    const p = c.command(multiAppend(mailbox, corpus, i, j, opts.withFlags ?? true)).then(() => {
      done += n;
      opts.progress?.(done);
      inflight.delete(p);
    });
    inflight.add(p);
    i = j;
    if (inflight.size >= WINDOW) await Promise.race(inflight);
    await c.drain();
  }
  await Promise.all(inflight);
  return performance.now() - t0;
}

/** Loads the whole corpus into `user`'s INBOX on a running Quire. */
export async function loadQuire(port: number, user: string, pass: string, corpus: Corpus, log: (s: string) => void): Promise<void> {
  const c = await ImapClient.connect(HOST, port);
  await c.login(user, pass);
  let last = 0;
  const ms = await appendRange(c, 'INBOX', corpus, 0, corpus.count, {
    multi: true,
    progress: (d) => {
      if (d - last >= 10_000) {
        last = d;
        log(`  quire ${user}: ${d}/${corpus.count}`);
      }
    },
  });
  await c.logout();
  log(`  quire ${user}: ${corpus.count} messages in ${(ms / 1000).toFixed(1)} s (${((corpus.count * 1000) / ms).toFixed(0)} msg/s)`);
}

/** Writes the corpus as Maildir files for `user` of the private Dovecot, then lets doveadm index it. */
export async function loadDovecot(p: DovecotPeer, user: string, corpus: Corpus, log: (s: string) => void): Promise<void> {
  const t0 = performance.now();
  const home = path.join(p.dir, 'mail', user);
  const md = path.join(home, 'Maildir');
  await fs.rm(md, { recursive: true, force: true });
  for (const d of ['cur', 'new', 'tmp']) await fs.mkdir(path.join(md, d), { recursive: true });
  const BASE = 1_500_000_000;
  for (let i = 0; i < corpus.count; i++) {
    const m = corpus.message(i);
    const f = corpus.flags[i]!;
    // Maildir flag letters in ASCII order: F(lagged) R(eplied = \Answered) S(een).
    const letters = (f & FLAG_FLAGGED ? 'F' : '') + (f & FLAG_ANSWERED ? 'R' : '') + (f & FLAG_SEEN ? 'S' : '');
    // Dovecot gives new files UIDs in the order of the time in their names.
    const name = `${BASE + i}.M${i % 1_000_000}P1.bench,S=${m.length}:2,${letters}`;
    const file = path.join(md, 'cur', name);
    await fs.writeFile(file, m);
    const t = corpus.dates[i]! / 1000;
    utimesSync(file, t, t);
    if (i > 0 && i % 20_000 === 0) log(`  dovecot ${user}: wrote ${i}/${corpus.count}`);
  }
  execFileSync('chown', ['-R', 'vmail:vmail', home]);
  doveadm(p, 'force-resync', '-u', user, 'INBOX');
  log(`  dovecot ${user}: ${corpus.count} messages written and indexed in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

/**
 * "size message-id" of the messages at sequence numbers `seqs`, to check both
 * servers hold the same mailbox in the same order.
 */
export async function fingerprint(port: number, user: string, pass: string, seqs: number[]): Promise<string[]> {
  const c = await ImapClient.connect(HOST, port);
  await c.login(user, pass);
  await c.command('EXAMINE INBOX');
  const lines: string[] = [];
  c.onUntagged = (l) => {
    if (/^\* \d+ FETCH /.test(l)) lines.push(l);
  };
  await c.command(`FETCH ${seqs.join(',')} (RFC822.SIZE ENVELOPE)`);
  await c.logout();
  return lines.map((l) => {
    const size = /RFC822\.SIZE (\d+)/.exec(l)?.[1] ?? '?';
    const ids = [...l.matchAll(/"(<[^"]*>)"/g)];
    return `${/^\* (\d+)/.exec(l)![1]}: ${size} ${ids.at(-1)?.[1] ?? '?'}`;
  });
}

/** A valid Quire password hash with a low scrypt cost (ln=10): lets 10k connections log in quickly. */
export function cheapQuireHash(pass: string): string {
  const salt = randomBytes(16);
  const hash = scryptSync(pass, salt, 32, { N: 1024, r: 8, p: 1 });
  const b64 = (b: Buffer) => b.toString('base64').replace(/=+$/, '');
  return `$scrypt$ln=10,r=8,p=1$${b64(salt)}$${b64(hash)}`;
}
