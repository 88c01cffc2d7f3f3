// Seeded fuzzing: random bytes and mutated corpus messages never make the
// parser throw; offsets stay in bounds and nested; limits hold; everything
// downstream (formatting, sections, preview, storage) copes with the tree.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  binaryContent,
  buildPreview,
  deserializeStructure,
  formatBodyStructure,
  formatEnvelope,
  parseMessage,
  sectionBytes,
  serializeStructure,
  type MimeLimits,
  type MimePart,
  type SectionText,
} from '../../src/mime/index.js';
import { checkTree, fixture, fixtureNames } from './helpers.js';
import { prng as rng } from '../helpers/rng.js';


const SNIPPETS = [
  '\r\n',
  '\n',
  '\r\n\r\n',
  '--b1\r\n',
  '--b1--\r\n',
  '--abc\r\n',
  '--outer\r\n',
  'Content-Type: multipart/mixed; boundary="b1"\r\n',
  'Content-Type: message/rfc822\r\n',
  'Content-Type: multipart/digest; boundary=abc\r\n',
  'Content-Transfer-Encoding: base64\r\n',
  'Content-Disposition: attachment; filename*0*=utf-8\'\'%E2; filename*1=x\r\n',
  'Subject: =?utf-8?B?w6k=?= =?x?Q?a?=\r\n',
  'To: a:b@c,<@d:e@f>;(\r\n',
  ' folded\r\n',
  '"',
  '(',
  '=?',
  ':',
  '\0',
  '\xff',
];

function randomMessage(r: () => number): Buffer {
  const chunks: Buffer[] = [];
  const n = Math.floor(r() * 40);
  for (let i = 0; i < n; i++) {
    if (r() < 0.6) chunks.push(Buffer.from(SNIPPETS[Math.floor(r() * SNIPPETS.length)]!, 'latin1'));
    else {
      const len = Math.floor(r() * 30);
      const b = Buffer.alloc(len);
      for (let k = 0; k < len; k++) b[k] = Math.floor(r() * 256);
      chunks.push(b);
    }
  }
  return Buffer.concat(chunks);
}

function mutate(src: Buffer, r: () => number): Buffer {
  let b = Buffer.from(src);
  const ops = 1 + Math.floor(r() * 8);
  for (let i = 0; i < ops; i++) {
    const pos = Math.floor(r() * (b.length + 1));
    const op = Math.floor(r() * 5);
    if (op === 0 && b.length > 0) b[Math.min(pos, b.length - 1)] = Math.floor(r() * 256);
    else if (op === 1) b = Buffer.concat([b.subarray(0, pos), b.subarray(Math.min(b.length, pos + Math.floor(r() * 50)))]);
    else if (op === 2) b = Buffer.concat([b.subarray(0, pos), Buffer.from(SNIPPETS[Math.floor(r() * SNIPPETS.length)]!, 'latin1'), b.subarray(pos)]);
    else if (op === 3) b = b.subarray(0, pos);
    else {
      const from = Math.floor(r() * b.length);
      b = Buffer.concat([b.subarray(0, pos), b.subarray(from, from + Math.floor(r() * 200)), b.subarray(pos)]);
    }
  }
  return b;
}

function paths(root: MimePart): number[][] {
  const out: number[][] = [[]];
  const walk = (p: MimePart, prefix: number[], atMessage: boolean) => {
    if (p.children) p.children.forEach((c, i) => (out.push([...prefix, i + 1]), walk(c, [...prefix, i + 1], false)));
    else if (atMessage) out.push([...prefix, 1]);
    if (p.message && !atMessage) walk(p.message, prefix, true);
  };
  walk(root, [], true);
  out.push([99], [1, 99, 1]);
  return out;
}

const TEXTS: SectionText[] = ['', 'HEADER', 'HEADER.FIELDS', 'HEADER.FIELDS.NOT', 'MIME', 'TEXT'];

function exercise(raw: Buffer, limits?: Partial<MimeLimits>): void {
  const root = parseMessage(raw, limits);
  const lim = { maxDepth: 20, maxParts: 1000, ...limits };
  const [count, depth] = checkTree(raw, root, (m) => assert.fail(`${m} in ${JSON.stringify(raw.toString('latin1'))}`));
  // opaque tail parts may exceed the budget by one per open level
  assert.ok(count <= lim.maxParts + lim.maxDepth + 2, `parts ${count}`);
  assert.ok(depth <= lim.maxDepth + 1, `depth ${depth}`);
  formatEnvelope(root.envelope!);
  formatBodyStructure(root, true);
  formatBodyStructure(root, false);
  assert.deepEqual(deserializeStructure(serializeStructure(root)), root);
  buildPreview(raw, root);
  for (const path of paths(root)) {
    for (const text of TEXTS) sectionBytes(raw, root, { path, text, fields: ['subject', 'to'] });
    binaryContent(raw, root, path);
  }
}

test('random bytes never break the parser', () => {
  const r = rng(0x5eed);
  for (let i = 0; i < 3000; i++) exercise(randomMessage(r));
});

test('mutated corpus messages never break the parser', () => {
  const r = rng(42);
  const corpus = fixtureNames().map(fixture);
  for (let i = 0; i < 3000; i++) exercise(mutate(corpus[i % corpus.length]!, r));
});

test('mutations under tight limits', () => {
  const r = rng(7);
  const corpus = fixtureNames().map(fixture);
  for (let i = 0; i < 1000; i++) exercise(mutate(corpus[i % corpus.length]!, r), { maxDepth: 2, maxParts: 3, maxHeaderBytes: 64 });
});

test('deep nesting stops at maxDepth with an opaque leaf', () => {
  let msg = 'Subject: core\r\n\r\ncore\r\n';
  for (let i = 0; i < 500; i++) msg = `Content-Type: message/rfc822\r\n\r\n${msg}`;
  let raw = Buffer.from(msg);
  exercise(raw);
  let root = parseMessage(raw);
  let d = 0;
  let p: MimePart = root;
  while (p.message) {
    p = p.message;
    d++;
  }
  assert.equal(d, 20);
  assert.equal(p.opaque, true);
  assert.equal(p.type, 'application');

  let mp = 'core\r\n';
  for (let i = 0; i < 300; i++) mp = `Content-Type: multipart/mixed; boundary=b${i}\r\n\r\n--b${i}\r\n${mp}\r\n--b${i}--\r\n`;
  raw = Buffer.from(mp);
  exercise(raw);
  root = parseMessage(raw, { maxDepth: 5 });
  exercise(raw, { maxDepth: 5 });
  formatBodyStructure(root, true);
});

test('part count stops at maxParts; the rest is one opaque leaf', () => {
  let msg = 'Content-Type: multipart/mixed; boundary=x\r\n\r\n';
  for (let i = 0; i < 5000; i++) msg += `--x\r\n\r\npart ${i}\r\n`;
  msg += '--x--\r\n';
  const raw = Buffer.from(msg);
  const root = parseMessage(raw);
  assert.equal(root.children!.length, 1000);
  const last = root.children![999]!;
  assert.equal(last.opaque, true);
  assert.equal(last.bodyEnd, root.bodyEnd);
  assert.ok(raw.subarray(last.bodyStart, last.bodyStart + 12).toString().trimStart().startsWith('part 999'));
  exercise(raw);
});

test('huge header is parsed up to maxHeaderBytes', () => {
  const raw = Buffer.from('X: ' + 'y'.repeat(300_000) + '\r\nSubject: late\r\n\r\nbody');
  const root = parseMessage(raw);
  assert.equal(root.envelope!.subject, null);
  assert.equal(raw.subarray(root.bodyStart).toString(), 'body');
  assert.equal(parseMessage(raw, { maxHeaderBytes: 1e6 }).envelope!.subject, 'late');
});
