// The RFC 1939 §8 maildrop lock (pop3.lockSession, Dovecot's
// pop3_lock_session): while one POP3 session of a user is in the TRANSACTION
// state, another gets -ERR [IN-USE] (RFC 2449 §8.1.2). It is given back in
// the UPDATE state before QUIT's +OK (so a client that saw +OK may log in
// again at once), or when the connection ends.
//
// Where it is held:
// - A store that offers MailStore.maildropLocks (PostgreSQL: an advisory lock
//   per user, src/store/postgres/user-locks.ts) holds it across every node
//   and worker of the store; `quire serve` uses that whenever the store has it.
// - Otherwise, one process: a map here (LocalMaildropLocks). With
//   `quire serve --workers N` a user's two sessions may land on different
//   workers, so there the lock is the primary's (Pop3LockHub), asked over the
//   cluster IPC channel as the connection caps are (src/server/admission.ts):
//   one round trip per login and one per release. The primary keeps each
//   worker's locks and drops them all when that worker exits, so a crashed
//   worker never leaves a maildrop locked.
//
//   worker -> primary   {type:'p3lock:acquire', req, user, holder}
//   primary -> worker   {type:'p3lock:answer', req, ok}
//   worker -> primary   {type:'p3lock:release', req, user, holder}
//   primary -> worker   {type:'p3lock:released', req}

/** Where a session takes and gives back its maildrop lock. `holder` names the session. */
export interface MaildropLocks {
  /**
   * True when `holder` now holds `userId`'s lock (or already did); false when
   * another session does; rejects when the lock service is unavailable.
   * `onLost` runs if a lock held elsewhere (the database) is lost meanwhile.
   */
  acquire(userId: number, holder: string, onLost: () => void): boolean | Promise<boolean>;
  /** Gives the lock back if `holder` has it (idempotent); resolves once another session can take it. */
  release(userId: number, holder: string): void | Promise<void>;
}

/** The locks of one process. */
export class LocalMaildropLocks implements MaildropLocks {
  private readonly held = new Map<number, string>();

  acquire(userId: number, holder: string): boolean {
    const h = this.held.get(userId);
    if (h !== undefined && h !== holder) return false;
    this.held.set(userId, holder);
    return true;
  }

  release(userId: number, holder: string): void {
    if (this.held.get(userId) === holder) this.held.delete(userId);
  }

  get size(): number {
    return this.held.size;
  }
}

type LockMessage =
  | { type: 'p3lock:acquire'; req: number; user: number; holder: string }
  | { type: 'p3lock:answer'; req: number; ok: boolean }
  | { type: 'p3lock:release'; req?: number; user: number; holder: string }
  | { type: 'p3lock:released'; req: number };

function lockMessage(m: unknown): LockMessage | null {
  if (typeof m !== 'object' || m === null) return null;
  const t = (m as { type?: unknown }).type;
  return typeof t === 'string' && t.startsWith('p3lock:') ? (m as LockMessage) : null;
}

/** How long a worker waits for the primary's answer (a map lookup there) before refusing the login. */
export const POP3_LOCK_ANSWER_TIMEOUT_MS = 5_000;

/** The primary's view of one worker (node's cluster.Worker). */
export interface LockPort {
  readonly id: number;
  send(message: unknown): unknown;
  isConnected(): boolean;
}

/** The primary's side: every worker's locks, released together when a worker exits. */
export class Pop3LockHub {
  private readonly locks = new LocalMaildropLocks();
  /** Worker id -> the locks its sessions hold (user -> holder). */
  private readonly byWorker = new Map<number, Map<number, string>>();

  /** Starts serving a worker; returns the handler for its messages (others than `p3lock:` are ignored). */
  attach(port: LockPort): (m: unknown) => void {
    const mine = new Map<number, string>();
    this.byWorker.set(port.id, mine);
    return (m: unknown) => {
      const msg = lockMessage(m);
      if (!msg || this.byWorker.get(port.id) !== mine) return;
      if (msg.type === 'p3lock:answer' || msg.type === 'p3lock:released') return;
      const user = Number(msg.user);
      if (!Number.isSafeInteger(user)) return;
      // Holders are unique per worker only: the worker id makes them unique here.
      const holder = `${port.id}/${String(msg.holder)}`;
      if (msg.type === 'p3lock:acquire') {
        const ok = this.locks.acquire(user, holder);
        if (ok) mine.set(user, holder);
        if (port.isConnected()) port.send({ type: 'p3lock:answer', req: msg.req, ok });
      } else {
        this.locks.release(user, holder);
        if (mine.get(user) === holder) mine.delete(user);
        if (typeof msg.req === 'number' && port.isConnected()) port.send({ type: 'p3lock:released', req: msg.req });
      }
    };
  }

  /** A worker has exited: the maildrops its sessions had locked are free again. */
  detach(id: number): void {
    const mine = this.byWorker.get(id);
    if (!mine) return;
    this.byWorker.delete(id);
    for (const [user, holder] of mine) this.locks.release(user, holder);
  }

  /** Locks held (tests). */
  get size(): number {
    return this.locks.size;
  }
}

/** The IPC endpoint a worker talks through (node's `process` in a cluster worker). */
export interface LockChannel {
  send(message: unknown): unknown;
  on(event: 'message', fn: (m: unknown) => void): unknown;
}

/** A worker's side: asks the primary. */
export class ClusterMaildropLocks implements MaildropLocks {
  private reqs = 0;
  private readonly waiting = new Map<number, (ok: boolean) => void>();
  private readonly releasing = new Map<number, () => void>();

  constructor(
    private readonly channel: LockChannel,
    private readonly answerTimeoutMs = POP3_LOCK_ANSWER_TIMEOUT_MS,
  ) {
    channel.on('message', (m: unknown) => {
      const msg = lockMessage(m);
      if (msg?.type === 'p3lock:released') {
        const done = this.releasing.get(msg.req);
        this.releasing.delete(msg.req);
        return done?.();
      }
      if (msg?.type !== 'p3lock:answer') return;
      const done = this.waiting.get(msg.req);
      this.waiting.delete(msg.req);
      done?.(msg.ok === true);
    });
  }

  private send(msg: LockMessage): boolean {
    try {
      this.channel.send(msg);
      return true;
    } catch {
      return false;
    }
  }

  acquire(userId: number, holder: string): Promise<boolean> {
    const req = ++this.reqs;
    return new Promise((resolve) => {
      // No answer in time (a wedged primary): refuse. A late grant is undone by the release that
      // the session's close sends after it on the same ordered channel.
      const timer = setTimeout(() => {
        if (this.waiting.delete(req)) resolve(false);
      }, this.answerTimeoutMs);
      timer.unref();
      this.waiting.set(req, (ok) => {
        clearTimeout(timer);
        resolve(ok);
      });
      if (!this.send({ type: 'p3lock:acquire', req, user: userId, holder })) {
        clearTimeout(timer);
        this.waiting.delete(req);
        resolve(false);
      }
    });
  }

  release(userId: number, holder: string): Promise<void> {
    const req = ++this.reqs;
    return new Promise((resolve) => {
      // No answer in time: the release was sent (or the channel is gone, and the primary drops our locks).
      const timer = setTimeout(() => {
        if (this.releasing.delete(req)) resolve();
      }, this.answerTimeoutMs);
      timer.unref();
      this.releasing.set(req, () => {
        clearTimeout(timer);
        resolve();
      });
      if (!this.send({ type: 'p3lock:release', req, user: userId, holder })) {
        clearTimeout(timer);
        this.releasing.delete(req);
        resolve();
      }
    });
  }
}
