// `quire serve` warns at start when RLIMIT_NOFILE cannot hold the connection
// caps. The limits come from a real process started under `ulimit -n`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { runProcess } from '../helpers/process.js';
import { loadConfig } from '../../src/cli/config.js';
import { warnAboutDescriptorLimit } from '../../src/cli/fdlimit.js';
import type { Logger } from '../../src/server/options.js';

const linux = existsSync('/proc/self/limits');

async function limitsUnder(n: number): Promise<string> {
  const r = await runProcess('sh', ['-c', `ulimit -n ${n} && cat /proc/self/limits`], { cwd: '/', env: process.env });
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

test('warns when the file-descriptor limit is below limits.maxConnections + LMTP + reserve, and only then', { skip: !linux && 'no /proc/self/limits' }, async () => {
  const warnings: string[] = [];
  const log: Logger = { debug() {}, info() {}, warn: (m) => warnings.push(m), error() {} };
  const config = loadConfig({ env: {}, flags: { data: '/nonexistent-quire-data' } });
  const low = await limitsUnder(512);
  const w = warnAboutDescriptorLimit(config, log, () => low);
  assert.match(w ?? '', /soft limit 512\b.*10164 the connection caps need/);
  assert.deepEqual(warnings, [w]);
  // Enough for the defaults (10,000 IMAP + 100 LMTP + 64): silent. The hard limit bounds what ulimit may raise to.
  const hard = /^Max open files\s+\S+\s+(\S+)/m.exec(low)?.[1];
  if (hard === 'unlimited' || Number(hard) >= 20_000) {
    const high = await limitsUnder(20_000);
    assert.equal(warnAboutDescriptorLimit(config, log, () => high), null);
  }
  const small = loadConfig({ env: { QUIRE_MAX_CONNECTIONS: '300', QUIRE_MAX_PRE_AUTH_CONNECTIONS: '100' }, flags: { data: '/nonexistent-quire-data' } });
  assert.equal(warnAboutDescriptorLimit(small, log, () => low), null);
  assert.equal(warnings.length, 1);
});
