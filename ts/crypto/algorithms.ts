// Facts about the algorithms the engine negotiates: sizes, and which ones are weak. Both providers and the
// proposal layer read them from here so that the numbers exist once.
import type { DhGroupId, HashName, IkeCipherName } from './types.js';

export const HASH_NAMES: readonly HashName[] = ['md5', 'sha1', 'sha256', 'sha384', 'sha512'];

const HASH_LENGTH: Readonly<Record<HashName, number>> = { md5: 16, sha1: 20, sha256: 32, sha384: 48, sha512: 64 };

export function isHashName(x: unknown): x is HashName {
  return typeof x === 'string' && Object.prototype.hasOwnProperty.call(HASH_LENGTH, x);
}

/** Output length in bytes of the hash (and of its HMAC prf). */
export function hashLength(alg: HashName): number {
  const n = HASH_LENGTH[alg];
  if (n === undefined) throw new TypeError(`unknown hash algorithm ${String(alg)}`);
  return n;
}

/** MD5 is accepted for interoperability with old peers only (collisions are practical). */
export function isWeakHash(alg: HashName): boolean {
  return alg === 'md5';
}

export interface IkeCipherInfo {
  readonly keyLength: number;
  readonly blockSize: number;
  /** DES (56-bit key) is broken; the policy layer should refuse it unless weak algorithms are allowed. */
  readonly weak: boolean;
}

const CIPHERS: Readonly<Record<IkeCipherName, IkeCipherInfo>> = {
  'aes-128-cbc': { keyLength: 16, blockSize: 16, weak: false },
  'aes-192-cbc': { keyLength: 24, blockSize: 16, weak: false },
  'aes-256-cbc': { keyLength: 32, blockSize: 16, weak: false },
  'des-ede3-cbc': { keyLength: 24, blockSize: 8, weak: false },
  'des-cbc': { keyLength: 8, blockSize: 8, weak: true },
};

export const IKE_CIPHER_NAMES = Object.keys(CIPHERS) as readonly IkeCipherName[];

export function isIkeCipherName(x: unknown): x is IkeCipherName {
  return typeof x === 'string' && Object.prototype.hasOwnProperty.call(CIPHERS, x);
}

export function cipherInfo(cipher: IkeCipherName): IkeCipherInfo {
  const c = CIPHERS[cipher];
  if (c === undefined) throw new TypeError(`unknown IKE cipher ${String(cipher)}`);
  return c;
}
export function cipherKeyLength(cipher: IkeCipherName): number {
  return cipherInfo(cipher).keyLength;
}
export function cipherBlockSize(cipher: IkeCipherName): number {
  return cipherInfo(cipher).blockSize;
}

export interface DhGroupInfo {
  readonly id: DhGroupId;
  readonly kind: 'modp' | 'ecp';
  /** Prime length in bits (MODP) or field size (ECP). */
  readonly bits: number;
  /** Bytes of a KE payload's data (MODP: prime length; ECP: x | y) and of g^xy (ECP: x only). */
  readonly publicLength: number;
  readonly secretLength: number;
  /**
   * MODP: length in bits of the default short private exponent, 2x the group's symmetric strength (NIST SP
   * 800-56A rev3 5.6.1.1.4, strengths from SP 800-57 part 1 and RFC 3526); see native/dh.cc. ECP: undefined.
   */
  readonly exponentBits?: number;
  /** strongSwan's proposal keyword: modp1024, modp2048, ecp256, ... */
  readonly keyword: string;
  /** 768- and 1024-bit MODP (groups 1 and 2): within reach of precomputation attacks (Logjam). */
  readonly weak: boolean;
}

function modp(id: DhGroupId, bits: number, exponentBits: number): DhGroupInfo {
  return { id, kind: 'modp', bits, publicLength: bits / 8, secretLength: bits / 8, exponentBits, keyword: `modp${bits}`, weak: bits <= 1024 };
}
function ecp(id: DhGroupId, bits: number, fieldLength: number): DhGroupInfo {
  return { id, kind: 'ecp', bits, publicLength: 2 * fieldLength, secretLength: fieldLength, keyword: `ecp${bits}`, weak: false };
}

const GROUPS: ReadonlyMap<number, DhGroupInfo> = new Map<number, DhGroupInfo>([
  [1, modp(1, 768, 160)],
  [2, modp(2, 1024, 160)],
  [5, modp(5, 1536, 200)],
  [14, modp(14, 2048, 224)],
  [15, modp(15, 3072, 256)],
  [16, modp(16, 4096, 304)],
  [17, modp(17, 6144, 352)],
  [18, modp(18, 8192, 400)],
  [19, ecp(19, 256, 32)],
  [20, ecp(20, 384, 48)],
  [21, ecp(21, 521, 66)],
]);

/** Every group both providers implement, in IANA order. */
export const SUPPORTED_DH_GROUPS: readonly DhGroupId[] = [...GROUPS.keys()] as DhGroupId[];

export function isDhGroupId(x: unknown): x is DhGroupId {
  return typeof x === 'number' && GROUPS.has(x);
}

/** Facts about a DH group, or undefined for a group number we do not implement (a peer may offer any). */
export function dhGroupInfo(id: number): DhGroupInfo | undefined {
  return GROUPS.get(id);
}

/** Same, for a group the caller knows is supported; TypeError otherwise. */
export function requireDhGroup(id: DhGroupId): DhGroupInfo {
  const g = GROUPS.get(id);
  if (g === undefined) throw new RangeError(`unsupported DH group ${String(id)}`);
  return g;
}
