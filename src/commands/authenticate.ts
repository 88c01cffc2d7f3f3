// AUTHENTICATE — RFC 9051 §6.2.2 with SASL-IR (RFC 4959). Mechanisms live in
// src/auth/sasl.ts; this file carries the base64 exchange: "*" cancels
// (BAD), "=" is an empty initial response, invalid base64 is BAD.
import { defineCommand, bad, no } from './types.js';
import { ArgReader } from './args.js';
import { createMechanism, decodeSaslBase64 } from '../auth/sasl.js';
import { completeLogin } from './login.js';

/** Most challenge/response rounds per AUTHENTICATE (PLAIN needs one). */
const MAX_SASL_ROUNDS = 5;

export default defineCommand({
  name: 'AUTHENTICATE',
  states: ['notauth'],
  rfc: 'RFC 9051 §6.2.2, RFC 4959, RFC 4616',
  parse(args) {
    const r = new ArgReader(args);
    const mech = r.atom('mechanism').toUpperCase();
    let initial: Buffer | null = null;
    if (!r.done) {
      const ir = r.atom('initial response');
      if (ir === '=') initial = Buffer.alloc(0);
      else {
        initial = decodeSaslBase64(ir);
        if (!initial) throw bad('Invalid base64 in initial response');
      }
    }
    r.end();
    return { mech, initial };
  },
  async run(ctx, { mech, initial }) {
    if (!ctx.plaintextAllowed()) throw no('Use STARTTLS before AUTHENTICATE', 'PRIVACYREQUIRED');
    const m = createMechanism(mech);
    if (!m) throw no(`Unsupported mechanism ${mech.slice(0, 32)}`, 'CANNOT');
    let response: Buffer | null = initial;
    for (let round = 0; round < MAX_SASL_ROUNDS; round++) {
      if (response === null) {
        ctx.out.continuation('');
        const line = (await ctx.out.readLine()).toString('latin1');
        if (line === '*') throw bad('Authentication cancelled');
        response = line === '' ? Buffer.alloc(0) : decodeSaslBase64(line);
        if (!response) throw bad('Invalid base64 in response');
      }
      const step = m.step(response);
      response = null;
      if (step.type === 'challenge') {
        ctx.out.continuation(step.data.toString('base64'));
        const line = (await ctx.out.readLine()).toString('latin1');
        if (line === '*') throw bad('Authentication cancelled');
        response = line === '' ? Buffer.alloc(0) : decodeSaslBase64(line);
        if (!response) throw bad('Invalid base64 in response');
        continue;
      }
      if (step.type === 'fail') {
        throw no('Authentication failed', 'AUTHENTICATIONFAILED');
      }
      const info = await ctx.auth.verify(step.authcid, step.password, ctx.session.remoteAddress);
      if (!info) throw no('Authentication failed', 'AUTHENTICATIONFAILED');
      return completeLogin(ctx, info);
    }
    throw no('Too many authentication rounds', 'LIMIT');
  },
});
