// The logger moved to src/obs/log.ts (pino underneath); this module keeps the
// old import path working for the CLI's code and tests.
export { createLogger, formatRecord, LOG_FORMATS, LOG_LEVELS, type LevelLogger, type LogFormat, type LoggerOptions, type LogLevel } from '../obs/log.js';
