// LIST-EXTENDED (RFC 5258): the §5 examples on their own hierarchies, over a
// real socket, with the answers the RFC gives; then the same scripts against
// the reference Dovecot, compared line by line. Normalised where the RFC lets
// servers differ: \HasChildren / \HasNoChildren may come without RETURN
// (CHILDREN) (§4: "a server MAY provide it even if the option is not
// specified"), attribute order, response order, and the special-use mailboxes
// both servers create for a new user. There are no remote mailboxes, so REMOTE
// changes nothing (§3.1: "it has no interaction with other options").
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { RawClient } from '../helpers/imap.js';

const DOVECOT_USER: [string, string] = ['testuser96', 'pass'];
const DOVECOT_PORT = Number(process.env.DOVECOT_PEER_PORT ?? 10143);
const QUIRE_USER: [string, string] = ['lx', 'secret-lx'];

let srv: TestServer;
let dovecot = false;
before(async () => {
  srv = await startTestServer({ users: [QUIRE_USER] });
  try {
    const c = await RawClient.connect(DOVECOT_PORT, { login: DOVECOT_USER });
    dovecot = /LIST-EXTENDED/.test((await c.command('CAPABILITY')).untagged.join(' '));
    await c.close();
  } catch {
    dovecot = false;
  }
});
after(async () => { await srv.stop(); });

/** `gone`: created, subscribed by `subs`, then deleted (SUBSCRIBE may refuse a missing name, RFC 9051 §6.3.7; both servers do). */
interface Hierarchy { boxes: string[]; subs: string[]; gone?: string[] }
const SPECIAL = /"\/" (Drafts|Sent|Junk|Trash|Archive)$/;

function normalise(cmd: string, lines: string[]): string[] {
  const strip = !/CHILDREN/.test(cmd);
  return lines
    .filter((l) => !SPECIAL.test(l))
    .map((l) => (strip ? l.replace(/ ?\\Has(No)?Children/, '').replace('( ', '(') : l))
    .map((l) => l.replace(/^\* LIST \(([^)]*)\)/, (_, a: string) => `* LIST (${a.split(' ').filter(Boolean).sort().join(' ')})`))
    // Dovecot leaves the CHILDINFO tag unquoted (§6 allows either form).
    .map((l) => l.replace('(CHILDINFO (', '("CHILDINFO" ('))
    .sort();
}

/** Sets up the hierarchy for `login`, runs the commands, returns normalised answers (the tagged status last). */
async function run(port: number, login: [string, string], h: Hierarchy, cmds: string[]): Promise<string[][]> {
  const c = await RawClient.connect(port, { login });
  try {
    const names = (await c.command('LIST "" "*"')).untagged.map((l) => /"\/" (.*)$/.exec(l)![1]!);
    for (const n of names.sort().reverse()) if (n !== 'INBOX') await c.command(`DELETE ${n}`);
    for (const l of (await c.command('LSUB "" "*"')).untagged) await c.command(`UNSUBSCRIBE ${/"\/" (.*)$/.exec(l)![1]}`);
    for (const b of [...h.boxes, ...(h.gone ?? [])]) await c.command(`CREATE "${b}"`);
    for (const s of h.subs) await c.command(`SUBSCRIBE "${s}"`);
    for (const g of h.gone ?? []) await c.command(`DELETE "${g}"`);
    const out: string[][] = [];
    for (const cmd of cmds) {
      const r = await c.command(cmd);
      out.push([...normalise(cmd, r.untagged.filter((l) => l.startsWith('* LIST'))), r.tagged.replace(/^\S+ (\S+).*$/, '$1')]);
    }
    return out;
  } finally {
    await c.close();
  }
}

const FRUIT: Hierarchy = {
  boxes: ['Fruit', 'Fruit/Apple', 'Fruit/Banana', 'Tofu', 'Vegetable', 'Vegetable/Broccoli', 'Vegetable/Corn'],
  subs: ['INBOX', 'Fruit/Banana', 'Fruit/Peach', 'Vegetable', 'Vegetable/Broccoli'],
  gone: ['Fruit/Peach'],
};
const FRUIT_SCRIPT: [string, string[]][] = [
  // §5 example 2 (our INBOX has no \Marked / \NoInferiors).
  ['LIST (SUBSCRIBED) "" "*"', ['* LIST (\\NonExistent \\Subscribed) "/" Fruit/Peach', '* LIST (\\Subscribed) "/" Fruit/Banana', '* LIST (\\Subscribed) "/" INBOX', '* LIST (\\Subscribed) "/" Vegetable', '* LIST (\\Subscribed) "/" Vegetable/Broccoli', 'OK']],
  // Example 3, and example 4 without remote mailboxes.
  ['LIST () "" "%" RETURN (CHILDREN)', ['* LIST (\\HasChildren) "/" Fruit', '* LIST (\\HasChildren) "/" Vegetable', '* LIST (\\HasNoChildren) "/" INBOX', '* LIST (\\HasNoChildren) "/" Tofu', 'OK']],
  ['LIST (REMOTE) "" "%" RETURN (CHILDREN)', ['* LIST (\\HasChildren) "/" Fruit', '* LIST (\\HasChildren) "/" Vegetable', '* LIST (\\HasNoChildren) "/" INBOX', '* LIST (\\HasNoChildren) "/" Tofu', 'OK']],
  // Example 5: REMOTE SUBSCRIBED = SUBSCRIBED here.
  ['LIST (REMOTE SUBSCRIBED) "" "*"', ['* LIST (\\NonExistent \\Subscribed) "/" Fruit/Peach', '* LIST (\\Subscribed) "/" Fruit/Banana', '* LIST (\\Subscribed) "/" INBOX', '* LIST (\\Subscribed) "/" Vegetable', '* LIST (\\Subscribed) "/" Vegetable/Broccoli', 'OK']],
  // Example 6: RETURN (SUBSCRIBED) lists existing mailboxes only (no Fruit/Peach).
  ['LIST (REMOTE) "" "*" RETURN (SUBSCRIBED)', ['* LIST () "/" Fruit', '* LIST () "/" Fruit/Apple', '* LIST () "/" Tofu', '* LIST () "/" Vegetable/Corn', '* LIST (\\Subscribed) "/" Fruit/Banana', '* LIST (\\Subscribed) "/" INBOX', '* LIST (\\Subscribed) "/" Vegetable', '* LIST (\\Subscribed) "/" Vegetable/Broccoli', 'OK']],
  // §3.1: RECURSIVEMATCH alone, or only with REMOTE, is BAD.
  ['LIST (RECURSIVEMATCH) "" "*"', ['BAD']],
  ['LIST (REMOTE RECURSIVEMATCH) "" "*"', ['BAD']],
  ['LIST (REMOTE RECURSIVEMATCH SUBSCRIBED) "" "Fruit"', ['* LIST () "/" Fruit ("CHILDINFO" ("SUBSCRIBED"))', 'OK']],
];

const FOO: Hierarchy = { boxes: ['Foo', 'Foo/Bar', 'Foo/Baz', 'Moo'], subs: ['Foo/Baz'] };
const FOO_SCRIPT: [string, string[]][] = [
  ['LIST "" "%" RETURN (CHILDREN)', ['* LIST (\\HasChildren) "/" Foo', '* LIST (\\HasNoChildren) "/" INBOX', '* LIST (\\HasNoChildren) "/" Moo', 'OK']],
  // Example 8 A.
  ['LIST (SUBSCRIBED) "" "*"', ['* LIST (\\Subscribed) "/" Foo/Baz', 'OK']],
  ['LIST (SUBSCRIBED) "" "%"', ['OK']],
  ['LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"', ['* LIST () "/" Foo ("CHILDINFO" ("SUBSCRIBED"))', 'OK']],
  // A1.
  ['SUBSCRIBE Foo', ['OK']],
  ['LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"', ['* LIST (\\Subscribed) "/" Foo ("CHILDINFO" ("SUBSCRIBED"))', 'OK']],
  // C: Foo and Moo subscribed, no subscribed child.
  ['UNSUBSCRIBE Foo/Baz', ['OK']],
  ['SUBSCRIBE Moo', ['OK']],
  ['LIST (SUBSCRIBED RECURSIVEMATCH) "" "%" RETURN (CHILDREN)', ['* LIST (\\HasChildren \\Subscribed) "/" Foo', '* LIST (\\HasNoChildren \\Subscribed) "/" Moo', 'OK']],
  // B: nothing subscribed.
  ['UNSUBSCRIBE Foo', ['OK']],
  ['UNSUBSCRIBE Moo', ['OK']],
  ['LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"', ['OK']],
];

// Example 9 (qux2 exists here: CREATE made the superior, RFC 9051 §6.3.4 SHOULD; Dovecot leaves it \Noselect).
const NINE: Hierarchy = {
  boxes: ['foo2', 'foo2/bar1', 'foo2/bar2', 'baz2', 'baz2/bar2', 'baz2/bar22', 'baz2/bar222', 'eps2', 'eps2/mamba', 'qux2/bar2'],
  subs: ['foo2/bar1', 'foo2/bar2', 'baz2/bar2', 'baz2/bar22', 'baz2/bar222', 'eps2', 'eps2/mamba', 'qux2/bar2'],
};
const NINE_SCRIPT: [string, string[]][] = [
  ['LIST (RECURSIVEMATCH SUBSCRIBED) "" "*2"', [
    '* LIST () "/" foo2 ("CHILDINFO" ("SUBSCRIBED"))', '* LIST (\\Subscribed) "/" baz2/bar2', '* LIST (\\Subscribed) "/" baz2/bar22', '* LIST (\\Subscribed) "/" baz2/bar222',
    '* LIST (\\Subscribed) "/" eps2 ("CHILDINFO" ("SUBSCRIBED"))', '* LIST (\\Subscribed) "/" foo2/bar2', '* LIST (\\Subscribed) "/" qux2/bar2', 'OK']],
];

// Example 10, and 8 A2 with a subscribed name under a superior that does not exist.
const TEN: Hierarchy = { boxes: ['foo', 'Moo'], subs: ['foo/bar', 'Ghost/Baz'], gone: ['foo/bar', 'Ghost/Baz', 'Ghost'] };
const TEN_SCRIPT: [string, string[]][] = [
  ['LIST "" ("foo" "foo/*")', ['* LIST () "/" foo', 'OK']],
  ['LIST (SUBSCRIBED) "" "foo/*"', ['* LIST (\\NonExistent \\Subscribed) "/" foo/bar', 'OK']],
  ['LIST (SUBSCRIBED RECURSIVEMATCH) "" foo RETURN (CHILDREN)', ['* LIST (\\HasNoChildren) "/" foo ("CHILDINFO" ("SUBSCRIBED"))', 'OK']],
  ['LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"', ['* LIST () "/" foo ("CHILDINFO" ("SUBSCRIBED"))', '* LIST (\\NonExistent) "/" Ghost ("CHILDINFO" ("SUBSCRIBED"))', 'OK']],
];

/**
 * Where Dovecot 2.3 answers otherwise than the RFC's example: after foo/bar
 * was deleted it still says foo \HasChildren (its Maildir keeps the folder's
 * directory); §5 example 10 shows \HasNoChildren, as we answer.
 */
const DOVECOT_DIFFERS = new Set(['LIST (SUBSCRIBED RECURSIVEMATCH) "" foo RETURN (CHILDREN)']);

const SCRIPTS: [string, Hierarchy, [string, string[]][]][] = [['fruit', FRUIT, FRUIT_SCRIPT], ['foo', FOO, FOO_SCRIPT], ['nine', NINE, NINE_SCRIPT], ['ten', TEN, TEN_SCRIPT]];

for (const [name, h, script] of SCRIPTS) {
  test(`RFC 5258 §5 examples (${name}) answer as the RFC shows`, async () => {
    const got = await run(srv.port, QUIRE_USER, h, script.map(([c]) => c));
    script.forEach(([cmd, want], i) => assert.deepEqual(got[i], [...want.slice(0, -1)].sort().concat(want.slice(-1)), cmd));
  });

  test(`RFC 5258 §5 examples (${name}) answer as Dovecot does`, async (t) => {
    if (!dovecot) {
      t.skip(`no Dovecot peer on port ${DOVECOT_PORT} (dovecot-peer start; DOVECOT_PEER_PORT)`);
      return;
    }
    const cmds = script.map(([c]) => c);
    const theirs = await run(DOVECOT_PORT, DOVECOT_USER, h, cmds);
    const ours = await run(srv.port, QUIRE_USER, h, cmds);
    cmds.forEach((c, i) => {
      if (!DOVECOT_DIFFERS.has(c)) assert.deepEqual(ours[i], theirs[i], c);
    });
  });
}
