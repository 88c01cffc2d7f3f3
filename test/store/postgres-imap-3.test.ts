// IMAP and POP3 behaviour files over the PostgreSQL store: the group postgres-imap-3 of test/store/postgres-behaviour.ts.
import { behaviourOverPostgres } from './postgres-behaviour.js';

await behaviourOverPostgres('postgres-imap-3');
