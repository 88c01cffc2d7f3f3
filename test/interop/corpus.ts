// A deterministic corpus of RFC 5322 messages for the interop tests: plain
// ASCII, 8-bit UTF-8 and Latin-1 bodies, base64 attachments of random bytes,
// multipart/alternative, folded headers, tiny and header-only messages.
// Line ends are CRLF only and there is no NUL, so every message is a valid
// IMAP literal without the BINARY extension.
import { prng } from '../helpers/rng.js';
export { prng };

export interface CorpusMessage {
  i: number;
  kind: 'ascii' | 'utf8' | 'attachment' | 'latin1' | 'alternative' | 'tiny';
  raw: Buffer;
  subject: string;
  messageId: string;
  flags: string[];
  internalDate: Date;
}

const CRLF = '\r\n';
const ASCII = 'abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 .,;:!?()[]{}<>*%"\'\\/-_=+@#';
const UTF8 = [...(ASCII + 'äöüßÄÖÜéèêçñ€ §°µ 日本語のテキスト 😀🚀 Ωπ∑ ← →')];

export const FLAG_POOL = ['\\Seen', '\\Flagged', '\\Answered', '\\Draft', '$Forwarded', 'Work', '$Label1'];

function pick<T>(rnd: () => number, a: readonly T[]): T {
  return a[Math.floor(rnd() * a.length)]!;
}
function int(rnd: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rnd() * (hi - lo + 1));
}

function lines(rnd: () => number, n: number, alphabet: readonly string[]): string {
  const out: string[] = [];
  for (let k = 0; k < n; k++) {
    let l = '';
    const len = int(rnd, 0, 78);
    for (let c = 0; c < len; c++) l += pick(rnd, alphabet);
    out.push(l.trimEnd());
  }
  return out.join(CRLF);
}

function base64Lines(b: Buffer): string {
  const s = b.toString('base64');
  const out: string[] = [];
  for (let k = 0; k < s.length; k += 76) out.push(s.slice(k, k + 76));
  return out.join(CRLF);
}

/** Message number i of the corpus tagged `tag` (used in Message-ID and subjects). */
export function makeMessage(i: number, tag: string, seed = 7): CorpusMessage {
  const rnd = prng(seed * 100_003 + i);
  const kinds = ['ascii', 'utf8', 'attachment', 'latin1', 'alternative', 'tiny'] as const;
  const kind = kinds[i % kinds.length]!;
  const messageId = `<${i}.${tag}@example.test>`;
  const head = [
    `From: Sender ${i} <sender${i}@example.test>`,
    'To: Quire User <user@example.test>',
    `Date: Mon, 1 Jan 2024 10:${String(i % 60).padStart(2, '0')}:00 +0000`,
    `Message-ID: ${messageId}`,
    `X-Interop-Seq: ${i}`,
    'MIME-Version: 1.0',
  ];
  let subject: string;
  let body: Buffer;
  switch (kind) {
    case 'ascii':
      subject = `plain ascii ${i} {5}`;
      head.push(`Subject: ${subject}`, 'Content-Type: text/plain; charset=us-ascii');
      body = Buffer.from(lines(rnd, int(rnd, 1, 400), [...ASCII]) + CRLF + '. leading dot' + CRLF + 'A001 OK not a response' + CRLF);
      break;
    case 'utf8':
      subject = `8bit Grüße ${i} 😀`;
      head.push(`Subject: =?UTF-8?B?${Buffer.from(subject).toString('base64')}?=`, 'Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 8bit');
      body = Buffer.from(lines(rnd, int(rnd, 1, 300), UTF8), 'utf8');
      break;
    case 'attachment': {
      subject = `attachment ${i}`;
      const size = pick(rnd, [1, 700, 4096, 30_000, 120_000, 250_000]);
      const blob = Buffer.alloc(size);
      for (let k = 0; k < size; k++) blob[k] = Math.floor(rnd() * 256);
      const b = `b${String(i).padStart(8, '0')}`;
      head.push(`Subject: ${subject}`, `Content-Type: multipart/mixed; boundary="${b}"`);
      body = Buffer.from(
        [
          'This is a multi-part message in MIME format.',
          `--${b}`,
          'Content-Type: text/plain; charset=us-ascii',
          '',
          'See the attached file.',
          `--${b}`,
          `Content-Type: application/octet-stream; name="blob${i}.bin"`,
          `Content-Disposition: attachment; filename="blob${i}.bin"`,
          'Content-Transfer-Encoding: base64',
          '',
          base64Lines(blob),
          `--${b}--`,
          '',
        ].join(CRLF),
      );
      break;
    }
    case 'latin1': {
      subject = `latin-1 8bit ${i}`;
      head.push(`Subject: ${subject}`, 'Content-Type: text/plain; charset=iso-8859-1', 'Content-Transfer-Encoding: 8bit');
      const parts: Buffer[] = [];
      const n = int(rnd, 1, 200);
      for (let k = 0; k < n; k++) {
        const len = int(rnd, 0, 90);
        const l = Buffer.alloc(len);
        for (let c = 0; c < len; c++) {
          const v = int(rnd, 0, 190); // 0x20..0x7e and 0xa0..0xff
          l[c] = v < 95 ? 0x20 + v : 0xa0 + (v - 95);
        }
        parts.push(l);
      }
      body = Buffer.concat(parts.flatMap((p, k) => (k ? [Buffer.from(CRLF), p] : [p])));
      break;
    }
    case 'alternative': {
      subject = `alternative ${i} with a very long subject line that goes on and on`;
      const b = `alt${String(i).padStart(8, '0')}`;
      head.push(`Subject: ${subject}`, 'X-Long: ' + Array.from({ length: 40 }, (_, k) => `folded-part-${k}`).join('\r\n\t'), `Content-Type: multipart/alternative; boundary="${b}"`);
      body = Buffer.from(
        [
          `--${b}`,
          'Content-Type: text/plain; charset=utf-8',
          'Content-Transfer-Encoding: quoted-printable',
          '',
          `Caf=C3=A9 =E2=82=AC ${i}`,
          `--${b}`,
          'Content-Type: text/html; charset=utf-8',
          'Content-Transfer-Encoding: 8bit',
          '',
          `<p>Café € <b>${i}</b></p>`,
          `--${b}--`,
        ].join(CRLF),
        'utf8',
      );
      break;
    }
    default:
      subject = `tiny ${i}`;
      head.push(`Subject: ${subject}`);
      body = Buffer.from(i % 12 === 5 ? '' : 'no final CRLF');
  }
  const raw = Buffer.concat([Buffer.from(head.join(CRLF) + CRLF + CRLF, 'utf8'), body]);
  const flags = [...new Set(Array.from({ length: int(rnd, 0, 4) }, () => pick(rnd, FLAG_POOL)))].sort();
  // Whole seconds between 2001 and 2025 (IMAP dates have no fractions).
  const internalDate = new Date(int(rnd, 978_307_200, 1_735_689_600) * 1000);
  return { i, kind, raw, subject, messageId, flags, internalDate };
}
