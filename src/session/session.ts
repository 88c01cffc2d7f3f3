// Connection state (RFC 9051 §3): not authenticated, authenticated,
// selected, logout; the extensions a client has enabled (RFC 5161); the
// saved search result (RFC 5182); the selected-mailbox view.

import type { Change, UserInfo } from '../store/types.js';
import type { SelectedView } from './view.js';
import type { NotifyState } from './notify.js';

export type SessionState = 'notauth' | 'auth' | 'selected' | 'logout';

/** Extensions that change server behaviour once ENABLEd (RFC 5161). */
export type Enableable = 'IMAP4REV2' | 'UTF8=ACCEPT' | 'CONDSTORE' | 'QRESYNC' | 'UIDONLY';

export class Session {
  state: SessionState = 'notauth';
  user: UserInfo | null = null;
  readonly enabled = new Set<Enableable>();
  selected: SelectedView | null = null;
  /** Changes that arrive while SELECT loads the mailbox, replayed into the new view. */
  pendingSelect: { mailboxId: number; changes: Change[] } | null = null;
  /** RFC 5182 saved search result, as UIDs (ascending). */
  savedSearch: number[] = [];
  /** True once TLS protects the connection (implicit TLS or after STARTTLS). */
  secure: boolean;
  /** What NOTIFY SET asked for and what is waiting to be told (RFC 5465); null before NOTIFY and after NOTIFY NONE. */
  notify: NotifyState | null = null;
  /** Client's ID parameters (RFC 2971), for logs. */
  clientId: Record<string, string | null> | null = null;

  constructor(
    readonly id: string,
    readonly remoteAddress: string,
    secure: boolean,
  ) {
    this.secure = secure;
  }

  /** IMAP4rev2 semantics apply (RFC 9051 Appendix E lists what differs from rev1). */
  get rev2(): boolean {
    return this.enabled.has('IMAP4REV2');
  }

  /** Mailbox names travel as UTF-8 instead of modified UTF-7 (RFC 9051 §5.1 / RFC 6855). */
  get utf8Names(): boolean {
    return this.enabled.has('IMAP4REV2') || this.enabled.has('UTF8=ACCEPT');
  }

  get condstore(): boolean {
    return this.enabled.has('CONDSTORE') || this.enabled.has('QRESYNC');
  }

  get qresync(): boolean {
    return this.enabled.has('QRESYNC');
  }

  /** RFC 9586: no message sequence numbers either way (UIDFETCH, VANISHED, BAD [UIDREQUIRED]). */
  get uidOnly(): boolean {
    return this.enabled.has('UIDONLY');
  }

  /** \Recent and the RECENT response exist only for IMAP4rev1 clients (RFC 9051 Appendix E item 4). */
  get recentEnabled(): boolean {
    return !this.rev2;
  }
}
