// AUTHENTICATE — RFC 9051 §6.2.2 with SASL-IR (RFC 4959). Mechanisms live in
// src/auth (mechanisms.ts is the registry); this file carries the base64
// exchange: "*" cancels (BAD), "=" is an empty initial response, invalid
// base64 is BAD. IMAP has no "additional data with success": a mechanism's
// last server message (SCRAM's server-final) goes out as a challenge, which
// the client answers with an empty line (RFC 9051 §6.2.2, RFC 4422 §5 item 6).
import { defineCommand, bad, no } from './types.js';
import { ArgReader } from './args.js';
import { decodeSaslBase64 } from '../auth/sasl.js';
import { startExchange } from '../auth/mechanisms.js';
import { completeLogin } from './login.js';

/** Most challenge/response rounds per AUTHENTICATE (SCRAM needs three, OAUTHBEARER's error path two). */
const MAX_SASL_ROUNDS = 5;

export default defineCommand({
  name: 'AUTHENTICATE',
  states: ['notauth'],
  rfc: 'RFC 9051 §6.2.2, RFC 4959, RFC 4616, RFC 5802, RFC 7677, RFC 7628',
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
    const ex = startExchange(mech, ctx.authFacts(), ctx.auth);
    if (!ex) throw no(`Unsupported mechanism ${mech.slice(0, 32)}`, 'CANNOT');
    let response: Buffer | null = initial;
    for (let round = 0; round < MAX_SASL_ROUNDS; round++) {
      const step = await ex.step(response);
      if (step.type === 'failure') throw no('Authentication failed', 'AUTHENTICATIONFAILED');
      if (step.type === 'success') return completeLogin(ctx, step.login.user);
      ctx.out.continuation(step.data.toString('base64'));
      const line = (await ctx.out.readLine()).toString('latin1');
      if (line === '*') throw bad('Authentication cancelled');
      response = line === '' ? Buffer.alloc(0) : decodeSaslBase64(line);
      if (!response) throw bad('Invalid base64 in response');
    }
    throw no('Too many authentication rounds', 'LIMIT');
  },
});
