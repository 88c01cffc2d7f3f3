// The source side of `quire import imap`, on imapflow (a maintained client
// that copes with real servers' quirks: Gmail, Microsoft 365, Yahoo, old
// Dovecot/Courier/Exchange). Only what the importer needs: LIST, EXAMINE,
// the UIDs and sizes from a UID on, and whole messages with flags and
// INTERNALDATE. Authentication by password (LOGIN / AUTHENTICATE PLAIN as
// the server offers) or by an OAuth 2.0 access token (RFC 7628 OAUTHBEARER,
// else Google's/Microsoft's XOAUTH2, as the server advertises).

import { ImapFlow, type ImapFlowOptions } from 'imapflow';
import type { ListEntry } from './imap-client.js';
import { parseDateTime } from '../wire/index.js';

/** Time allowed to connect and for each command's answer. */
export const SOURCE_TIMEOUT_MS = 120_000;

export interface SourceOptions {
  host: string;
  port: number;
  security: 'tls' | 'starttls' | 'plain';
  /** Do not verify the server's certificate (self-signed sources). */
  insecure?: boolean;
  /** PEM CA certificate(s) to verify the server against (a private CA, a self-signed source). */
  ca?: string;
  user: string;
  /** A password, or an OAuth 2.0 access token (XOAUTH2/OAUTHBEARER). */
  password?: string;
  accessToken?: string;
}

export interface SourceMessage {
  uid: number;
  flags: string[];
  /** INTERNALDATE, ms since the epoch. */
  internalDate: number | null;
  /** INTERNALDATE's zone as the source wrote it, minutes east of UTC (RFC 9051 §2.3.3), when known. */
  internalTz: number | null;
  body: Buffer | null;
}

/** The folder as the importer sees it after EXAMINE. */
export interface SourceFolder {
  uidValidity: number;
  uidNext: number | null;
  exists: number;
}

export interface ImportSource {
  list(): Promise<ListEntry[]>;
  examine(raw: string): Promise<SourceFolder>;
  /** UIDs at or above `from`, with RFC822.SIZE, ascending. */
  listFrom(from: number): Promise<{ uid: number; size: number }[]>;
  fetchMessages(uids: number[]): Promise<SourceMessage[]>;
  logout(): Promise<void>;
  destroy(): void;
}

/** A UID set, ranges compressed (1:5,7,9:12). */
function uidSet(uids: number[]): string {
  const s = [...uids].sort((a, b) => a - b);
  const out: string[] = [];
  for (let i = 0; i < s.length; ) {
    let j = i;
    while (j + 1 < s.length && s[j + 1] === s[j]! + 1) j++;
    out.push(i === j ? `${s[i]}` : `${s[i]}:${s[j]}`);
    i = j + 1;
  }
  return out.join(',');
}

/** The shape of imapflow's internal ImapFlow#exec, as internalDates uses it. */
type FlowExec = (
  command: string,
  attributes: unknown[],
  options: { untagged: Record<string, (u: { attributes?: { value?: unknown }[] }) => Promise<void>> },
) => Promise<{ next?: () => void } | undefined>;

class FlowSource implements ImportSource {
  constructor(private readonly c: ImapFlow) {}

  async list(): Promise<ListEntry[]> {
    const boxes = await this.c.list();
    return boxes.map((b) => ({
      raw: b.path,
      name: b.path,
      delimiter: b.delimiter || null,
      attributes: [...b.flags, ...(b.specialUse ? [b.specialUse] : [])],
    }));
  }

  async examine(raw: string): Promise<SourceFolder> {
    const m = await this.c.mailboxOpen(raw, { readOnly: true });
    return { uidValidity: Number(m.uidValidity), uidNext: m.uidNext ?? null, exists: m.exists };
  }

  async listFrom(from: number): Promise<{ uid: number; size: number }[]> {
    const out: { uid: number; size: number }[] = [];
    // `from:*` also names the highest UID when it is below `from` (RFC 9051 §6.4.8): filter.
    for await (const m of this.c.fetch(`${from}:*`, { uid: true, size: true }, { uid: true })) {
      if (m.uid >= from) out.push({ uid: m.uid, size: m.size ?? 0 });
    }
    return out.sort((a, b) => a.uid - b.uid);
  }

  async fetchMessages(uids: number[]): Promise<SourceMessage[]> {
    if (uids.length === 0) return [];
    const out: SourceMessage[] = [];
    for await (const m of this.c.fetch(uidSet(uids), { uid: true, flags: true, internalDate: true, source: true }, { uid: true })) {
      const d = m.internalDate instanceof Date ? m.internalDate.getTime() : typeof m.internalDate === 'string' ? Date.parse(m.internalDate) : NaN;
      out.push({ uid: m.uid, flags: m.flags ? [...m.flags] : [], internalDate: Number.isFinite(d) ? d : null, internalTz: null, body: m.source ?? null });
    }
    // imapflow hands INTERNALDATE over as a Date, which has no zone: read the strings themselves.
    const raw = await this.internalDates(uids);
    for (const m of out) {
      const dt = raw.get(m.uid);
      if (!dt) continue;
      if (m.internalDate === null) m.internalDate = dt.ms;
      if (dt.ms === m.internalDate) m.internalTz = dt.tzOffsetMinutes;
    }
    return out;
  }

  /**
   * INTERNALDATE of `uids` as the server wrote it (RFC 9051 §2.3.3 date-time,
   * with its zone), by UID. One extra UID FETCH (UID INTERNALDATE) per batch,
   * sent through imapflow's command runner (ImapFlow#exec, internal to
   * imapflow but the only way to see the string; its untagged handler here
   * gets imapflow's parsed attribute list). Empty when that is unavailable or
   * the server refuses: the importer then stores the server's local zone.
   */
  private async internalDates(uids: number[]): Promise<Map<number, { ms: number; tzOffsetMinutes: number }>> {
    const out = new Map<number, { ms: number; tzOffsetMinutes: number }>();
    const exec = (this.c as unknown as { exec?: FlowExec }).exec;
    if (typeof exec !== 'function') return out;
    const onFetch = async (u: { attributes?: { value?: unknown }[] }) => {
      const list = u.attributes?.[1]?.value ?? u.attributes?.[1];
      if (!Array.isArray(list)) return;
      let uid = 0;
      let date: string | null = null;
      for (let i = 0; i + 1 < list.length; i += 2) {
        const key = String((list[i] as { value?: unknown }).value ?? '').toUpperCase();
        const v = (list[i + 1] as { value?: unknown }).value;
        const text = Buffer.isBuffer(v) ? v.toString('latin1') : typeof v === 'string' ? v : '';
        if (key === 'UID') uid = Number(text);
        else if (key === 'INTERNALDATE') date = text;
      }
      const dt = date ? parseDateTime(date) : null;
      if (uid > 0 && dt) out.set(uid, { ms: dt.ms, tzOffsetMinutes: dt.tzOffsetMinutes });
    };
    try {
      const res = await exec.call(
        this.c,
        'UID FETCH',
        [{ type: 'SEQUENCE', value: uidSet(uids) }, [{ type: 'ATOM', value: 'UID' }, { type: 'ATOM', value: 'INTERNALDATE' }]],
        { untagged: { FETCH: onFetch } },
      );
      res?.next?.();
    } catch {
      // A server that answers NO/BAD here still gets its messages imported, in the local zone.
    }
    return out;
  }

  async logout(): Promise<void> {
    await this.c.logout();
  }

  destroy(): void {
    this.c.close();
  }
}

/** Connects and authenticates; errors name the server and the reason. */
export async function connectSource(o: SourceOptions): Promise<ImportSource> {
  const opts: ImapFlowOptions = {
    host: o.host,
    port: o.port,
    secure: o.security === 'tls',
    // STARTTLS is required (never silently skipped) unless the admin chose --plain.
    doSTARTTLS: o.security === 'starttls' ? true : o.security === 'plain' ? false : undefined,
    auth: o.accessToken !== undefined ? { user: o.user, accessToken: o.accessToken } : { user: o.user, pass: o.password ?? '' },
    tls: { rejectUnauthorized: !o.insecure, ...(o.ca ? { ca: o.ca } : {}) },
    logger: false,
    connectionTimeout: SOURCE_TIMEOUT_MS,
    greetingTimeout: SOURCE_TIMEOUT_MS,
    socketTimeout: SOURCE_TIMEOUT_MS,
    disableAutoIdle: true,
  };
  const c = new ImapFlow(opts);
  c.on('error', () => {}); // surfaced by the pending command instead
  try {
    await c.connect();
  } catch (err) {
    c.close();
    const e = err as Error & { authenticationFailed?: boolean; responseText?: string; code?: string };
    if (e.authenticationFailed) throw new Error(`${o.host}: authentication failed for ${o.user}${e.responseText ? `: ${e.responseText}` : ''}`);
    throw new Error(`cannot connect to ${o.host}:${o.port}: ${e.message}${e.code ? ` (${e.code})` : ''}`);
  }
  return new FlowSource(c);
}
