// The ESP SA in TypeScript over node:crypto: the fallback when the addon does not load, and the "node:crypto
// doing the same ESP work per packet" baseline of bench/esp.ts. Same packet format, statuses and checks as
// native/esp.cc. node:crypto cannot re-IV a cipher object, so each packet builds a new one: that per-packet
// cost is exactly what the native path avoids.
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  createSecretKey,
  randomFillSync,
  timingSafeEqual,
  type KeyObject,
} from 'node:crypto';
import { espOpenedCapacity, espSealedLength, type EspKeyLengths } from './algorithms.js';
import { checkNextHeader, type ResolvedEspParams } from './params.js';
import { ReplayWindow } from './replay.js';
import { EspStatus, espStatusName, type EspAlgorithm, type EspOpenResult, type EspSa, type EspSaStats } from './types.js';

const MAX_LENGTH = 2 ** 30;

export function checkU8(v: unknown, name: string): Uint8Array {
  if (!(v instanceof Uint8Array)) throw new TypeError(`${name} must be a Buffer or Uint8Array`);
  return v;
}
export function checkU32(v: unknown, name: string): Uint32Array {
  if (!(v instanceof Uint32Array)) throw new TypeError(`${name} must be a Uint32Array`);
  return v;
}
export function checkCount(count: unknown, dflt: number): number {
  if (count === undefined) return dflt;
  if (typeof count !== 'number') throw new TypeError('count must be a number');
  if (!Number.isInteger(count) || count < 0 || count > 0xffffffff) throw new RangeError('count must be an integer in [0, 2^32-1]');
  return count;
}

function inBounds(off: number, len: number, size: number): boolean {
  return off <= size && len <= size - off;
}

/** True when the two views share at least one byte of memory. */
function overlaps(a: Uint8Array, aOff: number, aLen: number, b: Uint8Array, bOff: number, bLen: number): boolean {
  if (a.buffer !== b.buffer || aLen === 0 || bLen === 0) return false;
  const x = a.byteOffset + aOff;
  const y = b.byteOffset + bOff;
  return x < y + bLen && y < x + aLen;
}
function sameByte(a: Uint8Array, aOff: number, b: Uint8Array, bOff: number): boolean {
  return a.buffer === b.buffer && a.byteOffset + aOff === b.byteOffset + bOff;
}

export class NodeEspSa implements EspSa {
  readonly implementation = 'node' as const;
  readonly engine = 'node:crypto' as const;
  readonly spi: number;
  readonly algorithm: EspAlgorithm;
  readonly direction: 'outbound' | 'inbound';
  readonly esn: boolean;
  readonly replayWindow: number;
  readonly mode: 'tunnel' | 'transport';
  readonly udpEncapsulation: boolean;

  private readonly g: Readonly<EspKeyLengths>;
  private readonly insecure: boolean;
  private key: KeyObject | undefined;
  private integKey: KeyObject | undefined;
  private readonly salt: Buffer;
  private readonly replay: ReplayWindow;
  private lastHi = 0;
  private lastLo = 0;
  private destroyed = false;
  private readonly counters: EspSaStats = { packets: 0, bytes: 0, authFailures: 0, replays: 0, malformed: 0, wrongSpi: 0 };

  constructor(p: ResolvedEspParams) {
    this.spi = p.spi;
    this.algorithm = p.algorithm;
    this.direction = p.outbound ? 'outbound' : 'inbound';
    this.esn = p.esn;
    this.replayWindow = p.replayWindow;
    this.mode = p.mode;
    this.udpEncapsulation = p.udpEncapsulation;
    this.g = p.geometry;
    this.insecure = p.allowInsecure;
    this.key = p.encryptionKey.length ? createSecretKey(p.encryptionKey) : undefined;
    this.integKey = p.integrityKey.length ? createSecretKey(p.integrityKey) : undefined;
    this.salt = Buffer.from(p.salt);
    this.replay = new ReplayWindow(p.replayWindow, p.esn);
    if (p.initialSequence !== undefined) {
      const prev = p.initialSequence - 1n;
      if (p.outbound) {
        this.lastHi = Number(prev >> 32n);
        this.lastLo = Number(prev & 0xffffffffn);
      } else {
        this.replay.setTop(prev);
      }
    }
  }

  sealedLength(payloadLength: number): number {
    return espSealedLength(this.g, payloadLength);
  }
  overhead(payloadLength: number): number {
    return this.sealedLength(payloadLength) - payloadLength;
  }
  openedCapacity(packetLength: number): number {
    return espOpenedCapacity(this.g, packetLength);
  }

  private ready(): void {
    if (this.destroyed) throw new Error('this ESP SA has been destroyed');
  }

  private sealOne(
    payload: Uint8Array,
    nextHeader: number,
    out: Uint8Array,
    o: number,
    hi: number,
    lo: number,
    ivOverride?: Uint8Array,
  ): number {
    const g = this.g;
    const len = payload.length;
    const ctLen = Math.ceil((len + 2) / g.blockSize) * g.blockSize;
    const padLen = ctLen - len - 2;
    const trailer = Buffer.allocUnsafe(padLen + 2);
    for (let i = 0; i < padLen; i++) trailer[i] = i + 1;
    trailer[padLen] = padLen;
    trailer[padLen + 1] = nextHeader;
    const view = Buffer.from(out.buffer, out.byteOffset + o, 8 + g.ivLength + ctLen + g.icvLength);
    view.writeUInt32BE(this.spi, 0);
    view.writeUInt32BE(lo, 4);
    const ct = 8 + g.ivLength;
    // The payload is read before anything is written over it (in-place sealing).
    const src = Buffer.from(payload.buffer, payload.byteOffset, len);
    if (g.kind === 'aead') {
      const nonce = Buffer.allocUnsafe(12);
      this.salt.copy(nonce, 0);
      if (ivOverride) nonce.set(ivOverride, 4);
      else {
        nonce.writeUInt32BE(hi, 4);
        nonce.writeUInt32BE(lo, 8);
      }
      const c = createCipheriv(g.nodeCipher as 'aes-128-gcm', this.key!, nonce, { authTagLength: 16 });
      c.setAAD(this.aad(hi, lo));
      const body = Buffer.concat([c.update(src), c.update(trailer), c.final()]);
      view.set(nonce.subarray(4), 8);
      view.set(body, ct);
      view.set(c.getAuthTag(), ct + ctLen);
      return EspStatus.OK;
    }
    if (g.kind === 'cbc-hmac' || g.kind === 'cbc-only') {
      const iv = ivOverride ?? nextCbcIv(g.ivLength);
      const c = createCipheriv(g.nodeCipher!, this.key!, iv).setAutoPadding(false);
      const body = Buffer.concat([c.update(src), c.update(trailer), c.final()]);
      view.set(iv, 8);
      view.set(body, ct);
    } else {
      if (!sameByte(src, 0, view, ct)) view.set(src, ct); // NULL encryption: the payload goes as it is
      view.set(trailer, ct + len);
    }
    if (g.nodeHash !== undefined) {
      const h = createHmac(g.nodeHash, this.integKey!).update(view.subarray(0, ct + ctLen));
      if (this.esn) h.update(be32(hi)); // RFC 4303 2.2.1: authenticated, not sent
      view.set(h.digest().subarray(0, g.icvLength), ct + ctLen);
    }
    return EspStatus.OK;
  }

  private aad(hi: number, lo: number): Buffer {
    const aad = Buffer.allocUnsafe(this.esn ? 12 : 8);
    aad.writeUInt32BE(this.spi, 0);
    if (this.esn) {
      aad.writeUInt32BE(hi, 4);
      aad.writeUInt32BE(lo, 8);
    } else {
      aad.writeUInt32BE(lo, 4);
    }
    return aad;
  }

  private openOne(pkt: Buffer, out: Buffer, res: { len: number; nh: number }): number {
    const g = this.g;
    const len = pkt.length;
    if (len < 8 + g.ivLength + g.icvLength + 2) {
      this.counters.malformed++;
      return EspStatus.MALFORMED;
    }
    const ctLen = len - 8 - g.ivLength - g.icvLength;
    if (g.nodeCipher !== undefined && g.kind !== 'aead' && ctLen % g.blockSize !== 0) {
      this.counters.malformed++;
      return EspStatus.MALFORMED;
    }
    if (pkt.readUInt32BE(0) !== this.spi) return EspStatus.WRONG_SPI;
    const lo = pkt.readUInt32BE(4);
    const hi = this.replay.inferHigh(lo);
    if (hi < 0 || !this.replay.check(hi, lo)) {
      this.counters.replays++;
      return EspStatus.REPLAYED;
    }
    const iv = pkt.subarray(8, 8 + g.ivLength);
    const ct = pkt.subarray(8 + g.ivLength, 8 + g.ivLength + ctLen);
    const icv = pkt.subarray(len - g.icvLength);
    let plain: Buffer;
    if (g.kind === 'aead') {
      const nonce = Buffer.concat([this.salt, iv]);
      const d = createDecipheriv(g.nodeCipher as 'aes-128-gcm', this.key!, nonce, { authTagLength: 16 });
      d.setAAD(this.aad(hi, lo));
      d.setAuthTag(icv);
      try {
        plain = Buffer.concat([d.update(ct), d.final()]); // final() throws on a bad tag: nothing released
      } catch {
        this.counters.authFailures++;
        return EspStatus.AUTH_FAILED;
      }
    } else {
      if (g.nodeHash !== undefined) {
        const h = createHmac(g.nodeHash, this.integKey!).update(pkt.subarray(0, len - g.icvLength));
        if (this.esn) h.update(be32(hi));
        if (!timingSafeEqual(h.digest().subarray(0, g.icvLength), icv)) {
          this.counters.authFailures++;
          return EspStatus.AUTH_FAILED;
        }
      }
      if (g.kind === 'null-hmac') plain = Buffer.from(ct);
      else {
        const d = createDecipheriv(g.nodeCipher!, this.key!, iv).setAutoPadding(false);
        plain = Buffer.concat([d.update(ct), d.final()]);
      }
    }
    this.replay.update(hi, lo);
    out.set(plain, 0);
    const padLen = plain[ctLen - 2]!;
    if (padLen > ctLen - 2) {
      this.counters.malformed++;
      return EspStatus.MALFORMED;
    }
    const payload = ctLen - 2 - padLen;
    for (let i = 0; i < padLen; i++) {
      if (plain[payload + i] !== i + 1) {
        this.counters.malformed++;
        return EspStatus.MALFORMED;
      }
    }
    res.len = payload;
    res.nh = plain[ctLen - 1]!;
    return EspStatus.OK;
  }

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
  ): number {
    this.ready();
    if (this.direction !== 'outbound') throw new TypeError('sealBatch needs an outbound SA');
    checkU8(input, 'input');
    checkU32(offsets, 'offsets');
    checkU32(lengths, 'lengths');
    checkU8(nextHeaders, 'nextHeaders');
    checkU8(output, 'output');
    checkU32(outOffsets, 'outOffsets');
    checkU32(outLengths, 'outLengths');
    checkU8(status, 'status');
    const n = checkCount(count, offsets.length);
    if ([offsets, lengths, nextHeaders, outOffsets, outLengths, status].some((a) => a.length < n)) {
      throw new RangeError('offsets, lengths, nextHeaders, outOffsets, outLengths and status must each hold count entries');
    }
    const ivLen = this.g.ivLength;
    let ok = 0;
    for (let i = 0; i < n; i++) {
      outLengths[i] = 0;
      const off = offsets[i]!;
      const len = lengths[i]!;
      const outOff = outOffsets[i]!;
      const sealed = this.sealedLength(len);
      if (len > MAX_LENGTH || !inBounds(off, len, input.length) || !inBounds(outOff, sealed, output.length)) {
        status[i] = EspStatus.BAD_BOUNDS;
        continue;
      }
      if (overlaps(input, off, len, output, outOff, sealed) && !sameByte(input, off, output, outOff + 8 + ivLen)) {
        status[i] = EspStatus.BAD_BOUNDS;
        continue;
      }
      const exhausted = this.esn ? this.lastHi === 0xffffffff && this.lastLo === 0xffffffff : this.lastLo === 0xffffffff;
      if (exhausted) {
        status[i] = EspStatus.SEQ_OVERFLOW;
        continue;
      }
      let hi = this.lastHi;
      let lo = this.lastLo + 1;
      if (lo > 0xffffffff) {
        lo = 0;
        hi++;
      }
      const st = this.sealOne(input.subarray(off, off + len), nextHeaders[i]!, output, outOff, hi, lo);
      status[i] = st;
      if (st === EspStatus.OK) {
        this.lastHi = hi;
        this.lastLo = lo;
        outLengths[i] = sealed;
        this.counters.packets++;
        this.counters.bytes += len;
        ok++;
      }
    }
    return ok;
  }

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
  ): number {
    this.ready();
    if (this.direction !== 'inbound') throw new TypeError('openBatch needs an inbound SA');
    checkU8(input, 'input');
    checkU32(offsets, 'offsets');
    checkU32(lengths, 'lengths');
    checkU8(output, 'output');
    checkU32(outOffsets, 'outOffsets');
    checkU32(outLengths, 'outLengths');
    checkU8(nextHeaders, 'nextHeaders');
    checkU8(status, 'status');
    const n = checkCount(count, offsets.length);
    if ([offsets, lengths, nextHeaders, outOffsets, outLengths, status].some((a) => a.length < n)) {
      throw new RangeError('offsets, lengths, outOffsets, outLengths, nextHeaders and status must each hold count entries');
    }
    const g = this.g;
    const overhead = 8 + g.ivLength + g.icvLength;
    const res = { len: 0, nh: 0 };
    let ok = 0;
    for (let i = 0; i < n; i++) {
      outLengths[i] = 0;
      nextHeaders[i] = 0;
      const off = offsets[i]!;
      const len = lengths[i]!;
      const outOff = outOffsets[i]!;
      if (len > MAX_LENGTH || !inBounds(off, len, input.length)) {
        status[i] = EspStatus.BAD_BOUNDS;
        continue;
      }
      if (len < overhead + 2) {
        this.counters.malformed++;
        status[i] = EspStatus.MALFORMED;
        continue;
      }
      const ctLen = len - overhead;
      if (!inBounds(outOff, ctLen, output.length)) {
        status[i] = EspStatus.BAD_BOUNDS;
        continue;
      }
      if (overlaps(input, off, len, output, outOff, ctLen) && !sameByte(output, outOff, input, off + 8 + g.ivLength)) {
        status[i] = EspStatus.BAD_BOUNDS;
        continue;
      }
      const pkt = Buffer.from(input.buffer, input.byteOffset + off, len);
      const out = Buffer.from(output.buffer, output.byteOffset + outOff, ctLen);
      const st = this.openOne(pkt, out, res);
      status[i] = st;
      if (st === EspStatus.OK) {
        outLengths[i] = res.len;
        nextHeaders[i] = res.nh;
        this.counters.packets++;
        this.counters.bytes += res.len;
        ok++;
      } else if (st === EspStatus.WRONG_SPI) {
        this.counters.wrongSpi++;
      }
    }
    return ok;
  }

  seal(payload: Uint8Array, nextHeader: number): Buffer {
    return sealSingle(this, payload, nextHeader);
  }

  open(packet: Uint8Array): EspOpenResult {
    return openSingle(this, packet);
  }

  sealWithIv(payload: Uint8Array, nextHeader: number, seq: bigint, iv: Uint8Array): Buffer {
    this.ready();
    if (!this.insecure || this.direction !== 'outbound') {
      throw new TypeError('sealWithIv is a test hook: it needs an outbound SA created with allowInsecureForTests');
    }
    checkU8(payload, 'payload');
    checkNextHeader(nextHeader);
    if (typeof seq !== 'bigint') throw new TypeError('seq must be a bigint');
    if (seq < 1n || seq > (this.esn ? 0xffffffffffffffffn : 0xffffffffn)) {
      throw new RangeError('seq must be in [1, 2^32-1] (2^64-1 with ESN)');
    }
    checkU8(iv, 'iv');
    if (iv.length !== this.g.ivLength) throw new RangeError(`iv must be ${this.g.ivLength} bytes`);
    const out = Buffer.alloc(this.sealedLength(payload.length));
    this.sealOne(payload, nextHeader, out, 0, Number(seq >> 32n), Number(seq & 0xffffffffn), this.g.ivLength ? iv : undefined);
    return out;
  }

  stats(): EspSaStats {
    return { ...this.counters };
  }

  sequence(): bigint {
    return this.direction === 'outbound' ? (BigInt(this.lastHi) << 32n) | BigInt(this.lastLo) : this.replay.top();
  }

  destroy(): void {
    this.destroyed = true;
    this.key = undefined;
    this.integKey = undefined;
    this.salt.fill(0);
  }
}

function be32(v: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(v, 0);
  return b;
}

// CBC IVs for every NodeEspSa of this thread (RFC 3602 3.1: unpredictable; nothing ties an IV to a key), as
// native/esp.cc does: one CSPRNG call per 256 IVs, and no 4 KiB pool in each SA. The caller copies the IV
// before the next call.
const ivPool = Buffer.alloc(256 * 16);
let ivPoolPos = ivPool.length;
/** A fresh CBC IV of `length` octets (16 for AES, 8 for 3DES); the pool advances 16 either way. */
function nextCbcIv(length: number): Buffer {
  if (ivPoolPos >= ivPool.length) {
    randomFillSync(ivPool);
    ivPoolPos = 0;
  }
  const iv = ivPool.subarray(ivPoolPos, ivPoolPos + length);
  ivPoolPos += 16;
  return iv;
}

// Argument arrays of the single-packet calls, shared by every SA of this thread: seal()/open() use them only
// within one synchronous batch call, and per-SA arrays cost each SA (100,000 pairs on a gateway) about 1 KiB
// of heap, and as much native memory once the addon has seen them (V8 moves a typed array off its heap when
// native code asks for its data).
const one = {
  offsets: new Uint32Array(1),
  lengths: new Uint32Array(1),
  outOffsets: new Uint32Array(1),
  outLengths: new Uint32Array(1),
  nextHeaders: new Uint8Array(1),
  status: new Uint8Array(1),
};

/** seal() over sealBatch with one packet: one code path for both. */
export function sealSingle(sa: EspSa, payload: Uint8Array, nextHeader: number): Buffer {
  const s = one;
  checkU8(payload, 'payload');
  checkNextHeader(nextHeader);
  if (payload.length > MAX_LENGTH) throw new RangeError('payload too long');
  const out = Buffer.allocUnsafe(sa.sealedLength(payload.length));
  s.offsets[0] = 0;
  s.lengths[0] = payload.length;
  s.nextHeaders[0] = nextHeader;
  s.outOffsets[0] = 0;
  sa.sealBatch(payload, s.offsets, s.lengths, s.nextHeaders, out, s.outOffsets, s.outLengths, s.status, 1);
  const st = s.status[0]!;
  if (st === EspStatus.SEQ_OVERFLOW) {
    throw Object.assign(new RangeError('ESP sequence number exhausted: rekey the SA (RFC 4303 3.3.3)'), {
      status: st,
      code: 'SEQ_OVERFLOW',
    });
  }
  if (st !== EspStatus.OK) throw Object.assign(new Error(`ESP seal failed: ${espStatusName(st)}`), { status: st });
  return out;
}

/** open() over openBatch with one packet. */
export function openSingle(sa: EspSa, packet: Uint8Array): EspOpenResult {
  const s = one;
  checkU8(packet, 'packet');
  if (packet.length > MAX_LENGTH) return { ok: false, status: EspStatus.BAD_BOUNDS, reason: 'BAD_BOUNDS' };
  const out = Buffer.allocUnsafe(sa.openedCapacity(packet.length));
  s.offsets[0] = 0;
  s.lengths[0] = packet.length;
  s.outOffsets[0] = 0;
  sa.openBatch(packet, s.offsets, s.lengths, out, s.outOffsets, s.outLengths, s.nextHeaders, s.status, 1);
  const st = s.status[0]!;
  if (st !== EspStatus.OK) return { ok: false, status: st as never, reason: espStatusName(st) };
  return { ok: true, payload: out.subarray(0, s.outLengths[0]!), nextHeader: s.nextHeaders[0]! };
}
