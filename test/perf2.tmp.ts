import { openSqliteStore } from '../src/store/sqlite/index.js';
import { threadMessages } from '../src/search/thread.js';
const store = await openSqliteStore({ dataDir: '/tmp/sortwork/perf100k', synchronous: 'NORMAL' });
const user = (await store.getUser('u'))!;
const mb = (await store.getMailbox(user.id, 'INBOX'))!;
const rows = await store.threadRows(mb.id, null);
for (const alg of ['REFERENCES', 'REFS', 'ORDEREDSUBJECT'] as const) {
  const t = performance.now();
  await threadMessages(alg, rows);
  console.log(alg, (performance.now() - t).toFixed(1));
}
await store.close();
