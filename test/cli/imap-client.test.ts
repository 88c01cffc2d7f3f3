// The import client's response framer and tokenizer: fed whole and one byte at a time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ResponseReader, compressUids, parseFetches, tokenize, type RawResponse } from '../../src/cli/imap-client.js';

const BODY = 'Subject: x\r\n\r\nline {3}\r\n)"\r\n';
const WIRE =
  `* 1 FETCH (UID 7 FLAGS (\\Seen $Label1) INTERNALDATE " 4-Nov-2024 10:00:00 +0100" BODY[] {${Buffer.byteLength(BODY)}}\r\n${BODY})\r\n` +
  '* LIST (\\HasNoChildren \\Sent) "/" "Sent &AOQ-"\r\n' +
  '* 2 FETCH (FLAGS () UID 9 RFC822.SIZE 12 BODY[] NIL)\r\n' +
  'Q1 OK [READ-ONLY] done\r\n';

function frame(chunks: Buffer[]): RawResponse[] {
  const r = new ResponseReader();
  const out: RawResponse[] = [];
  for (const c of chunks) {
    r.feed(c);
    for (let x = r.take(); x; x = r.take()) out.push(x);
  }
  assert.equal(r.pending, 0);
  return out;
}

test('responses with literals frame the same whole and byte by byte', () => {
  const whole = frame([Buffer.from(WIRE)]);
  const bytes = frame([...Buffer.from(WIRE)].map((b) => Buffer.from([b])));
  assert.deepEqual(bytes, whole);
  assert.equal(whole.length, 4);
  const [a, b] = parseFetches(whole);
  assert.equal(a!.uid, 7);
  assert.deepEqual(a!.flags, ['\\Seen', '$Label1']);
  assert.equal(a!.internalDate, ' 4-Nov-2024 10:00:00 +0100');
  assert.equal(a!.body!.toString(), BODY);
  assert.equal(b!.uid, 9);
  assert.equal(b!.body, null);
  assert.equal(b!.size, 12);
  const list = tokenize(whole[1]!);
  assert.equal(list[2]!.t, 'list');
  assert.equal((list[4] as { v: Buffer }).v.toString(), 'Sent &AOQ-');
});

test('UID sets are compressed to ranges', () => {
  assert.equal(compressUids([1, 2, 3, 5, 7, 8]), '1:3,5,7:8');
  assert.equal(compressUids([4]), '4');
});
