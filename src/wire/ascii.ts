// Long responses made of numbers (SORT and THREAD of a 100k-message mailbox:
// RFC 5256 §4 sort-data, thread-data) written as ASCII into one growing
// buffer: no string per number and no join of 100k pieces, which on the
// server's event loop cost more than the store's answer itself. Sans-I/O.

/** ASCII bytes appended to a buffer that doubles as needed. */
export class AsciiBuilder {
  private buf: Buffer;
  private len = 0;

  constructor(initial = 4096) {
    this.buf = Buffer.allocUnsafe(initial);
  }

  get length(): number {
    return this.len;
  }

  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }

  /** One byte (an ASCII character code). */
  byte(c: number): void {
    this.ensure(1);
    this.buf[this.len++] = c;
  }

  /** A non-negative integer below 2^53 in decimal. */
  number(n: number): void {
    this.ensure(16);
    let digits = 1;
    for (let v = n; v >= 10; v = Math.floor(v / 10)) digits++;
    let at = this.len + digits;
    this.len = at;
    do {
      this.buf[--at] = 48 + (n % 10);
      n = Math.floor(n / 10);
    } while (n > 0);
  }

  /** ASCII text (each character's code below 128). */
  text(s: string): void {
    this.ensure(s.length);
    this.len += this.buf.write(s, this.len, 'latin1');
  }

  /** The bytes written (a view of the buffer). */
  bytes(): Buffer {
    return this.buf.subarray(0, this.len);
  }
}
