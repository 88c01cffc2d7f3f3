// The PROXY protocol settings (proxyProtocol.* in config.ts) as each
// listener's options (src/server/proxy-protocol.ts).
import { TrustedNetworks, type ProxyPolicy } from '../server/proxy-protocol.js';
import type { QuireConfig } from './config.js';

/** Each listener's PROXY protocol options, for the listeners it is on (none when proxyProtocol.from is empty). */
export function proxyPolicy(config: Pick<QuireConfig, 'proxyProtocol'>): ProxyPolicy {
  const p = config.proxyProtocol;
  if (p.from.length === 0) return {};
  const o = { trusted: new TrustedNetworks(p.from), timeoutMs: p.timeoutMs };
  return Object.fromEntries(p.listeners.map((l) => [l, o]));
}
