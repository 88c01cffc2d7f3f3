// The body-reading thread (body-reads.ts): reads whole message files with
// blocking calls, a batch per request, and hands the bytes back without a
// copy (transferred ArrayBuffers). Blocking here costs the server's event
// loop nothing, and one message per batch replaces three thread-pool round
// trips (open, read, close) per body: most of a POP3 download's cost (issue 17).
import { closeSync, openSync, readSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';

export interface BodyReadRequest {
  id: number;
  files: string[];
  /** Bytes to read from each file (from its `starts` offset). */
  sizes: number[];
  /** Offsets to read from (0 for each when absent: whole bodies). */
  starts?: number[];
}

/** Per file: its bytes, or the error code (ENOENT: gone; SHORT: shorter than recorded; else the errno code). */
export interface BodyReadReply {
  id: number;
  bodies: (ArrayBuffer | null)[];
  errors: (string | null)[];
}

const port = parentPort!;

function readOne(file: string, size: number, start: number): ArrayBuffer {
  const buf = new ArrayBuffer(size);
  const view = new Uint8Array(buf);
  const fd = openSync(file, 'r');
  try {
    let got = 0;
    while (got < size) {
      const n = readSync(fd, view, got, size - got, start + got);
      if (n === 0) throw Object.assign(new Error('short'), { code: 'SHORT' });
      got += n;
    }
  } finally {
    closeSync(fd);
  }
  return buf;
}

port.on('message', (m: BodyReadRequest | 'stop') => {
  if (m === 'stop') process.exit(0);
  const reply: BodyReadReply = { id: m.id, bodies: [], errors: [] };
  const transfer: ArrayBuffer[] = [];
  for (let i = 0; i < m.files.length; i++) {
    try {
      const b = readOne(m.files[i]!, m.sizes[i]!, m.starts?.[i] ?? 0);
      reply.bodies.push(b);
      reply.errors.push(null);
      transfer.push(b);
    } catch (err) {
      reply.bodies.push(null);
      reply.errors.push(String((err as NodeJS.ErrnoException).code ?? 'EIO'));
    }
  }
  port.postMessage(reply, transfer);
});
