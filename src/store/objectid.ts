// RFC 8474 object ids of stored messages, the same on every backend (and so
// kept by `quire migrate`): EMAILID is "M" and the body's blob id (blob ids
// are never reused, and every copy of a message shares its body's); THREADID
// is "T" and the number of the thread's founding body (§5.2: the two kinds
// never collide).

/** Parses "<prefix><positive integer>" as ours makes them; null for anything else (which names nothing). */
function numberAfter(prefix: 'M' | 'T', id: string): number | null {
  if (id.length < 2 || id.length > 17 || id[0] !== prefix || id[1] === '0') return null;
  for (let i = 1; i < id.length; i++) {
    const c = id.charCodeAt(i);
    if (c < 48 || c > 57) return null;
  }
  const n = Number(id.slice(1));
  return Number.isSafeInteger(n) ? n : null;
}

/** The EMAILID of body `blobId`. */
export function emailIdOf(blobId: number): string {
  return `M${blobId}`;
}

/** The blob id an EMAILID of ours names, or null. */
export function blobIdOfEmailId(id: string): number | null {
  return numberAfter('M', id);
}

/** The THREADID of thread number `n`. */
export function threadIdOf(n: number): string {
  return `T${n}`;
}

/** The thread number inside a THREADID of ours, or null. */
export function threadNumberOf(id: string): number | null {
  return numberAfter('T', id);
}
