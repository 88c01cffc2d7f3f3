// IDLE push latency: N clients IDLE on one mailbox while a writer APPENDs a
// message and then STOREs a flag on it, event after event. For each event
// and each idle client: the time from just before the writer sends its
// command to the client's receipt of the matching untagged EXISTS (append)
// or FETCH (store); and the same measured from the writer's tagged OK (can
// be negative: a server may push before it answers the writer).
// A probe connection sends NOOP every PROBE_MS meanwhile (its round trip shows
// how responsive the server stays), and for Quire the event-loop delay is
// read from the process (bench/lib/eld-preload.mjs).
//
// Alone: tsx bench/idle-push.ts --port 1143 --user U --pass P [--clients 1,100,1000] [--events 20]
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { ImapClient, quote, withTimeout } from './lib/imap.js';
import type { EldStats } from './lib/servers.js';

export interface IdlePushOptions {
  host: string;
  port: number;
  user: string;
  pass: string;
  clients: number;
  /** Append events; as many store events follow each. */
  events: number;
  mailbox?: string;
  /** Reads (and resets) the server's event-loop delay, when the server can tell. */
  eventLoopDelay?: () => Promise<EldStats | null>;
  log?: (s: string) => void;
}

/** Percentiles of a set of times (ms, two decimals). */
export interface Spread {
  p50: number;
  p99: number;
}
export interface SpreadMax extends Spread {
  max: number;
}

export interface IdlePushResult {
  clients: number;
  samples: number;
  missed: number;
  /** From just before the writer's command to receipt (ms). */
  fromSend: SpreadMax;
  /** From the writer's tagged OK to receipt (ms; negative = pushed before the OK). */
  fromOk: Spread;
  writerMs: Spread;
  probeMs: SpreadMax;
  eld: EldStats | null;
}

const PROBE_MS = 20;
/** How long an event waits for every client before counting the rest as missed. */
const EVENT_TIMEOUT_MS = 15_000;
/** Connections opened at once while setting up. */
const CONNECT_CONCURRENCY = 50;

export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

const r2 = (x: number) => Math.round(x * 100) / 100;

/** p50 and p99 of `xs` (and the maximum with `withMax`), rounded to two decimals. */
export function spread(xs: number[]): Spread;
export function spread(xs: number[], withMax: true): SpreadMax;
export function spread(xs: number[], withMax = false): Spread | SpreadMax {
  const s: Spread = { p50: r2(percentile(xs, 50)), p99: r2(percentile(xs, 99)) };
  return withMax ? { ...s, max: r2(Math.max(...xs)) } : s;
}

const MESSAGE = (i: number) =>
  Buffer.from(
    `From: "Push Writer" <writer@example.com>\r\nTo: <push@example.com>\r\nSubject: push test ${i}\r\n` +
      `Date: ${new Date().toUTCString().replace('GMT', '+0000')}\r\nMessage-ID: <push.${Date.now()}.${i}@example.com>\r\n` +
      `MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n` +
      'A short message to wake up the idle clients.\r\n'.repeat(40),
  );

export async function runIdlePush(o: IdlePushOptions): Promise<IdlePushResult> {
  const mailbox = o.mailbox ?? 'INBOX';
  const log = o.log ?? (() => undefined);
  const idlers: { c: ImapClient; done: Promise<unknown> }[] = [];
  let current: { kind: 'EXISTS' | 'FETCH'; got: Set<number>; times: number[]; resolve: () => void } | null = null;
  const cleanup: ImapClient[] = [];
  try {
    // Idle clients: LOGIN, SELECT, IDLE.
    let next = 0;
    const connectOne = async (k: number) => {
      const c = await ImapClient.connect(o.host, o.port);
      cleanup.push(c);
      await c.login(o.user, o.pass);
      await c.command(`SELECT ${quote(mailbox)}`);
      c.onUntagged = (line, at) => {
        const ev = current;
        if (!ev || ev.got.has(k)) return;
        if ((ev.kind === 'EXISTS' && / EXISTS$/.test(line)) || (ev.kind === 'FETCH' && / FETCH /.test(line))) {
          ev.got.add(k);
          ev.times.push(at);
          if (ev.got.size === o.clients) ev.resolve();
        }
      };
      const { done } = await c.idle();
      idlers.push({ c, done });
    };
    await withTimeout(`connecting ${o.clients} idle clients`, 120_000, () =>
      Promise.all(
        Array.from({ length: Math.min(CONNECT_CONCURRENCY, o.clients) }, async () => {
          while (next < o.clients) await connectOne(next++);
        }),
      ),
    );
    log(`  ${o.clients} clients idle`);

    const writer = await ImapClient.connect(o.host, o.port);
    cleanup.push(writer);
    await writer.login(o.user, o.pass);
    await writer.command(`SELECT ${quote(mailbox)}`);
    const probe = await ImapClient.connect(o.host, o.port);
    cleanup.push(probe);
    await probe.login(o.user, o.pass);
    const probeTimes: number[] = [];
    let probing = true;
    const probeLoop = (async () => {
      while (probing) {
        const t = await probe.command('NOOP');
        probeTimes.push(t.ms);
        await new Promise((r) => setTimeout(r, PROBE_MS));
      }
    })();

    await new Promise((r) => setTimeout(r, 300));
    await o.eventLoopDelay?.(); // reset the server's histogram
    const fromSend: number[] = [];
    const fromOk: number[] = [];
    const writerMs: number[] = [];
    let missed = 0;
    const runEvent = async (kind: 'EXISTS' | 'FETCH', cmd: string | Buffer) => {
      let resolve!: () => void;
      const all = new Promise<void>((r) => (resolve = r));
      const ev = { kind, got: new Set<number>(), times: [] as number[], resolve };
      current = ev;
      const t0 = performance.now();
      const ok = await writer.command(cmd);
      const tOk = t0 + ok.ms;
      writerMs.push(ok.ms);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([all, new Promise<void>((r) => (timer = setTimeout(r, EVENT_TIMEOUT_MS)))]);
      clearTimeout(timer);
      current = null;
      missed += o.clients - ev.got.size;
      for (const at of ev.times) {
        fromSend.push(at - t0);
        fromOk.push(at - tOk);
      }
    };
    for (let i = 0; i < o.events; i++) {
      const m = MESSAGE(i);
      const app = Buffer.concat([Buffer.from(`APPEND ${quote(mailbox)} () {${m.length}+}\r\n`), m, Buffer.from('\r\n')]);
      await runEvent('EXISTS', app);
      await writer.command('NOOP'); // take the EXISTS so the STORE below names the new message
      await runEvent('FETCH', `STORE * +FLAGS (\\Flagged)`);
      await new Promise((r) => setTimeout(r, 30));
    }
    const eld = (await o.eventLoopDelay?.()) ?? null;
    probing = false;
    await probeLoop;
    // Leave the mailbox as it was.
    await writer.command('STORE 1:* +FLAGS.SILENT (\\Deleted)');
    await writer.command('EXPUNGE');
    for (const { c } of idlers) c.write('DONE\r\n');
    await withTimeout('ending IDLE', 60_000, () => Promise.allSettled(idlers.map((i) => i.done)));
    return {
      clients: o.clients,
      samples: fromSend.length,
      missed,
      fromSend: spread(fromSend, true),
      fromOk: spread(fromOk),
      writerMs: spread(writerMs),
      probeMs: spread(probeTimes, true),
      eld,
    };
  } finally {
    for (const c of cleanup) c.destroy();
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const get = (name: string, dflt?: string) => {
    const i = args.indexOf(`--${name}`);
    if (i >= 0 && args[i + 1] !== undefined) return args[i + 1]!;
    if (dflt === undefined) throw new Error(`missing --${name}`);
    return dflt;
  };
  const clients = get('clients', '1,100,1000').split(',').map(Number);
  for (const n of clients) {
    const r = await runIdlePush({
      host: get('host', '127.0.0.1'),
      port: Number(get('port')),
      user: get('user'),
      pass: get('pass'),
      clients: n,
      events: Number(get('events', '20')),
      log: (s) => process.stderr.write(s + '\n'),
    });
    console.log(JSON.stringify(r));
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}
