// The output side of one IMAP connection: while a command (or a burst of
// pipelined commands) runs, its responses are gathered and handed to the
// socket in one write (one system call) at the tagged reply; big answers
// stream past the gathering with the socket's own backpressure.
//
// Under the mixed load (BENCHMARKS.md, "Where the CPU goes") socket writes
// were the largest single cost of a worker (13% of its busy time), and a
// FETCH left in two writes (the data at its drain, then the tagged line).
import type { Duplex } from 'node:stream';

/**
 * While corked, responses are gathered and leave in one socket write when the
 * command completes; past this many bytes (chars) they are written out at
 * once, so memory stays bounded and big answers stream. Pieces at least this
 * big are written as they are.
 */
export const OUTPUT_COALESCE_BYTES = 64 * 1024;
/** Buffers (message bytes) at least this big are handed to the socket as they are, never copied into the gathered output. */
export const OUTPUT_DIRECT_BUFFER_BYTES = 2 * 1024;

const CRLF = '\r\n';

export class ConnectionOutput {
  private parts: (string | Buffer)[] = [];
  private len = 0;
  private isCorked = false;

  constructor(
    /** The current transport (TCP, TLS, or DEFLATE over either: it changes at STARTTLS / COMPRESS). */
    private readonly socket: () => Duplex,
    /** True once the connection is closed: nothing more is written. */
    private readonly closed: () => boolean,
  ) {}

  get corked(): boolean {
    return this.isCorked;
  }

  /** Chars gathered and not yet handed to the socket. */
  get gathered(): number {
    return this.len;
  }

  write(data: string | Buffer): void {
    if (this.closed()) return;
    if (!this.isCorked) {
      this.socket().write(data);
      return;
    }
    if (data.length >= OUTPUT_COALESCE_BYTES || (typeof data !== 'string' && data.length >= OUTPUT_DIRECT_BUFFER_BYTES)) {
      this.flush();
      this.socket().write(data);
      return;
    }
    this.parts.push(data);
    this.len += data.length;
    if (this.len >= OUTPUT_COALESCE_BYTES) this.flush();
  }

  /** An untagged response: `text` without "* " and CRLF; pieces may hold literal bytes. */
  untagged(text: string | (string | Buffer)[]): void {
    if (typeof text === 'string') this.write(`* ${text}${CRLF}`);
    else if (this.isCorked) {
      // Gathered with the rest of the command's output (no per-response Buffer).
      this.write('* ');
      for (const p of text) this.write(p);
      this.write(CRLF);
    } else this.write(Buffer.concat([Buffer.from('* '), ...text.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : p)), Buffer.from(CRLF)]));
  }

  /** Writes the gathered output as one chunk: one string, or one Buffer when small literal bytes are among it. */
  private flush(): void {
    const parts = this.parts;
    if (parts.length === 0) return;
    this.parts = [];
    this.len = 0;
    if (this.closed()) return;
    const socket = this.socket();
    if (parts.length === 1) {
      socket.write(parts[0]!);
      return;
    }
    let text = true;
    for (const p of parts) if (typeof p !== 'string') text = false;
    if (text) {
      socket.write((parts as string[]).join(''));
      return;
    }
    let bytes = 0;
    for (const p of parts) bytes += typeof p === 'string' ? Buffer.byteLength(p, 'utf8') : p.length;
    const buf = Buffer.allocUnsafe(bytes);
    let off = 0;
    for (const p of parts) off += typeof p === 'string' ? buf.write(p, off, 'utf8') : p.copy(buf, off);
    socket.write(buf);
  }

  /**
   * While a command runs its output is corked: many small untagged responses
   * (a FETCH of 100k flags) leave in few large writes. The tagged reply (when
   * no other command is waiting), a continuation request, IDLE and a socket
   * that needs draining uncork.
   */
  cork(): void {
    if (!this.isCorked && !this.closed()) {
      this.socket().cork();
      this.isCorked = true;
    }
  }

  uncork(): void {
    if (this.isCorked) {
      this.flush();
      this.isCorked = false;
      this.socket().uncork();
    }
  }

  /**
   * Resolves once the socket is below its high-water mark. Gathered output
   * stays gathered while it is (it is bounded by OUTPUT_COALESCE_BYTES):
   * uncorking here put every FETCH's data and its tagged reply in two writes.
   */
  async drain(): Promise<void> {
    if (this.closed() || !this.socket().writableNeedDrain) return;
    const wasCorked = this.isCorked;
    this.uncork();
    await this.waitDrain();
    if (wasCorked) this.cork();
  }

  /** Resolves once the socket has drained (uncorked first: a corked socket never drains). */
  waitDrain(): Promise<void> {
    const socket = this.socket();
    if (this.closed() || !socket.writableNeedDrain) return Promise.resolve();
    this.uncork();
    return new Promise((resolve) => {
      const done = () => {
        socket.off('drain', done);
        socket.off('close', done);
        resolve();
      };
      socket.on('drain', done);
      socket.on('close', done);
    });
  }
}
