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
