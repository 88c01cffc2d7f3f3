// Unsolicited pushes of NOTIFY (RFC 5465 §3.1: the client listens "all the
// time") for one connection: at most one push in flight; a request while a
// command runs (outside IDLE) waits until the command's tagged reply; the
// connection's loop waits for a push in flight before the next command, so a
// push never interleaves with a command's output.
export class PushQueue {
  private inFlight: Promise<void> | null = null;
  private wanted = false;

  constructor(
    /** Whether a push may start now (no command running, or IDLE). */
    private readonly mayRun: () => boolean,
    private readonly push: () => Promise<void>,
    private readonly onError: (e: unknown) => void,
  ) {}

  /** Something is due: push now if allowed, else at the next `kick`. */
  request(): void {
    this.wanted = true;
    this.kick();
  }

  /** Starts a requested push if none is in flight and one may run. */
  kick(): void {
    if (!this.wanted || this.inFlight || !this.mayRun()) return;
    this.inFlight = (async () => {
      while (this.wanted && this.mayRun()) {
        this.wanted = false;
        await this.push();
      }
    })()
      .catch(this.onError)
      .finally(() => {
        this.inFlight = null;
        this.kick();
      });
  }

  /** Resolves once no push is in flight. */
  async settled(): Promise<void> {
    while (this.inFlight) await this.inFlight;
  }
}
