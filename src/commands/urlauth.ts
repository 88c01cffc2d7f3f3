// URLAUTH (RFC 4467): GENURLAUTH, RESETKEY and URLFETCH, with the INTERNAL
// mechanism (§2.4.1: HMAC-SHA1 of the rump URL keyed by the mailbox access
// key, §5, §6); the extended URLFETCH of URLAUTH=BINARY (RFC 5524 §3:
// BODY / BINARY / BODYPARTSTRUCTURE); ;PARTIAL= in the URLs (URL-PARTIAL,
// RFC 5550 §5). Mailbox access keys live in the store (urlAuthKey /
// resetUrlAuthKeys), one per user and mailbox.
//
// Where the RFC leaves room, Dovecot's answers are followed: GENURLAUTH's
// refusals are tagged BAD (§6.3 requires it for invalid URLs), a URL that
// fails in URLFETCH answers NIL with the command still OK (§6.3). Unlike
// Dovecot the host and port of a URL are not compared with the server's
// (the token signs them, so a URL only validates as it was generated), and
// access identifiers other than RFC 4467 §9's four are refused.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { defineCommand, bad, no, type CommandContext } from './types.js';
import { ArgReader, astringBytes, isAtom, isList, normaliseInbox } from './args.js';
import { astring, literal } from '../wire/index.js';
import { parseImapUrl, urlData, UrlError, type ImapUrl, type UrlData } from './imapurl.js';
import { messageStructure } from './mime-bridge.js';
import { binaryContent, formatBodyStructure, resolvePart } from '../mime/index.js';
import type { Token } from '../wire/types.js';

/** The one mechanism (RFC 4467 §2.4.1); mechanism names are case-insensitive (§9). */
const INTERNAL = 'INTERNAL';
/** Most URLs in one GENURLAUTH or URLFETCH: each costs store lookups and, for URLFETCH, a message's bytes in the reply. */
export const MAX_URLAUTH_URLS = 100;
/** A URLFETCH answer up to this size is one write; a bigger one streams in chunks with backpressure. */
const URLFETCH_STREAM_ABOVE = 256 * 1024;

/** RFC 4467 §2.4.1 INTERNAL: HMAC-SHA1 over the rump URL exactly as written (§6: no decoding, no case-folding), in hex. */
export function internalToken(key: Buffer, rump: string): string {
  return createHmac('sha1', key).update(rump, 'latin1').digest('hex');
}

/** RFC 4467 §9 access = ("submit+" enc-user) / ("user+" enc-user) / "authuser" / "anonymous" (case-insensitive keywords). */
function accessOf(a: string): { kind: 'anonymous' | 'authuser' } | { kind: 'submit' | 'user'; user: string } | null {
  const l = a.toLowerCase();
  if (l === 'anonymous' || l === 'authuser') return { kind: l };
  for (const kind of ['submit', 'user'] as const) {
    if (l.startsWith(`${kind}+`)) {
      const enc = a.slice(kind.length + 1);
      if (enc.length === 0) return null;
      try {
        return { kind, user: decodeUser(enc) };
      } catch {
        return null;
      }
    }
  }
  return null;
}

function decodeUser(enc: string): string {
  if (!/^[A-Za-z0-9\-._~!$'()*+,&=%]+$/.test(enc)) throw new UrlError('Invalid user name');
  return decodeURIComponent(enc);
}

function parseUrlArg(t: Token | undefined, what: string): string {
  if (!t) throw bad(`Missing ${what}`);
  return astringBytes(t, what).toString('latin1');
}

// ---------------------------------------------------------------- GENURLAUTH (RFC 4467 §6.3)

export const genurlauth = defineCommand<{ pairs: { url: string; mech: string }[] }>({
  name: 'GENURLAUTH',
  states: ['auth', 'selected'],
  rfc: 'RFC 4467 §5, §6.3 GENURLAUTH, §7.4, §9; RFC 5550 §5',
  parse(args) {
    const r = new ArgReader(args);
    const pairs: { url: string; mech: string }[] = [];
    // genurlauth = "GENURLAUTH" 1*(SP url-rump SP mechanism)
    while (!r.done) {
      if (pairs.length >= MAX_URLAUTH_URLS) throw bad('Too many URLs', 'LIMIT');
      const url = parseUrlArg(r.next('URL'), 'URL');
      const mech = r.atom('mechanism');
      pairs.push({ url, mech });
    }
    if (pairs.length === 0) throw bad('Missing URL');
    return { pairs };
  },
  async run(ctx, { pairs }) {
    const me = ctx.session.user!;
    const checked: { rump: string; mailboxId: number }[] = [];
    // Every URL is checked before any key is made: one bad URL refuses the command (RFC 4467 §6.3).
    for (const { url, mech } of pairs) {
      let u: ImapUrl;
      try {
        u = parseImapUrl(url, false);
      } catch (e) {
        if (e instanceof UrlError) throw bad(`Invalid URL: ${e.message}`);
        throw e;
      }
      if (u.access === undefined || u.mech !== undefined) throw bad('Invalid URL: Must be an URLAUTH rump URL');
      if (mech.toUpperCase() !== INTERNAL) throw bad(`Unsupported URLAUTH mechanism: ${mech.slice(0, 40)}`);
      // §6.3 (2): the key table is the URL user's; only its owner may use it (no shared key tables here).
      if (u.user !== me.name) throw bad('Not permitted to generate URLAUTH for another user');
      // §6.3 (3): a valid access identifier, with a user for submit+ / user+.
      if (!accessOf(u.access)) throw bad('Invalid URL: Invalid URLAUTH access identifier');
      if (u.expire !== undefined && u.expire <= Date.now()) throw bad('URLAUTH has already expired');
      const mb = await ctx.store.getMailbox(me.id, normaliseInbox(u.mailbox!));
      if (!mb) throw bad(`Invalid URL: Mailbox does not exist`);
      if (u.uidValidity !== undefined && u.uidValidity !== mb.uidValidity) throw bad('Invalid URL: Invalid UIDVALIDITY');
      // §6.3 (4): the server MAY verify the UID; Dovecot does.
      if ((await ctx.store.getMessages(mb.id, [u.uid])).length === 0) throw bad('Invalid URL: Message not found');
      checked.push({ rump: u.rump!, mailboxId: mb.id });
    }
    const out: string[] = [];
    for (const c of checked) {
      const key = (await ctx.store.urlAuthKey(me.id, c.mailboxId, INTERNAL, true))!;
      out.push(`${c.rump}:internal:${internalToken(key, c.rump)}`);
    }
    ctx.out.untagged(['GENURLAUTH', ...out.flatMap((u) => [' ', astring(u)])]);
    return { text: 'GENURLAUTH completed' };
  },
});

// ---------------------------------------------------------------- RESETKEY (RFC 4467 §6.3)

export const resetkey = defineCommand<{ mailbox: string | null; mechs: string[] }>({
  name: 'RESETKEY',
  states: ['auth', 'selected'],
  rfc: 'RFC 4467 §6.3 RESETKEY, §7.1 URLMECH',
  parse(args, session) {
    // resetkey = "RESETKEY" [SP mailbox *(SP mechanism)]
    const r = new ArgReader(args);
    if (r.done) return { mailbox: null, mechs: [] };
    const mailbox = r.mailbox(session);
    const mechs: string[] = [];
    while (!r.done) {
      if (mechs.length >= 8) throw bad('Too many mechanisms');
      mechs.push(r.atom('mechanism'));
    }
    return { mailbox, mechs };
  },
  async run(ctx, { mailbox, mechs }) {
    const me = ctx.session.user!;
    if (mailbox === null) {
      await ctx.store.resetUrlAuthKeys(me.id, null, INTERNAL);
      return { text: 'All keys removed' };
    }
    if (mechs.some((m) => m.toUpperCase() !== INTERNAL)) throw no('Unsupported URLAUTH mechanism', 'CANNOT');
    const mb = await ctx.store.getMailbox(me.id, mailbox);
    if (!mb) throw no('Mailbox does not exist', 'NONEXISTENT');
    await ctx.store.resetUrlAuthKeys(me.id, mb.id, INTERNAL);
    // §7.1: the URLMECH code may ride on the tagged OK of RESETKEY.
    return { code: 'URLMECH INTERNAL', text: 'Key reset' };
  },
});

// ---------------------------------------------------------------- URLFETCH (RFC 4467 §6.3, RFC 5524 §3)

interface FetchRequest {
  url: string;
  /** RFC 5524 §3.1 extended form: which items; null = the RFC 4467 form (a bare nstring). */
  ext: { body: boolean; binary: boolean; structure: boolean } | null;
}

export const urlfetch = defineCommand<{ reqs: FetchRequest[] }>({
  name: 'URLFETCH',
  states: ['auth', 'selected'],
  rfc: 'RFC 4467 §6.3 URLFETCH, §7.4; RFC 5524 §3; RFC 5550 §5',
  parse(args) {
    const reqs: FetchRequest[] = [];
    for (const t of args) {
      if (reqs.length >= MAX_URLAUTH_URLS) throw bad('Too many URLs', 'LIMIT');
      if (!isList(t)) {
        reqs.push({ url: parseUrlArg(t, 'URL'), ext: null });
        continue;
      }
      // RFC 5524 §5: "(" url *(SP url-fetch-param) ")", params BODY / BINARY / BODYPARTSTRUCTURE.
      const [first, ...params] = t.items;
      const url = parseUrlArg(first, 'URL');
      const ext = { body: false, binary: false, structure: false };
      for (const p of params) {
        if (isAtom(p, 'BODY')) ext.body = true;
        else if (isAtom(p, 'BINARY')) ext.binary = true;
        else if (isAtom(p, 'BODYPARTSTRUCTURE')) ext.structure = true;
        else throw bad('Unknown URLFETCH parameter');
      }
      if (ext.body && ext.binary) throw bad('A URL cannot have both BODY and BINARY');
      if (!ext.structure && !ext.binary) ext.body = true;
      reqs.push({ url, ext });
    }
    if (reqs.length === 0) throw bad('Missing URL');
    return { reqs };
  },
  async run(ctx, { reqs }) {
    for (const req of reqs) {
      const d = await authorizedData(ctx, req.url);
      await answer(ctx, req, d);
    }
    return { text: 'URLFETCH completed' };
  },
});

interface Authorized {
  data: UrlData;
  url: ImapUrl;
}

/** RFC 4467 §6: validates a full URLAUTH URL for this session and reads what it names; null = NIL. */
async function authorizedData(ctx: CommandContext, raw: string): Promise<Authorized | null> {
  let u: ImapUrl;
  try {
    u = parseImapUrl(raw, false);
  } catch (e) {
    if (e instanceof UrlError) return null;
    throw e;
  }
  if (u.access === undefined || u.mech === undefined || u.token === undefined || u.rump === undefined) return null;
  if (u.mech.toUpperCase() !== INTERNAL) return null;
  // §3: an expired URL MUST be rejected.
  if (u.expire !== undefined && u.expire <= Date.now()) return null;
  const access = accessOf(u.access);
  if (!access) return null;
  const me = ctx.session.user!;
  // §3: user+ limits use to that authorization identity; submit+ to a submission entity (config urlauthSubmitters).
  if (access.kind === 'user' && access.user !== me.name) return null;
  if (access.kind === 'submit' && !ctx.urlauthSubmitters.includes(me.name)) return null;
  const owner = await ctx.store.getUser(u.user!);
  const mb = owner ? await ctx.store.getMailbox(owner.id, normaliseInbox(u.mailbox!)) : null;
  const key = owner && mb ? await ctx.store.urlAuthKey(owner.id, mb.id, INTERNAL, false) : null;
  // §6: with no mailbox (or no key) a token is still computed, with a random key, so timing tells nothing.
  const expected = Buffer.from(internalToken(key ?? randomBytes(32), u.rump), 'latin1');
  const given = Buffer.from(u.token.toLowerCase(), 'latin1');
  const ok = given.length === expected.length && timingSafeEqual(given, expected);
  if (!ok || !owner || !mb || !key) return null;
  // Once validated the URL has the access of its user (§6.3): that user's mailbox, as it is now.
  if (u.uidValidity !== undefined && u.uidValidity !== mb.uidValidity) return null;
  const data = await urlData(ctx.store, mb.id, u);
  if (!data) return null;
  return { data, url: u };
}

async function answer(ctx: CommandContext, req: FetchRequest, a: Authorized | null): Promise<void> {
  const head = `URLFETCH ${urlText(req.url)} `;
  if (!a) {
    ctx.out.untagged(`${head}NIL`);
    return;
  }
  // A part the message lacks: "" for the data (RFC 4467 §7.4, as Dovecot), NIL when its structure or decoded content is asked for.
  const missing = 'missing' in a.data && a.data.missing === true;
  if (missing && req.ext && (req.ext.binary || req.ext.structure)) {
    ctx.out.untagged(`${head}NIL`);
    return;
  }
  if (!req.ext) {
    await sendLiteral(ctx, head, a.data, '');
    return;
  }
  const items: string[] = [];
  if (req.ext.structure) items.push(`BODYPARTSTRUCTURE ${await partStructure(a)}`);
  if (req.ext.binary) {
    // RFC 5524 §3.1: BINARY is the content with its transfer encoding removed; ;PARTIAL= counts decoded bytes.
    const bin = await binaryOf(a);
    if (bin === null) {
      items.push('BINARY NIL');
      ctx.out.untagged(`${head}(${items.join(' ')})`);
      return;
    }
    const prefix = `${head}(${items.map((x) => `${x} `).join('')}BINARY `;
    const pieces = literal(bin, isBinary(bin));
    ctx.out.untagged([prefix, ...pieces, ')']);
    return;
  }
  await sendLiteral(ctx, `${head}(${items.map((x) => `${x} `).join('')}${req.ext.body ? 'BODY ' : ''}`, req.ext.body ? a.data : null, ')');
}

/**
 * Decoded content goes as a literal8 (RFC 3516 §4.2) when it is not text: a
 * NUL (which only literal8 may carry), another control than CR, LF and TAB,
 * or 8-bit bytes; text stays an ordinary literal (as Dovecot sends them).
 */
function isBinary(b: Buffer): boolean {
  for (const c of b) if ((c < 0x20 && c !== 0x0d && c !== 0x0a && c !== 0x09) || c >= 0x7f) return true;
  return false;
}

/** The URL as the client sent it, as an astring (RFC 4467 §9 url-full). */
function urlText(url: string): string {
  const t = astring(url);
  return typeof t === 'string' ? t : t.toString('latin1');
}

/** A literal of the named bytes; a big stored range streams with backpressure (STYLE.md habit 13). */
async function sendLiteral(ctx: CommandContext, prefix: string, d: UrlData | null, suffix: string): Promise<void> {
  if (!d) {
    ctx.out.untagged(`${prefix.trimEnd()}${suffix}`);
    return;
  }
  if ('bytes' in d) {
    ctx.out.untagged([prefix, ...literal(d.bytes), suffix]);
    return;
  }
  const size = d.end - d.start;
  if (size <= URLFETCH_STREAM_ABOVE) {
    ctx.out.untagged([prefix, ...literal(await d.body.read(d.start, d.end)), suffix]);
    return;
  }
  ctx.out.raw(`* ${prefix}{${size}}\r\n`);
  for await (const chunk of d.body.stream(d.start, d.end)) {
    ctx.out.raw(chunk);
    await ctx.out.drain();
  }
  ctx.out.raw(`${suffix}\r\n`);
}

/** RFC 5524 §3.2 BODYPARTSTRUCTURE: the BODYSTRUCTURE (extended form, as Dovecot sends it) of the part the URL names. */
async function partStructure(a: Authorized): Promise<string> {
  const body = a.data.body;
  const p = await messageStructure(body);
  const part = resolvePart(p.root, a.url.section?.path ?? []);
  return part ? formatBodyStructure(part, true) : 'NIL';
}

async function binaryOf(a: Authorized): Promise<Buffer | null> {
  const body = a.data.body;
  const p = await messageStructure(body);
  const s = a.url.section;
  let data: Buffer;
  if (!s || s.kind === '') {
    const r = binaryContent(await p.raw(), p.root, s?.path ?? []);
    if (r.kind !== 'ok') return null;
    data = r.data;
  } else {
    // HEADER, TEXT, MIME, HEADER.FIELDS carry no transfer encoding of their own: their bytes as they are.
    data = 'bytes' in a.data ? a.data.bytes : await a.data.body.read(a.data.start, a.data.end);
    return data;
  }
  const part = a.url.partial;
  if (!part) return data;
  const from = Math.min(part.offset, data.length);
  return data.subarray(from, part.length === undefined ? data.length : Math.min(data.length, from + part.length));
}

