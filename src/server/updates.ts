// The selected mailbox's updates for one IMAP connection: routing the store's
// change records (the view's queue, NOTIFY, \Recent claims, RFC 5267 update
// contexts) and writing the untagged responses they become (RFC 9051 §7.4.1,
// §5.2; RFC 7162 §3.2.10.2; RFC 5267 §4.3). Split out of connection.ts, which
// owns the socket and hands this the few things it needs (UpdateHost).
import type { Session } from '../session/session.js';
import { flagsOf } from '../commands/format.js';
import type { CommandContext } from '../commands/types.js';
import type { Change, MailStore } from '../store/types.js';
import type { Logger } from './options.js';
import { contextsPending, linesAfterFlush, linesBeforeFlush, refreshContexts } from '../commands/context.js';
import { contextFetches } from '../commands/notify-push.js';

/** Mailboxes whose \Recent claims are remembered in memory (cleared when full: the store still arbitrates). */
const MAX_RECENT_CLAIMS = 100_000;

/** What the connection lends its update plumbing. */
export interface UpdateHost {
  readonly session: Session;
  readonly store: MailStore;
  /** Per mailbox, the highest UID claimed as \Recent by a session of this process (ConnectionHooks.recentClaims). */
  readonly recentClaims: Map<number, number>;
  /** The server's log (ServerOptions.log) and this connection's (its session fields: obs/session.ts). */
  readonly log: Logger;
  readonly sessionLog: Logger;
  /** The command in progress, or null between commands. */
  command(): string | null;
  idling(): boolean;
  write(data: string): void;
  /** Writes a last line (a BYE) and ends the connection; `reason` replaces the close reason when given. */
  close(bye: string, reason?: string): void;
  /** A NOTIFY push is due (push.ts). */
  pushRequest(): void;
  /** A command context for writes outside any command. */
  context(name: string): CommandContext;
}

export class MailboxUpdates {
  /** \Recent claims in flight for appended messages (see onChange). */
  claims: Promise<void> = Promise.resolve();

  constructor(private readonly host: UpdateHost) {}

  onChange(c: Change): void {
    const s = this.host.session;
    if (s.notify?.route(c, s.selected, this.host.command())) this.host.pushRequest();
    const view = s.selected;
    if (c.kind === 'urlauth-key') {
      // RFC 4467 §6.3: every other session with the mailbox selected (every mailbox when all keys
      // went) gets an untagged OK [URLMECH]; the resetting session has it on its tagged OK.
      if (view && (c.mailboxId === null || c.mailboxId === view.mailboxId) && this.host.command() !== 'RESETKEY') {
        view.notice('OK [URLMECH INTERNAL] Mailbox access key reset');
        if (this.host.idling()) void this.flush(true);
      }
      return;
    }
    if ('mailboxId' in c && s.pendingSelect && s.pendingSelect.mailboxId === c.mailboxId) {
      s.pendingSelect.changes.push(c);
      return;
    }
    if (!view || !('mailboxId' in c) || c.mailboxId !== view.mailboxId) return;
    if (c.kind === 'append' || c.kind === 'flags' || c.kind === 'expunge') {
      view.enqueue(c);
      if (view.overflowed) {
        // docs/limits.md, MAX_PENDING_UPDATES (src/session/view.ts): the view can no longer be kept
        // cheaply; the client reconnects and resynchronises (RFC 9051 §7.1.5 BYE; RFC 5530 LIMIT).
        this.host.log.info('too many updates queued for a session that does not read them; closing', { id: this.host.session.id, user: this.host.session.user?.name, pending: view.pendingEntries });
        this.host.close('* BYE [LIMIT] Too many mailbox changes queued\r\n', 'too many queued updates');
        return;
      }
      const idlePush = this.host.idling() && (s.notify?.idleSends(c.kind) ?? true); // RFC 5465 §4
      // RFC 5267 §4.3: searches kept up to date run again (their differences go out with the next flush).
      if (view.contexts.size > 0) this.queueContextRefresh();
      if (c.kind === 'append' && s.recentEnabled && !view.readOnly && this.claimFirst(view.mailboxId, c.messages)) {
        // RFC 3501 §2.3.2: a new message is \Recent in exactly one session: the
        // first to claim it. The claim completes before the EXISTS is flushed.
        const claim = this.host.store.claimRecent(view.mailboxId).then(
          (first) => {
            for (const m of c.messages) if (m.uid >= first) view.recent.add(m.uid);
          },
          () => undefined,
        );
        this.claims = this.claims.then(() => claim);
        if (idlePush) void claim.then(() => { if (this.host.idling()) void this.flush(true); });
        return;
      }
      if (idlePush) void this.flush(true);
    } else if (c.kind === 'mailbox-rename') {
      view.mailboxName = c.name;
    } else if (c.kind === 'mailbox-delete') {
      // The selected mailbox is gone: nothing the client believes about it holds (RFC 2180 §3).
      this.host.close('* BYE Selected mailbox was deleted\r\n');
    }
  }

  /** True when no session of this process has claimed these new messages yet (and marks them as claimed). */
  private claimFirst(mailboxId: number, messages: readonly { uid: number }[]): boolean {
    let max = 0;
    for (const m of messages) if (m.uid > max) max = m.uid;
    const claims = this.host.recentClaims;
    if ((claims.get(mailboxId) ?? 0) >= max) return false;
    if (claims.size >= MAX_RECENT_CLAIMS) claims.clear();
    claims.set(mailboxId, max);
    return true;
  }

  /** One re-run of the update contexts after the claims in flight (coalesced: one queued at a time). */
  private contextRefreshQueued = false;
  private queueContextRefresh(): void {
    if (this.contextRefreshQueued) return;
    this.contextRefreshQueued = true;
    this.claims = this.claims.then(async () => {
      this.contextRefreshQueued = false;
      await refreshContexts(this.host.store, this.host.session).catch(() => undefined);
      if (this.host.idling()) void this.flush(true);
    });
  }

  /** The FETCHes of `UPDATE (fetch-att)` contexts being written (RFC 5465 §7); later flushes wait for them. */
  private flushTail: Promise<void> | null = null;

  flush(allowExpunge: boolean): void | Promise<void> {
    if (!this.flushTail) return this.flushNow(allowExpunge);
    return this.trackFlush(this.flushTail.then(() => this.flushNow(allowExpunge)));
  }

  private trackFlush(p: Promise<void>): Promise<void> {
    this.flushTail = p;
    const clear = () => {
      if (this.flushTail === p) this.flushTail = null;
    };
    p.then(clear, clear);
    return p;
  }

  private flushNow(allowExpunge: boolean): void | Promise<void> {
    const view = this.host.session.selected;
    if (!view || (!view.hasPending && (view.contexts.size === 0 || !contextsPending(view)))) return;
    // RFC 5267 §4.3.4: REMOVEFROM for expunged messages before the EXPUNGE; §4.3.3: ADDTO after the EXISTS.
    const before = view.contexts.size > 0 ? linesBeforeFlush(view) : [];
    const flushed = view.flush(allowExpunge, {
      recentEnabled: this.host.session.recentEnabled,
      flagsOf: (m) => flagsOf(this.host.session, m),
      // RFC 7162 §3.2.4: MODSEQ in every FETCH once CONDSTORE is on;
      // §3.2.10.2: VANISHED instead of EXPUNGE once QRESYNC is enabled.
      condstore: this.host.session.condstore,
      vanished: this.host.session.qresync || this.host.session.uidOnly, // RFC 9586 §3: VANISHED, never EXPUNGE
      uidOnly: this.host.session.uidOnly,
    });
    const after = view.contexts.size > 0 ? linesAfterFlush(view) : null;
    let lines = flushed;
    let i = 0;
    if (after) {
      // Lines up to the first context that FETCHes its new members go out at once.
      lines = [...before, ...flushed];
      for (; i < after.length && !after[i]!.fetch; i++) lines.push(after[i]!.line!);
    }
    // One write (one system call) for the lot: an IDLE push to many clients costs one per client.
    if (lines.length === 1) this.host.write(`* ${lines[0]}\r\n`);
    else if (lines.length > 1) this.host.write(lines.map((l) => `* ${l}\r\n`).join(''));
    if (!after || i === after.length) return;
    const ctx = this.host.context('SEARCH');
    const done = contextFetches(ctx, view, after.slice(i), (line) => this.host.write(line)).catch((err: unknown) => {
      this.host.sessionLog.error('search context fetch failed', { error: err instanceof Error ? err.stack : String(err) });
    });
    return this.trackFlush(done);
  }
}
