// THREAD and UID THREAD — RFC 5256 §3 (command), §4 (ORDEREDSUBJECT and
// REFERENCES), and REFS as Dovecot defines it; the algorithms are in
// src/search/thread.ts. CHARSET is mandatory and handled as SEARCH does.
// A store with a thread index (MailStore.threadForest) threads off this
// thread and gives the same answer; the others are threaded here, in slices.
import { defineCommand, bad, type CommandContext } from './types.js';
import { ArgReader } from './args.js';
import type { Criterion } from '../search/program.js';
import { THREAD_ALGORITHMS, formatForest, formatThreads, threadMessages, type ThreadAlgorithm } from '../search/thread.js';
import { badCharset, findMatches, matchesAll, parseCriteria } from './results.js';

interface ThreadArgs {
  alg: ThreadAlgorithm;
  program: Criterion | null;
}

const tick = () => new Promise<void>((r) => setImmediate(r));

function spec(uidMode: boolean) {
  return defineCommand<ThreadArgs>({
    name: uidMode ? 'UID THREAD' : 'THREAD',
    states: ['selected'],
    rfc: 'RFC 5256 §3, §4',
    // RFC 5256 §3: no EXPUNGE while answering THREAD (UID THREAD may).
    expungeAllowed: uidMode,
    parse(args) {
      const r = new ArgReader(args);
      const name = r.atom('threading algorithm').toUpperCase() as ThreadAlgorithm;
      if (!THREAD_ALGORITHMS.includes(name)) throw bad(`Unknown threading algorithm ${name.slice(0, 30)}`);
      const charset = r.astringText('charset');
      if (r.done) throw bad('Missing search criteria');
      return { alg: name, program: parseCriteria(r, charset).program };
    },
    run: (ctx, a) => runThread(ctx, a, uidMode),
  });
}

async function runThread(ctx: CommandContext, a: ThreadArgs, uidMode: boolean) {
  const view = ctx.session.selected!;
  if (!a.program) badCharset();
  const maxUid = view.uids.length ? view.uids[view.uids.length - 1]! : 0;
  const restrict = matchesAll(a.program) ? null : (await findMatches(ctx, a.program, false)).uids;
  if (ctx.store.threadForest) {
    const forest = await ctx.store.threadForest(view.mailboxId, { algorithm: a.alg, uids: restrict, maxUid });
    // A UID the session does not know (formatForest answers null) leaves it to the path below, which skips it.
    const known = uidMode ? (u: number) => (view.seqOf(u) === 0 ? 0 : u) : (u: number) => view.seqOf(u);
    const text = forest ? await formatForest(forest, known, tick) : null;
    if (text !== null) {
      ctx.out.untagged(text.length ? ['THREAD ', text] : 'THREAD');
      return { text: 'THREAD completed' };
    }
  }
  const rows = (await ctx.store.threadRows(view.mailboxId, restrict, maxUid)).filter((r) => view.seqOf(r.uid) !== 0);
  // ORDEREDSUBJECT's (base subject, date) order comes from the store's indexes, not from a sort here.
  const subjectOrder = a.alg === 'ORDEREDSUBJECT'
    ? (await ctx.store.sortMessages(view.mailboxId, { criteria: [{ key: 'subject', reverse: false }, { key: 'date', reverse: false }], uids: restrict, maxUid })).uids
    : undefined;
  const threads = await threadMessages(a.alg, rows, { pause: tick, subjectOrder });
  const num = uidMode ? (u: number) => u : (u: number) => view.seqOf(u);
  ctx.out.untagged(threads.length ? `THREAD ${formatThreads(threads, num)}` : 'THREAD');
  return { text: 'THREAD completed' };
}

/** Nodes of the made-up answer warmUpThreadAnswers formats (threads of four: a chain and a branch). */
const WARM_NODES = 4_000;

/**
 * Formats a made-up THREAD answer a few times, so that the first THREAD after a server start runs the
 * formatter (formatForest) compiled: cold, formatting a 10k-message answer took ~10 ms where a warm
 * run takes ~1 ms (measured; the kept answer of such a mailbox is read in less). Called once by the
 * server as it starts, before it accepts connections; a few milliseconds.
 */
export function warmUpThreadAnswers(rounds = 3): void {
  const nodes = new Uint32Array(2 * WARM_NODES);
  let w = 0;
  let roots = 0;
  for (let uid = 1; uid + 3 <= WARM_NODES; uid += 4) {
    roots++;
    // (uid uid+1 (uid+2)(uid+3)): a chain, then two children as lists.
    for (const [u, k] of [[uid, 1], [uid + 1, 2], [uid + 2, 0], [uid + 3, 0]] as const) {
      nodes[w++] = u;
      nodes[w++] = k;
    }
  }
  const forest = { roots, nodes: nodes.subarray(0, w) };
  // No pause: formatForest then runs to its end before returning (the promise is already settled).
  for (let r = 0; r < rounds; r++) void formatForest(forest, (u) => u);
}

export const thread = spec(false);
export const uidThread = spec(true);
export type { CommandContext };
