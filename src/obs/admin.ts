// The HTTP admin listener (loopback by default): Prometheus metrics at
// /metrics, liveness at /healthz, readiness at /readyz. Nothing else is
// served; it never reads a request body and answers only GET and HEAD.
//
// Single process (`--workers 1`, tests): it serves this process's registry.
// Under node:cluster (`--workers N`) the primary runs it and merges the
// workers' registries with prom-client's AggregatorRegistry (each worker
// calls exposeMetricsToPrimary() once); every series keeps its `worker`
// label. That cross-worker part is thin on purpose: prom-client carries the
// IPC (its own `prom-client:*` message types).

import http from 'node:http';
import cluster from 'node:cluster';
import { AggregatorRegistry } from 'prom-client';
import type { Logger } from '../server/options.js';
import { processMetrics } from './metrics.js';

/** Default port of the admin listener (next to IMAPS 993 in spirit; unprivileged). */
export const DEFAULT_ADMIN_PORT = 9143;
export const DEFAULT_ADMIN_HOST = '127.0.0.1';
/** Time allowed for a whole admin request (headers included). */
const REQUEST_TIMEOUT_MS = 10_000;
/** Header bytes accepted on an admin request. */
const MAX_HEADER_BYTES = 8 * 1024;
/** Simultaneous admin connections (Prometheus needs one). */
const MAX_ADMIN_CONNECTIONS = 32;
/** A store probe slower than this makes /readyz 503: a balancer must stop sending sessions to a node whose store hangs. */
export const READY_STORE_TIMEOUT_MS = 2_000;
/** One store probe serves the /readyz requests of this interval (balancers of several nodes poll every second or two). */
export const READY_STORE_CACHE_MS = 500;

export interface MetricsSource {
  contentType: string;
  metrics(): Promise<string>;
}

export interface AdminOptions {
  host: string;
  port: number;
  log: Logger;
  /** Where /metrics comes from; default this process's registry. */
  source?: MetricsSource;
  /** True once the server accepts sessions (listeners bound, store open); /readyz is 503 until then and while draining. */
  ready: () => boolean;
  /** Probes the store for /readyz (e.g. a query); a rejection or READY_STORE_TIMEOUT_MS without an answer is "not ready". */
  storeCheck?: () => Promise<unknown>;
}

export interface RunningAdmin {
  address: { host: string; port: number };
  close(): Promise<void>;
}

/** This process's metrics. */
export function localMetrics(): MetricsSource {
  const r = processMetrics().registry;
  return { contentType: r.contentType, metrics: () => r.metrics() };
}

// ---- cross-worker (node:cluster) ------------------------------------------------------------

/** In a cluster primary: the workers' registries merged (prom-client asks each worker over IPC). */
export function clusterMetrics(): MetricsSource {
  const agg = new AggregatorRegistry();
  return { contentType: agg.contentType, metrics: () => agg.clusterMetrics() };
}

/** In a cluster worker: answer the primary's metrics requests with this process's registry. */
export function exposeMetricsToPrimary(): void {
  if (!cluster.isWorker) return;
  new AggregatorRegistry(); // installs prom-client's worker-side IPC listener (idempotent)
  AggregatorRegistry.setRegistries([processMetrics().registry]);
}

// ---- the listener ---------------------------------------------------------------------------

/** The store probe, shared by the /readyz requests of READY_STORE_CACHE_MS; resolves to null when reachable, else why not. */
function storeProbe(check: () => Promise<unknown>): () => Promise<string | null> {
  let last: { at: number; result: Promise<string | null> } | null = null;
  return () => {
    const now = Date.now();
    if (last && now - last.at < READY_STORE_CACHE_MS) return last.result;
    const result = new Promise<string | null>((resolve) => {
      const timer = setTimeout(() => resolve('store not answering'), READY_STORE_TIMEOUT_MS);
      timer.unref();
      check().then(
        () => (clearTimeout(timer), resolve(null)),
        (err: unknown) => (clearTimeout(timer), resolve(`store unreachable: ${err instanceof Error ? err.message : String(err)}`)),
      );
    });
    last = { at: now, result };
    return result;
  };
}

export async function startAdmin(opts: AdminOptions): Promise<RunningAdmin> {
  const source = opts.source ?? localMetrics();
  const probe = opts.storeCheck ? storeProbe(opts.storeCheck) : null;
  const server = http.createServer({ maxHeaderSize: MAX_HEADER_BYTES, requestTimeout: REQUEST_TIMEOUT_MS }, (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const send = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      send(405, 'text/plain; charset=utf-8', 'method not allowed\n');
      return;
    }
    if (path === '/healthz') {
      send(200, 'text/plain; charset=utf-8', 'ok\n');
    } else if (path === '/readyz') {
      // Not ready while starting and while draining (SIGTERM), and while the store does not answer.
      if (!opts.ready()) send(503, 'text/plain; charset=utf-8', 'not ready\n');
      else if (!probe) send(200, 'text/plain; charset=utf-8', 'ready\n');
      else
        void probe().then((why) => {
          if (why === null) send(200, 'text/plain; charset=utf-8', 'ready\n');
          else {
            opts.log.warn('readiness: store check failed', { reason: why });
            send(503, 'text/plain; charset=utf-8', `not ready: ${why}\n`);
          }
        });
    } else if (path === '/metrics') {
      source.metrics().then(
        (body) => send(200, source.contentType, body),
        (err: unknown) => {
          opts.log.error('metrics collection failed', { error: err instanceof Error ? err.message : String(err) });
          send(500, 'text/plain; charset=utf-8', 'metrics unavailable\n');
        },
      );
    } else {
      send(404, 'text/plain; charset=utf-8', 'not found (try /metrics, /healthz, /readyz)\n');
    }
  });
  server.maxConnections = MAX_ADMIN_CONNECTIONS;
  server.headersTimeout = REQUEST_TIMEOUT_MS;
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => opts.log.error('admin listener error', { error: err.message }));
  const a = server.address() as { port: number };
  return {
    address: { host: opts.host, port: a.port },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
