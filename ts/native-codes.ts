// The numbers JavaScript and the addon exchange, the TypeScript side of native/codes.h: hash and IKE cipher
// codes of the crypto entry points, per-packet statuses of the ESP batch calls. The addon exports its side as
// `codes`; test/native/codes.test.ts checks that the two agree.
import type { HashName, IkeCipherName } from './crypto/types.js';

/** HashAlg of native/codes.h: the `alg` argument of hash, prf and the key derivations. */
export const HASH_CODE: Readonly<Record<HashName, number>> = { md5: 0, sha1: 1, sha256: 2, sha384: 3, sha512: 4 };

/** CbcCipherCode of native/codes.h: the `cipher` argument of cbcEncrypt / cbcDecrypt. */
export const CIPHER_CODE: Readonly<Record<IkeCipherName, number>> = {
  'aes-128-cbc': 0,
  'aes-192-cbc': 1,
  'aes-256-cbc': 2,
  'des-ede3-cbc': 3,
  'des-cbc': 4,
};

/** esp::Status of native/codes.h: one per packet in the `status` array of sealBatch / openBatch. */
export const ESP_STATUS = {
  OK: 0,
  /** Duplicate, left of the replay window, or sequence number 0. */
  REPLAYED: 1,
  /** ICV mismatch. */
  AUTH_FAILED: 2,
  /** Length impossible for the algorithm, or padding bytes not 1, 2, 3, ... */
  MALFORMED: 3,
  /** The packet's SPI is not this SA's. */
  WRONG_SPI: 4,
  /** The outbound sequence number would wrap: the SA must be rekeyed. */
  SEQ_OVERFLOW: 5,
  /** Offset/length outside its buffer, output region too small, or output overlapping input (not in place). */
  BAD_BOUNDS: 6,
  /** The crypto library reported an error (not expected). */
  CRYPTO_ERROR: 7,
} as const;

/** The shape of the addon's `codes` export. */
export interface NativeCodes {
  hash: Readonly<Record<HashName, number>>;
  cipher: Readonly<Record<IkeCipherName, number>>;
  espStatus: Readonly<Record<keyof typeof ESP_STATUS, number>>;
}

/** The codes as the addon must report them. */
export const NATIVE_CODES: NativeCodes = { hash: HASH_CODE, cipher: CIPHER_CODE, espStatus: ESP_STATUS };
