import { openSqliteStore } from '../src/store/sqlite/index.js';
import { threadCorpus } from './helpers/thread-corpus.js';
import { threadMessages } from '../src/search/thread.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
const dir = process.argv[2] ?? mkdtempSync(path.join(tmpdir(), 'sortperf-'));
const store = await openSqliteStore({ dataDir: dir, synchronous: 'NORMAL' });
let user = await store.getUser('u');
if (!user) user = await store.createUser('u', 'x');
let mb = await store.getMailbox(user.id, 'INBOX');
if (!mb) mb = await store.createMailbox(user.id, 'INBOX');
const N = 100_000;
const have = (await store.mailboxStatus(mb.id)).messages;
if (have < N) {
  const c = threadCorpus(7, 5000);
  let t = Date.now();
  for (let i = have; i < N; i += 500) {
    const items = [];
    for (let j = i; j < i + 500; j++) items.push({ data: Buffer.from(c[j % 5000]!.raw.replace('message ', `message ${j} `)), flags: [] });
    await store.appendMessages(mb.id, items);
  }
  console.log('append', Date.now() - t, 'ms');
}
console.log('dir', dir);
(store as any).startBackgroundWork?.((e: unknown) => console.error(e));
let maxGap = 0; let last = performance.now();
const iv = setInterval(() => { const n = performance.now(); maxGap = Math.max(maxGap, n - last - 1); last = n; }, 1);
const gap = () => { const g = maxGap; maxGap = 0; return g.toFixed(1); };
await new Promise((r) => setTimeout(r, 300)); gap();
for (const key of ['date', 'subject', 'from', 'arrival', 'size', 'displayfrom'] as const) {
  for (const rev of [false, true]) {
    let t = performance.now();
    const r = await store.sortMessages(mb.id, { criteria: [{ key, reverse: rev }], range: { first: 1, last: 50 } });
    const t1 = performance.now() - t;
    t = performance.now();
    const all = await store.sortMessages(mb.id, { criteria: [{ key, reverse: rev }] });
    console.log(key, rev ? 'rev' : '', 'partial', t1.toFixed(1), 'ms; whole', (performance.now() - t).toFixed(1), 'ms', r.uids.length, all.uids.length, 'max loop gap', gap());
  }
}
let t = performance.now();
const rows = await store.threadRows(mb.id, null);
console.log('threadRows', (performance.now() - t).toFixed(1), 'gap', gap());
t = performance.now();
const out = await threadMessages('REFERENCES', rows, { pause: () => new Promise((r) => setImmediate(r)) });
console.log('thread', (performance.now() - t).toFixed(1), out.length, 'gap', gap());
clearInterval(iv);
await store.close();
