// Preloaded into the Quire server by the benchmarks (node --import), so that
// measuring needs no change to src/:
// - SIGUSR2: prints the event-loop delay since the previous report (perf_hooks
//   monitorEventLoopDelay, minus its sampling interval) as one
//   "BENCH_ELD {json}" line on stderr, then resets the histogram;
// - SIGWINCH: runs a full garbage collection (node --expose-gc) and prints
//   "BENCH_GC {json}", so memory is measured without collectable garbage.
import { monitorEventLoopDelay } from 'node:perf_hooks';

if (process.env.BENCH_ELD) {
  const RESOLUTION_MS = 5;
  const h = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  h.enable();
  process.on('SIGUSR2', () => {
    const ms = (ns) => Math.max(0, Math.round(ns / 1e4) / 100 - RESOLUTION_MS);
    const s = { p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max), mean: ms(h.mean) };
    process.stderr.write(`BENCH_ELD ${JSON.stringify(s)}\n`);
    h.reset();
  });
  process.on('SIGWINCH', () => {
    if (typeof globalThis.gc === 'function') globalThis.gc();
    const m = process.memoryUsage();
    process.stderr.write(`BENCH_GC ${JSON.stringify({ rss: m.rss, heapUsed: m.heapUsed, external: m.external })}\n`);
  });
}
