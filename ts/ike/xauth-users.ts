// Server-side helpers for XAUTH: the failed-login limiter and the built-in user file.
//
// User file: one `user:scrypt$N$r$p$salthex$hashhex` line per user ('#' comments and blank lines
// allowed). Passwords are checked with node:crypto scrypt and a constant-time compare; an unknown user
// costs the same scrypt as a known one, so timing does not tell which user names exist.
import { randomBytes, scrypt as scryptCb, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';

export interface LoginLimiterOptions {
  /** Failures tolerated, per user name and per peer address, before that user or address is refused (default 3). */
  maxFailures?: number;
  /** How long a user or address is refused after that (default 30 s); its failure count restarts afterwards. */
  blockMs?: number;
  /** Clock in ms (default Date.now); tests inject their own. */
  clock?: () => number;
  /** User names and addresses tracked at most, each (oldest forgotten first; default 10000). */
  maxPeers?: number;
}

/** Failure counts under one kind of key (user names, or peer addresses), oldest forgotten past `max`. */
class FailureCounts {
  private readonly entries = new Map<string, { failures: number; blockedUntil: number }>();

  constructor(
    private readonly maxFailures: number,
    private readonly blockMs: number,
    private readonly max: number,
  ) {}

  retryAfterMs(key: string, now: number): number {
    const e = this.entries.get(key);
    if (e === undefined || e.blockedUntil === 0) return 0;
    const left = e.blockedUntil - now;
    if (left > 0) return left;
    this.entries.delete(key);
    return 0;
  }

  failure(key: string, now: number): void {
    if (this.retryAfterMs(key, now) > 0) return; // already blocked: the block does not grow
    const e = this.entries.get(key) ?? { failures: 0, blockedUntil: 0 };
    this.entries.delete(key); // re-inserted last: the map's order is the eviction order
    e.failures++;
    if (e.failures >= this.maxFailures) e.blockedUntil = now + this.blockMs;
    this.entries.set(key, e);
    if (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value!);
  }

  clear(key: string): void {
    this.entries.delete(key);
  }

  /** Checks in flight per key: they count as failures until they end (bounded by the checks running). */
  private readonly pending = new Map<string, number>();

  /** As many failures plus checks in flight as failures allowed: one more check could exceed the limit. */
  saturated(key: string): boolean {
    return (this.entries.get(key)?.failures ?? 0) + (this.pending.get(key) ?? 0) >= this.maxFailures;
  }

  start(key: string): void {
    this.pending.set(key, (this.pending.get(key) ?? 0) + 1);
  }

  end(key: string): void {
    const n = (this.pending.get(key) ?? 1) - 1;
    if (n > 0) this.pending.set(key, n);
    else this.pending.delete(key);
  }
}

/**
 * Failed XAUTH logins, counted per user name and per peer address: after `maxFailures` of either, that user
 * (from anywhere) or that address (for any user) is refused for `blockMs`. A success clears only its user's
 * count: the address keeps its failures, so one valid account (or a NAT shared with a valid user) does not
 * buy unlimited guesses at the others.
 */
export class LoginLimiter {
  private readonly clock: () => number;
  private readonly users: FailureCounts;
  private readonly addresses: FailureCounts;

  constructor(options: LoginLimiterOptions = {}) {
    const maxFailures = options.maxFailures ?? 3;
    const blockMs = options.blockMs ?? 30_000;
    const max = options.maxPeers ?? 10_000;
    if (!(maxFailures >= 1) || !(blockMs >= 0) || !(max >= 1)) throw new RangeError('LoginLimiter: maxFailures >= 1, blockMs >= 0 and maxPeers >= 1');
    this.clock = options.clock ?? Date.now;
    this.users = new FailureCounts(maxFailures, blockMs, max);
    this.addresses = new FailureCounts(maxFailures, blockMs, max);
  }

  /** 0 when `address` (and `user`, when given) may try, else the ms until both may. */
  retryAfterMs(address: string, user?: string): number {
    const now = this.clock();
    return Math.max(this.addresses.retryAfterMs(address, now), user === undefined ? 0 : this.users.retryAfterMs(user, now));
  }

  allowed(address: string, user?: string): boolean {
    return this.retryAfterMs(address, user) === 0;
  }

  /** A wrong password (or an unknown user) from `address`. */
  failure(address: string, user?: string): void {
    const now = this.clock();
    this.addresses.failure(address, now);
    if (user !== undefined) this.users.failure(user, now);
  }

  /** `user` logged in: its count is cleared; the address's is not. */
  success(user: string): void {
    this.users.clear(user);
  }

  /**
   * Starts a password check of `user` from `address`: null when it is refused (blocked, or as many checks in
   * flight as failures are left), else the function to call with its result. A check in flight counts as a
   * failure until it ends, so many SAs checking passwords at once cannot exceed the limit between them.
   */
  begin(address: string, user: string): ((ok: boolean) => void) | null {
    if (!this.allowed(address, user) || this.addresses.saturated(address) || this.users.saturated(user)) return null;
    this.addresses.start(address);
    this.users.start(user);
    let ended = false;
    return (ok) => {
      if (ended) return;
      ended = true;
      this.addresses.end(address);
      this.users.end(user);
      if (ok) this.success(user);
      else this.failure(address, user);
    };
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
