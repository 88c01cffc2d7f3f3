// Holds N authenticated connections idle (LOGIN, SELECT INBOX, IDLE) in its
// own process, so the benchmark runner's fd limit and memory stay out of it.
// Started by bench/run.ts under a raised `ulimit -n`. Protocol on stdio:
// prints one JSON line {"ready": n, "failed": f, "ms": t, "error"?: s} when
// all connections are up (or it gave up), then waits for stdin to close and
// exits (the kernel closes the sockets).
//
// Usage: tsx bench/conn-holder.ts PORT COUNT USER_PREFIX USER_COUNT PASS
import { ImapClient } from './lib/imap.js';

const [portS, countS, prefix, usersS, pass] = process.argv.slice(2);
const port = Number(portS);
const count = Number(countS);
const users = Number(usersS);
/** Logins in flight at once: a burst of thousands would only fill listen backlogs. */
const CONCURRENCY = 64;
/** Give up on the whole ramp after this long. */
const RAMP_TIMEOUT_MS = 420_000;

const clients: ImapClient[] = [];
let failed = 0;
let ok = 0;
let firstError = '';
const t0 = performance.now();
let next = 0;

async function one(k: number): Promise<void> {
  try {
    const c = await ImapClient.connect('127.0.0.1', port, 60_000);
    clients.push(c);
    await c.login(`${prefix}${(k % users) + 1}`, pass!);
    await c.command('SELECT INBOX');
    await c.idle();
    ok++;
  } catch (e) {
    failed++;
    firstError ||= e instanceof Error ? e.message : String(e);
  }
}

process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));

let reported = false;
const deadline = setTimeout(() => {
  next = count;
  console.log(JSON.stringify({ ready: ok, failed: count - ok, ms: Math.round(performance.now() - t0), error: 'ramp timed out' }));
  reported = true;
}, RAMP_TIMEOUT_MS);

await Promise.all(
  Array.from({ length: CONCURRENCY }, async () => {
    while (next < count) {
      // Stop early once connections clearly fail (a server limit was hit).
      if (failed > 50 && failed > count / 10) break;
      await one(next++);
    }
  }),
);
clearTimeout(deadline);
if (!reported) console.log(JSON.stringify({ ready: ok, failed: count - ok, ms: Math.round(performance.now() - t0), error: firstError || undefined }));
