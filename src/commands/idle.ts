// IDLE — RFC 2177, RFC 9051 §6.3.13. Updates are pushed the moment the
// change feed delivers them; the connection sends a keepalive while idling.
import { defineCommand, bad } from './types.js';
import { ArgReader } from './args.js';

export default defineCommand({
  name: 'IDLE',
  states: ['auth', 'selected'],
  rfc: 'RFC 2177, RFC 9051 §6.3.13',
  parse(args) {
    new ArgReader(args).end();
  },
  async run(ctx) {
    ctx.out.continuation('idling');
    ctx.conn.setIdling(true);
    let line: Buffer;
    try {
      if (ctx.session.selected) {
        await ctx.settled();
        ctx.flushUpdates(true);
      }
      line = await ctx.out.readLine();
    } finally {
      ctx.conn.setIdling(false);
    }
    if (line.toString('latin1').toUpperCase() !== 'DONE') throw bad('Expected DONE');
    return { text: 'IDLE terminated' };
  },
});
