// Fuzz target: the MIME parser and what is built from its tree
// (src/mime: parseMessage, ENVELOPE, BODYSTRUCTURE, structure serialisation,
// preview and search text). Invariants checked on every input:
// - nothing throws, whatever the bytes;
// - every part's offsets lie within the message, header before body, children inside their parent, size = bodyEnd - bodyStart;
// - part count and depth stay within the parser's limits;
// - serialise then deserialise gives the same tree, and BODYSTRUCTURE of both is identical.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  parseMessage, walkParts, formatBodyStructure, envelopeOf, formatEnvelope, serializeStructure, deserializeStructure,
  buildPreview, searchHeaderText, searchBodyText, MAX_MIME_DEPTH, MAX_MIME_PARTS, type MimePart,
} from '../../src/mime/index.ts';
import type { FuzzTarget } from './lib/fuzz.ts';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../test/fixtures/mime');

function checkPart(p: MimePart, len: number, lo: number, hi: number, depth: number): void {
  if (!(p.headerStart >= lo && p.headerStart <= p.headerEnd && p.headerEnd === p.bodyStart && p.bodyStart <= p.bodyEnd && p.bodyEnd <= hi && hi <= len)) {
    throw new Error(`part offsets out of order or bounds: ${p.headerStart} ${p.headerEnd} ${p.bodyStart} ${p.bodyEnd} within [${lo}, ${hi}] of ${len}`);
  }
  if (p.size !== p.bodyEnd - p.bodyStart) throw new Error(`size ${p.size} != ${p.bodyEnd - p.bodyStart}`);
  if (depth > MAX_MIME_DEPTH + 2) throw new Error(`depth ${depth} beyond the limit`);
  for (const c of p.children ?? []) checkPart(c, len, p.bodyStart, p.bodyEnd, depth + 1);
  if (p.message) checkPart(p.message, len, p.bodyStart, p.bodyEnd, depth + 1);
}

const target: FuzzTarget = {
  name: 'mime',
  description: 'MIME parser, ENVELOPE, BODYSTRUCTURE, structure serialisation, preview, search text',
  maxInputBytes: 16 * 1024,
  seeds: () => readdirSync(FIXTURES).filter((f) => f.endsWith('.eml')).sort().map((f) => readFileSync(path.join(FIXTURES, f))).filter((b) => b.length <= 16 * 1024),
  dictionary: ['\r\n', '\n', '\r\n\r\n', '--', '--b\r\n', '--b--\r\n', 'Content-Type: multipart/mixed; boundary=b\r\n', 'Content-Type: message/rfc822\r\n',
    'Content-Type: text/plain; charset="utf-8"\r\n', 'Content-Transfer-Encoding: base64\r\n', 'Content-Transfer-Encoding: quoted-printable\r\n',
    'Content-Disposition: attachment; filename*=UTF-8\'\'%E2%82%AC.txt\r\n', '; name*0="a"; name*1="b"', 'boundary=', '"', '\\', '(', ')', '<', '>', ',', ';', '=',
    '=?utf-8?B?4oKs?=', '=?iso-8859-1?Q?caf=E9?=', 'From: "A" <a@b.c>\r\n', 'To: g: x@y, z@w;\r\n', 'Subject: ', ' \t', '\xff', '\0', '=\r\n', '=3D', 'Message-ID: <x@y>\r\n'],
  run(input) {
    const root = parseMessage(input);
    checkPart(root, input.length, 0, input.length, 0);
    let parts = 0;
    for (const _ of walkParts(root)) parts++;
    if (parts > MAX_MIME_PARTS + MAX_MIME_DEPTH + 2) throw new Error(`${parts} parts beyond the limit`);
    const bs = formatBodyStructure(root, true);
    formatBodyStructure(root, false);
    formatEnvelope(envelopeOf(root));
    const again = deserializeStructure(serializeStructure(root));
    if (formatBodyStructure(again, true) !== bs) throw new Error('BODYSTRUCTURE differs after serialise/deserialise');
    buildPreview(input, root);
    searchHeaderText(input, root);
    searchBodyText(input, root);
    const kinds: string[] = [];
    for (const p of walkParts(root)) {
      kinds.push(`${p.type}/${p.subtype}${p.opaque ? '!' : ''}${p.encoding === '7bit' ? '' : `:${p.encoding.slice(0, 8)}`}`);
      if (kinds.length >= 5) break;
    }
    return `${Math.min(parts, 20)} ${kinds.join(',')}`;
  },
};
export default target;
