// Body reads (whole bodies for POP3, issue 17; IMAP FETCH's reads of up to
// THREAD_READ_MAX bytes, issue 11): batched to the body-reading thread
// (body-reader.ts). Reads asked for in the same turn of the event loop (a
// POP3 session's read-ahead of its pipelined RETRs) go as one message, and
// come back as one; without the thread (it failed to start, or died) each
// body is read here with raw descriptors and callbacks.
import { close as closeCb, open as openCb, read as readCb } from 'node:fs';
import { Worker } from 'node:worker_threads';
import type { BodyReadReply, BodyReadRequest } from './body-reader.js';

/** Bodies in one request to the thread at most (each is at most the caller's whole-read limit). */
export const BODY_READ_BATCH = 32;

type Waiter = { file: string; size: number; start: number; resolve: (r: Buffer | string) => void };

/** The thread's module beside this one (TypeScript when run from source: tests register tsx's loader in the thread first). */
function threadEntry(): URL {
  const module = new URL(import.meta.url.endsWith('.ts') ? './body-reader.ts' : './body-reader.js', import.meta.url);
  if (!module.pathname.endsWith('.ts')) return module;
  const api = import.meta.resolve('tsx/esm/api');
  return new URL(`data:text/javascript,${encodeURIComponent(`const { register } = await import(${JSON.stringify(api)}); register(); await import(${JSON.stringify(module.href)});`)}`);
}

export class BodyReader {
  private worker: Worker | null = null;
  private failed = false;
  private seq = 0;
  private readonly inflight = new Map<number, Waiter[]>();
  private batch: Waiter[] = [];
  private scheduled = false;

  /** `size` bytes of `file` from `start`, or an error code: ENOENT (gone), SHORT, or another errno code. */
  read(file: string, size: number, start = 0): Promise<Buffer | string> {
    return new Promise((resolve) => {
      this.batch.push({ file, size, start, resolve });
      if (!this.scheduled) {
        this.scheduled = true;
        queueMicrotask(() => this.flush());
      }
    });
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
        for (const x of lost) void readHere(x.file, x.size, x.start).then(x.resolve);
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
    const w = this.thread();
    if (!w) {
      for (const x of all) void readHere(x.file, x.size, x.start).then(x.resolve);
      return;
    }
    for (let i = 0; i < all.length; i += BODY_READ_BATCH) {
      const part = all.slice(i, i + BODY_READ_BATCH);
      const id = ++this.seq;
      this.inflight.set(id, part);
      const req: BodyReadRequest = { id, files: part.map((x) => x.file), sizes: part.map((x) => x.size) };
      if (part.some((x) => x.start !== 0)) req.starts = part.map((x) => x.start);
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
      const b = m.bodies[i];
      x.resolve(b ? Buffer.from(b) : (m.errors[i] ?? 'EIO'));
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

/** Without the thread: open, one read, close on a raw descriptor (callbacks; no FileHandle). */
function readHere(file: string, size: number, start: number): Promise<Buffer | string> {
  return new Promise((resolve) => {
    openCb(file, 'r', (err, fd) => {
      if (err) return resolve(err.code ?? 'EIO');
      const buf = Buffer.allocUnsafe(size);
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
