// LOGOUT — RFC 9051 §6.1.3: untagged BYE, then the tagged OK, then close.
import { defineCommand } from './types.js';
import { ArgReader } from './args.js';

export default defineCommand({
  name: 'LOGOUT',
  states: ['notauth', 'auth', 'selected'],
  rfc: 'RFC 9051 §6.1.3',
  parse(args) {
    new ArgReader(args).end();
  },
  async run(ctx) {
    ctx.session.state = 'logout';
    ctx.out.untagged('BYE Logging out');
    ctx.conn.closeAfterReply();
  },
});
