// POP3 download scenario: log in, STAT, then RETR every message of a
// 1,000-message maildrop (pipelined RETRs in windows of POP3_WINDOW, as
// fetchmail and getmail clients do with PIPELINING), QUIT without DELE so the
// maildrop is the same for every run. The same mailbox is served by Quire
// (POP3 on the IMAP port - 33) and by the bench's private Dovecot (its POP3 is
// PORT - 33 too, see dovecot-peer).
//
// The client runs in a process of its own (Pop3ClientProcess: this file run
// with --child), not inside bench/run.ts: the runner holds the corpus and has
// just loaded both stores, and its garbage collection and timers would land
// in whichever server's runs happen to be timed then. The child does nothing
// but downloads asked for on stdin (one JSON line each) and answers each with
// one JSON line on stdout. It keeps no body: it only looks for each
// response's terminator, carrying the last 4 bytes of a read over to the next.
//
// Runnable alone against any server:
//   npx tsx bench/pop3.ts PORT USER PASS [RUNS]
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { HOST } from './lib/servers.js';

/** Offset of the POP3 port from the IMAP port, for Quire (bench/lib/servers.ts) and dovecot-peer alike. */
export const POP3_PORT_OFFSET = -33;
/** RETRs in flight at once. */
const POP3_WINDOW = 16;
/** Longest a single download may take before the child gives up on it. */
const POP3_DOWNLOAD_TIMEOUT_MS = 300_000;
/** Longest status line accepted (RFC 2449 §4: 512 octets). */
const MAX_STATUS_LINE = 512;

export interface Pop3Download {
  messages: number;
  bytes: number;
  /** From the connect to QUIT's answer (login included). */
  ms: number;
  /** From the first RETR sent to the last body received: the download itself, without login (Quire hashes
   * passwords with scrypt, the bench's Dovecot compares {PLAIN} ones, so login time is not download time). */
  retrMs: number;
  /** CPU of the client process during the download (user + system, ms): the client's own share of the machine. */
  clientCpuMs: number;
}

const TERM = Buffer.from('\r\n.\r\n');
const EMPTY = Buffer.alloc(0);

/** One full download; resolves with what was received. */
export function pop3Download(port: number, user: string, pass: string, limit = Infinity): Promise<Pop3Download> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    const s = net.connect(port, HOST);
    s.setNoDelay(true);
    // Status lines only (a partial one is kept until its CRLF); bodies are scanned, never kept.
    let line: Buffer = EMPTY;
    let phase: 'greet' | 'user' | 'pass' | 'stat' | 'retr' | 'quit' = 'greet';
    let count = 0;
    let sent = 0;
    let done = 0;
    let bytes = 0;
    let inBody = false;
    /** The last bytes of the body seen so far (a terminator may span two reads), at most 4. */
    let tail: Buffer = EMPTY;
    let retrStart = 0;
    let retrEnd = 0;
    const timer = setTimeout(() => fail(new Error(`download not done in ${POP3_DOWNLOAD_TIMEOUT_MS} ms`)), POP3_DOWNLOAD_TIMEOUT_MS);
    const fail = (e: Error) => {
      clearTimeout(timer);
      s.destroy();
      reject(e);
    };
    const pump = () => {
      let out = '';
      while (sent < count && sent - done < POP3_WINDOW) out += `RETR ${++sent}\r\n`;
      if (out) s.write(out);
    };
    s.on('error', fail);
    s.on('close', () => {
      if (phase !== 'quit') fail(new Error(`connection closed in phase ${phase}`));
    });
    s.on('data', (d: Buffer) => {
      let pos = 0;
      while (pos < d.length) {
        if (inBody) {
          // A terminator that starts in the tail kept from the previous read.
          if (tail.length > 0) {
            const at = Buffer.concat([tail, d.subarray(pos, pos + TERM.length - 1)]).indexOf(TERM);
            if (at >= 0 && at < tail.length) {
              const rel = at - tail.length; // where it starts, relative to pos (negative: in the previous read)
              bytes += rel + 2;
              pos += rel + TERM.length;
              tail = EMPTY;
              endBody();
              continue;
            }
          }
          const end = d.indexOf(TERM, pos);
          if (end < 0) {
            bytes += d.length - pos;
            const rest = d.subarray(pos);
            tail = Buffer.from(rest.length >= TERM.length - 1 ? rest.subarray(rest.length - (TERM.length - 1)) : Buffer.concat([tail, rest]).subarray(-(TERM.length - 1)));
            return;
          }
          // The body's bytes include its last CRLF (the one the terminator begins with).
          bytes += end + 2 - pos;
          pos = end + TERM.length;
          tail = EMPTY;
          endBody();
          continue;
        }
        const nl = d.indexOf('\r\n', pos);
        if (nl < 0) {
          line = Buffer.concat([line, d.subarray(pos)]);
          if (line.length > MAX_STATUS_LINE) return fail(new Error(`${phase}: status line too long`));
          return;
        }
        const text = (line.length ? Buffer.concat([line, d.subarray(pos, nl)]) : d.subarray(pos, nl)).toString('latin1');
        line = EMPTY;
        pos = nl + 2;
        if (!text.startsWith('+OK')) return fail(new Error(`${phase}: ${text}`));
        switch (phase) {
          case 'greet':
            phase = 'user';
            s.write(`USER ${user}\r\n`);
            break;
          case 'user':
            phase = 'pass';
            s.write(`PASS ${pass}\r\n`);
            break;
          case 'pass':
            phase = 'stat';
            s.write('STAT\r\n');
            break;
          case 'stat':
            count = Math.min(limit, Number(text.split(' ')[1]));
            phase = 'retr';
            retrStart = performance.now();
            if (count === 0) {
              phase = 'quit';
              s.write('QUIT\r\n');
            } else pump();
            break;
          case 'retr':
            inBody = true;
            break;
          case 'quit': {
            clearTimeout(timer);
            s.end();
            const c = process.cpuUsage(cpu0);
            resolve({ messages: done, bytes, ms: performance.now() - t0, retrMs: retrEnd - retrStart, clientCpuMs: (c.user + c.system) / 1000 });
            return;
          }
        }
      }
    });
    function endBody(): void {
      inBody = false;
      done++;
      if (done === count) {
        retrEnd = performance.now();
        phase = 'quit';
        s.write('QUIT\r\n');
      } else pump();
    }
  });
}

/** What the runner asks the child for: one download. */
interface Pop3Request {
  port: number;
  user: string;
  pass: string;
  limit: number | null;
}

/**
 * The client in a process of its own (see the head of this file). One is
 * started per server measured, so each server's runs get a client warmed by
 * that server's own warm-ups; download() runs one at a time.
 */
export class Pop3ClientProcess {
  private readonly child: ChildProcess;
  private readonly waiting: { resolve: (r: Pop3Download) => void; reject: (e: Error) => void }[] = [];
  private stderr = '';
  private exited = false;

  private constructor() {
    const self = fileURLToPath(import.meta.url);
    // The runner runs under tsx: the child runs this TypeScript file the same way.
    this.child = spawn(process.execPath, ['--import', 'tsx', self, '--child'], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-4000)));
    createInterface({ input: this.child.stdout! }).on('line', (l) => {
      const w = this.waiting.shift();
      if (!w) return;
      let m: { ok: true; r: Pop3Download } | { ok: false; error: string };
      try {
        m = JSON.parse(l) as typeof m;
      } catch {
        return w.reject(new Error(`pop3 client: unreadable answer ${l.slice(0, 200)}`));
      }
      if (m.ok) w.resolve(m.r);
      else w.reject(new Error(m.error));
    });
    this.child.on('exit', (code) => {
      this.exited = true;
      for (const w of this.waiting.splice(0)) w.reject(new Error(`pop3 client exited (${code}): ${this.stderr}`));
    });
  }

  static async start(): Promise<Pop3ClientProcess> {
    const p = new Pop3ClientProcess();
    await new Promise<void>((resolve, reject) => {
      p.child.once('spawn', () => resolve());
      p.child.once('error', reject);
    });
    return p;
  }

  /** The child's pid (its CPU is read from /proc by whoever wants it). */
  get pid(): number {
    return this.child.pid ?? 0;
  }

  download(port: number, user: string, pass: string, limit = Infinity): Promise<Pop3Download> {
    if (this.exited) return Promise.reject(new Error(`pop3 client exited: ${this.stderr}`));
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      const req: Pop3Request = { port, user, pass, limit: Number.isFinite(limit) ? limit : null };
      this.child.stdin!.write(JSON.stringify(req) + '\n');
    });
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((r) => this.child.once('exit', () => r()));
    this.child.stdin!.end();
    const t = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await gone;
    clearTimeout(t);
  }
}

/** The child: downloads asked for on stdin, one at a time, answered in order on stdout. */
async function childMain(): Promise<void> {
  const rl = createInterface({ input: process.stdin });
  for await (const l of rl) {
    if (!l.trim()) continue;
    let out: string;
    try {
      const q = JSON.parse(l) as Pop3Request;
      const r = await pop3Download(q.port, q.user, q.pass, q.limit ?? Infinity);
      out = JSON.stringify({ ok: true, r });
    } catch (e) {
      out = JSON.stringify({ ok: false, error: e instanceof Error ? e.message : String(e) });
    }
    process.stdout.write(out + '\n');
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  if (process.argv[2] === '--child') await childMain();
  else {
    const [port, user, pass, runs] = process.argv.slice(2);
    for (let i = 0; i < Number(runs ?? 1); i++) {
      const r = await pop3Download(Number(port), user!, pass!);
      console.log(`${r.messages} messages, ${(r.bytes / 1e6).toFixed(1)} MB in ${r.ms.toFixed(0)} ms (RETRs ${r.retrMs.toFixed(1)} ms = ${(r.bytes / 1e6 / (r.retrMs / 1000)).toFixed(1)} MB/s; client CPU ${r.clientCpuMs.toFixed(0)} ms)`);
    }
  }
}
