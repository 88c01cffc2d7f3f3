// A deliberately dumb IMAP client for transcript-style tests: it sends exactly
// the bytes a test gives it and hands back the raw responses, so tests can
// assert on the wire format itself. Literals in responses are kept inline.
import net from 'node:net';
import tls from 'node:tls';
import zlib from 'node:zlib';

export interface Reply {
  /** Untagged and continuation lines received before the tagged line (literals inline). */
  untagged: string[];
  tagged: string;
  /** Everything received for this command as one string. */
  raw: string;
}

export class RawClient {
  private buf = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  private seq = 0;
  closed = false;
  greeting = '';

  private constructor(public socket: net.Socket) {
    this.attach(socket);
  }

  private attach(socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.notify();
    });
    socket.on('close', () => {
      this.closed = true;
      this.notify();
    });
    socket.on('error', () => {});
  }

  private notify() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** `localAddress` picks the source address (any of 127.0.0.0/8 works on Linux loopback), for per-address caps. */
  static async connect(port: number, opts: { tls?: boolean; login?: [string, string]; localAddress?: string } = {}): Promise<RawClient> {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const local = opts.localAddress ? { localAddress: opts.localAddress } : {};
      const s = opts.tls
        ? tls.connect({ port, host: '127.0.0.1', servername: 'localhost', rejectUnauthorized: false, ...local }, () => resolve(s))
        : net.connect({ port, host: '127.0.0.1', ...local }, () => resolve(s));
      s.once('error', reject);
    });
    const c = new RawClient(socket);
    c.greeting = await c.readLine();
    if (opts.login) {
      const r = await c.command(`LOGIN ${opts.login[0]} ${opts.login[1]}`);
      if (!/^\S+ OK/.test(r.tagged)) throw new Error(`login failed: ${r.tagged}`);
    }
    return c;
  }

  /** Wait until the buffer satisfies `take`, which returns bytes consumed or -1. */
  private async waitFor<T>(take: () => [number, T] | null, timeoutMs = 10_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = take();
      if (r) {
        this.buf = this.buf.subarray(r[0]);
        return r[1];
      }
      if (this.closed) throw new Error(`connection closed; pending: ${this.buf.toString('latin1').slice(0, 500)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout; pending: ${JSON.stringify(this.buf.toString('latin1').slice(0, 500))}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** One response line with any literals inline (CRLF removed at the end only). */
  readLine(timeoutMs?: number): Promise<string> {
    return this.waitFor(() => {
      let pos = 0;
      for (;;) {
        const nl = this.buf.indexOf('\r\n', pos, 'latin1');
        if (nl < 0) return null;
        const m = /\{(\d+)\}$/.exec(this.buf.subarray(pos, nl).toString('latin1'));
        if (!m) return [nl + 2, this.buf.subarray(0, nl).toString('utf8')];
        const end = nl + 2 + Number(m[1]);
        if (this.buf.length < end) return null;
        pos = end;
      }
    }, timeoutMs);
  }

  /** Untagged lines available within `ms` (for IDLE assertions). */
  async readUntil(pred: (line: string) => boolean, timeoutMs = 5000): Promise<string[]> {
    const lines: string[] = [];
    for (;;) {
      const l = await this.readLine(timeoutMs);
      lines.push(l);
      if (pred(l)) return lines;
    }
  }

  /** After COMPRESS DEFLATE (RFC 4978): our commands are deflated, responses inflated. */
  private deflater: zlib.DeflateRaw | null = null;

  write(data: string | Buffer) {
    if (this.deflater) {
      this.deflater.write(data);
      this.deflater.flush(zlib.constants.Z_SYNC_FLUSH);
    } else this.socket.write(data);
  }

  /** COMPRESS DEFLATE; on OK, both directions go through raw deflate from the byte after the OK's CRLF. */
  async startCompress(): Promise<Reply> {
    const r = await this.command('COMPRESS DEFLATE');
    if (!/^\S+ OK/.test(r.tagged)) return r;
    const raw = this.socket;
    raw.removeAllListeners('data');
    const inflate = zlib.createInflateRaw();
    const rest = this.buf;
    this.buf = Buffer.alloc(0);
    inflate.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.notify();
    });
    // Closed only once everything received has been inflated (zlib works asynchronously).
    raw.removeAllListeners('close');
    const closed = () => {
      this.closed = true;
      this.notify();
    };
    inflate.on('end', closed);
    inflate.on('error', closed);
    raw.on('close', () => inflate.end());
    raw.on('data', (d: Buffer) => inflate.write(d));
    if (rest.length) inflate.write(rest);
    const deflate = zlib.createDeflateRaw();
    deflate.on('data', (d: Buffer) => raw.write(d));
    this.deflater = deflate;
    return r;
  }

  nextTag(): string {
    return `t${++this.seq}`;
  }

  /** Send `tag command\r\n` (synchronizing literals must be handled by the caller with `send`). */
  async command(cmd: string | Buffer, tag = this.nextTag()): Promise<Reply> {
    this.write(Buffer.concat([Buffer.from(`${tag} `), Buffer.isBuffer(cmd) ? cmd : Buffer.from(cmd, 'utf8'), Buffer.from('\r\n')]));
    return this.collect(tag);
  }

  async collect(tag: string): Promise<Reply> {
    const untagged: string[] = [];
    for (;;) {
      const line = await this.readLine();
      if (line.startsWith(`${tag} `)) return { untagged, tagged: line, raw: [...untagged, line].join('\r\n') };
      untagged.push(line);
    }
  }

  /** APPEND with a LITERAL+ literal. */
  append(mailbox: string, message: string | Buffer, extra = ''): Promise<Reply> {
    const data = Buffer.isBuffer(message) ? message : Buffer.from(message, 'utf8');
    return this.command(Buffer.concat([Buffer.from(`APPEND ${mailbox} ${extra}${extra ? ' ' : ''}{${data.length}+}\r\n`), data]));
  }

  async startTls(): Promise<void> {
    const r = await this.command('STARTTLS');
    if (!/ OK/.test(r.tagged)) throw new Error(r.tagged);
    const raw = this.socket;
    raw.removeAllListeners('data');
    raw.removeAllListeners('close');
    const s = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const t = tls.connect({ socket: raw, servername: 'localhost', rejectUnauthorized: false }, () => resolve(t));
      t.once('error', reject);
    });
    this.socket = s;
    this.buf = Buffer.alloc(0);
    this.attach(s);
  }

  async close() {
    this.socket.destroy();
  }
}

/** Sample RFC 5322 message. */
export function message(n: number, opts: { subject?: string; from?: string; body?: string } = {}): string {
  return [
    `From: ${opts.from ?? `Sender ${n} <sender${n}@example.com>`}`,
    'To: Alice <alice@example.com>',
    `Subject: ${opts.subject ?? `Message ${n}`}`,
    `Date: Mon, 7 Feb 1994 21:52:25 -0800`,
    `Message-ID: <m${n}@example.com>`,
    '',
    opts.body ?? `Body of message ${n}.`,
    '',
  ].join('\r\n');
}
