// What a protocol tells the auth layer about a connection, so that every
// protocol (IMAP AUTHENTICATE, POP3 AUTH, ...) offers and runs mechanisms the
// same way without knowing them. Channel binding data (RFC 5056) comes from
// the TLS session:
//   - tls-exporter (RFC 9266 §2): 32 bytes of TLS keying material exported with
//     label "EXPORTER-Channel-Binding" and an empty context; TLS 1.3 only
//     (RFC 9266 §3: with TLS 1.2 it is safe only with extended master secret,
//     which we cannot confirm through node).
//   - tls-server-end-point (RFC 5929 §4): a hash of our certificate, the hash
//     being that of its signature algorithm, SHA-256 for MD5 or SHA-1.
//   - tls-unique (RFC 5929 §3): the first Finished message of the handshake;
//     TLS 1.2 and earlier only (undefined for TLS 1.3, RFC 8446 §C.5). Cyrus'
//     imtest and libsasl clients still bind with it.

import { createHash } from 'node:crypto';
import type { TLSSocket } from 'node:tls';

export interface ChannelBinding {
  /** Binding types available on this connection, most preferred first. */
  readonly types: readonly string[];
  /** The binding data for `type`, or null when it is not available. */
  data(type: string): Buffer | null;
}

export interface ConnectionFacts {
  remoteAddress: string;
  /** TLS is active on the connection. */
  secure: boolean;
  /** Policy (plaintextAuth) allows authentication on this connection now. */
  plaintextAllowed: boolean;
  /** Present when TLS is active. */
  channelBinding?: ChannelBinding;
}

/** RFC 9266 §2 exporter label. */
const EXPORTER_LABEL = 'EXPORTER-Channel-Binding';
/** RFC 9266 §2: 32 bytes. */
const EXPORTER_LENGTH = 32;

/** Channel bindings of a server-side TLS socket (after the handshake). */
export function tlsChannelBinding(socket: TLSSocket): ChannelBinding {
  const protocol = socket.getProtocol?.() ?? null;
  const tls13 = protocol === 'TLSv1.3';
  const types: string[] = [];
  if (tls13) types.push('tls-exporter');
  types.push('tls-server-end-point');
  if (!tls13 && protocol !== null) types.push('tls-unique');
  let endPoint: Buffer | null | undefined;
  return {
    types,
    data(type: string): Buffer | null {
      try {
        if (type === 'tls-exporter' && tls13) return socket.exportKeyingMaterial(EXPORTER_LENGTH, EXPORTER_LABEL, Buffer.alloc(0));
        if (type === 'tls-server-end-point') {
          if (endPoint === undefined) endPoint = serverEndPoint(socket);
          return endPoint;
        }
        if (type === 'tls-unique' && !tls13) {
          // RFC 5929 §3.1: the first Finished sent: the client's in a full handshake, ours when resuming.
          return (socket.isSessionReused() ? socket.getFinished() : socket.getPeerFinished()) ?? null;
        }
      } catch {
        return null;
      }
      return null;
    },
  };
}

function serverEndPoint(socket: TLSSocket): Buffer | null {
  const cert = socket.getCertificate();
  const raw = cert && 'raw' in cert ? (cert.raw as Buffer) : null;
  if (!raw) return null;
  return createHash(endPointHash(raw)).update(raw).digest();
}

// Signature algorithm OIDs (RFC 4055, RFC 5758, RFC 8410) whose hash is not SHA-256.
const SHA384_OIDS = new Set(['1.2.840.113549.1.1.12', '1.2.840.10045.4.3.3']);
const SHA512_OIDS = new Set(['1.2.840.113549.1.1.13', '1.2.840.10045.4.3.4']);

/** RFC 5929 §4.1: the certificate's signature hash; MD5 and SHA-1 become SHA-256. */
export function endPointHash(der: Buffer): 'sha256' | 'sha384' | 'sha512' {
  const oid = signatureAlgorithmOid(der);
  if (oid && SHA384_OIDS.has(oid)) return 'sha384';
  if (oid && SHA512_OIDS.has(oid)) return 'sha512';
  return 'sha256';
}

/** Reads Certificate.signatureAlgorithm (RFC 5280 §4.1.1.2) from DER; null if malformed. */
export function signatureAlgorithmOid(der: Buffer): string | null {
  const tlv = (buf: Buffer, off: number): { tag: number; start: number; end: number } | null => {
    if (off + 2 > buf.length) return null;
    const tag = buf[off]!;
    let len = buf[off + 1]!;
    let start = off + 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n < 1 || n > 4 || start + n > buf.length) return null;
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + buf[start + i]!;
      start += n;
    }
    if (start + len > buf.length) return null;
    return { tag, start, end: start + len };
  };
  const cert = tlv(der, 0);
  if (!cert || cert.tag !== 0x30) return null;
  const tbs = tlv(der, cert.start);
  if (!tbs || tbs.tag !== 0x30) return null;
  const alg = tlv(der, tbs.end);
  if (!alg || alg.tag !== 0x30) return null;
  const oid = tlv(der, alg.start);
  if (!oid || oid.tag !== 0x06) return null;
  const bytes = der.subarray(oid.start, oid.end);
  if (bytes.length === 0) return null;
  const parts = [Math.floor(bytes[0]! / 40), bytes[0]! % 40];
  let v = 0;
  for (let i = 1; i < bytes.length; i++) {
    v = v * 128 + (bytes[i]! & 0x7f);
    if (!(bytes[i]! & 0x80)) {
      parts.push(v);
      v = 0;
    }
  }
  return parts.join('.');
}
