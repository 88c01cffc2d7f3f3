// A byte-exact IMAP client for tests that compare server answers with
// recorded bytes: responses are kept as latin1 strings (one char per byte),
// literals ({n} and literal8 ~{n}) inline, nothing decoded.
import net from 'node:net';

export interface ByteReply {
  /** Untagged responses with literals inline, CRLF at the end removed. */
  untagged: string[];
  /** The tagged line without tag (e.g. "OK FETCH completed"). */
  status: string;
}

export class ByteClient {
  private buf = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  private n = 0;
  private closed = false;

  private constructor(private socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => {});
  }

  private wake() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  static async connect(port: number, login?: [string, string]): Promise<ByteClient> {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect({ port, host: '127.0.0.1' }, () => resolve(s));
      s.once('error', reject);
    });
    const c = new ByteClient(socket);
    await c.response();
    if (login) {
      const r = await c.command(`LOGIN ${login[0]} ${login[1]}`);
      if (!r.status.startsWith('OK')) throw new Error(`login: ${r.status}`);
    }
    return c;
  }

  /** One response (a line and the literals it announces), as latin1, without the final CRLF. */
  async response(timeoutMs = 15_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      let pos = 0;
      for (;;) {
        const nl = this.buf.indexOf('\r\n', pos, 'latin1');
        if (nl < 0) break;
        const m = /~?\{(\d+)\+?\}$/.exec(this.buf.subarray(Math.max(pos, nl - 24), nl).toString('latin1'));
        if (!m) {
          const line = this.buf.subarray(0, nl).toString('latin1');
          this.buf = this.buf.subarray(nl + 2);
          return line;
        }
        const end = nl + 2 + Number(m[1]);
        if (this.buf.length < end) break;
        pos = end;
      }
      if (this.closed) throw new Error('connection closed');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout; pending ${JSON.stringify(this.buf.subarray(0, 300).toString('latin1'))}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Sends `tag command CRLF` (command as bytes or UTF-8 text) and collects the answer. */
  async command(cmd: string | Buffer): Promise<ByteReply> {
    const tag = `b${++this.n}`;
    this.socket.write(Buffer.concat([Buffer.from(`${tag} `), Buffer.isBuffer(cmd) ? cmd : Buffer.from(cmd, 'utf8'), Buffer.from('\r\n')]));
    const untagged: string[] = [];
    for (;;) {
      const r = await this.response();
      if (r.startsWith(`${tag} `)) return { untagged, status: r.slice(tag.length + 1) };
      untagged.push(r);
    }
  }

  /** APPEND with a LITERAL+ literal; returns the tagged status. */
  async append(mailbox: string, data: Buffer): Promise<string> {
    const r = await this.command(Buffer.concat([Buffer.from(`APPEND ${mailbox} {${data.length}+}\r\n`), data]));
    return r.status;
  }

  /**
   * FETCH of one message: the text inside "* seq FETCH (...)" (items as
   * answered), or the tagged status when the command did not succeed.
   */
  async fetch(seq: number, items: string): Promise<string> {
    const r = await this.command(`FETCH ${seq} (${items})`);
    if (!r.status.startsWith('OK')) return r.status;
    const prefix = `* ${seq} FETCH (`;
    const hits = r.untagged.filter((u) => u.startsWith(prefix));
    if (hits.length !== 1 || !hits[0]!.endsWith(')')) throw new Error(`unexpected FETCH answer: ${JSON.stringify(r.untagged).slice(0, 500)}`);
    return hits[0]!.slice(prefix.length, -1);
  }

  close() {
    this.socket.destroy();
  }
}
