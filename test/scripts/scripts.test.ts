// Runs every test/scripts/*.imapscript (format: transcript.ts) against Quire
// and against the reference Dovecot (../shared/peers/dovecot/dovecot-peer).
// The Dovecot run validates the transcripts themselves: a script encodes only
// what both servers do, tolerant where RFC 9051 / RFC 2180 / RFC 7162 allow a
// choice. Without Dovecot that half is skipped with a message, except under
// CI=true, where it must run.
import { DOVECOT_PEER } from '../helpers/peer.js';
import { test, before, after, describe } from 'node:test';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient } from '../helpers/imap.js';
import { parseScript, runScript, type Target } from './transcript.js';

const HERE = fileURLToPath(new URL('./', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const scripts = readdirSync(HERE)
  .filter((f) => f.endsWith('.imapscript'))
  .sort()
  .map((f) => parseScript(f, readFileSync(join(HERE, f), 'utf8')));

/** A Dovecot user no other test uses (the brief reserves testuser90..99 for these). */
const DOVECOT_USER = 'testuser95';
const DOVECOT_PORT = Number(process.env.DOVECOT_PEER_PORT ?? 10143);
/** Mailboxes of this run are named PREFIX-<script>-<pid>; leftovers of killed runs are removed. */
const PREFIX = 'qscript';

const runId = `${process.pid}${Date.now().toString(36)}`;
const boxFor = (script: string) => `${PREFIX}-${script.replace(/\.imapscript$/, '').replace(/[^A-Za-z0-9]/g, '')}-${runId}`;

function reachable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1' }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

/** Dovecot's port, starting the peer if needed; a reason string when it cannot run. */
async function dovecot(): Promise<true | string> {
  if (await reachable(DOVECOT_PORT)) return true;
  const peer = DOVECOT_PEER;
  if (!peer) return 'dovecot-peer script not found (../shared/peers/dovecot/dovecot-peer)';
  const r = spawnSync('bash', [peer, 'start'], { encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) return `dovecot-peer start failed: ${r.stderr || r.stdout || r.error?.message}`;
  return (await reachable(DOVECOT_PORT)) ? true : `Dovecot not listening on 127.0.0.1:${DOVECOT_PORT}`;
}

/** Remove mailboxes left by earlier runs that were killed before their cleanup. */
async function removeLeftovers(t: Target) {
  const c = await RawClient.connect(t.port, { login: [t.user, t.password] });
  try {
    const r = await c.command(`LIST "" "${PREFIX}-*"`);
    for (const l of r.untagged) {
      const m = /^\* LIST \([^)]*\) (?:"."|NIL) "?([^"]+)"?$/.exec(l);
      if (m && !m[1].endsWith(runId)) await c.command(`DELETE "${m[1]}"`);
    }
  } finally {
    await c.close();
  }
}

describe('transcripts against Quire', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer();
  });
  after(async () => {
    await srv.stop();
  });
  for (const s of scripts) {
    test(s.name, async () => {
      await runScript(s, { name: 'quire', port: srv.port, user: 'alice', password: 'secret-a' }, boxFor(s.name));
    });
  }
});

describe('transcripts against Dovecot (validates the scripts)', () => {
  let ready: true | string = 'not started';
  const target: Target = { name: 'dovecot', port: DOVECOT_PORT, user: DOVECOT_USER, password: 'pass' };
  before(async () => {
    ready = await dovecot();
    if (ready === true) await removeLeftovers(target);
    else if (process.env.CI) throw new Error(`CI is set and Dovecot cannot run: ${ready}`);
    else console.log(`# SKIP Dovecot half of test/scripts: ${ready}`);
  });
  for (const s of scripts) {
    test(s.name, async (t) => {
      if (ready !== true) return t.skip(`Dovecot unavailable: ${ready}`);
      await runScript(s, target, boxFor(s.name));
    });
  }
});
