// A local OAuth 2.0 identity provider for the tests: signing keys generated at
// test time, a JWKS served over loopback HTTP or HTTPS, RFC 7662
// introspection for opaque tokens, and a way to mint JWT access tokens.
import { generateKeyPairSync, randomBytes, sign, constants, type KeyObject } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import selfsigned from 'selfsigned';

export interface SigningKey {
  kid: string;
  alg: string;
  privateKey: KeyObject;
  jwk: Record<string, unknown>;
}

export function newKey(kid: string, alg: 'RS256' | 'ES256' | 'PS256' | 'EdDSA'): SigningKey {
  const pair =
    alg === 'ES256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : alg === 'EdDSA' ? generateKeyPairSync('ed25519') : generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { kid, alg, privateKey: pair.privateKey, jwk: { ...pair.publicKey.export({ format: 'jwk' }), kid, alg, use: 'sig' } };
}

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

/** A signed JWT (RFC 7519) with `claims`; header overrides allow forging bad tokens. */
export function mint(key: SigningKey, claims: Record<string, unknown>, header: Record<string, unknown> = {}): string {
  const h = b64({ alg: key.alg, typ: 'at+jwt', kid: key.kid, ...header });
  const p = b64(claims);
  const data = Buffer.from(`${h}.${p}`);
  let sig: Buffer;
  if (key.alg === 'ES256') sig = sign('sha256', data, { key: key.privateKey, dsaEncoding: 'ieee-p1363' });
  else if (key.alg === 'PS256') sig = sign('sha256', data, { key: key.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 });
  else if (key.alg === 'EdDSA') sig = sign(null, data, key.privateKey);
  else sig = sign('sha256', data, key.privateKey);
  return `${h}.${p}.${sig.toString('base64url')}`;
}

export interface Idp {
  issuer: string;
  jwksUrl: string;
  introspectUrl: string;
  /** PEM of the HTTPS certificate (https only). */
  ca: string | undefined;
  keys: SigningKey[];
  /** JWKS requests served. */
  jwksFetches: number;
  /** Introspection requests served. */
  introspections: number;
  /** Opaque tokens the introspection endpoint knows, with the reply for each. */
  opaque: Map<string, Record<string, unknown>>;
  clientId: string;
  clientSecret: string;
  /** A valid access token for `user` signed with keys[i]. */
  token(user: string, extra?: Record<string, unknown>, keyIndex?: number): string;
  close(): Promise<void>;
}

export const AUDIENCE = 'quire-imap';

export async function startIdp(opts: { https?: boolean } = {}): Promise<Idp> {
  const idp: Idp = {
    issuer: '',
    jwksUrl: '',
    introspectUrl: '',
    ca: undefined,
    keys: [newKey('rsa-1', 'RS256'), newKey('ec-1', 'ES256')],
    jwksFetches: 0,
    introspections: 0,
    opaque: new Map(),
    clientId: 'quire',
    clientSecret: randomBytes(12).toString('hex'),
    token(user, extra = {}, keyIndex = 0) {
      const now = Math.floor(Date.now() / 1000);
      return mint(this.keys[keyIndex]!, { iss: this.issuer, aud: AUDIENCE, sub: 'id-' + user, email: user, iat: now, nbf: now, exp: now + 300, scope: 'imap', ...extra });
    },
    close: async () => {},
  };
  const handler: http.RequestListener = (req, res) => {
    if (req.url === '/jwks.json') {
      idp.jwksFetches++;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: idp.keys.map((k) => k.jwk) }));
      return;
    }
    if (req.url === '/introspect' && req.method === 'POST') {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        idp.introspections++;
        const want = 'Basic ' + Buffer.from(`${idp.clientId}:${idp.clientSecret}`).toString('base64');
        if (req.headers.authorization !== want) {
          res.statusCode = 401;
          res.end('{"error":"invalid_client"}');
          return;
        }
        const token = new URLSearchParams(body).get('token') ?? '';
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(idp.opaque.get(token) ?? { active: false }));
      });
      return;
    }
    res.statusCode = 404;
    res.end();
  };
  let server: http.Server;
  if (opts.https) {
    const pems = await selfsigned.generate([{ name: 'commonName', value: 'localhost' }], { keySize: 2048, extensions: [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }, { type: 2, value: 'localhost' }] }] });
    idp.ca = pems.cert;
    server = https.createServer({ key: pems.private, cert: pems.cert }, handler);
  } else server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const base = `${opts.https ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`;
  idp.issuer = base + '/';
  idp.jwksUrl = base + '/jwks.json';
  idp.introspectUrl = base + '/introspect';
  idp.close = () => new Promise<void>((r) => server.close(() => r()));
  return idp;
}
