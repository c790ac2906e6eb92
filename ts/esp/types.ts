// Public types of the ESP data path (RFC 4303). Both implementations (native addon, node:crypto) satisfy EspSa.
import { ESP_STATUS } from '../native-codes.js';

/**
 * ESP transforms, by strongSwan's ESP proposal keywords.
 * AEAD: aes*gcm16 (RFC 4106, 16-octet ICV), chacha20poly1305 (RFC 7634).
 * AES-CBC (RFC 3602) or 3DES-CBC (RFC 2451) with HMAC-SHA1-96 (RFC 2404) or HMAC-SHA2-256-128 / -384-192 /
 * -512-256 (RFC 4868), or HMAC-MD5-96 (RFC 2403). The data path takes them all; Quick Mode offers or accepts
 * MD5 only with the connection's allowWeak (ts/ike/esp-proposals.ts).
 * `-sha256_96`: HMAC-SHA-256 with the 96-bit ICV of draft-ietf-ipsec-ciph-sha-256-00, as old Linux kernels and
 * Android 6 truncate it (strongSwan's sha256_96, Libreswan's sha2-truncbug); negotiated as HMAC-SHA2-256.
 */
export type EspSecureAlgorithm =
  | 'aes128gcm16'
  | 'aes192gcm16'
  | 'aes256gcm16'
  | 'chacha20poly1305'
  | 'aes128-sha1'
  | 'aes192-sha1'
  | 'aes256-sha1'
  | 'aes128-sha256'
  | 'aes192-sha256'
  | 'aes256-sha256'
  | 'aes128-sha256_96'
  | 'aes192-sha256_96'
  | 'aes256-sha256_96'
  | 'aes128-sha384'
  | 'aes192-sha384'
  | 'aes256-sha384'
  | 'aes128-sha512'
  | 'aes192-sha512'
  | 'aes256-sha512'
  | 'aes128-md5'
  | 'aes192-md5'
  | 'aes256-md5'
  | '3des-md5'
  | '3des-sha1'
  | '3des-sha256'
  | '3des-sha256_96'
  | '3des-sha384'
  | '3des-sha512';

/**
 * Transforms without confidentiality (NULL encryption, RFC 2410) or without integrity (encryption only, used to
 * replay RFC 3602's examples). An SA with one of these needs `allowInsecureForTests: true`.
 */
export type EspInsecureAlgorithm =
  | 'null-sha1'
  | 'null-sha256'
  | 'null-sha384'
  | 'null-sha512'
  | 'aes128-none'
  | 'aes192-none'
  | 'aes256-none';

export type EspAlgorithm = EspSecureAlgorithm | EspInsecureAlgorithm;

/** Per-packet result codes of the batch calls (ESP_STATUS of ts/native-codes.ts, the numbers of native/codes.h). */
export const EspStatus = ESP_STATUS;
export type EspStatusCode = (typeof EspStatus)[keyof typeof EspStatus];
export type EspStatusName = keyof typeof EspStatus;

const statusNames = Object.keys(EspStatus) as EspStatusName[];
export function espStatusName(code: number): EspStatusName | 'UNKNOWN' {
  return statusNames.find((k) => EspStatus[k] === code) ?? 'UNKNOWN';
}

export interface EspSaParams {
  /** Security Parameters Index (host order number, sent big-endian). 0..255 are reserved (RFC 4303 2.1). */
  spi: number;
  algorithm: EspAlgorithm;
  direction: 'outbound' | 'inbound';
  /**
   * Either the whole KEYMAT of this SA (split by espKeyLengths: encryption key | salt | integrity key)...
   */
  keymat?: Uint8Array;
  /** ...or the parts: the cipher key (without the AEAD salt). */
  encryptionKey?: Uint8Array;
  /** HMAC key (CBC and NULL transforms). */
  integrityKey?: Uint8Array;
  /** 4 octets for AES-GCM (RFC 4106) and ChaCha20-Poly1305 (RFC 7634). */
  salt?: Uint8Array;
  /** Anti-replay window in packets: default 64, at most 4096, 0 = no replay check (inbound only). */
  replayWindow?: number;
  /** Extended (64-bit) sequence numbers, RFC 4303 2.2.1. Default false. */
  esn?: boolean;
  /**
   * Informational: tunnel mode means the caller seals whole IP packets with next header 4 (IPv4) or 41 (IPv6);
   * transport mode seals the transport payload with its protocol number. The SA itself does the same either way.
   */
  mode?: 'tunnel' | 'transport';
  /**
   * Informational: ESP in UDP (RFC 3948, port 4500). Sealed packets go after the socket's UDP header as they are;
   * received datagrams are opened from the byte after the UDP header (a datagram whose first four octets are
   * zero is IKE: the non-ESP marker is the socket layer's to check).
   */
  udpEncapsulation?: boolean;
  /** Allows NULL encryption / no integrity, SPI 0, initialSequence and sealWithIv. Tests only. */
  allowInsecureForTests?: boolean;
  /** Test hook: outbound, the first sequence number to send; inbound, window top = initialSequence - 1. */
  initialSequence?: bigint;
  /** 'auto' (default): the native addon when it loads, node:crypto otherwise. */
  implementation?: 'auto' | 'native' | 'node';
  /**
   * Crypto engine of a native SA. 'auto' (default; the environment variable IKE_ESP_ENGINE overrides the
   * default): intel-ipsec-mb where the addon was built with it, the CPU runs it and it has the algorithm
   * (AES-GCM, ChaCha20-Poly1305, AES-CBC + HMAC-SHA1/SHA2; not with ESN), OpenSSL EVP otherwise. 'evp' forces
   * OpenSSL; 'ipsec-mb' throws where that engine cannot run the SA. Ignored by the node:crypto implementation.
   */
  engine?: EspEngineChoice;
}

export type EspEngineChoice = 'auto' | 'evp' | 'ipsec-mb';
/** The engine an SA runs on: the addon's two, or node:crypto (the TypeScript implementation). */
export type EspEngine = 'ipsec-mb' | 'evp' | 'node:crypto';

export interface EspSaStats {
  /** Packets sealed (outbound) or opened successfully (inbound). */
  packets: number;
  /** Payload bytes of those packets (for kilobyte lifetimes). */
  bytes: number;
  authFailures: number;
  replays: number;
  malformed: number;
  wrongSpi: number;
}

export type EspOpenResult =
  | { ok: true; payload: Buffer; nextHeader: number }
  | { ok: false; status: EspStatusCode; reason: EspStatusName | 'UNKNOWN' };

export interface EspSa {
  readonly implementation: 'native' | 'node';
  /** The crypto engine chosen at install (EspSaParams.engine). */
  readonly engine: EspEngine;
  readonly spi: number;
  readonly algorithm: EspAlgorithm;
  readonly direction: 'outbound' | 'inbound';
  readonly esn: boolean;
  readonly replayWindow: number;
  readonly mode: 'tunnel' | 'transport';
  readonly udpEncapsulation: boolean;

  /** Length of the ESP packet (SPI through ICV) that seal makes from a payload of this length. */
  sealedLength(payloadLength: number): number;
  /** sealedLength(n) - n. */
  overhead(payloadLength: number): number;
  /** Room open needs in its output for a packet of this length (payload + trailer); 0 if too short. */
  openedCapacity(packetLength: number): number;

  /** Seals one payload with the next sequence number. RangeError with status SEQ_OVERFLOW when exhausted. */
  seal(payload: Uint8Array, nextHeader: number): Buffer;
  /** Opens one packet. Never throws for packet contents: the result says what was wrong. */
  open(packet: Uint8Array): EspOpenResult;

  /**
   * Seals `count` (default offsets.length) payloads input[offsets[i] .. +lengths[i]] with nextHeaders[i] into
   * output at outOffsets[i] (chosen by the caller; each needs sealedLength(lengths[i]) bytes). Writes
   * outLengths[i] and status[i]; returns the number sealed. In place is allowed: input at outOffset + 8 + IV length.
   */
  sealBatch(
    input: Uint8Array,
    offsets: Uint32Array,
    lengths: Uint32Array,
    nextHeaders: Uint8Array,
    output: Uint8Array,
    outOffsets: Uint32Array,
    outLengths: Uint32Array,
    status: Uint8Array,
    count?: number,
  ): number;
  /**
   * Opens `count` packets; output region i starts at outOffsets[i] and needs openedCapacity(lengths[i]) bytes.
   * Writes the payload length to outLengths[i], the next header to nextHeaders[i], status[i]; returns the number
   * opened. In place is allowed: outOffset = packet offset + 8 + IV length.
   */
  openBatch(
    input: Uint8Array,
    offsets: Uint32Array,
    lengths: Uint32Array,
    output: Uint8Array,
    outOffsets: Uint32Array,
    outLengths: Uint32Array,
    nextHeaders: Uint8Array,
    status: Uint8Array,
    count?: number,
  ): number;

  stats(): EspSaStats;
  /** Outbound: last sequence number sent (0n before the first). Inbound: highest authentic one received. */
  sequence(): bigint;
  /** Test hook (allowInsecureForTests, outbound): seal with a given sequence number and IV; counter untouched. */
  sealWithIv(payload: Uint8Array, nextHeader: number, seq: bigint, iv: Uint8Array): Buffer;
  /** Frees the cipher contexts and wipes the keys; later calls throw. */
  destroy(): void;
}
