// NOOP — RFC 9051 §6.1.2: does nothing, but lets pending mailbox updates out.
// CHECK — RFC 3501 §6.4.1 (rev1 only; removed in RFC 9051, Appendix E): a NOOP for us,
// since every change is already durable when its command completes.
import { defineCommand } from './types.js';
import { ArgReader } from './args.js';

export const noop = defineCommand({
  name: 'NOOP',
  states: ['notauth', 'auth', 'selected'],
  rfc: 'RFC 9051 §6.1.2',
  parse(args) {
    new ArgReader(args).end();
  },
  async run() {},
});

export const check = defineCommand({
  name: 'CHECK',
  states: ['selected'],
  rfc: 'RFC 3501 §6.4.1',
  parse(args) {
    new ArgReader(args).end();
  },
  async run() {},
});
