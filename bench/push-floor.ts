// The floor under IDLE push on this machine: what a bare Node program costs
// to put one short line on each of N loopback sockets and have the measuring
// process read them, with no IMAP, store or commit on the way. `senders`
// child processes (as many as the server's workers) each accept N/senders of
// the connections; on a signal over IPC each writes "* 1 EXISTS\r\n" to every
// socket it holds, as an IDLE fan-out does. The receivers are plain sockets
// in this process (as bench/idle-push.ts's clients are), so the figure counts
// the same client-side work a push measurement pays, minus IMAP parsing.
//
// On a machine where the clients share the cores with the server (the bench
// here: 2 cores), this bounds what any server can show in idle-push: a push
// p99 below the floor's p99 is not reachable by any implementation.
//
// Alone: tsx bench/push-floor.ts [--clients 1,100,1000] [--senders 2] [--events 40]
import { fork, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { spread, type Spread, type SpreadMax } from './idle-push.js';

export interface PushFloorResult {
  clients: number;
  senders: number;
  samples: number;
  /** From just before the signal to the senders to receipt (ms). */
  fromSignal: SpreadMax;
  /** How long a sender's loop of writes took (ms; the fan-out alone). */
  senderLoopMs: Spread;
}

const LINE = '* 1 EXISTS\r\n';
/** How long an event waits for every socket before giving up (ms). */
const EVENT_TIMEOUT_MS = 15_000;
/** Connections opened at once while setting up. */
const CONNECT_CONCURRENCY = 50;
/** Pause between events (ms), as in idle-push. */
const GAP_MS = 30;

type SenderMsg = { port: number } | { loopMs: number };

/** The child side: a bare TCP server that writes LINE to every connection when told. */
function senderMain(): void {
  const conns: net.Socket[] = [];
  const server = net.createServer((s) => {
    s.setNoDelay(true);
    s.on('error', () => undefined);
    conns.push(s);
  });
  server.listen(0, '127.0.0.1', () => process.send!({ port: (server.address() as net.AddressInfo).port } satisfies SenderMsg));
  process.on('message', (m: { go?: boolean; stop?: boolean }) => {
    if (m.stop) process.exit(0);
    if (!m.go) return;
    const t0 = performance.now();
    for (const s of conns) s.write(LINE);
    process.send!({ loopMs: performance.now() - t0 } satisfies SenderMsg);
  });
}

export async function runPushFloor(o: { clients: number; senders: number; events: number }): Promise<PushFloorResult> {
  const self = fileURLToPath(import.meta.url);
  const children: ChildProcess[] = [];
  const sockets: net.Socket[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < o.senders; i++) {
      const c = fork(self, ['--sender'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      children.push(c);
      ports.push(await new Promise<number>((res, rej) => {
        c.once('message', (m: SenderMsg) => ('port' in m ? res(m.port) : rej(new Error('sender: unexpected message'))));
        c.once('exit', () => rej(new Error('sender exited')));
      }));
    }
    let current: { got: number; times: number[]; resolve: () => void } | null = null;
    let next = 0;
    const connectOne = (k: number) =>
      new Promise<void>((res, rej) => {
        const s = net.connect(ports[k % ports.length]!, '127.0.0.1', () => res());
        s.once('error', rej);
        s.on('data', () => {
          const ev = current;
          if (!ev) return;
          ev.times.push(performance.now());
          if (++ev.got === o.clients) ev.resolve();
        });
        sockets.push(s);
      });
    await Promise.all(
      Array.from({ length: Math.min(CONNECT_CONCURRENCY, o.clients) }, async () => {
        while (next < o.clients) await connectOne(next++);
      }),
    );
    await new Promise((r) => setTimeout(r, 300));
    const fromSignal: number[] = [];
    const loops: number[] = [];
    for (let i = 0; i < o.events; i++) {
      let resolve!: () => void;
      const all = new Promise<void>((r) => (resolve = r));
      const ev = { got: 0, times: [] as number[], resolve };
      const loopDone = children.map((c) => new Promise<void>((res) => c.once('message', (m: SenderMsg) => {
        if ('loopMs' in m) loops.push(m.loopMs);
        res();
      })));
      current = ev;
      const t0 = performance.now();
      for (const c of children) c.send({ go: true });
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([all, new Promise<void>((r) => (timer = setTimeout(r, EVENT_TIMEOUT_MS)))]);
      clearTimeout(timer);
      await Promise.all(loopDone);
      current = null;
      for (const at of ev.times) fromSignal.push(at - t0);
      await new Promise((r) => setTimeout(r, GAP_MS));
    }
    return { clients: o.clients, senders: o.senders, samples: fromSignal.length, fromSignal: spread(fromSignal, true), senderLoopMs: spread(loops) };
  } finally {
    for (const s of sockets) s.destroy();
    for (const c of children) if (c.connected) c.send({ stop: true });
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const get = (name: string, dflt: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : dflt;
  };
  for (const n of get('clients', '1,100,1000').split(',').map(Number)) {
    console.log(JSON.stringify(await runPushFloor({ clients: n, senders: Number(get('senders', '2')), events: Number(get('events', '40')) })));
  }
}

if (process.argv.includes('--sender')) senderMain();
else if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}
