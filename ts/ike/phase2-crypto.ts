// What every exchange after phase 1 shares (Quick Mode, Informational): the per-exchange IV
// (RFC 2409 appendix B), CBC under the phase 1 key Ka, and the HASH payload that leads each message:
//   HASH(1) = prf(SKEYID_a, M-ID | <payloads after HASH>)          (QM1, every Informational)
//   HASH(2) = prf(SKEYID_a, M-ID | Ni_b | <payloads after HASH>)   (QM2)
//   HASH(3) = prf(SKEYID_a, 0 | M-ID | Ni_b | Nr_b)                (QM3)
// "Payloads after HASH" are the bytes of the chain that follows the HASH payload, generic headers
// included, CBC padding excluded (strongSwan, Libreswan and the fixtures agree).
// Nothing here changes the phase 1 SA: its lastIv is only read.
import { cipherInfo, type CryptoProvider } from '../crypto/index.js';
import { Flags, ISAKMP_VERSION, encodeMessage, encodePayloads, parsePayloads, type IsakmpHeader, type Payload } from '../isakmp/index.js';
import type { IsakmpSa } from './phase1.js';

/** The parts of an ISAKMP SA a phase 2 exchange uses (IsakmpSa satisfies it). */
export type Phase2Keys = Pick<IsakmpSa, 'cookieI' | 'cookieR' | 'skeyidA' | 'skeyidD' | 'encryptionKey' | 'lastIv' | 'proposal'>;

function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
}

/** IV of the first message of exchange `messageId`: hash(last phase-1 CBC block | M-ID), truncated to the block. */
export function phase2Iv(crypto: CryptoProvider, sa: Phase2Keys, messageId: number): Buffer {
  return crypto.phase2Iv(sa.proposal.hash, sa.lastIv, messageId >>> 0, cipherInfo(sa.proposal.encryption).blockSize);
}

export function hash1(crypto: CryptoProvider, sa: Phase2Keys, messageId: number, rest: Uint8Array): Buffer {
  return crypto.prf(sa.proposal.hash, sa.skeyidA, u32(messageId), rest);
}

export function hash2(crypto: CryptoProvider, sa: Phase2Keys, messageId: number, nonceI: Uint8Array, rest: Uint8Array): Buffer {
  return crypto.prf(sa.proposal.hash, sa.skeyidA, u32(messageId), nonceI, rest);
}

export function hash3(crypto: CryptoProvider, sa: Phase2Keys, messageId: number, nonceI: Uint8Array, nonceR: Uint8Array): Buffer {
  return crypto.prf(sa.proposal.hash, sa.skeyidA, Buffer.from([0]), u32(messageId), nonceI, nonceR);
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
  const hash = hashOf(encodePayloads(rest));
  const plain = encodePayloads([{ type: 8, data: hash }, ...rest]);
  const info = cipherInfo(sa.proposal.encryption);
  // Zero padding up to the block, as strongSwan does (RFC 2409 leaves the padding bytes open).
  const padded = Buffer.alloc(Math.ceil(plain.length / info.blockSize) * info.blockSize);
  plain.copy(padded);
  const body = crypto.cbcEncrypt(sa.proposal.encryption, sa.encryptionKey, iv, padded);
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
  const [hash, ...rest] = r.value;
  if (hash === undefined || hash.type !== 8) return { ok: false, reason: 'no HASH payload' };
  const restBytes = rest.length === 0 ? Buffer.alloc(0) : Buffer.concat(rest.map((p) => p.raw!));
  return { ok: true, hash: hash.data, rest, restBytes, nextIv: Buffer.from(body.subarray(body.length - info.blockSize)) };
}

/** A random, non-zero 32-bit message ID. */
export function randomMessageId(crypto: CryptoProvider): number {
  for (;;) {
    const id = crypto.randomBytes(4).readUInt32BE(0);
    if (id !== 0) return id;
  }
}
