// IMAP dates (RFC 9051 §9):
//   date        = date-text / DQUOTE date-text DQUOTE   (the caller unquotes)
//   date-text   = date-day "-" date-month "-" date-year
//   date-day    = 1*2DIGIT
//   date-time   = DQUOTE date-day-fixed "-" date-month "-" date-year
//                 SP time SP zone DQUOTE
//   date-day-fixed = (SP DIGIT) / 2DIGIT
//   time        = 2DIGIT ":" 2DIGIT ":" 2DIGIT
//   zone        = ("+" / "-") 4DIGIT
// Month names are case-insensitive (ABNF strings).

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const MONTH_INDEX = new Map(MONTHS.map((m, i) => [m.toLowerCase(), i + 1]));

export interface ImapDate {
  year: number;
  /** 1-12 */
  month: number;
  /** 1-31 */
  day: number;
}

export interface ImapDateTime {
  /** Milliseconds since the epoch (UTC). */
  ms: number;
  /** Offset of the zone east of UTC in minutes (-0700 -> -420). */
  tzOffsetMinutes: number;
}

/** Date.UTC without its mapping of years 0-99 to 1900-1999. */
function utc(year: number, month0: number, day: number, h = 0, mi = 0, s = 0): number {
  const d = new Date(Date.UTC(2000, month0, day, h, mi, s));
  d.setUTCFullYear(year, month0, day);
  return d.getTime();
}

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

function parseDateText(day: string, mon: string, year: string): ImapDate | null {
  const month = MONTH_INDEX.get(mon.toLowerCase());
  if (month === undefined) return null;
  const y = Number(year);
  const d = Number(day);
  if (y < 1 || d < 1 || d > daysInMonth(y, month)) return null;
  return { year: y, month, day: d };
}

/** "1-Feb-1994" (date-text, already unquoted). Null when invalid. */
export function parseDate(s: string): ImapDate | null {
  const m = /^(\d{1,2})-([A-Za-z]{3})-(\d{4})$/.exec(s);
  if (!m) return null;
  return parseDateText(m[1]!, m[2]!, m[3]!);
}

/** Midnight UTC of an ImapDate, in ms (SEARCH BEFORE/ON/SINCE compare dates, RFC 9051 §6.4.4). */
export function dateToUtcMs(d: ImapDate): number {
  return utc(d.year, d.month - 1, d.day);
}

/**
 * "17-Jul-1996 02:44:25 -0700" (date-time without its DQUOTEs). A one-digit
 * day may be written " 7" (date-day-fixed) or, leniently, "7". Null when invalid.
 */
export function parseDateTime(s: string): ImapDateTime | null {
  const m = /^(?: (\d)|(\d{1,2}))-([A-Za-z]{3})-(\d{4}) (\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})$/.exec(s);
  if (!m) return null;
  const date = parseDateText(m[1] ?? m[2]!, m[3]!, m[4]!);
  if (!date) return null;
  const hh = Number(m[5]);
  const mi = Number(m[6]);
  const ss = Number(m[7]);
  const zh = Number(m[9]);
  const zm = Number(m[10]);
  if (hh > 23 || mi > 59 || ss > 60 || zh > 23 || zm > 59) return null;
  const tz = (m[8] === '-' ? -1 : 1) * (zh * 60 + zm);
  const local = utc(date.year, date.month - 1, date.day, hh, mi, Math.min(ss, 59));
  return { ms: local - tz * 60_000, tzOffsetMinutes: tz };
}

function pad2(n: number): string {
  return n < 10 ? '0' + n : String(n);
}

/**
 * Format as date-time without DQUOTEs: "17-Jul-1996 02:44:25 -0700", the day
 * as date-day-fixed (" 7-Jul-1996 ..."). Seconds are truncated.
 */
export function formatDateTime(ms: number, tzOffsetMinutes = 0): string {
  const tz = Math.trunc(tzOffsetMinutes);
  const d = new Date(Math.floor(ms / 1000) * 1000 + tz * 60_000);
  const day = d.getUTCDate();
  const dayText = day < 10 ? ' ' + day : String(day);
  const sign = tz < 0 ? '-' : '+';
  const abs = Math.abs(tz);
  const year = String(d.getUTCFullYear()).padStart(4, '0');
  return (
    `${dayText}-${MONTHS[d.getUTCMonth()]}-${year} ` +
    `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())} ` +
    `${sign}${pad2(Math.floor(abs / 60))}${pad2(abs % 60)}`
  );
}

/** Format as date-text: "1-Feb-1994". */
export function formatDate(d: ImapDate): string {
  return `${d.day}-${MONTHS[d.month - 1]}-${String(d.year).padStart(4, '0')}`;
}
