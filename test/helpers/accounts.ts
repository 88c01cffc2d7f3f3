// Fresh users per test, so that tests sharing one server never see each
// other's mailboxes, the "expect OK" check the transcript tests share, and
// LIST helpers of the mailbox tests.
import assert from 'node:assert/strict';
import { provisionUser } from '../../src/cli/users.js';
import { RawClient, type Reply } from './imap.js';
import type { TestServer } from './server.js';

/** Users named `${prefix}1`, `${prefix}2`, ... with password "pw" and the default mailboxes. */
export function accounts(server: () => TestServer, prefix: string) {
  let n = 0;
  const freshUser = async (): Promise<[string, string]> => {
    const name = `${prefix}${++n}`;
    await provisionUser(server().store, name, 'pw');
    return [name, 'pw'];
  };
  /** A logged-in connection, as a fresh user unless `login` is given. */
  const connect = async (login?: [string, string]): Promise<RawClient> =>
    RawClient.connect(server().port, { login: login ?? (await freshUser()) });
  return { freshUser, connect };
}

/** Asserts a tagged OK and returns the reply. */
export function ok(r: Reply): Reply {
  assert.match(r.tagged, /^\S+ OK /, r.raw);
  return r;
}

/** Untagged lines of a LIST/LSUB, as sent (the command must succeed). */
export async function listLines(c: RawClient, args: string): Promise<string[]> {
  return ok(await c.command(`LIST ${args}`)).untagged;
}

/** What `LIST "" "*"` answers for a fresh user: INBOX and the default special-use mailboxes. */
export const DEFAULT_LIST = [
  '* LIST (\\HasNoChildren) "/" INBOX',
  '* LIST (\\HasNoChildren \\Archive) "/" Archive',
  '* LIST (\\HasNoChildren \\Drafts) "/" Drafts',
  '* LIST (\\HasNoChildren \\Junk) "/" Junk',
  '* LIST (\\HasNoChildren \\Sent) "/" Sent',
  '* LIST (\\HasNoChildren \\Trash) "/" Trash',
];
