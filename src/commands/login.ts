// LOGIN — RFC 9051 §6.2.3. Refused with PRIVACYREQUIRED on an unprotected
// connection unless the admin allows it (LOGINDISABLED is then advertised).
// A failed login is answered only after the authenticator's growing delay.
import { defineCommand, no, type CommandContext } from './types.js';
import { ArgReader } from './args.js';
import type { UserInfo } from '../store/types.js';

export default defineCommand({
  name: 'LOGIN',
  states: ['notauth'],
  rfc: 'RFC 9051 §6.2.3',
  parse(args) {
    const r = new ArgReader(args);
    const user = r.astring('user name');
    const pass = r.astring('password');
    r.end();
    return { user: user.toString('utf8'), pass: pass.toString('utf8') };
  },
  async run(ctx, { user, pass }) {
    if (!ctx.plaintextAllowed()) throw no('Use STARTTLS before LOGIN', 'PRIVACYREQUIRED');
    const info = await ctx.auth.verify(user, pass, ctx.session.remoteAddress);
    if (!info) throw no('Authentication failed', 'AUTHENTICATIONFAILED');
    return completeLogin(ctx, info);
  },
});

/** Shared by LOGIN and AUTHENTICATE: enter the authenticated state (RFC 9051 §6.2). */
export async function completeLogin(ctx: CommandContext, info: UserInfo) {
  ctx.session.user = info;
  // The per-user caps are checked first: a refused login (NO [LIMIT]) leaves the session unauthenticated.
  try {
    await ctx.attachUser();
  } catch (e) {
    ctx.session.user = null;
    throw e;
  }
  ctx.session.state = 'auth';
  ctx.conn.authenticated();
  // RFC 9051 §6.2.2/§6.2.3: a server MAY include a CAPABILITY response code in the tagged OK.
  return { code: `CAPABILITY ${ctx.capabilities().join(' ')}`, text: 'Logged in' };
}

