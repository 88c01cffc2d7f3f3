// Two `quire serve --store postgres://...` nodes (separate processes, their
// own data directories) on one PostgreSQL schema, with the user created by
// `quire user add --store`: a session IDLEing on node A gets the EXISTS of
// an APPEND made on node B promptly (journal + LISTEN/NOTIFY), and its
// FETCH sees the bytes; the push latency across nodes is measured (p50/p99;
// issue 13's target is p99 < 20 ms on a quiet machine; the assertion is
// looser, as this machine is shared by parallel tests).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';
import { RawClient, message } from '../helpers/imap.js';
import { runProcess } from '../helpers/process.js';
import { dropSchema, freshSchema, pgSkip, pgStoreUrl } from '../helpers/pg.js';
import { cleanEnv } from '../obs/helpers.js';
import { startPgNode, type PgNode } from '../cluster/pg-nodes.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = path.join(ROOT, 'src/cli/main.ts');
const TSX = path.join(ROOT, 'node_modules/.bin/tsx');
const skip = await pgSkip();
/** Appends timed across the nodes. */
const SAMPLES = 60;
/** What this test insists on (a loaded CI machine); the measured p99 is printed against the 20 ms target. */
const P99_BOUND_MS = 250;

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

describe('quire serve nodes on one PostgreSQL store', { skip }, () => {
  const schema = freshSchema('serve');
  const dirs: string[] = [];
  after(async () => {
    await dropSchema(schema).catch(() => undefined);
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  test('user add --store, then IDLE on node A gets node B\'s APPEND promptly; FETCH on A reads it', async () => {
    const url = pgStoreUrl(schema);
    const add = await runProcess(TSX, [MAIN, 'user', 'add', 'alice', '--password-stdin', '--store', url], { cwd: ROOT, env: cleanEnv(), stdin: 'secret-alice-1\n' });
    assert.equal(add.code, 0, add.stderr);
    const list = await runProcess(TSX, [MAIN, 'user', 'list'], { cwd: ROOT, env: cleanEnv({ QUIRE_STORE: url }) });
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^alice\t/m, 'QUIRE_STORE reaches the same store');
    const nodes: PgNode[] = [];
    try {
      for (const n of ['a', 'b']) {
        const d = mkdtempSync(path.join(tmpdir(), `quire-pgnode-${n}-`));
        dirs.push(d);
        nodes.push(await startPgNode(`quire-${n}`, url, d, ['--workers', '0']));
      }
      const [A, B] = nodes as [PgNode, PgNode];
      const login = ['alice', 'secret-alice-1'] as [string, string];
      const a = await RawClient.connect(A.imapPort, { login });
      const b = await RawClient.connect(B.imapPort, { login });
      await a.command('CREATE Shared');
      assert.match((await b.command('SELECT Shared')).tagged, /OK/, 'node B sees the mailbox node A created');
      await a.command('SELECT Shared');
      a.write('i1 IDLE\r\n');
      assert.match(await a.readLine(), /^\+ /);
      const lat: number[] = [];
      for (let i = 1; i <= SAMPLES; i++) {
        const appended = b.append('Shared', message(i));
        const pushed = a.readUntil((l) => l === `* ${i} EXISTS`, 5000).then(() => performance.now());
        const r = await appended;
        const okAt = performance.now();
        assert.match(r.tagged, /OK/);
        lat.push(Math.max(0, (await pushed) - okAt));
      }
      a.write('DONE\r\n');
      await a.readUntil((l) => l.startsWith('i1 OK'));
      lat.sort((x, y) => x - y);
      const p50 = quantile(lat, 0.5);
      const p99 = quantile(lat, 0.99);
      console.log(`# IDLE push across nodes after APPEND's OK: p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${lat.at(-1)!.toFixed(1)} ms over ${SAMPLES} (target p99 < 20 ms)`);
      assert.ok(p99 < P99_BOUND_MS, `p99 ${p99} ms`);
      const f = await a.command(`FETCH ${SAMPLES} BODY.PEEK[HEADER.FIELDS (SUBJECT)]`);
      assert.ok(f.raw.includes(`Subject: Message ${SAMPLES}`), f.raw);
      // Flags cross too: B stores, A (selected, NOOP) sees the FETCH.
      await b.command(`STORE 1 +FLAGS (\\Flagged)`);
      const deadline = Date.now() + 3000;
      let seen = false;
      while (!seen && Date.now() < deadline) seen = /\* 1 FETCH \(.*\\Flagged/.test((await a.command('NOOP')).raw);
      assert.ok(seen, 'the flag change made on node B reaches the session on node A');
      await a.close();
      await b.close();
    } finally {
      for (const n of nodes) n.child.kill('SIGTERM');
      for (const n of nodes) assert.equal(await n.exited, 0, n.out());
    }
  });
});
