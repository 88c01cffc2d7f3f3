// The receiving half of the byte-level test clients (IMAP and LMTP): bytes
// accumulate in `buf`; a client parses what it needs from the front and,
// when that has not arrived yet, waits for more, the close, or its deadline.
import type net from 'node:net';

export class SocketReader {
  buf: Buffer = Buffer.alloc(0);
  closed = false;
  private waiters: (() => void)[] = [];

  constructor(socket: net.Socket) {
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

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Removes the first `n` bytes and returns them. */
  take(n: number): Buffer {
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  /** Waits up to `ms` for more bytes or the close. */
  wait(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      this.waiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /** Waits for more bytes; throws once the socket has closed or `deadline` (epoch ms) has passed, showing what is pending. */
  async more(deadline: number): Promise<void> {
    const pending = () => JSON.stringify(this.buf.subarray(0, 300).toString('latin1'));
    if (this.closed) throw new Error(`connection closed; pending ${pending()}`);
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`timeout; pending ${pending()}`);
    await this.wait(left);
  }
}
