// Byte fixtures for the command decoder (RFC 9051 §9, RFC 7888, RFC 3516).
// Every fixture also runs byte by byte and cut at every index (helpers.ts).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkFixture, makeDecoder, runChunks, simplify, type Fixture } from './helpers.js';

const SMALL = { maxLineLength: 64, maxLiteralSize: 100, maxNonSyncLiteral: 20, maxCommandSize: 300, maxDepth: 4, maxTokens: 30, maxDiscardLiteral: 150 };

const fixtures: Fixture[] = [
  // ---- valid commands --------------------------------------------------------
  { name: 'simple', input: 'a1 NOOP\r\n', events: [['command', 'a1', 'NOOP', []]] },
  { name: 'name upper-cased, args kept', input: 'x login Fred "pw"\r\n', events: [['command', 'x', 'LOGIN', ['Fred', { q: 'pw' }]]] },
  {
    name: 'two pipelined commands',
    input: 'a CAPABILITY\r\nb LOGOUT\r\n',
    events: [
      ['command', 'a', 'CAPABILITY', []],
      ['command', 'b', 'LOGOUT', []],
    ],
  },
  { name: 'bare LF ends a line', input: 'a NOOP\nb NOOP\r\n', events: [['command', 'a', 'NOOP', []], ['command', 'b', 'NOOP', []]] },
  { name: 'empty lines ignored', input: '\r\n\r\na NOOP\r\n\n', events: [['command', 'a', 'NOOP', []]] },
  { name: 'tag may contain "]" and "["', input: 'a]1[ NOOP\r\n', events: [['command', 'a]1[', 'NOOP', []]] },
  {
    name: 'lenient atoms: sequence sets, wildcards, flags, $',
    input: 'a STORE 1:*,$ +FLAGS.SILENT (\\Seen $Junk)\r\nb LIST "" %/*\r\n',
    events: [
      ['command', 'a', 'STORE', ['1:*,$', '+FLAGS.SILENT', ['\\Seen', '$Junk']]],
      ['command', 'b', 'LIST', [{ q: '' }, '%/*']],
    ],
  },
  { name: 'mailbox atom with brackets', input: 'a SELECT [Gmail]/Sent\r\n', events: [['command', 'a', 'SELECT', ['[Gmail]/Sent']]] },
  { name: 'tilde atom', input: 'a SELECT ~peter/mail/&U,BTFw-\r\n', events: [['command', 'a', 'SELECT', ['~peter/mail/&U,BTFw-']]] },
  {
    name: 'UID command',
    input: 'a uid fetch 1:4 (FLAGS)\r\n',
    events: [['command', 'a', 'UID FETCH', ['1:4', ['FLAGS']]]],
  },
  // ---- tag length (issue 10 item 10): the longest tag passes, a longer one is an untagged BAD, never echoed
  { name: 'tag of MAX_TAG_LENGTH', input: `${'t'.repeat(64)} NOOP\r\n`, events: [['command', 't'.repeat(64), 'NOOP', []]] },
  { name: 'tag over MAX_TAG_LENGTH', input: `${'t'.repeat(65)} NOOP\r\nb NOOP\r\n`, events: [['error', 'PARSE', null, false], ['command', 'b', 'NOOP', []]] },
  { name: 'huge tag with a literal', input: `${'t'.repeat(5000)} LOGIN {3}\r\nb NOOP\r\n`, events: [['error', 'PARSE', null, false], ['command', 'b', 'NOOP', []]] },
  { name: 'UID without sub-command', input: 'a UID\r\n', events: [['error', 'PARSE', 'a', false]] },
  { name: 'UID followed by a string', input: 'a UID "FETCH"\r\n', events: [['error', 'PARSE', 'a', false]] },
  { name: 'command name must be an atom', input: 'a "NOOP"\r\n', events: [['error', 'PARSE', 'a', false]] },
  { name: 'command name cannot be a list', input: 'a (NOOP)\r\n', events: [['error', 'PARSE', 'a', false]] },

  // ---- quoted strings -----------------------------------------------------------
  {
    name: 'quoted escapes',
    input: 'a LOGIN "fr\\"ed" "p\\\\w"\r\n',
    events: [['command', 'a', 'LOGIN', [{ q: 'fr"ed' }, { q: 'p\\w' }]]],
  },
  { name: 'quoted with UTF-8 bytes', input: 'a SELECT "\xe5\x8f\xb0"\r\n', events: [['command', 'a', 'SELECT', [{ q: '\xe5\x8f\xb0' }]]] },
  { name: 'bad escape', input: 'a LOGIN "a\\b" c\r\nb NOOP\r\n', events: [['error', 'PARSE', 'a', false], ['command', 'b', 'NOOP', []]] },
  { name: 'unterminated quoted', input: 'a LOGIN "abc\r\nb NOOP\r\n', events: [['error', 'PARSE', 'a', false], ['command', 'b', 'NOOP', []]] },
  { name: 'NUL in quoted', input: 'a LOGIN "a\x00b" c\r\n', events: [['error', 'PARSE', 'a', false]] },
  { name: 'CR without LF inside quoted', input: 'a LOGIN "a\rb" c\r\n', events: [['error', 'PARSE', 'a', false]] },
  { name: 'CR without LF in a line', input: 'a NOOP\rb NOOP\r\nc NOOP\r\n', events: [['error', 'PARSE', 'a', false], ['command', 'c', 'NOOP', []]] },
  { name: 'string glued to atom', input: 'a LOGIN x"y" z\r\n', events: [['error', 'PARSE', 'a', false]] },

  // ---- spacing ------------------------------------------------------------------
  { name: 'double space', input: 'a LOGIN  x y\r\n', events: [['error', 'PARSE', 'a', false]] },
  { name: 'trailing space', input: 'a NOOP \r\n', events: [['error', 'PARSE', 'a', false]] },
  { name: 'space after (', input: 'a FETCH 1 ( FLAGS)\r\n', events: [['error', 'PARSE', 'a', false]] },
  { name: 'space before )', input: 'a FETCH 1 (FLAGS )\r\n', events: [['error', 'PARSE', 'a', false]] },
  { name: 'lists must be separated', input: 'a X (a)(b)\r\n', events: [['error', 'PARSE', 'a', false]] },
  { name: '8-bit byte in atom', input: 'a SELECT b\xe4r\r\n', events: [['error', 'PARSE', 'a', false]] },
  { name: 'control byte in atom', input: 'a SELECT b\x01r\r\n', events: [['error', 'PARSE', 'a', false]] },

  // ---- tags -----------------------------------------------------------------------
  { name: 'missing tag', input: ' NOOP\r\n', events: [['error', 'PARSE', null, false]] },
  { name: 'tag with *', input: '* NOOP\r\nb NOOP\r\n', events: [['error', 'PARSE', null, false], ['command', 'b', 'NOOP', []]] },
  { name: 'tag with +', input: 'a+ NOOP\r\n', events: [['error', 'PARSE', null, false]] },
  { name: 'tag with quote', input: 'a"b NOOP\r\n', events: [['error', 'PARSE', null, false]] },
  { name: 'tag with 8-bit', input: 'a\xff NOOP\r\n', events: [['error', 'PARSE', null, false]] },
  { name: 'tag only', input: 'a1\r\n', events: [['error', 'PARSE', 'a1', false]] },
  { name: 'tag and space only', input: 'a1 \r\n', events: [['error', 'PARSE', 'a1', false]] },
  { name: 'NUL in line', input: 'a NO\x00OP\r\n', events: [['error', 'PARSE', 'a', false]] },

  // ---- lists ------------------------------------------------------------------------
  {
    name: 'nested lists and empty list',
    input: 'a SEARCH OR (FROM x) (NOT (SUBJECT "y")) ()\r\n',
    events: [['command', 'a', 'SEARCH', ['OR', ['FROM', 'x'], ['NOT', ['SUBJECT', { q: 'y' }]], []]]],
  },
  { name: 'unclosed list', input: 'a FETCH 1 (FLAGS\r\nb NOOP\r\n', events: [['error', 'PARSE', 'a', false], ['command', 'b', 'NOOP', []]] },
  { name: 'stray )', input: 'a FETCH 1 FLAGS)\r\n', events: [['error', 'PARSE', 'a', false]] },
  {
    name: 'nesting at the limit',
    input: 'a X ((((y))))\r\n',
    limits: SMALL,
    events: [['command', 'a', 'X', [[[[['y']]]]]]],
  },
  { name: 'nesting too deep', input: 'a X (((((y)))))\r\nb NOOP\r\n', limits: SMALL, events: [['error', 'LIMIT', 'a', false], ['command', 'b', 'NOOP', []]] },
  {
    name: 'too many tokens',
    input: 'a X ' + Array.from({ length: 30 }, (_, i) => `t${i}`).join(' ') + '\r\nb NOOP\r\n',
    limits: { ...SMALL, maxLineLength: 1000 },
    events: [['error', 'LIMIT', 'a', false], ['command', 'b', 'NOOP', []]],
  },
  {
    name: 'tokens at the limit',
    input: 'a X ' + Array.from({ length: 29 }, () => 't').join(' ') + '\r\n',
    limits: { ...SMALL, maxLineLength: 1000 },
    events: [['command', 'a', 'X', Array.from({ length: 29 }, () => 't')]],
  },

  // ---- sections -----------------------------------------------------------------------
  {
    name: 'BODY.PEEK with header fields and partial',
    input: 'a FETCH 1 (UID body.peek[HEADER.FIELDS (From To)]<0.100>)\r\n',
    events: [['command', 'a', 'FETCH', ['1', ['UID', { atom: 'BODY.PEEK', section: ['HEADER.FIELDS', ['From', 'To']], partial: '0.100' }]]]],
  },
  {
    name: 'empty section, part sections, BINARY',
    input: 'a FETCH 1:2 (BODY[] BODY[1.2.MIME] BINARY.PEEK[1]<5> BINARY.SIZE[2] BODY)\r\n',
    events: [
      [
        'command',
        'a',
        'FETCH',
        [
          '1:2',
          [
            { atom: 'BODY', section: [] },
            { atom: 'BODY', section: ['1.2.MIME'] },
            { atom: 'BINARY.PEEK', section: ['1'], partial: '5' },
            { atom: 'BINARY.SIZE', section: ['2'] },
            'BODY',
          ],
        ],
      ],
    ],
  },
  { name: 'section at top level', input: 'a UID FETCH 9 BODY[TEXT]\r\n', events: [['command', 'a', 'UID FETCH', ['9', { atom: 'BODY', section: ['TEXT'] }]]] },
  { name: 'other atoms keep brackets', input: 'a X FOO[1] BODYX[2]\r\n', events: [['command', 'a', 'X', ['FOO[1]', 'BODYX[2]']]] },
  { name: 'unclosed section', input: 'a FETCH 1 BODY[TEXT\r\n', events: [['error', 'PARSE', 'a', false]] },
  { name: 'bad partial', input: 'a FETCH 1 BODY[]<1.>\r\n', events: [['error', 'PARSE', 'a', false]] },
  { name: 'junk after section', input: 'a FETCH 1 BODY[]x\r\n', events: [['error', 'PARSE', 'a', false]] },
  { name: 'section list closed by ]', input: 'a FETCH 1 BODY[HEADER.FIELDS (From]\r\n', events: [['error', 'PARSE', 'a', false]] },
  {
    name: 'literal inside a section',
    input: 'a FETCH 1 BODY[HEADER.FIELDS ({4+}\r\nFrom)]\r\n',
    events: [['command', 'a', 'FETCH', ['1', { atom: 'BODY', section: ['HEADER.FIELDS', [{ lit: 'From' }]] }]]],
  },

  // ---- literals ------------------------------------------------------------------------
  {
    name: 'synchronizing literals',
    input: 'a LOGIN {4}\r\nfred {5}\r\nsecr"\r\n',
    events: [
      ['continue', 4],
      ['continue', 5],
      ['command', 'a', 'LOGIN', [{ lit: 'fred' }, { lit: 'secr"' }]],
    ],
  },
  {
    name: 'LITERAL+',
    input: 'a APPEND INBOX (\\Seen) {11+}\r\nHi\r\n\r\nthere\r\nb NOOP\r\n',
    events: [
      ['command', 'a', 'APPEND', ['INBOX', ['\\Seen'], { lit: 'Hi\r\n\r\nthere' }]],
      ['command', 'b', 'NOOP', []],
    ],
  },
  { name: 'zero-length literals', input: 'a LOGIN {0}\r\n {0+}\r\n\r\n', events: [['continue', 0], ['command', 'a', 'LOGIN', [{ lit: '' }, { lit: '' }]]] },
  {
    name: 'literal8',
    input: 'a APPEND INBOX ~{3}\r\na\x00b\r\nb APPEND INBOX ~{2+}\r\n\x00\x00\r\n',
    events: [
      ['continue', 3],
      ['command', 'a', 'APPEND', ['INBOX', { lit8: 'a\x00b' }]],
      ['command', 'b', 'APPEND', ['INBOX', { lit8: '\x00\x00' }]],
    ],
  },
  {
    // RFC 6855 §4: utf8-literal = "UTF8" SP "(" literal8 ")", synchronizing and not.
    name: 'APPEND UTF8 (~{n}) data',
    input: 'a APPEND INBOX UTF8 (~{4}\r\n\xc3\xbc\x00x)\r\nb APPEND INBOX (\\Seen) UTF8 (~{2+}\r\n\xc3\xbc)\r\n',
    events: [
      ['continue', 4],
      ['command', 'a', 'APPEND', ['INBOX', 'UTF8', [{ lit8: '\xc3\xbc\x00x' }]]],
      ['command', 'b', 'APPEND', ['INBOX', ['\\Seen'], 'UTF8', [{ lit8: '\xc3\xbc' }]]],
    ],
  },
  {
    // RFC 6855 §3 / RFC 9051 quoted: UTF-8 in quoted strings reaches the command as bytes (the
    // dispatcher refuses invalid UTF-8 with BAD for UTF8=ACCEPT sessions; src/commands/utf8.ts).
    name: 'UTF-8 and other 8-bit bytes in quoted strings',
    input: 'a CREATE "Entw\xc3\xbcrfe"\r\nb CREATE "\xff\xfe"\r\n',
    events: [
      ['command', 'a', 'CREATE', [{ q: 'Entw\xc3\xbcrfe' }]],
      ['command', 'b', 'CREATE', [{ q: '\xff\xfe' }]],
    ],
  },
  { name: '8-bit bytes in an atom stay a PARSE error', input: 'a CREATE Entw\xc3\xbcrfe\r\nb NOOP\r\n', events: [['error', 'PARSE', 'a', false], ['command', 'b', 'NOOP', []]] },
  {
    name: 'NUL in a plain literal: PARSE after skipping it and the rest of the command',
    input: 'a APPEND INBOX {3+}\r\na\x00b FOO\r\nb NOOP\r\n',
    events: [
      ['error', 'PARSE', 'a', false],
      ['command', 'b', 'NOOP', []],
    ],
  },
  {
    name: 'NUL in literal, rest of command has another non-sync literal',
    input: 'a X {1+}\r\n\x00 {3+}\r\nabc\r\nb NOOP\r\n',
    events: [
      ['error', 'PARSE', 'a', false],
      ['command', 'b', 'NOOP', []],
    ],
  },
  { name: 'literal data may contain anything', input: 'a X {6+}\r\n(\r\n"{}\r\n', events: [['command', 'a', 'X', [{ lit: '(\r\n"{}' }]]] },
  { name: '{n-} is not literal syntax', input: 'a X {3-}\r\nb NOOP\r\n', events: [['error', 'PARSE', 'a', false], ['command', 'b', 'NOOP', []]] },
  { name: 'literal header not at end of line', input: 'a X {3} y\r\n', events: [['error', 'PARSE', 'a', false]] },
  { name: 'literal header without digits', input: 'a X {}\r\n', events: [['error', 'PARSE', 'a', false]] },
  { name: 'literal glued to atom', input: 'a X y{3}\r\n', events: [['error', 'PARSE', 'a', false]] },
  {
    name: 'literal followed by junk',
    input: 'a X {2+}\r\nabjunk\r\nb NOOP\r\n',
    events: [['error', 'PARSE', 'a', false], ['command', 'b', 'NOOP', []]],
  },
  {
    name: 'literal then closing paren',
    input: 'a X ({2+}\r\nab)\r\n',
    events: [['command', 'a', 'X', [[{ lit: 'ab' }]]]],
  },
  {
    name: 'error before a LITERAL+ skips the literal bytes',
    input: 'a X  {5+}\r\nb NOO\r\nc NOOP\r\n',
    events: [['error', 'PARSE', 'a', false], ['command', 'c', 'NOOP', []]],
  },
  {
    name: 'error before a sync literal: the client never sends it',
    input: 'a X  {5}\r\nb NOOP\r\n',
    events: [['error', 'PARSE', 'a', false], ['command', 'b', 'NOOP', []]],
  },
  {
    name: 'bad tag line ending in LITERAL+',
    input: '*x {3+}\r\nabc\r\nb NOOP\r\n',
    events: [['error', 'PARSE', null, false], ['command', 'b', 'NOOP', []]],
  },
  {
    name: 'literal as command name',
    input: 'a {4}\r\nb NOOP\r\n',
    events: [['error', 'PARSE', 'a', false], ['command', 'b', 'NOOP', []]],
  },

  // ---- size limits -------------------------------------------------------------------------
  {
    name: 'oversized sync literal: TOOBIG, not fatal, no continuation',
    input: 'a APPEND INBOX {101}\r\nb NOOP\r\n',
    limits: SMALL,
    events: [['error', 'TOOBIG', 'a', false], ['command', 'b', 'NOOP', []]],
  },
  {
    name: 'sync literal at the limit',
    input: 'a APPEND INBOX {100}\r\n' + 'x'.repeat(100) + '\r\n',
    limits: SMALL,
    events: [['continue', 100], ['command', 'a', 'APPEND', ['INBOX', { lit: 'x'.repeat(100) }]]],
  },
  {
    name: 'non-sync literal above maxNonSyncLiteral is read and discarded',
    input: 'a APPEND INBOX {21+}\r\n' + 'y'.repeat(21) + '\r\nb NOOP\r\n',
    limits: SMALL,
    events: [['error', 'TOOBIG', 'a', false], ['command', 'b', 'NOOP', []]],
  },
  {
    name: 'discarded non-sync literal: rest of the command with more literals is skipped',
    input: 'a APPEND INBOX {21+}\r\n' + 'y'.repeat(21) + ' {2+}\r\nzz x\r\nb NOOP\r\n',
    limits: SMALL,
    events: [['error', 'TOOBIG', 'a', false], ['command', 'b', 'NOOP', []]],
  },
  {
    name: 'non-sync literal above the discard limit is fatal',
    input: 'a APPEND INBOX {151+}\r\nxxxxxxxx\r\nb NOOP\r\n',
    limits: SMALL,
    events: [['error', 'TOOBIG', 'a', true]],
  },
  {
    name: 'huge digit count is fatal for non-sync',
    input: 'a APPEND INBOX {99999999999999999999+}\r\n',
    events: [['error', 'TOOBIG', 'a', true]],
  },
  {
    name: 'huge sync literal is refused',
    input: 'a APPEND INBOX {99999999999999999999}\r\nb NOOP\r\n',
    events: [['error', 'TOOBIG', 'a', false], ['command', 'b', 'NOOP', []]],
  },
  {
    name: 'command size counts literals',
    input: 'a X {90}\r\n' + 'z'.repeat(90) + ' {90}\r\n' + 'z'.repeat(90) + ' {90}\r\nb NOOP\r\n',
    limits: { ...SMALL, maxCommandSize: 250 },
    events: [['continue', 90], ['continue', 90], ['error', 'TOOBIG', 'a', false], ['command', 'b', 'NOOP', []]],
  },
  {
    name: 'over-long line: TOOBIG with tag, rest of line discarded',
    input: 'a1 SELECT ' + 'm'.repeat(200) + '\r\nb NOOP\r\n',
    limits: SMALL,
    events: [['error', 'TOOBIG', 'a1', false], ['command', 'b', 'NOOP', []]],
  },
  {
    name: 'over-long line ending in LITERAL+ skips the literal too',
    input: 'a1 X ' + 'm'.repeat(200) + ' {4+}\r\nb NO\r\nc NOOP\r\n',
    limits: SMALL,
    events: [['error', 'TOOBIG', 'a1', false], ['command', 'c', 'NOOP', []]],
  },
  {
    name: 'over-long line without tag',
    input: 'm'.repeat(200) + '\r\nb NOOP\r\n',
    limits: SMALL,
    events: [['error', 'TOOBIG', null, false], ['command', 'b', 'NOOP', []]],
  },
  {
    name: 'line exactly at the limit (64 bytes of content)',
    input: 'a X ' + 'm'.repeat(60) + '\r\n',
    limits: SMALL,
    events: [['command', 'a', 'X', ['m'.repeat(60)]]],
  },
  {
    name: 'line one byte over the limit, bare LF',
    input: 'a X ' + 'm'.repeat(61) + '\nb NOOP\r\n',
    limits: SMALL,
    events: [['error', 'TOOBIG', 'a', false], ['command', 'b', 'NOOP', []]],
  },
  {
    name: 'over-long continuation line after a literal',
    input: 'a X {1+}\r\nq ' + 'm'.repeat(100) + '\r\nb NOOP\r\n',
    limits: SMALL,
    events: [['error', 'TOOBIG', 'a', false], ['command', 'b', 'NOOP', []]],
  },

  // ---- expectLine -------------------------------------------------------------------------
  {
    name: 'IDLE then DONE is a raw line',
    input: 'a IDLE\r\nDONE\r\nb NOOP\r\n',
    expectLineAfter: ['IDLE'],
    events: [['command', 'a', 'IDLE', []], ['line', 'DONE'], ['command', 'b', 'NOOP', []]],
  },
  {
    name: 'AUTHENTICATE responses are raw lines (even odd ones)',
    input: 'a AUTHENTICATE PLAIN\r\nAGZyZWQAc2VjcmV0 {5+}\r\n\r\n* (x\r\nb NOOP\r\n',
    expectLineAfter: ['AUTHENTICATE'],
    events: [['command', 'a', 'AUTHENTICATE', ['PLAIN']], ['line', 'AGZyZWQAc2VjcmV0 {5+}'], ['error', 'PARSE', null, false], ['command', 'b', 'NOOP', []]],
  },
  {
    name: 'expected line too long',
    input: 'a IDLE\r\n' + 'D'.repeat(100) + '\r\nb NOOP\r\n',
    limits: SMALL,
    expectLineAfter: ['IDLE'],
    events: [['command', 'a', 'IDLE', []], ['error', 'TOOBIG', null, false], ['command', 'b', 'NOOP', []]],
  },
];

for (const fx of fixtures) {
  test(`decoder fixture: ${fx.name}`, () => checkFixture(fx));
}

test('empty line after expectLine() is an empty line event', () => {
  const dec = makeDecoder();
  dec.push(Buffer.from('a AUTHENTICATE PLAIN\r\n\r\n'));
  assert.deepEqual(simplify(dec.next()!), ['command', 'a', 'AUTHENTICATE', ['PLAIN']]);
  dec.expectLine();
  assert.deepEqual(simplify(dec.next()!), ['line', '']);
  assert.equal(dec.next(), null);
});

test('next() never consumes bytes of the following command', () => {
  const dec = makeDecoder();
  dec.push(Buffer.from('a NOOP\r\nb NOOP\r\n'));
  assert.equal(dec.bufferedBytes, 16);
  assert.equal(dec.next()?.type, 'command');
  assert.equal(dec.bufferedBytes, 8);
});

test('discardBuffered drops pipelined bytes after STARTTLS', () => {
  const dec = makeDecoder();
  dec.push(Buffer.from('a STARTTLS\r\nb LOGIN x y\r\n'));
  const ev = dec.next();
  assert.ok(ev?.type === 'command' && ev.name === 'STARTTLS');
  assert.equal(dec.discardBuffered(), 13);
  assert.equal(dec.bufferedBytes, 0);
  assert.equal(dec.next(), null);
  dec.push(Buffer.from('c NOOP\r\n'));
  assert.deepEqual(simplify(dec.next()!), ['command', 'c', 'NOOP', []]);
});

test('expectLine() in the middle of a command throws', () => {
  const dec = makeDecoder();
  dec.push(Buffer.from('a LOGIN {3}\r\n'));
  assert.equal(dec.next()?.type, 'continue');
  assert.throws(() => dec.expectLine());
});

test('setLimits applies to the next command', () => {
  const dec = makeDecoder({ maxLineLength: 16 });
  dec.push(Buffer.from('a LOGIN abcdefghijklmn\r\n'));
  assert.deepEqual(simplify(dec.next()!), ['error', 'TOOBIG', 'a', false]);
  dec.setLimits({ ...SMALL, maxLineLength: 100 });
  dec.push(Buffer.from('b LOGIN abcdefghijklmn\r\n'));
  assert.deepEqual(simplify(dec.next()!), ['command', 'b', 'LOGIN', ['abcdefghijklmn']]);
});

test('a large literal is stored once, in a buffer of exactly its size', () => {
  const size = 5 * 1024 * 1024;
  const dec = makeDecoder();
  dec.push(Buffer.from(`a APPEND INBOX {${size}}\r\n`));
  assert.deepEqual(simplify(dec.next()!), ['continue', size]);
  const chunk = Buffer.alloc(65536, 0x61);
  for (let sent = 0; sent < size; sent += chunk.length) {
    dec.push(chunk);
    // Literal bytes go straight into the literal: nothing piles up in the decoder.
    assert.equal(dec.bufferedBytes, 0);
    assert.equal(dec.next(), null);
  }
  dec.push(Buffer.from('\r\n'));
  const ev = dec.next();
  assert.ok(ev?.type === 'command');
  const lit = ev.args[1];
  assert.ok(lit?.kind === 'string' && lit.literal);
  assert.equal(lit.bytes.length, size);
  assert.equal(lit.bytes.buffer.byteLength, size, 'the literal owns an exactly-sized allocation');
});

test('trickled input is linear (no rescanning)', () => {
  const dec = makeDecoder();
  const line = Buffer.from('a SEARCH ' + 'x '.repeat(30000) + 'y\r\n');
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < line.length; i++) {
    dec.push(line.subarray(i, i + 1));
    const ev = dec.next();
    if (i < line.length - 1) assert.equal(ev, null);
    else assert.equal(ev?.type, 'command');
  }
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  assert.ok(ms < 2000, `took ${ms} ms`);
});

test('over-long line keeps memory bounded while discarding', () => {
  const dec = makeDecoder({ maxLineLength: 1024 });
  dec.push(Buffer.from('a X '));
  let errors = 0;
  for (let i = 0; i < 1000; i++) {
    dec.push(Buffer.alloc(4096, 0x61));
    for (let ev = dec.next(); ev; ev = dec.next()) errors++;
    assert.ok(dec.bufferedBytes <= 4096 + 1100);
  }
  dec.push(Buffer.from('\r\nb NOOP\r\n'));
  const evs = [];
  for (let ev = dec.next(); ev; ev = dec.next()) evs.push(simplify(ev));
  assert.equal(errors, 1);
  assert.deepEqual(evs, [['command', 'b', 'NOOP', []]]);
});

test('after a fatal error nothing more is decoded', () => {
  const dec = makeDecoder(SMALL);
  dec.push(Buffer.from('a APPEND INBOX {1000+}\r\n'));
  assert.deepEqual(simplify(dec.next()!), ['error', 'TOOBIG', 'a', true]);
  assert.equal(dec.bufferedBytes, 0);
  dec.push(Buffer.from('b NOOP\r\n'));
  assert.equal(dec.next(), null);
  assert.equal(dec.bufferedBytes, 0);
});

// ---- ID of the size RFC 2971 §3.3 allows, before login (issue 10 item 9)
test('an ID line of RFC 2971 maximum size passes the pre-auth line limit; other long lines do not', async () => {
  const { PRE_AUTH_DECODER_LIMITS, ID_LINE_LENGTH } = await import('../../src/wire/limits.js');
  const pairs = Array.from({ length: 30 }, (_, i) => `"${`f${i}`.padEnd(30, 'x')}" "${'v'.repeat(1024)}"`).join(' ');
  const id = Buffer.from(`a1 id (${pairs})\r\nb NOOP\r\n`);
  assert.ok(id.length > PRE_AUTH_DECODER_LIMITS.maxLineLength * 3);
  for (const chunks of [[id], Array.from({ length: Math.ceil(id.length / 1000) }, (_, i) => id.subarray(i * 1000, (i + 1) * 1000))]) {
    const ev = runChunks(chunks, PRE_AUTH_DECODER_LIMITS);
    assert.equal(ev.length, 2);
    assert.deepEqual(ev[0]!.slice(0, 3), ['command', 'a1', 'ID']);
    assert.deepEqual(ev[1], ['command', 'b', 'NOOP', []]);
  }
  // The same size under another command is still too long before login.
  const noop = Buffer.from(`a1 NOOP (${pairs})\r\nb NOOP\r\n`);
  assert.deepEqual(runChunks([noop], PRE_AUTH_DECODER_LIMITS)[0]!.slice(0, 3), ['error', 'TOOBIG', 'a1']);
  // And ID has its own bound: a longer ID line is refused, memory stays bounded.
  const huge = Buffer.from(`a1 ID ("x" "${'v'.repeat(ID_LINE_LENGTH)}")\r\nb NOOP\r\n`);
  const ev = runChunks([huge], PRE_AUTH_DECODER_LIMITS);
  assert.deepEqual(ev[0]!.slice(0, 3), ['error', 'TOOBIG', 'a1']);
  assert.deepEqual(ev.at(-1), ['command', 'b', 'NOOP', []]);
});
