// COMPRESS=DEFLATE (RFC 4978): a Duplex between the connection loop and its
// transport (the TCP socket, or the TLS socket after STARTTLS: RFC 4978 §3,
// data is compressed before it is encrypted). Writes are deflated and
// flushed with Z_SYNC_FLUSH at every write, i.e. at every response boundary
// the connection produces (the connection coalesces a command's output into
// few writes), so an IDLE push leaves at once (RFC 4978 §4: "the server
// SHOULD flush ... at the end of each response"). Reads are inflated with
// limits: inflated bytes per compressed input byte, and bounded buffers
// (backpressure pauses the transport while the decoder is full).
import { Duplex } from 'node:stream';
import zlib from 'node:zlib';

/** Our compressor's window (RFC 4978 §4: -8..-15 for raw deflate); 8 KiB keeps per-connection memory small. */
export const DEFLATE_WINDOW_BITS = 13;
/** zlib memLevel of our compressor: with DEFLATE_WINDOW_BITS, about 64 KiB per connection. */
export const DEFLATE_MEM_LEVEL = 6;
/** Compression level: responses compress well even at low levels (RFC 4978 §4); CPU is shared by all users. */
export const DEFLATE_LEVEL = 3;
/** The client may use any window up to 32 KiB (RFC 1951), so our decompressor accepts the largest. */
export const INFLATE_WINDOW_BITS = 15;
/** Size of each inflated (and deflated) chunk zlib hands over. */
export const ZLIB_CHUNK_BYTES = 16 * 1024;
/** Inflated bytes buffered inside this stream before the transport is paused. */
export const INFLATE_READ_HIGH_WATER = 64 * 1024;
/**
 * Decompression bomb guard: over the connection's life, inflated bytes may
 * not exceed this many times the compressed bytes received, plus
 * INFLATE_RATIO_SLACK_BYTES. Commands and mail compress 2-20x; a stream of
 * zeros compresses about 1000x.
 */
export const INFLATE_MAX_RATIO = 100;
/** Inflated bytes allowed beyond INFLATE_MAX_RATIO (a very repetitive message body now and then). */
export const INFLATE_RATIO_SLACK_BYTES = 4 * 1024 * 1024;

export type CompressViolation = 'decompression limit' | 'invalid compressed data';

export class DeflateStream extends Duplex {
  private readonly deflate: zlib.DeflateRaw;
  private readonly inflate: zlib.InflateRaw;
  private bytesIn = 0;
  private bytesInflated = 0;
  private waitingTransport = false;
  private failed = false;

  constructor(
    private readonly transport: Duplex,
    /** Called once when the client's compressed stream breaks a limit or is corrupt; the caller says BYE and closes. */
    private readonly onViolation: (why: CompressViolation) => void,
  ) {
    super({ readableHighWaterMark: INFLATE_READ_HIGH_WATER, decodeStrings: true });
    this.deflate = zlib.createDeflateRaw({ windowBits: DEFLATE_WINDOW_BITS, memLevel: DEFLATE_MEM_LEVEL, level: DEFLATE_LEVEL, chunkSize: ZLIB_CHUNK_BYTES });
    this.inflate = zlib.createInflateRaw({ windowBits: INFLATE_WINDOW_BITS, chunkSize: ZLIB_CHUNK_BYTES });

    // Output: deflated bytes go to the transport; when it is full, stop taking them (zlib then holds our write callbacks).
    this.deflate.on('data', (d: Buffer) => {
      if (!this.transport.write(d) && !this.waitingTransport) {
        this.waitingTransport = true;
        this.deflate.pause();
        this.transport.once('drain', () => {
          this.waitingTransport = false;
          this.deflate.resume();
        });
      }
    });
    this.deflate.on('end', () => this.transport.end());
    this.deflate.on('error', (e) => this.destroy(e));

    // Input: compressed bytes from the transport, inflated with the ratio limit.
    this.transport.on('data', (c: Buffer) => {
      if (this.failed) return;
      this.bytesIn += c.length;
      if (!this.inflate.write(c)) this.transport.pause();
    });
    this.inflate.on('drain', () => { if (!this.failed) this.transport.resume(); });
    this.inflate.on('data', (d: Buffer) => {
      if (this.failed) return;
      this.bytesInflated += d.length;
      if (this.bytesInflated > INFLATE_MAX_RATIO * this.bytesIn + INFLATE_RATIO_SLACK_BYTES) {
        this.fail('decompression limit');
        return;
      }
      if (!this.push(d)) this.inflate.pause();
    });
    this.inflate.on('error', () => this.fail('invalid compressed data'));
    // End of input once zlib has inflated everything received (it works asynchronously).
    this.transport.on('end', () => this.inflate.end());
    this.inflate.on('end', () => this.push(null));
    this.transport.on('close', () => this.destroy());
    this.transport.on('error', (e) => this.destroy(e));
    this.transport.resume();
  }

  /** Compressed bytes received and the bytes they inflated to (for logs and tests). */
  get inflateCounts(): { compressed: number; inflated: number } {
    return { compressed: this.bytesIn, inflated: this.bytesInflated };
  }

  /** Output already accepted but not yet handed to the kernel: inside the compressor and the transport (for the output cap). */
  get queuedBytes(): number {
    return this.deflate.writableLength + this.deflate.readableLength + this.transport.writableLength;
  }

  private fail(why: CompressViolation): void {
    if (this.failed) return;
    this.failed = true;
    this.transport.pause();
    this.inflate.pause();
    this.onViolation(why);
  }

  override _read(): void {
    if (!this.failed) this.inflate.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.deflate.write(chunk);
    // A response boundary: everything written so far reaches the client now (RFC 4978 §4).
    this.deflate.flush(zlib.constants.Z_SYNC_FLUSH, () => cb());
  }

  override _writev(chunks: { chunk: Buffer }[], cb: (e?: Error | null) => void): void {
    for (const c of chunks) this.deflate.write(c.chunk);
    this.deflate.flush(zlib.constants.Z_SYNC_FLUSH, () => cb());
  }

  override _final(cb: (e?: Error | null) => void): void {
    // Ends the deflate stream; its 'end' ends the transport.
    this.deflate.end(() => cb());
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    this.deflate.destroy();
    this.inflate.destroy();
    this.transport.destroy();
    cb(err);
  }
}
