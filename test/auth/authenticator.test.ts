import assert from 'node:assert/strict';
import { test } from 'node:test';
import { addressKey, Authenticator } from '../../src/auth/authenticator.js';
import { hashPassword } from '../../src/auth/password.js';
import type { MailStore, UserInfo } from '../../src/store/types.js';

async function fakeStore(users: Record<string, string>): Promise<MailStore> {
  const byName = new Map<string, UserInfo>();
  let id = 1;
  for (const [name, pw] of Object.entries(users)) {
    byName.set(name.toLowerCase(), { id: id++, name, passwordHash: await hashPassword(pw), createdAt: new Date() });
  }
  return {
    getUser: async (name: string) => byName.get(name.toLowerCase()) ?? null,
    listCredentials: async () => [],
    setCredential: async () => {},
  } as unknown as MailStore;
}

async function timed<T>(p: Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const v = await p;
  return [v, performance.now() - t0];
}

test('valid credentials resolve the user; wrong password and unknown user resolve null', async () => {
  const auth = new Authenticator(await fakeStore({ alice: 'pw' }), { baseDelayMs: 1, maxDelayMs: 2 });
  assert.equal((await auth.verify('alice', 'pw', '127.0.0.1'))?.name, 'alice');
  assert.equal(await auth.verify('alice', 'nope', '127.0.0.1'), null);
  assert.equal(await auth.verify('bob', 'pw', '127.0.0.1'), null);
  assert.equal(await auth.verify('', 'pw', '127.0.0.1'), null);
  assert.equal(await auth.verify('a\0b', 'pw', '127.0.0.1'), null);
});

test('failure delay doubles per failure up to the cap, and success resets it', async () => {
  const auth = new Authenticator(await fakeStore({ alice: 'pw' }), { baseDelayMs: 40, maxDelayMs: 160 });
  const addr = '192.0.2.1';
  assert.equal(auth.pendingDelayMs('alice', addr), 40);
  const [, d1] = await timed(auth.verify('alice', 'x', addr));
  assert.equal(auth.pendingDelayMs('alice', addr), 80);
  const [, d2] = await timed(auth.verify('alice', 'x', addr));
  assert.equal(auth.pendingDelayMs('alice', addr), 160);
  await auth.verify('alice', 'x', addr);
  assert.equal(auth.pendingDelayMs('alice', addr), 160, 'capped');
  assert.ok(d1 >= 38, `first failure waited ${d1}`);
  assert.ok(d2 >= 78, `second failure waited ${d2}`); // the doubling itself is checked through pendingDelayMs above; wall time under load is noisy
  assert.ok((await auth.verify('alice', 'pw', addr)) !== null);
  assert.equal(auth.pendingDelayMs('alice', addr), 40, 'reset after success');
});

test('counters are per address and per (case-insensitive) user name', async () => {
  const auth = new Authenticator(await fakeStore({ alice: 'pw', bob: 'pw' }), { baseDelayMs: 1, maxDelayMs: 1000 });
  // Failures for alice from one address raise alice's delay from any address...
  await auth.verify('alice', 'x', '192.0.2.1');
  await auth.verify('ALICE', 'x', '192.0.2.1');
  assert.equal(auth.pendingDelayMs('alice', '198.51.100.7'), 4);
  // ...and the address's delay for any name.
  assert.equal(auth.pendingDelayMs('bob', '192.0.2.1'), 4);
  assert.equal(auth.pendingDelayMs('bob', '198.51.100.7'), 1);
});

test('a success does not wash away the count of an address that tried several names', async () => {
  const auth = new Authenticator(await fakeStore({ alice: 'pw', mallory: 'pw' }), { baseDelayMs: 1, maxDelayMs: 1000 });
  const addr = '203.0.113.5';
  await auth.verify('alice', 'x', addr);
  await auth.verify('bob', 'x', addr);
  await auth.verify('carol', 'x', addr);
  assert.ok(await auth.verify('mallory', 'pw', addr));
  assert.equal(auth.pendingDelayMs('dave', addr), 8);
});

test('counters expire after the window', async () => {
  let now = 1_000_000;
  const auth = new Authenticator(await fakeStore({ alice: 'pw' }), { baseDelayMs: 1, maxDelayMs: 100, windowMs: 60_000, now: () => now });
  await auth.verify('alice', 'x', '192.0.2.1');
  await auth.verify('alice', 'x', '192.0.2.1');
  assert.equal(auth.pendingDelayMs('alice', '192.0.2.1'), 4);
  now += 60_001;
  assert.equal(auth.pendingDelayMs('alice', '192.0.2.1'), 1);
});

test('memory is bounded: the least recently touched counters are evicted', async () => {
  const auth = new Authenticator(await fakeStore({}), { baseDelayMs: 0, maxDelayMs: 0, maxTrackedKeys: 10 });
  for (let i = 0; i < 20; i++) await auth.verify(`u${i}`, 'x', `10.0.0.${i}`);
  assert.ok(auth.trackedKeys <= 10, `tracked ${auth.trackedKeys}`);
});

test('addressKey groups IPv6 by /64 and unmaps IPv4-mapped addresses', () => {
  assert.equal(addressKey('::ffff:192.0.2.1'), '192.0.2.1');
  assert.equal(addressKey('192.0.2.1'), '192.0.2.1');
  assert.equal(addressKey('2001:db8:1:2:aaaa::1'), addressKey('2001:db8:1:2:bbbb:cccc:dddd:eeee'));
  assert.notEqual(addressKey('2001:db8:1:2::1'), addressKey('2001:db8:1:3::1'));
  assert.equal(addressKey('::1'), '0:0:0:0::/64');
  assert.equal(addressKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
});

test('a recent successful login is remembered: no second scrypt, but only for the same password and hash', async () => {
  let clock = 1_000_000;
  const store = await fakeStore({ alice: 'pw' });
  const auth = new Authenticator(store, { baseDelayMs: 1, maxDelayMs: 2, now: () => clock });
  const [first, t1] = await timed(auth.verify('alice', 'pw', '127.0.0.1'));
  assert.equal(first?.name, 'alice');
  const [second, t2] = await timed(auth.verify('alice', 'pw', '127.0.0.1'));
  assert.equal(second?.name, 'alice');
  assert.ok(t2 < t1 / 3, `cached login took ${t2} ms, the first ${t1} ms`);
  // Another password is still checked (and fails).
  assert.equal(await auth.verify('alice', 'PW', '127.0.0.1'), null);
  // A password change invalidates the memory.
  const u = (await store.getUser('alice'))!;
  u.passwordHash = await hashPassword('new');
  assert.equal(await auth.verify('alice', 'pw', '127.0.0.1'), null);
  assert.equal((await auth.verify('alice', 'new', '127.0.0.1'))?.name, 'alice');
  // It expires: after VERIFIED_CACHE_MS the hash is computed again (and still succeeds).
  clock += 11 * 60_000;
  const [late, t3] = await timed(auth.verify('alice', 'new', '127.0.0.1'));
  assert.equal(late?.name, 'alice');
  assert.ok(t3 > t2, 'expired entry is verified with scrypt again');
});
