// The dispatcher: checks state centrally, runs the command, and writes exactly
// one tagged reply (STYLE.md habit 7). Pending mailbox updates are flushed
// before the tagged reply, with EXPUNGE held back where RFC 9051 §7.5.1 forbids it.

import type { Token } from '../wire/types.js';
import { responseText } from '../wire/index.js';
import { COMMANDS } from './registry.js';
import type { CommandContext } from './types.js';
import { toImapError } from './errors.js';
import { refuseArguments, refuseCommand } from './uidonly.js';
import type { Logger } from '../server/options.js';
import { checkQuotedUtf8 } from './utf8.js';

export interface DispatchOutcome {
  /** The tagged line to write, without CRLF. */
  tagged: string;
  status: 'OK' | 'NO' | 'BAD';
}

function tagged(tag: string, status: 'OK' | 'NO' | 'BAD', text: string, code?: string): string {
  return `${tag} ${status} ${code ? `[${code}] ` : ''}${responseText(text)}`;
}

export async function dispatch(ctx: CommandContext, args: Token[], log: Logger): Promise<DispatchOutcome> {
  const spec = COMMANDS.get(ctx.name);
  const s = ctx.session;
  if (!spec) {
    return { tagged: tagged(ctx.tag, 'BAD', 'Unknown command', 'CLIENTBUG'), status: 'BAD' };
  }
  if (!spec.states.includes(s.state)) {
    const why =
      s.state === 'notauth' ? 'Not authenticated' : s.state === 'auth' && spec.states.includes('selected') ? 'No mailbox selected' : 'Command not valid in this state';
    return { tagged: tagged(ctx.tag, 'BAD', why, 'CLIENTBUG'), status: 'BAD' };
  }
  const expungeAllowed = spec.expungeAllowed !== false;
  const refused = refuseCommand(s, ctx.name);
  if (refused) return { tagged: tagged(ctx.tag, 'BAD', refused.message, refused.code), status: 'BAD' };
  try {
    checkQuotedUtf8(s, args); // RFC 6855 §3
    const parsed = spec.parse(args, s);
    const refusedArgs = refuseArguments(s, parsed);
    if (refusedArgs) throw refusedArgs;
    const result = await spec.run(ctx, parsed);
    // RFC 9051 §6.1.3: LOGOUT answers `* BYE` and then the tagged OK, nothing in between.
    if (s.selected && s.state !== 'logout') {
      await ctx.settled();
      await ctx.flushUpdates(expungeAllowed);
    }
    const status = result?.status ?? 'OK';
    return { tagged: tagged(ctx.tag, status, result?.text ?? `${ctx.name} completed`, result?.code), status };
  } catch (e) {
    const { error, unexpected, logId } = toImapError(e);
    if (unexpected) log.error('command failed', { command: ctx.name, logId, error: e instanceof Error ? e.stack ?? e.message : String(e) });
    if (s.selected && error.status === 'NO') {
      await ctx.settled();
      await ctx.flushUpdates(expungeAllowed);
    }
    return { tagged: tagged(ctx.tag, error.status, error.message, error.code), status: error.status };
  }
}

