// ENVELOPE (RFC 9051 §7.5.2) and RFC 5322 §3.4 address-list parsing.
// Values stay in raw header form (unfolded, no RFC 2047 decoding), as IMAP
// requires; quoting is removed from display names and local parts.

import { Header, decodeEncodedWords } from './header.js';
import { imapNString } from './imapstring.js';
import type { Address, Envelope, MimePart } from './types.js';

/** Placeholders for unparsable addresses (the convention Dovecot uses; a NIL host would mean "group"). */
export const MISSING_MAILBOX = 'MISSING_MAILBOX';
export const MISSING_DOMAIN = 'MISSING_DOMAIN';

type Tok =
  | { t: 'word'; v: string; quoted: boolean; sp: boolean; comment?: string }
  | { t: 'sp'; v: string; sp: boolean; comment?: string };

/** Tokenises an address header: words (atoms, quoted strings, domain literals) and specials. */
function tokenize(s: string): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  let sp = false;
  const n = s.length;
  while (i < n) {
    const ch = s[i]!;
    if (ch === ' ' || ch === '\t' || ch === '\r' || ch === '\n') {
      sp = true;
      i++;
    } else if (ch === '(') {
      let depth = 1;
      let text = '';
      i++;
      while (i < n && depth > 0) {
        const c = s[i]!;
        if (c === '\\' && i + 1 < n) {
          text += s[i + 1];
          i += 2;
          continue;
        }
        if (c === '(') depth++;
        else if (c === ')') {
          depth--;
          if (depth === 0) {
            i++;
            break;
          }
        }
        text += c;
        i++;
      }
      const last = toks[toks.length - 1];
      text = text.trim().replace(/\s+/g, ' ');
      if (last && last.comment === undefined && text.length > 0) last.comment = text;
      else if (!last && text.length > 0) toks.push({ t: 'sp', v: '', sp, comment: text });
      sp = true;
    } else if (ch === '"') {
      let v = '';
      i++;
      while (i < n && s[i] !== '"') {
        if (s[i] === '\\' && i + 1 < n) i++;
        v += s[i++];
      }
      i++;
      toks.push({ t: 'word', v, quoted: true, sp });
      sp = false;
    } else if (ch === '[') {
      let v = '[';
      i++;
      while (i < n && s[i] !== ']') {
        if (s[i] === '\\' && i + 1 < n) i++;
        v += s[i++];
      }
      v += ']';
      i++;
      toks.push({ t: 'word', v, quoted: false, sp });
      sp = false;
    } else if ('<>@,;:.'.includes(ch)) {
      toks.push({ t: 'sp', v: ch, sp });
      sp = false;
      i++;
    } else {
      let v = '';
      while (i < n && !' \t\r\n()"[<>@,;:.'.includes(s[i]!)) v += s[i++];
      if (v.length === 0) {
        // a lone "]" or similar stray special: skip it
        i++;
        continue;
      }
      toks.push({ t: 'word', v, quoted: false, sp });
      sp = false;
    }
  }
  return toks.filter((t) => !(t.t === 'sp' && t.v === ''));
}

/** Joins phrase tokens, keeping a single space where the source had whitespace. */
function phrase(toks: Tok[]): string {
  let out = '';
  for (const t of toks) {
    if (out.length > 0 && t.sp) out += ' ';
    out += t.v;
  }
  return out;
}

function isWordOrDot(t: Tok | undefined): boolean {
  return t !== undefined && (t.t === 'word' || t.v === '.');
}

function firstComment(toks: Tok[], from: number, to: number): string | null {
  for (let k = from; k < to && k < toks.length; k++) {
    const c = toks[k]!.comment;
    if (c) return c;
  }
  return null;
}

/** Parses an RFC 5322 address-list (with groups) leniently; null when it yields nothing. */
export function parseAddressList(value: string): Address[] | null {
  const toks = tokenize(value);
  const out: Address[] = [];
  let inGroup = false;
  let i = 0;
  const n = toks.length;
  const isSp = (k: number, v: string) => toks[k]?.t === 'sp' && toks[k]!.v === v;
  while (i < n) {
    if (isSp(i, ',')) {
      i++;
      continue;
    }
    if (isSp(i, ';')) {
      if (inGroup) {
        out.push({ name: null, adl: null, mailbox: null, host: null });
        inGroup = false;
      }
      i++;
      continue;
    }
    const start = i;
    while (isWordOrDot(toks[i])) i++;
    const words = toks.slice(start, i);
    if (isSp(i, ':') && !inGroup) {
      // group: display-name ":" [group-list] ";" (RFC 5322 §3.4)
      out.push({ name: null, adl: null, mailbox: phrase(words), host: null });
      inGroup = true;
      i++;
      continue;
    }
    if (isSp(i, '<')) {
      i++;
      let adl: string | null = null;
      if (isSp(i, '@')) {
        // obs-route: 1*("@" domain [","]) ":"
        const r = i;
        while (i < n && !isSp(i, ':') && !isSp(i, '>')) i++;
        if (isSp(i, ':')) {
          adl = toks
            .slice(r, i)
            .map((t) => t.v)
            .join('');
          i++;
        } else i = r;
      }
      const ls = i;
      while (i < n && !isSp(i, '@') && !isSp(i, '>') && !isSp(i, ',') && !isSp(i, ';')) i++;
      const local = toks
        .slice(ls, i)
        .map((t) => t.v)
        .join('');
      let host = '';
      if (isSp(i, '@')) {
        i++;
        const hs = i;
        while (i < n && !isSp(i, '>') && !isSp(i, ',') && !isSp(i, ';')) i++;
        host = toks
          .slice(hs, i)
          .map((t) => t.v)
          .join('');
      }
      // Comments inside <...> are not a name (Dovecot: <user (c)@ (c) domain> has NIL);
      // one after ">" is, when there is no phrase (a comment attaches to the token before it).
      const gt = i;
      if (isSp(i, '>')) i++;
      const name = words.length > 0 ? phrase(words) : null;
      // skip junk up to the next separator
      while (i < n && !isSp(i, ',') && !isSp(i, ';')) i++;
      out.push({
        name: name ?? firstComment(toks, isSp(gt, '>') ? gt : i, i),
        adl,
        mailbox: local || MISSING_MAILBOX,
        host: host || MISSING_DOMAIN,
      });
      continue;
    }
    // addr-spec without angle brackets, or a bare word
    let local = words.map((t) => t.v).join('');
    let host = '';
    if (isSp(i, '@')) {
      i++;
      const hs = i;
      while (i < n && !isSp(i, ',') && !isSp(i, ';') && !isSp(i, '<') && !isSp(i, ':')) i++;
      host = toks
        .slice(hs, i)
        .map((t) => t.v)
        .join('');
    }
    // skip junk up to the next separator
    const specEnd = i;
    while (i < n && !isSp(i, ',') && !isSp(i, ';')) i++;
    if (i === start) {
      i++; // a stray special: skip it so we always progress
      continue;
    }
    if (local.length === 0 && host.length === 0) continue;
    if (local.length === 0) local = MISSING_MAILBOX;
    // The name of a bare addr-spec is a comment after it ("mary@x.test (Mary)", RFC 5322
    // §4.4 obs use), not one inside it ("pete(his account)@silly.test").
    out.push({ name: firstComment(toks, Math.max(start, specEnd - 1), i), adl: null, mailbox: local, host: host || MISSING_DOMAIN });
  }
  if (inGroup) out.push({ name: null, adl: null, mailbox: null, host: null });
  return out.length > 0 ? out : null;
}

/** Builds the ENVELOPE of a message from its header. */
export function buildEnvelope(header: Header): Envelope {
  const addr = (name: string): Address[] | null => {
    const v = header.get(name);
    return v === null ? null : parseAddressList(v);
  };
  const from = addr('from');
  return {
    date: header.get('date'),
    subject: header.get('subject'),
    from,
    sender: addr('sender') ?? from,
    replyTo: addr('reply-to') ?? from,
    to: addr('to'),
    cc: addr('cc'),
    bcc: addr('bcc'),
    inReplyTo: header.get('in-reply-to'),
    messageId: header.get('message-id'),
  };
}

/** The ENVELOPE of a message-level part (root or embedded message), computed by parseMessage. */
export function envelopeOf(part: MimePart): Envelope {
  return part.envelope ?? EMPTY_ENVELOPE;
}

export const EMPTY_ENVELOPE: Envelope = Object.freeze({
  date: null,
  subject: null,
  from: null,
  sender: null,
  replyTo: null,
  to: null,
  cc: null,
  bcc: null,
  inReplyTo: null,
  messageId: null,
});

function formatAddresses(list: Address[] | null): string {
  if (!list || list.length === 0) return 'NIL';
  return (
    '(' +
    list
      .map((a) => `(${imapNString(a.name)} ${imapNString(a.adl)} ${imapNString(a.mailbox)} ${imapNString(a.host)})`)
      .join('') +
    ')'
  );
}

/** The ENVELOPE value as sent on the wire: `(date subject from ... message-id)`. */
export function formatEnvelope(env: Envelope): string {
  return (
    '(' +
    [
      imapNString(env.date),
      imapNString(env.subject),
      formatAddresses(env.from),
      formatAddresses(env.sender),
      formatAddresses(env.replyTo),
      formatAddresses(env.to),
      formatAddresses(env.cc),
      formatAddresses(env.bcc),
      imapNString(env.inReplyTo),
      imapNString(env.messageId),
    ].join(' ') +
    ')'
  );
}

/** RFC 5322 atext plus non-ASCII: a display name made only of these (and no space) is written unquoted. */
function isAtext(c: string): boolean {
  return /[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]/.test(c) || c.charCodeAt(0) > 0x7f;
}

/**
 * What SEARCH FROM/TO/CC/BCC match (RFC 9051 §6.4.4 leaves the form to the
 * server): the parsed address list written canonically, as Dovecot searches
 * it — `"Display Name" <local@domain>` or `local@domain`, names RFC 2047-
 * decoded and quoted when they are not a single atom, groups as
 * `group: a@b, c@d;`, comments left out — so "FROM user@domain.org" finds
 * `<user (comment)@ (comment) domain.org>` and "FROM comment" does not.
 * Not lower-cased. An unparseable value is searched as it is.
 */
export function addressSearchText(value: string): string {
  const list = parseAddressList(value);
  if (!list) return decodeEncodedWords(value);
  let out = '';
  let sep = '';
  let inGroup = false;
  for (const a of list) {
    if (a.host === null) {
      if (a.mailbox !== null) {
        out += `${sep}${decodeEncodedWords(a.mailbox)}:`;
        sep = ' ';
        inGroup = true;
      } else {
        out += ';';
        sep = ', ';
        inGroup = false;
      }
      continue;
    }
    const spec = a.host === MISSING_DOMAIN ? (a.mailbox ?? '') : `${a.mailbox === MISSING_MAILBOX ? '' : a.mailbox}@${a.host}`;
    let item = inGroup ? `<${spec}>` : spec; // Dovecot brackets group members: "group: <a@b>, <c@d>;"
    if (a.name) {
      const name = decodeEncodedWords(a.name);
      const quoted = [...name].every(isAtext) ? name : `"${name.replace(/[\\"]/g, '\\$&')}"`;
      item = `${quoted} <${spec}>`;
    }
    out += sep + item;
    sep = ', ';
  }
  return out;
}
