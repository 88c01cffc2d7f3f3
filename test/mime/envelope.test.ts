// ENVELOPE building and address parsing (RFC 9051 §7.5.2, RFC 5322 §3.4).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatEnvelope, imapString, parseAddressList, parseMessage } from '../../src/mime/index.js';
import { fixture } from './helpers.js';

const A = (name: string | null, mailbox: string | null, host: string | null, adl: string | null = null) => ({ name, adl, mailbox, host });

test('display names, quoting, comments', () => {
  assert.deepEqual(parseAddressList('"Doe, Jane" <jane@example.com>'), [A('Doe, Jane', 'jane', 'example.com')]);
  assert.deepEqual(parseAddressList('Joe Q. Public <john.q.public@example.com>'), [A('Joe Q. Public', 'john.q.public', 'example.com')]);
  assert.deepEqual(parseAddressList('bob@example.com (Bob)'), [A('Bob', 'bob', 'example.com')]);
  assert.deepEqual(parseAddressList('"a\\"b" <x@y>'), [A('a"b', 'x', 'y')]);
  assert.deepEqual(parseAddressList('"john doe"@example.com'), [A(null, 'john doe', 'example.com')]);
  assert.deepEqual(parseAddressList('=?utf-8?Q?J=C3=BCrgen?= <j@x.de>'), [A('=?utf-8?Q?J=C3=BCrgen?=', 'j', 'x.de')]);
  assert.deepEqual(parseAddressList('Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>'), [A('Pete', 'pete', 'silly.test')]);
  assert.deepEqual(parseAddressList('x@[192.0.2.1]'), [A(null, 'x', '[192.0.2.1]')]);
});

test('groups and routes', () => {
  assert.deepEqual(parseAddressList('undisclosed-recipients:;'), [A(null, 'undisclosed-recipients', null), A(null, null, null)]);
  assert.deepEqual(parseAddressList('A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;'), [
    A(null, 'A Group', null),
    A('Ed Jones', 'c', 'a.test'),
    A(null, 'joe', 'where.test'),
    A('John', 'jdoe', 'one.test'),
    A(null, null, null),
  ]);
  // an unterminated group is closed
  assert.deepEqual(parseAddressList('G: a@b'), [A(null, 'G', null), A(null, 'a', 'b'), A(null, null, null)]);
  assert.deepEqual(parseAddressList('<@r1,@r2:u@h>'), [A(null, 'u', 'h', '@r1,@r2')]);
});

test('broken addresses never vanish silently into NIL host', () => {
  assert.deepEqual(parseAddressList('nodomain'), [A(null, 'nodomain', 'MISSING_DOMAIN')]);
  assert.deepEqual(parseAddressList('<>'), [A(null, 'MISSING_MAILBOX', 'MISSING_DOMAIN')]);
  assert.deepEqual(parseAddressList(''), null);
  assert.deepEqual(parseAddressList(' , ,'), null);
  for (const junk of ['<<<', '>>@@', ';;::', '"unterminated', '(unterminated', 'a@', '@b', ':;:;<>', 'x <y@z> junk, w@v']) {
    for (const a of parseAddressList(junk) ?? []) {
      // a NIL host only ever appears as a group marker
      if (a.host === null) assert.ok(a.adl === null && a.name === null, junk);
    }
  }
});

test('envelope fields; sender and reply-to default to from', () => {
  const env = parseMessage(fixture('01-plain.eml')).envelope!;
  assert.equal(env.date, 'Mon, 7 Feb 1994 21:52:25 -0800 (PST)');
  assert.equal(env.subject, 'afternoon meeting');
  assert.deepEqual(env.sender, env.from);
  assert.deepEqual(env.replyTo, env.from);
  assert.equal(env.inReplyTo, null);
  assert.equal(env.messageId, '<B27397-0100000@Blurdybloop.example>');
  const g = parseMessage(fixture('19-groups.eml')).envelope!;
  assert.deepEqual(g.sender, [A(null, 'secretary', 'example.com')]);
  assert.deepEqual(g.replyTo, [A('Replies', 'replies', 'example.com')]);
  assert.equal(g.inReplyTo, '<prev@example.com>');
});

test('formatEnvelope: raw encoded words, literals for 8-bit and long values', () => {
  const env = parseMessage(fixture('06-encoded-words.eml')).envelope!;
  assert.ok(formatEnvelope(env).includes('"=?utf-8?Q?Gr=C3=BC=C3=9Fe?= =?utf-8?Q?_aus_K=C3=B6ln?= and =?shift_jis?B?k/qWe4zq?="'));
  assert.equal(imapString('a"b\\c'), '"a\\"b\\\\c"');
  assert.equal(imapString('Café'), '{5}\r\nCafé');
  assert.equal(imapString('x'.repeat(1001)), '{1001}\r\n' + 'x'.repeat(1001));
  assert.equal(imapString('a\0b'), '"ab"');
  assert.equal(
    formatEnvelope({ date: null, subject: '', from: null, sender: null, replyTo: null, to: null, cc: null, bcc: null, inReplyTo: null, messageId: null }),
    '(NIL "" NIL NIL NIL NIL NIL NIL NIL NIL)',
  );
});
