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
      // RFC 5465 §4: with NOTIFY, IDLE sends only what it asked for (no SELECTED group: nothing of the mailbox).
      if (ctx.session.selected && (!ctx.session.notify || ctx.session.notify.selected)) {
        await ctx.settled();
        await ctx.flushUpdates(true);
      }
      line = await ctx.out.readLine();
    } finally {
      ctx.conn.setIdling(false);
    }
    if (line.toString('latin1').toUpperCase() !== 'DONE') throw bad('Expected DONE');
    return { text: 'IDLE terminated' };
  },
});
