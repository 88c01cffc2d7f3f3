// The transcript format itself (transcript.ts): placeholders, flag sets, FETCH
// item order, and that a script fails on a missing, wrong or extra line, so a
// passing script means what it says.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { matchLine, parseScript, runScript, expandSend, ScriptError, type Target } from './transcript.js';

test('placeholders: wildcards, captures, back-references, comparisons, regexes', () => {
  const vars = new Map([['uidv', '77'], ['old', '5']]);
  assert.deepEqual(matchLine('* OK [UIDVALIDITY ${uidv}] ${*}', '* OK [UIDVALIDITY 77] UIDs valid', vars), new Map());
  assert.equal(matchLine('* OK [UIDVALIDITY ${uidv}] ${*}', '* OK [UIDVALIDITY 78] UIDs valid', vars), null);
  assert.deepEqual(matchLine('* ${n} FETCH (UID ${n})', '* 4 FETCH (UID 4)', vars), new Map([['n', '4']]));
  assert.equal(matchLine('* ${n} FETCH (UID ${n})', '* 4 FETCH (UID 5)', vars), null);
  assert.deepEqual(matchLine('MODSEQ (${m>old})', 'MODSEQ (6)', vars), new Map([['m', '6']]));
  assert.equal(matchLine('MODSEQ (${m>old})', 'MODSEQ (5)', vars), null);
  assert.deepEqual(matchLine('* VANISHED ${set/[\\d:,]+/}', '* VANISHED 2,4:5', vars), new Map([['set', '2,4:5']]));
  assert.ok(matchLine('* 2 FETCH (${/(UID 2 )?/}FLAGS (\\Seen))', '* 2 FETCH (FLAGS (\\Seen))', vars));
  assert.ok(matchLine('* 2 FETCH (${/(UID 2 )?/}FLAGS (\\Seen))', '* 2 FETCH (UID 2 FLAGS (\\Seen))', vars));
  assert.equal(matchLine('* 2 FETCH (${/(UID 2 )?/}FLAGS (\\Seen))', '* 2 FETCH (UID 3 FLAGS (\\Seen))', vars), null);
});

test('flag sets match in any order; optional flags may be absent; nothing else may be present', () => {
  const v = new Map<string, string>();
  assert.ok(matchLine('(${flags: \\Flagged \\Seen})', '(\\Seen \\Flagged)', v));
  assert.ok(matchLine('(${flags: \\Flagged \\Seen \\Recent?})', '(\\Seen \\Recent \\Flagged)', v));
  assert.ok(matchLine('(${flags: \\Flagged \\Seen \\Recent?})', '(\\Flagged \\Seen)', v));
  assert.equal(matchLine('(${flags: \\Flagged \\Seen})', '(\\Seen)', v), null);
  assert.equal(matchLine('(${flags: \\Seen})', '(\\Seen \\Deleted)', v), null);
  assert.equal(matchLine('(${flags: \\Seen})', '(\\Seen \\Seen)', v), null);
});

test('FETCH items naming the same set match in any order; a different set does not', () => {
  const v = new Map<string, string>();
  assert.ok(matchLine('* 1 FETCH (UID 1 FLAGS () MODSEQ (${m}))', '* 1 FETCH (UID 1 MODSEQ (14) FLAGS ())', v));
  assert.ok(matchLine('* 1 FETCH (FLAGS () MODSEQ (${m}))', '* 1 FETCH (MODSEQ (14) FLAGS ())', v));
  assert.equal(matchLine('* 1 FETCH (FLAGS () MODSEQ (${m}))', '* 1 FETCH (MODSEQ (14) FLAGS () UID 1)', v), null);
  assert.ok(matchLine('* 1 FETCH (UID 1 BODY[HEADER.FIELDS (Subject)] {4}${CRLF}ab${CRLF})', '* 1 FETCH (BODY[HEADER.FIELDS (Subject)] {4}\r\nab\r\n UID 1)', v));
});

test('sent lines: variables and LITERAL+ messages', () => {
  const b = expandSend('a1 APPEND ${MBOX} ${MSG 1}', new Map([['MBOX', 'Box']]));
  assert.match(b.toString(), /^a1 APPEND Box \{\d+\+\}\r\nFrom: Sender 1 /);
  assert.throws(() => expandSend('a1 SELECT ${nope}', new Map()), ScriptError);
  assert.throws(() => parseScript('x', 'A> nonsense'), ScriptError);
});

let srv: TestServer;
let target: Target;
let n = 0;
before(async () => {
  srv = await startTestServer();
  target = { name: 'quire', port: srv.port, user: 'alice', password: 'secret-a', timeoutMs: 1000 };
});
after(async () => {
  await srv.stop();
});
const run = (text: string) => runScript(parseScript('self', text), target, `Self${++n}`);
const select = 'A: a1 SELECT ${MBOX}\nA<? * ${*}\nA< a1 OK [READ-WRITE] ${*}\n';

test('a script passes when every line is accounted for', async () => {
  await run(`@append 2\n${select}A: a2 FETCH 1:2 (UID)\nA< * 1 FETCH (UID 1)\nA< * 2 FETCH (UID 2)\nA< a2 OK \${*}\n`);
});

test('an unexpected extra line fails the script', async () => {
  await assert.rejects(run(`@append 2\n${select}A: a2 FETCH 1:2 (UID)\nA< * 1 FETCH (UID 1)\nA< a2 OK \${*}\n`), /unexpected line "\* 2 FETCH \(UID 2\)"/);
});

test('a missing line fails the script, also when the tagged reply comes first', async () => {
  await assert.rejects(run(`@append 1\n${select}A: a2 NOOP\nA<> * 1 EXISTS\nA< a2 OK \${*}\n`), /unexpected line "a2 OK|tagged reply before/);
  await assert.rejects(run(`@append 1\n${select}A: a2 IDLE\nA< + \${*}\nA< * 1 EXISTS\n`), /no more lines/);
});

test('a line out of order fails; <> accepts any position', async () => {
  await assert.rejects(run(`@append 2\n${select}A: a2 FETCH 1:2 (UID)\nA< * 2 FETCH (UID 2)\nA< * 1 FETCH (UID 1)\nA< a2 OK \${*}\n`), ScriptError);
  await run(`@append 2\n${select}A: a2 FETCH 1:2 (UID)\nA<> * 2 FETCH (UID 2)\nA< * 1 FETCH (UID 1)\nA< a2 OK \${*}\n`);
});

test('@quiet fails when the connection is sent something', async () => {
  await assert.rejects(run(`${select}A: a2 NOOP\n@quiet A\n`), /should have received nothing/);
});

test('<| lines: at least one must match, the tagged reply counts', async () => {
  await run(`${select}A: a2 NOOP\nA<| * 9 EXISTS\nA<| a2 OK NOOP \${*}\nA< a2 OK \${*}\n`);
  await assert.rejects(run(`${select}A: a2 NOOP\nA<| * 9 EXISTS\nA<| a2 OK [X] \${*}\nA< a2 OK \${*}\n`), /tagged reply before every expected line/);
});
