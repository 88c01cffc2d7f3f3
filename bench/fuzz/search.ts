// Fuzz target: the SEARCH compiler. An input is the argument text of a
// SEARCH command; it goes the way a real one does: the wire decoder, the
// command's parse (RETURN, CHARSET, parseProgram), toMetaFilter against a
// session view, compileFilter to SQL, and that SQL run by SQLite over a real
// store of 300 messages. Invariants:
// - parsing fails only with the command's own BAD/NO (ImapError), never another exception;
// - compiling never throws (but its own NO [LIMIT] for a program too costly to prepare), its parameters match its placeholders, and SQLite accepts and runs the SQL;
// - the matches are UIDs of the mailbox, ascending.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { CommandDecoder } from '../../src/wire/decoder.ts';
import { DEFAULT_DECODER_LIMITS } from '../../src/wire/limits.ts';
import { search } from '../../src/commands/search.ts';
import { ImapError } from '../../src/commands/types.ts';
import { StoreError } from '../../src/store/types.ts';
import { toMetaFilter } from '../../src/search/meta.ts';
import { compileFilter, runFilter, searchStatements } from '../../src/store/sqlite/search.ts';
import { SqliteMailStore } from '../../src/store/sqlite/index.ts';
import { attachFullText, ftsFileOf } from '../../src/store/sqlite/fulltext.ts';
import { provisionUser } from '../../src/cli/users.ts';
import { Session } from '../../src/session/session.ts';
import type { FuzzTarget } from './lib/fuzz.ts';

const MESSAGES = 300;
let dir = '';
let db: Database.Database | null = null;
let statement: ((sql: string) => Database.Statement) | null = null;
let mailboxId = 0;
let uids: number[] = [];
const recent = new Set<number>();
const session = new Session('fuzz', '127.0.0.1', true);

function message(i: number): Buffer {
  const words = ['apple', 'Banana', 'cherry', 'Grüße', 'naïve', 'x@y.z', 'zebra'];
  return Buffer.from([
    `From: ${i % 3 ? `"Sender ${i}" <s${i}@example.com>` : `<user-from (comment)@ (c) domain.org>`}`,
    `To: a${i % 5}@example.org, Group: b@x.y;`,
    i % 4 ? `Cc: c${i}@example.net` : 'Bcc: hidden@example.com',
    `Subject: ${words[i % words.length]} ${i} =?utf-8?B?4oKs?=`,
    `Date: ${1 + (i % 28)} Feb 2021 10:00:00 +0${i % 9}00`,
    `Message-ID: <m${i}@example.com>`,
    i % 2 ? 'Content-Type: text/plain; charset=utf-8' : 'Content-Type: multipart/mixed; boundary=b',
    '',
    i % 2 ? `Body ${words[(i * 7) % words.length]} ${'x'.repeat(i)}` : `--b\r\nContent-Type: text/plain\r\n\r\npart ${i}\r\n--b--`,
    '',
  ].join('\r\n'));
}

const target: FuzzTarget = {
  name: 'search',
  description: 'SEARCH: decoder, command parse, toMetaFilter, compileFilter, SQL run by SQLite over a real store',
  maxInputBytes: 2048,
  async init() {
    dir = mkdtempSync(path.join(tmpdir(), 'quire-fuzz-search-'));
    const store = await SqliteMailStore.open({ dataDir: dir, synchronous: 'NORMAL' });
    const u = await provisionUser(store, 'alice', 'secret-a');
    const inbox = await store.getMailbox(u.id, 'INBOX');
    mailboxId = inbox!.id;
    const flags = [[], ['\\Seen'], ['\\Flagged', '$Label'], ['\\Deleted', '\\Seen'], ['\\Answered', '\\Draft', 'Junk']];
    await store.appendMessages(mailboxId, Array.from({ length: MESSAGES }, (_, i) => ({ data: message(i + 1), flags: flags[i % flags.length]!, internalDate: Date.UTC(2021, 1, 1 + (i % 28)) })));
    await store.close();
    db = new Database(path.join(dir, 'quire.sqlite3'), { readonly: true });
    // Full-text conditions read the index's own file, as the search thread does.
    attachFullText(db, ftsFileOf(path.join(dir, 'quire.sqlite3')));
    statement = searchStatements(db);
    uids = (db.prepare('SELECT uid FROM messages WHERE mailbox_id = ? ORDER BY uid').pluck().all(mailboxId) as number[]);
    // A view with gaps: sequence numbers and UIDs differ.
    uids = uids.filter((u) => u % 7 !== 3);
    for (const u of uids) if (u % 11 === 0) recent.add(u);
  },
  async close() {
    db?.close();
    rmSync(dir, { recursive: true, force: true });
  },
  seeds: () => [
    'ALL', 'UNSEEN', 'RETURN (MIN MAX COUNT) FLAGGED', 'CHARSET UTF-8 SUBJECT "Grüße"', 'OR FROM apple TO a1@example.org',
    'NOT (SINCE 5-Feb-2021 BEFORE 20-Feb-2021)', '1:10,20:* UID 4:9 LARGER 100 SMALLER 2000', 'HEADER Message-ID <m4@example.com>',
    'KEYWORD $Label UNKEYWORD Junk', 'SENTON 3-Feb-2021', 'MODSEQ 5', 'RETURN (SAVE) DELETED', '$', 'OR (OR NEW OLD) (OR RECENT SEEN)',
    'BODY banana TEXT cherry', 'CHARSET ISO-8859-1 FROM {4}\r\ncaf\xe9', '1:4294967295', 'UID 1:*', 'ON 1-Jan-2020 ANSWERED DRAFT',
    'FROM user-from@domain.org', 'CC "" BCC hidden',
  ].map((s) => Buffer.from(s, 'latin1')),
  dictionary: [' ', '(', ')', '"', '*', ':', ',', '$', 'ALL', 'OR', 'NOT', 'AND', 'FROM', 'TO', 'CC', 'BCC', 'SUBJECT', 'BODY', 'TEXT', 'HEADER', 'KEYWORD',
    'UNKEYWORD', 'SINCE', 'BEFORE', 'ON', 'SENTSINCE', 'SENTBEFORE', 'SENTON', 'LARGER', 'SMALLER', 'UID', 'MODSEQ', 'RETURN', '(MIN MAX ALL COUNT SAVE)',
    'CHARSET', 'UTF-8', 'KOI8-R', 'X-UNKNOWN', 'SEEN', 'UNSEEN', 'FLAGGED', 'DELETED', 'RECENT', 'NEW', 'OLD', 'ANSWERED', 'DRAFT', '1-Feb-2021', '31-Feb-2021',
    '1:*', '4294967295', '0', '{3}\r\n', '~{2}\r\n', '\\Seen', 'FUZZY', 'OLDER', 'YOUNGER', 'SAVEDBEFORE', 'EMAILID', 'THREADID', 'X-GM-RAW', '%', '\xff'],
  run(input) {
    const d = new CommandDecoder(DEFAULT_DECODER_LIMITS);
    d.push(Buffer.concat([Buffer.from('a SEARCH '), input, Buffer.from('\r\n')]));
    const ev = d.next();
    if (!ev || ev.type !== 'command') return `wire ${ev ? (ev.type === 'error' ? ev.code : ev.type) : 'more'}`;
    let args;
    try {
      args = search.parse(ev.args, session);
    } catch (e) {
      if (e instanceof ImapError) return `parse ${e.status} ${e.code ?? ''} ${e.message.replace(/[^A-Za-z ]/g, '').split(' ').slice(0, 3).join(' ')}`;
      throw e;
    }
    if (!args.program) return 'badcharset';
    const filter = toMetaFilter(args.program, { uids, recent, saved: uids.filter((u) => u % 5 === 0) });
    if (!filter) return `content ${args.program.k}`;
    let compiled;
    try {
      compiled = compileFilter(filter);
    } catch (e) {
      // The compiler's own refusal of a program too costly to prepare (answered NO [LIMIT]).
      if (e instanceof StoreError && e.kind === 'LIMIT') return `limit ${filter.k}`;
      throw e;
    }
    const holes = (compiled.sql.match(/\?/g) ?? []).length;
    if (holes !== compiled.params.length) throw new Error(`${holes} placeholders, ${compiled.params.length} parameters: ${compiled.sql}`);
    const { uids: found, undecided } = runFilter(statement!, mailboxId, compiled);
    for (let i = 1; i < found.length; i++) if (found[i]! <= found[i - 1]!) throw new Error('matches not ascending');
    return `sql ${filter.k} ${compiled.usesBlob ? 'blob' : 'meta'} ${found.length === 0 ? 0 : found.length < 50 ? 1 : 2} ${undecided.length ? 'u' : ''}`;
  },
};
export default target;
