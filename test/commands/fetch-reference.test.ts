// FETCH over a real socket compared byte for byte with Dovecot's recorded
// answers for the MIME corpus (test/fixtures/mime/dovecot/, regenerate with
// test/mime/record-dovecot.py): ENVELOPE, BODY, BODYSTRUCTURE, RFC822.SIZE,
// BODY[section] (HEADER, TEXT, HEADER.FIELDS[.NOT], n, n.MIME, n.HEADER,
// n.TEXT, partial), BINARY[n] and BINARY.SIZE[n] for every part.
// Deliberate differences are listed in test/mime/deviations.ts with their
// reasons (and in docs/rfc.md). The session enables UTF8=ACCEPT: Dovecot 2.3
// has no RFC 6857 downgrade and sends 8-bit header text as it is, which is
// what Quire sends to a UTF8=ACCEPT session (the downgraded form a legacy
// session gets is checked in test/commands/utf8-accept.test.ts).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { ByteClient } from '../helpers/bytes-client.js';
import { dovecotAnswers, fixture, fixtureNames } from '../mime/helpers.js';
import { comparable, expectedAnswer } from '../mime/deviations.js';

let srv: TestServer;
let c: ByteClient;
const names = fixtureNames();

before(async () => {
  srv = await startTestServer();
  c = await ByteClient.connect(srv.port, ['alice', 'secret-a']);
  assert.match((await c.command('ENABLE UTF8=ACCEPT')).status, /^OK/);
  assert.match((await c.command('SELECT INBOX')).status, /^OK/);
  for (const name of names) assert.match(await c.append('INBOX', fixture(name)), /^OK/, name);
  assert.match((await c.command('NOOP')).status, /^OK/);
});

after(async () => {
  c.close();
  await srv.stop();
});

const STRUCTURE = new Set(['ENVELOPE', 'BODY', 'BODYSTRUCTURE']);

names.forEach((name, i) => {
  test(`FETCH matches Dovecot: ${name}`, async () => {
    const rec = dovecotAnswers(name);
    const raw = fixture(name);
    const failures: string[] = [];
    let compared = 0;
    for (const [item, recorded] of Object.entries(rec)) {
      const dovecot = STRUCTURE.has(item) ? `${item} ${recorded}` : recorded;
      const want = expectedAnswer(name, item, dovecot, raw, rec.BODYSTRUCTURE);
      if (want === null) continue;
      const got = await c.fetch(i + 1, item);
      compared++;
      // A failed command is compared by its response code only (the text is free).
      const same =
        want === '*' ? !/^(NO|BAD) /.test(got) : want.startsWith('NO ') ? got.startsWith(want.replace(/\].*/s, ']')) : comparable(raw, got, item, rec.BODYSTRUCTURE) === comparable(raw, want, item, rec.BODYSTRUCTURE);
      if (!same) failures.push(`${item}\n    want ${JSON.stringify(want).slice(0, 600)}\n    got  ${JSON.stringify(got).slice(0, 600)}`);
    }
    assert.ok(compared > 0);
    assert.deepEqual(failures, [], `${name}: ${failures.length} of ${compared} items differ\n  ${failures.join('\n  ')}`);
  });
});
