// IMAP and POP3 behaviour files over the PostgreSQL store: the group postgres-imap-timed of test/store/postgres-behaviour.ts.
import { behaviourOverPostgres } from './postgres-behaviour.js';

await behaviourOverPostgres('postgres-imap-timed');
