// The `xauth` and `modeConfig` sections of a connection (remote access, Cisco Easy VPN style).
//   server: "xauth": { "users": "users.txt", "maxAttempts": 3, "blockAfter": 3, "blockFor": "30s" }
//           "modeConfig": { "pool": "10.8.0.0/24", "dns": [...], "nbns": [...], "splitInclude": [...],
//                           "banner": "...", "netmask": "255.255.255.0", "mode": "pull" | "push" }
//   client: "xauth": { "user": "alice", "passwordEnv": "IKE_XAUTH_PASSWORD" }   (or "password", "passwordFile")
//           "modeConfig": { "client": "pull" | "push" }
import { readFileSync } from 'node:fs';
import { inspect } from 'node:util';
import path from 'node:path';
import { AddressPool, ipv4Bytes, parseSubnet, type Ipv4Subnet } from '../../ike/modecfg.js';
import { UserFile } from '../../ike/xauth-users.js';
import { checkKeys, integer, join, object, oneOf, string, stringList, type Problems } from './check.js';
import { parseDuration } from './values.js';

export type XauthConfig =
  | { role: 'server'; usersFile: string; users: UserFile; maxAttempts: number; blockAfter: number; blockSeconds: number }
  | { role: 'client'; user: string; password: string };

export type ModeConfigConfig =
  | { role: 'server'; pool?: string; netmask?: string; dns: string[]; nbns: string[]; splitInclude: Ipv4Subnet[]; banner?: string; mode: 'pull' | 'push' }
  | { role: 'client'; mode: 'pull' | 'push' };

export const XAUTH_KEYS = ['users', 'maxAttempts', 'blockAfter', 'blockFor', 'user', 'password', 'passwordEnv', 'passwordFile'];
export const MODECFG_KEYS = ['pool', 'netmask', 'dns', 'nbns', 'splitInclude', 'banner', 'mode', 'client'];

export function parseXauth(p: Problems, at: string, v: unknown, opts: { baseDir: string; env: Readonly<Record<string, string | undefined>> }): XauthConfig | undefined {
  if (v === undefined) return undefined;
  const o = object(p, at, v);
  if (!o) return undefined;
  checkKeys(p, at, o, XAUTH_KEYS);
  if (o.users !== undefined) {
    const file = string(p, join(at, 'users'), o.users);
    const maxAttempts = integer(p, join(at, 'maxAttempts'), o.maxAttempts, 1, 10, 3);
    const blockAfter = integer(p, join(at, 'blockAfter'), o.blockAfter, 1, 1000, 3);
    let blockSeconds = 30;
    if (o.blockFor !== undefined) {
      const d = parseDuration(o.blockFor);
      if (d.ok) blockSeconds = d.value;
      else p.error(join(at, 'blockFor'), d.error);
    }
    if (o.user !== undefined) p.error(join(at, 'user'), 'a server ("users") does not log in itself; remove "user"');
    if (file === undefined) return undefined;
    const full = path.resolve(opts.baseDir, file);
    let users: UserFile;
    try {
      users = new UserFile(readFileSync(full, 'utf8'), full);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      return p.error(join(at, 'users'), code ? `cannot read ${full} (${code})` : (e as Error).message);
    }
    return { role: 'server', usersFile: full, users, maxAttempts, blockAfter, blockSeconds };
  }
  if (o.user === undefined) return p.error(at, 'set "users" (a user file, as server) or "user" with a password (as client)');
  const user = string(p, join(at, 'user'), o.user);
  const given = (['password', 'passwordEnv', 'passwordFile'] as const).filter((s) => o[s] !== undefined);
  if (given.length !== 1) return p.error(at, `set exactly one of password, passwordEnv, passwordFile${given.length ? ` (got ${given.join(' and ')})` : ''}`);
  const key = given[0]!;
  const value = string(p, join(at, key), o[key], key === 'password');
  if (value === undefined || user === undefined) return undefined;
  let password: string;
  if (key === 'password') password = value;
  else if (key === 'passwordEnv') {
    const e = Object.hasOwn(opts.env, value) ? opts.env[value] : undefined;
    if (typeof e !== 'string') return p.error(join(at, key), `environment variable ${value} is not set`);
    password = e;
  } else {
    try {
      password = readFileSync(path.resolve(opts.baseDir, value), 'utf8').replace(/\r?\n$/, '');
    } catch (e) {
      return p.error(join(at, key), `cannot read ${path.resolve(opts.baseDir, value)} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  const cfg: XauthConfig = { role: 'client', user, password };
  // The password never shows in a logged config.
  const shown = () => ({ role: 'client', user, password: '<redacted>' });
  Object.defineProperty(cfg, 'toJSON', { value: shown, enumerable: false });
  Object.defineProperty(cfg, inspect.custom, { value: shown, enumerable: false });
  return cfg;
}

function addresses(p: Problems, at: string, v: unknown): string[] {
  if (v === undefined) return [];
  const out: string[] = [];
  for (const [where, s] of stringList(p, at, v) ?? []) {
    try {
      ipv4Bytes(s);
      out.push(s);
    } catch (e) {
      p.error(where, (e as Error).message);
    }
  }
  return out;
}

export function parseModeConfig(p: Problems, at: string, v: unknown): ModeConfigConfig | undefined {
  if (v === undefined) return undefined;
  const o = object(p, at, v);
  if (!o) return undefined;
  checkKeys(p, at, o, MODECFG_KEYS);
  if (o.client !== undefined) {
    const mode = oneOf(p, join(at, 'client'), o.client, ['pull', 'push'] as const, 'pull');
    for (const k of MODECFG_KEYS) if (k !== 'client' && o[k] !== undefined) p.error(join(at, k), 'is a server setting; a client ("client") only receives');
    return { role: 'client', mode };
  }
  let pool: string | undefined;
  if (o.pool !== undefined) {
    const s = string(p, join(at, 'pool'), o.pool);
    if (s !== undefined) {
      try {
        new AddressPool(s);
        pool = s;
      } catch (e) {
        p.error(join(at, 'pool'), `${(e as Error).message} (a.b.c.d/n or a.b.c.d-e.f.g.h)`);
      }
    }
  }
  const netmask = o.netmask === undefined ? undefined : addresses(p, join(at, 'netmask'), o.netmask)[0];
  const splitInclude: Ipv4Subnet[] = [];
  if (o.splitInclude !== undefined) {
    for (const [where, s] of stringList(p, join(at, 'splitInclude'), o.splitInclude) ?? []) {
      try {
        splitInclude.push(parseSubnet(s));
      } catch (e) {
        p.error(where, (e as Error).message);
      }
    }
  }
  const banner = o.banner === undefined ? undefined : string(p, join(at, 'banner'), o.banner);
  const mode = oneOf(p, join(at, 'mode'), o.mode, ['pull', 'push'] as const, 'pull');
  return {
    role: 'server',
    ...(pool !== undefined ? { pool } : {}),
    ...(netmask !== undefined ? { netmask } : {}),
    dns: addresses(p, join(at, 'dns'), o.dns),
    nbns: addresses(p, join(at, 'nbns'), o.nbns),
    splitInclude,
    ...(banner !== undefined ? { banner } : {}),
    mode,
  };
}
