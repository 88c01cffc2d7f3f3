// The process logger: pino underneath, the small Logger interface of
// src/server/options.ts on top (debug/info/warn/error(msg, fields)), so the
// rest of the code never depends on pino.
//
// Two output formats:
//   text (default): `2025-01-02T03:04:05.678Z INFO msg key=value ...`, one
//     line per record. Values are quoted with JSON escaping when they contain
//     anything but safe characters, so client-supplied text can never forge a
//     line break or a field.
//   json (`--log-format json`): one pino JSON object per line, with `time` as
//     an ISO 8601 string and `level` as its name, for log shippers.
//
// Every record written by a cluster worker carries `worker` (its cluster id),
// so one worker's lines can be told apart; per-session ids arrive as child
// bindings (`session`). Passwords and message contents are never passed to
// the logger by any caller; see docs/logging.md for the stable records.

import cluster from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { pino, stdTimeFunctions, type Logger as Pino } from 'pino';
import type { Logger } from '../server/options.js';

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ['text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** Longest value written for one field; longer ones are cut with an ellipsis. */
export const MAX_FIELD_CHARS = 2000;

export interface LoggerOptions {
  level?: LogLevel;
  format?: LogFormat;
  /** Where lines go (without the trailing newline); default process.stderr. */
  write?: (line: string) => void;
  /** Clock, for tests (text format only: it reformats pino's time). */
  now?: () => Date;
}

export interface LevelLogger extends Logger {
  level: LogLevel;
  /** A logger adding `fields` to every record (e.g. a session id). */
  child(fields: Record<string, unknown>): LevelLogger;
}

const SAFE = /^[A-Za-z0-9_.:/@+\-[\]]+$/;

function clip(s: string): string {
  return s.length > MAX_FIELD_CHARS ? s.slice(0, MAX_FIELD_CHARS) + '…' : s;
}

function formatValue(v: unknown): string {
  let s: string;
  if (v instanceof Error) s = v.stack && process.env.QUIRE_LOG_STACKS ? v.stack : `${v.name}: ${v.message}`;
  else if (typeof v === 'string') s = v;
  else if (v === undefined) s = 'undefined';
  else if (typeof v === 'bigint') s = v.toString();
  else if (v instanceof Date) s = v.toISOString();
  else if (Buffer.isBuffer(v)) s = `<${v.length} bytes>`;
  else if (isSerializedError(v)) s = `${v.type}: ${v.message}`;
  else {
    try {
      s = typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v);
    } catch {
      s = String(v);
    }
  }
  s = clip(s);
  return SAFE.test(s) ? s : JSON.stringify(s);
}

function isSerializedError(v: unknown): v is { type: string; message: string } {
  return typeof v === 'object' && v !== null && typeof (v as { type?: unknown }).type === 'string' && typeof (v as { message?: unknown }).message === 'string' && 'stack' in v;
}

function formatKey(k: string): string {
  return /^[A-Za-z0-9_.-]+$/.test(k) ? k : JSON.stringify(k);
}

/** Formats one text record (exported for tests and for the fail2ban documentation). */
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

/** Fields pino adds that the text format prints itself (base is off: no pid or hostname). */
const PINO_KEYS = new Set(['level', 'time', 'msg']);

/** A pino destination that turns each JSON record into a text line. */
function textDestination(write: (line: string) => void, now?: () => Date): { write(s: string): void } {
  return {
    write(s: string) {
      for (const raw of s.split('\n')) {
        if (!raw) continue;
        let rec: Record<string, unknown>;
        try {
          rec = JSON.parse(raw) as Record<string, unknown>;
        } catch {
          write(raw);
          continue;
        }
        const fields: Record<string, unknown> = {};
        for (const [k, v] of Object.entries(rec)) if (!PINO_KEYS.has(k)) fields[k] = v;
        const time = now ? now() : new Date(typeof rec.time === 'string' || typeof rec.time === 'number' ? rec.time : Date.now());
        const level = (LOG_LEVELS as readonly string[]).includes(String(rec.level)) ? (rec.level as LogLevel) : 'info';
        write(formatRecord(time, level, String(rec.msg ?? ''), Object.keys(fields).length ? fields : undefined));
      }
    },
  };
}

/** Field values as pino should see them: Errors serialized, long strings clipped, Buffers never dumped. */
function prepare(fields: Record<string, unknown> | undefined): Record<string, unknown> {
  if (!fields) return {};
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) {
    if (typeof v === 'string') out[k] = clip(v);
    else if (v instanceof Error) out[k] = { type: v.name, message: clip(v.message), stack: process.env.QUIRE_LOG_STACKS ? v.stack : undefined };
    else if (Buffer.isBuffer(v)) out[k] = `<${v.length} bytes>`;
    else if (typeof v === 'bigint') out[k] = v.toString();
    else out[k] = v;
  }
  return out;
}

function wrap(p: Pino): LevelLogger {
  const logger: LevelLogger = {
    get level() {
      return p.level as LogLevel;
    },
    set level(l: LogLevel) {
      p.level = l;
    },
    debug: (m, f) => p.debug(prepare(f), m),
    info: (m, f) => p.info(prepare(f), m),
    warn: (m, f) => p.warn(prepare(f), m),
    error: (m, f) => p.error(prepare(f), m),
    child: (fields) => wrap(p.child(prepare(fields))),
  };
  return logger;
}

/** The worker label of this process: the cluster worker id, or 0 in a single process / the primary. */
export function workerId(): number {
  return cluster.isWorker && cluster.worker ? cluster.worker.id : 0;
}

export function createLogger(opts: LoggerOptions = {}): LevelLogger {
  const format = opts.format ?? 'text';
  const write = opts.write ?? ((line: string) => void process.stderr.write(line + '\n'));
  const dest =
    format === 'json'
      ? opts.write
        ? { write: (s: string) => { for (const l of s.split('\n')) if (l) write(l); } }
        : pino.destination({ dest: 2, sync: true })
      : textDestination(write, opts.now);
  const base = cluster.isWorker ? { worker: workerId() } : undefined;
  const p = pino(
    {
      level: opts.level ?? 'info',
      base: base ?? null,
      timestamp: stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    dest,
  );
  return wrap(p);
}

/** A per-session id: short, random, unique across workers and restarts (what `session=` refers to). */
export function newSessionId(): string {
  return randomBytes(6).toString('base64url');
}

/** A log id for an internal error, quoted in the client's reply so the admin can grep for it. */
export function newLogId(): string {
  return randomBytes(6).toString('hex');
}
