// bcrypt verification (bcryptjs, pure JavaScript) off the event loop: its
// async API still computes in 100 ms slices on the calling thread, which would
// stall every other connection, so comparisons run in worker threads.

import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** Worker threads for bcrypt (each comparison costs 50-400 ms of CPU at common costs). */
export const BCRYPT_THREADS = 2;
/** Comparisons waiting beyond which new ones fail at once (an online-guessing flood must not queue forever). */
export const MAX_BCRYPT_QUEUE = 1000;

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const bcrypt = require(workerData.bcrypt);
parentPort.on('message', ({ id, password, hash }) => {
  let ok = false;
  try { ok = bcrypt.compareSync(password, hash); } catch { ok = false; }
  parentPort.postMessage({ id, ok });
});
`;

interface Thread {
  worker: Worker;
  pending: Map<number, (ok: boolean) => void>;
}

const threads: Thread[] = [];
let nextId = 0;
let waiting = 0;

function thread(): Thread {
  const i = nextId % BCRYPT_THREADS;
  let t = threads[i];
  if (!t) {
    // Plain CommonJS: no loader flags of the parent (tsx) in the thread.
    const worker = new Worker(WORKER_SOURCE, { eval: true, execArgv: [], workerData: { bcrypt: createRequire(import.meta.url).resolve('bcryptjs') } });
    const created: Thread = { worker, pending: new Map() };
    worker.on('message', (m: { id: number; ok: boolean }) => {
      const cb = created.pending.get(m.id);
      created.pending.delete(m.id);
      // Idle threads must not keep the process alive; busy ones must (a script awaiting a result).
      if (created.pending.size === 0) worker.unref();
      cb?.(m.ok);
    });
    const fail = () => {
      for (const cb of created.pending.values()) cb(false);
      created.pending.clear();
      if (threads[i] === created) threads[i] = undefined as unknown as Thread;
    };
    worker.on('error', fail);
    worker.on('exit', fail);
    // After the listeners: adding a 'message' listener refs the thread again.
    worker.unref();
    threads[i] = created;
    t = created;
  }
  return t;
}

/** bcrypt comparison in a worker thread; false for a wrong password or a malformed hash. */
export function bcryptCompare(password: string, hash: string): Promise<boolean> {
  if (waiting >= MAX_BCRYPT_QUEUE) return Promise.reject(new Error('too many bcrypt comparisons waiting'));
  const t = thread();
  const id = nextId++;
  waiting++;
  return new Promise<boolean>((resolve) => {
    t.pending.set(id, (ok) => {
      waiting--;
      resolve(ok);
    });
    if (t.pending.size === 1) t.worker.ref();
    t.worker.postMessage({ id, password, hash });
  });
}
