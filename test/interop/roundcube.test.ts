// A real webmail in a real browser: Debian's Roundcube (served by `php -S` on
// loopback, SQLite for its own state) driven by Debian's Chromium through
// puppeteer-core, against Quire started the way the README says. It logs in,
// lists a folder of 300 messages, sorts it by date, subject and sender,
// switches to threads, opens a message, searches and moves a message, and
// compares every page with what Quire itself answers over IMAP (SORT,
// THREAD, SEARCH, and the mailboxes after the move). Screenshots are kept in
// test/interop/.artifacts/ (git-ignored). Without the Debian packages the
// test skips and says which; under CI it fails instead.
import { test, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { INTEROP_DIR, hasTool, scratchDir, startQuire, type QuireServer } from './harness.js';
import { RawClient } from '../helpers/imap.js';
import { threadCorpus } from '../helpers/thread-corpus.js';

/** Debian's layout of roundcube-core. */
const RC_ROOT = '/var/lib/roundcube/public_html';
const RC_ETC = '/etc/roundcube';
const RC_SQL = '/usr/share/roundcube/SQL/sqlite.initial.sql';
const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join(INTEROP_DIR, '.artifacts');
/** How long a page may take to show what we wait for (a loaded CI machine). */
const PAGE_TIMEOUT_MS = 60_000;
const USER = { name: 'rcuser', password: 'rc-secret-pass-1' };
const MESSAGES = 300;
/** Roundcube's page size (its default is 50). */
const PAGE_SIZE = 50;

let quire: QuireServer | undefined;
let php: ChildProcess | undefined;
let browser: Browser | undefined;
let phpLog = '';
let missing: string | null = null;
/** IMAP commands Roundcube sent (SORT, THREAD, SEARCH, MOVE), from its debug log. */
const sent: string[] = [];

function need(): string | null {
  const lack: string[] = [];
  if (!hasTool('php')) lack.push('php-cli');
  if (!existsSync(join(RC_ROOT, 'index.php')) || !existsSync(RC_SQL)) lack.push('roundcube-core');
  if (!existsSync(join(RC_ETC, 'defaults.inc.php'))) lack.push('roundcube-core');
  if (!existsSync(CHROMIUM)) lack.push('chromium');
  return lack.length ? [...new Set(lack)].join(', ') : null;
}

function skipOrFail(t: TestContext): boolean {
  if (!missing) return false;
  if (process.env.CI) throw new Error(`Debian packages missing: ${missing}; CI must install them (.ci/run)`);
  t.skip(`needs the Debian packages: ${missing} (and roundcube-sqlite3)`);
  return true;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

async function waitForPort(port: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.connect({ port, host: '127.0.0.1' }, () => {
        c.destroy();
        resolve(true);
      });
      c.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${port}; php said:\n${phpLog}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A Roundcube configuration of its own: Quire on loopback, SQLite, logs to stdout, nothing else. */
function roundcubeConfig(dir: string, imapPort: number): string {
  const conf = join(dir, 'config');
  mkdirSync(conf, { recursive: true });
  mkdirSync(join(dir, 'temp'), { recursive: true });
  mkdirSync(join(dir, 'logs'), { recursive: true });
  copyFileSync(join(RC_ETC, 'defaults.inc.php'), join(conf, 'defaults.inc.php'));
  if (existsSync(join(RC_ETC, 'mimetypes.php'))) copyFileSync(join(RC_ETC, 'mimetypes.php'), join(conf, 'mimetypes.php'));
  const db = join(dir, 'roundcube.sqlite');
  const d = new Database(db);
  d.exec(readFileSync(RC_SQL, 'utf8'));
  d.close();
  const php = (v: string) => `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  writeFileSync(
    join(conf, 'config.inc.php'),
    `<?php
$config = [];
$config['db_dsnw'] = ${php(`sqlite:///${db}?mode=0646`)};
$config['imap_host'] = ${php(`127.0.0.1:${imapPort}`)};
$config['imap_auth_type'] = 'PLAIN';
$config['smtp_host'] = '';
$config['log_driver'] = 'stdout';
$config['log_dir'] = ${php(join(dir, 'logs') + '/')};
$config['temp_dir'] = ${php(join(dir, 'temp') + '/')};
$config['des_key'] = 'quire-test-0123456789ab';
$config['plugins'] = [];
$config['skin'] = 'elastic';
$config['enable_installer'] = false;
$config['mail_pagesize'] = ${PAGE_SIZE};
$config['message_sort_col'] = 'date';
$config['message_sort_order'] = 'DESC';
$config['autoexpand_threads'] = 2;
$config['create_default_folders'] = false;
$config['session_lifetime'] = 30;
$config['ip_check'] = false;
$config['use_https'] = false;
$config['login_rate_limit'] = 0;
$config['imap_debug'] = true;
`,
  );
  return conf;
}

before(async () => {
  missing = need();
  if (missing) return;
  quire = await startQuire([USER]);
  // 300 messages with conversations (References chains, Re:/Fwd: subjects, odd dates and addresses).
  const c = await RawClient.connect(quire.imapPort, { login: [USER.name, USER.password] });
  for (const m of threadCorpus(614, MESSAGES)) {
    const r = await c.append('INBOX', m.raw, `"${m.internalDate}"`);
    assert.match(r.tagged, /OK/, r.tagged);
  }
  await c.close();
  const dir = scratchDir('quire-roundcube-');
  const conf = roundcubeConfig(dir, quire.imapPort);
  const port = await freePort();
  php = spawn('php', ['-S', `127.0.0.1:${port}`, '-t', RC_ROOT], {
    env: { ...process.env, ROUNDCUBE_CONFIG_DIR: conf },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  php.stdout!.on('data', (d: Buffer) => {
    const text = d.toString();
    phpLog = (phpLog + text).slice(-20_000);
    // Roundcube's IMAP transcript (imap_debug): the commands it sent.
    for (const m of text.matchAll(/\bC: \S+ ((?:UID )?(?:SORT|THREAD|SEARCH|MOVE|ESEARCH)\b[^\n]*)/g)) sent.push(m[1]!);
  });
  php.stderr!.on('data', (d: Buffer) => (phpLog = (phpLog + d.toString()).slice(-20_000)));
  await waitForPort(port, 20_000);
  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  baseUrl = `http://127.0.0.1:${port}/`;
});

let baseUrl = '';

after(async () => {
  await browser?.close().catch(() => undefined);
  php?.kill('SIGTERM');
  await quire?.stop();
});

/** What Quire answers over IMAP (the reference for every page). */
async function imap<T>(fn: (c: RawClient) => Promise<T>): Promise<T> {
  const c = await RawClient.connect(quire!.imapPort, { login: [USER.name, USER.password] });
  try {
    return await fn(c);
  } finally {
    await c.close();
  }
}

async function uidsOf(c: RawClient, cmd: string): Promise<number[]> {
  const r = await c.command(cmd);
  assert.match(r.tagged, /OK/, `${cmd}: ${r.tagged}`);
  const line = r.untagged.find((l) => /^\* (SORT|SEARCH)\b/.test(l)) ?? '';
  return line.split(' ').slice(2).filter(Boolean).map(Number);
}

/** UIDs of the rows the message list shows, top to bottom. */
async function listedUids(page: Page): Promise<number[]> {
  // Roundcube's list widget keeps each row's UID on the row element.
  return page.$$eval('#messagelist tbody tr', (rows) => rows.map((r) => Number((r as unknown as { uid?: string }).uid ?? 0)).filter((n) => n > 0));
}

/** Waits until the list has finished a (re)load: rcmail is not busy and rows are there. */
async function listSettled(page: Page): Promise<void> {
  await page.waitForFunction(
    () => {
      const w = window as unknown as { rcmail?: { busy: boolean; message_list?: { rowcount: number } } };
      return !!w.rcmail && !w.rcmail.busy && (w.rcmail.message_list?.rowcount ?? 0) > 0;
    },
    { timeout: PAGE_TIMEOUT_MS },
  );
}

/** The UIDs of each top-level thread of a THREAD response, in order. */
function topLevelThreads(line: string): number[][] {
  const out: number[][] = [];
  let depth = 0;
  let cur: number[] = [];
  for (const tok of line.replace(/^\* THREAD ?/, '').match(/\(|\)|\d+/g) ?? []) {
    if (tok === '(') depth++;
    else if (tok === ')') {
      depth--;
      if (depth === 0) {
        out.push(cur);
        cur = [];
      }
    } else cur.push(Number(tok));
  }
  return out;
}

async function shot(page: Page, name: string): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, `roundcube-${name}.png`) as `${string}.png`, fullPage: true });
}

test('Roundcube in Chromium against Quire: list, sort, threads, read, search, move', { timeout: 300_000 }, async (t) => {
  if (skipOrFail(t)) return;
  const page = await browser!.newPage();
  page.setDefaultTimeout(PAGE_TIMEOUT_MS);
  await page.setViewport({ width: 1400, height: 1000 });
  try {
    // Log in.
    await page.goto(baseUrl, { waitUntil: 'domcontentloaded' });
    await page.waitForSelector('#rcmloginuser');
    await page.type('#rcmloginuser', USER.name);
    await page.type('#rcmloginpwd', USER.password);
    await Promise.all([page.waitForNavigation({ waitUntil: 'domcontentloaded' }), page.click('#rcmloginsubmit')]);
    await listSettled(page);
    await shot(page, '1-list');

    // The first page, newest first: Roundcube asks for SORT (DATE) and shows it reversed
    // (so equal dates come highest UID first, unlike SORT (REVERSE DATE): RFC 5256 §3's note on REVERSE).
    const byDate = (await imap((c) => uidsOf(c, 'EXAMINE INBOX').then(() => uidsOf(c, 'UID SORT (DATE) UTF-8 ALL')))).reverse();
    assert.equal(byDate.length, MESSAGES);
    assert.deepEqual(await listedUids(page), byDate.slice(0, PAGE_SIZE), 'date order');
    const count = await page.$eval('#rcmcountdisplay', (e) => e.textContent ?? '');
    assert.match(count, new RegExp(`\\b${MESSAGES}\\b`), `the list counts ${MESSAGES} messages: ${count}`);

    // Sort by subject, then by sender, as the column menu does.
    for (const [col, cmd] of [['subject', 'UID SORT (SUBJECT) UTF-8 ALL'], ['from', 'UID SORT (DISPLAYFROM) UTF-8 ALL']] as const) {
      // With SORT=DISPLAY Roundcube sorts the sender column by display name (RFC 5957).
      await page.evaluate((c) => (window as unknown as { rcmail: { command(a: string, b: string): void } }).rcmail.command('sort', c), col);
      await page.waitForFunction((c) => (window as unknown as { rcmail: { env: { sort_col: string } } }).rcmail.env.sort_col === c, {}, col);
      await listSettled(page);
      const order = await page.evaluate(() => (window as unknown as { rcmail: { env: { sort_order: string } } }).rcmail.env.sort_order);
      const want = await imap((c) => uidsOf(c, 'EXAMINE INBOX').then(() => uidsOf(c, cmd)));
      if (order === 'DESC') want.reverse();
      assert.deepEqual(await listedUids(page), want.slice(0, PAGE_SIZE), `${col} ${order}`);
      await shot(page, `2-sorted-${col}`);
    }

    // Threads: every message of the first page's threads appears, each thread under its root.
    await page.evaluate(() => (window as unknown as { rcmail: { set_list_options(a: null, b: string, c: string, d: number): void } }).rcmail.set_list_options(null, 'date', 'DESC', 1));
    await page.waitForFunction(() => (window as unknown as { rcmail: { env: { threading: boolean } } }).rcmail.env.threading);
    await listSettled(page);
    await shot(page, '3-threads');
    const shownInThreads = await listedUids(page);
    const threads = await imap(async (c) => {
      await c.command('EXAMINE INBOX');
      const r = await c.command('UID THREAD REFS UTF-8 ALL');
      return topLevelThreads(r.untagged.find((l) => l.startsWith('* THREAD')) ?? '');
    });
    // Roundcube shows the threads newest first (THREAD REFS orders them by their newest message,
    // Roundcube reverses that), each expanded under its root: the first rows are the last thread.
    const newest = threads[threads.length - 1]!;
    assert.deepEqual(shownInThreads.slice(0, newest.length).sort((a, b) => a - b), [...newest].sort((a, b) => a - b), 'the newest thread comes first, whole');
    const second = threads[threads.length - 2]!;
    assert.deepEqual(shownInThreads.slice(newest.length, newest.length + second.length).sort((a, b) => a - b), [...second].sort((a, b) => a - b), 'then the next one');
    await page.evaluate(() => (window as unknown as { rcmail: { set_list_options(a: null, b: string, c: string, d: number): void } }).rcmail.set_list_options(null, 'date', 'DESC', 0));
    await page.waitForFunction(() => !(window as unknown as { rcmail: { env: { threading: boolean } } }).rcmail.env.threading);
    await listSettled(page);

    // Open a message (one with a plain ASCII subject): the subject heading and the body are the message's.
    const { open, subject: want } = await imap(async (c) => {
      await c.command('EXAMINE INBOX');
      for (const uid of byDate) {
        const r = await c.command(`UID FETCH ${uid} (BODY.PEEK[HEADER.FIELDS (SUBJECT)])`);
        const subject = /Subject: ?(.*)/i.exec(r.raw)?.[1]?.trim() ?? '';
        if (/^[\x20-\x7e]{4,}$/.test(subject) && !subject.includes('=?')) return { open: uid, subject };
      }
      throw new Error('no message with a plain subject');
    });
    await page.goto(`${baseUrl}?_task=mail&_mbox=INBOX&_uid=${open}&_action=show`, { waitUntil: 'domcontentloaded' });
    await page.waitForSelector('#messagebody');
    await shot(page, '4-message');
    const shown = (await page.$eval('h2.subject', (e) => (e.textContent ?? '').replace(/\s+/g, ' ').trim())).replace(/^Subject:? ?/i, '');
    assert.ok(shown.includes(want.replace(/\s+/g, ' ')), `subject of UID ${open}: shown ${JSON.stringify(shown)}, stored ${JSON.stringify(want)}`);
    const text = await page.$eval('#messagebody', (e) => e.textContent ?? '');
    // The corpus numbers its bodies from 0 in APPEND order (UID 1 = "message 0").
    assert.match(text, new RegExp(`message ${open - 1}\\b`), 'the body of that message');

    // Search (Roundcube's default scope: subject and sender).
    await page.goto(`${baseUrl}?_task=mail&_mbox=INBOX`, { waitUntil: 'domcontentloaded' });
    await listSettled(page);
    const term = 'migration';
    await page.evaluate((q) => {
      const input = document.querySelector('#mailsearchform') as HTMLInputElement;
      input.value = q;
      (window as unknown as { rcmail: { command(a: string): void } }).rcmail.command('search');
    }, term);
    await page.waitForFunction(() => !!(window as unknown as { rcmail: { env: { search_request?: string } } }).rcmail.env.search_request);
    await listSettled(page);
    await shot(page, '5-search');
    const found = (await imap((c) => uidsOf(c, 'EXAMINE INBOX').then(() => uidsOf(c, `UID SORT (DATE) UTF-8 OR SUBJECT ${term} FROM ${term}`)))).reverse();
    assert.ok(found.length > 0);
    assert.deepEqual(await listedUids(page), found.slice(0, PAGE_SIZE), 'search results');

    // Move the first result to Archive; Quire then holds it there and not in INBOX.
    const moving = found[0]!;
    await page.evaluate((uid) => {
      const rc = (window as unknown as { rcmail: { message_list: { select(id: string): void }; command(a: string, b: string): void } }).rcmail;
      rc.message_list.select(String(uid));
      rc.command('move', 'Archive');
    }, moving);
    await page.waitForFunction((uid) => !document.getElementById(`rcmrow${uid}`), {}, moving);
    await shot(page, '6-moved');
    const after = await imap(async (c) => {
      await c.command('EXAMINE INBOX');
      const inInbox = await uidsOf(c, `UID SEARCH UID ${moving}`);
      await c.command('EXAMINE Archive');
      const archived = await c.command('UID FETCH 1:* (ENVELOPE)');
      return { inInbox, archived: archived.untagged.filter((l) => / FETCH /.test(l)).length };
    });
    assert.deepEqual(after.inInbox, [], 'gone from INBOX');
    assert.equal(after.archived, 1, 'one message in Archive');
    // Roundcube let the server sort and thread (it sorts itself when SORT / THREAD are not offered).
    assert.ok(sent.some((c) => /SORT .*\(DATE\)/.test(c)), `a SORT by date was sent: ${sent.join(' | ').slice(0, 600)}`);
    assert.ok(sent.some((c) => /SORT .*\(SUBJECT\)/.test(c)), 'a SORT by subject was sent');
    assert.ok(sent.some((c) => /SORT .*\(DISPLAYFROM\)/.test(c)), 'a SORT by display name was sent');
    assert.ok(sent.some((c) => /THREAD REFS/.test(c)), 'THREAD REFS was sent');
  } catch (e) {
    await shot(page, 'failure').catch(() => undefined);
    throw new Error(`${(e as Error).message}\n--- php / roundcube log (tail):\n${phpLog.slice(-4000)}`);
  } finally {
    await page.close();
  }
});
