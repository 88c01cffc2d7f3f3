// ENVELOPE / BODY / BODYSTRUCTURE compared with Dovecot's recorded answers
// (test/fixtures/mime/dovecot/, regenerate with test/mime/record-dovecot.py).
// Where we differ on purpose, STRUCTURE_DEVIATIONS (deviations.ts) turns
// Dovecot's text into ours and says why.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatBodyStructure, formatEnvelope, parseMessage } from '../../src/mime/index.js';
import { dovecotAnswers, fixture, fixtureNames, wire } from './helpers.js';
import { STRUCTURE_DEVIATIONS } from './deviations.js';

for (const name of fixtureNames()) {
  test(`matches Dovecot: ${name}`, () => {
    const raw = fixture(name);
    const root = parseMessage(raw);
    const rec = dovecotAnswers(name);
    const ours = {
      ENVELOPE: formatEnvelope(root.envelope!),
      BODY: formatBodyStructure(root, false),
      BODYSTRUCTURE: formatBodyStructure(root, true),
    };
    for (const item of ['ENVELOPE', 'BODY', 'BODYSTRUCTURE'] as const) {
      const expected = rec[item];
      assert.ok(expected !== undefined, `no recorded ${item}`);
      const fix = STRUCTURE_DEVIATIONS[name]?.[item];
      const want = fix ? fix(expected) : expected;
      if (fix) assert.notEqual(want, expected, `deviation for ${name} ${item} no longer applies`);
      assert.equal(wire(ours[item]), want, `${name} ${item}`);
    }
  });
}
