// CryptoProvider over the C++ addon (native/dh.cc, prf.cc, cipher.cc). Argument checking happens in C++
// (TypeError / RangeError); this file only maps names to the addon's small integer codes.
import { nativeAddon } from '../native.js';
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
} from './types.js';

/** Codes of native/ikecrypto.h (HashAlg) and native/cipher.cc (g_ciphers). */
const HASH_CODE: Readonly<Record<HashName, number>> = { md5: 0, sha1: 1, sha256: 2, sha384: 3, sha512: 4 };
const CIPHER_CODE: Readonly<Record<IkeCipherName, number>> = {
  'aes-128-cbc': 0,
  'aes-192-cbc': 1,
  'aes-256-cbc': 2,
  'des-ede3-cbc': 3,
  'des-cbc': 4,
};

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

/** The shape of the addon's DhKey class (native/dh.cc). */
interface NativeDhKey {
  generate(fullLengthExponent?: boolean): void;
  generateAsync(fullLengthExponent?: boolean): Promise<void>;
  importPrivateKey(privateKey: Uint8Array): void;
  publicValue(): Buffer;
  computeSecret(peerPublic: Uint8Array): Buffer;
  computeSecretAsync(peerPublic: Uint8Array): Promise<Buffer>;
}

class NativeDhPrivateKey implements DhPrivateKey {
  readonly publicValue: Buffer;
  readonly #key: NativeDhKey;
  constructor(
    readonly group: DhGroupId,
    key: NativeDhKey,
  ) {
    this.#key = key;
    this.publicValue = key.publicValue();
  }
  computeSecret(peerPublic: Uint8Array): Buffer {
    return this.#key.computeSecret(peerPublic);
  }
  computeSecretAsync(peerPublic: Uint8Array): Promise<Buffer> {
    try {
      return this.#key.computeSecretAsync(peerPublic);
    } catch (e) {
      return Promise.reject(e); // argument errors surface as a rejection, like a bad peer value
    }
  }
}

function makeProvider(addon: any): CryptoProvider {
  const DhKey: new (group: number) => NativeDhKey = addon.DhKey;
  const groups = new Map<DhGroupId, DhGroup>();

  function dhGroup(id: DhGroupId): DhGroup {
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
        return new NativeDhPrivateKey(id, k);
      },
      async generateKeyPairAsync(options?: DhKeyPairOptions): Promise<DhPrivateKey> {
        const k = new DhKey(id);
        await k.generateAsync(options?.fullLengthExponent === true);
        return new NativeDhPrivateKey(id, k);
      },
      importPrivateKey(privateKey: Uint8Array): DhPrivateKey {
        const k = new DhKey(id);
        k.importPrivateKey(privateKey);
        return new NativeDhPrivateKey(id, k);
      },
    };
    groups.set(id, g);
    return g;
  }

  return {
    name: 'native',
    randomBytes: (length) => addon.randomBytes(length),
    hash: (alg, ...data) => addon.hash(hashCode(alg), ...data),
    prf: (alg, key, ...data) => addon.prf(hashCode(alg), key, ...data),
    dhGroup,
    skeyidPsk: (alg, psk, nonceI, nonceR) => addon.skeyidPsk(hashCode(alg), psk, nonceI, nonceR),
    skeyidSig: (alg, nonceI, nonceR, gxy) => addon.skeyidSig(hashCode(alg), nonceI, nonceR, gxy),
    phase1Keys(alg, skeyid, gxy, cookieI, cookieR): Phase1Keys {
      const n = hashLength(alg);
      const all: Buffer = addon.phase1Keys(hashCode(alg), skeyid, gxy, cookieI, cookieR);
      return {
        skeyid: Buffer.from(skeyid),
        skeyidD: all.subarray(0, n),
        skeyidA: all.subarray(n, 2 * n),
        skeyidE: all.subarray(2 * n, 3 * n),
      };
    },
    encryptionKey: (alg, skeyidE, length) => addon.encryptionKey(hashCode(alg), skeyidE, length),
    phase1Iv: (alg, gxi, gxr, blockSize) => addon.phase1Iv(hashCode(alg), gxi, gxr, blockSize),
    phase2Iv: (alg, lastBlock, messageId, blockSize) => addon.phase2Iv(hashCode(alg), lastBlock, messageId, blockSize),
    keymat: (alg, skeyidD, p, length) =>
      addon.keymat(hashCode(alg), skeyidD, p.gxy ?? null, p.protocol, p.spi, p.nonceI, p.nonceR, length),
    cbcEncrypt: (cipher, key, iv, data) => addon.cbcEncrypt(cipherCode(cipher), key, iv, data),
    cbcDecrypt: (cipher, key, iv, data) => addon.cbcDecrypt(cipherCode(cipher), key, iv, data),
    timingSafeEqual: (a, b) => addon.timingSafeEqual(a, b),
  };
}

function load(): CryptoProvider | null {
  const addon = nativeAddon();
  return addon === null ? null : makeProvider(addon);
}

/** The addon-backed provider, or null when the addon did not load (ts/native.ts has warned once). */
export const nativeCrypto: CryptoProvider | null = load();
