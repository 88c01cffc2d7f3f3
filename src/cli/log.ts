// A tiny logger for the Logger interface of src/server/options.ts: one line
// per record on stderr, `time LEVEL message key=value ...`. Values are quoted
// with JSON escaping when they contain anything but safe characters, so a
// client-supplied string can never forge a line break or a field.

import type { Logger } from '../server/options.js';

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

/** Longest value written for one field; longer ones are cut with an ellipsis. */
const MAX_FIELD_CHARS = 2000;

export interface LoggerOptions {
  level?: LogLevel;
  /** Where lines go; default process.stderr. */
  write?: (line: string) => void;
  /** Clock, for tests. */
  now?: () => Date;
}

export interface LevelLogger extends Logger {
  level: LogLevel;
  /** A logger adding `fields` to every record (e.g. a connection id). */
  child(fields: Record<string, unknown>): LevelLogger;
}

const SAFE = /^[A-Za-z0-9_.:/@+\-[\]]+$/;

function formatValue(v: unknown): string {
  let s: string;
  if (v instanceof Error) s = v.stack && process.env.QUIRE_LOG_STACKS ? v.stack : `${v.name}: ${v.message}`;
  else if (typeof v === 'string') s = v;
  else if (v === undefined) s = 'undefined';
  else if (typeof v === 'bigint') s = v.toString();
  else if (v instanceof Date) s = v.toISOString();
  else if (Buffer.isBuffer(v)) s = `<${v.length} bytes>`;
  else {
    try {
      s = typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v);
    } catch {
      s = String(v);
    }
  }
  if (s.length > MAX_FIELD_CHARS) s = s.slice(0, MAX_FIELD_CHARS) + '…';
  return SAFE.test(s) ? s : JSON.stringify(s);
}

function formatKey(k: string): string {
  return /^[A-Za-z0-9_.-]+$/.test(k) ? k : JSON.stringify(k);
}

/** Formats one record (exported for tests). */
export function formatRecord(time: Date, level: LogLevel, msg: string, fields?: Record<string, unknown>): string {
  // The message is ours, but it may embed client text: escape control characters.
  // eslint-disable-next-line no-control-regex
  const safeMsg = msg.replace(/[\x00-\x1f\x7f]/g, (c) => JSON.stringify(c).slice(1, -1));
  let line = `${time.toISOString()} ${level.toUpperCase()} ${safeMsg}`;
  if (fields) {
    for (const [k, v] of Object.entries(fields)) line += ` ${formatKey(k)}=${formatValue(v)}`;
  }
  return line;
}

export function createLogger(opts: LoggerOptions = {}, bound: Record<string, unknown> = {}): LevelLogger {
  const write = opts.write ?? ((line: string) => void process.stderr.write(line + '\n'));
  const now = opts.now ?? (() => new Date());
  const logger: LevelLogger = {
    level: opts.level ?? 'info',
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (fields) => createLogger({ ...opts, level: logger.level, write, now }, { ...bound, ...fields }),
  };
  function emit(level: LogLevel, msg: string, fields?: Record<string, unknown>): void {
    if (RANK[level] < RANK[logger.level]) return;
    const all = Object.keys(bound).length > 0 ? { ...bound, ...fields } : fields;
    write(formatRecord(now(), level, msg, all));
  }
  return logger;
}
