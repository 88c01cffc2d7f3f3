// A minimal raw-socket IMAP client for benchmarks: no parsing beyond what is
// needed to find response boundaries (lines and {n} literals), so the client
// costs little next to the server and timings are precise. Commands may be
// pipelined: each `command` call writes at once and resolves on its tag.
import net from 'node:net';
import { performance } from 'node:perf_hooks';

export interface Tagged {
  tag: string;
  status: 'OK' | 'NO' | 'BAD';
  text: string;
  /** Untagged responses received while this command was the oldest in flight. */
  untagged: number;
  /** ms from write to the tagged line. */
  ms: number;
}

type Untagged = (line: string, at: number) => void;

interface Pending {
  tag: string;
  t0: number;
  untagged: number;
  resolve: (t: Tagged) => void;
  reject: (e: Error) => void;
}

const LITERAL_AT_END = /\{(\d+)\+?\}$/;

export class ImapClient {
  private sock!: net.Socket;
  private buf: Buffer = Buffer.alloc(0);
  private literalLeft = 0;
  private cur = '';
  private tagN = 0;
  private pending: Pending[] = [];
  private waiters: ((line: string) => void)[] = [];
  private continuation: (() => void)[] = [];
  private closedErr: Error | null = null;
  /** Called for every untagged response (the text with literals elided) and the time it completed. */
  onUntagged: Untagged | null = null;
  /** Keep the untagged lines of the current command (for small answers such as SEARCH). */
  collect: string[] | null = null;
  capabilities = '';

  static async connect(host: string, port: number, timeoutMs = 30_000): Promise<ImapClient> {
    const c = new ImapClient();
    await c.open(host, port, timeoutMs);
    return c;
  }

  private open(host: string, port: number, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.sock.destroy();
        reject(new Error(`connect to ${host}:${port} timed out`));
      }, timeoutMs);
      this.sock = net.connect({ host, port });
      this.sock.setNoDelay(true);
      this.waiters.push((line) => {
        clearTimeout(timer);
        if (line.startsWith('* OK') || line.startsWith('* PREAUTH')) {
          const m = /\[CAPABILITY ([^\]]*)\]/.exec(line);
          if (m) this.capabilities = m[1]!;
          resolve();
        } else reject(new Error(`bad greeting: ${line}`));
      });
      this.sock.on('data', (d) => this.onData(d));
      const fail = (e: Error) => {
        clearTimeout(timer);
        this.closedErr ??= e;
        for (const p of this.pending.splice(0)) p.reject(e);
        reject(e);
      };
      this.sock.on('error', fail);
      this.sock.on('close', () => fail(new Error('connection closed')));
    });
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    let pos = 0;
    for (;;) {
      if (this.literalLeft > 0) {
        const take = Math.min(this.literalLeft, this.buf.length - pos);
        this.literalLeft -= take;
        pos += take;
        if (this.literalLeft > 0) break;
        continue;
      }
      const nl = this.buf.indexOf(10, pos);
      if (nl < 0) break;
      const line = this.buf.toString('latin1', pos, nl > pos && this.buf[nl - 1] === 13 ? nl - 1 : nl);
      pos = nl + 1;
      const lit = LITERAL_AT_END.exec(line);
      if (lit) {
        this.literalLeft = Number(lit[1]);
        this.cur += line.slice(0, lit.index) + '{}';
        continue;
      }
      const full = this.cur + line;
      this.cur = '';
      this.dispatch(full);
    }
    this.buf = pos >= this.buf.length ? Buffer.alloc(0) : this.buf.subarray(pos);
  }

  private dispatch(line: string): void {
    const now = performance.now();
    const w = this.waiters.shift();
    if (w) return w(line);
    if (line.startsWith('* ')) {
      if (this.pending[0]) this.pending[0].untagged++;
      if (this.collect) this.collect.push(line);
      if (line.startsWith('* CAPABILITY ')) this.capabilities = line.slice(13);
      this.onUntagged?.(line, now);
      return;
    }
    if (line.startsWith('+')) {
      this.continuation.shift()?.();
      return;
    }
    const sp = line.indexOf(' ');
    const tag = line.slice(0, sp);
    const i = this.pending.findIndex((p) => p.tag === tag);
    if (i < 0) return;
    const p = this.pending.splice(i, 1)[0]!;
    const rest = line.slice(sp + 1);
    const st = rest.slice(0, rest.indexOf(' ') < 0 ? rest.length : rest.indexOf(' '));
    p.resolve({ tag, status: st as Tagged['status'], text: rest, untagged: p.untagged, ms: now - p.t0 });
  }

  nextTag(): string {
    return `b${++this.tagN}`;
  }

  /** Sends `tag command` (the command may carry LITERAL+ literals inline as a Buffer). */
  command(cmd: string | Buffer, opts: { tag?: string; allowNo?: boolean } = {}): Promise<Tagged> {
    if (this.closedErr) return Promise.reject(this.closedErr);
    const tag = opts.tag ?? this.nextTag();
    const t0 = performance.now();
    const p = new Promise<Tagged>((resolve, reject) => {
      this.pending.push({ tag, t0, untagged: 0, resolve, reject });
    });
    if (typeof cmd === 'string') this.sock.write(`${tag} ${cmd}\r\n`);
    else {
      this.sock.write(`${tag} `);
      this.sock.write(cmd);
    }
    return p.then((t) => {
      if (t.status !== 'OK' && !opts.allowNo) throw new Error(`${typeof cmd === 'string' ? cmd.slice(0, 60) : 'command'} failed: ${t.text}`);
      return t;
    });
  }

  /** Resolves at the next continuation request ("+ ..."). */
  waitContinuation(): Promise<void> {
    return new Promise((resolve) => this.continuation.push(resolve));
  }

  /** Writes raw bytes (DONE after IDLE, literal data). */
  write(data: string | Buffer): boolean {
    return this.sock.write(data);
  }

  /** Resolves when the socket's write buffer has drained. */
  drain(): Promise<void> {
    if (!this.sock.writableNeedDrain) return Promise.resolve();
    return new Promise((r) => this.sock.once('drain', r));
  }

  async login(user: string, pass: string): Promise<Tagged> {
    return this.command(`LOGIN ${quote(user)} ${quote(pass)}`);
  }

  /** Starts IDLE; resolves when the server accepted it. `done` settles after `write('DONE\r\n')`. */
  async idle(): Promise<{ done: Promise<Tagged> }> {
    const cont = this.waitContinuation();
    const done = this.command('IDLE');
    await Promise.race([cont, done]);
    return { done };
  }

  async logout(): Promise<void> {
    try {
      await this.command('LOGOUT', { allowNo: true });
    } catch {
      // closing anyway
    }
    this.sock.destroy();
  }

  destroy(): void {
    this.sock.destroy();
  }
}

export function quote(s: string): string {
  return `"${s.replace(/[\\"]/g, (c) => '\\' + c)}"`;
}

/** Runs `fn` with a deadline; rejects with a clear message when it passes. */
export async function withTimeout<T>(what: string, ms: number, fn: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      fn(),
      new Promise<T>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: timed out after ${(ms / 1000).toFixed(0)} s`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
