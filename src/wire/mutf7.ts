// Modified UTF-7 for mailbox names (RFC 3501 §5.1.3; RFC 9051 §5.1 keeps it
// for clients that have not enabled UTF8=ACCEPT).
//
// Printable US-ASCII (0x20-0x7E) stands for itself except "&", which is
// written "&-". Everything else is UTF-16BE in modified base64 ("," instead
// of "/", no padding) between "&" and "-". Decoding accepts only the
// canonical form, so that one name has exactly one spelling.

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,';
const B64_VALUE = new Int8Array(128).fill(-1);
for (let i = 0; i < B64.length; i++) B64_VALUE[B64.charCodeAt(i)] = i;

/** Thrown by decodeMutf7 for input that is not canonical modified UTF-7; answer BAD. */
export class MUtf7Error extends Error {
  override readonly name = 'MUtf7Error';
}

function isPrintable(code: number): boolean {
  return code >= 0x20 && code <= 0x7e;
}

/** Encode a Unicode mailbox name as modified UTF-7. */
export function encodeMutf7(s: string): string {
  let out = '';
  let i = 0;
  while (i < s.length) {
    const c = s.charCodeAt(i);
    if (c === 0x26) {
      out += '&-';
      i++;
      continue;
    }
    if (isPrintable(c)) {
      out += s[i];
      i++;
      continue;
    }
    let j = i;
    while (j < s.length && !isPrintable(s.charCodeAt(j))) j++;
    const bytes: number[] = [];
    for (let k = i; k < j; k++) {
      const u = s.charCodeAt(k);
      bytes.push(u >> 8, u & 0xff);
    }
    let run = '';
    let bits = 0;
    let acc = 0;
    for (const byte of bytes) {
      acc = (acc << 8) | byte;
      bits += 8;
      while (bits >= 6) {
        bits -= 6;
        run += B64[(acc >> bits) & 0x3f];
      }
      acc &= (1 << bits) - 1;
    }
    if (bits > 0) run += B64[(acc << (6 - bits)) & 0x3f];
    out += '&' + run + '-';
    i = j;
  }
  return out;
}

/** Decode modified UTF-7. Throws MUtf7Error on any non-canonical or invalid input. */
export function decodeMutf7(s: string): string {
  let out = '';
  let i = 0;
  let lastShiftEnd = -1;
  while (i < s.length) {
    const c = s.charCodeAt(i);
    if (!isPrintable(c)) throw new MUtf7Error('character outside printable US-ASCII in modified UTF-7');
    if (c !== 0x26) {
      out += s[i];
      i++;
      continue;
    }
    const close = s.indexOf('-', i + 1);
    if (close < 0) throw new MUtf7Error('unterminated "&" shift in modified UTF-7');
    if (close === i + 1) {
      out += '&';
      i = close + 1;
      continue;
    }
    if (lastShiftEnd === i) throw new MUtf7Error('adjacent encoded runs in modified UTF-7 (not canonical)');
    let acc = 0;
    let bits = 0;
    const units: number[] = [];
    let hi = -1;
    for (let k = i + 1; k < close; k++) {
      const code = s.charCodeAt(k);
      const v = code < 128 ? B64_VALUE[code]! : -1;
      if (v < 0) throw new MUtf7Error('invalid base64 character in modified UTF-7');
      acc = ((acc << 6) | v) & 0xffffff;
      bits += 6;
      if (bits >= 16) {
        bits -= 16;
        const u = (acc >> bits) & 0xffff;
        acc &= (1 << bits) - 1;
        units.push(u);
      }
    }
    // Canonical: no whole spare base64 digit, and the spare bits are zero.
    if (bits >= 6 || acc !== 0) throw new MUtf7Error('bad padding bits in modified UTF-7');
    if (units.length === 0) throw new MUtf7Error('empty or truncated encoded run in modified UTF-7');
    for (const u of units) {
      if (u >= 0xd800 && u <= 0xdbff) {
        if (hi >= 0) throw new MUtf7Error('unpaired surrogate in modified UTF-7');
        hi = u;
        continue;
      }
      if (u >= 0xdc00 && u <= 0xdfff) {
        if (hi < 0) throw new MUtf7Error('unpaired surrogate in modified UTF-7');
        out += String.fromCharCode(hi, u);
        hi = -1;
        continue;
      }
      if (hi >= 0) throw new MUtf7Error('unpaired surrogate in modified UTF-7');
      if (isPrintable(u)) throw new MUtf7Error('printable ASCII encoded in base64 (not canonical)');
      out += String.fromCharCode(u);
    }
    if (hi >= 0) throw new MUtf7Error('unpaired surrogate in modified UTF-7');
    i = close + 1;
    lastShiftEnd = i;
  }
  return out;
}
