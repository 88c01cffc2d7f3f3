// The PROXY protocol (src/server/proxy-protocol.ts), issue 13 item 5:
// the byte-level decoder (every fixture whole, one byte at a time and cut at
// every boundary; hostile headers; random bytes), then real sockets against
// real IMAP, IMAPS, POP3, POP3S and LMTP listeners: the header's source
// becomes the session's address (log, admission caps, `quire who`), the
// bytes after the header survive (pipelined commands, a TLS ClientHello),
// untrusted, slow, oversized and malformed headers are closed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { ProxyHeaderDecoder, PROXY_V2_MAX_BYTES, TrustedNetworks, ipv6, proxyGate, type ProxyParse } from '../../src/server/proxy-protocol.js';
import { startTestServer } from '../helpers/server.js';
import { startPop3TestServer } from '../pop3/helpers.js';
import { startTestLmtp } from '../delivery/helpers.js';
import { prng } from '../helpers/rng.js';
import { loadConfig } from '../../src/cli/config.js';
import { proxyPolicy } from '../../src/cli/proxy-config.js';
import type { Logger } from '../../src/server/options.js';

const SIG = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

/** A v2 header: command (0 LOCAL, 1 PROXY), family byte, address block, TLVs. */
export function v2(cmd: number, fam: number, addr: Buffer, tlvs: Buffer = Buffer.alloc(0), version = 2): Buffer {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(addr.length + tlvs.length);
  return Buffer.concat([SIG, Buffer.from([(version << 4) | cmd, fam]), len, addr, tlvs]);
}

function inet4(src: string, dst: string, sport: number, dport: number): Buffer {
  const b = Buffer.alloc(12);
  src.split('.').forEach((x, i) => (b[i] = Number(x)));
  dst.split('.').forEach((x, i) => (b[4 + i] = Number(x)));
  b.writeUInt16BE(sport, 8);
  b.writeUInt16BE(dport, 10);
  return b;
}

function v6bytes(a: string): Buffer {
  const [head, tail] = a.includes('::') ? a.split('::') : [a, undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), 2 * i));
  return b;
}

function inet6(src: string, dst: string, sport: number, dport: number): Buffer {
  const p = Buffer.alloc(4);
  p.writeUInt16BE(sport, 0);
  p.writeUInt16BE(dport, 2);
  return Buffer.concat([v6bytes(src), v6bytes(dst), p]);
}

function tlv(type: number, value: Buffer): Buffer {
  const h = Buffer.from([type, 0, 0]);
  h.writeUInt16BE(value.length, 1);
  return Buffer.concat([h, value]);
}

/** Feeds `pieces` in order; the first non-'more' answer, or 'more'. */
function feed(pieces: Buffer[]): ProxyParse {
  const d = new ProxyHeaderDecoder();
  for (let i = 0; i < pieces.length; i++) {
    const r = d.push(pieces[i]!);
    // What the socket brings after the header is the protocol's: it joins the decoder's rest.
    if (r.kind === 'header') return { ...r, rest: Buffer.concat([r.rest, ...pieces.slice(i + 1)]) };
    if (r.kind !== 'more') return r;
  }
  return { kind: 'more' };
}

/** The same answer whole, byte by byte, and cut in two at every boundary (STYLE.md habit 3). */
function decodeEverySplit(input: Buffer): ProxyParse {
  const whole = feed([input]);
  const norm = (r: ProxyParse) => JSON.stringify(r.kind === 'header' ? { ...r, rest: r.rest.toString('hex') } : r);
  const bytes: Buffer[] = [];
  for (let i = 0; i < input.length; i++) bytes.push(input.subarray(i, i + 1));
  assert.equal(norm(feed(bytes)), norm(whole), 'byte by byte');
  for (let i = 1; i < input.length; i++) assert.equal(norm(feed([input.subarray(0, i), input.subarray(i)])), norm(whole), `cut at ${i}`);
  return whole;
}

test('v1 TCP4, TCP6 and UNKNOWN, with the bytes after the header kept', () => {
  let r = decodeEverySplit(Buffer.from('PROXY TCP4 192.0.2.10 198.51.100.1 56324 143\r\na1 NOOP\r\n'));
  assert.equal(r.kind, 'header');
  assert.ok(r.kind === 'header');
  assert.deepEqual(r.header, { version: 1, command: 'proxy', source: { address: '192.0.2.10', port: 56324 }, destination: { address: '198.51.100.1', port: 143 } });
  assert.equal(r.rest.toString(), 'a1 NOOP\r\n');
  r = decodeEverySplit(Buffer.from('PROXY TCP6 2001:db8::1 2001:db8::2 65535 0\r\n'));
  assert.ok(r.kind === 'header');
  assert.deepEqual(r.header.source, { address: '2001:db8::1', port: 65535 });
  assert.equal(r.rest.length, 0);
  r = decodeEverySplit(Buffer.from('PROXY UNKNOWN ffff::1 ffff::2 1 2\r\nX'));
  assert.ok(r.kind === 'header');
  assert.equal(r.header.command, 'local');
  assert.equal(r.header.source, null);
  assert.equal(r.rest.toString(), 'X');
  // The longest legal line: 107 bytes with CRLF (PP §2.1).
  const longest = 'PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n';
  assert.equal(longest.length, 104);
  assert.equal(decodeEverySplit(Buffer.from(longest)).kind, 'header');
  const unknown107 = 'PROXY UNKNOWN ' + 'x'.repeat(107 - 16) + '\r\n';
  assert.equal(unknown107.length, 107);
  assert.equal(decodeEverySplit(Buffer.from(unknown107)).kind, 'header');
});

test('v2 PROXY over INET and INET6, LOCAL, UNSPEC and UNIX, TLVs skipped', () => {
  let r = decodeEverySplit(Buffer.concat([v2(1, 0x11, inet4('203.0.113.7', '10.0.0.1', 40000, 993)), Buffer.from([0x16, 0x03, 0x01])]));
  assert.ok(r.kind === 'header');
  assert.deepEqual(r.header, { version: 2, command: 'proxy', source: { address: '203.0.113.7', port: 40000 }, destination: { address: '10.0.0.1', port: 993 } });
  assert.deepEqual([...r.rest], [0x16, 0x03, 0x01]);
  const tlvs = Buffer.concat([tlv(0x01, Buffer.from('imap')), tlv(0x05, Buffer.alloc(128, 7)), tlv(0x04, Buffer.alloc(0))]);
  r = decodeEverySplit(v2(1, 0x21, inet6('2001:db8:0:0:1:0:0:1', '::1', 1, 143), tlvs));
  assert.ok(r.kind === 'header');
  assert.deepEqual(r.header.source, { address: '2001:db8::1:0:0:1', port: 1 });
  assert.deepEqual(r.header.destination, { address: '::1', port: 143 });
  // LOCAL (a health check): the socket's own addresses apply, whatever block follows.
  r = decodeEverySplit(v2(0, 0x11, inet4('1.2.3.4', '5.6.7.8', 1, 2)));
  assert.ok(r.kind === 'header');
  assert.equal(r.header.command, 'local');
  r = decodeEverySplit(v2(0, 0x00, Buffer.alloc(0)));
  assert.ok(r.kind === 'header' && r.header.command === 'local');
  r = decodeEverySplit(v2(1, 0x31, Buffer.alloc(216)));
  assert.ok(r.kind === 'header' && r.header.command === 'local' && r.header.source === null);
  // A DGRAM transport carries no stream client: treated as the balancer's own.
  r = decodeEverySplit(v2(1, 0x12, inet4('1.2.3.4', '5.6.7.8', 1, 2)));
  assert.ok(r.kind === 'header' && r.header.command === 'local');
});

test('hostile headers are errors, decided as early as the bytes allow', () => {
  const bad: [string, Buffer][] = [
    ['an IMAP command', Buffer.from('a1 LOGIN x y\r\n')],
    ['HTTP', Buffer.from('GET / HTTP/1.1\r\n\r\n')],
    ['a TLS ClientHello', Buffer.from([0x16, 0x03, 0x01, 0x00, 0x10])],
    ['lower case', Buffer.from('proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n')],
    ['v1 without CRLF within 107 bytes', Buffer.from('PROXY UNKNOWN ' + 'x'.repeat(200))],
    ['v1 of 108 bytes', Buffer.from('PROXY UNKNOWN ' + 'x'.repeat(108 - 16) + '\r\n')],
    ['v1 bare LF', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n')],
    ['v1 CR then X', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX')],
    ['v1 NUL', Buffer.from('PROXY TCP4 1.2.3.4\x005.6.7.8 1 2\r\n')],
    ['v1 8-bit', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\xff\r\n', 'latin1')],
    ['v1 bad address', Buffer.from('PROXY TCP4 999.2.3.4 5.6.7.8 1 2\r\n')],
    ['v1 v6 address as TCP4', Buffer.from('PROXY TCP4 ::1 ::1 1 2\r\n')],
    ['v1 v4 address as TCP6', Buffer.from('PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n')],
    ['v1 port 65536', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n')],
    ['v1 port with a leading zero', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n')],
    ['v1 negative port', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n')],
    ['v1 double space', Buffer.from('PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n')],
    ['v1 missing field', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n')],
    ['v1 extra field', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n')],
    ['v1 unknown protocol', Buffer.from('PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n')],
    ['v2 bad signature', Buffer.concat([Buffer.from('0d0a0d0a000d0a515549540b', 'hex'), Buffer.alloc(8)])],
    ['v2 version 1', v2(1, 0x11, inet4('1.2.3.4', '5.6.7.8', 1, 2), undefined, 1)],
    ['v2 version 3', v2(1, 0x11, inet4('1.2.3.4', '5.6.7.8', 1, 2), undefined, 3)],
    ['v2 command 2', v2(2, 0x11, inet4('1.2.3.4', '5.6.7.8', 1, 2))],
    ['v2 family 4', v2(1, 0x41, inet4('1.2.3.4', '5.6.7.8', 1, 2))],
    ['v2 transport 3', v2(1, 0x13, inet4('1.2.3.4', '5.6.7.8', 1, 2))],
    ['v2 INET block truncated', v2(1, 0x11, Buffer.alloc(11))],
    ['v2 INET6 block truncated', v2(1, 0x21, Buffer.alloc(35))],
    ['v2 TLV overruns', v2(1, 0x11, inet4('1.2.3.4', '5.6.7.8', 1, 2), Buffer.from([0x01, 0x00, 0x09, 0x41]))],
    ['v2 TLV header truncated', v2(1, 0x11, inet4('1.2.3.4', '5.6.7.8', 1, 2), Buffer.from([0x01, 0x00]))],
  ];
  for (const [name, input] of bad) assert.equal(decodeEverySplit(input).kind, 'error', name);
  // Rejected at the 16-byte fixed part: a 64 KiB announcement is never waited for.
  const huge = Buffer.concat([SIG, Buffer.from([0x21, 0x11, 0xff, 0xff])]);
  assert.equal(feed([huge]).kind, 'error');
  const limit = Buffer.concat([SIG, Buffer.from([0x21, 0x11, 0, 0])]);
  limit.writeUInt16BE(PROXY_V2_MAX_BYTES - 16 + 1, 14);
  assert.equal(feed([limit]).kind, 'error');
  limit.writeUInt16BE(PROXY_V2_MAX_BYTES - 16, 14);
  assert.equal(feed([limit]).kind, 'more');
  // A wrong first byte is refused at once, without waiting for more.
  assert.equal(feed([Buffer.from('G')]).kind, 'error');
  assert.equal(feed([Buffer.from('PROXX')]).kind, 'error');
  assert.equal(feed([Buffer.from([0x0d, 0x0a, 0x0d, 0x0b])]).kind, 'error');
});

test('random bytes give "more" or an error, never a throw, never more than the cap buffered', () => {
  const rnd = prng(1313);
  for (let n = 0; n < 3000; n++) {
    const len = Math.floor(rnd() * 300);
    const b = Buffer.alloc(len);
    for (let i = 0; i < len; i++) b[i] = Math.floor(rnd() * 256);
    // Half of them start like a header, so the decoder's deeper branches are reached.
    if (n % 2 === 0) (n % 4 === 0 ? SIG : Buffer.from('PROXY ')).copy(b, 0, 0, Math.min(len, 12));
    const d = new ProxyHeaderDecoder();
    let r: ProxyParse = { kind: 'more' };
    for (let i = 0; i < len && r.kind === 'more'; i += 7) {
      r = d.push(b.subarray(i, i + 7));
      assert.ok(d.bufferedBytes <= PROXY_V2_MAX_BYTES + 7);
    }
    assert.ok(['more', 'error', 'header'].includes(r.kind));
  }
});

test('IPv6 text form is RFC 5952 (as WHATWG URL writes it)', () => {
  const rnd = prng(5952);
  for (let n = 0; n < 2000; n++) {
    const b = Buffer.alloc(16);
    for (let i = 0; i < 8; i++) b.writeUInt16BE(rnd() < 0.5 ? 0 : Math.floor(rnd() * 65536), 2 * i);
    if (b.subarray(0, 10).every((x) => x === 0) && b.readUInt16BE(10) === 0xffff) continue;
    const want = new URL(`http://[${[...Array(8)].map((_, i) => b.readUInt16BE(2 * i).toString(16)).join(':')}]/`).hostname.slice(1, -1);
    assert.equal(ipv6(b, 0), want);
  }
  assert.equal(ipv6(v6bytes('::ffff:102:304'), 0), '::ffff:1.2.3.4');
});

test('trusted networks: CIDRs, bare hosts, IPv4-mapped peers; malformed entries refused', () => {
  const t = new TrustedNetworks(['10.0.0.0/8', '192.0.2.1', '2001:db8::/32']);
  assert.ok(t.trusts('10.255.1.2'));
  assert.ok(t.trusts('::ffff:10.1.1.1'));
  assert.ok(t.trusts('192.0.2.1'));
  assert.ok(!t.trusts('192.0.2.2'));
  assert.ok(t.trusts('2001:db8:ffff::1'));
  assert.ok(!t.trusts('2001:db9::1'));
  assert.ok(!t.trusts(undefined));
  assert.ok(!t.trusts('not-an-address'));
  for (const bad of ['10.0.0.0/33', '::/129', 'example.com', '10.0.0.0/', '10.0.0.0/x', '1.2.3.4/ 8']) assert.throws(() => new TrustedNetworks([bad]), /invalid network/);
});

// ---- real sockets

function recorder(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const keep = (lvl: string) => (m: string, f?: Record<string, unknown>) => lines.push(`${lvl} ${m} ${JSON.stringify(f ?? {})}`);
  return { lines, log: { debug: keep('debug'), info: keep('info'), warn: keep('warn'), error: keep('error') } };
}

/** Connects from `localAddress`, writes `first` at once, and collects what comes back until close, `ms`, or (when given) `until` matches. */
function exchange(port: number, first: Buffer, opts: { localAddress?: string; ms?: number; then?: Buffer; until?: RegExp } = {}): Promise<{ data: string; closed: boolean; ms: number }> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const s = net.connect({ port, host: '127.0.0.1', ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) });
    let data = '';
    const done = (closed: boolean) => {
      clearTimeout(timer);
      s.destroy();
      resolve({ data, closed, ms: Date.now() - t0 });
    };
    const timer = setTimeout(() => done(false), opts.ms ?? 1500);
    s.on('connect', () => s.write(opts.then ? Buffer.concat([first, opts.then]) : first));
    s.on('data', (d) => {
      data += d.toString('latin1');
      if (opts.until?.test(data)) done(false);
    });
    s.on('error', () => {});
    s.on('close', () => done(true));
  });
}

const trusted = (cidrs: string[], timeoutMs = 3000) => ({ trusted: new TrustedNetworks(cidrs), timeoutMs });

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('IMAP: the v2 source is the session address (log, quire who, login, plaintext policy); commands in the same segment as the header run', async () => {
  const rec = recorder();
  const ts = await startTestServer({ tweak: (o) => ((o.log = rec.log), (o.proxyProtocol = { imap: trusted(['127.0.0.1/32']) })) });
  try {
    // plaintextAuth "loopback" looks at the client, not the balancer on loopback: no login without TLS.
    const far = await exchange(ts.port, v2(1, 0x11, inet4('203.0.113.8', '198.51.100.1', 1, 143)), { then: Buffer.from('a0 LOGIN alice secret-a\r\n'), ms: 1000 });
    assert.match(far.data, /LOGINDISABLED[^]*a0 NO \[PRIVACYREQUIRED\]/);
    await until(() => ts.server.sessions!().length === 0);
    const s = net.connect({ port: ts.port, host: '127.0.0.1' });
    let got = '';
    s.on('data', (d) => (got += d.toString()));
    await new Promise((r) => s.once('connect', r));
    await new Promise((r) => setTimeout(r, 50));
    s.write(Buffer.concat([v2(1, 0x11, inet4('203.0.113.7', '198.51.100.1', 51000, 143)), Buffer.from('a1 STARTTLS\r\n')]));
    await until(() => /a1 OK/.test(got));
    const t = tls.connect({ socket: s, rejectUnauthorized: false, servername: 'localhost' });
    await new Promise((r) => t.once('secureConnect', r));
    let tgot = '';
    t.on('data', (d) => (tgot += d.toString()));
    t.write('a2 LOGIN alice secret-a\r\n');
    await until(() => /a2 OK/.test(tgot));
    const who = ts.server.sessions!();
    assert.equal(who.length, 1);
    assert.equal(who[0]!.remote, '203.0.113.7');
    assert.equal(who[0]!.user, 'alice');
    assert.ok(rec.lines.some((l) => l.includes('connection opened') && l.includes('"remote":"203.0.113.7"') && l.includes('"remotePort":51000')), rec.lines.join('\n'));
    assert.ok(rec.lines.some((l) => l.includes('auth succeeded') && l.includes('"remote":"203.0.113.7"')));
    t.destroy();
  } finally {
    await ts.stop();
  }
});

test('IMAP: untrusted peers, missing, malformed, oversized and slow headers are closed without a greeting', async () => {
  const rec = recorder();
  const ts = await startTestServer({ tweak: (o) => ((o.log = rec.log), (o.proxyProtocol = { imap: trusted(['127.0.0.2/32'], 300), imaps: trusted(['10.0.0.0/8']) })) });
  try {
    const good = v2(1, 0x11, inet4('203.0.113.7', '198.51.100.1', 1, 143));
    // From 127.0.0.1, not trusted: closed at once even with a well-formed header.
    let r = await exchange(ts.port, good);
    assert.deepEqual([r.closed, r.data], [true, '']);
    r = await exchange(ts.tlsPort, good, { localAddress: '127.0.0.2' });
    assert.deepEqual([r.closed, r.data], [true, '']);
    // From the trusted host: a plain IMAP client (no header), garbage, a huge v2 announcement.
    for (const first of [Buffer.from('a1 CAPABILITY\r\n'), Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n'), Buffer.concat([SIG, Buffer.from([0x21, 0x11, 0xff, 0xff])])]) {
      r = await exchange(ts.port, first, { localAddress: '127.0.0.2' });
      assert.deepEqual([r.closed, r.data], [true, ''], first.toString('latin1'));
    }
    // Half a header, then nothing: closed at the deadline (300 ms here).
    r = await exchange(ts.port, good.subarray(0, 20), { localAddress: '127.0.0.2', ms: 3000 });
    assert.deepEqual([r.closed, r.data], [true, '']);
    assert.ok(r.ms >= 250 && r.ms < 2500, `closed after ${r.ms} ms`);
    // A well-formed header from the trusted host works.
    r = await exchange(ts.port, good, { localAddress: '127.0.0.2', ms: 500 });
    assert.match(r.data, /^\* OK/);
    assert.ok(rec.lines.some((l) => l.includes('PROXY protocol: connection refused') && l.includes('untrusted source')));
    assert.ok(rec.lines.some((l) => l.includes('header timed out')));
    await until(() => ts.server.connectionCount() === 0);
  } finally {
    await ts.stop();
  }
});

test('a socket whose peer is already gone is dropped unlogged, so the next untrusted source is still logged', async () => {
  const lines: { msg: string; fields?: Record<string, unknown> }[] = [];
  const log: Logger = { debug: () => {}, info: (msg, fields) => lines.push({ msg, fields }), warn: () => {}, error: () => {} };
  const gate = proxyGate(trusted(['10.0.0.0/8']), log, 'imap')!;
  // A socket with no peer address (what a worker gets for a connection reset before it arrived).
  const gone = new net.Socket();
  assert.equal(gone.remoteAddress, undefined);
  gate.accept(gone, () => assert.fail('no peer'));
  assert.equal(gone.destroyed, true);
  assert.deepEqual(lines, [], 'nothing logged for it');
  // A real untrusted peer right after: logged with its address (the per-reason log slot is still free).
  const server = net.createServer((s) => gate.accept(s, () => assert.fail('untrusted')));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const c = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    c.on('error', () => {});
    await new Promise((r) => c.once('close', r));
    assert.equal(lines.length, 1, JSON.stringify(lines));
    assert.equal(lines[0]!.fields?.reason, 'untrusted source');
    assert.equal(lines[0]!.fields?.address, '127.0.0.1');
  } finally {
    server.close();
  }
});

test('IMAPS: v1 header and the ClientHello in one segment; the pre-auth cap counts the real address', async () => {
  const ts = await startTestServer({
    tweak: (o) => {
      o.proxyProtocol = { imap: trusted(['127.0.0.0/8']), imaps: trusted(['127.0.0.0/8']) };
      o.limits.maxPreAuthConnectionsPerAddress = 2;
    },
  });
  const open: net.Socket[] = [];
  try {
    // TLS over a socket whose first bytes are the PROXY line, written with the ClientHello in one write.
    const viaTls = (src: string) =>
      new Promise<string>((resolve, reject) => {
        const raw = net.connect({ port: ts.tlsPort, host: '127.0.0.1' }, () => {
          raw.cork();
          raw.write(`PROXY TCP4 ${src} 127.0.0.1 40000 993\r\n`);
          const t = tls.connect({ socket: raw, rejectUnauthorized: false, servername: 'localhost' });
          open.push(t);
          t.once('data', (d) => resolve(d.toString()));
          t.once('error', reject);
          process.nextTick(() => raw.uncork());
        });
        raw.on('error', reject);
      });
    assert.match(await viaTls('198.51.100.9'), /^\* OK/);
    assert.match(await viaTls('198.51.100.9'), /^\* OK/);
    // The third from the same client address is over maxPreAuthConnectionsPerAddress: closed without a word on implicit TLS.
    await assert.rejects(viaTls('198.51.100.9'));
    // Another client address through the same balancer is not.
    assert.match(await viaTls('198.51.100.10'), /^\* OK/);
    const remotes = ts.server.sessions!().map((s) => s.remote).sort();
    assert.deepEqual(remotes, ['198.51.100.10', '198.51.100.9', '198.51.100.9']);
    // Plain IMAP: the same cap, answered with BYE.
    const r = await exchange(ts.port, Buffer.from('PROXY TCP4 198.51.100.9 127.0.0.1 1 143\r\n'), { ms: 1000 });
    assert.match(r.data, /^\* BYE \[UNAVAILABLE\]/);
  } finally {
    for (const s of open) s.destroy();
    await ts.stop();
  }
});

test('POP3 and POP3S: the header source is the session address', async () => {
  const rec = recorder();
  const ts = await startPop3TestServer({ tweak: (o) => ((o.log = rec.log), (o.plaintextAuth = 'always'), (o.proxyProtocol = { pop3: trusted(['127.0.0.1']), pop3s: trusted(['127.0.0.1']) })) });
  try {
    const r = await exchange(ts.pop3Port, Buffer.from('PROXY TCP6 2001:db8::77 ::1 4000 110\r\n'), { then: Buffer.from('USER alice\r\nPASS secret-a\r\nQUIT\r\n'), ms: 3000 });
    assert.match(r.data, /^\+OK/);
    assert.ok(rec.lines.some((l) => l.includes('POP3 login') && l.includes('"remote":"2001:db8::77"')), rec.lines.join('\n'));
    // Untrusted (127.0.0.3): closed before the greeting.
    const u = await exchange(ts.pop3Port, Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n'), { localAddress: '127.0.0.3' });
    assert.deepEqual([u.closed, u.data], [true, '']);
    // POP3S: the v2 header, then TLS.
    const greeting = await new Promise<string>((resolve, reject) => {
      const raw = net.connect({ port: ts.pop3sPort, host: '127.0.0.1' }, () => {
        raw.write(v2(1, 0x11, inet4('192.0.2.44', '127.0.0.1', 5, 995)));
        const t = tls.connect({ socket: raw, rejectUnauthorized: false, servername: 'localhost' });
        t.once('data', (d) => {
          t.write('USER alice\r\nPASS secret-a\r\nQUIT\r\n');
          resolve(d.toString());
        });
        t.once('error', reject);
      });
      raw.on('error', reject);
    });
    assert.match(greeting, /^\+OK/);
    await until(() => rec.lines.some((l) => l.includes('POP3 login') && l.includes('"remote":"192.0.2.44"')));
  } finally {
    await ts.stop();
  }
});

test('LMTP: the header source is logged; untrusted peers are closed', async () => {
  const rec = recorder();
  const ts = await startTestServer();
  const { lmtp, port } = await startTestLmtp(ts.store, (o) => ((o.log = rec.log), (o.proxyProtocol = trusted(['127.0.0.1']))));
  try {
    const r = await exchange(port, Buffer.from('PROXY TCP4 192.0.2.25 127.0.0.1 25000 2424\r\nLHLO mx.example\r\n'), { ms: 1000 });
    assert.match(r.data, /^220 .*\r\n250-/);
    assert.ok(rec.lines.some((l) => l.includes('connection opened') && l.includes('"remote":"192.0.2.25"')), rec.lines.join('\n'));
    const u = await exchange(port, Buffer.from('LHLO x\r\n'), { localAddress: '127.0.0.4' });
    assert.deepEqual([u.closed, u.data], [true, '']);
  } finally {
    await lmtp.close();
    await ts.stop();
  }
});

test('off by default: a listener without a policy serves a plain client and treats a PROXY line as a command', async () => {
  const ts = await startTestServer();
  try {
    const r = await exchange(ts.port, Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n'), { ms: 700 });
    assert.match(r.data, /^\* OK[^\r]*\r\nPROXY BAD/);
    await until(() => ts.server.sessions!().length === 0);
  } finally {
    await ts.stop();
  }
});

test('brute-force delays count the client address from the header, not the balancer', async () => {
  const ts = await startTestServer({ tweak: (o) => ((o.plaintextAuth = 'always'), (o.proxyProtocol = { imap: trusted(['127.0.0.1/32']) })) });
  try {
    const fresh = ts.auth.pendingDelayMs('someone-else', '198.51.100.77');
    const r = await exchange(ts.port, Buffer.from('PROXY TCP4 198.51.100.77 127.0.0.1 1 143\r\n'), { then: Buffer.from('a1 LOGIN nobody-x wrong\r\na2 LOGIN nobody-y wrong\r\n'), until: /a2 NO/, ms: 30_000 });
    assert.match(r.data, /a2 NO/);
    assert.ok(ts.auth.pendingDelayMs('someone-else', '198.51.100.77') > fresh, 'the client address was counted');
    assert.equal(ts.auth.pendingDelayMs('someone-else', '127.0.0.1'), fresh, 'the balancer address was not');
  } finally {
    await ts.stop();
  }
});

test('closing the server closes connections still waiting for their header', async () => {
  const ts = await startTestServer({ tweak: (o) => (o.proxyProtocol = { imap: trusted(['127.0.0.1/32'], 30_000) }) });
  const s = net.connect({ port: ts.port, host: '127.0.0.1' });
  await new Promise((r) => s.once('connect', r));
  s.write(Buffer.from('PROXY TCP4 1.2.3.4'));
  s.on('error', () => {});
  const closed = new Promise((r) => s.once('close', r));
  await new Promise((r) => setTimeout(r, 100));
  const t0 = Date.now();
  const stopping = ts.stop();
  await closed;
  const ms = Date.now() - t0;
  await stopping;
  assert.ok(ms < 5000, `closed after ${ms} ms, not at the 30 s header deadline`);
});

test('configuration: --proxy-protocol-from and proxyProtocol.listeners', () => {
  const c = loadConfig({ env: {}, flags: { data: '/tmp/none', proxyProtocolFrom: '10.0.0.0/8, 192.0.2.1' } });
  assert.deepEqual(c.proxyProtocol.from, ['10.0.0.0/8', '192.0.2.1/32']);
  const p = proxyPolicy(c);
  assert.deepEqual(Object.keys(p).sort(), ['imap', 'imaps', 'lmtp', 'pop3', 'pop3s']);
  assert.ok(p.imap!.trusted.trusts('10.9.9.9') && !p.imap!.trusted.trusts('192.0.2.2'));
  assert.equal(p.imap!.timeoutMs, 3000);
  const some = loadConfig({ env: { QUIRE_PROXY_PROTOCOL_FROM: '::1', QUIRE_PROXY_PROTOCOL_LISTENERS: 'imaps,pop3s' }, flags: { data: '/tmp/none' } });
  assert.deepEqual(Object.keys(proxyPolicy(some)).sort(), ['imaps', 'pop3s']);
  assert.deepEqual(proxyPolicy(loadConfig({ env: {}, flags: { data: '/tmp/none' } })), {});
  assert.throws(() => loadConfig({ env: {}, flags: { data: '/tmp/none', proxyProtocolFrom: '10.0.0.0/40' } }), /invalid network/);
  assert.throws(() => loadConfig({ env: { QUIRE_PROXY_PROTOCOL_LISTENERS: 'imap,smtp' }, flags: { data: '/tmp/none' } }), /unknown listener "smtp"/);
});
