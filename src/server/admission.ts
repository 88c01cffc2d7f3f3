// Connection accounting and caps, shared by every protocol's listeners.
//
// A socket is counted from the moment it is accepted (before any TLS
// handshake) until it closes. While it has not authenticated it also counts
// against the pre-authentication caps: one global, set below the global cap so
// that unauthenticated sockets can never take the slots logged-in users need,
// and one per source address, so that one host cannot fill even that share.
// Once authenticated it counts per user and per user and source address
// (Dovecot's mail_max_userip_connections) instead.
//
// Addresses are counted by addressKey(): IPv4 as is, IPv6 by its /64 (one
// host usually owns a whole /64, so counting single addresses would be
// trivially evaded).
//
// With `quire serve --workers N` (src/cli/serve.ts) every worker would count
// only its own sockets, so a cap of 10 would allow 10 per worker. There the
// per-address pre-auth cap and the two per-user caps are the primary's
// (AdmissionHub): a worker's ClusterAdmission asks it over the IPC channel,
// one round trip per accepted socket and per login, and reports releases. The
// primary keeps each worker's tickets and releases them all when that worker
// exits, so a crash never leaks a slot. The overall and pre-auth totals stay
// per worker (each takes its share of maxConnections; cheap, and connections
// arrive round-robin), checked locally first so that a refused socket costs
// no round trip.
//
//   worker -> primary   {type:'adm:admit', req, ticket, address, max}
//   worker -> primary   {type:'adm:auth', req, ticket, user, maxUser, maxUserAddress}
//   primary -> worker   {type:'adm:answer', req, refusal}      (refusal: a Refusal or null)
//   worker -> primary   {type:'adm:release', ticket}          (no answer)
import { addressKey } from '../auth/authenticator.js';

export interface AdmissionLimits {
  /** Sockets overall, TLS handshakes and unauthenticated ones included. */
  maxConnections: number;
  /** Unauthenticated sockets overall; below maxConnections. */
  maxPreAuthConnections: number;
  /** Unauthenticated sockets from one source address (IPv6: one /64). */
  maxPreAuthConnectionsPerAddress: number;
  /** Authenticated sessions of one user. */
  maxConnectionsPerUser: number;
  /** Authenticated sessions of one user from one source address. */
  maxConnectionsPerUserAddress: number;
}

/** Why a socket or a login was refused: names the limit, for the log and the reply. */
export type Refusal =
  | 'maxConnections'
  | 'maxPreAuthConnections'
  | 'maxPreAuthConnectionsPerAddress'
  | 'maxConnectionsPerUser'
  | 'maxConnectionsPerUserAddress';

/** One accepted socket's place in the counts. release() is idempotent. */
export interface Ticket {
  readonly address: string;
  /**
   * Moves the socket from the pre-auth counts to `userId`'s; null when allowed, else the limit that refused it (the
   * socket then stays pre-auth). A promise when the counts are another process's (ClusterAdmission).
   */
  authenticate(userId: number): Refusal | null | Promise<Refusal | null>;
  release(): void;
}

/** What the listeners count sockets with: Admission in one process, ClusterAdmission in a worker of a cluster. */
export interface AdmissionControl {
  readonly connections: number;
  readonly preAuthConnections: number;
  /** Counts a new socket, or names the cap it would exceed (a promise when another process decides). */
  admit(remoteAddress: string): Ticket | Refusal | Promise<Ticket | Refusal>;
}

/** A local ticket: decides at once. */
export interface LocalTicket extends Ticket {
  authenticate(userId: number, limits?: AdmissionLimits): Refusal | null;
}

function inc(m: Map<string, number>, k: string): void {
  m.set(k, (m.get(k) ?? 0) + 1);
}

function dec(m: Map<string, number>, k: string): void {
  const n = (m.get(k) ?? 1) - 1;
  if (n <= 0) m.delete(k);
  else m.set(k, n);
}

export class Admission implements AdmissionControl {
  private total = 0;
  private preAuth = 0;
  private readonly preAuthByAddress = new Map<string, number>();
  private readonly byUser = new Map<string, number>();
  private readonly byUserAddress = new Map<string, number>();

  /** `limits` is read at every decision, so a reload takes effect for new sockets and logins. */
  constructor(private readonly limits: () => AdmissionLimits) {}

  get connections(): number {
    return this.total;
  }

  get preAuthConnections(): number {
    return this.preAuth;
  }

  /** Counts a new socket, or names the cap it would exceed (`l`: limits other than the configured ones, for AdmissionHub). */
  admit(remoteAddress: string, l: AdmissionLimits = this.limits()): LocalTicket | Refusal {
    const address = addressKey(remoteAddress || 'unknown');
    if (this.total >= l.maxConnections) return 'maxConnections';
    if (this.preAuth >= l.maxPreAuthConnections) return 'maxPreAuthConnections';
    if ((this.preAuthByAddress.get(address) ?? 0) >= l.maxPreAuthConnectionsPerAddress) return 'maxPreAuthConnectionsPerAddress';
    this.total++;
    this.preAuth++;
    inc(this.preAuthByAddress, address);
    let state: 'preauth' | 'user' | 'released' = 'preauth';
    let userKey = '';
    let userAddressKey = '';
    return {
      address,
      authenticate: (userId: number, lim: AdmissionLimits = this.limits()): Refusal | null => {
        if (state !== 'preauth') return null;
        const u = String(userId);
        const ua = `${userId} ${address}`;
        if ((this.byUser.get(u) ?? 0) >= lim.maxConnectionsPerUser) return 'maxConnectionsPerUser';
        if ((this.byUserAddress.get(ua) ?? 0) >= lim.maxConnectionsPerUserAddress) return 'maxConnectionsPerUserAddress';
        this.preAuth--;
        dec(this.preAuthByAddress, address);
        inc(this.byUser, u);
        inc(this.byUserAddress, ua);
        userKey = u;
        userAddressKey = ua;
        state = 'user';
        return null;
      },
      release: () => {
        if (state === 'released') return;
        this.total--;
        if (state === 'preauth') {
          this.preAuth--;
          dec(this.preAuthByAddress, address);
        } else {
          dec(this.byUser, userKey);
          dec(this.byUserAddress, userAddressKey);
        }
        state = 'released';
      },
    };
  }
}

// ---- across the workers of a cluster

/** The IPC endpoint a worker talks through (node's `process` in a cluster worker). */
export interface AdmissionChannel {
  send(message: unknown): unknown;
  on(event: 'message', fn: (m: unknown) => void): unknown;
}

/** The primary's view of one worker (node's cluster.Worker). */
export interface AdmissionPort {
  readonly id: number;
  send(message: unknown): unknown;
  isConnected(): boolean;
}

type AdmissionMessage =
  | { type: 'adm:admit'; req: number; ticket: number; address: string; max: number }
  | { type: 'adm:auth'; req: number; ticket: number; user: number; maxUser: number; maxUserAddress: number }
  | { type: 'adm:answer'; req: number; refusal: Refusal | null }
  | { type: 'adm:release'; ticket: number };

function admissionMessage(m: unknown): AdmissionMessage | null {
  if (typeof m !== 'object' || m === null) return null;
  const t = (m as { type?: unknown }).type;
  return typeof t === 'string' && t.startsWith('adm:') ? (m as AdmissionMessage) : null;
}

/**
 * How long a worker waits for the primary's admission answer (one map lookup
 * there: microseconds normally) before refusing the connection or login
 * (docs/limits.md).
 */
export const ADMISSION_ANSWER_TIMEOUT_MS = 5_000;

/** Caps the primary does not apply (a worker checks its own share of these). */
const UNCAPPED = Number.MAX_SAFE_INTEGER;

/**
 * The primary's side: one Admission holding every worker's sockets for the
 * per-address pre-auth cap and the per-user caps, with the limit values each
 * request carries (a worker's configuration, reloads included). Decisions are
 * synchronous map lookups; the primary serves no sessions.
 */
export class AdmissionHub {
  private readonly counts = new Admission(() => this.open(UNCAPPED, UNCAPPED, UNCAPPED));
  private readonly workers = new Map<number, Map<number, LocalTicket>>();

  private open(maxPreAuthConnectionsPerAddress: number, maxConnectionsPerUser: number, maxConnectionsPerUserAddress: number): AdmissionLimits {
    return { maxConnections: UNCAPPED, maxPreAuthConnections: UNCAPPED, maxPreAuthConnectionsPerAddress, maxConnectionsPerUser, maxConnectionsPerUserAddress };
  }

  /** Starts serving a worker; returns the handler for its messages (others than `adm:` are ignored). */
  attach(port: AdmissionPort): (m: unknown) => void {
    const tickets = new Map<number, LocalTicket>();
    this.workers.set(port.id, tickets);
    const answer = (req: number, refusal: Refusal | null): void => {
      if (port.isConnected()) port.send({ type: 'adm:answer', req, refusal });
    };
    return (m: unknown) => {
      const msg = admissionMessage(m);
      if (!msg || this.workers.get(port.id) !== tickets) return;
      if (msg.type === 'adm:admit') {
        const t = this.counts.admit(String(msg.address), this.open(num(msg.max), UNCAPPED, UNCAPPED));
        if (typeof t === 'string') return answer(msg.req, t);
        tickets.get(msg.ticket)?.release();
        tickets.set(msg.ticket, t);
        answer(msg.req, null);
      } else if (msg.type === 'adm:auth') {
        const t = tickets.get(msg.ticket);
        answer(msg.req, t ? t.authenticate(num(msg.user), this.open(UNCAPPED, num(msg.maxUser), num(msg.maxUserAddress))) : null);
      } else if (msg.type === 'adm:release') {
        tickets.get(msg.ticket)?.release();
        tickets.delete(msg.ticket);
      }
    };
  }

  /** A worker has exited: every socket it had counted is released. */
  detach(id: number): void {
    const tickets = this.workers.get(id);
    if (!tickets) return;
    this.workers.delete(id);
    for (const t of tickets.values()) t.release();
  }

  /** Totals over all workers (for tests and metrics). */
  get preAuthConnections(): number {
    return this.counts.preAuthConnections;
  }

  get connections(): number {
    return this.counts.connections;
  }
}

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

/**
 * A worker's admission: its own counts first (its share of the totals; a
 * refusal there costs no round trip), then the primary's for the caps that
 * must hold across workers.
 */
export class ClusterAdmission implements AdmissionControl {
  private readonly local: Admission;
  private tickets = 0;
  private reqs = 0;
  private readonly waiting = new Map<number, (r: Refusal | null) => void>();

  constructor(
    private readonly channel: AdmissionChannel,
    private readonly limits: () => AdmissionLimits,
    private readonly answerTimeoutMs = ADMISSION_ANSWER_TIMEOUT_MS,
  ) {
    this.local = new Admission(limits);
    channel.on('message', (m: unknown) => {
      const msg = admissionMessage(m);
      if (msg?.type !== 'adm:answer') return;
      const done = this.waiting.get(msg.req);
      this.waiting.delete(msg.req);
      done?.(msg.refusal ?? null);
    });
  }

  get connections(): number {
    return this.local.connections;
  }

  get preAuthConnections(): number {
    return this.local.preAuthConnections;
  }

  /** Sends `msg`; false when the channel to the primary is gone (the worker exits then: see serve.ts). */
  private send(msg: AdmissionMessage): boolean {
    try {
      this.channel.send(msg);
      return true;
    } catch {
      return false;
    }
  }

  private ask(msg: AdmissionMessage & { req: number }): Promise<Refusal | null> {
    return new Promise((resolve) => {
      // A primary too busy (or wedged) to answer in time: refuse rather than hold the socket or admit it
      // uncounted. A late answer finds no waiter and is dropped; the caller releases the ticket, so a slot
      // the primary did count comes back (release follows the request on the same ordered channel).
      const timer = setTimeout(() => {
        if (this.waiting.delete(msg.req)) resolve('maxConnections');
      }, this.answerTimeoutMs);
      this.waiting.set(msg.req, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      // Without the primary nothing can be counted: refuse rather than admit uncounted.
      if (!this.send(msg)) {
        clearTimeout(timer);
        this.waiting.delete(msg.req);
        resolve('maxConnections');
      }
    });
  }

  admit(remoteAddress: string): Ticket | Refusal | Promise<Ticket | Refusal> {
    const own = this.local.admit(remoteAddress);
    if (typeof own === 'string') return own;
    const id = ++this.tickets;
    const l = this.limits();
    return this.ask({ type: 'adm:admit', req: ++this.reqs, ticket: id, address: remoteAddress, max: l.maxPreAuthConnectionsPerAddress }).then((refusal): Ticket | Refusal => {
      if (refusal) {
        own.release();
        // After a timed-out request the primary may yet count this ticket: uncount it (a no-op otherwise).
        this.send({ type: 'adm:release', ticket: id });
        return refusal;
      }
      let released = false;
      return {
        address: own.address,
        authenticate: async (userId: number): Promise<Refusal | null> => {
          const lim = this.limits();
          const r = await this.ask({ type: 'adm:auth', req: ++this.reqs, ticket: id, user: userId, maxUser: lim.maxConnectionsPerUser, maxUserAddress: lim.maxConnectionsPerUserAddress });
          // Our counts follow the primary's (they are a part of them, so they cannot refuse what it allowed).
          if (!r && !released) own.authenticate(userId, { ...lim, maxConnectionsPerUser: UNCAPPED, maxConnectionsPerUserAddress: UNCAPPED });
          return r;
        },
        release: () => {
          if (released) return;
          released = true;
          own.release();
          // After any request of this ticket on the same ordered channel: the primary counts, then uncounts.
          this.send({ type: 'adm:release', ticket: id });
        },
      };
    });
  }
}
