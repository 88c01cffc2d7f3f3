// TLS material for the listeners. With tls.cert/tls.key configured, those
// files are read. Otherwise a self-signed certificate is generated on first
// start into <dataDir>/tls/{cert,key}.pem and reused afterwards, so clients
// that pinned it keep working across restarts.

import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { generate } from 'selfsigned';

/** Validity of a generated certificate: 825 days, the longest some TLS clients (Apple) accept for a server certificate. */
export const SELF_SIGNED_VALIDITY_DAYS = 825;
/** Regenerate a generated certificate this long before it expires. */
const RENEW_BEFORE_MS = 7 * 24 * 3600 * 1000;

export interface TlsMaterial {
  key: string;
  cert: string;
  certPath: string;
  keyPath: string;
  /** True if the certificate is one we generated (self-signed). */
  selfSigned: boolean;
  /** True if it was generated during this call. */
  generated: boolean;
  /** SHA-256 fingerprint, colon-separated hex, for users to compare in their client. */
  fingerprint256: string;
  subjectAltName: string;
  validTo: Date;
}

export interface TlsOptions {
  dataDir: string;
  tls: { cert: string | null; key: string | null };
}

/** Host names the generated certificate covers. */
export function selfSignedNames(): { dns: string[]; ips: string[] } {
  const dns = new Set(['localhost']);
  const h = hostname();
  if (h && /^[A-Za-z0-9.-]+$/.test(h)) {
    dns.add(h.toLowerCase());
  }
  return { dns: [...dns], ips: ['127.0.0.1', '::1'] };
}

async function generateSelfSigned(): Promise<{ key: string; cert: string }> {
  const { dns, ips } = selfSignedNames();
  const notBeforeDate = new Date(Date.now() - 60_000); // tolerate small clock skew
  const notAfterDate = new Date(notBeforeDate.getTime() + SELF_SIGNED_VALIDITY_DAYS * 24 * 3600 * 1000);
  const pems = await generate([{ name: 'commonName', value: dns[dns.length - 1]! }, { name: 'organizationName', value: 'Quire self-signed' }], {
    keyType: 'rsa',
    keySize: 2048,
    algorithm: 'sha256',
    notBeforeDate,
    notAfterDate,
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [...dns.map((value) => ({ type: 2 as const, value })), ...ips.map((ip) => ({ type: 7 as const, ip }))] },
    ],
  });
  return { key: pems.private, cert: pems.cert };
}

async function writeAtomic(path: string, data: string, mode: number): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, data, { mode, flag: 'w' });
  await chmod(tmp, mode); // writeFile's mode is subject to the umask; be explicit
  await rename(tmp, path);
}

function describe(cert: string, extra: Omit<TlsMaterial, 'fingerprint256' | 'subjectAltName' | 'validTo' | 'cert'>): TlsMaterial {
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    throw new Error(`${extra.certPath} does not contain a valid PEM certificate: ${(err as Error).message}`);
  }
  return { ...extra, cert, fingerprint256: x509.fingerprint256, subjectAltName: x509.subjectAltName ?? '', validTo: new Date(x509.validTo) };
}

/** Reads the configured certificate, or loads / creates the self-signed one in <dataDir>/tls. */
export async function loadOrCreateTls(opts: TlsOptions, log?: { info(m: string, f?: Record<string, unknown>): void; warn(m: string, f?: Record<string, unknown>): void }): Promise<TlsMaterial> {
  if (opts.tls.cert && opts.tls.key) {
    const [cert, key] = await Promise.all([readFile(opts.tls.cert, 'utf8'), readFile(opts.tls.key, 'utf8')]).catch((err: Error) => {
      throw new Error(`cannot read TLS certificate/key: ${err.message}`);
    });
    const m = describe(cert, { key, certPath: opts.tls.cert, keyPath: opts.tls.key, selfSigned: false, generated: false });
    if (m.validTo.getTime() < Date.now()) log?.warn('configured TLS certificate has expired', { cert: m.certPath, validTo: m.validTo });
    return m;
  }
  const dir = join(opts.dataDir, 'tls');
  const certPath = join(dir, 'cert.pem');
  const keyPath = join(dir, 'key.pem');
  const haveCert = existsSync(certPath);
  const haveKey = existsSync(keyPath);
  if (haveCert && haveKey) {
    const [cert, key] = await Promise.all([readFile(certPath, 'utf8'), readFile(keyPath, 'utf8')]);
    const m = describe(cert, { key, certPath, keyPath, selfSigned: true, generated: false });
    if (m.validTo.getTime() - RENEW_BEFORE_MS > Date.now()) return m;
    log?.warn('self-signed certificate expires soon or has expired; generating a new one (clients will see a new fingerprint)', { validTo: m.validTo });
  } else if (haveCert !== haveKey) {
    throw new Error(`found only one of ${certPath} and ${keyPath}; restore the other or delete both to generate a new self-signed certificate`);
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const { key, cert } = await generateSelfSigned();
  // Key first: a cert.pem without its key is never left behind.
  await writeAtomic(keyPath, key, 0o600);
  try {
    await writeAtomic(certPath, cert, 0o644);
  } catch (err) {
    await rm(keyPath, { force: true });
    throw err;
  }
  const m = describe(cert, { key, certPath, keyPath, selfSigned: true, generated: true });
  log?.info('generated self-signed TLS certificate', { cert: certPath, sha256: m.fingerprint256 });
  return m;
}
