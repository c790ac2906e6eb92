// CryptoProvider over the C++ addon (native/dh.cc, prf.cc, cipher.cc). Argument checking happens in C++
// (TypeError / RangeError); this file only maps names to the addon's small integer codes (ts/native-codes.ts).
import { nativeAddon, type NativeAddon, type NativeDhKey } from '../native.js';
import { CIPHER_CODE, HASH_CODE } from '../native-codes.js';
import { hashLength, requireDhGroup } from './algorithms.js';
import type {
  CryptoProvider,
  DhGroup,
  DhGroupId,
  DhKeyPairOptions,
  DhPrivateKey,
  HashName,
  IkeCipherName,
  Phase1Keys,
  Phase1PskKeys,
} from './types.js';

function hashCode(alg: HashName): number {
  const c = HASH_CODE[alg];
  if (c === undefined) throw new TypeError(`unknown hash algorithm ${String(alg)}`);
  return c;
}
function cipherCode(cipher: IkeCipherName): number {
  const c = CIPHER_CODE[cipher];
  if (c === undefined) throw new TypeError(`unknown IKE cipher ${String(cipher)}`);
  return c;
}

class NativeDhPrivateKey implements DhPrivateKey {
  readonly publicValue: Buffer;
  readonly #key: NativeDhKey;
  readonly #secretLength: number;
  constructor(
    readonly group: DhGroupId,
    key: NativeDhKey,
    info: { publicLength: number; secretLength: number },
  ) {
    this.#key = key;
    // Outputs go into pool slices allocated here, like every other result of the addon (see `out` below).
    this.publicValue = key.publicValue(Buffer.allocUnsafe(info.publicLength));
    this.#secretLength = info.secretLength;
  }
  computeSecret(peerPublic: Uint8Array): Buffer {
    return this.#key.computeSecret(peerPublic, Buffer.allocUnsafe(this.#secretLength));
  }
  computeSecretAsync(peerPublic: Uint8Array): Promise<Buffer> {
    try {
      return this.#key.computeSecretAsync(peerPublic);
    } catch (e) {
      return Promise.reject(e); // argument errors surface as a rejection, like a bad peer value
    }
  }
}

// The addon writes into buffers allocated here: Buffer.allocUnsafe takes a slice of Node's pool, which is
// several times cheaper than creating a Buffer from C++ (that cost would exceed the HMAC itself).
const out = (n: number): Buffer => Buffer.allocUnsafe(n);
const size = (n: unknown): number => (typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 1 << 26 ? n : -1);

function makeProvider(addon: NativeAddon): CryptoProvider {
  return { name: 'native', randomBytes: randomSource(addon), dhGroup: dhGroups(addon), ...primitives(addon), ...ikeDerivations(addon) };
}

/** The DH groups over the addon's DhKey, made on first use. */
function dhGroups(addon: NativeAddon): (id: DhGroupId) => DhGroup {
  const DhKey = addon.DhKey;
  const groups = new Map<DhGroupId, DhGroup>();
  return function dhGroup(id: DhGroupId): DhGroup {
    let g = groups.get(id);
    if (g !== undefined) return g;
    const info = requireDhGroup(id);
    g = {
      id,
      kind: info.kind,
      publicLength: info.publicLength,
      secretLength: info.secretLength,
      generateKeyPair(options?: DhKeyPairOptions): DhPrivateKey {
        const k = new DhKey(id);
        k.generate(options?.fullLengthExponent === true);
        return new NativeDhPrivateKey(id, k, info);
      },
      async generateKeyPairAsync(options?: DhKeyPairOptions): Promise<DhPrivateKey> {
        const k = new DhKey(id);
        await k.generateAsync(options?.fullLengthExponent === true);
        return new NativeDhPrivateKey(id, k, info);
      },
      async generateAndComputeAsync(peerPublic: Uint8Array, options?: DhKeyPairOptions): Promise<{ key: DhPrivateKey; secret: Buffer }> {
        const k = new DhKey(id);
        const secret = await k.generateAndComputeAsync(peerPublic, options?.fullLengthExponent === true);
        return { key: new NativeDhPrivateKey(id, k, info), secret };
      },
      importPrivateKey(privateKey: Uint8Array): DhPrivateKey {
        const k = new DhKey(id);
        k.importPrivateKey(privateKey);
        return new NativeDhPrivateKey(id, k, info);
      },
    };
    groups.set(id, g);
    return g;
  };
}

function randomSource(addon: NativeAddon): CryptoProvider['randomBytes'] {
  const randomPool = Buffer.allocUnsafeSlow(4096);
  let randomPoolPos = randomPool.length; // empty: filled on first use
  return function randomBytes(length) {
    const n = size(length);
    if (n < 0) {
      if (typeof length !== 'number') throw new TypeError('length must be a number');
      throw new RangeError('length must be an integer in [0, 67108864]');
    }
    const b = out(n);
    if (n > RANDOM_POOL_MAX_TAKE) {
      addon.randomBytes(b);
      return b;
    }
    // OpenSSL 3's RAND_bytes costs ~3 us a call whatever the size, and a handshake wants a dozen small
    // draws (nonces, SPIs, message IDs, cookie secrets): draw 4 KiB at a time and hand out slices. Every
    // slice handed out is wiped from the pool, so no random byte is given twice or stays behind.
    if (randomPoolPos + n > randomPool.length) {
      addon.randomBytes(randomPool);
      randomPoolPos = 0;
    }
    // Copied and wiped in one loop: for these few bytes it beats copy() + fill(), which each make a view.
    for (let i = 0, j = randomPoolPos; i < n; i++, j++) {
      b[i] = randomPool[j]!;
      randomPool[j] = 0;
    }
    randomPoolPos += n;
    return b;
  };
}

/** Hash, prf and CBC: one addon call each, into a buffer allocated here. */
function primitives(addon: NativeAddon): Pick<CryptoProvider, 'hash' | 'prf' | 'prfEqual' | 'cbcEncrypt' | 'cbcDecrypt' | 'timingSafeEqual'> {
  return {
    hash(alg, ...data) {
      const b = out(hashLength(alg));
      addon.hash(b, hashCode(alg), ...data);
      return b;
    },
    prf(alg, key, ...data) {
      const b = out(hashLength(alg));
      addon.prf(b, hashCode(alg), key, ...data);
      return b;
    },
    prfEqual: (alg, key, expected, ...data) => addon.prfEqual(hashCode(alg), key, expected, ...data),
    cbcEncrypt(cipher, key, iv, data) {
      const b = out(dataLength(data));
      addon.cbcEncrypt(b, cipherCode(cipher), key, iv, data);
      return b;
    },
    cbcDecrypt(cipher, key, iv, data) {
      const b = out(dataLength(data));
      addon.cbcDecrypt(b, cipherCode(cipher), key, iv, data);
      return b;
    },
    timingSafeEqual: (a, b) => addon.timingSafeEqual(a, b),
  };
}

/** RFC 2409 section 5 and Appendix B, each derivation one addon call. */
function ikeDerivations(addon: NativeAddon): Pick<CryptoProvider, 'phase1KeysPsk' | 'skeyidPsk' | 'skeyidSig' | 'phase1Keys' | 'encryptionKey' | 'phase1Iv' | 'phase2Iv' | 'keymat'> {
  return {
    phase1KeysPsk(alg, p, keyLength, ivBytes): Phase1PskKeys {
      const n = hashLength(alg);
      const k = derivedLength(keyLength);
      const v = ivLength(alg, ivBytes);
      // One pool slice for all six: these are the handshake's working copies. Phase 1 copies what the SA
      // keeps into an allocation of its own when it completes and wipes these (ts/ike/retained.ts), so no
      // slab stays pinned, and a slice costs a fraction of an ArrayBuffer of its own.
      const all = Buffer.allocUnsafe(4 * n + k + v);
      addon.phase1KeysPsk(all, hashCode(alg), p.psk, p.nonceI, p.nonceR, p.gxy, p.cookieI, p.cookieR, p.gxi, p.gxr, k, v);
      return {
        skeyid: all.subarray(0, n),
        skeyidD: all.subarray(n, 2 * n),
        skeyidA: all.subarray(2 * n, 3 * n),
        skeyidE: all.subarray(3 * n, 4 * n),
        encryptionKey: all.subarray(4 * n, 4 * n + k),
        iv: all.subarray(4 * n + k),
      };
    },
    skeyidPsk(alg, psk, nonceI, nonceR) {
      const b = out(hashLength(alg));
      addon.skeyidPsk(b, hashCode(alg), psk, nonceI, nonceR);
      return b;
    },
    skeyidSig(alg, nonceI, nonceR, gxy) {
      const b = out(hashLength(alg));
      addon.skeyidSig(b, hashCode(alg), nonceI, nonceR, gxy);
      return b;
    },
    phase1Keys(alg, skeyid, gxy, cookieI, cookieR): Phase1Keys {
      const n = hashLength(alg);
      const all = Buffer.allocUnsafeSlow(3 * n); // not pooled: the three keys live as long as the IKE SA
      addon.phase1Keys(all, hashCode(alg), skeyid, gxy, cookieI, cookieR);
      return {
        skeyid: Buffer.from(skeyid),
        skeyidD: all.subarray(0, n),
        skeyidA: all.subarray(n, 2 * n),
        skeyidE: all.subarray(2 * n, 3 * n),
      };
    },
    encryptionKey(alg, skeyidE, length) {
      const b = out(derivedLength(length));
      addon.encryptionKey(b, hashCode(alg), skeyidE);
      return b;
    },
    phase1Iv(alg, gxi, gxr, blockSize) {
      const b = out(ivLength(alg, blockSize));
      addon.phase1Iv(b, hashCode(alg), gxi, gxr);
      return b;
    },
    phase2Iv(alg, lastBlock, messageId, blockSize) {
      const b = out(ivLength(alg, blockSize));
      addon.phase2Iv(b, hashCode(alg), lastBlock, messageId);
      return b;
    },
    keymat(alg, skeyidD, p, length) {
      const b = out(derivedLength(length));
      addon.keymat(b, hashCode(alg), skeyidD, p.gxy ?? null, p.protocol, p.spi, p.nonceI, p.nonceR);
      return b;
    },
  };
}

// Lengths the TS side needs before the call, checked like the addon checks everything else.
function derivedLength(length: unknown): number {
  if (typeof length !== 'number') throw new TypeError('length must be a number');
  if (!Number.isInteger(length) || length < 1 || length > 1 << 16) throw new RangeError('length must be an integer in [1, 65536]');
  return length;
}
function ivLength(alg: HashName, blockSize: unknown): number {
  if (typeof blockSize !== 'number') throw new TypeError('blockSize must be a number');
  const max = hashLength(alg);
  if (!Number.isInteger(blockSize) || blockSize < 1 || blockSize > max) throw new RangeError(`blockSize must be an integer in [1, ${max}]`);
  return blockSize;
}
function dataLength(data: unknown): number {
  if (!(data instanceof Uint8Array)) throw new TypeError('data must be a Buffer or Uint8Array');
  return data.length;
}

function load(): CryptoProvider | null {
  const addon = nativeAddon();
  return addon === null ? null : makeProvider(addon);
}

/** Draws larger than this go straight to RAND_bytes. */
const RANDOM_POOL_MAX_TAKE = 256;

/** The addon-backed provider, or null when the addon did not load (ts/native.ts has warned once). */
export const nativeCrypto: CryptoProvider | null = load();
