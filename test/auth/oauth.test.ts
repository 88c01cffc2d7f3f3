// Bearer token validation (JWT against a JWKS, RFC 7662 introspection)
// against a local identity provider started here, then OAUTHBEARER and
// XOAUTH2 through IMAP AUTHENTICATE, including the RFC 7628 §3.2.2 failure
// exchange, and imapflow logging in with an access token.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImapFlow } from 'imapflow';
import { OAuthValidator, JWKS_MIN_REFETCH_MS } from '../../src/auth/oauth.js';
import { AUDIENCE, mint, newKey, startIdp, type Idp } from '../helpers/idp.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient } from '../helpers/imap.js';
import type { AuthLogger } from '../../src/auth/authenticator.js';

let idp: Idp;
let idps: Idp;
let dir: string;
before(async () => {
  idp = await startIdp();
  idps = await startIdp({ https: true });
  dir = mkdtempSync(join(tmpdir(), 'quire-oauth-'));
});
after(async () => {
  await idp.close();
  await idps.close();
  rmSync(dir, { recursive: true, force: true });
});

const issuerOf = (i: Idp, extra: Record<string, unknown> = {}) => ({ issuer: i.issuer, audience: AUDIENCE, jwks: i.jwksUrl, algorithms: ['RS256', 'ES256'], ...extra });

test('JWT: RS256 and ES256 tokens from the configured issuer validate; the user is the email claim', async () => {
  const v = new OAuthValidator({ issuers: [issuerOf(idp)] });
  assert.deepEqual(await v.validate(idp.token('alice'), null), { ok: true, user: 'alice', issuer: idp.issuer });
  assert.deepEqual(await v.validate(idp.token('bob', {}, 1), 'bob'), { ok: true, user: 'bob', issuer: idp.issuer });
  const fetches = idp.jwksFetches;
  await v.validate(idp.token('alice'), null);
  assert.equal(idp.jwksFetches, fetches, 'the JWKS is cached');
});

test('JWT: expiry, nbf, audience, issuer, algorithm allow-list, signature and claimed user are enforced', async () => {
  const v = new OAuthValidator({ issuers: [issuerOf(idp, { clockSkewSeconds: 30 })] });
  const now = Math.floor(Date.now() / 1000);
  const reason = async (tok: string, user: string | null = null) => {
    const r = await v.validate(tok, user);
    return r.ok ? 'ok' : r.reason;
  };
  assert.equal(await reason(idp.token('alice', { exp: now - 60 })), 'token expired');
  assert.equal(await reason(idp.token('alice', { exp: now - 10 })), 'ok', 'within the skew');
  assert.equal(await reason(idp.token('alice', { nbf: now + 120 })), 'token not yet valid');
  assert.equal(await reason(idp.token('alice', { aud: 'someone-else' })), 'token is for another audience');
  assert.equal(await reason(idp.token('alice', { aud: ['x', AUDIENCE] })), 'ok', 'aud as an array');
  assert.equal(await reason(idp.token('alice', { iss: 'https://evil.example/' })), 'unknown issuer');
  assert.equal(await reason(idp.token('alice', { exp: undefined })), 'token has no exp');
  assert.equal(await reason(idp.token('alice'), 'bob'), 'token was issued for another user than bob');
  // alg "none" and HMAC with the public key as secret (algorithm confusion) are refused.
  const [h, p] = idp.token('alice').split('.');
  const none = Buffer.from(JSON.stringify({ alg: 'none', kid: 'rsa-1' })).toString('base64url');
  assert.match(await reason(`${none}.${p}.`), /malformed JWT|not allowed/);
  const hs = Buffer.from(JSON.stringify({ alg: 'HS256', kid: 'rsa-1' })).toString('base64url');
  assert.equal(await reason(`${hs}.${p}.${Buffer.from('x').toString('base64url')}`), 'algorithm HS256 not allowed');
  // A changed payload breaks the signature.
  const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p!, 'base64url').toString()), email: 'root' })).toString('base64url');
  assert.equal(await reason(`${h}.${forged}.${idp.token('alice').split('.')[2]}`), 'bad signature');
  // A key that is not the issuer's.
  const stranger = newKey('rsa-1', 'RS256');
  assert.equal(await reason(mint(stranger, { iss: idp.issuer, aud: AUDIENCE, email: 'alice', exp: now + 60 })), 'bad signature');
  // ES256 is refused by an issuer that allows only RS256.
  const rsOnly = new OAuthValidator({ issuers: [issuerOf(idp, { algorithms: ['RS256'] })] });
  const r = await rsOnly.validate(idp.token('alice', {}, 1), null);
  assert.equal(r.ok ? 'ok' : r.reason, 'algorithm ES256 not allowed');
  assert.throws(() => new OAuthValidator({ issuers: [issuerOf(idp, { algorithms: ['HS256'] })] }), /not supported/);
});

test('JWKS: a new kid at the provider (key rotation) is fetched, at most once per interval', async () => {
  let clock = Date.now();
  const v = new OAuthValidator({ issuers: [issuerOf(idp)] }, () => clock);
  assert.ok((await v.validate(idp.token('alice'), null)).ok);
  const rotated = newKey('rsa-2', 'RS256');
  idp.keys.push(rotated);
  const tok = () => mint(rotated, { iss: idp.issuer, aud: AUDIENCE, email: 'alice', exp: Math.floor(clock / 1000) + 60 });
  const before = idp.jwksFetches;
  const r1 = await v.validate(tok(), null);
  assert.equal(r1.ok ? 'ok' : r1.reason, 'no matching key in the JWKS', 'fetched moments ago: no re-fetch yet');
  assert.equal(idp.jwksFetches, before);
  clock += JWKS_MIN_REFETCH_MS + 1000;
  assert.ok((await v.validate(tok(), null)).ok, 'the unknown kid triggered a re-fetch');
  assert.equal(idp.jwksFetches, before + 1);
  idp.keys.pop();
});

test('JWKS from a file (re-read when it changes) and over HTTPS with a private CA', async () => {
  const file = join(dir, 'jwks.json');
  const k1 = newKey('f1', 'ES256');
  const k2 = newKey('f2', 'EdDSA');
  writeFileSync(file, JSON.stringify({ keys: [k1.jwk] }));
  let clock = Date.now();
  const v = new OAuthValidator({ issuers: [{ issuer: 'file-issuer', audience: AUDIENCE, jwks: file, algorithms: ['ES256', 'EdDSA'], refreshMs: 1000 }] }, () => clock);
  const exp = Math.floor(clock / 1000) + 3600;
  assert.ok((await v.validate(mint(k1, { iss: 'file-issuer', aud: AUDIENCE, sub: 'carol', exp }), null)).ok);
  writeFileSync(file, JSON.stringify({ keys: [k2.jwk] }));
  utimesSync(file, new Date(), new Date(Date.now() + 5000));
  clock += 2000;
  const r = await v.validate(mint(k2, { iss: 'file-issuer', aud: AUDIENCE, sub: 'carol', exp }), null);
  assert.deepEqual(r, { ok: true, user: 'carol', issuer: 'file-issuer' }, 'EdDSA key from the rewritten file');
  const old = await v.validate(mint(k1, { iss: 'file-issuer', aud: AUDIENCE, sub: 'carol', exp }), null);
  assert.equal(old.ok, false, 'the removed key no longer verifies');

  const noCa = new OAuthValidator({ issuers: [issuerOf(idps)] });
  const bad = await noCa.validate(idps.token('alice'), null);
  assert.match(bad.ok ? '' : bad.reason, /JWKS unavailable/, 'an unknown CA is refused');
  const withCa = new OAuthValidator({ issuers: [issuerOf(idps, { ca: idps.ca })] });
  assert.ok((await withCa.validate(idps.token('alice'), null)).ok);
});

test('RFC 7662 introspection for opaque tokens: active, inactive, client authentication, cached', async () => {
  idp.opaque.set('opaque-good', { active: true, username: 'alice', exp: Math.floor(Date.now() / 1000) + 300, iss: 'idp' });
  idp.opaque.set('opaque-old', { active: false });
  const v = new OAuthValidator({ introspection: { url: idp.introspectUrl, clientId: idp.clientId, clientSecret: idp.clientSecret } });
  assert.deepEqual(await v.validate('opaque-good', 'alice'), { ok: true, user: 'alice', issuer: 'idp' });
  const n = idp.introspections;
  await v.validate('opaque-good', null);
  assert.equal(idp.introspections, n, 'cached');
  const r = await v.validate('opaque-old', null);
  assert.equal(r.ok ? '' : r.reason, 'token is not active');
  const wrongClient = new OAuthValidator({ introspection: { url: idp.introspectUrl, clientId: idp.clientId, clientSecret: 'nope' } });
  const w = await wrongClient.validate('opaque-good', null);
  assert.match(w.ok ? '' : w.reason, /introspection failed: HTTP 401/);
});

// ---- through IMAP

const events: { msg: string; fields: Record<string, unknown> }[] = [];
const log: AuthLogger = { debug() {}, warn() {}, error() {}, info: (msg, fields = {}) => { events.push({ msg, fields }); } };

async function server(mechanisms?: string[]): Promise<TestServer> {
  return startTestServer({
    auth: { log, bearer: new OAuthValidator({ issuers: [issuerOf(idp)], scope: 'imap', configurationUrl: idp.issuer + '.well-known/openid-configuration' }), ...(mechanisms ? { mechanisms } : {}) },
  });
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

test('OAUTHBEARER and XOAUTH2 are advertised only with a validator; success and the RFC 7628 §3.2.2 failure exchange', async () => {
  const plain = await startTestServer();
  const c0 = await RawClient.connect(plain.port);
  assert.doesNotMatch(c0.greeting, /OAUTHBEARER|XOAUTH2/);
  await c0.close();
  await plain.stop();

  const srv = await server();
  try {
    const c = await RawClient.connect(srv.port);
    assert.match(c.greeting, /AUTH=OAUTHBEARER AUTH=XOAUTH2/);
    // Failure: JSON error challenge, the client's %x01, then NO.
    const tok = idp.token('alice', { aud: 'wrong' });
    c.write(`a1 AUTHENTICATE OAUTHBEARER ${b64(`n,a=alice,\x01host=localhost\x01port=143\x01auth=Bearer ${tok}\x01\x01`)}\r\n`);
    const ch = await c.readLine();
    assert.match(ch, /^\+ /);
    const err = JSON.parse(Buffer.from(ch.slice(2), 'base64').toString());
    assert.deepEqual(err, { status: 'invalid_token', scope: 'imap', 'openid-configuration': idp.issuer + '.well-known/openid-configuration' });
    c.write('AQ==\r\n');
    assert.match(await c.readLine(), /^a1 NO \[AUTHENTICATIONFAILED\]/);
    // Success with a good token (and without SASL-IR).
    c.write('a2 AUTHENTICATE OAUTHBEARER\r\n');
    assert.equal(await c.readLine(), '+ ');
    c.write(b64(`n,a=alice,\x01auth=Bearer ${idp.token('alice')}\x01\x01`) + '\r\n');
    assert.match(await c.readLine(), /^a2 OK \[CAPABILITY /);
    await c.close();

    const x = await RawClient.connect(srv.port);
    x.write(`x1 AUTHENTICATE XOAUTH2 ${b64(`user=bob\x01auth=Bearer ${idp.token('alice')}\x01\x01`)}\r\n`);
    const xc = await x.readLine();
    assert.deepEqual(JSON.parse(Buffer.from(xc.slice(2), 'base64').toString()), { status: '401', schemes: 'bearer', scope: 'imap' });
    x.write('\r\n');
    assert.match(await x.readLine(), /^x1 NO \[AUTHENTICATIONFAILED\]/);
    const fail = events.filter((e) => e.msg === 'credentials refused').at(-1);
    assert.match(String(fail?.fields.reason), /another user than bob/);
    x.write(`x2 AUTHENTICATE XOAUTH2 ${b64(`user=bob\x01auth=Bearer ${idp.token('bob')}\x01\x01`)}\r\n`);
    assert.match(await x.readLine(), /^x2 OK/);
    const ok = events.filter((e) => e.msg === 'credentials verified').at(-1);
    assert.equal(ok?.fields.mechanism, 'XOAUTH2');
    assert.equal(ok?.fields.credential, 'token:' + idp.issuer);
    await x.close();

    // A token for a user the user database does not know fails.
    const u = await RawClient.connect(srv.port);
    u.write(`u1 AUTHENTICATE OAUTHBEARER ${b64(`n,,\x01auth=Bearer ${idp.token('mallory')}\x01\x01`)}\r\n`);
    assert.match(await u.readLine(), /^u1 NO/);
    await u.close();
  } finally {
    await srv.stop();
  }
});

test('imapflow logs in with an access token: OAUTHBEARER, and XOAUTH2 where only that is offered', async () => {
  for (const [mechs, want] of [[undefined, 'OAUTHBEARER'], [['XOAUTH2', 'PLAIN'], 'XOAUTH2']] as const) {
    const srv = await server(mechs as string[] | undefined);
    try {
      events.length = 0;
      const client = new ImapFlow({ host: '127.0.0.1', port: srv.port, secure: false, auth: { user: 'alice', accessToken: idp.token('alice') }, logger: false, tls: { rejectUnauthorized: false } });
      await client.connect();
      const lock = await client.getMailboxLock('INBOX');
      lock.release();
      await client.logout();
      assert.equal(events.find((e) => e.msg === 'credentials verified')?.fields.mechanism, want);
      const bad = new ImapFlow({ host: '127.0.0.1', port: srv.port, secure: false, auth: { user: 'alice', accessToken: idp.token('alice', { exp: 1 }) }, logger: false, tls: { rejectUnauthorized: false } });
      await assert.rejects(bad.connect());
      bad.close();
    } finally {
      await srv.stop();
    }
  }
});
