// Part tree and byte offsets over the corpus (test/fixtures/mime/).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMessage, resolvePart, type MimePart } from '../../src/mime/index.js';
import { body, checkTree, fixture, fixtureNames, head } from './helpers.js';

const part = (root: MimePart, path: number[]): MimePart => {
  const p = resolvePart(root, path);
  assert.ok(p, `part ${path.join('.')} exists`);
  return p;
};

test('every fixture parses into a well-formed tree', () => {
  for (const name of fixtureNames()) {
    const raw = fixture(name);
    const root = parseMessage(raw);
    checkTree(raw, root, (m) => assert.fail(`${name}: ${m}`));
    assert.ok(root.envelope, name);
  }
});

test('plain message: header ends after the blank line, body is the rest', () => {
  const raw = fixture('01-plain.eml');
  const root = parseMessage(raw);
  assert.ok(head(raw, root).startsWith('Return-Path:'));
  assert.ok(head(raw, root).endsWith('CHARSET=US-ASCII\r\n\r\n'));
  assert.equal(body(raw, root), 'Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n');
  assert.equal(root.type, 'text');
  assert.equal(root.subtype, 'plain');
  assert.deepEqual(root.params, [['charset', 'US-ASCII']]);
  assert.equal(root.lines, 1);
  assert.equal(root.size, 55);
  assert.equal(root.encoding, '7bit');
});

test('multipart/alternative: preamble and epilogue excluded, CRLF before delimiter excluded', () => {
  const raw = fixture('02-alternative.eml');
  const root = parseMessage(raw);
  assert.equal(root.type, 'multipart');
  assert.equal(root.subtype, 'alternative');
  assert.deepEqual(root.params, [['boundary', 'b1']]);
  assert.equal(root.children!.length, 2);
  const [a, b] = root.children!;
  assert.equal(body(raw, a!), 'Hello =E2=82=AC world, this is a soft=\r\n line break.');
  assert.equal(head(raw, a!), 'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n');
  assert.equal(a!.encoding, 'quoted-printable');
  assert.equal(body(raw, b!), '<html><body><p>Hello &amp; <b>world</b></p></body></html>');
  assert.equal(b!.subtype, 'html');
  assert.equal(b!.lines, 0);
});

test('attachments: all content header fields', () => {
  const raw = fixture('03-mixed-attach.eml');
  const root = parseMessage(raw);
  const pdf = part(root, [2]);
  assert.equal(pdf.type, 'application');
  assert.equal(pdf.subtype, 'pdf');
  assert.deepEqual(pdf.params, [['name', 'report.pdf']]);
  assert.equal(pdf.encoding, 'base64');
  assert.equal(pdf.id, '<part1@example.com>');
  assert.equal(pdf.description, 'Quarterly report');
  assert.deepEqual(pdf.disposition, { type: 'attachment', params: [['filename', 'report.pdf'], ['size', '12']] });
  assert.deepEqual(pdf.language, ['en', 'de']);
  assert.equal(pdf.location, 'http://example.com/report.pdf');
  assert.equal(pdf.md5, 'Q2hlY2sgSW50ZWdyaXR5IQ==');
  assert.equal(body(raw, pdf), 'JVBERi0xLjQKJeLjz9M=');
  assert.deepEqual(part(root, [3]).disposition, { type: 'inline', params: [] });
  assert.equal(body(raw, part(root, [1])), 'See the attached report.\r\n');
});

test('nested message/rfc822 two levels deep', () => {
  const raw = fixture('04-nested-rfc822.eml');
  const root = parseMessage(raw);
  const fwd = part(root, [2]);
  assert.equal(fwd.type, 'message');
  assert.equal(fwd.subtype, 'rfc822');
  assert.ok(fwd.message);
  assert.equal(fwd.message.headerStart, fwd.bodyStart);
  assert.equal(fwd.message.envelope!.subject, 'Fwd: nested');
  assert.equal(fwd.message.subtype, 'mixed');
  assert.equal(body(raw, part(root, [2, 1])), 'Middle text.');
  const inner = part(root, [2, 2]);
  assert.equal(inner.message!.envelope!.messageId, '<inner@example.com>');
  assert.equal(body(raw, part(root, [2, 2, 1])), 'Innermost body\r\nline two');
  assert.ok(body(raw, fwd).endsWith('--middle--'));
  assert.equal(resolvePart(root, [2, 2, 2]), null);
  assert.equal(resolvePart(root, [3]), null);
});

test('RFC 2231 continuations and charsets are decoded', () => {
  const raw = fixture('05-rfc2231.eml');
  const root = parseMessage(raw);
  assert.deepEqual(part(root, [1]).params, [['name', '€ rates and more.txt']]);
  assert.deepEqual(part(root, [1]).disposition, { type: 'attachment', params: [['filename', 'Müller.txt']] });
  assert.deepEqual(part(root, [2]).disposition!.params, [['filename', 'very long file name continued.txt']]);
  assert.deepEqual(part(root, [2]).params, [['charset', 'utf-8'], ['format', 'flowed']]);
});

test('missing close delimiter: last part runs to the end', () => {
  const raw = fixture('09-missing-close-boundary.eml');
  const root = parseMessage(raw);
  assert.equal(root.children!.length, 2);
  assert.equal(body(raw, root.children![0]!), 'first');
  assert.equal(body(raw, root.children![1]!), 'second, never closed\r\n');
});

test('no boundary lines / no boundary parameter: the body is one text part', () => {
  for (const name of ['10-no-boundary-lines.eml', '11-no-boundary-param.eml']) {
    const raw = fixture(name);
    const root = parseMessage(raw);
    assert.equal(root.children!.length, 1);
    const c = root.children![0]!;
    assert.equal(c.bodyStart, root.bodyStart);
    assert.equal(c.bodyEnd, root.bodyEnd);
    assert.equal(c.headerStart, c.headerEnd);
    assert.equal(c.type, 'text');
  }
});

test('missing MIME-Version is not required', () => {
  const raw = fixture('12-no-mime-version.eml');
  const root = parseMessage(raw);
  assert.equal(root.subtype, 'alternative');
  assert.equal(body(raw, root.children![1]!), '<p>html</p>');
});

test('bare LF line endings', () => {
  const raw = fixture('13-bare-lf.eml');
  assert.equal(raw.includes('\r'), false);
  const root = parseMessage(raw);
  assert.equal(body(raw, root.children![0]!), 'line one\nline two');
  assert.equal(head(raw, root.children![0]!), 'Content-Type: text/plain\n\n');
  assert.equal(body(raw, root.children![1]!), 'x');
  assert.equal(root.envelope!.subject, 'bare LF');
});

test('boundary lines with trailing whitespace; epilogue ignored', () => {
  const raw = fixture('14-boundary-trailing-ws.eml');
  const root = parseMessage(raw);
  assert.deepEqual(
    root.children!.map((c) => body(raw, c)),
    ['one', 'two'],
  );
});

test('long folded headers', () => {
  const raw = fixture('15-long-headers.eml');
  const root = parseMessage(raw);
  assert.ok(root.envelope!.subject!.startsWith('a very long header folded line number 1 of'));
  assert.ok(root.envelope!.subject!.endsWith('number 200 of a very long subject'));
  assert.equal(body(raw, root), 'body\r\n');
});

test('empty body, no separator, no header', () => {
  let raw = fixture('16-empty-body.eml');
  let root = parseMessage(raw);
  assert.equal(root.size, 0);
  assert.equal(root.bodyStart, raw.length);

  raw = fixture('17-no-separator.eml');
  root = parseMessage(raw);
  assert.equal(root.headerEnd, raw.length);
  assert.equal(root.size, 0);
  assert.equal(root.envelope!.subject, 'no separator');

  raw = fixture('22-no-headers.eml');
  root = parseMessage(raw);
  assert.equal(root.headerEnd, 2);
  assert.equal(body(raw, root), 'Only a body, no header at all.\r\n');
  assert.equal(root.envelope!.subject, null);

  root = parseMessage(Buffer.alloc(0));
  assert.deepEqual([root.headerStart, root.headerEnd, root.bodyEnd], [0, 0, 0]);
});

test('multipart/digest: default type message/rfc822', () => {
  const raw = fixture('18-digest.eml');
  const root = parseMessage(raw);
  assert.deepEqual(
    root.children!.map((c) => `${c.type}/${c.subtype}`),
    ['message/rfc822', 'message/rfc822', 'text/plain'],
  );
  assert.equal(root.children![0]!.message!.envelope!.subject, 'first');
  assert.equal(body(raw, part(root, [2, 1])), 'Second message.');
});

test('message/global and a top-level message/rfc822', () => {
  let raw = fixture('23-message-global.eml');
  let root = parseMessage(raw);
  assert.equal(root.message!.envelope!.subject, 'inner');
  raw = fixture('24-rfc822-nonmultipart-top.eml');
  root = parseMessage(raw);
  assert.equal(part(root, [1]), root);
  assert.equal(body(raw, part(root, [1, 1])), 'hello\r\n');
});

test('nested multiparts and an inner multipart without close delimiter', () => {
  let raw = fixture('25-nested-multipart.eml');
  let root = parseMessage(raw);
  assert.equal(part(root, [1, 2]).subtype, 'related');
  assert.equal(part(root, [1, 2, 2]).id, '<x>');
  assert.equal(body(raw, part(root, [1, 2, 1])), '<img src="cid:x">');
  assert.equal(body(raw, part(root, [2])), 'PK');
  raw = fixture('26-inner-missing-close.eml');
  root = parseMessage(raw);
  assert.equal(body(raw, part(root, [1, 1])), 'inner one');
  assert.equal(body(raw, part(root, [2])), 'outer two');
});

test('empty parts, body without final newline, strict boundary match', () => {
  let raw = fixture('35-multipart-empty-parts.eml');
  let root = parseMessage(raw);
  assert.equal(root.children!.length, 3);
  for (const c of root.children!) assert.equal(c.size, 0);
  raw = fixture('36-body-no-final-newline.eml');
  root = parseMessage(raw);
  assert.equal(body(raw, root), 'abc');
  assert.equal(root.lines, 0);
  raw = fixture('37-boundary-prefix.eml');
  root = parseMessage(raw);
  assert.equal(root.children!.length, 2);
  assert.equal(body(raw, part(root, [2])), '--pnot a boundary');
});

test('content-type defaults and invalid values', () => {
  const root = parseMessage(Buffer.from('Content-Type: text\r\n\r\nx'));
  assert.equal(`${root.type}/${root.subtype}`, 'text/plain');
  const r2 = parseMessage(Buffer.from('Content-Type: Image/JPEG; (comment) name="a b.jpg"\r\nContent-Transfer-Encoding: BASE64\r\n\r\n'));
  assert.equal(`${r2.type}/${r2.subtype}`, 'image/jpeg');
  assert.deepEqual(r2.params, [['name', 'a b.jpg']]);
  assert.equal(r2.encoding, 'base64');
});

test('encoded message/rfc822 is not looked into', () => {
  const raw = Buffer.from('Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\nU3ViamVjdDogeA0KDQp5\r\n');
  const root = parseMessage(raw);
  assert.equal(root.message, undefined);
  assert.equal(root.type, 'message');
});
