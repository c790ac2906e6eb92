// Just enough ISAKMP (RFC 2408) to label captured messages and to decrypt them for the fixtures:
// the fixed header, the generic payload chain, and the IKEv1 CBC/IV rules of RFC 2409 appendix B.
// This is test tooling, deliberately independent of the project's codec in ts/isakmp, so the
// fixtures can check that codec rather than mirror it.
import { createDecipheriv, createHash } from 'node:crypto';

export const EXCHANGE_NAMES: Record<number, string> = {
  1: 'Base', 2: 'Identity Protection (Main Mode)', 3: 'Authentication Only', 4: 'Aggressive',
  5: 'Informational', 32: 'Quick Mode', 33: 'New Group Mode',
};

export const PAYLOAD_NAMES: Record<number, string> = {
  0: 'NONE', 1: 'SA', 2: 'P', 3: 'T', 4: 'KE', 5: 'ID', 6: 'CERT', 7: 'CR', 8: 'HASH', 9: 'SIG',
  10: 'NONCE', 11: 'N', 12: 'D', 13: 'VID', 14: 'ATTR', 15: 'SAK', 20: 'NAT-D', 21: 'NAT-OA',
  130: 'NAT-D (draft)', 131: 'NAT-OA (draft)',
};

export interface IsakmpHeader {
  cookieI: string;
  cookieR: string;
  nextPayload: number;
  version: number;
  exchangeType: number;
  flags: number;
  messageId: number;
  length: number;
}

export const HEADER_LEN = 28;
export const FLAG_ENCRYPTION = 0x01;

export function parseHeader(msg: Buffer): IsakmpHeader {
  if (msg.length < HEADER_LEN) throw new RangeError(`ISAKMP message of ${msg.length} bytes`);
  return {
    cookieI: msg.subarray(0, 8).toString('hex'),
    cookieR: msg.subarray(8, 16).toString('hex'),
    nextPayload: msg[16]!,
    version: msg[17]!,
    exchangeType: msg[18]!,
    flags: msg[19]!,
    messageId: msg.readUInt32BE(20),
    length: msg.readUInt32BE(24),
  };
}

export interface RawPayload {
  type: number;
  /** payload body without the 4-byte generic header */
  body: Buffer;
}

/**
 * Walks the generic payload chain (next payload, reserved, length) starting with `first`.
 * Returns null if the chain does not fit in `data` (wrong key/IV, or not a payload chain).
 * Trailing bytes after the last payload (CBC padding) are allowed.
 */
export function walkPayloads(first: number, data: Buffer): RawPayload[] | null {
  const out: RawPayload[] = [];
  let type = first;
  let off = 0;
  while (type !== 0) {
    if (off + 4 > data.length) return null;
    const next = data[off]!;
    const len = data.readUInt16BE(off + 2);
    if (len < 4 || off + len > data.length) return null;
    out.push({ type, body: Buffer.from(data.subarray(off + 4, off + len)) });
    off += len;
    type = next;
    if (out.length > 64) return null;
  }
  return out;
}

/** Node cipher name and block size for an IKE encryption algorithm as strongSwan names it. */
export function ikeCipher(encAlg: string, keyBits: number): { name: string; block: number } {
  if (encAlg === 'AES_CBC') return { name: `aes-${keyBits}-cbc`, block: 16 };
  if (encAlg === '3DES_CBC') return { name: 'des-ede3-cbc', block: 8 };
  throw new RangeError(`IKE cipher ${encAlg} not supported here`);
}

/** Node hash name for strongSwan's PRF/hash name (PRF_HMAC_SHA1, HMAC_SHA2_256_128, ...). */
export function ikeHash(prfAlg: string): string {
  if (/SHA1/.test(prfAlg)) return 'sha1';
  if (/SHA2_256/.test(prfAlg)) return 'sha256';
  if (/SHA2_384/.test(prfAlg)) return 'sha384';
  if (/SHA2_512/.test(prfAlg)) return 'sha512';
  if (/MD5/.test(prfAlg)) return 'md5';
  throw new RangeError(`hash ${prfAlg} not supported here`);
}

export interface DecryptedMessage {
  /** IV the message was decrypted with */
  iv: Buffer;
  /** plaintext of everything after the header, padding included */
  plain: Buffer;
  /** true when this exact ciphertext was seen before (a retransmission) */
  retransmission: boolean;
}

/**
 * Tracks the IKEv1 IV state of one ISAKMP SA (RFC 2409 appendix B):
 * - phase 1: the first IV is hash(g^xi | g^xr), then each message's last ciphertext block;
 * - any other message ID M: the first IV is hash(last phase 1 CBC block | M), then each message's
 *   last ciphertext block within that exchange (Quick Mode messages 2 and 3).
 * Messages must be fed in wire order. A retransmitted message (same bytes) is decrypted with the
 * IV its first copy used and does not advance the chain.
 */
export class IkeCbcChain {
  private p1: Buffer;
  private readonly perMid = new Map<number, Buffer>();
  private readonly seen = new Map<string, DecryptedMessage>();

  constructor(
    private readonly cipher: { name: string; block: number },
    private readonly ka: Buffer,
    private readonly hash: string,
    gxi: Buffer,
    gxr: Buffer,
  ) {
    this.p1 = createHash(hash).update(Buffer.concat([gxi, gxr])).digest().subarray(0, cipher.block);
  }

  /** the phase 1 IV state right now (initial IV before any encrypted phase 1 message) */
  get phase1Iv(): Buffer {
    return this.p1;
  }

  decrypt(msg: Buffer): DecryptedMessage {
    const key = msg.toString('hex');
    const prev = this.seen.get(key);
    if (prev) return { ...prev, retransmission: true };
    const h = parseHeader(msg);
    const body = msg.subarray(HEADER_LEN, Math.min(msg.length, h.length));
    if (body.length % this.cipher.block !== 0) throw new RangeError(`encrypted body of ${body.length} bytes`);
    let iv: Buffer;
    if (h.messageId === 0) iv = this.p1;
    else {
      const m = this.perMid.get(h.messageId);
      iv = m ?? createHash(this.hash).update(Buffer.concat([this.p1, u32(h.messageId)])).digest().subarray(0, this.cipher.block);
    }
    const d = createDecipheriv(this.cipher.name, this.ka, iv);
    d.setAutoPadding(false);
    const plain = Buffer.concat([d.update(body), d.final()]);
    const last = Buffer.from(body.subarray(body.length - this.cipher.block));
    if (h.messageId === 0) this.p1 = last;
    else this.perMid.set(h.messageId, last);
    const r = { iv: Buffer.from(iv), plain, retransmission: false };
    this.seen.set(key, r);
    return r;
  }
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}
