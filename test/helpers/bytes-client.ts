// A byte-exact IMAP client for tests that compare server answers with
// recorded bytes or carry 8-bit and binary data: each response is framed by
// its lines and the literals ({n}, literal8 ~{n}) they announce, by length,
// never by looking for CRLF inside a literal; nothing is decoded. Responses
// come as Buffers (commandBytes, line) or as latin1 strings, one character
// per byte (command, response).
import net from 'node:net';
import { SocketReader } from './socket-reader.js';

export interface ByteReply {
  /** Untagged responses with literals inline, CRLF at the end removed. */
  untagged: string[];
  /** The tagged line without tag (e.g. "OK FETCH completed"). */
  status: string;
}

export interface RawByteReply {
  /** Each untagged response with its literals inline, CRLF removed at the end. */
  untagged: Buffer[];
  /** The whole tagged line, tag included. */
  tagged: string;
}

export class ByteClient {
  private n = 0;

  private constructor(
    readonly socket: net.Socket,
    private readonly reader: SocketReader,
  ) {}

  static async connect(port: number, login?: [string, string]): Promise<ByteClient> {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect({ port, host: '127.0.0.1' }, () => resolve(s));
      s.once('error', reject);
    });
    const c = new ByteClient(socket, new SocketReader(socket));
    await c.line();
    if (login) {
      const r = await c.command(`LOGIN ${login[0]} ${login[1]}`);
      if (!r.status.startsWith('OK')) throw new Error(`login: ${r.status}`);
    }
    return c;
  }

  /** One response: a line and the literals it announces, without the final CRLF. */
  async line(timeoutMs = 30_000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    const r = this.reader;
    // The current line segment starts at `seg` (0, or just after a literal); the CRLF search resumes at `scan`.
    let seg = 0;
    let scan = 0;
    for (;;) {
      for (;;) {
        const nl = r.buf.indexOf('\r\n', scan, 'latin1');
        if (nl < 0) {
          scan = Math.max(seg, r.buf.length - 1);
          break;
        }
        const m = /~?\{(\d+)\}$/.exec(r.buf.subarray(Math.max(seg, nl - 24), nl).toString('latin1'));
        if (!m) return r.take(nl + 2).subarray(0, nl);
        seg = scan = nl + 2 + Number(m[1]);
        if (r.buf.length < seg) break;
      }
      await r.more(deadline);
    }
  }

  /** One response as latin1 text. */
  async response(timeoutMs = 15_000): Promise<string> {
    return (await this.line(timeoutMs)).toString('latin1');
  }

  /** Sends `tag command CRLF` (command as bytes or UTF-8 text) and collects the answer as bytes. */
  async commandBytes(cmd: string | Buffer, tag = `b${++this.n}`): Promise<RawByteReply> {
    this.socket.write(Buffer.concat([Buffer.from(`${tag} `), Buffer.isBuffer(cmd) ? cmd : Buffer.from(cmd, 'utf8'), Buffer.from('\r\n')]));
    const untagged: Buffer[] = [];
    for (;;) {
      const l = await this.line();
      if (l.subarray(0, tag.length + 1).toString('latin1') === `${tag} `) return { untagged, tagged: l.toString('latin1') };
      untagged.push(l);
    }
  }

  /** The same, as latin1 text, with the tagged status (tag removed). */
  async command(cmd: string | Buffer): Promise<ByteReply> {
    const r = await this.commandBytes(cmd);
    return { untagged: r.untagged.map((u) => u.toString('latin1')), status: r.tagged.slice(r.tagged.indexOf(' ') + 1) };
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

/** The bytes of the first literal in `line` (after `{n}\r\n` or `~{n}\r\n`). */
export function literalOf(line: Buffer): Buffer {
  const head = line.subarray(0, 300).toString('latin1');
  const m = /~?\{(\d+)\}\r\n/.exec(head);
  if (!m) throw new Error(`no literal in ${head}`);
  const start = m.index + m[0].length;
  return line.subarray(start, start + Number(m[1]));
}
