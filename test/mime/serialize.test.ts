// Stored structure round trip.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deserializeStructure, formatBodyStructure, parseMessage, serializeStructure } from '../../src/mime/index.js';
import { fixture, fixtureNames } from './helpers.js';

test('serialize / deserialize gives the same tree for every fixture', () => {
  for (const name of fixtureNames()) {
    const root = parseMessage(fixture(name));
    const json = serializeStructure(root);
    const back = deserializeStructure(json);
    assert.deepEqual(back, root, name);
    assert.equal(formatBodyStructure(back, true), formatBodyStructure(root, true));
  }
});

test('stored form is compact', () => {
  const root = parseMessage(fixture('01-plain.eml'));
  const json = serializeStructure(root);
  assert.ok(json.length < 400, json);
});

test('bad input is rejected with an error', () => {
  for (const bad of ['', 'null', '{}', '{"v":99,"r":{}}', '{"v":1,"r":{"o":[5,1,2]}}', '{"v":1,"r":{"o":[0,1,2],"c":[]}}', '{"v":1,"r":{"o":[0,1,2],"t":"x"}}']) {
    assert.throws(() => deserializeStructure(bad), /invalid stored MIME structure/, bad);
  }
});
