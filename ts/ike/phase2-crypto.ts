// What every exchange after phase 1 shares (Quick Mode, Informational): the per-exchange IV
// (RFC 2409 appendix B), CBC under the phase 1 key Ka, and the HASH payload that leads each message:
//   HASH(1) = prf(SKEYID_a, M-ID | <payloads after HASH>)          (QM1, every Informational)
//   HASH(2) = prf(SKEYID_a, M-ID | Ni_b | <payloads after HASH>)   (QM2)
//   HASH(3) = prf(SKEYID_a, 0 | M-ID | Ni_b | Nr_b)                (QM3)
// "Payloads after HASH" are the bytes of the chain that follows the HASH payload, generic headers
// included, CBC padding excluded (strongSwan, Libreswan and the fixtures agree).
// Nothing here changes the phase 1 SA: its lastIv is only read.
import { cipherInfo, hashLength, type CryptoProvider } from '../crypto/index.js';
import { Flags, ISAKMP_VERSION, PayloadType, encodeMessage, encodePayloadsInto, parsePayloads, payloadsLength, type IsakmpHeader, type Payload } from '../isakmp/index.js';
import type { Phase2Keys } from './sa-types.js';

export type { Phase2Keys } from './sa-types.js';

// The M-ID as hashed: written into one scratch buffer (the prf reads it synchronously) instead of a new
// Buffer per HASH.
const MESSAGE_ID = Buffer.alloc(4);
function u32(n: number): Buffer {
  MESSAGE_ID.writeUInt32BE(n >>> 0, 0);
  return MESSAGE_ID;
}
const ZERO_OCTET = Buffer.alloc(1);

/** IV of the first message of exchange `messageId`: hash(last phase-1 CBC block | M-ID), truncated to the block. */
export function phase2Iv(crypto: CryptoProvider, sa: Phase2Keys, messageId: number): Buffer {
  return crypto.phase2Iv(sa.proposal.hash, sa.lastIv, messageId >>> 0, cipherInfo(sa.proposal.encryption).blockSize);
}

export function hash1(crypto: CryptoProvider, sa: Phase2Keys, messageId: number, rest: Uint8Array): Buffer {
  return crypto.prf(sa.proposal.hash, sa.skeyidA, u32(messageId), rest);
}
// The *Equals forms check a received HASH in constant time inside the provider (no copy of the expected value).
export function hash1Equals(crypto: CryptoProvider, sa: Phase2Keys, messageId: number, rest: Uint8Array, got: Uint8Array): boolean {
  return crypto.prfEqual(sa.proposal.hash, sa.skeyidA, got, u32(messageId), rest);
}

export function hash2(crypto: CryptoProvider, sa: Phase2Keys, messageId: number, nonceI: Uint8Array, rest: Uint8Array): Buffer {
  return crypto.prf(sa.proposal.hash, sa.skeyidA, u32(messageId), nonceI, rest);
}
export function hash2Equals(crypto: CryptoProvider, sa: Phase2Keys, messageId: number, nonceI: Uint8Array, rest: Uint8Array, got: Uint8Array): boolean {
  return crypto.prfEqual(sa.proposal.hash, sa.skeyidA, got, u32(messageId), nonceI, rest);
}

export function hash3(crypto: CryptoProvider, sa: Phase2Keys, messageId: number, nonceI: Uint8Array, nonceR: Uint8Array): Buffer {
  return crypto.prf(sa.proposal.hash, sa.skeyidA, ZERO_OCTET, u32(messageId), nonceI, nonceR);
}
export function hash3Equals(crypto: CryptoProvider, sa: Phase2Keys, messageId: number, nonceI: Uint8Array, nonceR: Uint8Array, got: Uint8Array): boolean {
  return crypto.prfEqual(sa.proposal.hash, sa.skeyidA, got, ZERO_OCTET, u32(messageId), nonceI, nonceR);
}

/**
 * Builds an encrypted message HDR*, HASH, rest... The hash is computed by `hashOf` over the encoded
 * `rest`. Returns the datagram and the IV the next message of this exchange chains on (its last block).
 */
export function sealProtected(
  crypto: CryptoProvider,
  sa: Phase2Keys,
  exchangeType: number,
  messageId: number,
  iv: Buffer,
  rest: readonly Payload[],
  hashOf: (restBytes: Buffer) => Buffer,
): { message: Buffer; nextIv: Buffer } {
  const info = cipherInfo(sa.proposal.encryption);
  // The plaintext is laid out once: HASH payload header, room for the hash, the rest encoded in place (the
  // hash is computed over that region, a view), then zero padding up to the block, as strongSwan pads
  // (RFC 2409 leaves the padding bytes open).
  const hashLen = hashLength(sa.proposal.hash);
  const restStart = 4 + hashLen;
  const restEnd = restStart + payloadsLength(rest);
  const plain = Buffer.allocUnsafe(Math.ceil(restEnd / info.blockSize) * info.blockSize);
  plain[0] = rest.length > 0 ? rest[0]!.type : 0;
  plain[1] = 0;
  plain.writeUInt16BE(restStart, 2);
  encodePayloadsInto(plain, restStart, rest);
  plain.fill(0, restEnd);
  const hash = hashOf(plain.subarray(restStart, restEnd));
  if (hash.length !== hashLen) throw new RangeError(`HASH of ${hash.length} bytes, the prf gives ${hashLen}`);
  plain.set(hash, 4);
  const body = crypto.cbcEncrypt(sa.proposal.encryption, sa.encryptionKey, iv, plain);
  const header: IsakmpHeader = {
    initiatorCookie: sa.cookieI,
    responderCookie: sa.cookieR,
    nextPayload: 8,
    version: ISAKMP_VERSION,
    exchangeType,
    flags: Flags.ENCRYPTION,
    messageId: messageId >>> 0,
    length: 0,
  };
  return { message: encodeMessage({ header, encrypted: body }), nextIv: Buffer.from(body.subarray(body.length - info.blockSize)) };
}

export type Opened =
  | { ok: true; hash: Buffer; rest: Payload[]; restBytes: Buffer; nextIv: Buffer }
  | { ok: false; reason: string };

/**
 * Decrypts an encrypted message body with `iv` and splits it into the leading HASH and the rest. The
 * caller verifies the hash (in constant time) before it believes anything or commits `nextIv`.
 */
export function openProtected(crypto: CryptoProvider, sa: Phase2Keys, header: IsakmpHeader, body: Buffer, iv: Buffer): Opened {
  const info = cipherInfo(sa.proposal.encryption);
  if (body.length === 0 || body.length % info.blockSize !== 0) {
    return { ok: false, reason: `${body.length} encrypted bytes, not a multiple of the ${info.blockSize}-byte block` };
  }
  if (header.nextPayload !== 8) return { ok: false, reason: `first payload is type ${header.nextPayload}, not HASH` };
  const plain = crypto.cbcDecrypt(sa.proposal.encryption, sa.encryptionKey, iv, body);
  const r = parsePayloads(header.nextPayload, plain, 28, { trailing: 'padding', blockSize: info.blockSize });
  if (!r.ok) return { ok: false, reason: `does not decrypt to valid payloads (${r.error.message})` };
  const payloads = r.value;
  const hash = payloads[0];
  if (hash === undefined || hash.type !== PayloadType.HASH) return { ok: false, reason: 'no HASH payload' };
  const rest = payloads.slice(1);
  // The payloads after HASH lie back to back in the plaintext (the parser walks them in order), so their
  // bytes are one view from the end of HASH to the end of the last one, not a concatenation.
  const first = hash.raw!;
  const last = payloads[payloads.length - 1]!.raw!;
  const restBytes = plain.subarray(first.byteOffset + first.length - plain.byteOffset, last.byteOffset + last.length - plain.byteOffset);
  return { ok: true, hash: hash.data, rest, restBytes, nextIv: Buffer.from(body.subarray(body.length - info.blockSize)) };
}

/** A random, non-zero 32-bit message ID. */
export function randomMessageId(crypto: CryptoProvider): number {
  for (;;) {
    const id = crypto.randomBytes(4).readUInt32BE(0);
    if (id !== 0) return id;
  }
}
