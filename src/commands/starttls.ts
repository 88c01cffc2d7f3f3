// STARTTLS — RFC 9051 §6.2.1. The upgrade happens right after the tagged OK;
// bytes the client pipelined after STARTTLS are discarded, never executed
// (RFC 9051 §11.1, STARTTLS command injection).
import { defineCommand, no } from './types.js';
import { ArgReader } from './args.js';

export default defineCommand({
  name: 'STARTTLS',
  states: ['notauth'],
  rfc: 'RFC 9051 §6.2.1',
  parse(args) {
    new ArgReader(args).end();
  },
  async run(ctx) {
    if (ctx.session.secure) throw no('TLS is already active', 'CLIENTBUG');
    if (!ctx.conn.tlsAvailable) throw no('TLS is not available', 'UNAVAILABLE');
    ctx.conn.startTls();
    return { text: 'Begin TLS negotiation now' };
  },
});
