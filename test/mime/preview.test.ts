// PREVIEW (RFC 8970).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildPreview, htmlToText, parseMessage, PREVIEW_MAX_CHARS } from '../../src/mime/index.js';
import { fixture } from './helpers.js';

const preview = (name: string) => {
  const raw = fixture(name);
  return buildPreview(raw, parseMessage(raw));
};

test('first text/plain part, decoded', () => {
  assert.equal(preview('02-alternative.eml'), 'Hello € world, this is a soft line break.');
  assert.equal(preview('03-mixed-attach.eml'), 'See the attached report.');
  assert.equal(preview('30-koi8-body.eml'), 'Привет совет!');
  assert.equal(preview('27-quoted-printable.eml'), 'Café crème brûlée, très bon. = equals sign Bad escape =ZZ stays.');
  assert.equal(preview('25-nested-multipart.eml'), 'alt plain');
  assert.equal(preview('04-nested-rfc822.eml'), 'Forwarding a forward.');
});

test('text/html stripped when there is no text/plain', () => {
  assert.equal(preview('31-html-only.eml'), 'First paragraph <tag>. Second paragraph.');
  assert.equal(htmlToText('a&#233;&#xE9;&unknown;<br>b'), 'aéé&unknown; b');
});

test('no text gives an empty string', () => {
  assert.equal(preview('29-unknown-cte.eml'), '');
  assert.equal(preview('16-empty-body.eml'), '');
});

test('limited to 200 characters (RFC 8970 §3.3)', () => {
  const raw = Buffer.from('Content-Type: text/plain; charset=utf-8\r\n\r\n' + 'ä'.repeat(300) + '\r\n');
  const p = buildPreview(raw, parseMessage(raw));
  assert.equal(Array.from(p).length, PREVIEW_MAX_CHARS);
  const emoji = Buffer.from('\r\n' + '😀 '.repeat(300));
  assert.ok(Array.from(buildPreview(emoji, parseMessage(emoji))).length <= 200);
});
