// The store's worker threads (full-text indexer, search): where their modules
// are and how they start and stop. Used by store.ts.
import { Worker } from 'node:worker_threads';
export function besideThis(name: string): URL {
  return new URL(import.meta.url.endsWith('.ts') ? `./${name}.ts` : `./${name}.js`, import.meta.url);
}

/** A worker's entry: the compiled module, or from source (tests run under tsx) a bootstrap that registers tsx's loader in the thread first. */
function workerEntry(module: URL): URL {
  if (!module.pathname.endsWith('.ts')) return module;
  const api = import.meta.resolve('tsx/esm/api');
  const boot = `const { register } = await import(${JSON.stringify(api)}); register(); await import(${JSON.stringify(module.href)});`;
  return new URL(`data:text/javascript,${encodeURIComponent(boot)}`);
}


/** A worker thread of the store and the promise that settles when it has exited. */
export interface Thread {
  worker: Worker;
  done: Promise<void>;
}

/**
 * Starts a worker thread that does not keep the process alive by itself;
 * its errors go to `onError`, its messages to `onMessage`, and `onExit` runs
 * when it ends (stopped or not).
 */
export function startThread<M>(module: URL, workerData: unknown, onError: (err: unknown) => void, onMessage: (m: M) => void, onExit: () => void): Thread {
  const worker = new Worker(workerEntry(module), { workerData });
  const done = new Promise<void>((resolve) => {
    worker.on('message', (m: M) => onMessage(m));
    worker.on('error', (err) => onError(err));
    worker.on('exit', () => {
      onExit();
      resolve();
    });
  });
  worker.unref();
  return { worker, done };
}

/** A typed array's numbers as an array, by index (Array.from's iterator took ~5 ms per 100k UIDs on the event loop). */
export function numbersOfArray(a: Uint32Array): number[] {
  const out = new Array<number>(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]!;
  return out;
}

/** Asks a thread to stop (it finishes what it has in hand) and waits, ending it after `graceMs`. */
export async function stopThread(t: Thread, graceMs: number): Promise<void> {
  t.worker.ref(); // the process waits for it
  t.worker.postMessage('stop');
  const timer = setTimeout(() => void t.worker.terminate(), graceMs);
  await t.done;
  clearTimeout(timer);
}

/** How long close() lets a thread finish (the indexing thread: its transaction) before ending it. */
export const THREAD_STOP_MS = 15_000;
