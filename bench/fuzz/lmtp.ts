// Fuzz target: the LMTP codec (src/delivery/codec.ts): line framing, the
// switch to data mode after DATA (as the session does after its 354), dot
// unstuffing and the end-of-data mark, and the MAIL/RCPT path parser.
// Invariants checked on every input:
// - nothing throws;
// - split invariance: fed whole or in random chunks (drained after each), the same lines and the same message data;
// - bounded memory: in command mode the decoder holds at most a line plus the last chunk; in data mode, the last chunk plus a few bytes;
// - a data event's size equals the bytes it carries unless it is marked too big, and no line exceeds the line limit.
import { LmtpDecoder, parsePathArg, splitCommand, type DecoderEvent } from '../../src/delivery/codec.ts';
import { prngOf, type FuzzTarget } from './lib/fuzz.ts';

const MAX_LINE = 256;
const MAX_DATA = 4096;
const MAX_EVENTS = 10_000;

function drain(d: LmtpDecoder, out: string[]): void {
  for (let ev: DecoderEvent | null = d.next(); ev; ev = d.next()) {
    if (ev.type === 'line') {
      if (Buffer.byteLength(ev.line, 'latin1') > MAX_LINE + 2) throw new Error(`line of ${ev.line.length} bytes passed the limit`);
      const { verb, arg } = splitCommand(ev.line);
      let path = '';
      if (verb === 'MAIL' || verb === 'RCPT') {
        const p = parsePathArg(arg, verb === 'MAIL' ? 'FROM' : 'TO');
        path = p ? `<${p.address}> ${[...p.params.keys()].join(',')}` : 'syntax';
      }
      out.push(`line ${verb.slice(0, 12)} ${path}`);
      if (verb === 'DATA') d.startData();
    } else if (ev.type === 'data') {
      const bytes = Buffer.concat(ev.chunks);
      if (!ev.tooBig && bytes.length !== ev.size) throw new Error(`data size ${ev.size} but ${bytes.length} bytes`);
      if (bytes.length > MAX_DATA) throw new Error(`data of ${bytes.length} bytes kept past the limit ${MAX_DATA}`);
      out.push(`data ${ev.size} ${ev.tooBig} ${bytes.toString('hex')}`);
    } else out.push(ev.type);
    if (out.length > MAX_EVENTS) throw new Error('decoder yields events without consuming input');
  }
}

const target: FuzzTarget = {
  name: 'lmtp',
  description: 'LMTP codec: framing, data mode, dot unstuffing, MAIL/RCPT path parsing',
  maxInputBytes: 8192,
  seeds: () => [
    'LHLO mx.example.com\r\nMAIL FROM:<a@b.c> SIZE=100 BODY=8BITMIME\r\nRCPT TO:<alice@example.com>\r\nRCPT TO: <bob+folder@example.com> NOTIFY=NEVER\r\nDATA\r\nSubject: x\r\n\r\n..dot\r\n.\r\nQUIT\r\n',
    'MAIL FROM:<>\r\nRCPT TO:<@relay,@r2:user@x.y>\r\nDATA\r\n.\r\n',
    'RCPT TO:<"quoted local"@x.y>\r\nRSET\r\nNOOP\nVRFY x\r\n',
    'DATA\r\nline\n.\nstill data\r\n.\r\n',
    'MAIL FROM:<\xe2\x82@x>\r\nRCPT TO:<\xff\xfe@x>\r\n',
  ].map((s) => Buffer.from(s, 'latin1')),
  dictionary: ['\r\n', '\n', '\r', '.', '\r\n.\r\n', '..', 'DATA\r\n', 'MAIL FROM:', 'RCPT TO:', '<', '>', '<>', '@', ':', ',', ' ', '=', 'SIZE=', 'BODY=8BITMIME',
    'SMTPUTF8', '"', '\\', 'LHLO x\r\n', 'BDAT 10\r\n', '\0', '\xff', '\x7f'],
  run(input) {
    const whole = new LmtpDecoder(MAX_LINE, MAX_DATA);
    const a: string[] = [];
    whole.push(input);
    drain(whole, a);
    const r = prngOf(input);
    const split = new LmtpDecoder(MAX_LINE, MAX_DATA);
    const b: string[] = [];
    for (let off = 0; off < input.length; ) {
      const n = r() < 0.3 ? 1 : 1 + Math.floor(r() * 64);
      const chunk = input.subarray(off, off + n);
      off += n;
      split.push(chunk);
      drain(split, b);
      const bound = split.inData ? chunk.length + 8 : MAX_LINE + 2 + chunk.length;
      if (split.pending > bound) throw new Error(`decoder holds ${split.pending} bytes after draining (${split.inData ? 'data' : 'command'} mode)`);
    }
    if (a.length !== b.length || a.some((x, i) => x !== b[i])) {
      const i = a.findIndex((x, k) => x !== b[k]);
      throw new Error(`split changes the events at ${i}: whole ${(a[i] ?? '(none)').slice(0, 120)} / split ${(b[i] ?? '(none)').slice(0, 120)}`);
    }
    return a.slice(0, 8).map((s) => s.split(' ').slice(0, 2).join(' ')).join('|');
  },
};
export default target;
