// The authentication block of the configuration (docs/config.md
// "Authentication"): the user database, OAuth issuers, and the policy
// options, plus building the Authenticator from them for `quire serve`.

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Authenticator, type AuthLogger } from '../auth/authenticator.js';
import { OAuthValidator, SUPPORTED_ALGORITHMS, type IssuerConfig, type OAuthConfig } from '../auth/oauth.js';
import { BuiltinUserDb } from '../auth/userdb/builtin.js';
import { PasswdFileUserDb } from '../auth/userdb/passwd-file.js';
import { LdapUserDb, type LdapOptions } from '../auth/userdb/ldap.js';
import { SqlUserDb, type SqlOptions } from '../auth/userdb/sql.js';
import type { UserDb } from '../auth/userdb/types.js';
import type { MailStore } from '../store/types.js';
import { provisionExternalUser } from './users.js';

export interface AuthPolicyConfig {
  failureDelayMs: number;
  maxFailureDelayMs: number;
  mechanisms: string[];
  masterUsers: string[];
  masterSeparator: string;
  lockoutThreshold: number;
  cacheMs: number;
}

export type UserdbConfig =
  | { driver: 'builtin' }
  | { driver: 'passwd-file'; path: string; defaultScheme?: string }
  | ({ driver: 'ldap' } & Omit<LdapOptions, 'warn' | 'ca'> & { caFile?: string })
  | ({ driver: 'sql' } & Omit<SqlOptions, 'warn'>);

type Obj = Record<string, unknown>;

function obj(v: unknown, what: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${what} must be a JSON object`);
  return v as Obj;
}

function only(o: Obj, keys: string[], what: string): void {
  for (const k of Object.keys(o)) if (!keys.includes(k)) throw new Error(`${what}: unknown key "${k}" (known: ${keys.join(', ')})`);
}

function str(o: Obj, k: string, what: string, required: true): string;
function str(o: Obj, k: string, what: string, required?: false): string | undefined;
function str(o: Obj, k: string, what: string, required = false): string | undefined {
  const v = o[k];
  if (v === undefined && !required) return undefined;
  if (typeof v !== 'string' || (required && v === '')) throw new Error(`${what}.${k} must be a${required ? ' non-empty' : ''} string`);
  return v;
}

function posInt(o: Obj, k: string, what: string, max: number): number | undefined {
  const v = o[k];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) throw new Error(`${what}.${k} must be an integer 1-${max}`);
  return v;
}

function strings(o: Obj, k: string, what: string): string[] | undefined {
  const v = o[k];
  if (v === undefined) return undefined;
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list) || list.length === 0 || !list.every((x) => typeof x === 'string' && x !== '')) throw new Error(`${what}.${k} must be a string or a non-empty array of strings`);
  return list as string[];
}

/** Longest timeout an admin may configure for a user database or identity provider. */
const MAX_USERDB_TIMEOUT_MS = 60_000;
/** Largest pool. */
const MAX_POOL = 256;

export function parseUserdbConfig(raw: unknown, _where: string, baseDir: string): UserdbConfig {
  const o = obj(raw, 'userdb');
  const driver = o.driver;
  const w = `userdb (${String(driver)})`;
  switch (driver) {
    case 'builtin':
      only(o, ['driver'], w);
      return { driver };
    case 'passwd-file': {
      only(o, ['driver', 'path', 'defaultScheme'], w);
      const c: UserdbConfig = { driver, path: resolve(baseDir, str(o, 'path', 'userdb', true)) };
      const d = str(o, 'defaultScheme', 'userdb');
      if (d) c.defaultScheme = d;
      return c;
    }
    case 'ldap': {
      const keys = ['driver', 'urls', 'dnTemplate', 'bindDn', 'bindPassword', 'baseDn', 'filter', 'scope', 'nameAttribute', 'quotaStorageAttribute', 'quotaMessagesAttribute', 'aliasAttribute', 'startTls', 'caFile', 'rejectUnauthorized', 'timeoutMs', 'connectTimeoutMs', 'poolSize'];
      only(o, keys, w);
      const urls = strings(o, 'urls', 'userdb', ) ?? [];
      if (urls.length === 0) throw new Error('userdb.urls is required for ldap');
      for (const u of urls) if (!/^ldaps?:\/\/[^/]+\/?$/i.test(u)) throw new Error(`userdb.urls: ${u} is not an ldap:// or ldaps:// URL (host and port only)`);
      const c: UserdbConfig = { driver, urls };
      for (const k of ['dnTemplate', 'bindDn', 'bindPassword', 'baseDn', 'filter', 'nameAttribute', 'quotaStorageAttribute', 'quotaMessagesAttribute', 'aliasAttribute'] as const) {
        const v = str(o, k, 'userdb');
        if (v !== undefined) c[k] = v;
      }
      if (o.scope !== undefined) {
        if (o.scope !== 'sub' && o.scope !== 'one' && o.scope !== 'base') throw new Error('userdb.scope must be sub, one or base');
        c.scope = o.scope;
      }
      for (const k of ['startTls', 'rejectUnauthorized'] as const) {
        if (o[k] !== undefined && typeof o[k] !== 'boolean') throw new Error(`userdb.${k} must be true or false`);
        if (o[k] !== undefined) c[k] = o[k] as boolean;
      }
      const caFile = str(o, 'caFile', 'userdb');
      if (caFile) c.caFile = resolve(baseDir, caFile);
      const t = posInt(o, 'timeoutMs', 'userdb', MAX_USERDB_TIMEOUT_MS);
      if (t) c.timeoutMs = t;
      const ct = posInt(o, 'connectTimeoutMs', 'userdb', MAX_USERDB_TIMEOUT_MS);
      if (ct) c.connectTimeoutMs = ct;
      const p = posInt(o, 'poolSize', 'userdb', MAX_POOL);
      if (p) c.poolSize = p;
      if (!c.dnTemplate && !(c.baseDn && c.bindDn !== undefined)) throw new Error('userdb (ldap): set dnTemplate (bind mode) or baseDn and bindDn (search-then-bind; bindDn "" for an anonymous search)');
      if (c.dnTemplate && !c.dnTemplate.includes('%u')) throw new Error('userdb.dnTemplate must contain %u');
      if (c.filter && !c.filter.includes('%u')) throw new Error('userdb.filter must contain %u');
      return c;
    }
    case 'sql': {
      only(o, ['driver', 'connectionString', 'query', 'defaultScheme', 'poolSize', 'timeoutMs'], w);
      const c: UserdbConfig = { driver, connectionString: str(o, 'connectionString', 'userdb', true), query: str(o, 'query', 'userdb', true) };
      if (!c.query.includes('$1')) throw new Error('userdb.query must use $1 for the user name');
      const d = str(o, 'defaultScheme', 'userdb');
      if (d) c.defaultScheme = d;
      const p = posInt(o, 'poolSize', 'userdb', MAX_POOL);
      if (p) c.poolSize = p;
      const t = posInt(o, 'timeoutMs', 'userdb', MAX_USERDB_TIMEOUT_MS);
      if (t) c.timeoutMs = t;
      return c;
    }
    default:
      throw new Error(`userdb.driver must be builtin, passwd-file, ldap or sql, got ${JSON.stringify(driver)}`);
  }
}

export function parseOAuthConfig(raw: unknown, _where: string, baseDir: string): OAuthConfig | null {
  if (raw === null) return null;
  const o = obj(raw, 'oauth');
  only(o, ['issuers', 'introspection', 'scope', 'configurationUrl'], 'oauth');
  const c: OAuthConfig = {};
  if (o.issuers !== undefined) {
    if (!Array.isArray(o.issuers)) throw new Error('oauth.issuers must be an array');
    c.issuers = o.issuers.map((x, i) => {
      const w = `oauth.issuers[${i}]`;
      const e = obj(x, w);
      only(e, ['issuer', 'audience', 'jwks', 'algorithms', 'userClaim', 'clockSkewSeconds', 'refreshMs', 'caFile'], w);
      const jwks = str(e, 'jwks', w, true);
      const issuer: IssuerConfig = {
        issuer: str(e, 'issuer', w, true),
        audience: strings(e, 'audience', w) ?? (() => { throw new Error(`${w}.audience is required`); })(),
        jwks: /^https?:\/\//i.test(jwks) ? jwks : resolve(baseDir, jwks),
      };
      const algs = strings(e, 'algorithms', w);
      if (algs) {
        for (const a of algs) if (!(SUPPORTED_ALGORITHMS as readonly string[]).includes(a)) throw new Error(`${w}.algorithms: ${a} is not supported (${SUPPORTED_ALGORITHMS.join(', ')})`);
        issuer.algorithms = algs;
      }
      const uc = str(e, 'userClaim', w);
      if (uc) issuer.userClaim = uc;
      const skew = posInt(e, 'clockSkewSeconds', w, 3600);
      if (skew) issuer.clockSkewSeconds = skew;
      const r = posInt(e, 'refreshMs', w, 7 * 24 * 3_600_000);
      if (r) issuer.refreshMs = r;
      const ca = str(e, 'caFile', w);
      if (ca) issuer.ca = readFileSync(resolve(baseDir, ca), 'utf8');
      return issuer;
    });
  }
  if (o.introspection !== undefined) {
    const e = obj(o.introspection, 'oauth.introspection');
    only(e, ['url', 'clientId', 'clientSecret', 'userField', 'audience', 'caFile'], 'oauth.introspection');
    const w = 'oauth.introspection';
    c.introspection = { url: str(e, 'url', w, true), clientId: str(e, 'clientId', w, true), clientSecret: str(e, 'clientSecret', w, true) };
    if (!/^https?:\/\//i.test(c.introspection.url)) throw new Error(`${w}.url must be an http(s) URL`);
    const uf = str(e, 'userField', w);
    if (uf) c.introspection.userField = uf;
    const aud = str(e, 'audience', w);
    if (aud) c.introspection.audience = aud;
    const ca = str(e, 'caFile', w);
    if (ca) c.introspection.ca = readFileSync(resolve(baseDir, ca), 'utf8');
  }
  const scope = str(o, 'scope', 'oauth');
  if (scope) c.scope = scope;
  const cu = str(o, 'configurationUrl', 'oauth');
  if (cu) c.configurationUrl = cu;
  if (!c.issuers?.length && !c.introspection) throw new Error('oauth needs issuers or introspection');
  return c;
}

/** The user database a config names. */
export function openUserDb(c: UserdbConfig, store: MailStore, log: AuthLogger): UserDb {
  const warn = (m: string, f?: Record<string, unknown>) => log.warn(m, f);
  switch (c.driver) {
    case 'builtin':
      return new BuiltinUserDb(store);
    case 'passwd-file':
      return new PasswdFileUserDb({ path: c.path, ...(c.defaultScheme ? { defaultScheme: c.defaultScheme } : {}), warn });
    case 'ldap': {
      const { driver: _d, caFile, ...rest } = c;
      return new LdapUserDb({ ...rest, ...(caFile ? { ca: readFileSync(caFile, 'utf8') } : {}), warn });
    }
    case 'sql': {
      const { driver: _d, ...rest } = c;
      return new SqlUserDb({ ...rest, warn });
    }
  }
}

/** The authenticator `quire serve` runs with. */
export function buildAuthenticator(config: { auth: AuthPolicyConfig; userdb: UserdbConfig; oauth: OAuthConfig | null }, store: MailStore, log: AuthLogger): Authenticator {
  const a = config.auth;
  return new Authenticator(store, {
    baseDelayMs: a.failureDelayMs,
    maxDelayMs: a.maxFailureDelayMs,
    userdb: openUserDb(config.userdb, store, log),
    log,
    masterUsers: a.masterUsers,
    masterSeparator: a.masterSeparator,
    lockoutThreshold: a.lockoutThreshold,
    cacheMs: a.cacheMs,
    provision: (account) => provisionExternalUser(store, account.name),
    ...(config.oauth ? { bearer: new OAuthValidator(config.oauth) } : {}),
    ...(a.mechanisms.length > 0 ? { mechanisms: a.mechanisms } : {}),
  });
}
