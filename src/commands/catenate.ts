// CATENATE (RFC 4469): APPEND's message built from TEXT literals and URL
// parts (RFC 4469 §3, §5), with MULTIAPPEND (RFC 3502) and REPLACE (RFC 8508
// §5 append-message). URLs are the relative forms of RFC 4469 §3 naming the
// session's own mailboxes (RFC 5092 §3, ;PARTIAL= of RFC 5550 §5); anything
// else answers NO [BADURL <url>] (§4.1). The message is assembled once, into
// a buffer of its final size computed before any part is read, so a message
// is never held twice; over the size limit the answer is NO [TOOBIG] (§4.2)
// before anything is read.
import { bad, no, type CommandContext } from './types.js';
import { isAtom, normaliseInbox } from './args.js';
import type { Token } from '../wire/types.js';
import type { AppendInput } from '../store/types.js';
import { parseImapUrl, urlData, urlDataSize, copyUrlData, UrlError, MAX_URL_LENGTH, type UrlData } from './imapurl.js';

/** Most parts (TEXT and URL together) in one APPEND command: each URL costs a message lookup. */
export const MAX_CATENATE_PARTS = 1000;
/**
 * Bytes of all messages one APPEND assembles from CATENATE parts: MULTIAPPEND
 * is all or nothing (RFC 3502), so every message of the command is in memory
 * until the store has them. Each message is also held to the APPENDLIMIT.
 */
export const MAX_CATENATE_COMMAND_BYTES = 128 * 1024 * 1024;

export type CatPart = { text: Buffer } | { url: string };

/** One message of APPEND: given whole (`data`) or, with CATENATE, as parts assembled at run time. */
export interface AppendItem extends AppendInput {
  catenate?: CatPart[];
}

/**
 * RFC 4469 §5: "CATENATE" SP "(" cat-part *(SP cat-part) ")", cat-part =
 * "TEXT" SP literal / "URL" SP astring. The TEXT literal may be a literal8
 * (RFC 3516 §4.4). `partsSoFar` counts the command's earlier parts.
 */
export function parseCatenate(t: Token | undefined, partsSoFar: number): CatPart[] {
  if (!t || t.kind !== 'list') throw bad('CATENATE needs a parenthesized list');
  if (t.items.length === 0) throw bad('Empty CATENATE list');
  const parts: CatPart[] = [];
  const items = t.items;
  for (let i = 0; i < items.length; i += 2) {
    const kw = items[i];
    const v = items[i + 1];
    if (partsSoFar + parts.length >= MAX_CATENATE_PARTS) throw bad('Too many CATENATE parts', 'LIMIT');
    if (isAtom(kw, 'TEXT')) {
      if (!v || v.kind !== 'string' || !v.literal) throw bad('CATENATE TEXT must be a literal');
      parts.push({ text: v.bytes });
    } else if (isAtom(kw, 'URL')) {
      if (!v || (v.kind !== 'string' && !(v.kind === 'atom' && !v.section))) throw bad('CATENATE URL must be a string');
      const url = v.kind === 'string' ? v.bytes.toString('latin1') : v.value;
      parts.push({ url });
    } else throw bad('Invalid CATENATE part');
  }
  return parts;
}

/** A URL as the BADURL response code can carry it (RFC 4469 §5 url-resp-text: no "]", no CTL). */
export function badUrlText(url: string): string {
  let out = '';
  for (const b of Buffer.from(url.slice(0, MAX_URL_LENGTH), 'latin1')) {
    out += b > 0x20 && b < 0x7f && b !== 0x5d ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

function badUrl(url: string, why: string) {
  return no(why.slice(0, 200), `BADURL ${badUrlText(url)}`);
}

/** What one URL part of the session's own store names (RFC 4469 §3); NO [BADURL] when it names nothing. */
async function resolvePart(ctx: CommandContext, url: string): Promise<UrlData> {
  let u;
  try {
    u = parseImapUrl(url, true);
  } catch (e) {
    if (e instanceof UrlError) throw badUrl(url, `Invalid IMAP URL: ${e.message}`);
    throw e;
  }
  // RFC 4467 §3 authorizations belong to URLFETCH; a CATENATE URL is the session's own (Dovecot refuses them too).
  if (u.access !== undefined || u.expire !== undefined) throw badUrl(url, 'Invalid IMAP URL: ;URLAUTH= is not allowed in this context');
  let mailboxId: number;
  let uidValidity: number;
  if (u.mailbox === undefined) {
    // ";UID=..." is relative to the selected mailbox (RFC 4469 §3 base imap://user@server/mailbox).
    const view = ctx.session.selected;
    if (!view) throw badUrl(url, 'No mailbox selected for a relative URL');
    mailboxId = view.mailboxId;
    uidValidity = view.uidValidity;
  } else {
    const mb = await ctx.store.getMailbox(ctx.session.user!.id, normaliseInbox(u.mailbox));
    if (!mb) throw badUrl(url, 'Mailbox does not exist');
    mailboxId = mb.id;
    uidValidity = mb.uidValidity;
  }
  if (u.uidValidity !== undefined && u.uidValidity !== uidValidity) throw badUrl(url, 'Invalid UIDVALIDITY');
  const d = await urlData(ctx.store, mailboxId, u);
  if (!d) throw badUrl(url, 'Message not found');
  // A part the message does not have is empty, as FETCH answers it (RFC 9051 §6.4.5; Dovecot catenates nothing too).
  return d;
}

/**
 * Turns the CATENATE items of an APPEND (or REPLACE) into ordinary ones, in
 * order; parts are resolved for every message before any byte is copied, so a
 * BADURL or TOOBIG anywhere appends nothing (RFC 3502 §6.3.11: all or none).
 */
export async function assembleCatenated(ctx: CommandContext, items: AppendItem[]): Promise<AppendInput[]> {
  if (!items.some((it) => it.catenate)) return items;
  const plans: ({ pieces: (Buffer | UrlData)[]; size: number } | null)[] = [];
  let total = 0;
  for (const it of items) {
    if (!it.catenate) {
      plans.push(null);
      continue;
    }
    const pieces: (Buffer | UrlData)[] = [];
    let size = 0;
    for (const p of it.catenate) {
      const piece = 'text' in p ? p.text : await resolvePart(ctx, p.url);
      size += Buffer.isBuffer(piece) ? piece.length : urlDataSize(piece);
      // RFC 4469 §4.2: the result over the server's message size limit is TOOBIG, found before reading any part.
      if (size > ctx.limits.maxMessageSize) throw no('Catenated message too big', 'TOOBIG');
      pieces.push(piece);
    }
    total += size;
    if (total > MAX_CATENATE_COMMAND_BYTES) throw no('Catenated messages too big for one command', 'TOOBIG');
    plans.push({ pieces, size });
  }
  const out: AppendInput[] = [];
  for (let i = 0; i < items.length; i++) {
    const it = items[i]!;
    const plan = plans[i];
    const { catenate: _drop, ...rest } = it;
    if (!plan) {
      out.push(rest);
      continue;
    }
    const data = Buffer.allocUnsafe(plan.size);
    let at = 0;
    for (const piece of plan.pieces) at += Buffer.isBuffer(piece) ? piece.copy(data, at) : await copyUrlData(piece, data, at);
    out.push({ ...rest, data: data.subarray(0, at) });
  }
  return out;
}
