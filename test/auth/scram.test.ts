// SCRAM-SHA-256 server state machine: the RFC 7677 §3 test vector and the
// checks of RFC 5802 (nonce, proof, channel binding, downgrade, SASLprep).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  decodeScramCredentials,
  deriveScramCredentials,
  encodeScramCredentials,
  ScramMechanism,
  type ScramCredentials,
  type ScramCredentialSource,
} from '../../src/auth/scram.js';
import type { ConnectionFacts } from '../../src/auth/facts.js';
import { signatureAlgorithmOid, endPointHash } from '../../src/auth/facts.js';

// RFC 7677 §3.
const V = {
  user: 'user',
  password: 'pencil',
  cnonce: 'rOprNGfwEbeRWgbNEkqO',
  snonce: '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
  salt: 'W22ZaJ0SNY7soEsUEjb6gQ==',
  clientFirst: 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO',
  serverFirst: 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
  clientFinal: 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  serverFinal: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
};

async function source(creds: Record<string, ScramCredentials>): Promise<ScramCredentialSource> {
  return {
    scramCredentials: async (name) => creds[name] ?? null,
    mockSalt: (name) => Buffer.from('mock-salt-' + name).subarray(0, 16),
  };
}

const plainFacts: ConnectionFacts = { remoteAddress: '127.0.0.1', secure: false, plaintextAllowed: true };
const b = (s: string) => Buffer.from(s, 'utf8');
const text = (s: { type: string; data?: Buffer }) => (s.type === 'challenge' ? s.data!.toString('utf8') : `<${s.type}>`);

test('RFC 7677 §3 test vector: server-first and server-final as published', async () => {
  const creds = await deriveScramCredentials(V.password, { salt: Buffer.from(V.salt, 'base64'), iterations: 4096 });
  const m = new ScramMechanism(await source({ user: creds }), plainFacts, false, false, 'sha256', () => V.snonce);
  assert.equal(text(await m.step(b(V.clientFirst))), V.serverFirst);
  assert.equal(text(await m.step(b(V.clientFinal))), V.serverFinal);
  assert.deepEqual(await m.step(Buffer.alloc(0)), { type: 'verified', authcid: 'user', authzid: '', method: 'SCRAM-SHA-256' });
  assert.equal((await m.step(Buffer.alloc(0))).type, 'fail', 'finished');
});

test('the stored encoding round-trips and refuses out-of-bounds values', async () => {
  const c = await deriveScramCredentials('pencil');
  const enc = encodeScramCredentials(c);
  assert.match(enc, /^SCRAM-SHA-256\$4096:/);
  assert.deepEqual(decodeScramCredentials(enc), c);
  assert.equal(decodeScramCredentials(enc.replace('$4096:', '$10:')), null, 'too few iterations');
  assert.equal(decodeScramCredentials(enc.replace('$4096:', '$99999999:')), null, 'too many iterations');
  assert.equal(decodeScramCredentials('SCRAM-SHA-256$4096:c2FsdA==$AAAA:AAAA'), null, 'short keys');
});

test('a wrong proof, a changed nonce and an unknown user all fail (and unknown users still get a salt)', async () => {
  const creds = await deriveScramCredentials(V.password, { salt: Buffer.from(V.salt, 'base64') });
  const src = await source({ user: creds });
  let m = new ScramMechanism(src, plainFacts, false, false, 'sha256', () => V.snonce);
  await m.step(b(V.clientFirst));
  const bad = await m.step(b(V.clientFinal.replace('p=dHzb', 'p=eHzb')));
  assert.deepEqual(bad, { type: 'fail', reason: 'invalid proof', authcid: 'user' });

  m = new ScramMechanism(src, plainFacts, false, false, 'sha256', () => V.snonce);
  await m.step(b(V.clientFirst));
  assert.equal((await m.step(b(V.clientFinal.replace('r=rOpr', 'r=xOpr')))).type, 'fail');

  m = new ScramMechanism(src, plainFacts, false, false, 'sha256', () => V.snonce);
  const first = text(await m.step(b('n,,n=nobody,r=abc')));
  assert.match(first, /^r=abc%hvYD.*,s=bW9jay1zYWx0LW5vYm9keQ==,i=4096$/, 'a mock salt, same shape as a real one');
  const f = await m.step(b('c=biws,r=abc' + V.snonce + ',p=' + Buffer.alloc(32).toString('base64')));
  assert.equal(f.type === 'fail' && f.authcid, 'nobody');
});

test('malformed client-first messages fail without a challenge', async () => {
  const src = await source({});
  for (const msg of ['', 'x,,n=a,r=b', 'n,n=a,r=b', 'n,,r=b,n=a', 'n,,n=a', 'n,,n=a=2X,r=b', 'n,,m=ext,n=a,r=b', 'n,,n=a,r=b,c', 'n,,n=a,r=b c']) {
    const m = new ScramMechanism(src, plainFacts, false, false);
    assert.equal((await m.step(b(msg))).type, msg === 'n,,n=a,r=b,c' ? 'challenge' : 'fail', JSON.stringify(msg));
  }
  // Without an initial response: an empty challenge first (RFC 4422 §5).
  const m = new ScramMechanism(src, plainFacts, false, false);
  assert.equal(text(await m.step(null)), '');
});

test('downgrade: gs2 flag "y" fails when -PLUS was offered, passes when it was not (RFC 5802 §6)', async () => {
  const creds = await deriveScramCredentials(V.password, { salt: Buffer.from(V.salt, 'base64') });
  const src = await source({ user: creds });
  const offered = new ScramMechanism(src, plainFacts, false, true);
  const r = await offered.step(b('y,,n=user,r=abc'));
  assert.equal(r.type, 'fail');
  assert.match(r.type === 'fail' ? r.reason : '', /downgrade/);
  const notOffered = new ScramMechanism(src, plainFacts, false, false);
  assert.equal((await notOffered.step(b('y,,n=user,r=abc'))).type, 'challenge');
  // -PLUS without a binding, or with one the connection does not have.
  assert.equal((await new ScramMechanism(src, plainFacts, true, true).step(b('n,,n=user,r=abc'))).type, 'fail');
  assert.equal((await new ScramMechanism(src, plainFacts, true, true).step(b('p=tls-exporter,,n=user,r=abc'))).type, 'fail');
});

test('channel binding: the c= attribute must carry the gs2 header and this connection\'s binding data', async () => {
  const creds = await deriveScramCredentials('pencil');
  const src = await source({ user: creds });
  const cbData = Buffer.from('0123456789abcdef0123456789abcdef');
  const facts: ConnectionFacts = { ...plainFacts, secure: true, channelBinding: { types: ['tls-exporter'], data: (t) => (t === 'tls-exporter' ? cbData : null) } };
  const { createHmac, createHash, pbkdf2Sync } = await import('node:crypto');
  const run = async (cb: Buffer) => {
    const m = new ScramMechanism(src, facts, true, true, 'sha256', () => 'SRV');
    const gs2 = 'p=tls-exporter,,';
    await m.step(b(gs2 + 'n=user,r=abc'));
    const salted = pbkdf2Sync('pencil', creds.salt, creds.iterations, 32, 'sha256');
    const ck = createHmac('sha256', salted).update('Client Key').digest();
    const wp = `c=${Buffer.concat([b(gs2), cb]).toString('base64')},r=abcSRV`;
    const sig = createHmac('sha256', createHash('sha256').update(ck).digest()).update(`n=user,r=abc,r=abcSRV,s=${creds.salt.toString('base64')},i=${creds.iterations},${wp}`).digest();
    return m.step(b(`${wp},p=${Buffer.from(ck.map((x, i) => x ^ sig[i]!)).toString('base64')}`));
  };
  assert.equal((await run(cbData)).type, 'challenge', 'right binding: server-final');
  const wrong = await run(Buffer.from('x'.repeat(32)));
  assert.equal(wrong.type === 'fail' && wrong.reason, 'channel binding mismatch');
});

test('SASLprep: the user name is prepared (RFC 4013: soft hyphen removed), the password too', async () => {
  const creds = await deriveScramCredentials('I\u00ADX'); // SASLprep("I<SOFT HYPHEN>X") = "IX"
  const same = await deriveScramCredentials('IX', { salt: creds.salt });
  assert.deepEqual(same.storedKey, creds.storedKey);
  let asked = '';
  const src: ScramCredentialSource = { scramCredentials: async (n) => { asked = n; return null; }, mockSalt: () => Buffer.alloc(16) };
  await new ScramMechanism(src, plainFacts, false, false).step(b('n,,n=us\u00ADer,r=abc'));
  assert.equal(asked, 'user');
  // A prohibited character (RFC 4013 §2.3: U+0007 control) fails.
  const m = new ScramMechanism(src, plainFacts, false, false);
  assert.equal((await m.step(b('n,,n=us\u0007er,r=abc'))).type, 'fail');
});

test('tls-server-end-point picks the certificate\'s signature hash (RFC 5929 §4.1)', async () => {
  const { default: selfsigned } = await import('selfsigned');
  for (const [alg, want] of [['sha256', 'sha256'], ['sha384', 'sha384'], ['sha512', 'sha512'], ['sha1', 'sha256']] as const) {
    const pems = await selfsigned.generate([{ name: 'commonName', value: 'x' }], { algorithm: alg, keySize: 2048 });
    const der = Buffer.from(pems.cert.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    assert.ok(signatureAlgorithmOid(der)?.startsWith('1.2.840.113549.1.1.'), alg);
    assert.equal(endPointHash(der), want, alg);
  }
});
