// The client side of SCRAM-SHA-256(-PLUS) (RFC 5802 §3), written from the
// RFC for the tests, independent of src/auth/scram.ts, driving AUTHENTICATE
// over a RawClient. Channel binding data is computed from the client's own
// TLS socket (tls-exporter: RFC 9266; tls-server-end-point: RFC 5929 §4).
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import tls from 'node:tls';
import type { RawClient, Reply } from './imap.js';

const hmac = (k: Buffer, d: string) => createHmac('sha256', k).update(d).digest();
const sha = (d: Buffer) => createHash('sha256').update(d).digest();

export function clientCbData(socket: tls.TLSSocket, type: string): Buffer {
  if (type === 'tls-exporter') return socket.exportKeyingMaterial(32, 'EXPORTER-Channel-Binding', Buffer.alloc(0));
  if (type === 'tls-server-end-point') return sha(socket.getPeerCertificate().raw);
  if (type === 'tls-unique') return socket.getFinished()!;
  throw new Error(type);
}

export interface ScramRun {
  reply: Reply;
  /** The server signature matched (the server knows the verifier). */
  serverVerified: boolean;
  challenges: string[];
}

/**
 * AUTHENTICATE with SCRAM. `gs2` is the flag ("n", "y" or "p=<type>"), `mech`
 * the mechanism name; `cbData` overrides the binding data (to forge a mismatch).
 */
export async function scramAuth(
  c: RawClient,
  user: string,
  password: string,
  opts: { mech?: string; gs2?: string; cbData?: Buffer; authzid?: string; initial?: boolean } = {},
): Promise<ScramRun> {
  const gs2flag = opts.gs2 ?? 'n';
  const mech = opts.mech ?? (gs2flag.startsWith('p=') ? 'SCRAM-SHA-256-PLUS' : 'SCRAM-SHA-256');
  const gs2 = `${gs2flag},${opts.authzid ? 'a=' + opts.authzid : ''},`;
  const cnonce = randomBytes(18).toString('base64');
  const bare = `n=${user.replaceAll('=', '=3D').replaceAll(',', '=2C')},r=${cnonce}`;
  const first = Buffer.from(gs2 + bare).toString('base64');
  const tag = c.nextTag();
  const challenges: string[] = [];
  if (opts.initial === false) {
    c.write(`${tag} AUTHENTICATE ${mech}\r\n`);
    const l = await c.readLine();
    if (!l.startsWith('+')) return { reply: { untagged: [], tagged: l, raw: l }, serverVerified: false, challenges };
    c.write(first + '\r\n');
  } else c.write(`${tag} AUTHENTICATE ${mech} ${first}\r\n`);
  const line1 = await c.readLine();
  if (!line1.startsWith('+ ')) return { reply: { untagged: [], tagged: line1, raw: line1 }, serverVerified: false, challenges };
  const serverFirst = Buffer.from(line1.slice(2), 'base64').toString();
  challenges.push(serverFirst);
  const attrs = Object.fromEntries(serverFirst.split(',').map((kv) => [kv[0], kv.slice(2)]));
  let cb = Buffer.alloc(0);
  if (gs2flag.startsWith('p=')) cb = opts.cbData ?? clientCbData(c.socket as tls.TLSSocket, gs2flag.slice(2));
  const withoutProof = `c=${Buffer.concat([Buffer.from(gs2), cb]).toString('base64')},r=${attrs.r}`;
  const salted = pbkdf2Sync(password, Buffer.from(attrs.s!, 'base64'), Number(attrs.i), 32, 'sha256');
  const clientKey = hmac(salted, 'Client Key');
  const authMessage = `${bare},${serverFirst},${withoutProof}`;
  const sig = hmac(sha(clientKey), authMessage);
  const proof = Buffer.from(clientKey.map((b, i) => b ^ sig[i]!));
  c.write(Buffer.from(`${withoutProof},p=${proof.toString('base64')}`).toString('base64') + '\r\n');
  const line2 = await c.readLine();
  if (!line2.startsWith('+ ')) return { reply: { untagged: [], tagged: line2, raw: line2 }, serverVerified: false, challenges };
  const serverFinal = Buffer.from(line2.slice(2), 'base64').toString();
  challenges.push(serverFinal);
  const expected = 'v=' + hmac(hmac(salted, 'Server Key'), authMessage).toString('base64');
  c.write('\r\n');
  const reply = await c.collect(tag);
  return { reply, serverVerified: serverFinal === expected, challenges };
}
