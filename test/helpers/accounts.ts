// Fresh users per test, so that tests sharing one server never see each
// other's mailboxes, and the "expect OK" check the transcript tests share.
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
