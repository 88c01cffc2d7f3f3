// A byte-exact companion to RawClient (test/helpers/imap.ts): responses are
// kept as Buffers, so 8-bit and binary message data can be compared exactly,
// and literals of any size are framed by their announced length, never by
// searching for CRLF inside them.
import net from 'node:net';

export interface ByteReply {
  /** Each untagged response with its literals inline, CRLF removed at the end. */
  untagged: Buffer[];
  tagged: string;
}

export class ByteClient {
  private buf = Buffer.alloc(0);
  private waiter: (() => void) | null = null;
  private closed = false;
  private seq = 0;

  private constructor(readonly socket: net.Socket) {
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
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  static async connect(port: number, login: [string, string]): Promise<ByteClient> {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect({ port, host: '127.0.0.1' }, () => resolve(s));
      s.once('error', reject);
    });
    const c = new ByteClient(socket);
    await c.line();
    const r = await c.command(`LOGIN ${login[0]} ${login[1]}`);
    if (!/ OK/.test(r.tagged)) throw new Error(r.tagged);
    return c;
  }

  /** One response line with literals inline (by length). */
  async line(timeoutMs = 30_000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    let scanFrom = 0;
    let pos = 0;
    for (;;) {
      for (;;) {
        const nl = this.buf.indexOf('\r\n', Math.max(pos, scanFrom), 'latin1');
        if (nl < 0) {
          scanFrom = Math.max(pos, this.buf.length - 1);
          break;
        }
        const m = /~?\{(\d+)\}$/.exec(this.buf.subarray(Math.max(pos, nl - 24), nl).toString('latin1'));
        if (!m) {
          const out = this.buf.subarray(0, nl);
          this.buf = this.buf.subarray(nl + 2);
          return out;
        }
        const end = nl + 2 + Number(m[1]);
        if (this.buf.length < end) {
          scanFrom = end;
          pos = end;
          break;
        }
        pos = end;
        scanFrom = end;
      }
      if (this.closed) throw new Error('connection closed');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout; pending ${JSON.stringify(this.buf.subarray(0, 300).toString('latin1'))}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  async command(cmd: string | Buffer, tag = `b${++this.seq}`): Promise<ByteReply> {
    this.socket.write(Buffer.concat([Buffer.from(`${tag} `), Buffer.isBuffer(cmd) ? cmd : Buffer.from(cmd), Buffer.from('\r\n')]));
    const untagged: Buffer[] = [];
    for (;;) {
      const l = await this.line();
      if (l.subarray(0, tag.length + 1).toString('latin1') === `${tag} `) return { untagged, tagged: l.toString('latin1') };
      untagged.push(l);
    }
  }

  close() {
    this.socket.destroy();
  }
}

/** The bytes of the first literal in `line` (after `{n}\r\n` or `~{n}\r\n`). */
export function literalOf(line: Buffer): Buffer {
  const head = line.subarray(0, 300).toString('latin1');
  const m = /~?\{(\d+)\}\r\n/.exec(head);
  if (!m) throw new Error(`no literal in ${head}`);
  const start = m.index + m[0].length;
  return line.subarray(start, start + Number(m[1]));
}
