// Key and packet geometry of each ESP transform, and the KEYMAT split the quick-mode code uses.
import type { EspAlgorithm } from './types.js';

export interface EspKeyLengths {
  /** Cipher key octets (0 for NULL encryption). */
  encKeyLength: number;
  /** HMAC key octets (0 for AEAD): the digest length, RFC 2404 / RFC 4868 2.1. */
  integKeyLength: number;
  /** AEAD salt octets taken from KEYMAT after the key (RFC 4106 8.1, RFC 7634 2); 0 otherwise. */
  saltLength: number;
  /** ICV octets on the wire. */
  icvLength: number;
  /** Alignment of payload | trailer: 16 for AES-CBC, 8 for 3DES-CBC, 4 for the AEADs and NULL (RFC 4303 2.4). */
  blockSize: number;
  /** Explicit IV octets on the wire. */
  ivLength: number;
  /** encKeyLength + saltLength + integKeyLength: how much KEYMAT to derive for one SA. */
  keymatLength: number;
  kind: 'aead' | 'cbc-hmac' | 'null-hmac' | 'cbc-only';
  /** Node's cipher name (undefined for NULL) and HMAC digest (undefined for AEAD / encryption only). */
  nodeCipher?: string;
  nodeHash?: 'md5' | 'sha1' | 'sha256' | 'sha384' | 'sha512';
  insecure: boolean;
}

// HMAC-MD5-96 (RFC 2403) and HMAC-SHA1-96 (RFC 2404) truncate to 96 bits; the SHA-2 ones to half (RFC 4868).
// sha256_96: HMAC-SHA-256 cut to 96 bits, as the pre-RFC 4868 draft did and as old Linux kernels and Android 6
// still do; the peer must be configured the same way, since IKEv1 negotiates only "HMAC-SHA2-256".
const HASHES = {
  md5: { key: 16, icv: 12, node: 'md5' },
  sha1: { key: 20, icv: 12, node: 'sha1' },
  sha256: { key: 32, icv: 16, node: 'sha256' },
  sha256_96: { key: 32, icv: 12, node: 'sha256' },
  sha384: { key: 48, icv: 24, node: 'sha384' },
  sha512: { key: 64, icv: 32, node: 'sha512' },
} as const;

function make(alg: EspAlgorithm): EspKeyLengths | undefined {
  let m = /^aes(128|192|256)gcm16$/.exec(alg);
  if (m) {
    const k = Number(m[1]) / 8;
    return geometry('aead', k, 0, 4, 16, 4, 8, `aes-${m[1]}-gcm`, undefined, false);
  }
  if (alg === 'chacha20poly1305') return geometry('aead', 32, 0, 4, 16, 4, 8, 'chacha20-poly1305', undefined, false);
  m = /^3des-(md5|sha1|sha256|sha256_96|sha384|sha512)$/.exec(alg);
  if (m) {
    // RFC 2451: 192-bit key (parity bits included), 64-bit block and explicit IV.
    const h = HASHES[m[1] as keyof typeof HASHES];
    return geometry('cbc-hmac', 24, h.key, 0, h.icv, 8, 8, 'des-ede3-cbc', h.node, false);
  }
  m = /^aes(128|192|256)-(md5|sha1|sha256|sha256_96|sha384|sha512|none)$/.exec(alg);
  if (m) {
    const k = Number(m[1]) / 8;
    if (m[2] === 'none') return geometry('cbc-only', k, 0, 0, 0, 16, 16, `aes-${m[1]}-cbc`, undefined, true);
    const h = HASHES[m[2] as keyof typeof HASHES];
    return geometry('cbc-hmac', k, h.key, 0, h.icv, 16, 16, `aes-${m[1]}-cbc`, h.node, false);
  }
  m = /^null-(sha1|sha256|sha384|sha512)$/.exec(alg);
  if (m) {
    const h = HASHES[m[1] as keyof typeof HASHES];
    return geometry('null-hmac', 0, h.key, 0, h.icv, 4, 0, undefined, h.node, true);
  }
  return undefined;
}

function geometry(
  kind: EspKeyLengths['kind'],
  encKeyLength: number,
  integKeyLength: number,
  saltLength: number,
  icvLength: number,
  blockSize: number,
  ivLength: number,
  nodeCipher: string | undefined,
  nodeHash: EspKeyLengths['nodeHash'],
  insecure: boolean,
): EspKeyLengths {
  const g: EspKeyLengths = {
    encKeyLength,
    integKeyLength,
    saltLength,
    icvLength,
    blockSize,
    ivLength,
    keymatLength: encKeyLength + saltLength + integKeyLength,
    kind,
    insecure,
  };
  if (nodeCipher !== undefined) g.nodeCipher = nodeCipher;
  if (nodeHash !== undefined) g.nodeHash = nodeHash;
  return g;
}

export const ESP_ALGORITHMS: readonly EspAlgorithm[] = [
  'aes128gcm16', 'aes192gcm16', 'aes256gcm16', 'chacha20poly1305',
  'aes128-sha1', 'aes192-sha1', 'aes256-sha1', 'aes128-sha256', 'aes192-sha256', 'aes256-sha256',
  'aes128-sha256_96', 'aes192-sha256_96', 'aes256-sha256_96', '3des-sha256_96',
  'aes128-sha384', 'aes192-sha384', 'aes256-sha384', 'aes128-sha512', 'aes192-sha512', 'aes256-sha512',
  'aes128-md5', 'aes192-md5', 'aes256-md5',
  '3des-md5', '3des-sha1', '3des-sha256', '3des-sha384', '3des-sha512',
  'null-sha1', 'null-sha256', 'null-sha384', 'null-sha512', 'aes128-none', 'aes192-none', 'aes256-none',
];

// Frozen: every SA of a transform shares its entry (espGeometry), so no caller may change it.
const table = new Map<string, Readonly<EspKeyLengths>>(ESP_ALGORITHMS.map((a) => [a, Object.freeze(make(a)!)]));

export function isEspAlgorithm(name: unknown): name is EspAlgorithm {
  return typeof name === 'string' && table.has(name);
}

/** Key lengths and packet geometry of an ESP transform. RangeError for an unknown keyword. */
export function espKeyLengths(algorithm: EspAlgorithm): EspKeyLengths {
  return { ...espGeometry(algorithm) };
}

/** The shared, frozen geometry object of a transform: for the SA classes, which keep one reference each
 *  rather than a copy (a copy is about 150 octets of heap per SA). */
export function espGeometry(algorithm: EspAlgorithm): Readonly<EspKeyLengths> {
  const g = table.get(algorithm);
  if (g === undefined) throw new RangeError(`unknown ESP algorithm '${String(algorithm)}'`);
  return g;
}

/**
 * Splits one SA's KEYMAT (RFC 2409 5.5) into its keys: encryption key first, then (AEAD) the salt, then the
 * integrity key. That is the order strongSwan's IKEv1 keymat uses (encryption then integrity), and RFC 4106 8.1 /
 * RFC 7634 2 put the salt right after the AES / ChaCha20 key. The keys are copies (see espKeymatViews).
 */
export function splitEspKeymat(
  algorithm: EspAlgorithm,
  keymat: Uint8Array,
): { encryptionKey: Buffer; salt: Buffer; integrityKey: Buffer } {
  const v = espKeymatViews(algorithm, keymat);
  return { encryptionKey: Buffer.from(v.encryptionKey), salt: Buffer.from(v.salt), integrityKey: Buffer.from(v.integrityKey) };
}

/** splitEspKeymat's keys as views on `keymat` itself, for a caller that owns the buffer and keeps it. */
export function espKeymatViews(
  algorithm: EspAlgorithm,
  keymat: Uint8Array,
): { encryptionKey: Buffer; salt: Buffer; integrityKey: Buffer } {
  const g = espGeometry(algorithm);
  if (keymat.length !== g.keymatLength) {
    throw new RangeError(`KEYMAT for ${algorithm} must be ${g.keymatLength} octets, got ${keymat.length}`);
  }
  const b = Buffer.from(keymat.buffer, keymat.byteOffset, keymat.length);
  return {
    encryptionKey: b.subarray(0, g.encKeyLength),
    salt: b.subarray(g.encKeyLength, g.encKeyLength + g.saltLength),
    integrityKey: b.subarray(g.encKeyLength + g.saltLength),
  };
}

/** ESP packet length for a payload of `payloadLength` octets. */
export function espSealedLength(g: EspKeyLengths, payloadLength: number): number {
  const a = g.blockSize;
  return 8 + g.ivLength + Math.ceil((payloadLength + 2) / a) * a + g.icvLength;
}

/** Output room open needs for a packet of `packetLength` octets (the ciphertext length), 0 if too short. */
export function espOpenedCapacity(g: EspKeyLengths, packetLength: number): number {
  return Math.max(0, packetLength - 8 - g.ivLength - g.icvLength);
}
