// An LMTP listener on the in-process test server's store, and a tiny LMTP
// client that sends exact bytes and reads replies (multi-line aware).
import net from 'node:net';
import { SocketReader } from '../helpers/socket-reader.js';
import { startLmtp, type RunningLmtp } from '../../src/delivery/server.js';
import type { LmtpOptions } from '../../src/delivery/options.js';
import type { MailStore } from '../../src/store/types.js';
import type { Logger } from '../../src/server/options.js';

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };

export function lmtpOptions(tweak?: (o: LmtpOptions) => void): LmtpOptions {
  const o: LmtpOptions = {
    tcp: [{ host: '127.0.0.1', port: 0 }],
    socket: null,
    hostname: 'quire.test',
    limits: { lineLength: 4096, maxRecipients: 1000, maxMessageSize: 1 << 20, maxConnections: 100, maxBadCommands: 20 },
    timeoutMs: 60_000,
    overQuota: 'temporary',
    subaddress: 'folder',
    recipientDelimiter: '+',
    log: quiet,
  };
  tweak?.(o);
  return o;
}

export async function startTestLmtp(store: MailStore, tweak?: (o: LmtpOptions) => void): Promise<{ lmtp: RunningLmtp; port: number }> {
  const lmtp = await startLmtp(store, lmtpOptions(tweak));
  return { lmtp, port: lmtp.addresses.tcp[0]?.port ?? 0 };
}

export class LmtpClient {
  private constructor(
    readonly socket: net.Socket,
    private readonly reader: SocketReader,
  ) {}

  get closed(): boolean {
    return this.reader.closed;
  }

  static async connect(target: number | string): Promise<LmtpClient> {
    const s = await new Promise<net.Socket>((resolve, reject) => {
      const sock = typeof target === 'number' ? net.connect(target, '127.0.0.1') : net.connect(target);
      sock.once('connect', () => resolve(sock));
      sock.once('error', reject);
    });
    return new LmtpClient(s, new SocketReader(s));
  }

  /** One complete reply (all lines of a multi-line reply), e.g. ["250-a", "250 b"]. */
  async reply(timeoutMs = 10_000): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    const r = this.reader;
    for (;;) {
      const text = r.buf.toString('latin1');
      const lines: string[] = [];
      let pos = 0;
      for (;;) {
        const nl = text.indexOf('\r\n', pos);
        if (nl < 0) break;
        const line = text.slice(pos, nl);
        lines.push(line);
        pos = nl + 2;
        if (/^\d{3} /.test(line) || !/^\d{3}-/.test(line)) {
          r.take(pos);
          return lines;
        }
      }
      await r.more(deadline);
    }
  }

  /** The last line of the next reply. */
  async line(): Promise<string> {
    const r = await this.reply();
    return r[r.length - 1]!;
  }

  send(data: string | Buffer) {
    this.socket.write(data);
  }

  async cmd(line: string): Promise<string> {
    this.send(`${line}\r\n`);
    return this.line();
  }

  async waitClosed(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.reader.closed) {
      if (Date.now() > deadline) throw new Error('not closed');
      await this.reader.wait(50);
    }
  }

  close() {
    this.socket.destroy();
  }
}

/** Dot-stuffs a message for DATA (RFC 5321 §4.5.2) and appends the terminator. */
export function dataOf(message: string): string {
  return message.replace(/(^|\r\n)\./g, '$1..') + (message.endsWith('\r\n') ? '' : '\r\n') + '.\r\n';
}
