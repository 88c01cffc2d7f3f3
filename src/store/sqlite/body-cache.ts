// Recently appended and recently read message bodies in memory, per store
// (issue 11: FETCH BODY[] read the body file on every FETCH, a trip to the
// body-reading thread and three system calls, for the same few hot messages
// of a shared mailbox). A body never changes under its blob id (ids are
// handed out once, never reused: BLOB_ID_BLOCK reservations), so an entry
// can only be stale by being gone: the store drops it when it unlinks the
// blob's file. Another worker's unlink is not seen here; such an entry is
// only ever asked for by a session that still knows the message (a FETCH
// that the row lookup let through), which RFC 9051 §7.5.1 / RFC 2180 §4.1
// allow to be served, and it leaves by eviction like any other.
//
// Least recently used first out, bounded by total bytes; a body longer than
// the entry limit is never kept (big attachments stream from the file).

/** Default bytes of bodies one store keeps (the store option bodyCacheBytes; 0 turns the cache off). */
export const BODY_CACHE_BYTES = 8 * 1024 * 1024;
/** Longest body kept (default; the store option bodyCacheEntryBytes): at most a 32nd of the cache, and no longer than one thread read (THREAD_READ_MAX). */
export const BODY_CACHE_ENTRY_BYTES = 256 * 1024;

export class BodyCache {
  /** Insertion order is recency order: the first entry is the least recently used. */
  private readonly entries = new Map<number, Buffer>();
  private used = 0;
  /** Lookups answered and missed (tests, diagnostics). */
  hits = 0;
  misses = 0;

  constructor(
    /** Most bytes held; 0: nothing is kept. */
    readonly maxBytes: number = BODY_CACHE_BYTES,
    /** Longest body held. */
    readonly maxEntryBytes: number = Math.min(BODY_CACHE_ENTRY_BYTES, maxBytes),
  ) {}

  get enabled(): boolean {
    return this.maxBytes > 0 && this.maxEntryBytes > 0;
  }

  /** Whether a body of `size` bytes would be kept. */
  fits(size: number): boolean {
    return this.enabled && size <= this.maxEntryBytes && size <= this.maxBytes;
  }

  /** Bytes held now. */
  get bytes(): number {
    return this.used;
  }

  get size(): number {
    return this.entries.size;
  }

  /** The whole body of blob `id`, or undefined; a hit becomes the most recently used. Callers must not change the bytes. */
  get(id: number): Buffer | undefined {
    const b = this.entries.get(id);
    if (b === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.entries.delete(id);
    this.entries.set(id, b);
    return b;
  }

  /** Whether blob `id` is held (no effect on recency). */
  has(id: number): boolean {
    return this.entries.has(id);
  }

  /**
   * Keeps `body` as the whole body of blob `id` when it fits, evicting the
   * least recently used. `copy`: the caller's buffer may be a view of a
   * larger one or be reused (an APPEND literal), so a private copy is kept.
   */
  put(id: number, body: Buffer, copy = false): void {
    if (!this.fits(body.length)) return;
    this.delete(id);
    const kept = copy ? Buffer.from(body) : body;
    this.entries.set(id, kept);
    this.used += kept.length;
    for (const [old, b] of this.entries) {
      if (this.used <= this.maxBytes) break;
      this.entries.delete(old);
      this.used -= b.length;
    }
  }

  /** Forgets blob `id` (its file is being unlinked). */
  delete(id: number): void {
    const b = this.entries.get(id);
    if (b === undefined) return;
    this.entries.delete(id);
    this.used -= b.length;
  }

  clear(): void {
    this.entries.clear();
    this.used = 0;
  }
}
