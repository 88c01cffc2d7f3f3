import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createMechanism, decodeSaslBase64, encodeSaslBase64, SASL_MECHANISMS } from '../../src/auth/sasl.js';

const plain = (s: string) => Buffer.from(s, 'utf8');

test('createMechanism knows PLAIN case-insensitively and nothing else', () => {
  assert.deepEqual([...SASL_MECHANISMS], ['PLAIN']);
  assert.equal(createMechanism('plain')?.name, 'PLAIN');
  assert.equal(createMechanism('PLAIN')?.name, 'PLAIN');
  assert.equal(createMechanism('CRAM-MD5'), null);
  assert.equal(createMechanism(''), null);
});

test('PLAIN with initial response (SASL-IR), empty authzid', () => {
  const m = createMechanism('PLAIN')!;
  assert.deepEqual(m.step(plain('\0alice\0pw')), { type: 'done', authzid: '', authcid: 'alice', password: 'pw' });
  // Finished: further steps fail.
  assert.equal(m.step(plain('\0alice\0pw')).type, 'fail');
});

test('PLAIN without initial response: empty challenge, then the response', () => {
  const m = createMechanism('PLAIN')!;
  const c = m.step(null);
  assert.equal(c.type, 'challenge');
  assert.equal(c.type === 'challenge' && c.data.length, 0);
  assert.deepEqual(m.step(plain('alice\0alice\0p w\u00e9')), { type: 'done', authzid: 'alice', authcid: 'alice', password: 'p w\u00e9' });
});

test('PLAIN: an authzid different from authcid is passed on (the authenticator allows it only for master users)', () => {
  const r = createMechanism('PLAIN')!.step(plain('admin\0alice\0pw'));
  assert.deepEqual(r, { type: 'done', authzid: 'admin', authcid: 'alice', password: 'pw' });
});

test('PLAIN: malformed messages fail', () => {
  for (const bad of ['alice pw', 'alice\0pw', '\0\0pw', '\0alice\0', '\0alice\0pw\0x', '']) {
    const r = createMechanism('PLAIN')!.step(plain(bad));
    assert.equal(r.type, 'fail', JSON.stringify(bad));
  }
  const invalidUtf8 = Buffer.from([0, 0x61, 0, 0xff, 0xfe]);
  assert.equal(createMechanism('PLAIN')!.step(invalidUtf8).type, 'fail');
});

test('PLAIN: SASL-IR "=" (empty initial response) fails, as an empty message has no NULs', () => {
  const m = createMechanism('PLAIN')!;
  const r = m.step(decodeSaslBase64('')!);
  assert.equal(r.type, 'fail');
});

test('PLAIN: a second null step (client sent nothing twice) fails', () => {
  const m = createMechanism('PLAIN')!;
  assert.equal(m.step(null).type, 'challenge');
  assert.equal(m.step(null).type, 'fail');
});

test('decodeSaslBase64 is strict', () => {
  assert.deepEqual(decodeSaslBase64('AGFsaWNlAHB3'), plain('\0alice\0pw'));
  assert.deepEqual(decodeSaslBase64(''), Buffer.alloc(0));
  assert.deepEqual(decodeSaslBase64('YQ=='), plain('a'));
  assert.deepEqual(decodeSaslBase64('YWI='), plain('ab'));
  for (const bad of ['=', '*', 'YQ', 'YQ=', 'YQ===', 'Y', 'YR==', 'AGFs aWNl', 'AGFsaWNl\r\n', 'YW-_', 'YWJj\n', '====', 'YQ==YQ==']) {
    assert.equal(decodeSaslBase64(bad), null, JSON.stringify(bad));
  }
  assert.equal(encodeSaslBase64(Buffer.alloc(0)), '');
  assert.equal(encodeSaslBase64(plain('a')), 'YQ==');
});
