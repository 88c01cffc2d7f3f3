// The body-reading thread (body-reads.ts): reads message files with blocking
// calls, a batch per request. A read lands either in a slab of shared memory
// the serving thread lent for it (SharedArrayBuffer, reused: no fresh memory
// per message, so a POP3 download of 21 MB no longer makes V8 collect its
// whole heap every few hundred messages) or, without a slab, in a buffer of
// its own handed back without a copy (transferred ArrayBuffer). Blocking here
// costs the server's event loop nothing, and one message per batch replaces
// three thread-pool round trips (open, read, close) per body (issue 17).
import { closeSync, openSync, readSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';

export interface BodyReadRequest {
  id: number;
  files: string[];
  /** Where each read starts in its file, and how many bytes it takes. */
  starts: number[];
  sizes: number[];
  /** Per read: the slab it lands in (-1: a buffer of its own) and the offset there. */
  slabs: number[];
  offsets: number[];
  /** Slabs this request is the first to use (shared, not copied). */
  newSlabs: [number, SharedArrayBuffer][];
}

/** Per read: its bytes (null when they are in the slab, or on error), or the error code (ENOENT: gone; SHORT: shorter than recorded; else the errno code). */
export interface BodyReadReply {
  id: number;
  bodies: (ArrayBuffer | null)[];
  errors: (string | null)[];
}

const port = parentPort!;
const slabs = new Map<number, Uint8Array>();

function readInto(file: string, start: number, size: number, view: Uint8Array, at: number): void {
  const fd = openSync(file, 'r');
  try {
    let got = 0;
    while (got < size) {
      const n = readSync(fd, view, at + got, size - got, start + got);
      if (n === 0) throw Object.assign(new Error('short'), { code: 'SHORT' });
      got += n;
    }
  } finally {
    closeSync(fd);
  }
}

port.on('message', (m: BodyReadRequest | 'stop') => {
  if (m === 'stop') process.exit(0);
  for (const [id, sab] of m.newSlabs) slabs.set(id, new Uint8Array(sab));
  const reply: BodyReadReply = { id: m.id, bodies: [], errors: [] };
  const transfer: ArrayBuffer[] = [];
  for (let i = 0; i < m.files.length; i++) {
    try {
      const slab = m.slabs[i]! >= 0 ? slabs.get(m.slabs[i]!) : undefined;
      if (slab) {
        readInto(m.files[i]!, m.starts[i]!, m.sizes[i]!, slab, m.offsets[i]!);
        reply.bodies.push(null);
      } else {
        const b = new ArrayBuffer(m.sizes[i]!);
        readInto(m.files[i]!, m.starts[i]!, m.sizes[i]!, new Uint8Array(b), 0);
        reply.bodies.push(b);
        transfer.push(b);
      }
      reply.errors.push(null);
    } catch (err) {
      reply.bodies.push(null);
      reply.errors.push(String((err as NodeJS.ErrnoException).code ?? 'EIO'));
    }
  }
  port.postMessage(reply, transfer);
});
