import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hashPassword, needsRehash, verifyDummy, verifyPassword, SCRYPT_LOG_N } from '../../src/auth/password.js';

test('hash has the documented self-describing format', async () => {
  const h = await hashPassword('correct horse');
  assert.match(h, new RegExp(`^\\$scrypt\\$ln=${SCRYPT_LOG_N},r=8,p=1\\$[A-Za-z0-9+/]{22}\\$[A-Za-z0-9+/]{43}$`));
  assert.equal(needsRehash(h), false);
});

test('same password hashes differently (random salt)', async () => {
  const [a, b] = await Promise.all([hashPassword('pw'), hashPassword('pw')]);
  assert.notEqual(a, b);
});

test('verify accepts the right password and rejects wrong ones', async () => {
  const h = await hashPassword('s3cret ünïcode');
  assert.equal(await verifyPassword('s3cret ünïcode', h), true);
  assert.equal(await verifyPassword('s3cret unicode', h), false);
  assert.equal(await verifyPassword('', h), false);
  assert.equal(await verifyPassword('s3cret ünïcode ', h), false);
});

test('tampered or malformed encodings never verify and never throw', async () => {
  const h = await hashPassword('pw');
  const parts = h.split('$');
  const flipLast = (s: string) => s.slice(0, -2) + (s.at(-2) === 'A' ? 'B' : 'A') + s.at(-1);
  const tampered = [
    [...parts.slice(0, 4), flipLast(parts[4]!)].join('$'), // hash changed
    [...parts.slice(0, 3), flipLast(parts[3]!), parts[4]].join('$'), // salt changed
    h.replace('ln=15', 'ln=14'), // cost lowered
    h.replace('ln=15', 'ln=40'), // absurd cost: refused without computing
    h.replace('r=8', 'r=999'),
    h.replace('$scrypt$', '$argon2id$'),
    h + '$extra',
    h.replace(/\$[^$]+$/, '$!!!notbase64'),
    h.replace(/\$[^$]+$/, '$'),
    '',
    'plaintext',
  ];
  for (const t of tampered) {
    assert.equal(await verifyPassword('pw', t), false, `should reject ${JSON.stringify(t)}`);
    assert.equal(needsRehash(t) || t.includes('ln=15'), true);
  }
});

test('parameters are read from the encoding (a future cost increase keeps old hashes valid)', async () => {
  const { scryptSync, randomBytes } = await import('node:crypto');
  const salt = randomBytes(16);
  const key = scryptSync('old', salt, 32, { N: 2 ** 12, r: 8, p: 1 });
  const enc = `$scrypt$ln=12,r=8,p=1$${salt.toString('base64').replace(/=+$/, '')}$${key.toString('base64').replace(/=+$/, '')}`;
  assert.equal(await verifyPassword('old', enc), true);
  assert.equal(await verifyPassword('new', enc), false);
  assert.equal(needsRehash(enc), true);
});

test('dummy verification exists for unknown users and costs a real hash', async () => {
  const h = await hashPassword('pw');
  const t0 = performance.now();
  await verifyPassword('pw', h);
  const real = performance.now() - t0;
  const t1 = performance.now();
  assert.equal(await verifyDummy('pw'), false);
  const dummy = performance.now() - t1;
  // Same KDF, same cost: the dummy must not be an order of magnitude faster.
  assert.ok(dummy > real / 5, `dummy ${dummy.toFixed(1)} ms vs real ${real.toFixed(1)} ms`);
});
