// INPROGRESS (RFC 9585): while a long command runs, `* OK [INPROGRESS ("tag"
// NIL NIL)]` now and then tells the client the server is still at it, so it
// does not give up on a SEARCH over 100k messages or a big COPY. The counts
// are NIL (the RFC lets a server that cannot tell say so). A response code
// only, never a capability: clients that do not know it ignore an untagged
// OK. Sent at a bounded rate: the first after `intervalMs`, then at most one
// per `intervalMs`; only for commands whose own responses are whole lines
// written at once (never inside a FETCH's streamed literal).
import { quoted } from '../wire/index.js';

/** Default interval between progress responses (and before the first). */
export const INPROGRESS_INTERVAL_MS = 10_000;

/** Commands that may run long over a big mailbox and write no partial response while they do. */
const LONG_COMMANDS = new Set([
  'SEARCH', 'UID SEARCH', 'SORT', 'UID SORT', 'THREAD', 'UID THREAD', 'ESEARCH',
  'COPY', 'UID COPY', 'MOVE', 'UID MOVE', 'EXPUNGE', 'UID EXPUNGE', 'STORE', 'UID STORE',
]);

export class ProgressReporter {
  private timer: NodeJS.Timeout | null = null;

  /** `emit` writes one untagged line (without "* " and CRLF) and sends it at once. */
  constructor(private readonly intervalMs: number, private readonly emit: (line: string) => void) {}

  start(tag: string, command: string): void {
    this.stop();
    if (this.intervalMs <= 0 || !LONG_COMMANDS.has(command)) return;
    // RFC 9585: the tag of the command in progress, as a quoted string; count and total unknown.
    const line = `OK [INPROGRESS (${quoted(tag)} NIL NIL)] Still working`;
    this.timer = setInterval(() => this.emit(line), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
