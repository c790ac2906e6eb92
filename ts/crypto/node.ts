// CryptoProvider over node:crypto: the fallback when the addon is missing, and the second opinion every
// vector test is run against. It checks its arguments like the addon (TypeError / RangeError, same limits),
// so callers see the same behaviour whichever provider they got.
//
// Differences from the native provider, by necessity:
// - The "async" DH calls run synchronously and return a settled promise: node:crypto has no asynchronous
//   classic DH / ECDH primitive.
// - A MODP private exponent is held as a Buffer inside a private field, and each operation loads it into one
//   shared DiffieHellman object per group (constructing a DiffieHellman runs DH_check on the prime, ~30 ms for
//   the 1024-bit group, far too slow per key).
// - DES-CBC runs as 3DES-EDE with K1 = K2 = K3, which is single DES: OpenSSL 3 keeps plain DES in the legacy
//   provider that Node does not load.
import crypto from 'node:crypto';
import { cipherInfo, hashLength, isHashName, isIkeCipherName, requireDhGroup, type DhGroupInfo } from './algorithms.js';
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

// Same limits as native/prf.cc.
const MAX_DERIVED = 1 << 16;
const MAX_RANDOM = 1 << 26;

function bytes(x: unknown, name: string): Uint8Array {
  if (!(x instanceof Uint8Array)) throw new TypeError(`${name} must be a Buffer or Uint8Array`);
  return x;
}
function int(x: unknown, name: string, lo: number, hi: number): number {
  if (typeof x !== 'number') throw new TypeError(`${name} must be a number`);
  if (!Number.isInteger(x) || x < lo || x > hi) throw new RangeError(`${name} must be an integer in [${lo}, ${hi}]`);
  return x;
}
// Same limit as native/prf.cc (it keeps the argument views on the stack).
const MAX_PARTS = 32;
function parts(data: unknown[]): void {
  if (data.length > MAX_PARTS) throw new RangeError('at most 32 data buffers');
  data.forEach((d, i) => bytes(d, `data[${i}]`));
}

function hashName(alg: unknown): HashName {
  if (!isHashName(alg)) throw new TypeError(`unknown hash algorithm ${String(alg)}`);
  return alg;
}

function hmac(alg: HashName, key: Uint8Array, ...data: Uint8Array[]): Buffer {
  const h = crypto.createHmac(alg, key);
  for (const d of data) h.update(d);
  return h.digest();
}

/** Left-pads to len bytes (OpenSSL may drop leading zero bytes of a DH value). */
function pad(b: Buffer, len: number): Buffer {
  if (b.length === len) return b;
  const out = Buffer.alloc(len);
  b.copy(out, len - b.length);
  return out;
}

/** Rejects instead of throwing, for the "async" forms. */
function settle<T>(f: () => T): Promise<T> {
  try {
    return Promise.resolve(f());
  } catch (e) {
    return Promise.reject(e);
  }
}

const NODE_CURVE: Readonly<Record<number, string>> = { 19: 'prime256v1', 20: 'secp384r1', 21: 'secp521r1' };

class ModpKey implements DhPrivateKey {
  readonly #x: Buffer;
  constructor(
    readonly group: DhGroupId,
    readonly publicValue: Buffer,
    x: Buffer,
    private readonly impl: ModpGroup,
  ) {
    this.#x = x;
  }
  computeSecret(peerPublic: Uint8Array): Buffer {
    return this.impl.compute(this.#x, peerPublic);
  }
  computeSecretAsync(peerPublic: Uint8Array): Promise<Buffer> {
    return settle(() => this.computeSecret(peerPublic));
  }
}

class ModpGroup implements DhGroup {
  readonly kind = 'modp' as const;
  readonly publicLength: number;
  readonly secretLength: number;
  readonly #info: DhGroupInfo;
  #dh: crypto.DiffieHellman | undefined;
  #pMinus1 = Buffer.alloc(0);

  constructor(readonly id: DhGroupId) {
    this.#info = requireDhGroup(id);
    this.publicLength = this.#info.publicLength;
    this.secretLength = this.#info.secretLength;
  }

  // Node's own copy of the RFC 2409 / 3526 prime (its modpN names match the IANA group numbers).
  #shared(): crypto.DiffieHellman {
    if (this.#dh === undefined) {
      const p = crypto.getDiffieHellman(`modp${this.id}`).getPrime();
      this.#dh = crypto.createDiffieHellman(p, 2);
      const pm1 = Buffer.from(p);
      pm1[pm1.length - 1]! -= 1; // p is odd: no borrow
      this.#pMinus1 = pm1;
    }
    return this.#dh;
  }

  #keyFrom(x: Buffer): ModpKey {
    const dh = this.#shared();
    dh.setPrivateKey(x);
    dh.generateKeys(); // with a private key set, this computes g^x only
    return new ModpKey(this.id, pad(dh.getPublicKey(), this.publicLength), x, this);
  }

  generateKeyPair(options?: DhKeyPairOptions): DhPrivateKey {
    this.#shared();
    const len = this.publicLength;
    let x: Buffer;
    if (options?.fullLengthExponent === true) {
      // Uniform in [2, p-2] by rejection; p starts with 64 one bits, so a retry almost never happens.
      do x = crypto.randomBytes(len);
      while (Buffer.compare(x, this.#pMinus1) >= 0 || isAtMostOne(x) || x.equals(this.#pMinus1));
    } else {
      const bits = this.#info.exponentBits!;
      x = crypto.randomBytes(Math.ceil(bits / 8));
      const top = (bits - 1) % 8; // index of the top bit within the first byte
      x[0] = (x[0]! & ((2 << top) - 1)) | (1 << top); // exactly `bits` long, as in native/dh.cc
    }
    return this.#keyFrom(x);
  }
  generateKeyPairAsync(options?: DhKeyPairOptions): Promise<DhPrivateKey> {
    return settle(() => this.generateKeyPair(options));
  }
  generateAndComputeAsync(peerPublic: Uint8Array, options?: DhKeyPairOptions): Promise<{ key: DhPrivateKey; secret: Buffer }> {
    return settle(() => {
      const key = this.generateKeyPair(options);
      return { key, secret: key.computeSecret(peerPublic) };
    });
  }
  importPrivateKey(privateKey: Uint8Array): DhPrivateKey {
    const x = Buffer.from(bytes(privateKey, 'privateKey'));
    this.#shared();
    const range = new RangeError('MODP private exponent must be in [1, p-2]');
    if (x.length > this.publicLength || isZero(x)) throw range;
    if (Buffer.compare(pad(x, this.publicLength), this.#pMinus1) >= 0) throw range;
    return this.#keyFrom(x);
  }

  compute(x: Buffer, peerPublic: Uint8Array): Buffer {
    const y = bytes(peerPublic, 'peerPublic');
    const dh = this.#shared();
    if (y.length !== this.publicLength) throw new RangeError(`MODP peer public value must be ${this.publicLength} bytes`);
    if (isAtMostOne(y) || Buffer.compare(y, this.#pMinus1) >= 0) throw new RangeError('MODP peer public value must satisfy 1 < y < p-1');
    dh.setPrivateKey(x);
    return pad(dh.computeSecret(y), this.secretLength);
  }
}

function isZero(b: Uint8Array): boolean {
  return b.every((v) => v === 0);
}
function isAtMostOne(b: Uint8Array): boolean {
  for (let i = 0; i < b.length - 1; i++) if (b[i] !== 0) return false;
  return b.length === 0 || b[b.length - 1]! <= 1;
}

class EcpKey implements DhPrivateKey {
  readonly publicValue: Buffer;
  readonly #ecdh: crypto.ECDH;
  constructor(
    readonly group: DhGroupId,
    ecdh: crypto.ECDH,
    private readonly secretLength: number,
  ) {
    this.#ecdh = ecdh;
    this.publicValue = ecdh.getPublicKey().subarray(1); // drop the 0x04 "uncompressed" octet: IKE sends x | y
  }
  computeSecret(peerPublic: Uint8Array): Buffer {
    const q = bytes(peerPublic, 'peerPublic');
    const len = 2 * this.secretLength;
    if (q.length !== len) throw new RangeError(`ECP peer public value must be ${len} bytes (x | y)`);
    try {
      return pad(this.#ecdh.computeSecret(Buffer.concat([Buffer.of(4), q])), this.secretLength);
    } catch {
      throw new RangeError('ECP peer public value is not a point on the curve');
    }
  }
  computeSecretAsync(peerPublic: Uint8Array): Promise<Buffer> {
    return settle(() => this.computeSecret(peerPublic));
  }
}

class EcpGroup implements DhGroup {
  readonly kind = 'ecp' as const;
  readonly publicLength: number;
  readonly secretLength: number;
  readonly #curve: string;
  constructor(readonly id: DhGroupId) {
    const info = requireDhGroup(id);
    this.publicLength = info.publicLength;
    this.secretLength = info.secretLength;
    this.#curve = NODE_CURVE[id]!;
  }
  generateKeyPair(_options?: DhKeyPairOptions): DhPrivateKey {
    const e = crypto.createECDH(this.#curve);
    e.generateKeys();
    return new EcpKey(this.id, e, this.secretLength);
  }
  generateKeyPairAsync(options?: DhKeyPairOptions): Promise<DhPrivateKey> {
    return settle(() => this.generateKeyPair(options));
  }
  generateAndComputeAsync(peerPublic: Uint8Array, options?: DhKeyPairOptions): Promise<{ key: DhPrivateKey; secret: Buffer }> {
    return settle(() => {
      const key = this.generateKeyPair(options);
      return { key, secret: key.computeSecret(peerPublic) };
    });
  }
  importPrivateKey(privateKey: Uint8Array): DhPrivateKey {
    const d = bytes(privateKey, 'privateKey');
    if (d.length > this.secretLength || isZero(d)) throw new RangeError('ECP private key must be in [1, n-1]');
    const e = crypto.createECDH(this.#curve);
    try {
      e.setPrivateKey(d); // node refuses d >= n
    } catch {
      throw new RangeError('ECP private key must be in [1, n-1]');
    }
    return new EcpKey(this.id, e, this.secretLength);
  }
}

/** The node:crypto provider's DH groups, made on first use. */
const nodeGroups = new Map<DhGroupId, DhGroup>();

// K1 | K2 | ... truncated to length, Kn = block(Kn-1) (RFC 2409 Appendix B and section 5.5).
function prfBlocks(alg: HashName, length: number, block: (prev: Buffer | null) => Buffer): Buffer {
  const n = hashLength(alg);
  const out = Buffer.alloc(Math.ceil(length / n) * n);
  let prev: Buffer | null = null;
  for (let off = 0; off < length; off += n) {
    prev = block(prev);
    prev.copy(out, off);
  }
  return out.subarray(0, length);
}

function cbc(encrypt: boolean, cipher: IkeCipherName, key: Uint8Array, iv: Uint8Array, data: Uint8Array): Buffer {
  if (typeof cipher !== 'string') throw new TypeError('cipher must be a string');
  if (!isIkeCipherName(cipher)) throw new TypeError(`unknown IKE cipher ${cipher}`);
  const c = cipherInfo(cipher);
  bytes(key, 'key');
  bytes(iv, 'iv');
  bytes(data, 'data');
  if (key.length !== c.keyLength) throw new RangeError(`${cipher} key must be ${c.keyLength} bytes`);
  if (iv.length !== c.blockSize) throw new RangeError(`${cipher} IV must be ${c.blockSize} bytes`);
  if (data.length % c.blockSize !== 0)
    throw new RangeError(`${cipher} data must be a whole number of ${c.blockSize}-byte blocks`);
  let name: string = cipher;
  let k = key;
  if (cipher === 'des-cbc') {
    name = 'des-ede3-cbc';
    k = Buffer.concat([key, key, key]);
  }
  const f = encrypt ? crypto.createCipheriv(name, k, iv) : crypto.createDecipheriv(name, k, iv);
  f.setAutoPadding(false);
  return Buffer.concat([f.update(data), f.final()]);
}

/** The node:crypto provider (always available). */
export const nodeCrypto: CryptoProvider = {
  name: 'node',
  randomBytes(length) {
    return crypto.randomBytes(int(length, 'length', 0, MAX_RANDOM));
  },
  hash(alg, ...data) {
    const h = crypto.createHash(hashName(alg));
    parts(data);
    for (const d of data) h.update(d);
    return h.digest();
  },
  prf(alg, key, ...data) {
    hashName(alg);
    bytes(key, 'key');
    parts(data);
    return hmac(alg, key, ...data);
  },
  dhGroup(id) {
    let g = nodeGroups.get(id);
    if (g === undefined) {
      const info = requireDhGroup(id);
      g = info.kind === 'modp' ? new ModpGroup(id) : new EcpGroup(id);
      nodeGroups.set(id, g);
    }
    return g;
  },
  prfEqual(alg, key, expected, ...data) {
    bytes(expected, 'expected');
    const mac = this.prf(alg, key, ...data);
    return mac.length === expected.length && crypto.timingSafeEqual(mac, expected);
  },
  phase1KeysPsk(alg, p, keyLength, ivLength) {
    const skeyid = this.skeyidPsk(alg, p.psk, p.nonceI, p.nonceR);
    const k = this.phase1Keys(alg, skeyid, p.gxy, p.cookieI, p.cookieR);
    return { ...k, encryptionKey: this.encryptionKey(alg, k.skeyidE, keyLength), iv: this.phase1Iv(alg, p.gxi, p.gxr, ivLength) };
  },
  skeyidPsk(alg, psk, nonceI, nonceR) {
    hashName(alg);
    return hmac(alg, bytes(psk, 'psk'), bytes(nonceI, 'nonceI'), bytes(nonceR, 'nonceR'));
  },
  skeyidSig(alg, nonceI, nonceR, gxy) {
    hashName(alg);
    const key = Buffer.concat([bytes(nonceI, 'nonceI'), bytes(nonceR, 'nonceR')]);
    return hmac(alg, key, bytes(gxy, 'gxy'));
  },
  phase1Keys(alg, skeyid, gxy, cookieI, cookieR): Phase1Keys {
    hashName(alg);
    bytes(skeyid, 'skeyid');
    bytes(gxy, 'gxy');
    if (bytes(cookieI, 'cookieI').length !== 8 || bytes(cookieR, 'cookieR').length !== 8)
      throw new RangeError('ISAKMP cookies must be 8 bytes');
    const skeyidD = hmac(alg, skeyid, gxy, cookieI, cookieR, Buffer.of(0));
    const skeyidA = hmac(alg, skeyid, skeyidD, gxy, cookieI, cookieR, Buffer.of(1));
    const skeyidE = hmac(alg, skeyid, skeyidA, gxy, cookieI, cookieR, Buffer.of(2));
    return { skeyid: Buffer.from(skeyid), skeyidD, skeyidA, skeyidE };
  },
  encryptionKey(alg, skeyidE, length) {
    hashName(alg);
    bytes(skeyidE, 'skeyidE');
    int(length, 'length', 1, MAX_DERIVED);
    if (length <= skeyidE.length) return Buffer.from(skeyidE.subarray(0, length));
    return prfBlocks(alg, length, (prev) => hmac(alg, skeyidE, prev ?? Buffer.of(0)));
  },
  phase1Iv(alg, gxi, gxr, blockSize) {
    hashName(alg);
    bytes(gxi, 'gxi');
    bytes(gxr, 'gxr');
    int(blockSize, 'blockSize', 1, hashLength(alg));
    return crypto.createHash(alg).update(gxi).update(gxr).digest().subarray(0, blockSize);
  },
  phase2Iv(alg, lastBlock, messageId, blockSize) {
    hashName(alg);
    bytes(lastBlock, 'lastBlock');
    int(messageId, 'messageId', 0, 0xffffffff);
    int(blockSize, 'blockSize', 1, hashLength(alg));
    const m = Buffer.alloc(4);
    m.writeUInt32BE(messageId);
    return crypto.createHash(alg).update(lastBlock).update(m).digest().subarray(0, blockSize);
  },
  keymat(alg, skeyidD, p, length) {
    hashName(alg);
    bytes(skeyidD, 'skeyidD');
    const gxy = p.gxy === undefined || p.gxy === null ? Buffer.alloc(0) : bytes(p.gxy, 'gxy');
    const proto = Buffer.of(int(p.protocol, 'protocol', 0, 255));
    bytes(p.spi, 'spi');
    bytes(p.nonceI, 'nonceI');
    bytes(p.nonceR, 'nonceR');
    int(length, 'length', 1, MAX_DERIVED);
    return prfBlocks(alg, length, (prev) =>
      prev === null
        ? hmac(alg, skeyidD, gxy, proto, p.spi, p.nonceI, p.nonceR)
        : hmac(alg, skeyidD, prev, gxy, proto, p.spi, p.nonceI, p.nonceR),
    );
  },
  cbcEncrypt: (cipher, key, iv, data) => cbc(true, cipher, key, iv, data),
  cbcDecrypt: (cipher, key, iv, data) => cbc(false, cipher, key, iv, data),
  timingSafeEqual(a, b) {
    bytes(a, 'a');
    bytes(b, 'b');
    return a.length === b.length && crypto.timingSafeEqual(a, b);
  },
};
