// Multi-connection transcripts (test/scripts/*.imapscript): the format, its
// parser and a runner that plays one script against any IMAP server. The same
// script runs against Quire and against a reference Dovecot, so the Dovecot run
// checks that the transcript describes real, RFC-allowed behaviour and not just
// what Quire happens to do.
//
// Format, one instruction per line:
//
//   # comment                       blank lines and comments are ignored
//   A: a1 SELECT ${MBOX}            connection A sends this line (CRLF added)
//   A< * 3 EXISTS                   A must receive this line, in this order
//   A<> * OK [UIDNEXT 4] ${*}       ... this line, in any position
//   A<? * ${#} RECENT               ... may receive lines like this (any number)
//   A<| * OK [HIGHESTMODSEQ ${#}] ${*}   at least one line of the block must match
//                                   one of its <| lines (a line matched
//                                   otherwise, e.g. the tagged reply, counts)
//   A< a1 OK ${*}                   the tagged reply ends the expectation block
//
// Connections are named by one capital letter; each is opened and logged in
// (all as the same user) before the script starts. Consecutive expectation
// lines of one connection form a block. A block that names the tag of a
// command in flight is read up to that tagged reply; any other block (IDLE's
// continuation, pushed responses) is read until its required lines have all
// arrived. Every received line must match a line of the block, else the
// script fails: a response the server should not have sent is an error.
//
// Placeholders, in expected lines and (where bound) in sent lines:
//   ${*}            any text            ${#}          a number
//   ${/re/}         a JavaScript regular expression
//   ${name}         first use captures a number; later uses must equal it
//                   (in a sent line: the captured value)
//   ${name/re/}     first use captures what `re` matches
//   ${name>other}   captures a number that must be greater than ${other}
//   ${flags: \Seen \Recent?}   a flag list's contents in any order; `?` marks
//                   a flag that may be absent (flag lists are sets)
//   ${MBOX}         the script's mailbox (fresh for every run)
//   ${CRLF}         CR LF (literal data inside a response line)
//   ${MSG n}        (sent lines only) message n (test/helpers/imap.ts) as a LITERAL+ literal
//
// An expected untagged FETCH that names exactly the data items a received
// FETCH has matches them in any order (RFC 9051 §7.5.2 fixes none).
//
// Directives:
//   @append N [(flags)]   a hidden setup connection appends N more messages
//                         (numbered on from 1 across the script), then
//                         selects the mailbox to claim their \Recent flag
//   @ignore PATTERN       lines matching PATTERN are allowed everywhere
//   @quiet A [ms]         A receives nothing within ms (default 300)
//   @sleep ms             wait
//
// A line sent as exactly `DONE` (IDLE) continues the command in flight
// instead of starting one.
import { RawClient, message } from '../helpers/imap.js';

export type Mode = 'ordered' | 'any' | 'optional' | 'oneof';

export type Step =
  | { kind: 'send'; conn: string; text: string; line: number }
  | { kind: 'expect'; conn: string; mode: Mode; pattern: string; line: number }
  | { kind: 'append'; count: number; flags: string; line: number }
  | { kind: 'ignore'; pattern: string; line: number }
  | { kind: 'quiet'; conn: string; ms: number; line: number }
  | { kind: 'sleep'; ms: number; line: number };

export interface Script {
  name: string;
  steps: Step[];
  connections: string[];
}

export class ScriptError extends Error {}

export function parseScript(name: string, text: string): Script {
  const steps: Step[] = [];
  const conns = new Set<string>();
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i];
    const line = i + 1;
    if (/^\s*(#|$)/.test(raw)) continue;
    let m: RegExpExecArray | null;
    if ((m = /^@(\w+)\s*(.*)$/.exec(raw))) {
      const [, d, rest] = m;
      if (d === 'append') {
        const a = /^(\d+)\s*(\(.*\))?$/.exec(rest.trim());
        if (!a) throw new ScriptError(`${name}:${line}: @append N [(flags)]`);
        steps.push({ kind: 'append', count: Number(a[1]), flags: a[2] ?? '', line });
      } else if (d === 'ignore') steps.push({ kind: 'ignore', pattern: rest, line });
      else if (d === 'quiet') {
        const q = /^([A-Z])(?:\s+(\d+))?$/.exec(rest.trim());
        if (!q) throw new ScriptError(`${name}:${line}: @quiet CONN [ms]`);
        conns.add(q[1]);
        steps.push({ kind: 'quiet', conn: q[1], ms: q[2] ? Number(q[2]) : 300, line });
      } else if (d === 'sleep') steps.push({ kind: 'sleep', ms: Number(rest.trim()), line });
      else throw new ScriptError(`${name}:${line}: unknown directive @${d}`);
    } else if ((m = /^([A-Z]):\s?(.*)$/.exec(raw))) {
      conns.add(m[1]);
      steps.push({ kind: 'send', conn: m[1], text: m[2], line });
    } else if ((m = /^([A-Z])(<>|<\?|<\||<)\s?(.*)$/.exec(raw))) {
      conns.add(m[1]);
      const mode: Mode = m[2] === '<' ? 'ordered' : m[2] === '<>' ? 'any' : m[2] === '<|' ? 'oneof' : 'optional';
      steps.push({ kind: 'expect', conn: m[1], mode, pattern: m[3], line });
    } else throw new ScriptError(`${name}:${line}: cannot parse: ${raw}`);
  }
  return { name, steps, connections: [...conns].sort() };
}

// ------------------------------------------------------------------ patterns

interface Compiled {
  re: RegExp;
  /** Capture group (named qgN, so groups inside ${/re/} do not shift them) -> variable to bind (and the variable it must exceed). */
  binds: { group: number; name: string; greaterThan?: string }[];
  /** Capture group number -> a check of what it matched (flag sets). */
  checks: { group: number; ok: (text: string) => boolean }[];
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Split text into literal parts and `${...}` tokens (a token may hold /regex/ with braces). */
function tokens(text: string): ({ lit: string } | { tok: string })[] {
  const out: ({ lit: string } | { tok: string })[] = [];
  let i = 0;
  while (i < text.length) {
    const start = text.indexOf('${', i);
    if (start < 0) {
      out.push({ lit: text.slice(i) });
      break;
    }
    if (start > i) out.push({ lit: text.slice(i, start) });
    const body = text.slice(start + 2);
    const re = /^(\w*)\//.exec(body);
    let end: number;
    if (re) {
      end = body.indexOf('/}', re[0].length);
      if (end < 0) throw new ScriptError(`unterminated \${.../re/} in: ${text}`);
      end += 1;
    } else {
      end = body.indexOf('}');
      if (end < 0) throw new ScriptError(`unterminated \${ in: ${text}`);
    }
    out.push({ tok: body.slice(0, end) });
    i = start + 2 + end + 1;
  }
  return out;
}

export function compilePattern(pattern: string, vars: ReadonlyMap<string, string>): Compiled {
  let src = '';
  let group = 0;
  const binds: Compiled['binds'] = [];
  const checks: Compiled['checks'] = [];
  const local = new Map<string, number>();
  for (const t of tokens(pattern)) {
    if ('lit' in t) {
      src += escapeRe(t.lit);
      continue;
    }
    const tok = t.tok;
    let m: RegExpExecArray | null;
    if (tok === '*') src += '.*';
    else if (tok === '#') src += '\\d+';
    else if (tok === 'CRLF') src += '\\r\\n';
    else if ((m = /^\/(.*)\/$/s.exec(tok))) src += `(?:${m[1]})`;
    else if ((m = /^flags:(.*)$/s.exec(tok))) {
      group++;
      checks.push({ group, ok: flagSet(m[1]) });
      src += `(?<qg${group}>[^()]*)`;
    }
    else if ((m = /^(\w+)(?:\/(.*)\/|>(\w+))?$/s.exec(tok))) {
      const [, name, re, gt] = m;
      if (vars.has(name)) src += escapeRe(vars.get(name)!);
      else if (local.has(name)) src += `\\k<qg${local.get(name)}>`;
      else {
        if (gt !== undefined && !vars.has(gt)) throw new ScriptError(`\${${tok}}: ${gt} is not bound`);
        group++;
        local.set(name, group);
        binds.push({ group, name, greaterThan: gt });
        src += `(?<qg${group}>${re ?? '\\d+'})`;
      }
    } else throw new ScriptError(`bad placeholder \${${tok}}`);
  }
  return { re: new RegExp(`^${src}$`, 's'), binds, checks };
}

/** `${flags: \\Seen \\Recent?}`: the same flags in any order (case-insensitive); `?` marks an optional one. */
function flagSet(spec: string): (text: string) => boolean {
  const want = spec.trim().split(/\s+/).filter(Boolean);
  const required = want.filter((f) => !f.endsWith('?')).map((f) => f.toLowerCase());
  const optional = want.filter((f) => f.endsWith('?')).map((f) => f.slice(0, -1).toLowerCase());
  return (text) => {
    const got = text.split(' ').filter(Boolean).map((f) => f.toLowerCase());
    if (new Set(got).size !== got.length) return false;
    return required.every((f) => got.includes(f)) && got.every((f) => required.includes(f) || optional.includes(f));
  };
}

/**
 * The items of a FETCH response's attribute list ("UID 2 FLAGS (\\Seen)" ->
 * [UID 2] [FLAGS (\\Seen)]), or null if it does not parse. Values are atoms,
 * quoted strings, literals (inline, as RawClient keeps them) or parenthesised lists.
 */
export function fetchItems(atts: string): { name: string; text: string }[] | null {
  const out: { name: string; text: string }[] = [];
  let i = 0;
  while (i < atts.length) {
    const nm = /^[A-Za-z0-9.]+(?:\[[^\]]*\])?(?:<[\d.]+>)? /.exec(atts.slice(i));
    if (!nm) return null;
    const start = i;
    i += nm[0].length;
    let depth = 0;
    for (;;) {
      if (i >= atts.length) {
        if (depth) return null;
        break;
      }
      const ch = atts[i];
      if (ch === '"') {
        i++;
        while (i < atts.length && atts[i] !== '"') i += atts[i] === '\\' ? 2 : 1;
        i++;
      } else if (ch === '{') {
        const lit = /^\{(\d+)\}\r\n/.exec(atts.slice(i));
        if (!lit) return null;
        i += lit[0].length + Number(lit[1]);
      } else if (ch === '(') {
        depth++;
        i++;
      } else if (ch === ')') {
        depth--;
        i++;
      } else if (ch === ' ' && depth === 0) break;
      else i++;
      if (depth === 0 && (i >= atts.length || atts[i] === ' ')) break;
    }
    out.push({ name: nm[0].slice(0, -1).toUpperCase(), text: atts.slice(start, i) });
    if (atts[i] === ' ') i++;
  }
  return out;
}

const FETCH_LINE = /^(\* \S+ FETCH \()(.*)\)$/s;

/**
 * FETCH data items may come in any order (RFC 9051 §7.5.2). When a pattern
 * names exactly the items the line has, put the line's items in the
 * pattern's order before matching.
 */
function reorderFetch(pattern: string, line: string): string {
  const lm = FETCH_LINE.exec(line);
  // An anonymous ${/re/} stands for optional text (an item the server may add), others for a value.
  const pm = FETCH_LINE.exec(pattern.replaceAll('${CRLF}', '\r\n').replace(/\$\{\/[^}]*\/\}/g, '').replace(/\$\{[^}]*\}/g, 'X'));
  if (!lm || !pm) return line;
  const li = fetchItems(lm[2]);
  const pi = fetchItems(pm[2]);
  if (!li || !pi || li.length !== pi.length) return line;
  const byName = new Map(li.map((x) => [x.name, x.text]));
  if (byName.size !== li.length || !pi.every((x) => byName.has(x.name))) return line;
  return `${lm[1]}${pi.map((x) => byName.get(x.name)).join(' ')})`;
}

/** Match `line` against `pattern`; on success, the new bindings (not yet applied). */
export function matchLine(pattern: string, line: string, vars: ReadonlyMap<string, string>): Map<string, string> | null {
  const c = compilePattern(pattern, vars);
  const m = c.re.exec(reorderFetch(pattern, line));
  if (!m) return null;
  const got = (group: number) => m.groups![`qg${group}`];
  if (!c.checks.every((k) => k.ok(got(k.group)))) return null;
  const out = new Map<string, string>();
  for (const b of c.binds) {
    const v = got(b.group);
    if (b.greaterThan !== undefined && !(BigInt(v) > BigInt(vars.get(b.greaterThan)!))) return null;
    out.set(b.name, v);
  }
  return out;
}

/** A sent line with its placeholders replaced. `${MSG n}` becomes a LITERAL+ literal. */
export function expandSend(text: string, vars: ReadonlyMap<string, string>): Buffer {
  const parts: Buffer[] = [];
  for (const t of tokens(text)) {
    if ('lit' in t) {
      parts.push(Buffer.from(t.lit, 'utf8'));
      continue;
    }
    const msg = /^MSG (\d+)$/.exec(t.tok);
    if (msg) {
      const body = Buffer.from(message(Number(msg[1])), 'utf8');
      parts.push(Buffer.from(`{${body.length}+}\r\n`), body);
    } else if (t.tok === 'CRLF') parts.push(Buffer.from('\r\n'));
    else if (vars.has(t.tok)) parts.push(Buffer.from(vars.get(t.tok)!, 'utf8'));
    else throw new ScriptError(`\${${t.tok}} is not bound in a sent line`);
  }
  return Buffer.concat(parts);
}

// ------------------------------------------------------------------ runner

export interface Target {
  /** For messages: "quire" or "dovecot". */
  name: string;
  port: number;
  user: string;
  password: string;
  /** How long to wait for one expected line (IDLE pushes included). */
  timeoutMs?: number;
}

interface Expect {
  mode: Mode;
  pattern: string;
  line: number;
}

/** QUIRE_SCRIPT_TRACE=1 prints every line sent and received. */
const TRACE = !!process.env.QUIRE_SCRIPT_TRACE;

const tagOf = (text: string): string | null => (/^done$/i.test(text.trim()) ? null : (text.split(' ')[0] ?? null));

/**
 * Run `script` against `target` in the fresh mailbox `mailbox` (created here,
 * deleted afterwards). Throws a ScriptError naming the script line on the first
 * difference, with what each connection received for that block.
 */
export async function runScript(script: Script, target: Target, mailbox: string): Promise<void> {
  const timeout = target.timeoutMs ?? 5000;
  const login: [string, string] = [target.user, target.password];
  const setup = await RawClient.connect(target.port, { login });
  const conns = new Map<string, RawClient>();
  const inFlight = new Map<string, Set<string>>();
  const vars = new Map<string, string>([['MBOX', mailbox]]);
  const ignores: string[] = [];
  let nextMessage = 1;
  const where = (line: number) => `${script.name}:${line} [${target.name}]`;
  try {
    const cr = await setup.command(`CREATE ${mailbox}`);
    if (!/^\S+ OK/.test(cr.tagged)) throw new ScriptError(`CREATE ${mailbox}: ${cr.tagged}`);
    for (const c of script.connections) {
      conns.set(c, await RawClient.connect(target.port, { login }));
      inFlight.set(c, new Set());
    }
    const steps = script.steps;
    for (let i = 0; i < steps.length; ) {
      const st = steps[i];
      if (st.kind === 'expect') {
        const block: Expect[] = [];
        while (i < steps.length) {
          const s = steps[i];
          if (s.kind !== 'expect' || s.conn !== st.conn) break;
          block.push(s);
          i++;
        }
        await runBlock(conns.get(st.conn)!, st.conn, block, inFlight.get(st.conn)!, vars, ignores, timeout, where);
        continue;
      }
      i++;
      if (st.kind === 'send') {
        const tag = tagOf(st.text);
        if (tag) inFlight.get(st.conn)!.add(tag);
        if (TRACE) console.log(`${where(st.line)} ${st.conn}: ${st.text}`);
        conns.get(st.conn)!.write(Buffer.concat([expandSend(st.text, vars), Buffer.from('\r\n')]));
      } else if (st.kind === 'append') {
        for (let k = 0; k < st.count; k++) {
          const r = await setup.append(mailbox, message(nextMessage++), st.flags);
          if (!/^\S+ OK/.test(r.tagged)) throw new ScriptError(`${where(st.line)}: @append: ${r.tagged}`);
        }
        // The setup connection claims \Recent (rev1) where it can, so that
        // transcript sessions see the same flags on every server.
        await setup.command(`SELECT ${mailbox}`);
        await setup.command('UNSELECT');
      } else if (st.kind === 'ignore') ignores.push(st.pattern);
      else if (st.kind === 'sleep') await new Promise((r) => setTimeout(r, st.ms));
      else if (st.kind === 'quiet') {
        let got: string | null = null;
        try {
          got = await conns.get(st.conn)!.readLine(st.ms);
        } catch (e) {
          if (!/^timeout/.test((e as Error).message)) throw e;
        }
        if (got !== null) throw new ScriptError(`${where(st.line)}: ${st.conn} should have received nothing, got: ${got}`);
      }
    }
  } finally {
    for (const c of conns.values()) {
      try {
        await Promise.race([c.command('LOGOUT', 'zz'), new Promise((r) => setTimeout(r, 1000))]);
      } catch {
        /* already gone */
      }
      await c.close();
    }
    try {
      await setup.command(`DELETE ${mailbox}`);
    } finally {
      await setup.close();
    }
  }
}

async function runBlock(
  client: RawClient,
  conn: string,
  block: Expect[],
  inFlight: Set<string>,
  vars: Map<string, string>,
  ignores: readonly string[],
  timeout: number,
  where: (line: number) => string,
): Promise<void> {
  const ordered = block.filter((e) => e.mode === 'ordered');
  const any = block.filter((e) => e.mode === 'any');
  const optional = block.filter((e) => e.mode === 'optional');
  const oneOf = block.filter((e) => e.mode === 'oneof');
  let oneOfMet = oneOf.length === 0;
  // The block ends at the tagged reply of a command in flight that it names.
  const tag = [...inFlight].find((t) => block.some((e) => (e.mode === 'ordered' || e.mode === 'any') && e.pattern.startsWith(`${t} `))) ?? null;
  const received: string[] = [];
  let next = 0;
  const fail = (why: string): never => {
    const missing = [...ordered.slice(next), ...any, ...(oneOfMet ? [] : oneOf)].map(
      (e) => `    ${conn}${e.mode === 'any' ? '<>' : e.mode === 'oneof' ? '<|' : '<'} ${e.pattern}   (line ${e.line})`,
    );
    throw new ScriptError(
      `${where(block[0].line)}: ${why}\n  ${conn} received:\n${received.map((l) => `    ${JSON.stringify(l)}`).join('\n') || '    (nothing)'}\n  still expected:\n${missing.join('\n') || '    (nothing)'}`,
    );
  };
  const apply = (b: Map<string, string>) => {
    for (const [k, v] of b) vars.set(k, v);
  };
  for (;;) {
    const done = next === ordered.length && any.length === 0 && oneOfMet;
    if (done && tag === null) return;
    let line: string;
    try {
      line = await client.readLine(timeout);
    } catch (e) {
      return fail(`no more lines (${(e as Error).message.split(';')[0]})`);
    }
    received.push(line);
    if (TRACE) console.log(`${where(block[0].line)} ${conn}< ${line}`);
    let b: Map<string, string> | null = null;
    let oneOfHit = false;
    for (const e of oneOf) {
      const ob = matchLine(e.pattern, line, vars);
      if (ob) {
        apply(ob);
        oneOfMet = oneOfHit = true;
        break;
      }
    }
    if (next < ordered.length && (b = matchLine(ordered[next].pattern, line, vars))) {
      next++;
      apply(b);
    } else {
      const k = any.findIndex((e) => (b = matchLine(e.pattern, line, vars)) !== null);
      if (k >= 0) {
        any.splice(k, 1);
        apply(b!);
      } else if (!oneOfHit && ![...optional.map((e) => e.pattern), ...ignores].some((p) => matchLine(p, line, vars))) {
        return fail(`unexpected line ${JSON.stringify(line)}`);
      }
    }
    if (tag !== null && line.startsWith(`${tag} `)) {
      inFlight.delete(tag);
      if (next < ordered.length || any.length > 0 || !oneOfMet) return fail('tagged reply before every expected line');
      return;
    }
  }
}
