// The one interface over the cryptography the engine needs. Two implementations exist: the native
// addon (default) and a node:crypto fallback; tests run against both.

/** Hash functions usable as IKE prf (HMAC) and for IVs. MD5 only where the user enables weak algorithms. */
export type HashName = 'md5' | 'sha1' | 'sha256' | 'sha384' | 'sha512';

/** Block ciphers for IKE message encryption (CBC, caller supplies whole blocks). */
export type IkeCipherName = 'aes-128-cbc' | 'aes-192-cbc' | 'aes-256-cbc' | 'des-ede3-cbc' | 'des-cbc';

/** DH group numbers (IANA "Group Description"): MODP 1, 2, 5, 14-18; ECP 19-21. */
export type DhGroupId = 1 | 2 | 5 | 14 | 15 | 16 | 17 | 18 | 19 | 20 | 21;

export interface DhKeyPairOptions {
  /** Use a private exponent as long as the prime (MODP only). Default: a short exponent (see dh docs). */
  fullLengthExponent?: boolean;
}

/** One side's ephemeral DH key. The private part stays inside (a native handle or a KeyObject). */
export interface DhPrivateKey {
  readonly group: DhGroupId;
  /** Our public value as it goes into the KE payload (MODP: big-endian padded to the prime length; ECP: x | y). */
  readonly publicValue: Buffer;
  /** g^xy, validated peer value (MODP: 1 < y < p-1; ECP: point on the curve). Throws RangeError on a bad value. */
  computeSecret(peerPublic: Uint8Array): Buffer;
  /** Same on the libuv thread pool. Rejects with RangeError on a bad value. */
  computeSecretAsync(peerPublic: Uint8Array): Promise<Buffer>;
}

export interface DhGroup {
  readonly id: DhGroupId;
  readonly kind: 'modp' | 'ecp';
  /** Length in bytes of a public value (KE payload data) and of the shared secret g^xy. */
  readonly publicLength: number;
  readonly secretLength: number;
  generateKeyPair(options?: DhKeyPairOptions): DhPrivateKey;
  generateKeyPairAsync(options?: DhKeyPairOptions): Promise<DhPrivateKey>;
  /**
   * A responder's DH: a new key pair and the shared secret with `peerPublic`, in one trip to the thread pool
   * (the native provider; node:crypto does both in turn). A bad peer value rejects with a RangeError.
   */
  generateAndComputeAsync(peerPublic: Uint8Array, options?: DhKeyPairOptions): Promise<{ key: DhPrivateKey; secret: Buffer }>;
  /**
   * A key from a fixed private value (big-endian; MODP: 1 <= x <= p-2, ECP: 1 <= d <= n-1), for known-answer
   * tests such as RFC 5903 section 8. Never use it with a predictable value in production. RangeError otherwise.
   */
  importPrivateKey(privateKey: Uint8Array): DhPrivateKey;
}

/** SKEYID_d, SKEYID_a, SKEYID_e (RFC 2409 section 5). */
export interface Phase1Keys {
  skeyid: Buffer;
  skeyidD: Buffer;
  skeyidA: Buffer;
  skeyidE: Buffer;
}

/** What phase 1 with a pre-shared key derives once g^xy is known (phase1KeysPsk). */
export interface Phase1PskKeys extends Phase1Keys {
  /** Ka (encryptionKey). */
  encryptionKey: Buffer;
  /** The phase 1 IV (phase1Iv). */
  iv: Buffer;
}

export interface CryptoProvider {
  readonly name: 'native' | 'node';
  /** Bytes from the CSPRNG (OpenSSL's RAND_bytes in the addon). */
  randomBytes(length: number): Buffer;
  hash(alg: HashName, ...data: Uint8Array[]): Buffer;
  /** HMAC(key, data[0] | data[1] | ...): the IKEv1 prf. */
  prf(alg: HashName, key: Uint8Array, ...data: Uint8Array[]): Buffer;
  dhGroup(id: DhGroupId): DhGroup;

  /** SKEYID = prf(psk, Ni_b | Nr_b). */
  skeyidPsk(alg: HashName, psk: Uint8Array, nonceI: Uint8Array, nonceR: Uint8Array): Buffer;
  /** SKEYID = prf(Ni_b | Nr_b, g^xy) (signature authentication). */
  skeyidSig(alg: HashName, nonceI: Uint8Array, nonceR: Uint8Array, gxy: Uint8Array): Buffer;
  /** HMAC(key, data[0] | data[1] | ...) equals `expected`, compared in constant time (false for another length). */
  prfEqual(alg: HashName, key: Uint8Array, expected: Uint8Array, ...data: Uint8Array[]): boolean;
  /** SKEYID_d / _a / _e from SKEYID, g^xy and both cookies. */
  phase1Keys(alg: HashName, skeyid: Uint8Array, gxy: Uint8Array, cookieI: Uint8Array, cookieR: Uint8Array): Phase1Keys;
  /** The encryption key Ka of `length` bytes from SKEYID_e (RFC 2409 Appendix B: K1 = prf(SKEYID_e, 0), Kn = prf(SKEYID_e, Kn-1)). */
  encryptionKey(alg: HashName, skeyidE: Uint8Array, length: number): Buffer;
  /** Phase 1 IV = hash(g^xi | g^xr), truncated to blockSize. */
  phase1Iv(alg: HashName, gxi: Uint8Array, gxr: Uint8Array, blockSize: number): Buffer;
  /**
   * skeyidPsk, phase1Keys, encryptionKey (keyLength bytes) and phase1Iv (ivLength bytes) in one step, with the
   * same results: what phase 1 with a pre-shared key derives once both nonces and g^xy are known.
   */
  phase1KeysPsk(
    alg: HashName,
    p: { psk: Uint8Array; nonceI: Uint8Array; nonceR: Uint8Array; gxy: Uint8Array; cookieI: Uint8Array; cookieR: Uint8Array; gxi: Uint8Array; gxr: Uint8Array },
    keyLength: number,
    ivLength: number,
  ): Phase1PskKeys;
  /** Phase 2 / informational IV = hash(last phase-1 CBC block | message ID), truncated to blockSize. */
  phase2Iv(alg: HashName, lastBlock: Uint8Array, messageId: number, blockSize: number): Buffer;
  /**
   * KEYMAT = K1 | K2 | ... of `length` bytes, K1 = prf(SKEYID_d, [g(qm)^xy |] protocol | SPI | Ni_b | Nr_b),
   * Kn = prf(SKEYID_d, Kn-1 | [g(qm)^xy |] protocol | SPI | Ni_b | Nr_b).
   */
  keymat(
    alg: HashName,
    skeyidD: Uint8Array,
    params: { gxy?: Uint8Array; protocol: number; spi: Uint8Array; nonceI: Uint8Array; nonceR: Uint8Array },
    length: number,
  ): Buffer;
  /** CBC without padding: data must be whole blocks. Throws RangeError otherwise. */
  cbcEncrypt(cipher: IkeCipherName, key: Uint8Array, iv: Uint8Array, data: Uint8Array): Buffer;
  cbcDecrypt(cipher: IkeCipherName, key: Uint8Array, iv: Uint8Array, data: Uint8Array): Buffer;
  /** Constant-time comparison (false for different lengths). */
  timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean;
}
