// The mechanism registry: what mechanismsFor() offers for given connection
// facts, and that a newly registered mechanism reaches IMAP's capability list
// and AUTHENTICATE with no change to the protocol code (POP3's AUTH uses the
// same two calls).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mechanismsFor, registerMechanism, startExchange } from '../../src/auth/mechanisms.js';
import { Authenticator } from '../../src/auth/authenticator.js';
import type { ConnectionFacts } from '../../src/auth/facts.js';
import type { SaslMechanism, SaslStep } from '../../src/auth/sasl.js';
import { startTestServer } from '../helpers/server.js';
import { RawClient } from '../helpers/imap.js';
import type { MailStore } from '../../src/store/types.js';

const store = {} as MailStore;
const plain: ConnectionFacts = { remoteAddress: '127.0.0.1', secure: false, plaintextAllowed: true };
const tls: ConnectionFacts = { remoteAddress: '192.0.2.1', secure: true, plaintextAllowed: true, channelBinding: { types: ['tls-exporter'], data: () => Buffer.alloc(32) } };

test('mechanismsFor: by TLS, channel binding, policy, token validator and the admin\'s allow-list', () => {
  const a = new Authenticator(store);
  assert.deepEqual(mechanismsFor(plain, a), ['SCRAM-SHA-256', 'PLAIN']);
  assert.deepEqual(mechanismsFor(tls, a), ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256', 'PLAIN']);
  assert.deepEqual(mechanismsFor({ ...plain, plaintextAllowed: false }, a), []);
  const withTokens = new Authenticator(store, { bearer: { validate: async () => ({ ok: false, reason: 'x', status: 'invalid_token' }) } });
  assert.deepEqual(mechanismsFor(tls, withTokens), ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256', 'OAUTHBEARER', 'XOAUTH2', 'PLAIN']);
  const limited = new Authenticator(store, { mechanisms: ['plain', 'SCRAM-SHA-256'] });
  assert.deepEqual(mechanismsFor(tls, limited), ['SCRAM-SHA-256', 'PLAIN']);
  assert.equal(startExchange('SCRAM-SHA-256-PLUS', tls, limited), null, 'not offered: no exchange');
  assert.equal(startExchange('scram-sha-256', tls, limited)?.mechanism.name, 'SCRAM-SHA-256');
});

class EchoMechanism implements SaslMechanism {
  readonly name = 'X-QUIRE-TEST';
  private asked = false;
  step(resp: Buffer | null): SaslStep {
    if (!this.asked) {
      this.asked = true;
      if (resp === null || resp.length === 0) return { type: 'challenge', data: Buffer.from('who?') };
    }
    const who = (resp ?? Buffer.alloc(0)).toString();
    return who === 'alice' ? { type: 'verified', authcid: 'alice', authzid: '', method: 'test' } : { type: 'fail', reason: 'not alice', authcid: who };
  }
}

test('a registered mechanism is advertised and runs through IMAP AUTHENTICATE unchanged', async () => {
  registerMechanism({ name: 'X-QUIRE-TEST', offered: (f) => f.plaintextAllowed, create: () => new EchoMechanism() });
  const srv = await startTestServer();
  try {
    const c = await RawClient.connect(srv.port);
    assert.match(c.greeting, /AUTH=PLAIN AUTH=X-QUIRE-TEST/);
    c.write('a1 AUTHENTICATE X-QUIRE-TEST\r\n');
    assert.equal(await c.readLine(), `+ ${Buffer.from('who?').toString('base64')}`);
    c.write(Buffer.from('bob').toString('base64') + '\r\n');
    assert.match(await c.readLine(), /^a1 NO \[AUTHENTICATIONFAILED\]/);
    c.write(`a2 AUTHENTICATE X-QUIRE-TEST ${Buffer.from('alice').toString('base64')}\r\n`);
    assert.match(await c.readLine(), /^a2 OK/);
    await c.close();
  } finally {
    await srv.stop();
  }
});
