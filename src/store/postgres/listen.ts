// The wake-up signal between the nodes of one PostgreSQL store: LISTEN on a
// channel that every write transaction NOTIFYs (inside the transaction, so
// the notification goes out exactly when the commit does). A notification
// is only a hint of which user to look at; the changes themselves come from
// the journal (journal.ts). The payload is "<user id> <node id>": a store
// passes over its own (it published them when it committed). Notifications are lost while the connection is
// down, so after every (re)connection the receiver is told to look at
// everything (onReconnect), and a periodic poll of the journal (journal.ts)
// covers anything else.
//
// The class has the shape of src/bus's ChangeBus (publish / subscribe /
// close), so src/bus/postgres.ts offers it as the cross-node bus.
import pg from 'pg';
import type { ChangeHint } from '../types.js';

/** First and longest pause between reconnection attempts (ms). */
const RECONNECT_FIRST_MS = 50;
const RECONNECT_MAX_MS = 2_000;

/** The channel of a schema: an SQL identifier of at most 63 bytes built from fixed characters only. */
export function channelOf(schema: string): string {
  return `quire_${schema.toLowerCase().replace(/[^a-z0-9_]/g, '_')}`.slice(0, 63);
}

export type HintFn = (hint: ChangeHint) => void;

/** Longest node id a payload may carry (the store's are 12 hex digits). */
const MAX_NODE_ID = 32;

/** A store's NOTIFY payload: the user whose journal moved, and which store instance committed it. */
export function notifyPayload(userId: number, nodeId: string): string {
  return `${userId} ${nodeId}`;
}

/** The user and node of a payload ("<user id>[ <node id>]"); userId 0 when it is not one of ours (look at everyone). */
export function parsePayload(payload: string | undefined): { userId: number; nodeId: string | null } {
  const sp = (payload ?? '').indexOf(' ');
  const u = sp < 0 ? (payload ?? '') : payload!.slice(0, sp);
  const node = sp < 0 ? null : payload!.slice(sp + 1);
  const userId = /^[1-9]\d{0,15}$/.test(u) ? Number(u) : 0;
  if (!Number.isSafeInteger(userId)) return { userId: 0, nodeId: null };
  return { userId, nodeId: node !== null && node.length > 0 && node.length <= MAX_NODE_ID ? node : null };
}

export class PgNotifyListener {
  private client: pg.Client | null = null;
  private readonly listeners = new Set<HintFn>();
  private closed = false;
  private pause = RECONNECT_FIRST_MS;
  private timer: NodeJS.Timeout | null = null;
  /** Resolves once the first LISTEN is in place (or failed). */
  readonly ready: Promise<void>;

  constructor(
    private readonly config: pg.ClientConfig,
    readonly channel: string,
    /** Called after every successful (re)connection: notifications may have been missed. */
    private readonly onReconnect: () => void = () => {},
    /** Notifications whose payload names this node are this process's own commits: not passed on. */
    private readonly self: string | null = null,
  ) {
    this.ready = this.connect();
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    const client = new pg.Client(this.config);
    client.on('error', () => this.lost(client));
    client.on('end', () => this.lost(client));
    client.on('notification', (n) => {
      if (n.channel !== this.channel) return;
      // The payload only says whom to look at (and who committed); a malformed one means "look at everyone".
      const { userId, nodeId } = parsePayload(n.payload);
      if (this.self !== null && nodeId === this.self && userId > 0) return;
      const hint: ChangeHint = { userId, mailboxId: 0, modseq: 0, kind: 'mailboxes' };
      for (const fn of this.listeners) fn(hint);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${this.channel}`);
      if (this.closed) {
        await client.end().catch(() => undefined);
        return;
      }
      this.client = client;
      this.pause = RECONNECT_FIRST_MS;
      this.onReconnect();
    } catch {
      client.removeAllListeners('end');
      await client.end().catch(() => undefined);
      this.retry();
    }
  }

  private lost(client: pg.Client): void {
    if (this.client !== client) return;
    this.client = null;
    void client.end().catch(() => undefined);
    this.retry();
  }

  private retry(): void {
    if (this.closed || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.connect();
    }, this.pause);
    this.timer.unref();
    this.pause = Math.min(this.pause * 2, RECONNECT_MAX_MS);
  }

  /** Whether the LISTEN connection is up (for health checks). */
  get connected(): boolean {
    return this.client !== null;
  }

  /** ChangeBus.publish: a NOTIFY outside any transaction (the store's own writes notify inside theirs). */
  publish(hint: ChangeHint): void {
    const c = this.client;
    if (!c) return;
    c.query('SELECT pg_notify($1, $2)', [this.channel, String(hint.userId)]).catch(() => undefined);
  }

  subscribe(fn: HintFn): () => void {
    const entry: HintFn = (h) => fn(h);
    this.listeners.add(entry);
    return () => this.listeners.delete(entry);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.listeners.clear();
    if (this.timer) clearTimeout(this.timer);
    const c = this.client;
    this.client = null;
    if (c) {
      c.removeAllListeners('end');
      await c.end().catch(() => undefined);
    }
  }
}
