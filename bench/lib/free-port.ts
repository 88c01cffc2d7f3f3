// A free TCP port in a range, for benchmarks whose servers need a fixed one:
// the helpers' port ranges lie inside Linux's ephemeral range (32768-60999),
// so a busy machine's client sockets may hold any of them for a while.
import net from 'node:net';

function canListen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen({ host, port, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

/** The first port in [from, to] that can be listened on now, skipping `taken`. */
export async function freePort(host: string, from: number, to: number, taken: readonly number[] = []): Promise<number> {
  for (let p = from; p <= to; p++) if (!taken.includes(p) && (await canListen(host, p))) return p;
  throw new Error(`no free port in ${from}-${to}`);
}
