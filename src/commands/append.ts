// APPEND — RFC 9051 §6.3.12; MULTIAPPEND (RFC 3502: all messages or none);
// APPENDUID (RFC 4315 §3); literal8 for binary content (RFC 3516 §4.4);
// APPENDLIMIT (RFC 7889) enforced with [TOOBIG]; the UTF8 data extension of
// UTF8=ACCEPT (RFC 6855 §4, in utf8.ts); CATENATE (RFC 4469) parts in catenate.ts.
import { defineCommand, bad, no } from './types.js';
import { ArgReader, flagArgs, isAtom } from './args.js';
import { parseDateTime, formatSequenceSet } from '../wire/index.js';
import type { AppendInput } from '../store/types.js';
import { encodeBinaryParts } from '../mime/index.js';
import type { Session } from '../session/session.js';
import { unwrapMisframedUtf8, utf8AppendData } from './utf8.js';
import { parseCatenate, assembleCatenated, type AppendItem } from './catenate.js';

/** Most messages in one MULTIAPPEND command. */
export const MAX_MULTIAPPEND = 1000;

/**
 * One message of APPEND (RFC 9051 §6.3.12 / RFC 3502 append-message), also
 * REPLACE's (RFC 8508 §5): [flag-list] [date-time] literal.
 */
export function appendMessage(r: ArgReader, session?: Session, partsSoFar = 0): AppendItem {
  let flags: string[] = [];
  let internalDate: number | undefined;
  let internalTz: number | undefined;
  let t = r.next('message');
  if (t.kind === 'list') {
    flags = flagArgs(t.items);
    t = r.next('message');
  }
  if (t.kind === 'string' && !t.literal) {
    const dt = parseDateTime(t.bytes.toString('latin1'));
    if (!dt) throw bad('Invalid date-time');
    internalDate = dt.ms;
    internalTz = dt.tzOffsetMinutes; // RFC 9051 §2.3.3: kept and returned as given
    t = r.next('message');
  }
  if (session && isAtom(t, 'UTF8')) {
    const data = utf8AppendData(r.next('UTF8 data'), session); // RFC 6855 §4
    return { data, flags, internalDate, internalTz };
  }
  // RFC 4469 §5: append-data =/ "CATENATE" SP "(" cat-part *(SP cat-part) ")".
  if (t.kind === 'atom' && !t.section && t.value.toUpperCase() === 'CATENATE') {
    return { data: Buffer.alloc(0), flags, internalDate, internalTz, catenate: parseCatenate(r.next('CATENATE list'), partsSoFar) };
  }
  if (isAtom(t, 'UTF8') || isAtom(t, 'CATENATE')) throw bad(`${t.value} is not supported`);
  if (t.kind !== 'string' || !t.literal) throw bad('Message must be a literal');
  const data = session && !t.literal8 ? unwrapMisframedUtf8(t.bytes, session) : t.bytes;
  return { data, flags, internalDate, internalTz };
}

export default defineCommand({
  name: 'APPEND',
  states: ['auth', 'selected'],
  rfc: 'RFC 9051 §6.3.12, RFC 3502, RFC 4315 §3, RFC 3516 §4.4',
  parse(args, session) {
    const r = new ArgReader(args);
    const mailbox = r.mailbox(session);
    const items: AppendItem[] = [];
    let parts = 0;
    while (!r.done) {
      const it = appendMessage(r, session, parts);
      parts += it.catenate?.length ?? 0;
      items.push(it);
      if (items.length > MAX_MULTIAPPEND) throw bad('Too many messages in one APPEND', 'LIMIT');
    }
    if (items.length === 0) throw bad('Missing message');
    return { mailbox, items };
  },
  async run(ctx, a) {
    const { mailbox } = a;
    const items = await assembleCatenated(ctx, a.items);
    for (const it of items) {
      if (it.data.length > ctx.limits.maxMessageSize) throw no('Message too big', 'TOOBIG');
    }
    const info = await ctx.store.getMailbox(ctx.session.user!.id, mailbox);
    // RFC 9051 §6.3.12: a missing destination answers NO [TRYCREATE].
    if (!info) throw no('Mailbox does not exist', 'TRYCREATE');
    // RFC 3516 §4.3 / RFC 9051 §4.3: binary or NUL-carrying parts are stored base64-encoded
    // (as Dovecot does), so BODY[] never carries NULs in an ordinary literal; BINARY[n] decodes them exactly.
    const stored = items.map((it) => ({ ...it, data: encodeBinaryParts(it.data) ?? it.data }));
    const res = await ctx.store.appendMessages(info.id, stored);
    return { code: `APPENDUID ${res.uidValidity} ${formatSequenceSet(res.uids)}`, text: 'APPEND completed' };
  },
});
