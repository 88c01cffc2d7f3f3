// ENABLE — RFC 5161 §3.1; IMAP4rev2 (RFC 9051 §6.3.1); UTF8=ACCEPT (RFC 6855
// §3: valid only in the authenticated state). Only extensions we implement are
// enabled; others are ignored silently, as RFC 5161 §3.1 requires.
import { defineCommand, bad } from './types.js';
import type { Enableable } from '../session/session.js';
import { ArgReader } from './args.js';

const ENABLEABLE = new Map<string, Enableable>([
  ['IMAP4REV2', 'IMAP4REV2'],
  ['CONDSTORE', 'CONDSTORE'], // RFC 7162 §3.1
  ['QRESYNC', 'QRESYNC'], // RFC 7162 §3.2.3 (implies CONDSTORE)
  // RFC 6855 §3: UTF-8 in quoted strings both ways, UTF-8 mailbox names, the APPEND UTF8 data
  // extension (§4), no SEARCH CHARSET (§3); messages are no longer downgraded (RFC 6857).
  ['UTF8=ACCEPT', 'UTF8=ACCEPT'],
  ['UIDONLY', 'UIDONLY'], // RFC 9586 §3
]);

export default defineCommand({
  name: 'ENABLE',
  states: ['auth'],
  rfc: 'RFC 5161 §3.1, RFC 9051 §6.3.1',
  parse(args) {
    const r = new ArgReader(args);
    if (r.done) throw bad('ENABLE needs at least one capability');
    const caps: string[] = [];
    while (!r.done) caps.push(r.atom('capability').toUpperCase());
    return caps;
  },
  async run(ctx, caps) {
    const newly: string[] = [];
    for (const c of caps) {
      const e = ENABLEABLE.get(c);
      if (!e || ctx.session.enabled.has(e)) continue;
      ctx.session.enabled.add(e);
      newly.push(e === 'IMAP4REV2' ? 'IMAP4rev2' : e);
    }
    // RFC 5161 §3.1: the ENABLED response lists what this command newly enabled.
    ctx.out.untagged(newly.length ? `ENABLED ${newly.join(' ')}` : 'ENABLED');
  },
});
