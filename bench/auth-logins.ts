// Login cost per mechanism: the first login of each user after the server
// started ("cold": Quire runs its memory-hard password hash, loads the
// user's verifier or the issuer's JWKS) against later logins of the same
// users ("cached": Quire's verified-password cache, the cached JWKS).
//
// Each login is one fresh TCP connection: greeting, the authentication
// exchange, tagged OK; the time is from connect to the tagged OK. The SCRAM
// client caches SaltedPassword per (user, salt), as a client that remembers
// it would, so the timing is the server's work plus the round trips rather
// than the client's PBKDF2 (the cold SCRAM sample still contains the
// client's one PBKDF2 of 4096 iterations, about a millisecond). Mechanisms the server does not advertise are
// reported as "not offered".
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import net from 'node:net';
import { performance } from 'node:perf_hooks';

export type BenchMechanism = 'LOGIN' | 'PLAIN' | 'SCRAM-SHA-256' | 'OAUTHBEARER';

export interface AuthLoginOptions {
  host: string;
  port: number;
  users: string[];
  pass: string;
  mechanisms: BenchMechanism[];
  /** Repeat logins per user after the cold one. */
  repeats: number;
  /** A bearer token per user (OAUTHBEARER). */
  token?: (user: string) => string;
  log: (s: string) => void;
}

export interface MechanismResult {
  mechanism: BenchMechanism;
  offered: boolean;
  coldMs: number[];
  cachedMs: number[];
  failures: number;
}

/** Per-operation timeout: a stuck login fails the sample instead of the run. */
const LOGIN_TIMEOUT_MS = 30_000;

class LineSocket {
  private buf = '';
  private waiters: ((l: string) => void)[] = [];
  private lines: string[] = [];
  constructor(readonly sock: net.Socket) {
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => {
      this.buf += d;
      let nl: number;
      while ((nl = this.buf.indexOf('\r\n')) >= 0) {
        const l = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 2);
        const w = this.waiters.shift();
        if (w) w(l);
        else this.lines.push(l);
      }
    });
    sock.on('error', () => {});
  }
  line(): Promise<string> {
    const l = this.lines.shift();
    if (l !== undefined) return Promise.resolve(l);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('timeout')), LOGIN_TIMEOUT_MS);
      this.waiters.push((x) => {
        clearTimeout(t);
        resolve(x);
      });
    });
  }
  /** The next line that is not untagged data. */
  async reply(): Promise<string> {
    for (;;) {
      const l = await this.line();
      if (!l.startsWith('* ')) return l;
    }
  }
  write(s: string): void {
    this.sock.write(s);
  }
}

function connect(host: string, port: number): Promise<LineSocket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port }, () => resolve(new LineSocket(s)));
    s.setNoDelay(true);
    s.once('error', reject);
  });
}

const salted = new Map<string, Buffer>();
const hmac = (k: Buffer, d: string) => createHmac('sha256', k).update(d).digest();

async function scram(c: LineSocket, user: string, pass: string): Promise<boolean> {
  const bare = `n=${user},r=${randomBytes(12).toString('base64')}`;
  c.write(`a AUTHENTICATE SCRAM-SHA-256 ${Buffer.from('n,,' + bare).toString('base64')}\r\n`);
  const l1 = await c.reply();
  if (!l1.startsWith('+ ')) return false;
  const first = Buffer.from(l1.slice(2), 'base64').toString();
  const a = Object.fromEntries(first.split(',').map((kv) => [kv[0], kv.slice(2)]));
  const key = `${user}\0${a.s}\0${a.i}`;
  let sp = salted.get(key);
  if (!sp) salted.set(key, (sp = pbkdf2Sync(pass, Buffer.from(a.s!, 'base64'), Number(a.i), 32, 'sha256')));
  const ck = hmac(sp, 'Client Key');
  const wp = `c=biws,r=${a.r}`;
  const sig = hmac(createHash('sha256').update(ck).digest(), `${bare},${first},${wp}`);
  c.write(Buffer.from(`${wp},p=${Buffer.from(ck.map((b, i) => b ^ sig[i]!)).toString('base64')}`).toString('base64') + '\r\n');
  const l2 = await c.reply();
  if (!l2.startsWith('+ ')) return false;
  c.write('\r\n');
  return (await c.reply()).startsWith('a OK');
}

async function loginOnce(o: AuthLoginOptions, mech: BenchMechanism, user: string): Promise<number | null> {
  const t0 = performance.now();
  const c = await connect(o.host, o.port);
  try {
    await c.line();
    let ok: boolean;
    switch (mech) {
      case 'LOGIN':
        c.write(`a LOGIN "${user}" "${o.pass}"\r\n`);
        ok = (await c.reply()).startsWith('a OK');
        break;
      case 'PLAIN':
        c.write(`a AUTHENTICATE PLAIN ${Buffer.from(`\0${user}\0${o.pass}`).toString('base64')}\r\n`);
        ok = (await c.reply()).startsWith('a OK');
        break;
      case 'SCRAM-SHA-256':
        ok = await scram(c, user, o.pass);
        break;
      case 'OAUTHBEARER': {
        c.write(`a AUTHENTICATE OAUTHBEARER ${Buffer.from(`n,a=${user},\x01auth=Bearer ${o.token!(user)}\x01\x01`).toString('base64')}\r\n`);
        const l = await c.reply();
        if (l.startsWith('+ ')) {
          c.write('AQ==\r\n');
          await c.reply();
          ok = false;
        } else ok = l.startsWith('a OK');
        break;
      }
    }
    const ms = performance.now() - t0;
    c.write('z LOGOUT\r\n');
    return ok ? ms : null;
  } finally {
    c.sock.end();
    setTimeout(() => c.sock.destroy(), 1000).unref();
  }
}

async function capabilities(host: string, port: number): Promise<string> {
  const c = await connect(host, port);
  const g = await c.line();
  c.sock.destroy();
  return g;
}

/**
 * Runs every mechanism over its own slice of `users` (each user's first
 * login is cold only once per server start, so mechanisms cannot share them).
 */
export async function runAuthLogins(o: AuthLoginOptions): Promise<MechanismResult[]> {
  const caps = await capabilities(o.host, o.port);
  const per = Math.floor(o.users.length / o.mechanisms.length);
  const out: MechanismResult[] = [];
  for (const [i, mech] of o.mechanisms.entries()) {
    const r: MechanismResult = { mechanism: mech, offered: mech === 'LOGIN' || caps.includes(`AUTH=${mech}`), coldMs: [], cachedMs: [], failures: 0 };
    out.push(r);
    if (!r.offered) continue;
    const users = o.users.slice(i * per, (i + 1) * per);
    for (const u of users) {
      const ms = await loginOnce(o, mech, u);
      if (ms === null) r.failures++;
      else r.coldMs.push(ms);
    }
    for (let k = 0; k < o.repeats; k++) {
      for (const u of users) {
        const ms = await loginOnce(o, mech, u);
        if (ms === null) r.failures++;
        else r.cachedMs.push(ms);
      }
    }
    o.log(`  ${mech}: ${r.coldMs.length} cold, ${r.cachedMs.length} cached logins, ${r.failures} failed`);
  }
  return out;
}
