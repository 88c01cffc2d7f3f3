// Content-Transfer-Encoding decoding (RFC 2045 §6.7 quoted-printable, §6.8
// base64), used by BINARY (RFC 3516) and PREVIEW. Lenient: bad input decodes
// to something, never an error.

const B64 = new Int16Array(256).fill(-1);
'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.split('').forEach((c, i) => (B64[c.charCodeAt(0)] = i));

/** Base64 (RFC 2045 §6.8): characters outside the alphabet are ignored, decoding stops at "=". */
export function decodeBase64(buf: Buffer): Buffer {
  const out = Buffer.allocUnsafe(Math.floor((buf.length * 3) / 4) + 3);
  let o = 0;
  let acc = 0;
  let bits = 0;
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i]!;
    if (c === 0x3d) break;
    const v = B64[c]!;
    if (v < 0) continue;
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  return out.subarray(0, o);
}

function hex(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/**
 * Quoted-printable (RFC 2045 §6.7): "=XX" octets, "=" + line break is a soft
 * break (whitespace between "=" and the break tolerated), trailing whitespace
 * on a line is dropped (rule 3), a malformed "=" stays literally. Line breaks
 * are kept as they are in the input.
 */
export function decodeQuotedPrintable(buf: Buffer): Buffer {
  const out = Buffer.allocUnsafe(buf.length);
  let o = 0;
  const n = buf.length;
  let i = 0;
  while (i < n) {
    const c = buf[i]!;
    if (c === 0x3d) {
      const h1 = i + 1 < n ? hex(buf[i + 1]!) : -1;
      const h2 = i + 2 < n ? hex(buf[i + 2]!) : -1;
      if (h1 >= 0 && h2 >= 0) {
        out[o++] = (h1 << 4) | h2;
        i += 3;
        continue;
      }
      // soft line break?
      let j = i + 1;
      while (j < n && (buf[j] === 0x20 || buf[j] === 0x09)) j++;
      if (j === n) {
        i = n;
        continue;
      }
      if (buf[j] === 0x0a) {
        i = j + 1;
        continue;
      }
      if (buf[j] === 0x0d && j + 1 < n && buf[j + 1] === 0x0a) {
        i = j + 2;
        continue;
      }
      out[o++] = c;
      i++;
      continue;
    }
    if (c === 0x20 || c === 0x09) {
      // drop whitespace that ends a line
      let j = i;
      while (j < n && (buf[j] === 0x20 || buf[j] === 0x09)) j++;
      if (j === n || buf[j] === 0x0a || (buf[j] === 0x0d && j + 1 < n && buf[j + 1] === 0x0a)) {
        i = j;
        continue;
      }
      while (i < j) out[o++] = buf[i++]!;
      continue;
    }
    out[o++] = c;
    i++;
  }
  return out.subarray(0, o);
}

/** Encodings whose body is already the content (RFC 2045 §6.2). */
export const IDENTITY_ENCODINGS: ReadonlySet<string> = new Set(['7bit', '8bit', 'binary', '']);

/** Whether we can decode `encoding` (else BINARY answers [UNKNOWN-CTE], RFC 3516 §4.2). */
export function knownEncoding(encoding: string): boolean {
  const e = encoding.toLowerCase();
  return IDENTITY_ENCODINGS.has(e) || e === 'base64' || e === 'quoted-printable';
}

/** Decodes a body in `encoding`; null for an unknown encoding. */
export function decodeTransferEncoding(body: Buffer, encoding: string): Buffer | null {
  const e = encoding.toLowerCase();
  if (IDENTITY_ENCODINGS.has(e)) return body;
  if (e === 'base64') return decodeBase64(body);
  if (e === 'quoted-printable') return decodeQuotedPrintable(body);
  return null;
}
