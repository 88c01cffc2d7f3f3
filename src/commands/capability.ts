// CAPABILITY — RFC 9051 §6.1.1; capability list per state, RFC 9051 §7.2.2.
import { defineCommand } from './types.js';
import { ArgReader } from './args.js';

export default defineCommand({
  name: 'CAPABILITY',
  states: ['notauth', 'auth', 'selected'],
  rfc: 'RFC 9051 §6.1.1, §7.2.2',
  parse(args) {
    new ArgReader(args).end();
  },
  async run(ctx) {
    ctx.out.untagged(`CAPABILITY ${ctx.capabilities().join(' ')}`);
  },
});
