// The byte writer for metadata-only FETCH responses (MetaLineWriter, used for
// UID FETCH 1:* (FLAGS) and friends) must write exactly what the general
// renderer writes (RFC 9051 §7.5.2 msg-att), for any item order, numbers up
// to their limits, shared and unshared flag arrays, and \Recent (rev1).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MetaLineWriter, renderMetaLine, type FetchItem } from '../../src/commands/fetch-items.js';
import { Session } from '../../src/session/session.js';
import { SelectedView } from '../../src/session/view.js';
import type { MessageMeta } from '../../src/store/types.js';

const KINDS = ['UID', 'FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'MODSEQ'] as const;
const SYSTEM = ['\\Answered', '\\Flagged', '\\Deleted', '\\Seen', '\\Draft'];
const SHARED = [Object.freeze([]), Object.freeze(['\\Seen']), Object.freeze(['\\Flagged', '\\Seen', '$Work', 'Junk'])];

const metaArb = fc.record({
  uid: fc.integer({ min: 1, max: 0xffffffff }),
  flags: fc.oneof(
    fc.constantFrom(...SHARED),
    fc.uniqueArray(fc.oneof(fc.constantFrom(...SYSTEM), fc.stringMatching(/^\$?[A-Za-z][A-Za-z0-9_]{0,10}$/)), { maxLength: 6 }),
  ),
  internalDate: fc.integer({ min: 0, max: 4102444800000 }),
  // The zone INTERNALDATE was given in (minutes east of UTC, RFC 9051 §2.3.3), or none (stored before zones were kept).
  internalTz: fc.option(fc.integer({ min: -14 * 60, max: 14 * 60 }), { nil: undefined }),
  size: fc.integer({ min: 0, max: 2 ** 40 }),
  modseq: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
});

function session(rev2: boolean, recent: number[]): Session {
  const s = new Session('t', '127.0.0.1', false);
  if (rev2) s.enabled.add('IMAP4REV2');
  s.state = 'selected';
  s.selected = new SelectedView(1, 'INBOX', false, 1, [], 1);
  for (const u of recent) s.selected.recent.add(u);
  return s;
}

test('MetaLineWriter writes the same bytes as renderMetaLine for every metadata item list', () => {
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.constantFrom(...KINDS), { minLength: 1, maxLength: 5 }),
      fc.array(fc.tuple(fc.integer({ min: 1, max: 0xffffffff }), metaArb, fc.boolean()), { minLength: 1, maxLength: 40 }),
      fc.boolean(),
      (kinds, msgs, rev2) => {
        const items: FetchItem[] = kinds.map((kind) => ({ kind }) as FetchItem);
        const s = session(rev2, msgs.filter(([, , r]) => r).map(([, m]) => m.uid));
        const w = MetaLineWriter.for(s, items)!;
        assert.ok(w);
        const chunks: Buffer[] = [];
        let want = '';
        for (const [seq, m] of msgs) {
          w.line(seq, m as MessageMeta, (c) => chunks.push(Buffer.from(c)));
          want += renderMetaLine(s, seq, m as MessageMeta, items, false);
        }
        w.take((c) => chunks.push(Buffer.from(c)));
        assert.equal(Buffer.concat(chunks).toString('utf8'), want);
      },
    ),
    { numRuns: 300 },
  );
});

test('MetaLineWriter hands over full chunks and keeps writing after them (many lines, long flag lists)', () => {
  const s = session(true, []);
  const items: FetchItem[] = [{ kind: 'UID' }, { kind: 'FLAGS' }];
  const w = MetaLineWriter.for(s, items)!;
  const long = Object.freeze(Array.from({ length: 200 }, (_, i) => `$Keyword${i}`));
  const chunks: Buffer[] = [];
  let want = '';
  for (let i = 1; i <= 20_000; i++) {
    const m: MessageMeta = { uid: i * 3, flags: i % 7 === 0 ? long : SHARED[i % 2]!, internalDate: 0, size: 1, modseq: 1 };
    w.line(i, m, (c) => chunks.push(c));
    want += renderMetaLine(s, i, m, items, false);
  }
  w.take((c) => chunks.push(c));
  assert.ok(chunks.length > 1, 'more than one chunk');
  assert.equal(Buffer.concat(chunks).toString('latin1'), want);
});

test('MetaLineWriter is not used for items that need the message', () => {
  const s = session(true, []);
  assert.equal(MetaLineWriter.for(s, [{ kind: 'UID' }, { kind: 'ENVELOPE' }]), null);
});
