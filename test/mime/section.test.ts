// Body sections (RFC 9051 §6.4.5) and BINARY (RFC 3516).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  binaryContent,
  binarySize,
  decodeBase64,
  decodeQuotedPrintable,
  parseMessage,
  parseSectionText,
  sectionBytes,
  sectionRange,
  type SectionSpec,
} from '../../src/mime/index.js';
import { fixture } from './helpers.js';

const get = (raw: Buffer, spec: SectionSpec) => sectionBytes(raw, parseMessage(raw), spec).toString('utf8');

test('nested message sections (answers checked against Dovecot)', () => {
  const raw = fixture('04-nested-rfc822.eml');
  const whole = get(raw, { path: [], text: '' });
  assert.equal(whole, raw.toString('utf8'));
  assert.ok(get(raw, { path: [2], text: '' }).startsWith('From: middle@example.com\r\n'));
  assert.ok(get(raw, { path: [2], text: '' }).endsWith('--middle--'));
  const h = get(raw, { path: [2], text: 'HEADER' });
  assert.ok(h.startsWith('From: middle@example.com\r\n') && h.endsWith('Content-Type: multipart/mixed; boundary="middle"\r\n\r\n'));
  assert.equal(h.length, 214);
  assert.equal(get(raw, { path: [2, 2, 1], text: '' }), 'Innermost body\r\nline two');
  assert.equal(get(raw, { path: [2], text: 'MIME' }), 'Content-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\n');
  assert.equal(get(raw, { path: [], text: 'HEADER.FIELDS', fields: ['Subject', 'X-None'] }), 'Subject: Fwd: Fwd: nested\r\n\r\n');
  assert.equal(get(raw, { path: [], text: 'HEADER.FIELDS', fields: ['X-None'] }), '\r\n');
  assert.equal(get(raw, { path: [2, 2], text: 'HEADER.FIELDS', fields: ['subject', 'FROM'] }), 'From: inner@example.com\r\nSubject: nested\r\n\r\n');
  assert.equal(get(raw, { path: [2, 2], text: 'TEXT' }), 'Innermost body\r\nline two');
  assert.equal(get(raw, { path: [2, 1], text: '' }), 'Middle text.');
  assert.equal(get(raw, { path: [9], text: '' }), '');
  // A leaf's part 1 is itself, once (Dovecot: BODY[1.1] is BODY[1], BODY[1.1.1] and BODY[2.2.1.1] are empty).
  assert.equal(get(raw, { path: [1, 1], text: '' }), 'Forwarding a forward.');
  assert.equal(get(raw, { path: [1, 1, 1], text: '' }), '');
  assert.equal(get(raw, { path: [2, 2, 1, 1], text: '' }), '');
  assert.equal(get(raw, { path: [1, 1], text: 'MIME' }), 'Content-Type: text/plain\r\n\r\n');
  assert.equal(get(raw, { path: [1], text: 'HEADER' }), '');
  assert.equal(sectionRange(parseMessage(raw), { path: [], text: 'MIME' }), null);
});

test('HEADER.FIELDS.NOT keeps folding and order', () => {
  const raw = Buffer.from('A: 1\r\nSubject: x\r\n  y\r\nB: 2\r\n\r\nbody');
  assert.equal(get(raw, { path: [], text: 'HEADER.FIELDS.NOT', fields: ['a'] }), 'Subject: x\r\n  y\r\nB: 2\r\n\r\n');
  assert.equal(get(raw, { path: [], text: 'HEADER.FIELDS', fields: ['subject'] }), 'Subject: x\r\n  y\r\n\r\n');
  const nosep = Buffer.from('Subject: no newline');
  assert.equal(get(nosep, { path: [], text: 'HEADER.FIELDS', fields: ['subject'] }), 'Subject: no newline\r\n\r\n');
});

test('single-part message: part 1 is the body, 1.MIME its header', () => {
  const raw = fixture('01-plain.eml');
  const root = parseMessage(raw);
  assert.equal(get(raw, { path: [1], text: '' }), get(raw, { path: [], text: 'TEXT' }));
  assert.equal(get(raw, { path: [1], text: 'MIME' }), get(raw, { path: [], text: 'HEADER' }));
  assert.equal(get(raw, { path: [2], text: '' }), '');
  assert.deepEqual(sectionRange(root, { path: [], text: 'TEXT' }), { start: root.bodyStart, end: raw.length });
});

test('top-level message/rfc822: 1 is the embedded message, 1.1 its body', () => {
  const raw = fixture('24-rfc822-nonmultipart-top.eml');
  assert.ok(get(raw, { path: [1], text: '' }).startsWith('From: inner@example.com'));
  assert.ok(get(raw, { path: [1], text: 'HEADER' }).endsWith('<inner24@example.com>\r\n\r\n'));
  assert.equal(get(raw, { path: [1], text: 'TEXT' }), 'hello\r\n');
  assert.equal(get(raw, { path: [1, 1], text: '' }), 'hello\r\n');
  assert.equal(get(raw, { path: [1, 2], text: '' }), '');
});

test('parseSectionText', () => {
  assert.deepEqual(parseSectionText(''), { path: [], text: '' });
  assert.deepEqual(parseSectionText('1.2.3'), { path: [1, 2, 3], text: '' });
  assert.deepEqual(parseSectionText('1.header.fields.not'), { path: [1], text: 'HEADER.FIELDS.NOT' });
  assert.deepEqual(parseSectionText('TEXT'), { path: [], text: 'TEXT' });
  assert.deepEqual(parseSectionText('4.MIME'), { path: [4], text: 'MIME' });
  assert.equal(parseSectionText('MIME'), null);
  assert.equal(parseSectionText('0'), null);
  assert.equal(parseSectionText('1.FOO'), null);
  assert.equal(parseSectionText('1..2'), null);
});

test('BINARY: base64, quoted-printable, identity, unknown CTE', () => {
  let raw = fixture('28-base64-text.eml');
  let root = parseMessage(raw);
  const r = binaryContent(raw, root, [1]);
  assert.equal(r.kind, 'ok');
  assert.equal(r.kind === 'ok' && r.data.toString('utf8'), 'Hello from base64! Ünicode text.');
  assert.deepEqual(binarySize(raw, root, [1]), { kind: 'ok', size: Buffer.byteLength('Hello from base64! Ünicode text.') });

  raw = fixture('02-alternative.eml');
  root = parseMessage(raw);
  const q = binaryContent(raw, root, [1]);
  assert.equal(q.kind === 'ok' && q.data.toString('utf8'), 'Hello € world, this is a soft line break.');
  const h = binaryContent(raw, root, [2]);
  assert.equal(h.kind === 'ok' && h.data.length, root.children![1]!.size);
  assert.deepEqual(binaryContent(raw, root, [3]), { kind: 'nonexistent' });
  const all = binaryContent(raw, root, []);
  assert.equal(all.kind === 'ok' && all.data.length, raw.length);

  raw = fixture('29-unknown-cte.eml');
  root = parseMessage(raw);
  assert.deepEqual(binaryContent(raw, root, [1]), { kind: 'unknown-cte', encoding: 'x-uuencode' });
  assert.deepEqual(binarySize(raw, root, [1]), { kind: 'unknown-cte', encoding: 'x-uuencode' });
});

test('quoted-printable details (RFC 2045 §6.7)', () => {
  const raw = fixture('27-quoted-printable.eml');
  const root = parseMessage(raw);
  const r = binaryContent(raw, root, [1]);
  assert.ok(r.kind === 'ok');
  assert.equal(r.data.toString('latin1'), 'Café crème brûlée, très bon.  = equals sign\r\nBad escape =ZZ stays.\r\n');
  assert.equal(decodeQuotedPrintable(Buffer.from('a=\nb=20=\r\nc =  \r\nd=')).toString(), 'ab c d');
  assert.equal(decodeQuotedPrintable(Buffer.from('=e9=E9')).toString('latin1'), 'éé');
});

test('base64 is lenient', () => {
  assert.equal(decodeBase64(Buffer.from('SGVs\r\nbG8=')).toString(), 'Hello');
  assert.equal(decodeBase64(Buffer.from('SGV!sbG8')).toString(), 'Hello');
  assert.equal(decodeBase64(Buffer.from('SGVsbG8')).toString(), 'Hello');
  assert.equal(decodeBase64(Buffer.from('')).length, 0);
});
