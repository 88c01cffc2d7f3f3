// At start, `quire serve` compares the process's file-descriptor limit with
// what the connection caps need (src/server/fdlimit.ts judges) and warns.
import { readFileSync } from 'node:fs';
import { descriptorLimitWarning, parseOpenFilesLimit } from '../server/fdlimit.js';
import type { Logger } from '../server/options.js';
import type { QuireConfig } from './config.js';

/** Where Linux shows the process's resource limits; absent elsewhere (no warning then). */
const PROC_LIMITS = '/proc/self/limits';

/** Logs a warning when RLIMIT_NOFILE cannot hold the configured IMAP and LMTP connection caps; returns it (for tests). */
export function warnAboutDescriptorLimit(config: QuireConfig, log: Logger, read: () => string = () => readFileSync(PROC_LIMITS, 'utf8')): string | null {
  let text: string;
  try {
    text = read();
  } catch {
    return null;
  }
  const lmtp = config.lmtp.port !== null || config.lmtp.socket !== null ? config.lmtp.maxConnections : 0;
  const warning = descriptorLimitWarning(parseOpenFilesLimit(text), config.limits.maxConnections + lmtp);
  if (warning) log.warn(warning, {});
  return warning;
}
