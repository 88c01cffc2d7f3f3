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
  /** Moves the socket from the pre-auth counts to `userId`'s; null when allowed, else the limit that refused it (the socket then stays pre-auth). */
  authenticate(userId: number): Refusal | null;
  release(): void;
}

function inc(m: Map<string, number>, k: string): void {
  m.set(k, (m.get(k) ?? 0) + 1);
}

function dec(m: Map<string, number>, k: string): void {
  const n = (m.get(k) ?? 1) - 1;
  if (n <= 0) m.delete(k);
  else m.set(k, n);
}

export class Admission {
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

  /** Counts a new socket, or names the cap it would exceed. */
  admit(remoteAddress: string): Ticket | Refusal {
    const l = this.limits();
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
      authenticate: (userId: number): Refusal | null => {
        if (state !== 'preauth') return null;
        const lim = this.limits();
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
