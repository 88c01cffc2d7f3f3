// TLS for every protocol's listeners (IMAP now; POP3, ManageSieve and others
// use the same helpers): one place for the protocol versions, ALPN and the
// handshake deadline, so that no protocol gets a laxer TLS than another.
//
// ALPN (RFC 7301): each protocol offers only its own identifier from the IANA
// "TLS Application-Layer Protocol Negotiation (ALPN) Protocol IDs" registry
// ("imap", "pop3", "managesieve", "smtp"). A client that offers ALPN but none
// of ours is refused with the fatal no_application_protocol alert (RFC 7301
// §3.2): that stops cross-protocol attacks (ALPACA, 2021) where a browser is
// made to talk HTTPS to a mail port sharing a certificate with a web server.
// A client that offers no ALPN at all (most mail clients today) is accepted.
import net from 'node:net';
import tls from 'node:tls';

/** ALPN identifiers of the IANA registry, per protocol. */
export const ALPN = Object.freeze({ imap: 'imap', pop3: 'pop3', managesieve: 'managesieve', smtp: 'smtp' });

/** Oldest protocol version offered: RFC 8314 §4.1 / RFC 8996 retire TLS 1.0 and 1.1. */
export const TLS_MIN_VERSION: tls.SecureVersion = 'TLSv1.2';

export interface TlsMaterial {
  key: string | Buffer;
  cert: string | Buffer;
}

/** A secure context with our protocol floor, shared by every socket of a listener. */
export function createServerContext(material: TlsMaterial): tls.SecureContext {
  return tls.createSecureContext({ key: material.key, cert: material.cert, minVersion: TLS_MIN_VERSION });
}

/** Options for a server-side TLSSocket that offers exactly `alpn` (refusing clients that offer only others). */
export function serverSocketOptions(secureContext: tls.SecureContext, alpn: readonly string[]): tls.TLSSocketOptions {
  return { isServer: true, secureContext, ALPNProtocols: [...alpn] };
}

export interface HandshakeOptions {
  secureContext: tls.SecureContext;
  alpn: readonly string[];
  /** Deadline of the handshake (ms). */
  timeoutMs: number;
  /** Called once with the reason when the handshake fails or times out; the socket is already destroyed. */
  onFailure(reason: string, err?: Error): void;
}

/**
 * Starts a server-side TLS handshake on `raw` and resolves with the secure
 * socket once it completes. On error or when the deadline passes the socket
 * (raw and TLS) is destroyed, onFailure is called and the promise resolves
 * with null: a handshake that never finishes can never hold a socket.
 */
export function serverHandshake(raw: net.Socket, o: HandshakeOptions): Promise<tls.TLSSocket | null> {
  return new Promise((resolve) => {
    const secure = new tls.TLSSocket(raw, serverSocketOptions(o.secureContext, o.alpn));
    let done = false;
    const fail = (reason: string, err?: Error): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      secure.destroy();
      raw.destroy();
      o.onFailure(reason, err);
      resolve(null);
    };
    const timer = setTimeout(() => fail('TLS handshake timed out'), o.timeoutMs);
    timer.unref();
    secure.once('secure', () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(secure);
    });
    // Stays attached after success (then a no-op) so that no error is ever unhandled before the caller binds its own.
    secure.on('error', (err: Error) => fail('TLS handshake failed', err));
    secure.once('close', () => fail('connection closed during the TLS handshake'));
    raw.once('close', () => fail('connection closed during the TLS handshake'));
  });
}
