// Server-side helpers for XAUTH: the failed-login limiter and the built-in user file.
//
// User file: one `user:scrypt$N$r$p$salthex$hashhex` line per user ('#' comments and blank lines
// allowed). Passwords are checked with node:crypto scrypt and a constant-time compare; an unknown user
// costs the same scrypt as a known one, so timing does not tell which user names exist.
import { randomBytes, scrypt as scryptCb, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';

export interface LoginLimiterOptions {
  /** Failures tolerated before the peer is refused (default 3). */
  maxFailures?: number;
  /** How long a peer is refused after that (default 30 s); the failure count restarts afterwards. */
  blockMs?: number;
  /** Clock in ms (default Date.now); tests inject their own. */
  clock?: () => number;
  /** Peers tracked at most (oldest forgotten first; default 10000). */
  maxPeers?: number;
}

/** Failed XAUTH logins per peer address: after `maxFailures`, refuse for `blockMs`. */
export class LoginLimiter {
  private readonly maxFailures: number;
  private readonly blockMs: number;
  private readonly clock: () => number;
  private readonly maxPeers: number;
  private readonly peers = new Map<string, { failures: number; blockedUntil: number }>();

  constructor(options: LoginLimiterOptions = {}) {
    this.maxFailures = options.maxFailures ?? 3;
    this.blockMs = options.blockMs ?? 30_000;
    this.clock = options.clock ?? Date.now;
    this.maxPeers = options.maxPeers ?? 10_000;
    if (!(this.maxFailures >= 1) || !(this.blockMs >= 0)) throw new RangeError('LoginLimiter: maxFailures >= 1 and blockMs >= 0');
  }

  /** 0 when the peer may try, else the ms until it may. */
  retryAfterMs(peer: string): number {
    const p = this.peers.get(peer);
    if (p === undefined || p.blockedUntil === 0) return 0;
    const left = p.blockedUntil - this.clock();
    if (left > 0) return left;
    this.peers.delete(peer);
    return 0;
  }

  allowed(peer: string): boolean {
    return this.retryAfterMs(peer) === 0;
  }

  failure(peer: string): void {
    const p = this.peers.get(peer) ?? { failures: 0, blockedUntil: 0 };
    this.peers.delete(peer);
    p.failures++;
    if (p.failures >= this.maxFailures) p.blockedUntil = this.clock() + this.blockMs;
    this.peers.set(peer, p);
    if (this.peers.size > this.maxPeers) this.peers.delete(this.peers.keys().next().value!);
  }

  success(peer: string): void {
    this.peers.delete(peer);
  }
}

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

export const DEFAULT_SCRYPT: ScryptParams = { N: 16384, r: 8, p: 1 };
const KEY_LENGTH = 32;

function scrypt(password: Buffer, salt: Buffer, keylen: number, params: ScryptParams): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scryptCb(password, salt, keylen, { N: params.N, r: params.r, p: params.p, maxmem: 256 * params.N * params.r + 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/** `scrypt$N$r$p$salthex$hashhex` for `password`. */
export async function hashPassword(password: string | Buffer, params: ScryptParams = DEFAULT_SCRYPT): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(Buffer.from(password), salt, KEY_LENGTH, params);
  return `scrypt$${params.N}$${params.r}$${params.p}$${salt.toString('hex')}$${key.toString('hex')}`;
}

interface Encoded {
  params: ScryptParams;
  salt: Buffer;
  hash: Buffer;
}

function parseEncoded(s: string): Encoded | null {
  const m = /^scrypt\$(\d+)\$(\d+)\$(\d+)\$([0-9a-f]{2,128})\$([0-9a-f]{32,128})$/i.exec(s);
  if (!m) return null;
  const [N, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  // N a power of two; bounds (at most 256 MiB of scrypt memory) keep a bad file from asking for gigabytes.
  if (N < 2 || N > 2 ** 20 || (N & (N - 1)) !== 0 || r < 1 || r > 32 || 128 * N * r > 2 ** 28 || p < 1 || p > 16 || m[4]!.length % 2 || m[5]!.length % 2) return null;
  return { params: { N, r, p }, salt: Buffer.from(m[4]!, 'hex'), hash: Buffer.from(m[5]!, 'hex') };
}

/** Checks `password` against an encoded hash; false for a malformed one. */
export async function verifyPassword(password: string | Buffer, encoded: string): Promise<boolean> {
  const e = parseEncoded(encoded);
  if (e === null) return false;
  const key = await scrypt(Buffer.from(password), e.salt, e.hash.length, e.params);
  return timingSafeEqual(key, e.hash);
}

export class UserFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UserFileError';
  }
}

/** The built-in XAUTH backend: `verify(user, password)` against a user file. */
export class UserFile {
  private readonly users: Map<string, string>;
  private readonly dummy: string;

  constructor(text: string, source = 'user file') {
    this.users = new Map();
    text.split(/\r?\n/).forEach((raw, i) => {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) return;
      const colon = line.indexOf(':');
      const user = colon > 0 ? line.slice(0, colon) : '';
      const enc = line.slice(colon + 1);
      if (user === '' || parseEncoded(enc) === null) throw new UserFileError(`${source}:${i + 1}: expected user:scrypt$N$r$p$salthex$hashhex`);
      if (this.users.has(user)) throw new UserFileError(`${source}:${i + 1}: user '${user}' appears twice`);
      this.users.set(user, enc);
    });
    // An unknown user is checked against this, with the parameters of the first real entry.
    const first = parseEncoded(this.users.values().next().value ?? '') ?? { params: DEFAULT_SCRYPT, salt: Buffer.alloc(16), hash: Buffer.alloc(32) };
    this.dummy = `scrypt$${first.params.N}$${first.params.r}$${first.params.p}$${'00'.repeat(16)}$${'00'.repeat(first.hash.length)}`;
  }

  static load(path: string): UserFile {
    return new UserFile(readFileSync(path, 'utf8'), path);
  }

  get size(): number {
    return this.users.size;
  }

  /** Pluggable verify for the XAUTH server. */
  readonly verify = async (user: string, password: string): Promise<boolean> => {
    const enc = this.users.get(user);
    const ok = await verifyPassword(password, enc ?? this.dummy);
    return ok && enc !== undefined;
  };
}

/** One user-file line; the user name may not contain ':' or line breaks. */
export async function userFileLine(user: string, password: string | Buffer, params: ScryptParams = DEFAULT_SCRYPT): Promise<string> {
  if (user === '' || /[:\r\n]/.test(user)) throw new RangeError('a user name is not empty and has no ":" or line break');
  return `${user}:${await hashPassword(password, params)}`;
}
