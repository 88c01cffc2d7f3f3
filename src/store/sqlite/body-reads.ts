// Whole-body and range reads for POP3 (issue 17) and IMAP FETCH's reads of up
// to THREAD_READ_MAX bytes (issue 11): batched to the body-reading thread
// (body-reader.ts). Reads asked for in the same turn of the event loop
// (a POP3 session's read-ahead of its pipelined RETRs) go as one message, and
// come back as one; without the thread (it failed to start, or died) each
// body is read here with raw descriptors and callbacks.
//
// Lent reads (lend()) land in slabs of shared memory that are reused once
// the caller releases them (after the socket handed the bytes to the kernel):
// a download of 21 MB then allocates no fresh memory per message. Fresh
// ArrayBuffers per body (as read() gives) count as external memory, and
// 21 MB of them per download made V8 run a full mark-compact of the heap
// every few hundred messages (issue 17 profile: GC was over half the CPU of
// a download). When every slab is lent out, a read gets a buffer of its own.
import { close as closeCb, open as openCb, read as readCb } from 'node:fs';
import { Worker } from 'node:worker_threads';
import type { BodyReadReply, BodyReadRequest } from './body-reader.js';
import type { LeasedBytes } from '../types.js';

/** Bodies in one request to the thread at most (each is at most the caller's whole-read limit). */
export const BODY_READ_BATCH = 32;
/** Size of one slab of lent memory; a lent read is at most this long (longer ones get a buffer of their own). */
export const BODY_SLAB_BYTES = 1024 * 1024;
/** Slabs per process at most (created on demand, then kept and reused): the memory lent reads may hold. */
export const BODY_SLABS = 8;

interface Slab {
  id: number;
  sab: SharedArrayBuffer;
  /** Lent regions not yet released. */
  refs: number;
  /** Bytes handed out from its start (packing; reset when nothing is lent). */
  used: number;
  /** The thread has it. */
  shared: boolean;
}

type Waiter = {
  file: string;
  start: number;
  size: number;
  lend: boolean;
  slab: Slab | null;
  offset: number;
  resolve: (r: Buffer | LeasedBytes | string) => void;
};

/** The thread's module beside this one (TypeScript when run from source: tests register tsx's loader in the thread first). */
function threadEntry(): URL {
  const module = new URL(import.meta.url.endsWith('.ts') ? './body-reader.ts' : './body-reader.js', import.meta.url);
  if (!module.pathname.endsWith('.ts')) return module;
  const api = import.meta.resolve('tsx/esm/api');
  return new URL(`data:text/javascript,${encodeURIComponent(`const { register } = await import(${JSON.stringify(api)}); register(); await import(${JSON.stringify(module.href)});`)}`);
}

const NO_RELEASE = () => {};

export class BodyReader {
  private worker: Worker | null = null;
  private failed = false;
  private seq = 0;
  private readonly inflight = new Map<number, Waiter[]>();
  private batch: Waiter[] = [];
  private scheduled = false;
  private readonly slabs: Slab[] = [];
  private readonly free: Slab[] = [];
  /** The slab reads are packed into. */
  private open: Slab | null = null;

  /** `size` bytes of `file` from `start` in a buffer of their own, or an error code: ENOENT (gone), SHORT, or another errno code. */
  read(file: string, size: number, start = 0): Promise<Buffer | string> {
    return this.queue(file, start, size, false) as Promise<Buffer | string>;
  }

  /** `size` bytes of `file` from `start`, in lent memory: call release() once they are no longer referenced (written out). */
  lend(file: string, start: number, size: number): Promise<LeasedBytes | string> {
    if (size <= 0) return Promise.resolve({ bytes: Buffer.alloc(0), release: NO_RELEASE });
    return this.queue(file, start, size, true) as Promise<LeasedBytes | string>;
  }

  private queue(file: string, start: number, size: number, lend: boolean): Promise<Buffer | LeasedBytes | string> {
    return new Promise((resolve) => {
      this.batch.push({ file, start, size, lend, slab: null, offset: 0, resolve });
      if (!this.scheduled) {
        this.scheduled = true;
        queueMicrotask(() => this.flush());
      }
    });
  }

  /** A region of `size` bytes in a slab, or null when every slab is lent out. */
  private place(x: Waiter): void {
    if (x.size > BODY_SLAB_BYTES) return;
    let s = this.open;
    if (s && s.refs === 0) s.used = 0;
    if (!s || s.used + x.size > BODY_SLAB_BYTES) {
      s = this.free.pop() ?? null;
      if (!s && this.slabs.length < BODY_SLABS) {
        s = { id: this.slabs.length, sab: new SharedArrayBuffer(BODY_SLAB_BYTES), refs: 0, used: 0, shared: false };
        this.slabs.push(s);
      }
      if (!s) return;
      const old = this.open;
      if (old && old.refs === 0) this.free.push(old);
      this.open = s;
      s.used = 0;
    }
    x.slab = s;
    x.offset = s.used;
    s.used += x.size;
    s.refs++;
  }

  private unlend(s: Slab): void {
    if (--s.refs > 0) return;
    if (s === this.open) s.used = 0;
    else this.free.push(s);
  }

  private leased(x: Waiter): LeasedBytes {
    const s = x.slab!;
    let released = false;
    return {
      bytes: Buffer.from(s.sab, x.offset, x.size),
      release: () => {
        if (released) return;
        released = true;
        this.unlend(s);
      },
    };
  }

  private thread(): Worker | null {
    if (this.worker || this.failed) return this.worker;
    try {
      const w = new Worker(threadEntry());
      w.unref();
      w.on('message', (m: BodyReadReply) => this.answer(m));
      const down = () => {
        if (this.worker !== w) return;
        this.worker = null;
        this.failed = true;
        // What it had in hand is read here instead.
        const lost = [...this.inflight.values()].flat();
        this.inflight.clear();
        for (const x of lost) this.readHere(x);
      };
      w.on('error', down);
      w.on('exit', down);
      this.worker = w;
    } catch {
      this.failed = true;
    }
    return this.worker;
  }

  private flush(): void {
    this.scheduled = false;
    const all = this.batch;
    this.batch = [];
    for (const x of all) if (x.lend) this.place(x);
    const w = this.thread();
    if (!w) {
      for (const x of all) this.readHere(x);
      return;
    }
    for (let i = 0; i < all.length; i += BODY_READ_BATCH) {
      const part = all.slice(i, i + BODY_READ_BATCH);
      const id = ++this.seq;
      this.inflight.set(id, part);
      const newSlabs: [number, SharedArrayBuffer][] = [];
      for (const x of part) {
        if (x.slab && !x.slab.shared) {
          x.slab.shared = true;
          newSlabs.push([x.slab.id, x.slab.sab]);
        }
      }
      const req: BodyReadRequest = {
        id,
        files: part.map((x) => x.file),
        starts: part.map((x) => x.start),
        sizes: part.map((x) => x.size),
        slabs: part.map((x) => x.slab?.id ?? -1),
        offsets: part.map((x) => x.offset),
        newSlabs,
      };
      w.postMessage(req);
    }
    // Replies are awaited: the process may not exit with reads in flight.
    w.ref();
  }

  private answer(m: BodyReadReply): void {
    const part = this.inflight.get(m.id);
    this.inflight.delete(m.id);
    if (this.inflight.size === 0) this.worker?.unref();
    if (!part) return;
    part.forEach((x, i) => {
      const err = m.errors[i];
      if (err) return this.settle(x, err);
      const b = m.bodies[i];
      if (x.slab) return x.resolve(this.leased(x));
      this.settle(x, b ? Buffer.from(b) : 'EIO');
    });
  }

  /** Resolves a read with its own buffer or an error (a slab region it held is given back). */
  private settle(x: Waiter, r: Buffer | string): void {
    if (x.slab) {
      const s = x.slab;
      x.slab = null;
      this.unlend(s);
    }
    if (typeof r !== 'string' && x.lend) return x.resolve({ bytes: r, release: NO_RELEASE });
    x.resolve(r);
  }

  /** Without the thread: open, read, close on a raw descriptor (callbacks; no FileHandle). */
  private readHere(x: Waiter): void {
    const target = x.slab ? Buffer.from(x.slab.sab, x.offset, x.size) : Buffer.allocUnsafe(x.size);
    readRange(x.file, x.start, target).then((r) => {
      if (typeof r === 'string') return this.settle(x, r);
      if (x.slab) return x.resolve(this.leased(x));
      this.settle(x, r);
    });
  }

  /** Ends the thread (store close). */
  async close(): Promise<void> {
    const w = this.worker;
    this.worker = null;
    this.failed = true;
    if (w) await w.terminate();
  }
}

/** Fills `buf` from `file` at `start`: the buffer, or an error code. */
function readRange(file: string, start: number, buf: Buffer): Promise<Buffer | string> {
  const size = buf.length;
  return new Promise((resolve) => {
    openCb(file, 'r', (err, fd) => {
      if (err) return resolve(err.code ?? 'EIO');
      const step = (got: number): void => {
        if (got >= size) {
          closeCb(fd, () => {});
          return resolve(buf);
        }
        readCb(fd, buf, got, size - got, start + got, (e, n) => {
          if (e || n === 0) {
            closeCb(fd, () => {});
            return resolve(e ? (e.code ?? 'EIO') : 'SHORT');
          }
          step(got + n);
        });
      };
      step(0);
    });
  });
}
