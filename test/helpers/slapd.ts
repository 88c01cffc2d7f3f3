// A private OpenLDAP slapd (Debian's slapd package) for the LDAP user
// database tests: a generated slapd.conf in a temporary directory, an mdb
// database, plain LDAP (StartTLS offered) and LDAPS on ports of the auth
// range, data loaded with ldapadd (ldap-utils). Started and stopped by the test.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import selfsigned from 'selfsigned';

/** Fixed ports must come from this engineer's range (coordination rules): 21600-21699. */
const PORT_BASE = 21600;
const PORT_SPAN = 100;
const START_TIMEOUT_MS = 15_000;
const SLAPD = '/usr/sbin/slapd';
const SCHEMA_DIR = '/etc/ldap/schema';
const MODULE_DIR = '/usr/lib/ldap';

export const SUFFIX = 'dc=example,dc=org';
export const ADMIN_DN = `cn=admin,${SUFFIX}`;
export const ADMIN_PW = 'admin-secret';

export interface Slapd {
  url: string;
  ldapsUrl: string;
  ca: string;
  dir: string;
  /** Runs ldapadd/ldapmodify with LDIF text as the admin. */
  ldif(text: string, tool?: 'ldapadd' | 'ldapmodify'): void;
  stop(): Promise<void>;
}

export function hasSlapd(): boolean {
  return existsSync(SLAPD) && spawnSync('ldapadd', ['-VV']).error === undefined;
}

/** {SSHA} hash from slappasswd, as an admin would store it. */
export function slappasswd(pw: string): string {
  const r = spawnSync('slappasswd', ['-s', pw], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`slappasswd failed: ${r.stderr}`);
  return r.stdout.trim();
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1' }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

export async function startSlapd(): Promise<Slapd> {
  const dir = mkdtempSync(join(tmpdir(), 'quire-slapd-'));
  mkdirSync(join(dir, 'db'));
  const pems = await selfsigned.generate([{ name: 'commonName', value: 'localhost' }], { keySize: 2048, extensions: [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }, { type: 2, value: 'localhost' }] }] });
  writeFileSync(join(dir, 'cert.pem'), pems.cert);
  writeFileSync(join(dir, 'key.pem'), pems.private, { mode: 0o600 });
  writeFileSync(
    join(dir, 'slapd.conf'),
    [
      ...['core', 'cosine', 'inetorgperson', 'nis'].map((s) => `include ${SCHEMA_DIR}/${s}.schema`),
      `modulepath ${MODULE_DIR}`,
      'moduleload back_mdb',
      `pidfile ${join(dir, 'slapd.pid')}`,
      `TLSCertificateFile ${join(dir, 'cert.pem')}`,
      `TLSCertificateKeyFile ${join(dir, 'key.pem')}`,
      'database mdb',
      'maxsize 10485760',
      `suffix "${SUFFIX}"`,
      `rootdn "${ADMIN_DN}"`,
      `rootpw ${ADMIN_PW}`,
      `directory ${join(dir, 'db')}`,
      'access to attrs=userPassword by anonymous auth by self write by * none',
      'access to * by * read',
      '',
    ].join('\n'),
  );
  let child: ChildProcess | null = null;
  let port = 0;
  for (let attempt = 0; attempt < 10 && !child; attempt++) {
    port = PORT_BASE + Math.floor(Math.random() * (PORT_SPAN / 2)) * 2;
    if ((await portOpen(port)) || (await portOpen(port + 1))) continue;
    const c = spawn(SLAPD, ['-f', join(dir, 'slapd.conf'), '-h', `ldap://127.0.0.1:${port}/ ldaps://127.0.0.1:${port + 1}/`, '-d', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const deadline = Date.now() + START_TIMEOUT_MS;
    let up = false;
    while (Date.now() < deadline && c.exitCode === null) {
      if (await portOpen(port)) {
        up = true;
        break;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    if (up) child = c;
    else {
      c.kill('SIGKILL');
      if (!/bind|in use/i.test(err)) throw new Error(`slapd did not start: ${err}`);
    }
  }
  if (!child) throw new Error('slapd: no free port in the auth range');
  const url = `ldap://127.0.0.1:${port}`;
  const proc = child;
  const ldif = (text: string, tool: 'ldapadd' | 'ldapmodify' = 'ldapadd') => {
    const r = spawnSync(tool, ['-x', '-H', url, '-D', ADMIN_DN, '-w', ADMIN_PW], { input: text, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${tool} failed (${r.status}): ${r.stderr}`);
  };
  ldif(`dn: ${SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\ndn: ou=people,${SUFFIX}\nobjectClass: organizationalUnit\nou: people\n`);
  return {
    url,
    ldapsUrl: `ldaps://127.0.0.1:${port + 1}`,
    ca: pems.cert,
    dir,
    ldif,
    async stop() {
      await new Promise<void>((resolve) => {
        if (proc.exitCode !== null) return resolve();
        proc.once('exit', () => resolve());
        proc.kill('SIGTERM');
        setTimeout(() => proc.kill('SIGKILL'), 5000).unref();
      });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
