// UIDONLY — RFC 9586 §3: once enabled (ENABLE UIDONLY, RFC 5161), the client
// uses no message sequence numbers and gets none: commands that take or
// return them are refused with BAD [UIDREQUIRED] (the non-UID FETCH, STORE,
// SEARCH, SORT, THREAD, COPY, MOVE and REPLACE; a sequence-set search key in
// the UID forms; QRESYNC's message sequence match data in SELECT/EXAMINE).
// Message data goes out as `* <uid> UIDFETCH (...)` and expunges as VANISHED
// (src/session/view.ts, fetch-items.ts, store.ts, select.ts). "$" (SEARCHRES)
// and "UID <set>" / ALL in search programs stay allowed: they are UIDs.
import type { Criterion } from '../search/program.js';
import type { Session } from '../session/session.js';
import { ImapError } from './types.js';

/** Commands whose numbers are message sequence numbers. */
const SEQUENCE_COMMANDS = new Set(['FETCH', 'STORE', 'SEARCH', 'SORT', 'THREAD', 'COPY', 'MOVE', 'REPLACE']);

function usesSequenceNumbers(c: Criterion): boolean {
  switch (c.k) {
    case 'seq': return !c.set.saved; // "$" is the saved result, kept as UIDs
    case 'not': return usesSequenceNumbers(c.c);
    case 'or': return usesSequenceNumbers(c.a) || usesSequenceNumbers(c.b);
    case 'and': return c.cs.some(usesSequenceNumbers);
    default: return false;
  }
}

function uidRequired(what: string): ImapError {
  return new ImapError('BAD', `${what} with UIDONLY enabled (RFC 9586)`, 'UIDREQUIRED');
}

/** Before parsing: the command itself deals in sequence numbers. */
export function refuseCommand(session: Session, name: string): ImapError | null {
  if (!session.uidOnly || !SEQUENCE_COMMANDS.has(name)) return null;
  return uidRequired(`${name} uses message sequence numbers; use UID ${name}`);
}

/** After parsing: sequence numbers inside the arguments (a search key, QRESYNC seq-match data). */
export function refuseArguments(session: Session, parsed: unknown): ImapError | null {
  if (!session.uidOnly || parsed === null || typeof parsed !== 'object') return null;
  const program = (parsed as { program?: Criterion | null }).program;
  if (program && usesSequenceNumbers(program)) return uidRequired('A sequence-set search key is not allowed');
  const q = (parsed as { qresync?: { seqMatch?: unknown } | null }).qresync;
  if (q?.seqMatch) return uidRequired('QRESYNC message sequence match data is not allowed');
  return null;
}

/** `<seq> FETCH` or, with UIDONLY, `<uid> UIDFETCH` (RFC 9586 §3): the head of a message data response. */
export function fetchHead(session: Session, seq: number, uid: number): string {
  return session.uidOnly ? `${uid} UIDFETCH` : `${seq} FETCH`;
}
