// The PROXY protocol, versions 1 (text) and 2 (binary), as a load balancer
// (HAProxy `send-proxy` / `send-proxy-v2`) prepends it to every connection it
// forwards, so that logs, admission caps, brute-force delays and `quire who`
// see the real client address instead of the balancer's. The specification
// is HAProxy's doc/proxy-protocol.txt ("The PROXY protocol, Versions 1 & 2",
// 2020/03/05), cited below as "PP §n"; it is not an RFC. Dovecot
// (haproxy_trusted_networks) is the model for the policy: a listener with the
// PROXY protocol on accepts connections only from trusted networks, and every
// such connection must begin with a header (PP §1: "the receiver MUST be
// configured to only receive the protocol ... and MUST not try to guess").
//
// Two layers: ProxyHeaderDecoder is sans-I/O (fed chunks, answers "more",
// "header" with the bytes after it, or "error"), and ProxyGate does the I/O:
// trust check, a deadline, then the socket handed on paused with the bytes
// after the header put back (an implicit-TLS ClientHello often arrives in the
// same segment as the header; tls.TLSSocket picks up a socket's buffered data).
import net from 'node:net';
import type { Logger } from './options.js';

/** PP §2.1: "a 108-byte buffer is always enough" for a v1 line (107 bytes with CRLF, plus a NUL in C). */
export const PROXY_V1_MAX_BYTES = 107;
/**
 * Largest v2 header accepted, the 16-byte fixed part included. PP §2.2 allows
 * 65,535 bytes of addresses and TLVs; HAProxy's own TLVs (ALPN, authority,
 * unique id up to 128 bytes, SSL fields, CRC32C) stay far below 1 KiB, so a
 * bigger header is not from a balancer we work with, and no connection may
 * make us buffer 64 KiB before it has said anything.
 */
export const PROXY_V2_MAX_BYTES = 16 + 2048;
/**
 * Time allowed for the whole header to arrive (Dovecot: haproxy_timeout = 3s).
 * A balancer writes it at once on connect, so only a broken or hostile peer is slower.
 */
export const DEFAULT_PROXY_HEADER_TIMEOUT_MS = 3000;

/** PP §2.2: the 12-byte v2 signature. */
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_PREFIX = Buffer.from('PROXY ', 'latin1');

export interface ProxyAddress {
  address: string;
  port: number;
}

export interface ProxyHeader {
  version: 1 | 2;
  /** 'local': the balancer's own connection (a v2 LOCAL health check, or v1 UNKNOWN): keep the socket's addresses. */
  command: 'proxy' | 'local';
  source: ProxyAddress | null;
  destination: ProxyAddress | null;
}

export type ProxyParse =
  | { kind: 'more' }
  | { kind: 'header'; header: ProxyHeader; rest: Buffer }
  | { kind: 'error'; reason: string };

/** Push decoder of one PROXY header; holds at most PROXY_V2_MAX_BYTES. Once it answered 'header' or 'error' it is done. */
export class ProxyHeaderDecoder {
  private buf: Buffer = Buffer.alloc(0);
  private done = false;

  get bufferedBytes(): number {
    return this.buf.length;
  }

  push(chunk: Buffer): ProxyParse {
    if (this.done) return { kind: 'error', reason: 'decoder already finished' };
    const r = this.step(chunk);
    if (r.kind !== 'more') {
      this.done = true;
      this.buf = Buffer.alloc(0);
    }
    return r;
  }

  private step(chunk: Buffer): ProxyParse {
    // Never more than the largest header plus nothing: the excess of a chunk is only looked at once a header is complete.
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const b = this.buf;
    if (b.length === 0) return { kind: 'more' };
    if (b[0] === 0x50 /* P */) return this.v1(b);
    if (b[0] === 0x0d) return this.v2(b);
    return { kind: 'error', reason: 'not a PROXY protocol header' };
  }

  /** PP §2.1: "PROXY" SP ("TCP4" | "TCP6" | "UNKNOWN") [SP src SP dst SP sport SP dport] CRLF. */
  private v1(b: Buffer): ProxyParse {
    const n = Math.min(b.length, V1_PREFIX.length);
    if (b.compare(V1_PREFIX, 0, n, 0, n) !== 0) return { kind: 'error', reason: 'not a PROXY protocol header' };
    // The CR may sit at index 105 at most, so that CRLF ends within 107 bytes.
    const limit = Math.min(b.length, PROXY_V1_MAX_BYTES - 1);
    let cr = -1;
    for (let i = V1_PREFIX.length; i < limit; i++) {
      const c = b[i]!;
      if (c === 0x0d) {
        cr = i;
        break;
      }
      // Printable US-ASCII only: the line is text, and a NUL or LF inside it is an attack on someone's parser.
      if (c < 0x20 || c > 0x7e) return { kind: 'error', reason: 'v1 header: invalid character' };
    }
    if (cr < 0) return b.length >= PROXY_V1_MAX_BYTES - 1 ? { kind: 'error', reason: 'v1 header: longer than 107 bytes' } : { kind: 'more' };
    if (cr + 1 >= b.length) return { kind: 'more' };
    if (b[cr + 1] !== 0x0a) return { kind: 'error', reason: 'v1 header: CR not followed by LF' };
    const line = b.toString('latin1', V1_PREFIX.length, cr);
    const rest = b.subarray(cr + 2);
    const parts = line.split(' ');
    // PP §2.1: UNKNOWN: "the receiver must ignore anything presented before the CRLF"; the socket's addresses apply.
    if (parts[0] === 'UNKNOWN') return { kind: 'header', header: { version: 1, command: 'local', source: null, destination: null }, rest };
    if (parts.length !== 5) return { kind: 'error', reason: 'v1 header: wrong number of fields' };
    const [proto, src, dst, sport, dport] = parts as [string, string, string, string, string];
    const family = proto === 'TCP4' ? 4 : proto === 'TCP6' ? 6 : 0;
    if (family === 0) return { kind: 'error', reason: 'v1 header: unknown protocol' };
    if (net.isIP(src) !== family || net.isIP(dst) !== family) return { kind: 'error', reason: 'v1 header: invalid address' };
    const sp = v1Port(sport);
    const dp = v1Port(dport);
    if (sp === null || dp === null) return { kind: 'error', reason: 'v1 header: invalid port' };
    return { kind: 'header', header: { version: 1, command: 'proxy', source: { address: src, port: sp }, destination: { address: dst, port: dp } }, rest };
  }

  /** PP §2.2: signature, ver_cmd, fam, len (network order), then addresses and TLVs. */
  private v2(b: Buffer): ProxyParse {
    const n = Math.min(b.length, V2_SIGNATURE.length);
    if (b.compare(V2_SIGNATURE, 0, n, 0, n) !== 0) return { kind: 'error', reason: 'not a PROXY protocol header' };
    if (b.length < 16) return { kind: 'more' };
    const verCmd = b[12]!;
    // PP §2.2: the highest four bits are the version, "\x2"; "other values are unassigned and must not be emitted".
    if (verCmd >> 4 !== 2) return { kind: 'error', reason: 'v2 header: unsupported version' };
    const cmd = verCmd & 0x0f;
    if (cmd > 1) return { kind: 'error', reason: 'v2 header: unknown command' };
    const fam = b[13]!;
    const len = b.readUInt16BE(14);
    const total = 16 + len;
    if (total > PROXY_V2_MAX_BYTES) return { kind: 'error', reason: 'v2 header: too long' };
    if (b.length < total) return { kind: 'more' };
    const body = b.subarray(16, total);
    const rest = b.subarray(total);
    const family = fam >> 4;
    const transport = fam & 0x0f;
    if (family > 3 || transport > 2) return { kind: 'error', reason: 'v2 header: unknown address family' };
    const addrLen = family === 1 ? 12 : family === 2 ? 36 : family === 3 ? 216 : 0;
    // PP §2.2: len counts the addresses and TLVs; a receiver must not read an address block past it.
    if (len < addrLen) return { kind: 'error', reason: 'v2 header: address block truncated' };
    const tlvError = checkTlvs(body.subarray(addrLen));
    if (tlvError) return { kind: 'error', reason: tlvError };
    // PP §2.2: LOCAL: "the receiver must accept this connection as valid and must use the real connection endpoints".
    // UNSPEC and UNIX families carry no address we could log or count by: the socket's apply (PP §2.2, "AF_UNSPEC").
    if (cmd === 0 || family === 0 || family === 3 || transport !== 1) {
      return { kind: 'header', header: { version: 2, command: 'local', source: null, destination: null }, rest };
    }
    const source =
      family === 1
        ? { address: ipv4(body, 0), port: body.readUInt16BE(8) }
        : { address: ipv6(body, 0), port: body.readUInt16BE(32) };
    const destination =
      family === 1
        ? { address: ipv4(body, 4), port: body.readUInt16BE(10) }
        : { address: ipv6(body, 16), port: body.readUInt16BE(34) };
    return { kind: 'header', header: { version: 2, command: 'proxy', source, destination }, rest };
  }
}

/** A v1 port: 1-5 decimal digits without a leading zero (PP §2.1: "0..65535"), or null. */
function v1Port(s: string): number | null {
  if (s.length === 0 || s.length > 5) return null;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return null;
  }
  if (s.length > 1 && s[0] === '0') return null;
  const n = Number(s);
  return n <= 65535 ? n : null;
}

/** PP §2.2.x: TLVs are type (1), length (2, network order), value; they must tile the rest exactly. */
function checkTlvs(t: Buffer): string | null {
  let i = 0;
  while (i < t.length) {
    if (t.length - i < 3) return 'v2 header: truncated TLV';
    const l = t.readUInt16BE(i + 1);
    if (i + 3 + l > t.length) return 'v2 header: TLV longer than the header';
    i += 3 + l;
  }
  return null;
}

function ipv4(b: Buffer, o: number): string {
  return `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;
}

/** RFC 5952 §4 text form: lower case, no leading zeros, the longest run of two or more zero groups as "::"; §5 for IPv4-mapped. */
export function ipv6(b: Buffer, o: number): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push(b.readUInt16BE(o + 2 * i));
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) return `::ffff:${ipv4(b, o + 12)}`;
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

// ---- trusted networks

/** The networks allowed to send PROXY headers; IPv4-mapped IPv6 peers (a `::` listener) match IPv4 entries. */
export class TrustedNetworks {
  private readonly list = new net.BlockList();
  readonly entries: readonly string[];

  /** Each entry "ADDR/PREFIX" or a bare address (a single host). Throws on a malformed entry. */
  constructor(cidrs: readonly string[]) {
    const seen: string[] = [];
    for (const raw of cidrs) {
      const e = raw.trim();
      const slash = e.indexOf('/');
      const addr = slash < 0 ? e : e.slice(0, slash);
      const family = net.isIP(addr);
      if (family === 0) throw new Error(`invalid network ${JSON.stringify(raw)}: not an IP address`);
      const max = family === 4 ? 32 : 128;
      const p = slash < 0 ? String(max) : e.slice(slash + 1);
      if (!/^\d{1,3}$/.test(p) || Number(p) > max) throw new Error(`invalid network ${JSON.stringify(raw)}: prefix must be 0-${max}`);
      this.list.addSubnet(addr, Number(p), family === 4 ? 'ipv4' : 'ipv6');
      seen.push(`${addr}/${p}`);
    }
    this.entries = seen;
  }

  get empty(): boolean {
    return this.entries.length === 0;
  }

  trusts(address: string | undefined): boolean {
    if (!address) return false;
    const a = address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
    const family = net.isIP(a);
    if (family === 0) return false;
    return this.list.check(a, family === 4 ? 'ipv4' : 'ipv6');
  }
}

// ---- the gate every listener's accept goes through

/** Where a connection comes from as every protocol should see it: the PROXY header's source, else the socket's. */
export interface PeerEndpoint {
  remoteAddress: string;
  remotePort: number | undefined;
  localAddress: string | undefined;
  localPort: number | undefined;
  /** The balancer's own address when the addresses came from a PROXY header. */
  proxiedBy: string | null;
}

export function socketPeer(socket: net.Socket): PeerEndpoint {
  return { remoteAddress: socket.remoteAddress ?? 'unknown', remotePort: socket.remotePort, localAddress: socket.localAddress, localPort: socket.localPort, proxiedBy: null };
}

export interface ProxyProtocolOptions {
  trusted: TrustedNetworks;
  /** Deadline for the whole header (ms). */
  timeoutMs: number;
}

/** The listeners the PROXY protocol can be on, each with its policy (absent: off). */
export const PROXY_LISTENERS = ['imap', 'imaps', 'pop3', 'pop3s', 'lmtp'] as const;
export type ProxyListener = (typeof PROXY_LISTENERS)[number];
export type ProxyPolicy = Partial<Record<ProxyListener, ProxyProtocolOptions>>;

/**
 * Connections at once whose header is still awaited, per listener. Before the header a connection is
 * not counted by admission (src/server/admission.ts counts the client's address, which only the header
 * names), so this bounds them: only trusted balancers get this far, each for at most the header deadline.
 */
export const PROXY_MAX_PENDING_HEADERS = 1000;

/** At most one log line per reason in this interval (a flood of refused sockets must not flood the log). */
const PROXY_REFUSAL_LOG_INTERVAL_MS = 10_000;

/**
 * One listener's PROXY protocol policy. accept() calls `onPeer` with the
 * client's endpoint and the socket paused (the caller resumes it, or wraps it
 * in TLS) once a valid header arrived from a trusted network; otherwise the
 * socket is destroyed and onPeer is never called.
 */
export class ProxyGate {
  private readonly lastLog = new Map<string, { at: number; suppressed: number }>();
  private readonly waiting = new Set<net.Socket>();

  constructor(
    private readonly opts: ProxyProtocolOptions,
    private readonly log: Logger,
    private readonly protocol: string,
  ) {}

  /** Sockets whose header is still awaited (tests, metrics). */
  get pendingHeaders(): number {
    return this.waiting.size;
  }

  /** Closes the connections still waiting for their header (the listener is closing). */
  destroyPending(): void {
    for (const s of this.waiting) s.destroy();
    this.waiting.clear();
  }

  accept(socket: net.Socket, onPeer: (peer: PeerEndpoint) => void): void {
    socket.on('error', () => {});
    const from = socket.remoteAddress;
    if (from === undefined) {
      // The peer is gone already (a balancer's health check or a client that reset before the
      // connection reached this worker): nothing to refuse, and no refusal to log, since that
      // would spend the reason's log slot (PROXY_REFUSAL_LOG_INTERVAL_MS) on a socket with no
      // address and hide the next real untrusted source (test/interop/haproxy.test.ts saw this).
      socket.destroy();
      return;
    }
    if (!this.opts.trusted.trusts(from)) {
      this.refuse(socket, 'untrusted source', from);
      return;
    }
    if (this.waiting.size >= PROXY_MAX_PENDING_HEADERS) {
      this.refuse(socket, 'too many connections waiting for their header', from);
      return;
    }
    this.waiting.add(socket);
    const decoder = new ProxyHeaderDecoder();
    let settled = false;
    const finish = (): void => {
      settled = true;
      this.waiting.delete(socket);
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
    };
    const onClose = (): void => {
      if (!settled) finish();
    };
    const onData = (chunk: Buffer): void => {
      if (settled) return;
      const r = decoder.push(chunk);
      if (r.kind === 'more') return;
      finish();
      if (r.kind === 'error') {
        this.refuse(socket, r.reason, from);
        return;
      }
      socket.pause();
      if (r.rest.length > 0) socket.unshift(r.rest);
      const own = socketPeer(socket);
      const h = r.header;
      onPeer(
        h.command === 'proxy' && h.source && h.destination
          ? { remoteAddress: h.source.address, remotePort: h.source.port, localAddress: h.destination.address, localPort: h.destination.port, proxiedBy: own.remoteAddress }
          : own,
      );
    };
    const timer = setTimeout(() => {
      if (settled) return;
      finish();
      this.refuse(socket, 'header timed out', from);
    }, this.opts.timeoutMs);
    timer.unref();
    socket.on('data', onData);
    socket.on('close', onClose);
  }

  private refuse(socket: net.Socket, reason: string, from: string | undefined): void {
    socket.destroy();
    const now = Date.now();
    const l = this.lastLog.get(reason);
    if (l && now - l.at < PROXY_REFUSAL_LOG_INTERVAL_MS) {
      l.suppressed++;
      return;
    }
    this.lastLog.set(reason, { at: now, suppressed: 0 });
    this.log.info('PROXY protocol: connection refused', {
      protocol: this.protocol,
      reason,
      address: from,
      ...(l?.suppressed ? { refusedSinceLastLog: l.suppressed } : {}),
    });
  }
}

/** The gate for a listener, or null when the PROXY protocol is off for it. */
export function proxyGate(opts: ProxyProtocolOptions | null | undefined, log: Logger, protocol: string): ProxyGate | null {
  return opts && !opts.trusted.empty ? new ProxyGate(opts, log, protocol) : null;
}
