// The calendar day of a Date header, for SEARCH SENTBEFORE / SENTON / SENTSINCE.

const MONTHS: Record<string, number> = { jan: 0, feb: 1, mar: 2, apr: 3, may: 4, jun: 5, jul: 6, aug: 7, sep: 8, oct: 9, nov: 10, dec: 11 };

/** The calendar day of a Date header in its own zone, as days since the epoch (RFC 9051 §6.4.4 SENT*). */
export function sentDayOf(value: string | null): number | null {
  if (!value) return null;
  const m = /(\d{1,2})\s+([A-Za-z]{3})[a-z]*\s+(\d{2,4})/.exec(value);
  if (!m) return null;
  const mon = MONTHS[m[2]!.toLowerCase()];
  if (mon === undefined) return null;
  let year = Number(m[3]);
  if (m[3]!.length === 2) year += year < 50 ? 2000 : 1900; // RFC 5322 §4.3 obsolete two-digit years
  return Math.floor(Date.UTC(year, mon, Number(m[1])) / 86_400_000);
}

