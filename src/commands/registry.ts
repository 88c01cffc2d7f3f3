// The command registry and the capability list (RFC 9051 §7.2.2). A
// capability is advertised only when the code implementing it is registered.

import type { CommandSpec } from './types.js';
import capability from './capability.js';
import { noop, check } from './noop.js';
import logout from './logout.js';
import id from './id.js';
import enable from './enable.js';
import starttls from './starttls.js';
import login from './login.js';
import authenticate from './authenticate.js';
import { select, examine } from './select.js';
import { create, del, rename, subscribe, unsubscribe, namespace } from './mailboxes.js';
import { list, lsub } from './list.js';
import { status } from './status.js';
import { close, unselect, expunge, uidExpunge } from './close.js';
import append from './append.js';
import { fetch, uidFetch } from './fetch.js';
import { store, uidStore } from './store.js';
import { copy, uidCopy, move, uidMove } from './copy.js';
import { search, uidSearch } from './search.js';
import idle from './idle.js';
import { getquota, getquotaroot, setquota } from './quota.js';
import { replace, uidReplace } from './replace.js';
// Webmail views (issue 14): SORT, THREAD.
import { sort, uidSort } from './sort.js';
import { thread, uidThread } from './thread.js';
import { cancelUpdate } from './context.js';
import { esearch } from './esearch.js';
import { getmetadata, setmetadata } from './metadata.js';
import compress from './compress.js';
import { notify } from './notify.js';
import { genurlauth, resetkey, urlfetch } from './urlauth.js';

const ALL: CommandSpec<any>[] = [
  capability, noop, check, logout, id, enable, starttls, login, authenticate,
  select, examine, create, del, rename, subscribe, unsubscribe, namespace,
  list, lsub, status, close, unselect, expunge, uidExpunge, append,
  fetch, uidFetch, store, uidStore, copy, uidCopy, move, uidMove, search, uidSearch, idle,
  getquota, getquotaroot, setquota,
  replace, uidReplace, // RFC 8508
  // Webmail views (issue 14)
  sort, uidSort, thread, uidThread, cancelUpdate, esearch,
  getmetadata, setmetadata, // RFC 5464
  compress, // RFC 4978
  notify, // RFC 5465
  genurlauth, resetkey, urlfetch, // RFC 4467, RFC 5524
];

export const COMMANDS = new Map<string, CommandSpec<any>>(ALL.map((c) => [c.name, c]));

export interface CapabilityContext {
  authenticated: boolean;
  /** TLS is already active. */
  secure: boolean;
  /** STARTTLS can be offered. */
  tlsAvailable: boolean;
  /** LOGIN / AUTHENTICATE allowed now. */
  plaintextAllowed: boolean;
  maxMessageSize: number;
  /** SASL mechanisms offered now (src/auth/mechanisms.ts mechanismsFor), advertised as AUTH=<name>. */
  mechanisms: readonly string[];
  /** COMPRESS=DEFLATE is already active (RFC 4978: then it is no longer offered). */
  compressed?: boolean;
}

/** The capability list for a connection in its current state. */
export function capabilities(c: CapabilityContext): string[] {
  const caps = ['IMAP4rev1', 'IMAP4rev2', 'LITERAL+', 'SASL-IR'];
  if (COMMANDS.has('ID')) caps.push('ID');
  if (COMMANDS.has('ENABLE')) caps.push('ENABLE');
  if (COMMANDS.has('IDLE')) caps.push('IDLE');
  if (!c.authenticated) {
    if (COMMANDS.has('STARTTLS') && c.tlsAvailable && !c.secure) caps.push('STARTTLS');
    if (c.plaintextAllowed) for (const m of c.mechanisms) caps.push(`AUTH=${m}`);
    else caps.push('LOGINDISABLED');
    return caps;
  }
  caps.push(
    'NAMESPACE', // RFC 2342
    'UNSELECT', // RFC 3691
    'UIDPLUS', // RFC 4315
    'MOVE', // RFC 6851
    'CHILDREN', // RFC 3348
    'LIST-EXTENDED', // RFC 5258
    'LIST-STATUS', // RFC 5819
    'SPECIAL-USE', // RFC 6154
    'CREATE-SPECIAL-USE', // RFC 6154 §3
    'STATUS=SIZE', // RFC 8438
    'MULTIAPPEND', // RFC 3502
    'CATENATE', // RFC 4469 (src/commands/catenate.ts, through APPEND)
    'ESEARCH', // RFC 4731
    'SEARCHRES', // RFC 5182
    'BINARY', // RFC 3516: FETCH BINARY[...] and APPEND literal8
    'UTF8=ACCEPT', // RFC 6855 §3 (ENABLE), §4 (APPEND UTF8); RFC 6857 downgrade for the others
    'PREVIEW', // RFC 8970
    'CONDSTORE', // RFC 7162 §3.1
    'QRESYNC', // RFC 7162 §3.2
    `APPENDLIMIT=${c.maxMessageSize}`, // RFC 7889
  );
  // RFC 9208: per-user storage and message-count limits; SETQUOTA (QUOTASET) answers NOPERM to non-admins.
  if (COMMANDS.has('GETQUOTA')) caps.push('QUOTA', 'QUOTA=RES-STORAGE', 'QUOTA=RES-MESSAGE');
  if (COMMANDS.has('SETQUOTA')) caps.push('QUOTASET');
  if (COMMANDS.has('REPLACE')) caps.push('REPLACE'); // RFC 8508 §3.1
  // Webmail views (issue 14): RFC 5256 SORT/THREAD, RFC 5957 SORT=DISPLAY, RFC 5267 §3 ESORT.
  if (COMMANDS.has('SORT')) caps.push('SORT', 'SORT=DISPLAY', 'ESORT');
  if (COMMANDS.has('THREAD')) caps.push('THREAD=ORDEREDSUBJECT', 'THREAD=REFERENCES', 'THREAD=REFS');
  // RFC 5267 §4: RETURN (UPDATE CONTEXT PARTIAL), ADDTO / REMOVEFROM, CANCELUPDATE.
  if (COMMANDS.has('CANCELUPDATE')) caps.push('CONTEXT=SEARCH', 'CONTEXT=SORT');
  // RFC 5032: SEARCH OLDER / YOUNGER.
  caps.push('WITHIN');
  // RFC 7377: ESEARCH IN (...) over several mailboxes.
  if (COMMANDS.has('ESEARCH')) caps.push('MULTISEARCH');
  // RFC 9394: RETURN (PARTIAL) on SEARCH / SORT and the FETCH PARTIAL modifier.
  caps.push('PARTIAL');
  // proto-b: message and mailbox attributes kept by the store (schema migration V_OBJECT_ATTRS).
  caps.push(
    'SAVEDATE', // RFC 8514
    'OBJECTID', // RFC 8474
  );
  // RFC 5464: mailbox and server annotations.
  if (COMMANDS.has('GETMETADATA') && COMMANDS.has('SETMETADATA')) caps.push('METADATA', 'METADATA-SERVER');
  // RFC 5465 §3; its MailboxMetadataChange / ServerMetadataChange events are required with METADATA (§5.6, §5.7) and supported.
  if (COMMANDS.has('NOTIFY')) caps.push('NOTIFY');
  caps.push('UIDONLY'); // RFC 9586 (src/commands/uidonly.ts)
  // RFC 4467 URLAUTH with RFC 5524's extended URLFETCH; RFC 5550 §5 ;PARTIAL= in CATENATE and URLFETCH URLs.
  if (COMMANDS.has('GENURLAUTH') && COMMANDS.has('RESETKEY') && COMMANDS.has('URLFETCH')) caps.push('URLAUTH', 'URLAUTH=BINARY', 'URL-PARTIAL');
  if (COMMANDS.has('COMPRESS') && !c.compressed) caps.push('COMPRESS=DEFLATE'); // RFC 4978 §3
  return caps;
}
