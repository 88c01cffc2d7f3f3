// A Quire with IMAP and POP3 on one store (real SQLite, real sockets on
// OS-chosen loopback ports), and a byte-exact raw POP3 client.
import net from 'node:net';
import tls from 'node:tls';
import { Authenticator } from '../../src/auth/authenticator.js';
import { loadConfig, toPop3Options } from '../../src/cli/config.js';
import { startPop3, type RunningPop3 } from '../../src/pop3/server.js';
import type { Pop3Options } from '../../src/pop3/options.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import type { Logger } from '../../src/server/options.js';
import { loadOrCreateTls } from '../../src/cli/tls.js';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

let tlsPromise: ReturnType<typeof loadOrCreateTls> | null = null;
/** One self-signed certificate per test process (key generation is slow). */
export function pop3Tls() {
  tlsPromise ??= mkdtemp(path.join(tmpdir(), 'quire-pop3-tls-')).then((dir) => loadOrCreateTls({ dataDir: dir, tls: {} } as never));
  return tlsPromise;
}

export interface Pop3TestServer extends TestServer {
  pop3: RunningPop3;
  pop3Port: number;
  pop3sPort: number;
  pop3Errors: string[];
}

export async function startPop3TestServer(opts: { users?: [string, string][]; tweak?: (o: Pop3Options) => void } = {}): Promise<Pop3TestServer> {
  const base = await startTestServer({ users: opts.users });
  const config = loadConfig({ env: {}, flags: { data: base.dataDir } });
  const errors: string[] = [];
  const log: Logger = { debug() {}, info() {}, warn() {}, error: (m, f) => { errors.push(`${m} ${JSON.stringify(f ?? {})}`); console.error('[pop3 error]', m, f); } };
  const material = await pop3Tls();
  const po = toPop3Options(config, { key: material.key, cert: material.cert }, log)!;
  po.pop3 = [{ host: '127.0.0.1', port: 0 }];
  po.pop3s = [{ host: '127.0.0.1', port: 0 }];
  opts.tweak?.(po);
  const auth = new Authenticator(base.store, { baseDelayMs: 20, maxDelayMs: 100 });
  const pop3 = await startPop3(base.store, auth, po);
  return {
    ...base,
    pop3,
    pop3Port: pop3.addresses.pop3[0]?.port ?? 0,
    pop3sPort: pop3.addresses.pop3s[0]?.port ?? 0,
    pop3Errors: errors,
    async stop() {
      await pop3.close();
      await base.stop();
    },
  };
}

/** A raw POP3 client: single-line and multi-line responses, as bytes. */
export class Pop3Client {
  private buf = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  closed = false;

  private constructor(public socket: net.Socket) {
    this.attach(socket);
  }

  private attach(s: net.Socket): void {
    s.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake();
    });
    s.on('close', () => {
      this.closed = true;
      this.wake();
    });
    s.on('error', () => {});
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  static async connect(port: number, o: { tls?: boolean } = {}): Promise<Pop3Client> {
    const s = o.tls
      ? tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false })
      : net.connect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => {
      s.once(o.tls ? 'secureConnect' : 'connect', () => resolve());
      s.once('error', reject);
    });
    const c = new Pop3Client(s);
    return c;
  }

  private async waitFor(pred: () => number): Promise<number> {
    for (;;) {
      const n = pred();
      if (n >= 0) return n;
      if (this.closed) throw new Error(`connection closed; buffered: ${JSON.stringify(this.buf.toString('latin1'))}`);
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  /** One CRLF-terminated line (without CRLF). */
  async line(): Promise<string> {
    const i = await this.waitFor(() => this.buf.indexOf('\r\n'));
    const l = this.buf.subarray(0, i).toString('latin1');
    this.buf = this.buf.subarray(i + 2);
    return l;
  }

  /** The body of a multi-line response after its status line, up to and including ".\r\n", raw. */
  async multilineRaw(): Promise<Buffer> {
    const end = await this.waitFor(() => {
      if (this.buf.subarray(0, 3).equals(Buffer.from('.\r\n'))) return 0;
      const j = this.buf.indexOf('\r\n.\r\n');
      return j < 0 ? -1 : j + 2;
    });
    const raw = Buffer.from(this.buf.subarray(0, end + 3));
    this.buf = this.buf.subarray(end + 3);
    return raw;
  }

  /** A multi-line body un-stuffed into lines (without the terminator). */
  async multiline(): Promise<string[]> {
    const raw = (await this.multilineRaw()).toString('latin1');
    const lines = raw.split('\r\n');
    lines.splice(-2); // "." and ""
    return lines.map((l) => (l.startsWith('.') ? l.slice(1) : l));
  }

  send(text: string | Buffer): void {
    this.socket.write(text);
  }

  async cmd(line: string): Promise<string> {
    this.send(`${line}\r\n`);
    return this.line();
  }

  /** A command with a multi-line answer: status line and un-stuffed lines (none after -ERR). */
  async cmdMulti(line: string): Promise<{ status: string; lines: string[] }> {
    const status = await this.cmd(line);
    return { status, lines: status.startsWith('+OK') ? await this.multiline() : [] };
  }

  async login(user: string, pass: string): Promise<string> {
    const u = await this.cmd(`USER ${user}`);
    if (!u.startsWith('+OK')) return u;
    return this.cmd(`PASS ${pass}`);
  }

  /** STLS on the plain port: after +OK, the TLS handshake on the same socket. */
  async stls(): Promise<string> {
    const r = await this.cmd('STLS');
    if (!r.startsWith('+OK')) return r;
    this.socket.removeAllListeners('data');
    this.socket.removeAllListeners('close');
    const secure = tls.connect({ socket: this.socket, rejectUnauthorized: false });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', () => resolve());
      secure.once('error', reject);
    });
    this.socket = secure;
    this.attach(secure);
    return r;
  }

  /** Resolves when the server closed the connection. */
  async waitClosed(): Promise<void> {
    await this.waitFor(() => (this.closed ? 0 : -1)).catch(() => 0);
  }

  close(): void {
    this.socket.destroy();
  }
}
