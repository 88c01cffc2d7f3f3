// An LMTP listener on the in-process test server's store, and a tiny LMTP
// client that sends exact bytes and reads replies (multi-line aware).
import net from 'node:net';
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
  private buf = '';
  private waiters: (() => void)[] = [];
  closed = false;

  private constructor(readonly socket: net.Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      this.buf += d;
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

  static async connect(target: number | string): Promise<LmtpClient> {
    const s = await new Promise<net.Socket>((resolve, reject) => {
      const sock = typeof target === 'number' ? net.connect(target, '127.0.0.1') : net.connect(target);
      sock.once('connect', () => resolve(sock));
      sock.once('error', reject);
    });
    return new LmtpClient(s);
  }

  /** One complete reply (all lines of a multi-line reply), e.g. ["250-a", "250 b"]. */
  async reply(timeoutMs = 10_000): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const lines: string[] = [];
      let pos = 0;
      for (;;) {
        const nl = this.buf.indexOf('\r\n', pos);
        if (nl < 0) break;
        const line = this.buf.slice(pos, nl);
        lines.push(line);
        pos = nl + 2;
        if (/^\d{3} /.test(line) || !/^\d{3}-/.test(line)) {
          this.buf = this.buf.slice(pos);
          return lines;
        }
      }
      if (this.closed) throw new Error(`closed; pending ${JSON.stringify(this.buf)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout; pending ${JSON.stringify(this.buf)}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
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
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('not closed');
      await new Promise<void>((r) => {
        const t = setTimeout(r, 50);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
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
