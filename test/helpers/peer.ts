// Where the reference Dovecot's control script is: $DOVECOT_PEER_BIN, or
// shared/peers/dovecot/dovecot-peer beside the repository (CI clones the
// repository elsewhere with a copy of shared/ beside it). Never a machine path.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** The dovecot-peer script, or '' when neither place has it (tests then skip and say why). */
export const DOVECOT_PEER: string = [process.env.DOVECOT_PEER_BIN, path.resolve(REPO_ROOT, '../shared/peers/dovecot/dovecot-peer')]
  .filter((p): p is string => !!p)
  .find((p) => existsSync(p)) ?? '';

/** The Dovecot peer's plain IMAP port (dovecot-peer's default, or DOVECOT_PEER_PORT). */
export const DOVECOT_IMAP_PORT = Number(process.env.DOVECOT_PEER_PORT ?? 10143);

/**
 * Whether the running Dovecot peer, logged in as `user`, lists capability `cap` (compared as a whole
 * token, case-insensitively). A peer that does not answer gives false outside CI (the comparison then
 * says so and skips) and fails in CI, where .ci/run starts it: a comparison must not pass by not running.
 */
export async function peerAdvertises(user: [string, string], cap: string): Promise<boolean> {
  const { RawClient } = await import('./imap.js');
  let words: string[];
  try {
    const c = await RawClient.connect(DOVECOT_IMAP_PORT, { login: user });
    words = (await c.command('CAPABILITY')).untagged.join(' ').toUpperCase().split(' ');
    await c.close();
  } catch (err) {
    if (process.env.CI) throw new Error(`the Dovecot peer on port ${DOVECOT_IMAP_PORT} does not answer (required in CI): ${String(err)}`);
    return false;
  }
  return words.includes(cap.toUpperCase());
}
