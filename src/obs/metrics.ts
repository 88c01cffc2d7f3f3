// Prometheus metrics of this process (prom-client). One registry per process:
// in a single process it is what /metrics serves; under `--workers N` every
// worker keeps its own and the primary's admin listener merges them with
// prom-client's AggregatorRegistry (src/obs/admin.ts). Every series carries
// a `worker` label (the cluster worker id, 0 in a single process), so
// per-worker figures survive the merge.
//
// Label values are closed sets chosen by the server (protocol, state, command
// names from the registry or "other", outcomes), never client text, so the
// number of series is bounded.

import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { MailStore } from '../store/types.js';
import { workerId } from './log.js';

/** Most distinct command label values; further names are counted as "other". */
export const MAX_COMMAND_LABELS = 128;
/** Buckets (seconds) of the command and store latency histograms: 0.5 ms to 30 s. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Resolution of the event-loop delay histogram behind nodejs_eventloop_lag_* (ms). */
const EVENT_LOOP_RESOLUTION_MS = 10;

export type Protocol = 'imap' | 'lmtp';

/** Something that can count its live connections by state at scrape time. */
export type ConnectionSource = () => Iterable<[state: string, count: number]>;

/** The MailStore methods that write (their latency is the store commit latency as the server sees it). */
export const STORE_WRITE_METHODS = [
  'appendMessages',
  'importMessages',
  'storeFlags',
  'copyMessages',
  'moveMessages',
  'expunge',
  'createMailbox',
  'deleteMailbox',
  'renameMailbox',
  'setSubscribed',
  'claimRecent',
  'createUser',
  'deleteUser',
  'setPasswordHash',
  'setQuota',
  'addAddress',
  'removeAddress',
] as const;

export class Metrics {
  readonly registry = new Registry();
  private readonly sources = new Map<Protocol, Set<ConnectionSource>>();
  private readonly commandNames = new Set<string>();
  private backlog: (() => Promise<number>) | null = null;

  readonly connectionsOpened = new Counter({ name: 'quire_connections_opened_total', help: 'Connections accepted', labelNames: ['protocol', 'tls'] as const, registers: [this.registry] });
  readonly connectionsRefused = new Counter({ name: 'quire_connections_refused_total', help: 'Connections refused at accept (limits)', labelNames: ['protocol', 'reason'] as const, registers: [this.registry] });
  readonly logins = new Counter({ name: 'quire_logins_total', help: 'Authentication attempts by mechanism and result', labelNames: ['protocol', 'mechanism', 'result'] as const, registers: [this.registry] });
  readonly commands = new Histogram({
    name: 'quire_command_duration_seconds',
    help: 'IMAP command latency by command and status',
    labelNames: ['command', 'status'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly deliveries = new Counter({ name: 'quire_lmtp_deliveries_total', help: 'LMTP deliveries per recipient by result', labelNames: ['result'] as const, registers: [this.registry] });
  readonly storeOps = new Histogram({
    name: 'quire_store_write_duration_seconds',
    help: 'Latency of store writes (commit included) as the server sees them',
    labelNames: ['op', 'result'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly internalErrors = new Counter({ name: 'quire_internal_errors_total', help: 'Unexpected errors answered with SERVERBUG (each logged with its log id)', labelNames: ['protocol'] as const, registers: [this.registry] });
  readonly reloads = new Counter({ name: 'quire_reloads_total', help: 'Configuration/certificate reloads by result', labelNames: ['result'] as const, registers: [this.registry] });

  constructor() {
    this.registry.setDefaultLabels({ worker: String(workerId()) });
    const sources = this.sources;
    new Gauge({
      name: 'quire_connections',
      help: 'Live connections by protocol and state',
      labelNames: ['protocol', 'state'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [protocol, set] of sources) {
          const byState = new Map<string, number>();
          for (const src of set) for (const [state, n] of src()) byState.set(state, (byState.get(state) ?? 0) + n);
          for (const [state, n] of byState) this.set({ protocol, state }, n);
        }
      },
    });
    const self = this;
    new Gauge({
      name: 'quire_index_backlog',
      help: 'Message bodies stored but not yet in the full-text index (SEARCH reads them meanwhile)',
      registers: [this.registry],
      async collect() {
        if (!self.backlog) return;
        try {
          this.set(await self.backlog());
        } catch {
          // the store is closing: keep the last value
        }
      },
    });
    // Process figures, event-loop delay (nodejs_eventloop_lag_*) among them.
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: EVENT_LOOP_RESOLUTION_MS });
  }

  /** Registers a live-connection counter; returns its removal. */
  addConnectionSource(protocol: Protocol, src: ConnectionSource): () => void {
    let set = this.sources.get(protocol);
    if (!set) this.sources.set(protocol, (set = new Set()));
    set.add(src);
    return () => set.delete(src);
  }

  /** Where quire_index_backlog comes from (the serving store); null to stop. */
  setIndexBacklogSource(fn: (() => Promise<number>) | null): void {
    this.backlog = fn;
  }

  /** The label for a command name: known names as they are, anything past the cap as "other". */
  commandLabel(name: string): string {
    if (this.commandNames.has(name)) return name;
    if (this.commandNames.size >= MAX_COMMAND_LABELS) return 'other';
    this.commandNames.add(name);
    return name;
  }
}

let current: Metrics | null = null;

/** This process's metrics (created on first use). */
export function processMetrics(): Metrics {
  current ??= new Metrics();
  return current;
}

/**
 * The store as the server should use it, with the latency of each write
 * observed at this boundary (the backend is not touched). Reads and
 * everything else pass through unchanged.
 */
export function instrumentStore<S extends MailStore>(store: S, metrics: Metrics = processMetrics()): S {
  const writes = new Set<string>(STORE_WRITE_METHODS);
  const wrapped = new Map<PropertyKey, unknown>();
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function') return value;
      let w = wrapped.get(prop);
      if (w) return w;
      const fn = value as (...a: unknown[]) => unknown;
      // Methods run on the store itself (not the proxy), whatever they do with `this`.
      if (typeof prop !== 'string' || !writes.has(prop)) {
        w = fn.bind(target);
      } else {
        w = function (this: unknown, ...args: unknown[]) {
          const end = metrics.storeOps.startTimer({ op: prop });
          let r: unknown;
          try {
            r = fn.apply(target, args);
          } catch (err) {
            end({ result: 'error' });
            throw err;
          }
          if (r && typeof (r as Promise<unknown>).then === 'function') {
            (r as Promise<unknown>).then(() => end({ result: 'ok' }), () => end({ result: 'error' }));
          } else end({ result: 'ok' });
          return r;
        };
      }
      wrapped.set(prop, w);
      return w;
    },
  });
}
