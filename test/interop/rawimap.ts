// A deliberately dumb IMAP client for tests that must put exact bytes on the
// wire (odd mailbox names, hand-made commands). It knows just enough to split
// responses into lines with their literals and to find the tagged reply.
import { connect as tcpConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';

export interface Reply {
  /** "OK" | "NO" | "BAD" */
  status: string;
  /** The tagged line without tag and status. */
  text: string;
  /** Untagged responses, each with its literals inlined. */
  untagged: string[];
}

export class RawImap {
  private buf = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  private tagN = 0;
  /** Everything the server sent, for transcripts and leak checks. */
  transcript = '';
  greeting = '';
  closed = false;

  private constructor(private sock: Socket | TLSSocket) {
    sock.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.transcript += d.toString('latin1');
      this.wake();
    });
    sock.on('close', () => {
      this.closed = true;
      this.wake();
    });
    sock.on('error', () => {});
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  static async tls(port: number, ca: Buffer): Promise<RawImap> {
    const s = tlsConnect({ host: '127.0.0.1', port, ca: [ca], servername: 'localhost' });
    await new Promise<void>((res, rej) => {
      s.once('secureConnect', () => res());
      s.once('error', rej);
    });
    const c = new RawImap(s);
    c.greeting = await c.line();
    return c;
  }

  static async plain(port: number): Promise<RawImap> {
    const s = tcpConnect(port, '127.0.0.1');
    await new Promise<void>((res, rej) => {
      s.once('connect', () => res());
      s.once('error', rej);
    });
    const c = new RawImap(s);
    c.greeting = await c.line();
    return c;
  }

  private async more(deadline: number): Promise<void> {
    if (this.closed) throw new Error(`connection closed; transcript:\n${this.transcript}`);
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`timeout waiting for the server; transcript:\n${this.transcript.slice(-2000)}`);
    await new Promise<void>((res) => {
      const t = setTimeout(res, left);
      this.waiters.push(() => {
        clearTimeout(t);
        res();
      });
    });
  }

  /** One response line with its literals inlined (as latin1 text). */
  async line(timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    let out = '';
    for (;;) {
      const nl = this.buf.indexOf('\r\n');
      if (nl < 0) {
        await this.more(deadline);
        continue;
      }
      const l = this.buf.subarray(0, nl).toString('latin1');
      const m = /\{(\d+)\}$/.exec(l);
      if (m) {
        const n = Number(m[1]);
        while (this.buf.length < nl + 2 + n) await this.more(deadline);
        out += l + '\r\n' + this.buf.subarray(nl + 2, nl + 2 + n).toString('latin1');
        this.buf = this.buf.subarray(nl + 2 + n);
        continue;
      }
      this.buf = this.buf.subarray(nl + 2);
      return out + l;
    }
  }

  write(data: string | Buffer): void {
    this.sock.write(data);
  }

  /** Send `A<n> <command>` and collect responses up to the tagged reply. */
  async cmd(command: string | Buffer, timeoutMs = 10_000): Promise<Reply> {
    const tag = `A${++this.tagN}`;
    this.sock.write(Buffer.concat([Buffer.from(`${tag} `), Buffer.isBuffer(command) ? command : Buffer.from(command, 'utf8'), Buffer.from('\r\n')]));
    const untagged: string[] = [];
    for (;;) {
      const l = await this.line(timeoutMs);
      if (l.startsWith(`${tag} `)) {
        const m = /^\S+ (\S+) ?(.*)$/s.exec(l)!;
        return { status: m[1]!, text: m[2]!, untagged };
      }
      if (l.startsWith('+')) throw new Error(`unexpected continuation for ${tag}: ${l}`);
      untagged.push(l);
    }
  }

  /** APPEND with a non-synchronising literal (LITERAL+). */
  append(mailbox: string, message: Buffer | string, flags = ''): Promise<Reply> {
    const b = Buffer.isBuffer(message) ? message : Buffer.from(message);
    return this.cmd(Buffer.concat([Buffer.from(`APPEND ${mailbox} ${flags ? `(${flags}) ` : ''}{${b.length}+}\r\n`), b]));
  }

  async close(): Promise<void> {
    if (!this.closed) {
      try {
        await this.cmd('LOGOUT', 2000);
      } catch {
        /* already gone */
      }
    }
    this.sock.destroy();
  }
}

/** An IMAP quoted string (test values only; refuses what cannot be quoted). */
export function quote(s: string): string {
  if (/[\r\n\0]/.test(s)) throw new Error('cannot quote');
  return '"' + s.replace(/[\\"]/g, (c) => '\\' + c) + '"';
}

/** The mailbox names of LIST responses (quoted, atom or literal forms). */
export function listNames(untagged: string[]): string[] {
  const out: string[] = [];
  for (const u of untagged) {
    const m = /^\* (?:LIST|LSUB) \([^)]*\) (?:"(?:[^"\\]|\\.)*"|NIL) (.*)$/s.exec(u);
    if (!m) continue;
    const rest = m[1]!;
    const lit = /^\{(\d+)\}\r\n/.exec(rest);
    const q = /^"((?:[^"\\]|\\.)*)"/.exec(rest);
    if (lit) out.push(rest.slice(lit[0].length, lit[0].length + Number(lit[1])));
    else if (q) out.push(q[1]!.replace(/\\(.)/g, '$1'));
    else out.push(rest.split(' ')[0]!);
  }
  return out;
}
